/**
 * Command queue behaviour (arch.md §1.1-1.2; SMMUv3 §4.1.2-4.1.3, §6.3.12, §6.3.19-20, §6.3.26-28,
 * §7.1): CERROR_ILL stops consumption at the offending command, GERROR/GERRORN handshake, Linux's
 * __arm_smmu_cmdq_skip_err recovery, PROD/CONS wrap, cmdqSpace, CR2 write rules and RES0 fields,
 * and a seeded fuzz test of random 128-bit commands.
 */
import { describe, expect, it } from 'vitest';
import { OP, checkCommand, writeSync } from '../../src/arch/commands.js';
import {
  CERROR, CMDQ_CONS, CR0, CR2, GERROR, IDR0, IDR1, REG, getField, setField,
} from '../../src/arch/registers.js';
import { World } from '../../src/arch/world.js';
import { SmmuStat, defaultSmmuParams, type Smmu } from '../../src/hw/smmu/smmu.js';
import { Prng } from '../../src/sim/prng.js';
import {
  cfgiCmd, cmds, consRd, enableSmmu, fillNamed, idr0With, makeSystem, syncCmd, tlbiCmd, type SysOpts,
} from './fixtures.js';

const NSNH_ALL = () => tlbiCmd(OP.CMD_TLBI_NSNH_ALL);

function raw(w0: number, w1 = 0, w2 = 0, w3 = 0): Uint32Array {
  return Uint32Array.of(w0 >>> 0, w1 >>> 0, w2 >>> 0, w3 >>> 0);
}

/** An SMMU whose TLB holds two NS-EL1 entries, so we can see whether NSNH_ALL ran. */
function withEntries(o: SysOpts = {}): { smmu: Smmu; names: string[] } {
  const { smmu } = makeSystem(o);
  const names = fillNamed(smmu.tlb, { a: { vmid: 1, asid: 1, page: 0x10 }, b: { vmid: 2, asid: 2, page: 0x20 } });
  return { smmu, names };
}

const gerrorActive = (smmu: Smmu) => ((smmu.readReg(REG.GERROR) ^ smmu.readReg(REG.GERRORN)) >>> GERROR.CMDQ_ERR) & 1;
const consErr = (smmu: Smmu) => getField(smmu.readReg(REG.CMDQ_CONS), CMDQ_CONS.ERR);

/** Linux __arm_smmu_cmdq_skip_err for CERROR_ILL: overwrite the command at CONS.RD with a CMD_SYNC, then ack. */
function skipErr(smmu: Smmu): void {
  const size = 1 << smmu.cmdqLog2Size;
  const idx = getField(smmu.readReg(REG.CMDQ_CONS), CMDQ_CONS.RD) & (size - 1);
  writeSync(smmu.ring, idx * 4, 0, 3, 0xf, 0, 0);
  smmu.writeReg(REG.GERRORN, smmu.readReg(REG.GERROR)); // toggle GERRORN.CMDQ_ERR to match
}

interface Illegal { what: string; cmd: Uint32Array; smmu?: SysOpts['smmu'] }

const ILLEGAL: Illegal[] = [
  { what: 'reserved opcode 0x00', cmd: raw(0x00) },
  { what: 'reserved opcode 0x08', cmd: raw(0x08) },
  { what: 'reserved opcode 0xff', cmd: raw(0xff, 0xffffffff, 0xffffffff, 0xffffffff) },
  { what: 'IMPLEMENTATION DEFINED opcode 0x80 (none implemented)', cmd: raw(0x80) },
  { what: 'CMD_CFGI_VMS_PIDM (0x07) without MPAM', cmd: raw(OP.CMD_CFGI_VMS_PIDM) },
  { what: 'SSec=1 on the Non-secure queue (CFGI_STE)', cmd: raw(OP.CMD_CFGI_STE | (1 << 10), 3) },
  { what: 'SSec=1 on the Non-secure queue (PREFETCH_CONFIG)', cmd: raw(OP.CMD_PREFETCH_CONFIG | (1 << 10), 3) },
  { what: 'Secure-only command (CMD_TLBI_S_EL2_ALL) on the Non-secure queue', cmd: raw(OP.CMD_TLBI_S_EL2_ALL) },
  { what: 'CMD_TLBI_EL3_ALL on the Non-secure queue', cmd: raw(OP.CMD_TLBI_EL3_ALL) },
  { what: 'CMD_TLBI_NH_ALL on a stage-2-only SMMU', cmd: tlbiCmd(OP.CMD_TLBI_NH_ALL, { vmid: 1 }), smmu: { idr0: idr0With({ S1P: 0 }) } },
  { what: 'CMD_TLBI_NH_VA on a stage-2-only SMMU', cmd: tlbiCmd(OP.CMD_TLBI_NH_VA, { vmid: 1, asid: 1, page: 0x10 }), smmu: { idr0: idr0With({ S1P: 0 }) } },
  { what: 'CMD_CFGI_CD on a stage-2-only SMMU', cmd: cfgiCmd(OP.CMD_CFGI_CD, 1, 0, 1), smmu: { idr0: idr0With({ S1P: 0 }) } },
  { what: 'CMD_TLBI_S12_VMALL on a stage-1-only SMMU', cmd: tlbiCmd(OP.CMD_TLBI_S12_VMALL, { vmid: 1 }), smmu: { idr0: idr0With({ S2P: 0 }) } },
  { what: 'CMD_TLBI_S2_IPA on a stage-1-only SMMU', cmd: tlbiCmd(OP.CMD_TLBI_S2_IPA, { vmid: 1, page: 0x10 }), smmu: { idr0: idr0With({ S2P: 0 }) } },
  { what: 'range CMD_TLBI_NH_VA with TG=4K and NUM=SCALE=TTL=0 (Reserved)', cmd: tlbiCmd(OP.CMD_TLBI_NH_VA, { vmid: 1, asid: 1, page: 0x10, tg: 1 }) },
  { what: 'range CMD_TLBI_S2_IPA with TG=64K and NUM=SCALE=TTL=0 (Reserved)', cmd: tlbiCmd(OP.CMD_TLBI_S2_IPA, { vmid: 1, page: 0x10, tg: 3 }) },
  { what: 'range TG=16K with TTL=1 without IDR5.DS', cmd: tlbiCmd(OP.CMD_TLBI_NH_VAA, { vmid: 1, page: 0x10, tg: 2, ttl: 1 }) },
  { what: 'CMD_SYNC with CS=0b11', cmd: syncCmd(3) },
  { what: 'CMD_TLBI_EL2_ALL without IDR0.Hyp', cmd: tlbiCmd(OP.CMD_TLBI_EL2_ALL), smmu: { idr0: idr0With({ HYP: 0 }) } },
  { what: 'CMD_TLBI_EL2_VA without IDR0.Hyp', cmd: tlbiCmd(OP.CMD_TLBI_EL2_VA, { asid: 1, page: 0x10 }), smmu: { idr0: idr0With({ HYP: 0 }) } },
  // Regression (SMMUv3 §6.3.1, arch.md §2.1): Hyp is RES0 unless S1P && S2P; defaultSmmuParams sets Hyp=1.
  { what: 'CMD_TLBI_EL2_ALL on a stage-1-only SMMU whose params still say Hyp=1 (Hyp RES0 unless S1P&&S2P)', cmd: tlbiCmd(OP.CMD_TLBI_EL2_ALL), smmu: { idr0: idr0With({ S2P: 0 }) } },
  { what: 'CMD_ATC_INV without IDR0.ATS', cmd: raw(OP.CMD_ATC_INV, 1), smmu: { idr0: idr0With({ ATS: 0 }) } },
  { what: 'CMD_PRI_RESP without IDR0.PRI', cmd: raw(OP.CMD_PRI_RESP, 1) },
  { what: 'CMD_RESUME with STALL_MODEL=0b01', cmd: raw(OP.CMD_RESUME, 1) },
];

describe('§1.2 / §4.1.3 CERROR_ILL', () => {
  for (const ill of ILLEGAL) {
    it(`stops at: ${ill.what}`, () => {
      const { smmu, names } = withEntries({ smmu: ill.smmu });
      const base = consRd(smmu);
      const syncs = smmu.stats[SmmuStat.SYNCS];
      // [SYNC] [illegal] [NSNH_ALL] [SYNC]
      expect(smmu.submit(cmds(syncCmd(), ill.cmd, NSNH_ALL(), syncCmd()), 0, 4)).toBe(true);
      // 1. Consumption stopped with CONS.RD pointing at the offending command.
      expect(consRd(smmu)).toBe(base + 1);
      expect(smmu.stats[SmmuStat.SYNCS]).toBe(syncs + 1); // the command before it ran
      // 2. CMDQ_CONS.ERR = CERROR_ILL in bits [30:24].
      expect(consErr(smmu)).toBe(CERROR.ILL);
      expect((smmu.readReg(REG.CMDQ_CONS) >>> 24) & 0x7f).toBe(1);
      // 3. GERROR.CMDQ_ERR toggled so that it differs from GERRORN.
      expect(smmu.readReg(REG.GERROR) & 1).toBe(1);
      expect(gerrorActive(smmu)).toBe(1);
      expect(smmu.stats[SmmuStat.CERRORS]).toBe(1);
      // 4. Later commands not executed.
      expect(smmu.tlb.size).toBe(names.length);
      // Writing PROD again (or enabling CMDQEN again) does not resume.
      smmu.writeReg(REG.CMDQ_PROD, smmu.readReg(REG.CMDQ_PROD));
      smmu.writeReg(REG.CR0, smmu.readReg(REG.CR0));
      expect(consRd(smmu)).toBe(base + 1);
      expect(smmu.tlb.size).toBe(names.length);
      // Linux: replace the command with CMD_SYNC, ack by toggling GERRORN.CMDQ_ERR → resumes.
      skipErr(smmu);
      expect(gerrorActive(smmu)).toBe(0);
      expect(consRd(smmu)).toBe(smmu.readReg(REG.CMDQ_PROD));
      expect(smmu.tlb.size).toBe(0); // NSNH_ALL ran
      expect(smmu.stats[SmmuStat.SYNCS]).toBe(syncs + 3);
      expect(smmu.stats[SmmuStat.CERRORS]).toBe(1);
    });
  }

  it('GERROR.CMDQ_ERR toggles on every error (1 then 0); error active means GERROR != GERRORN', () => {
    const { smmu } = withEntries();
    smmu.submit(cmds(raw(0x08), raw(0x09), syncCmd()), 0, 3);
    expect([smmu.readReg(REG.GERROR) & 1, smmu.readReg(REG.GERRORN) & 1]).toEqual([1, 0]);
    skipErr(smmu);
    // The second illegal command is found at once after the ack.
    expect([smmu.readReg(REG.GERROR) & 1, smmu.readReg(REG.GERRORN) & 1]).toEqual([0, 1]);
    expect(gerrorActive(smmu)).toBe(1);
    expect(consErr(smmu)).toBe(CERROR.ILL);
    skipErr(smmu);
    expect(gerrorActive(smmu)).toBe(0);
    expect(consRd(smmu)).toBe(3);
    expect(smmu.stats[SmmuStat.CERRORS]).toBe(2);
  });

  it('acknowledging without fixing the command re-fetches it and fails again', () => {
    const { smmu } = withEntries();
    smmu.submit(cmds(raw(0x08), NSNH_ALL()), 0, 2);
    smmu.writeReg(REG.GERRORN, smmu.readReg(REG.GERROR));
    expect(gerrorActive(smmu)).toBe(1);
    expect(consRd(smmu)).toBe(0);
    expect(smmu.stats[SmmuStat.CERRORS]).toBe(2);
    expect(smmu.tlb.size).toBe(2);
  });

  it('§4.1.2: nothing is consumed while CMDQEN=0; turning CMDQEN off and on does not acknowledge an error', () => {
    const { smmu } = withEntries({ disabled: true });
    smmu.writeReg(REG.CR0, setField(0, CR0.SMMUEN, 1));
    smmu.submit(cmds(raw(0x08), NSNH_ALL()), 0, 2);
    expect(consRd(smmu)).toBe(0);
    expect(gerrorActive(smmu)).toBe(0);
    smmu.writeReg(REG.CR0, setField(setField(0, CR0.SMMUEN, 1), CR0.CMDQEN, 1));
    expect(gerrorActive(smmu)).toBe(1);
    smmu.writeReg(REG.CR0, setField(0, CR0.SMMUEN, 1));
    smmu.writeReg(REG.CR0, setField(setField(0, CR0.SMMUEN, 1), CR0.CMDQEN, 1));
    expect(gerrorActive(smmu)).toBe(1);
    expect(smmu.stats[SmmuStat.CERRORS]).toBe(1);
    expect(smmu.tlb.size).toBe(2);
  });

  it('every illegal case is also CERROR_ILL for checkCommand with the SMMU\'s features (same rule)', () => {
    for (const ill of ILLEGAL) {
      const { smmu } = makeSystem({ smmu: ill.smmu });
      expect(checkCommand(ill.cmd, 0, smmu.features, { secureQueue: false }).err, ill.what).toBe(CERROR.ILL);
    }
  });
});

describe('§1.1 queue mechanics', () => {
  const small = (log2: number): SysOpts => ({ smmu: { idr1: setField(defaultSmmuParams().idr1, IDR1.CMDQS, log2) } });

  it('PROD/CONS wrap: many submissions round an 8-entry queue, the wrap bit flips every 8', () => {
    const { smmu } = makeSystem(small(3));
    expect(smmu.cmdqLog2Size).toBe(3);
    const prods: number[] = [];
    for (let i = 0; i < 50; i++) {
      expect(smmu.submit(i % 2 === 0 ? syncCmd() : NSNH_ALL(), 0, 1)).toBe(true);
      prods.push(smmu.readReg(REG.CMDQ_PROD));
      expect(consRd(smmu)).toBe(smmu.readReg(REG.CMDQ_PROD));
      expect(smmu.cmdqSpace()).toBe(8);
    }
    expect(prods.slice(0, 17)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1]);
    expect(prods[7] >>> 3).toBe(1); // index 0 with wrap bit set
    expect(smmu.stats[SmmuStat.SYNCS]).toBe(25);
    expect(smmu.commandsByOpcode[OP.CMD_TLBI_NSNH_ALL]).toBe(25);
  });

  it('wrap with batches straddling the end of the ring, with the default 256-entry queue', () => {
    const { smmu } = makeSystem();
    const size = 1 << smmu.cmdqLog2Size;
    expect(size).toBe(256);
    let total = 0;
    for (let i = 0; i < 40; i++) {
      const n = 1 + ((i * 37) % 60);
      const batch = cmds(...Array.from({ length: n }, (_, k) => (k % 3 === 0 ? syncCmd() : cfgiCmd(OP.CMD_CFGI_STE, k))));
      expect(smmu.submit(batch, 0, n)).toBe(true);
      total += n;
      expect(consRd(smmu)).toBe(total % (2 * size));
    }
    expect(smmu.stats[SmmuStat.COMMANDS]).toBe(total);
    expect(total).toBeGreaterThan(4 * size);
  });

  it('cmdqSpace: fills while CMDQEN=0, full = same index and different wrap, submit refuses, enabling drains', () => {
    const { smmu } = makeSystem({ ...small(3), disabled: true });
    smmu.writeReg(REG.CR0, setField(0, CR0.SMMUEN, 1));
    expect(smmu.cmdqSpace()).toBe(8);
    expect(smmu.submit(cmds(syncCmd(), syncCmd(), syncCmd()), 0, 3)).toBe(true);
    expect(smmu.cmdqSpace()).toBe(5);
    expect(smmu.submit(cmds(...Array.from({ length: 6 }, () => syncCmd())), 0, 6)).toBe(false);
    expect(smmu.submit(cmds(...Array.from({ length: 5 }, () => syncCmd())), 0, 5)).toBe(true);
    expect(smmu.cmdqSpace()).toBe(0);
    const prod = smmu.readReg(REG.CMDQ_PROD);
    const cons = consRd(smmu);
    expect(prod & 7).toBe(cons & 7);
    expect(prod >>> 3).not.toBe(cons >>> 3);
    expect(smmu.submit(syncCmd(), 0, 1)).toBe(false);
    smmu.writeReg(REG.CR0, setField(setField(0, CR0.SMMUEN, 1), CR0.CMDQEN, 1));
    expect(smmu.cmdqSpace()).toBe(8);
    expect(smmu.stats[SmmuStat.SYNCS]).toBe(8);
  });

  it('cmdqSpace counts entries stuck behind an error', () => {
    const { smmu } = makeSystem(small(3));
    smmu.submit(cmds(syncCmd(), raw(0x08), syncCmd(), syncCmd()), 0, 4);
    expect(smmu.cmdqSpace()).toBe(5);
    skipErr(smmu);
    expect(smmu.cmdqSpace()).toBe(8);
  });
});

describe('§2.6 / §6.3.12 SMMU_CR2', () => {
  it('writes are ignored (and counted) while SMMUEN=1, and take effect once disabled', () => {
    const { smmu } = makeSystem({ ptm: 0, e2h: 0 });
    expect(smmu.ptm).toBe(false);
    smmu.writeReg(REG.CR2, setField(setField(0, CR2.PTM, 1), CR2.E2H, 1));
    expect(smmu.readReg(REG.CR2) & 0b101).toBe(0);
    expect(smmu.stats[SmmuStat.CR2_WRITES_IGNORED]).toBe(1);
    // CR0.SMMUEN=0 (and so CR0ACK.SMMUEN=0): writable again.
    smmu.writeReg(REG.CR0, setField(0, CR0.CMDQEN, 1));
    smmu.writeReg(REG.CR2, setField(setField(0, CR2.PTM, 1), CR2.E2H, 1));
    expect([smmu.ptm, smmu.e2h]).toEqual([true, true]);
    expect(smmu.stats[SmmuStat.CR2_WRITES_IGNORED]).toBe(1);
  });

  it('PTM has reset value 1 (Arm recommendation) with BTM; with BTM=0 it is RES0 (reset included)', () => {
    const { smmu } = makeSystem({ disabled: true });
    expect(smmu.ptm).toBe(true);
    const { smmu: noBtm } = makeSystem({ disabled: true, smmu: { idr0: idr0With({ BTM: 0 }) } });
    // Regression (§6.3.12; arch.md §2.6): the reset value used to read PTM=1 without BTM.
    expect(getField(noBtm.readReg(REG.CR2), CR2.PTM)).toBe(0);
    noBtm.writeReg(REG.CR2, setField(0, CR2.PTM, 1));
    expect(getField(noBtm.readReg(REG.CR2), CR2.PTM)).toBe(0);
  });

  it('E2H is RES0 without IDR0.Hyp (and Hyp itself is RES0 unless S1P && S2P)', () => {
    const { smmu } = makeSystem({ disabled: true, smmu: { idr0: idr0With({ HYP: 0 }) } });
    smmu.writeReg(REG.CR2, setField(0, CR2.E2H, 1));
    expect(smmu.e2h).toBe(false);
    for (const over of [{ S1P: 0 }, { S2P: 0 }]) {
      const { smmu: s } = makeSystem({ disabled: true, smmu: { idr0: idr0With(over) } });
      expect(getField(s.readReg(REG.IDR0), IDR0.HYP), JSON.stringify(over)).toBe(0);
      expect(s.features.hyp).toBe(false);
      s.writeReg(REG.CR2, setField(0, CR2.E2H, 1));
      expect(s.e2h).toBe(false);
    }
  });

  it('RES0 bits [31:4] (and REC_CFG_ATS without ATSRECERR) read as zero', () => {
    const { smmu } = makeSystem({ disabled: true });
    smmu.writeReg(REG.CR2, 0xfffffff0 | setField(0, CR2.RECINVSID, 1) | setField(0, CR2.REC_CFG_ATS, 1));
    expect(smmu.readReg(REG.CR2)).toBe(setField(0, CR2.RECINVSID, 1));
    const { smmu: rec } = makeSystem({ disabled: true, smmu: { idr0: idr0With({ ATSRECERR: 1 }) } });
    rec.writeReg(REG.CR2, setField(0, CR2.REC_CFG_ATS, 1));
    expect(getField(rec.readReg(REG.CR2), CR2.REC_CFG_ATS)).toBe(1);
  });

  it('PTM takes effect on broadcasts: PTM=1 (after re-enable) makes the SMMU ignore them by default', () => {
    const { sys, smmu } = makeSystem({ ptm: 0 });
    expect(smmu.takesBroadcasts).toBe(true);
    smmu.writeReg(REG.CR0, 0);
    enableSmmu(smmu, 1);
    expect(smmu.takesBroadcasts).toBe(false);
    expect(sys.pes.length).toBe(2);
  });
});

describe('fuzz: random 128-bit commands through the queue (seeded)', () => {
  it('≥100,000 words: nothing throws; every word is consumed or reported as CERROR_ILL at CONS.RD', () => {
    const N = 100_000;
    const BATCH = 48;
    const prng = new Prng(0xb7a5eed, 7);
    const { smmu } = makeSystem();
    const size = 1 << smmu.cmdqLog2Size;
    const opcodes = Object.values(OP);
    const refill = () => {
      smmu.tlb.clear();
      fillNamed(smmu.tlb, {
        a: { vmid: 1, asid: 1, page: 0x10 }, b: { vmid: 2, global: true, page: 0x11 },
        c: { world: World.NS_EL2_E2H, asid: 3, page: 0x12 }, d: { stage: 2, vmid: 1, page: 0x10 },
        e: { world: World.NS_EL2, page: 0x40000, sizeLog2: 9, level: 2 },
      });
    };
    refill();
    const words = new Uint32Array(BATCH * 4);
    /** Submitted words by queue index (index & (size-1)) for the listener to check against. */
    const submitted = new Uint32Array(size * 4);
    let expectedIll = 0;
    let reported = 0;
    let mismatches = 0;
    smmu.listener = {
      onCommandError(_s, err, _reason, ring, off) {
        reported++;
        if (err !== CERROR.ILL) mismatches++;
        for (let k = 0; k < 4; k++) if (ring[off + k] !== submitted[off + k]) mismatches++;
        if (checkCommand(ring, off, smmu.features, { secureQueue: false }).err !== CERROR.ILL) mismatches++;
      },
    };
    let done = 0;
    while (done < N) {
      const n = Math.min(BATCH, N - done);
      for (let i = 0; i < n; i++) {
        const o = i * 4;
        for (let k = 0; k < 4; k++) words[o + k] = prng.nextU32();
        const r = prng.next();
        if (r < 0.6) {
          // A valid opcode with random fields: exercises the executors, not only the opcode check.
          words[o] = ((words[o] & ~0xff) | opcodes[prng.int(opcodes.length)]) >>> 0;
          if (prng.chance(0.5)) words[o] &= ~(1 << 10); // SSec=0 half of the time
          if (prng.chance(0.3)) words[o + 2] &= ~(3 << 10); // TG=0 (no range)
        }
        if (checkCommand(words, o, smmu.features, { secureQueue: false }).err !== 0) expectedIll++;
      }
      const prod = smmu.readReg(REG.CMDQ_PROD);
      for (let i = 0; i < n; i++) {
        const idx = ((prod + i) & (size - 1)) * 4;
        for (let k = 0; k < 4; k++) submitted[idx + k] = words[i * 4 + k];
      }
      // Plain checks in the loop (expect() per batch would dominate the run time).
      if (!smmu.submit(words, 0, n)) throw new Error('queue full');
      let guard = 0;
      while (smmu.cmdqErrorActive) {
        if (consErr(smmu) !== CERROR.ILL) mismatches++;
        skipErr(smmu);
        if (++guard > n) throw new Error('error loop');
      }
      if (consRd(smmu) !== smmu.readReg(REG.CMDQ_PROD)) mismatches++;
      done += n;
      if (smmu.tlb.size < 2) refill();
    }
    expect(mismatches).toBe(0);
    expect(reported).toBe(expectedIll);
    // Every word was executed itself or replaced by a CMD_SYNC that was: one command per word.
    expect(smmu.stats[SmmuStat.COMMANDS]).toBe(N);
    expect(smmu.stats[SmmuStat.CERRORS]).toBe(expectedIll);
    expect(expectedIll).toBeGreaterThan(N / 10);
    expect(N - expectedIll).toBeGreaterThan(N / 10);
  });
});
