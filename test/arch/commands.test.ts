import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Command } from 'commander';
import { CERROR, defaultFeatures, type SmmuFeatures } from '../../src/arch/registers.js';
import {
  ALL_COMMAND_DEFS, COMMAND_DEFS, CommandSyntaxError, OP, OPCODE_NAMES, checkCommand, cmdAddrPage,
  cmdAsid, cmdAtcSize, cmdCs, cmdIpaPage, cmdLeaf, cmdMsh, cmdMsiAddr, cmdNum, cmdOpcode, cmdRange,
  cmdScale, cmdSid, cmdSsec, cmdSsid, cmdSsv, cmdTg, cmdTtl, cmdVmid, decodeCommand, encodeCommand,
  fromDwords, fromHex32, reservedBitsSet, toDwords, toHex32, writeAtcInv, writeCfgi, writeSync,
  writeTlbi, type CheckOptions, type CommandDef, type FieldValue,
} from '../../src/arch/commands.js';
import { explainCommand, explainJson, parseEncodeSpec } from '../../src/arch/command-text.js';
import { registerExplain, parseFeatures } from '../../src/cli/explain.js';
import { UserError } from '../../src/cli/errors.js';

const NS: CheckOptions = { secureQueue: false };
const SQ: CheckOptions = { secureQueue: true };
const STRICT: CheckOptions = { secureQueue: false, strictReserved: true };
/** An SMMU on which every architected command is implemented. */
const EVERYTHING: SmmuFeatures = defaultFeatures({
  pri: true, stallModel: 0, rme: true, mpam: true, dpt: true, ds: true, archMinor: 4,
});

function dw(w: Uint32Array): [string, string] {
  const [a, b] = toDwords(w);
  return ['0x' + a.toString(16).padStart(16, '0'), '0x' + b.toString(16).padStart(16, '0')];
}
function cmd(name: string, fields: Record<string, FieldValue> = {}): Uint32Array {
  return encodeCommand({ name, fields });
}
function check(w: Uint32Array, f: Partial<SmmuFeatures> = {}, o: CheckOptions = NS) {
  return checkCommand(w, 0, defaultFeatures(f), o);
}
function reasonOf(w: Uint32Array, f: Partial<SmmuFeatures> = {}, o: CheckOptions = NS): string {
  const r = check(w, f, o);
  return r.err === 0 ? 'legal' : r.reason;
}

describe('opcodes (IHI 0070 G.b §4.1.1)', () => {
  it('has the architected opcode values', () => {
    expect(OP.CMD_PREFETCH_CONFIG).toBe(0x01);
    expect(OP.CMD_CFGI_STE_RANGE).toBe(0x04);
    expect(OP.CMD_CFGI_ALL).toBe(0x04);
    expect(OP.CMD_CFGI_VMS_PIDM).toBe(0x07);
    expect(OP.CMD_TLBI_NH_ALL).toBe(0x10);
    expect(OP.CMD_TLBI_NH_VA).toBe(0x12);
    expect(OP.CMD_TLBI_EL3_VA).toBe(0x1a);
    expect(OP.CMD_TLBI_EL2_VAA).toBe(0x23);
    expect(OP.CMD_TLBI_S12_VMALL).toBe(0x28);
    expect(OP.CMD_TLBI_S2_IPA).toBe(0x2a);
    expect(OP.CMD_TLBI_NSNH_ALL).toBe(0x30);
    expect(OP.CMD_ATC_INV).toBe(0x40);
    expect(OP.CMD_PRI_RESP).toBe(0x41);
    expect(OP.CMD_RESUME).toBe(0x44);
    expect(OP.CMD_STALL_TERM).toBe(0x45);
    expect(OP.CMD_SYNC).toBe(0x46);
    expect(OP.CMD_TLBI_S_EL2_ALL).toBe(0x50);
    expect(OP.CMD_TLBI_S_S2_IPA).toBe(0x5a);
    expect(OP.CMD_TLBI_SNH_ALL).toBe(0x60);
    expect(OP.CMD_DPTI_ALL).toBe(0x70);
    expect(OP.CMD_DPTI_PA).toBe(0x73);
  });

  it('names 0x04 CMD_CFGI_STE_RANGE in OPCODE_NAMES and has one definition per opcode', () => {
    expect(OPCODE_NAMES[0x04]).toBe('CMD_CFGI_STE_RANGE');
    expect(Object.keys(OPCODE_NAMES)).toHaveLength(ALL_COMMAND_DEFS.length);
    for (const d of ALL_COMMAND_DEFS) expect(COMMAND_DEFS[d.op]).toBe(d);
  });
});

describe('known encodings (hand-computed; Linux arm_smmu_cmdq_build_cmd layout)', () => {
  it('CMD_TLBI_NH_VA puts VMID at [47:32], ASID at [63:48], Leaf/TTL/TG/VA in dw1', () => {
    // dw0 = ASID 0x1234 <<48 | VMID 5 <<32 | op 0x12                 = 0x1234000500000012
    // dw1 = VA 0xffff6000 | TG 1 <<10 (0x400) | TTL 3 <<8 (0x300) | Leaf = 0x00000000ffff6701
    const w = cmd('CMD_TLBI_NH_VA', { VMID: 5, ASID: 0x1234, Address: 0xffff6000n, Leaf: 1, TG: 1, TTL: 3 });
    expect(dw(w)).toEqual(['0x1234000500000012', '0x00000000ffff6701']);
    expect(toHex32(w)).toBe('00000000ffff67011234000500000012');
  });

  it('CMD_TLBI_NH_VA range fields: NUM at [16:12], SCALE at [20]+', () => {
    // NUM 3 <<12 = 0x3000, SCALE 1 <<20 = 0x100000 → w0 = 0x00103012
    const w = cmd('CMD_TLBI_NH_VA', { NUM: 3, SCALE: 1, TG: 1, Address: 0x1000n });
    expect(w[0]).toBe(0x00103012);
    expect(dw(w)[1]).toBe('0x0000000000001400');
  });

  it('CMD_TLBI_NH_VA with a kernel VA uses all of [127:76]', () => {
    // VA 0xffff800012345000 → VA[63:12] at [127:76]: dw1 = VA | Leaf
    const w = cmd('CMD_TLBI_NH_VA', { Address: 0xffff800012345000n, Leaf: 1 });
    expect(dw(w)[1]).toBe('0xffff800012345001');
    expect(cmdAddrPage(w, 0)).toBe(0xffff800012345);
  });

  it('CMD_TLBI_NH_ASID, NH_ALL, S12_VMALL, EL2_ASID carry only VMID/ASID in dw0', () => {
    expect(dw(cmd('CMD_TLBI_NH_ASID', { VMID: 1, ASID: 2 }))).toEqual(['0x0002000100000011', '0x0000000000000000']);
    expect(dw(cmd('CMD_TLBI_NH_ALL', { VMID: 0x77 }))[0]).toBe('0x0000007700000010');
    expect(dw(cmd('CMD_TLBI_S12_VMALL', { VMID: 7 }))[0]).toBe('0x0000000700000028');
    expect(dw(cmd('CMD_TLBI_EL2_ASID', { ASID: 0x42 }))[0]).toBe('0x0042000000000021');
    expect(dw(cmd('CMD_TLBI_NSNH_ALL'))).toEqual(['0x0000000000000030', '0x0000000000000000']);
  });

  it('CMD_TLBI_S2_IPA puts IPA[55:12] at [119:76]', () => {
    // dw0 = VMID 3 <<32 | 0x2a; dw1 = IPA 0x80000000 | Leaf
    const w = cmd('CMD_TLBI_S2_IPA', { VMID: 3, Address: 0x80000000n, Leaf: 1 });
    expect(dw(w)).toEqual(['0x000000030000002a', '0x0000000080000001']);
    expect(cmdIpaPage(w, 0)).toBe(0x80000);
  });

  it('CMD_SYNC has CS at [13:12], MSH [23:22], MSIAttr [27:24], MSIData [63:32], MSIAddress [119:66]', () => {
    // Linux without MSI polling: CS=SIG_SEV → 2<<12 = 0x2000 | 0x46
    expect(dw(cmd('CMD_SYNC', { CS: 2 }))[0]).toBe('0x0000000000002046');
    // Linux MSI polling: CS=IRQ 0x1000 | MSH=ISH 0xc00000 | MSIAttr=OIWB 0xf000000 | 0x46
    const w = cmd('CMD_SYNC', { CS: 1, MSH: 3, MSIAttr: 0xf, MSIData: 0, MSIAddress: 0x80001040n });
    expect(dw(w)).toEqual(['0x000000000fc01046', '0x0000000080001040']);
    expect(cmdCs(w, 0)).toBe(1);
    expect(cmdMsh(w, 0)).toBe(3);
    expect(cmdMsiAddr(w, 0)).toBe(0x80001040n);
  });

  it('CMD_CFGI_STE / CFGI_CD / CFGI_CD_ALL / CFGI_STE_RANGE', () => {
    expect(dw(cmd('CMD_CFGI_STE', { StreamID: 0x10, Leaf: 1 }))).toEqual(['0x0000001000000003', '0x0000000000000001']);
    // SubstreamID 5 <<12 = 0x5000
    expect(dw(cmd('CMD_CFGI_CD', { StreamID: 0x10, SubstreamID: 5, Leaf: 1 }))).toEqual(['0x0000001000005005', '0x0000000000000001']);
    expect(dw(cmd('CMD_CFGI_CD_ALL', { StreamID: 0xffffffff }))[0]).toBe('0xffffffff00000006');
    expect(dw(cmd('CMD_CFGI_STE_RANGE', { StreamID: 0x40, Range: 4 }))).toEqual(['0x0000004000000004', '0x0000000000000004']);
  });

  it('CMD_ATC_INV: Global [9], SSV [11], SubstreamID, StreamID, Size [69:64], Address', () => {
    // SSV 0x800 | SSID 3 <<12 = 0x3000 | 0x40 → 0x3840; dw1 = Size 52 = 0x34
    expect(dw(cmd('CMD_ATC_INV', { StreamID: 0x100, SSV: 1, SubstreamID: 3, Size: 52 }))).toEqual(['0x0000010000003840', '0x0000000000000034']);
    const w = cmd('CMD_ATC_INV', { Global: 1, Size: 9, Address: 0x200000n });
    expect(w[0]).toBe(0x240);
    expect(cmdAtcSize(w, 0)).toBe(9);
  });

  it('CMD_PRI_RESP: PRGIndex [72:64], Resp [77:76]; CMD_RESUME: Ac [12], Ab [13], STAG [79:64]', () => {
    // PRI_RESP: SSV 0x800 | SSID 1 <<12 | 0x41 = 0x1841; dw1 = Resp 2 <<12 | PRGIndex 5 = 0x2005
    expect(dw(cmd('CMD_PRI_RESP', { StreamID: 0x20, SSV: 1, SubstreamID: 1, PRGIndex: 5, Resp: 2 }))).toEqual(['0x0000002000001841', '0x0000000000002005']);
    expect(dw(cmd('CMD_RESUME', { StreamID: 9, Ac: 1, STAG: 0x33 }))).toEqual(['0x0000000900001044', '0x0000000000000033']);
    expect(dw(cmd('CMD_RESUME', { StreamID: 9, Ab: 1 }))[0]).toBe('0x0000000900002044');
    expect(dw(cmd('CMD_STALL_TERM', { StreamID: 9, SSec: 1 }))[0]).toBe('0x0000000900000445');
  });

  it('CMD_PREFETCH_CONFIG / PREFETCH_ADDR', () => {
    expect(dw(cmd('CMD_PREFETCH_CONFIG', { StreamID: 1, SSV: 1, SubstreamID: 2 }))).toEqual(['0x0000000100002801', '0x0000000000000000']);
    expect(dw(cmd('CMD_PREFETCH_ADDR', { StreamID: 1, Size: 3, Address: 0x5000n }))).toEqual(['0x0000000100000002', '0x0000000000005003']);
  });

  it('encodes every remaining opcode with just its opcode byte', () => {
    for (const n of ['CMD_TLBI_EL3_ALL', 'CMD_TLBI_EL2_ALL', 'CMD_TLBI_S_EL2_ALL', 'CMD_TLBI_SNH_ALL', 'CMD_DPTI_ALL']) {
      const w = cmd(n);
      expect(cmdOpcode(w, 0)).toBe(OP[n as keyof typeof OP]);
      expect(w[1] | w[2] | w[3]).toBe(0);
    }
    expect(dw(cmd('CMD_TLBI_EL2_VA', { ASID: 1, Address: 0x1000n }))).toEqual(['0x0001000000000022', '0x0000000000001000']);
    expect(dw(cmd('CMD_TLBI_S_S12_VMALL', { VMID: 2 }))[0]).toBe('0x0000000200000058');
    expect(dw(cmd('CMD_DPTI_PA', { Address: 0x1234000n }))).toEqual(['0x0000000000000073', '0x0000000001234000']);
    expect(dw(cmd('CMD_CFGI_VMS_PIDM', { VMID: 9 }))[0]).toBe('0x0000000900000007');
  });

  it('rejects unknown fields, out-of-range values and unaligned addresses on encode', () => {
    expect(() => cmd('CMD_TLBI_NH_ALL', { ASID: 1 })).toThrow(RangeError);
    expect(() => cmd('CMD_TLBI_NH_ALL', { VMID: 0x10000 })).toThrow(/out of range/);
    expect(() => cmd('CMD_TLBI_NH_VA', { Address: 0x1001n })).toThrow(/aligned/);
    expect(() => cmd('CMD_TLBI_S2_IPA', { Address: 1n << 56n })).toThrow(/address bits/);
    expect(() => encodeCommand({ name: 'CMD_NOPE' })).toThrow(RangeError);
  });
});

describe('CMD_CFGI_ALL is CMD_CFGI_STE_RANGE with Range=31', () => {
  it('encodes Range=31 and decodes as CMD_CFGI_ALL', () => {
    const w = cmd('CMD_CFGI_ALL');
    expect(dw(w)).toEqual(['0x0000000000000004', '0x000000000000001f']);
    expect(decodeCommand(w).name).toBe('CMD_CFGI_ALL');
    expect(decodeCommand(w).op).toBe(0x04);
    expect(cmdRange(w, 0)).toBe(31);
    expect(check(w)).toEqual({ err: 0 });
  });
  it('Range=30 is still CMD_CFGI_STE_RANGE', () => {
    expect(decodeCommand(cmd('CMD_CFGI_STE_RANGE', { Range: 30 })).name).toBe('CMD_CFGI_STE_RANGE');
  });
  it('rejects CMD_CFGI_ALL with another Range', () => {
    expect(() => cmd('CMD_CFGI_ALL', { Range: 3 })).toThrow(RangeError);
  });
});

describe('hot-path accessors', () => {
  it('read the same values as decodeCommand, at any ring offset', () => {
    fc.assert(fc.property(
      fc.constantFrom(...ALL_COMMAND_DEFS), fc.array(fc.nat({ max: 0xffffffff }), { minLength: 4, maxLength: 4 }), fc.nat({ max: 6 }),
      (d, words, slot) => {
        const ring = new Uint32Array(32);
        const off = slot * 4;
        ring.set(words, off);
        ring[off] = ((ring[off] & ~0xff) | d.op) >>> 0;
        const f = decodeCommand(ring, off).fields;
        expect(cmdOpcode(ring, off)).toBe(d.op);
        if ('VMID' in f) expect(cmdVmid(ring, off)).toBe(f.VMID);
        if ('ASID' in f) expect(cmdAsid(ring, off)).toBe(f.ASID);
        if ('StreamID' in f) expect(cmdSid(ring, off)).toBe(f.StreamID);
        if ('SubstreamID' in f) expect(cmdSsid(ring, off)).toBe(f.SubstreamID);
        if ('SSec' in f) expect(cmdSsec(ring, off)).toBe(f.SSec);
        if ('SSV' in f) expect(cmdSsv(ring, off)).toBe(f.SSV);
        if ('Leaf' in f) expect(cmdLeaf(ring, off)).toBe(f.Leaf);
        if ('TG' in f) {
          expect(cmdTg(ring, off)).toBe(f.TG);
          expect(cmdTtl(ring, off)).toBe(f.TTL);
          expect(cmdNum(ring, off)).toBe(f.NUM);
          expect(cmdScale(ring, off)).toBe(f.SCALE);
        }
        if ('Range' in f) expect(cmdRange(ring, off)).toBe(f.Range);
        if (typeof f.Address === 'bigint') {
          const page = d.fields.some((x) => x.name === 'Address' && x.msb === 127) ? cmdAddrPage(ring, off) : cmdIpaPage(ring, off);
          expect(BigInt(page) << 12n).toBe(f.Address);
        }
        if ('MSIAddress' in f) expect(cmdMsiAddr(ring, off)).toBe(f.MSIAddress);
      },
    ), { seed: 42, numRuns: 2000 });
  });

  it('allocation-free writers produce the same words as encodeCommand', () => {
    const ring = new Uint32Array(8);
    writeTlbi(ring, 4, OP.CMD_TLBI_NH_VA, 5, 0x1234, 0xffff800012345, 1, 3, 1, 7, 2);
    expect(Array.from(ring.subarray(4))).toEqual(Array.from(cmd('CMD_TLBI_NH_VA', {
      VMID: 5, ASID: 0x1234, Address: 0xffff800012345000n, Leaf: 1, TTL: 3, TG: 1, NUM: 7, SCALE: 2,
    })));
    writeCfgi(ring, 0, OP.CMD_CFGI_CD, 0x10, 5, 1);
    expect(Array.from(ring.subarray(0, 4))).toEqual(Array.from(cmd('CMD_CFGI_CD', { StreamID: 0x10, SubstreamID: 5, Leaf: 1 })));
    writeSync(ring, 4, 1, 3, 0xf, 0xdead, 0xff_ffff_fff0);
    expect(Array.from(ring.subarray(4))).toEqual(Array.from(cmd('CMD_SYNC', {
      CS: 1, MSH: 3, MSIAttr: 0xf, MSIData: 0xdead, MSIAddress: 0xfffffffff0n,
    })));
    writeAtcInv(ring, 0, 0x100, 1, 3, 1, 52, 0x12345678);
    expect(Array.from(ring.subarray(0, 4))).toEqual(Array.from(cmd('CMD_ATC_INV', {
      StreamID: 0x100, SSV: 1, SubstreamID: 3, Global: 1, Size: 52, Address: 0x12345678000n,
    })));
  });
});

describe('128-bit conversions', () => {
  it('fromHex32 reads one big-endian value (dw1 first) with optional 0x and _', () => {
    const a = fromHex32('0x00000000ffff6701_1234000500000012');
    const b = fromHex32('00000000FFFF67011234000500000012');
    expect(dw(a)).toEqual(['0x1234000500000012', '0x00000000ffff6701']);
    expect(Array.from(b)).toEqual(Array.from(a));
  });
  it('fromHex32 reads two 64-bit words in driver dump order (dw0 dw1)', () => {
    const a = fromHex32('0x1234000500000012 0x00000000ffff6701');
    expect(toHex32(a)).toBe('00000000ffff67011234000500000012');
    expect(toHex32(fromHex32('1234000500000012,ffff6701'))).toBe('00000000ffff67011234000500000012');
  });
  it('fromHex32 rejects anything else with a one-line message', () => {
    for (const bad of ['xyz', '0x1234', '', '1 2 3', '0x' + '1'.repeat(33), '0x1 0x' + '1'.repeat(17), '0xg0000000000000000000000000000000']) {
      expect(() => fromHex32(bad)).toThrow(CommandSyntaxError);
    }
    expect(() => fromHex32('xyz')).toThrow('expected 32 hex digits or two 64-bit words, got "xyz"');
  });
  it('fromDwords / toDwords round trip', () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (a, b) => {
      expect(toDwords(fromDwords(a, b))).toEqual([a, b]);
    }), { seed: 7, numRuns: 500 });
  });
});

describe('legality: opcode (§4.1.1, §7.1)', () => {
  it('reserved opcodes are CERROR_ILL', () => {
    for (const op of [0x00, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x14, 0x19, 0x2b, 0x42, 0x47, 0x61, 0x7f, 0x90, 0xff]) {
      const r = check(new Uint32Array([op, 0, 0, 0]), EVERYTHING, SQ);
      expect(r.err).toBe(CERROR.ILL);
      expect(reasonOf(new Uint32Array([op, 0, 0, 0]))).toMatch(/^opcode 0x[0-9a-f]{2} is Reserved \(§4\.1\.1\)$/);
    }
  });
  it('IMPLEMENTATION DEFINED opcodes 0x80-0x8F are CERROR_ILL (this model implements none)', () => {
    for (let op = 0x80; op <= 0x8f; op++) {
      expect(reasonOf(new Uint32Array([op, 0, 0, 0]), EVERYTHING, SQ)).toContain('IMPLEMENTATION DEFINED');
    }
  });
  it('every architected opcode is legal on a fully featured SMMU on the Secure queue', () => {
    for (const d of ALL_COMMAND_DEFS) {
      expect(checkCommand(cmd(d.name), 0, EVERYTHING, SQ), d.name).toEqual({ err: 0 });
    }
  });
});

describe('legality: queue', () => {
  it('Secure-only commands (0x50-0x60) are CERROR_ILL on the Non-secure queue, legal on the Secure one', () => {
    for (const n of ['CMD_TLBI_S_EL2_ALL', 'CMD_TLBI_S_EL2_ASID', 'CMD_TLBI_S_EL2_VA', 'CMD_TLBI_S_EL2_VAA', 'CMD_TLBI_S_S12_VMALL', 'CMD_TLBI_S_S2_IPA', 'CMD_TLBI_SNH_ALL']) {
      expect(reasonOf(cmd(n))).toBe(`${n}: Secure-only command on the Non-secure Command queue`);
      expect(check(cmd(n), {}, SQ)).toEqual({ err: 0 });
    }
  });
  it('SSec=1 is CERROR_ILL on the Non-secure queue for commands with SSec', () => {
    for (const n of ['CMD_PREFETCH_CONFIG', 'CMD_PREFETCH_ADDR', 'CMD_CFGI_STE', 'CMD_CFGI_STE_RANGE', 'CMD_CFGI_CD', 'CMD_CFGI_CD_ALL', 'CMD_STALL_TERM', 'CMD_RESUME']) {
      const w = cmd(n, { SSec: 1 });
      expect(reasonOf(w, { stallModel: 0 })).toBe(`${n}: SSec=1 on the Non-secure Command queue`);
      expect(check(w, { stallModel: 0 }, SQ)).toEqual({ err: 0 });
    }
    expect(reasonOf(cmd('CMD_CFGI_ALL', { SSec: 1 }))).toBe('CMD_CFGI_ALL: SSec=1 on the Non-secure Command queue');
  });
  it('bit 10 of a command without SSec is just a reserved bit', () => {
    const w = cmd('CMD_TLBI_NH_ALL');
    w[0] |= 1 << 10;
    expect(check(w)).toEqual({ err: 0 });
    expect(reasonOf(w, {}, STRICT)).toContain('reserved bit [10] non-zero');
  });
});

describe('legality: implemented features', () => {
  it('stage-1 commands are CERROR_ILL when SMMU_IDR0.S1P=0', () => {
    for (const n of ['CMD_TLBI_NH_ALL', 'CMD_TLBI_NH_ASID', 'CMD_TLBI_NH_VA', 'CMD_TLBI_NH_VAA', 'CMD_CFGI_CD', 'CMD_CFGI_CD_ALL']) {
      expect(reasonOf(cmd(n), { s1p: false })).toBe(`${n}: stage 1 not implemented (SMMU_IDR0.S1P=0)`);
    }
    expect(check(cmd('CMD_TLBI_S12_VMALL'), { s1p: false }).err).toBe(0);
  });
  it('stage-2 commands are CERROR_ILL when SMMU_IDR0.S2P=0', () => {
    expect(reasonOf(cmd('CMD_TLBI_S2_IPA'), { s2p: false })).toBe('CMD_TLBI_S2_IPA: stage 2 not implemented (SMMU_IDR0.S2P=0)');
    expect(reasonOf(cmd('CMD_TLBI_S12_VMALL'), { s2p: false })).toBe('CMD_TLBI_S12_VMALL: stage 2 not implemented (SMMU_IDR0.S2P=0)');
    expect(check(cmd('CMD_TLBI_NH_ALL'), { s2p: false }).err).toBe(0);
  });
  it('CMD_TLBI_NSNH_ALL is legal on S1-only, S2-only and S1+S2 SMMUs', () => {
    for (const f of [{ s2p: false }, { s1p: false }, {}]) expect(check(cmd('CMD_TLBI_NSNH_ALL'), f).err).toBe(0);
  });
  it('EL2 commands are CERROR_ILL when SMMU_IDR0.Hyp=0', () => {
    for (const n of ['CMD_TLBI_EL2_ALL', 'CMD_TLBI_EL2_ASID', 'CMD_TLBI_EL2_VA', 'CMD_TLBI_EL2_VAA']) {
      expect(reasonOf(cmd(n), { hyp: false })).toBe(`${n}: EL2 StreamWorlds not implemented (SMMU_IDR0.Hyp=0)`);
      expect(check(cmd(n)).err).toBe(0);
    }
  });
  it('EL3 commands need RME_IMPL and the Secure queue', () => {
    for (const n of ['CMD_TLBI_EL3_ALL', 'CMD_TLBI_EL3_VA']) {
      expect(reasonOf(cmd(n), {}, SQ)).toBe(`${n}: EL3 StreamWorld not implemented (SMMU_IDR0.RME_IMPL=0)`);
      expect(reasonOf(cmd(n), { rme: true })).toBe(`${n}: EL3 command on the Non-secure Command queue`);
      expect(check(cmd(n), { rme: true }, SQ).err).toBe(0);
    }
  });
  it('CMD_CFGI_VMS_PIDM (0x07) is CERROR_ILL without MPAM on v3.2+', () => {
    const w = cmd('CMD_CFGI_VMS_PIDM', { VMID: 1 });
    expect(reasonOf(w)).toBe('CMD_CFGI_VMS_PIDM: requires SMMUv3.2+ with MPAM (SMMU_IDR3.MPAM=0, SMMU_AIDR.ArchMinorRev=2)');
    expect(check(w, { mpam: true, archMinor: 1 }).err).toBe(CERROR.ILL);
    expect(check(w, { mpam: true, archMinor: 2 }).err).toBe(0);
  });
  it('CMD_DPTI_* need SMMU_IDR3.DPT', () => {
    expect(reasonOf(cmd('CMD_DPTI_ALL'))).toBe('CMD_DPTI_ALL: Device Permission Table not implemented (SMMU_IDR3.DPT=0)');
    expect(check(cmd('CMD_DPTI_PA'), { dpt: true }).err).toBe(0);
  });
  it('CMD_ATC_INV is CERROR_ILL when SMMU_IDR0.ATS=0', () => {
    expect(reasonOf(cmd('CMD_ATC_INV'), { ats: false })).toBe('CMD_ATC_INV: ATS not implemented (SMMU_IDR0.ATS=0)');
  });
  it('CMD_PRI_RESP is CERROR_ILL when SMMU_IDR0.PRI=0 or Resp=0b11', () => {
    expect(reasonOf(cmd('CMD_PRI_RESP'), { pri: false })).toBe('CMD_PRI_RESP: PRI not implemented (SMMU_IDR0.PRI=0)');
    expect(reasonOf(cmd('CMD_PRI_RESP', { Resp: 3 }), { pri: true })).toBe('CMD_PRI_RESP: Resp=0b11 is Reserved (§4.5.2)');
    expect(check(cmd('CMD_PRI_RESP', { Resp: 2 }), { pri: true }).err).toBe(0);
  });
  it('CMD_RESUME / CMD_STALL_TERM are CERROR_ILL when SMMU_IDR0.STALL_MODEL=0b01', () => {
    for (const n of ['CMD_RESUME', 'CMD_STALL_TERM']) {
      expect(reasonOf(cmd(n), { stallModel: 1 })).toBe(`${n}: stalling not supported (SMMU_IDR0.STALL_MODEL=0b01)`);
      expect(check(cmd(n), { stallModel: 0 }).err).toBe(0);
      expect(check(cmd(n), { stallModel: 2 }).err).toBe(0);
    }
  });
  it('CMD_SYNC with CS=0b11 is CERROR_ILL; CS 0..2 are legal', () => {
    expect(reasonOf(cmd('CMD_SYNC', { CS: 3 }))).toBe('CMD_SYNC: CS=0b11 is Reserved (§4.7.3)');
    for (const cs of [0, 1, 2]) expect(check(cmd('CMD_SYNC', { CS: cs })).err).toBe(0);
  });
});

describe('legality: range invalidation (§4.4.1.1)', () => {
  const rangeOps = ['CMD_TLBI_NH_VA', 'CMD_TLBI_NH_VAA', 'CMD_TLBI_EL2_VA', 'CMD_TLBI_EL2_VAA', 'CMD_TLBI_S2_IPA'];
  it('TG!=0 with NUM=SCALE=TTL=0 is Reserved', () => {
    for (const n of rangeOps) {
      for (const tg of [1, 2, 3]) {
        expect(reasonOf(cmd(n, { TG: tg }))).toBe(`${n}: range TLBI with TG!=0 and NUM=SCALE=TTL=0 is Reserved (§4.4.1.1)`);
      }
      expect(check(cmd(n, { TG: 1, TTL: 3 })).err).toBe(0);
      expect(check(cmd(n, { TG: 1, NUM: 1 })).err).toBe(0);
      expect(check(cmd(n, { TG: 3, SCALE: 1 })).err).toBe(0);
    }
  });
  it('TG=16K with TTL=0b01 needs SMMU_IDR5.DS', () => {
    const w = cmd('CMD_TLBI_NH_VA', { TG: 2, TTL: 1 });
    expect(reasonOf(w)).toBe('CMD_TLBI_NH_VA: TG=16K with TTL=0b01 (level 1) requires SMMU_IDR5.DS=1 (§4.4.1.1)');
    expect(check(w, { ds: true }).err).toBe(0);
    expect(check(cmd('CMD_TLBI_NH_VA', { TG: 1, TTL: 1 })).err).toBe(0);
  });
  it('TG!=0 without SMMU_IDR3.RIL is a RES0 field: ignored, CERROR_ILL only with strictReserved', () => {
    const w = cmd('CMD_TLBI_NH_VA', { TG: 1 });
    expect(check(w, { ril: false }).err).toBe(0);
    expect(reasonOf(w, { ril: false }, STRICT)).toContain('range invalidation not implemented (SMMU_IDR3.RIL=0)');
  });
  it('NUM/SCALE/TTL with TG=0 are RES0: CERROR_ILL only with strictReserved', () => {
    const w = cmd('CMD_TLBI_NH_VA', { NUM: 2 });
    expect(check(w).err).toBe(0);
    expect(reasonOf(w, {}, STRICT)).toContain('with TG=0');
  });
  it('SCALE bit 25 is decoded as [24:20] and bit 25 only matters with strictReserved', () => {
    const w = cmd('CMD_TLBI_NH_VA', { TG: 1, NUM: 1 });
    w[0] |= 1 << 25;
    expect(cmdScale(w, 0)).toBe(0);
    expect(decodeCommand(w).fields.SCALE).toBe(0);
    expect(check(w).err).toBe(0);
    const r = reasonOf(w, {}, STRICT);
    expect(r).toContain('reserved bit [25] non-zero');
    expect(r).toContain('SCALE is [24:20]');
  });
});

describe('legality: reserved fields and 8-bit IDs', () => {
  it('non-zero reserved bits are ignored unless strictReserved', () => {
    const w = cmd('CMD_TLBI_S12_VMALL', { VMID: 1 });
    w[3] = 0x80000000;
    expect(check(w).err).toBe(0);
    expect(reasonOf(w, {}, STRICT)).toBe('CMD_TLBI_S12_VMALL: reserved bit [127] non-zero (RES0; detection is optional, §4.1.5)');
    expect(Array.from(reservedBitsSet(w))).toEqual([0, 0, 0, 0x80000000]);
  });
  it('IPA bits [55:52] are RES0 before v3.4 (strictReserved only)', () => {
    const w = cmd('CMD_TLBI_S2_IPA', { Address: 1n << 52n });
    expect(check(w).err).toBe(0);
    expect(reasonOf(w, {}, STRICT)).toContain('Address bits above PA[51]');
    expect(check(w, { archMinor: 4 }, STRICT).err).toBe(0);
  });
  it('VMID/ASID upper 8 bits on an 8-bit implementation are not illegal (explain notes them)', () => {
    const w = cmd('CMD_TLBI_NH_ASID', { VMID: 0x1ff, ASID: 0x1ff });
    const f8 = { vmid16: false, asid16: false };
    expect(check(w, f8).err).toBe(0);
    expect(check(w, f8, STRICT).err).toBe(0);
    const text = explainCommand(w, defaultFeatures(f8), NS);
    expect(text).toContain('VMID[15:8] non-zero with 8-bit VMIDs');
    expect(text).toContain('ASID[15:8] non-zero with 8-bit ASIDs');
  });
});

/** A random value for each field of d. */
function fieldsArb(d: CommandDef): fc.Arbitrary<Record<string, FieldValue>> {
  const rec: Record<string, fc.Arbitrary<FieldValue>> = {};
  for (const f of d.fields) {
    const width = f.msb - f.lsb + 1;
    rec[f.name] = f.shift !== undefined
      ? fc.bigInt({ min: 0n, max: (1n << BigInt(width)) - 1n }).map((v) => v << BigInt(f.shift!))
      : fc.integer({ min: 0, max: 2 ** width - 1 });
  }
  return fc.record(rec);
}

describe('round trip', () => {
  for (const d of ALL_COMMAND_DEFS) {
    it(`${d.name}: decode(encode(fields)) === fields and encode(decode(w)) === w`, () => {
      fc.assert(fc.property(fieldsArb(d), (fields) => {
        const w = encodeCommand({ op: d.op, fields });
        const back = decodeCommand(w);
        expect(back.op).toBe(d.op);
        expect(back.fields).toEqual(fields);
        expect(Array.from(encodeCommand(back))).toEqual(Array.from(w));
        expect(Array.from(reservedBitsSet(w))).toEqual([0, 0, 0, 0]);
      }), { seed: d.op, numRuns: 200 });
    });
  }

  it('every word legal under strictReserved round-trips exactly; others lose only reserved bits', () => {
    const u32 = fc.nat({ max: 0xffffffff });
    let legal = 0;
    fc.assert(fc.property(fc.constantFrom(...ALL_COMMAND_DEFS), u32, u32, u32, u32, fc.boolean(), fc.boolean(), (d, a, b, c, e, sq, clean) => {
      const w = new Uint32Array([((a & ~0xff) | d.op) >>> 0, b, c, e]);
      if (clean) {
        // Keep only the defined bits half of the time, so that legal words are common.
        const ones = new Uint32Array([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]);
        ones[0] = (0xffffff00 | d.op) >>> 0;
        const res = reservedBitsSet(ones);
        for (let i = 0; i < 4; i++) w[i] = (w[i] & ~res[i]) >>> 0;
      }
      const re = encodeCommand(decodeCommand(w));
      const res = reservedBitsSet(w);
      for (let i = 0; i < 4; i++) expect(re[i]).toBe((w[i] & ~res[i]) >>> 0);
      if (checkCommand(w, 0, EVERYTHING, { secureQueue: sq, strictReserved: true }).err === 0) {
        legal++;
        expect(Array.from(re)).toEqual(Array.from(w));
      }
    }), { seed: 1234, numRuns: 5000 });
    expect(legal).toBeGreaterThan(500);
  });
});

describe('parseEncodeSpec', () => {
  it('parses the documented example', () => {
    const w = parseEncodeSpec('CMD_TLBI_NH_VA vmid=5 asid=0x1234 addr=0xffff6000 leaf=1 tg=4k ttl=3 num=0 scale=0');
    expect(dw(w)).toEqual(['0x1234000500000012', '0x00000000ffff6701']);
  });
  it('accepts names without CMD_, any case, aliases and symbolic values', () => {
    expect(Array.from(parseEncodeSpec('tlbi_nh_va VMID=5 ASID=4660 Address=0xffff6000 Leaf=1 TG=1 TTL=0b11')))
      .toEqual(Array.from(parseEncodeSpec('CMD_TLBI_NH_VA vmid=5 asid=0x1234 addr=0xffff6000 leaf=1 tg=4k ttl=3')));
    expect(dw(parseEncodeSpec('sync cs=sev'))[0]).toBe('0x0000000000002046');
    expect(dw(parseEncodeSpec('sync cs=irq msh=ish msiattr=0xf msiaddr=0x8000_1040'))).toEqual(['0x000000000fc01046', '0x0000000080001040']);
    expect(decodeCommand(parseEncodeSpec('cfgi_all')).name).toBe('CMD_CFGI_ALL');
    expect(decodeCommand(parseEncodeSpec('CMD_CFGI_ALL')).name).toBe('CMD_CFGI_ALL');
    expect(decodeCommand(parseEncodeSpec('s2_ipa vmid=1')).name).toBe('CMD_TLBI_S2_IPA');
    expect(decodeCommand(parseEncodeSpec('Nh_Va')).name).toBe('CMD_TLBI_NH_VA');
    expect(cmdSid(parseEncodeSpec('cfgi_ste sid=0x10 leaf=1'), 0)).toBe(0x10);
    expect(cmdTg(parseEncodeSpec('tlbi_s2_ipa tg=64k ttl=3 ipa=0x10000'), 0)).toBe(3);
    expect(decodeCommand(parseEncodeSpec('pri_resp sid=1 prgi=3 resp=success')).fields.Resp).toBe(2);
  });
  it('gives one-line errors naming the key and the allowed range', () => {
    const err = (s: string): string => {
      try { parseEncodeSpec(s); } catch (e) { expect(e).toBeInstanceOf(CommandSyntaxError); return (e as Error).message; }
      throw new Error('no error for ' + s);
    };
    expect(err('CMD_TLBI_NH_VA vmid=0x10000')).toBe('vmid=0x10000 out of range for CMD_TLBI_NH_VA VMID [47:32] (0..0xffff)');
    expect(err('CMD_TLBI_NH_VA addr=0xffff6001')).toContain('addr=0xffff6001 must be 4 KiB aligned');
    expect(err('CMD_TLBI_NH_ALL asid=1')).toBe('unknown key "asid" for CMD_TLBI_NH_ALL (keys: vmid)');
    expect(err('CMD_TLBI_NH_VA tg=8k')).toContain('tg=8k: not a number');
    expect(err('CMD_FOO')).toContain('unknown command "CMD_FOO"');
    expect(err('CMD_SYNC cs')).toBe('expected key=value, got "cs"');
    expect(err('CMD_SYNC cs=1 cs=2')).toBe('key "cs" given twice');
    expect(err('')).toContain('empty command spec');
    expect(err('cfgi_all range=3')).toContain('CMD_CFGI_ALL has Range=31');
    expect(err('tlbi_s2_ipa addr=0x100000000000000')).toContain('56-bit address');
    for (const m of [err('CMD_TLBI_NH_VA vmid=0x10000'), err('CMD_FOO')]) expect(m).not.toContain('\n');
  });
  it('round-trips with explain for random fields of every command', () => {
    for (const d of ALL_COMMAND_DEFS) {
      fc.assert(fc.property(fieldsArb(d), (fields) => {
        const spec = [d.name, ...Object.entries(fields).map(([k, v]) => `${k.toLowerCase()}=0x${v.toString(16)}`)].join(' ');
        const w = parseEncodeSpec(spec);
        expect(Array.from(w)).toEqual(Array.from(encodeCommand({ op: d.op, fields })));
        const j = explainJson(w, EVERYTHING, SQ);
        expect(j.op).toBe(d.op);
        for (const [k, v] of Object.entries(fields)) {
          expect(j.fields[k]).toBe(typeof v === 'bigint' ? '0x' + v.toString(16) : v);
        }
        expect(explainCommand(w, EVERYTHING, SQ)).toContain(j.name);
      }), { seed: d.op + 100, numRuns: 30 });
    }
  });
});

describe('explainCommand / explainJson', () => {
  it('reads like the spec for a range CMD_TLBI_NH_VA', () => {
    const w = parseEncodeSpec('CMD_TLBI_NH_VA vmid=5 asid=0x1234 addr=0xffff6000 leaf=1 tg=4k ttl=3 num=7 scale=1');
    const t = explainCommand(w, defaultFeatures(), NS);
    expect(t.split('\n')[0]).toBe('CMD_TLBI_NH_VA (opcode 0x12)');
    expect(t).toContain('value   0x00000000ffff6701_1234000500107012');
    expect(t).toMatch(/TG\s+\[75:74\]\s+0x1\s+4K granule/);
    expect(t).toMatch(/Leaf\s+\[64\]\s+0x1\s+last level only/);
    // (7+1)*2^1 = 16 granules of 4K = 64 KiB
    expect(t).toContain('16 x 4K granules = 64 KiB: VA 0xffff6000..0x100005fff, level-3 leaves only');
    expect(t).toContain('plus global entries');
    expect(t.endsWith('\n  legal')).toBe(true);
  });
  it('explains CERROR_ILL with the reason', () => {
    const t = explainCommand(cmd('CMD_TLBI_S2_IPA', { VMID: 1 }), defaultFeatures({ s2p: false }), NS);
    expect(t.endsWith('CERROR_ILL: CMD_TLBI_S2_IPA: stage 2 not implemented (SMMU_IDR0.S2P=0)')).toBe(true);
  });
  it('names CS, MSH, ATC_INV span, CFGI_STE_RANGE span and reserved opcodes', () => {
    expect(explainCommand(cmd('CMD_SYNC', { CS: 2, MSH: 3 }), defaultFeatures(), NS)).toMatch(/SIG_SEV[\s\S]*Inner Shareable/);
    expect(explainCommand(cmd('CMD_ATC_INV', { Size: 52 }), defaultFeatures(), NS)).toContain('everything');
    expect(explainCommand(cmd('CMD_ATC_INV', { Size: 1, Address: 0x3000n }), defaultFeatures(), NS)).toContain('8 KiB: 0x2000..0x3fff');
    expect(explainCommand(cmd('CMD_CFGI_STE_RANGE', { StreamID: 0x13, Range: 2 }), defaultFeatures(), NS)).toContain('8 StreamIDs 0x10..0x17');
    expect(explainCommand(cmd('CMD_CFGI_ALL'), defaultFeatures(), NS)).toContain('CMD_CFGI_ALL (opcode 0x04, CMD_CFGI_STE_RANGE with Range=31)');
    expect(explainCommand(new Uint32Array([0x08, 0, 0, 0]), defaultFeatures(), NS)).toContain('CERROR_ILL: opcode 0x08 is Reserved');
  });
  it('explainJson is JSON-able with bigints as hex strings', () => {
    const j = explainJson(cmd('CMD_TLBI_NH_VA', { Address: 0xffff800012345000n, TG: 1, TTL: 3 }), defaultFeatures(), NS);
    expect(JSON.parse(JSON.stringify(j))).toEqual(j);
    expect(j.fields.Address).toBe('0xffff800012345000');
    expect(j.legal).toBe(true);
    expect(j.cerror).toBe('CERROR_NONE');
    const bad = explainJson(cmd('CMD_SYNC', { CS: 3 }), defaultFeatures(), NS);
    expect(bad.legal).toBe(false);
    expect(bad.cerror).toBe('CERROR_ILL');
    expect(bad.reason).toBe('CMD_SYNC: CS=0b11 is Reserved (§4.7.3)');
  });
});

describe('btmsim explain (registerExplain)', () => {
  async function run(...args: string[]): Promise<string> {
    let out = '';
    const program = new Command('btmsim').exitOverride().configureOutput({ writeOut: (s) => { out += s; }, writeErr: () => {} });
    registerExplain(program);
    await program.parseAsync(['explain', ...args], { from: 'user' });
    return out;
  }

  it('decodes one 32-digit value and two driver-order dwords to the same text', async () => {
    const a = await run('0x00000000ffff6701_1234000500000012');
    const b = await run('0x1234000500000012', '0x00000000ffff6701');
    expect(a).toBe(b);
    expect(a).toContain('CMD_TLBI_NH_VA (opcode 0x12)');
    expect(a.trimEnd().endsWith('legal')).toBe(true);
  });
  it('prints JSON with --json', async () => {
    const j = JSON.parse(await run('--json', '00000000000000000000000000002046'));
    expect(j.name).toBe('CMD_SYNC');
    expect(j.fields.CS).toBe(2);
  });
  it('--encode prints the value, the dwords and the explanation', async () => {
    const t = await run('--encode', 'CMD_TLBI_NH_VA vmid=5 asid=0x1234 addr=0xffff6000 leaf=1 tg=4k ttl=3 num=0 scale=0');
    expect(t.startsWith('encoded: 0x00000000ffff67011234000500000012\ndwords:  0x1234000500000012 0x00000000ffff6701\n')).toBe(true);
    const j = JSON.parse(await run('--json', '--encode', 'cfgi_all'));
    expect(j.value).toBe('0x000000000000001f0000000000000004');
  });
  it('--features and --secure-queue change legality; an illegal command is not an error', async () => {
    const t = await run('--features', 's1p=0,s2p=1', '0x00000000000000000000000000000010');
    expect(t).toContain('CERROR_ILL: CMD_TLBI_NH_ALL: stage 1 not implemented (SMMU_IDR0.S1P=0)');
    expect(await run('00000000000000000000000000000060')).toContain('Secure-only command');
    expect(await run('--secure-queue', '00000000000000000000000000000060')).toMatch(/\n {2}legal\n$/);
  });
  it('bad input throws a one-line UserError', async () => {
    await expect(run('xyz')).rejects.toThrow(new UserError('explain: expected 32 hex digits or two 64-bit words, got "xyz"'));
    await expect(run()).rejects.toThrow(UserError);
    await expect(run('--encode', 'CMD_TLBI_NH_VA vmid=70000')).rejects.toThrow(/^explain --encode: vmid=70000 out of range/);
    await expect(run('--features', 'bogus=1', '0x' + '0'.repeat(31) + '1')).rejects.toThrow(/unknown key "bogus"/);
    await expect(run('--encode', 'sync', '0x' + '0'.repeat(32))).rejects.toThrow(/not both/);
  });
  it('parseFeatures overrides defaultFeatures or builds from ID registers', () => {
    expect(parseFeatures('s1p=0,ril=false,stall_model=0,archMinor=3')).toEqual(defaultFeatures({ s1p: false, ril: false, stallModel: 0, archMinor: 3 }));
    // IDR0 0x094C100F (gem5 default): S1P, S2P, no Hyp, no BTM
    const g = parseFeatures('idr0=0x094C100F,idr5=0x55');
    expect(g.s1p && g.s2p).toBe(true);
    expect(g.hyp || g.btm || g.ril).toBe(false);
    expect(() => parseFeatures('archMinor=9')).toThrow(UserError);
  });
});
