/**
 * SMMU commands (arch.md §1.5), submitted through the real command queue (smmu.submit with words
 * from writeTlbi / writeCfgi / writeAtcInv) and followed by CMD_SYNC:
 *  - one table-driven test per TLBI command against the fixed population of fixtures.ts; commands
 *    ignore CD.ASET (§1.5, §2.10) and never touch other worlds;
 *  - CFGI_* invalidate only the configuration cache, never the TLB;
 *  - CMD_ATC_INV reaches the ATC while broadcasts (and TLBI commands) never do (§4.5.1).
 */
import { describe, expect, it } from 'vitest';
import { OP, writeAtcInv } from '../../src/arch/commands.js';
import { TLBI } from '../../src/arch/tlbi.js';
import type { SmmuKnobs } from '../../src/hw/knobs.js';
import { tableBase } from '../../src/hw/memory.js';
import { CR0, REG, setField } from '../../src/arch/registers.js';
import { SmmuCache, SmmuStat, type Smmu } from '../../src/hw/smmu/smmu.js';
import { EATS, newCd, newSte, STE_CONFIG } from '../../src/hw/smmu/structures.js';
import { newTlbiArgs } from '../../src/hw/tlbi-scope.js';
import {
  A, A2, B, P, R_START, REGIME, V, V2, cfgiCmd, fillNamed, idr0With, makeSystem, population, removed, submitAndSync,
  tlbiCmd,
} from './fixtures.js';

const L1_V_VA = [
  'L1.own', 'L1.aset1', 'L1.asid2', 'L1.glob', 'L1.glob.aset1', 'L1.r', 'L1.far', 'L1.block', 'L1.walk',
  'L1.g64k', 'L1.nested', 'L1.nested.aset1', 'L1.nested.far',
];
const L1_V_S2 = ['L1.s2', 'L1.s2.far', 'L1.s2.walk'];
const ALL_L1 = [...L1_V_VA, ...L1_V_S2, 'L1.vmid2', 'L1.vmid0', 'L1.s2.vmid2'];
const ALL_L2 = ['L2.p', 'L2.aset1', 'L2.far', 'L2.walk'];
const ALL_E2H = ['E2H.own', 'E2H.aset1', 'E2H.asid2', 'E2H.glob', 'E2H.glob.aset1', 'E2H.far', 'E2H.walk'];

type F = NonNullable<Parameters<typeof tlbiCmd>[1]>;
interface Case { cmd: string; what: string; op: number; f: F; e2h?: 0 | 1; knobs?: Partial<SmmuKnobs>; removed: string[] }

/** Range over [R_START, R_START+32): TG=4K with NUM=31,SCALE=0 or NUM=15,SCALE=1 ((NUM+1)*2^SCALE granules, §4.4.1.1). */
const RANGE = { page: R_START, tg: 1, num: 31, scale: 0 };
const RANGE_SCALED = { page: R_START, tg: 1, num: 15, scale: 1 };

const CASES: Case[] = [
  { cmd: 'CMD_TLBI_NH_ALL', what: 'VMID 5: all stage-1/combined NS-EL1 entries of the VMID, ASET ignored', op: OP.CMD_TLBI_NH_ALL, f: { vmid: V }, removed: L1_V_VA },
  { cmd: 'CMD_TLBI_NH_ALL', what: 'VMID 6: only that VMID', op: OP.CMD_TLBI_NH_ALL, f: { vmid: V2 }, removed: ['L1.vmid2'] },
  { cmd: 'CMD_TLBI_NH_ALL', what: 'knob nhAllHitsS2: stage-2 entries of the VMID too', op: OP.CMD_TLBI_NH_ALL, f: { vmid: V }, knobs: { nhAllHitsS2: true }, removed: [...L1_V_VA, ...L1_V_S2] },
  { cmd: 'CMD_TLBI_NH_ASID', what: 'non-global, ASID 0x21, VMID 5, ASET=1 included', op: OP.CMD_TLBI_NH_ASID, f: { vmid: V, asid: A }, removed: ['L1.own', 'L1.aset1', 'L1.r', 'L1.far', 'L1.block', 'L1.walk', 'L1.g64k', 'L1.nested', 'L1.nested.aset1', 'L1.nested.far'] },
  { cmd: 'CMD_TLBI_NH_VA', what: 'Leaf=0: VA+ASID and global by VA, walk entries, ASET=1 included', op: OP.CMD_TLBI_NH_VA, f: { vmid: V, asid: A, page: P }, removed: ['L1.own', 'L1.aset1', 'L1.glob', 'L1.glob.aset1', 'L1.block', 'L1.walk', 'L1.g64k', 'L1.nested', 'L1.nested.aset1'] },
  { cmd: 'CMD_TLBI_NH_VA', what: 'Leaf=1: last level only', op: OP.CMD_TLBI_NH_VA, f: { vmid: V, asid: A, page: P, leaf: 1 }, removed: ['L1.own', 'L1.aset1', 'L1.glob', 'L1.glob.aset1', 'L1.block', 'L1.g64k', 'L1.nested', 'L1.nested.aset1'] },
  { cmd: 'CMD_TLBI_NH_VA', what: 'other ASID: that ASID plus global entries', op: OP.CMD_TLBI_NH_VA, f: { vmid: V, asid: A2, page: P }, removed: ['L1.asid2', 'L1.glob', 'L1.glob.aset1'] },
  { cmd: 'CMD_TLBI_NH_VA', what: 'unaligned address inside the 2 MiB block: low bits ignored per entry size', op: OP.CMD_TLBI_NH_VA, f: { vmid: V, asid: A, page: B + 0x1ff, leaf: 1 }, removed: ['L1.block'] },
  { cmd: 'CMD_TLBI_NH_VA', what: 'range TG=4K NUM=31 SCALE=0 (32 pages): 64K-granule entries not selected', op: OP.CMD_TLBI_NH_VA, f: { vmid: V, asid: A, ...RANGE }, removed: ['L1.own', 'L1.aset1', 'L1.glob', 'L1.glob.aset1', 'L1.r', 'L1.block', 'L1.walk', 'L1.nested', 'L1.nested.aset1'] },
  { cmd: 'CMD_TLBI_NH_VA', what: 'range TG=4K NUM=15 SCALE=1 (32 pages): same', op: OP.CMD_TLBI_NH_VA, f: { vmid: V, asid: A, ...RANGE_SCALED }, removed: ['L1.own', 'L1.aset1', 'L1.glob', 'L1.glob.aset1', 'L1.r', 'L1.block', 'L1.walk', 'L1.nested', 'L1.nested.aset1'] },
  { cmd: 'CMD_TLBI_NH_VA', what: 'range TG=64K NUM=0 SCALE=0 TTL=3 at the 64K page: only the 64K-granule entry', op: OP.CMD_TLBI_NH_VA, f: { vmid: V, asid: A, page: B, tg: 3, num: 0, scale: 0, ttl: 3, leaf: 1 }, removed: ['L1.g64k'] },
  { cmd: 'CMD_TLBI_NH_VAA', what: 'Leaf=0: by VA, all ASIDs', op: OP.CMD_TLBI_NH_VAA, f: { vmid: V, page: P }, removed: ['L1.own', 'L1.aset1', 'L1.asid2', 'L1.glob', 'L1.glob.aset1', 'L1.block', 'L1.walk', 'L1.g64k', 'L1.nested', 'L1.nested.aset1'] },
  { cmd: 'CMD_TLBI_NH_VAA', what: 'Leaf=1', op: OP.CMD_TLBI_NH_VAA, f: { vmid: V, page: P, leaf: 1 }, removed: ['L1.own', 'L1.aset1', 'L1.asid2', 'L1.glob', 'L1.glob.aset1', 'L1.block', 'L1.g64k', 'L1.nested', 'L1.nested.aset1'] },
  { cmd: 'CMD_TLBI_NH_VAA', what: 'range, Leaf=1, TTL=3: level-3 leaves only', op: OP.CMD_TLBI_NH_VAA, f: { vmid: V, ...RANGE, leaf: 1, ttl: 3 }, removed: ['L1.own', 'L1.aset1', 'L1.asid2', 'L1.glob', 'L1.glob.aset1', 'L1.r', 'L1.nested', 'L1.nested.aset1'] },
  { cmd: 'CMD_TLBI_NH_VAA', what: 'range, Leaf=1, TTL=2: the level-2 block only', op: OP.CMD_TLBI_NH_VAA, f: { vmid: V, ...RANGE, leaf: 1, ttl: 2 }, removed: ['L1.block'] },
  { cmd: 'CMD_TLBI_EL2_ALL', what: 'all NS-EL2 and NS-EL2-E2H entries', op: OP.CMD_TLBI_EL2_ALL, f: {}, removed: [...ALL_L2, ...ALL_E2H] },
  { cmd: 'CMD_TLBI_EL2_ASID', what: 'non-global NS-EL2-E2H entries with the ASID, ASET ignored', op: OP.CMD_TLBI_EL2_ASID, f: { asid: A }, removed: ['E2H.own', 'E2H.aset1', 'E2H.far', 'E2H.walk'] },
  { cmd: 'CMD_TLBI_EL2_VA', what: 'CR2.E2H=1: NS-EL2-E2H by VA+ASID or global', op: OP.CMD_TLBI_EL2_VA, e2h: 1, f: { asid: A, page: P }, removed: ['E2H.own', 'E2H.aset1', 'E2H.glob', 'E2H.glob.aset1', 'E2H.walk'] },
  { cmd: 'CMD_TLBI_EL2_VA', what: 'CR2.E2H=1, Leaf=1', op: OP.CMD_TLBI_EL2_VA, e2h: 1, f: { asid: A, page: P, leaf: 1 }, removed: ['E2H.own', 'E2H.aset1', 'E2H.glob', 'E2H.glob.aset1'] },
  { cmd: 'CMD_TLBI_EL2_VA', what: 'CR2.E2H=0: NS-EL2 entries by VA, ASID ignored', op: OP.CMD_TLBI_EL2_VA, e2h: 0, f: { asid: A, page: P }, removed: ['L2.p', 'L2.aset1', 'L2.walk'] },
  { cmd: 'CMD_TLBI_EL2_VAA', what: 'CR2.E2H=1: NS-EL2-E2H by VA, all ASIDs', op: OP.CMD_TLBI_EL2_VAA, e2h: 1, f: { page: P }, removed: ['E2H.own', 'E2H.aset1', 'E2H.asid2', 'E2H.glob', 'E2H.glob.aset1', 'E2H.walk'] },
  { cmd: 'CMD_TLBI_EL2_VAA', what: 'CR2.E2H=0: NS-EL2 by VA', op: OP.CMD_TLBI_EL2_VAA, e2h: 0, f: { page: P }, removed: ['L2.p', 'L2.aset1', 'L2.walk'] },
  { cmd: 'CMD_TLBI_S12_VMALL', what: 'every NS-EL1 entry of the VMID, all stages', op: OP.CMD_TLBI_S12_VMALL, f: { vmid: V }, removed: [...L1_V_VA, ...L1_V_S2] },
  { cmd: 'CMD_TLBI_S2_IPA', what: 'Leaf=0: stage-2 entries by IPA (walk too); combined spared', op: OP.CMD_TLBI_S2_IPA, f: { vmid: V, page: P }, removed: ['L1.s2', 'L1.s2.walk'] },
  { cmd: 'CMD_TLBI_S2_IPA', what: 'Leaf=1', op: OP.CMD_TLBI_S2_IPA, f: { vmid: V, page: P, leaf: 1 }, removed: ['L1.s2'] },
  { cmd: 'CMD_TLBI_S2_IPA', what: 'range TG=4K', op: OP.CMD_TLBI_S2_IPA, f: { vmid: V, ...RANGE }, removed: ['L1.s2', 'L1.s2.walk'] },
  { cmd: 'CMD_TLBI_S2_IPA', what: 'knob s2IpaHitsCombined: all combined entries of the VMID', op: OP.CMD_TLBI_S2_IPA, f: { vmid: V, page: P }, knobs: { s2IpaHitsCombined: true }, removed: ['L1.s2', 'L1.s2.walk', 'L1.nested', 'L1.nested.aset1', 'L1.nested.far'] },
  { cmd: 'CMD_TLBI_NSNH_ALL', what: 'every NS-EL1 entry, all VMIDs and stages; no EL2', op: OP.CMD_TLBI_NSNH_ALL, f: {}, removed: ALL_L1 },
];

function runCase(c: Case): { removed: string[]; smmu: Smmu } {
  const { smmu } = makeSystem({ knobs: c.knobs, e2h: c.e2h ?? 0 });
  const names = fillNamed(smmu.tlb, population());
  const syncs = smmu.stats[SmmuStat.SYNCS];
  submitAndSync(smmu, tlbiCmd(c.op, c.f));
  expect(smmu.cmdqErrorActive, `${c.cmd}: no CERROR`).toBe(false);
  expect(smmu.stats[SmmuStat.SYNCS]).toBe(syncs + 1);
  return { removed: removed(smmu.tlb, names), smmu };
}

describe('arch.md §1.5 TLB invalidation commands through the command queue', () => {
  for (const cmd of [...new Set(CASES.map((c) => c.cmd))]) {
    it(`${cmd}`, () => {
      for (const c of CASES.filter((x) => x.cmd === cmd)) {
        expect(runCase(c).removed, `${cmd} — ${c.what}`).toEqual([...c.removed].sort());
      }
    });
  }

  it('§1.5/§2.10: commands ignore ASET (every ASET=1 entry goes exactly when its ASET=0 twin goes)', () => {
    const twins: [string, string][] = [
      ['L1.own', 'L1.aset1'], ['L1.glob', 'L1.glob.aset1'], ['L1.nested', 'L1.nested.aset1'],
      ['L2.p', 'L2.aset1'], ['E2H.own', 'E2H.aset1'], ['E2H.glob', 'E2H.glob.aset1'],
    ];
    for (const c of CASES) {
      const r = runCase(c).removed;
      for (const [a0, a1] of twins) expect(r.includes(a1), `${c.cmd} ${c.what}: ${a1}`).toBe(r.includes(a0));
    }
  });

  it('§1.5: a command and the equivalent broadcast differ exactly by the ASET=1 entries', () => {
    const viaCmd = runCase(CASES.find((c) => c.op === OP.CMD_TLBI_NH_VA && c.f.leaf === undefined && c.f.asid === A && c.f.tg === undefined)!).removed;
    const { sys, smmu } = makeSystem();
    const names = fillNamed(smmu.tlb, population());
    Object.assign(sys.pes[0].regime, REGIME.guestEl1);
    const a = newTlbiArgs(TLBI.VAE1IS);
    a.asid = A; a.page = P;
    sys.pes[0].tlbi(a);
    sys.pes[0].dsb();
    const viaBroadcast = removed(smmu.tlb, names);
    expect(viaCmd.filter((n) => !viaBroadcast.includes(n))).toEqual(['L1.aset1', 'L1.glob.aset1', 'L1.nested.aset1']);
  });

  it('§2.5: with CR0.VMW=1 (IDR0.VMW=1) NH_ALL ignores VMID[0] on invalidation', () => {
    const { smmu } = makeSystem({ smmu: { idr0: idr0With({ VMW: 1 }) } });
    smmu.writeReg(REG.CR0, setField(setField(setField(0, CR0.CMDQEN, 1), CR0.SMMUEN, 1), CR0.VMW, 1));
    const names = fillNamed(smmu.tlb, { v4: { vmid: 4, asid: 1 }, v5: { vmid: 5, asid: 1 }, v6: { vmid: 6, asid: 1 } });
    submitAndSync(smmu, tlbiCmd(OP.CMD_TLBI_NH_ALL, { vmid: 5 }));
    expect(removed(smmu.tlb, names)).toEqual(['v4', 'v5']);
  });
});

// ---------------------------------------------------------------------------------------------
// Configuration invalidation

function cfgSystem() {
  const { sys, smmu } = makeSystem();
  const t1 = sys.memory.newTable(1, 't1');
  const t2 = sys.memory.newTable(2, 't2');
  for (let p = 0; p < 4; p++) { t1.map(0x100 + p, 0x900 + p); t2.map(0x100 + p, 0xa00 + p); }
  // CD table at 0x1000 with two substreams; STEs for SIDs 0..7 use it.
  const cds = [newCd({ ASID: 9, TTB0: tableBase(t1.id) }), newCd({ ASID: 11, TTB0: tableBase(t1.id) })];
  smmu.cdTables.set(0x1000, cds);
  for (let sid = 0; sid < 8; sid++) {
    smmu.streamTable.set(sid, newSte({ Config: STE_CONFIG.S1_TRANS, S1ContextPtr: 0x1000, S1CDMax: 1, S2VMID: 7 }));
  }
  return { sys, smmu, t1, t2, cds };
}

/** Fill the configuration cache of every SID 0..7 (SSIDs 0 and 1). */
function warm(smmu: Smmu): void {
  for (let sid = 0; sid < 8; sid++) for (const ssid of [0, 1]) smmu.translate(sid, ssid, 0x100);
}

/** Name of the stage-1 table the configuration used by translate(sid, ssid) points at. */
function tableOf(smmu: Smmu, sid: number, ssid: number): string {
  smmu.translate(sid, ssid, 0x100);
  return smmu.lastConfig!.s1!.name;
}

const cachedSids = (smmu: Smmu) => [...smmu.configCache.keys()].sort((a, b) => a - b);

describe('arch.md §1.5 configuration invalidation (CFGI_*)', () => {
  it('CMD_CFGI_STE: a changed STE is not seen until CFGI_STE; the TLB is never touched', () => {
    const { smmu } = cfgSystem();
    expect(smmu.translate(3, 0, 0x100)).toBe(0x900);
    expect(smmu.lastConfig!.vmid).toBe(7);
    smmu.streamTable.set(3, newSte({ Config: STE_CONFIG.S1_TRANS, S1ContextPtr: 0x1000, S1CDMax: 1, S2VMID: 8 }));
    expect(smmu.translate(3, 0, 0x100)).toBe(0x900);
    expect(smmu.lastConfig!.vmid).toBe(7); // cached configuration
    expect(smmu.lastCache).toBe(SmmuCache.TLB);
    const tlbBefore = smmu.tlb.size;
    submitAndSync(smmu, cfgiCmd(OP.CMD_CFGI_STE, 3, 0, 1));
    expect(smmu.tlb.size).toBe(tlbBefore); // CFGI never touches the TLB
    smmu.translate(3, 0, 0x100);
    expect(smmu.lastConfig!.vmid).toBe(8);
    expect(smmu.lastWalk).toBe(4); // new VMID tag: the old entry does not match
    expect(smmu.tlb.size).toBe(tlbBefore + 1);
  });

  it('CMD_CFGI_STE: an STE switched to abort keeps translating until CFGI_STE', () => {
    const { smmu } = cfgSystem();
    smmu.translate(3, 0, 0x100);
    smmu.streamTable.get(3)!.Config = STE_CONFIG.ABORT;
    expect(smmu.translate(3, 0, 0x101)).toBe(0x901);
    submitAndSync(smmu, cfgiCmd(OP.CMD_CFGI_STE, 3));
    expect(smmu.translate(3, 0, 0x101)).toBeLessThan(0);
  });

  it('CMD_CFGI_CD: only the CD at SubstreamID, via that StreamID; translate uses the new CD after it', () => {
    const { smmu, t2, cds } = cfgSystem();
    warm(smmu);
    // Point both CDs at t2 (a different mm) and drop the TLB with a command so walks happen.
    cds[0] = newCd({ ASID: 9, TTB0: tableBase(t2.id) });
    cds[1] = newCd({ ASID: 11, TTB0: tableBase(t2.id) });
    submitAndSync(smmu, tlbiCmd(OP.CMD_TLBI_NSNH_ALL));
    expect(smmu.translate(3, 1, 0x100)).toBe(0x900); // cached CD 1: old table
    submitAndSync(smmu, cfgiCmd(OP.CMD_CFGI_CD, 3, 1, 1));
    expect(smmu.translate(3, 1, 0x101)).toBe(0xa01);
    expect(tableOf(smmu, 3, 1)).toBe('t2');
    expect(tableOf(smmu, 3, 0)).toBe('t1'); // SSID 0 still cached
    expect(tableOf(smmu, 4, 1)).toBe('t1'); // same CD via another SID: cached per SID (§4.3.3)
  });

  it('CMD_CFGI_CD_ALL: every CD cached via the StreamID', () => {
    const { smmu, t2, cds } = cfgSystem();
    warm(smmu);
    cds[0] = newCd({ ASID: 9, TTB0: tableBase(t2.id) });
    cds[1] = newCd({ ASID: 11, TTB0: tableBase(t2.id) });
    submitAndSync(smmu, cfgiCmd(OP.CMD_CFGI_CD_ALL, 3));
    expect([tableOf(smmu, 3, 0), tableOf(smmu, 3, 1), tableOf(smmu, 2, 0), tableOf(smmu, 2, 1)]).toEqual(['t2', 't2', 't1', 't1']);
  });

  it('CMD_CFGI_STE_RANGE: 2^(Range+1) aligned StreamIDs containing StreamID', () => {
    const { smmu } = cfgSystem();
    warm(smmu);
    const tlb = smmu.tlb.size;
    submitAndSync(smmu, cfgiCmd(OP.CMD_CFGI_STE_RANGE, 5, 0, 1)); // SIDs 4..7
    expect(cachedSids(smmu)).toEqual([0, 1, 2, 3]);
    submitAndSync(smmu, cfgiCmd(OP.CMD_CFGI_STE_RANGE, 2, 0, 0)); // SIDs 2..3
    expect(cachedSids(smmu)).toEqual([0, 1]);
    expect(smmu.tlb.size).toBe(tlb);
  });

  it('CMD_CFGI_ALL (= CFGI_STE_RANGE with Range=31): every StreamID, TLB untouched', () => {
    const { smmu } = cfgSystem();
    warm(smmu);
    const tlb = smmu.tlb.size;
    submitAndSync(smmu, cfgiCmd(OP.CMD_CFGI_ALL, 0x1234, 0, 31));
    expect(cachedSids(smmu)).toEqual([]);
    expect(smmu.tlb.size).toBe(tlb);
    expect(smmu.commandsByOpcode[OP.CMD_CFGI_STE_RANGE]).toBe(1);
  });

  it('§3.2: broadcasts never touch the configuration cache', () => {
    const { sys, smmu } = cfgSystem();
    warm(smmu);
    Object.assign(sys.pes[0].regime, { ...REGIME.nvheEl2, vmid: 7 });
    for (const op of ['VMALLS12E1IS', 'ALLE1IS', 'VMALLE1IS']) sys.pes[0].tlbi(newTlbiArgs(TLBI[op]));
    sys.pes[0].dsb();
    expect(smmu.tlb.size).toBe(0);
    expect(cachedSids(smmu)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});

// ---------------------------------------------------------------------------------------------
// ATC

function atcSystem() {
  const { sys, smmu } = makeSystem({ smmu: { atcEntries: 8 } });
  const t = sys.memory.newTable(1, 'dev');
  t.map(0x100, 0x900);
  t.map(0x101, 0x901);
  const cds: ReturnType<typeof newCd>[] = [];
  cds[0] = newCd({ ASID: 9, TTB0: tableBase(t.id) });
  cds[0x10001] = newCd({ ASID: 12, TTB0: tableBase(t.id) });
  smmu.cdTables.set(0x1000, cds);
  smmu.streamTable.set(4, newSte({ Config: STE_CONFIG.S1_TRANS, S1ContextPtr: 0x1000, S1CDMax: 20, S2VMID: 7, EATS: EATS.TRANS }));
  return { sys, smmu };
}

function atcInv(sid: number, ssv: number, ssid: number, global: number, size: number, page: number): Uint32Array {
  const w = new Uint32Array(4);
  writeAtcInv(w, 0, sid, ssv, ssid, global, size, page);
  return w;
}

describe('§4.5.1 CMD_ATC_INV and the ATC', () => {
  it('broadcasts and TLBI commands never reach the ATC; CMD_ATC_INV does', () => {
    const { sys, smmu } = atcSystem();
    expect(smmu.translate(4, 0, 0x100)).toBe(0x900);
    const atc = smmu.atcs.get(4)!;
    expect(atc.size).toBe(1);
    // Broadcast VMALLE1IS with the stream's VMID: the SMMU TLB entry goes, the ATC entry stays.
    Object.assign(sys.pes[0].regime, { ...REGIME.guestEl1, vmid: 7 });
    sys.pes[0].tlbi(newTlbiArgs(TLBI.VMALLE1IS));
    sys.pes[0].dsb();
    expect(smmu.tlb.size).toBe(0);
    expect(atc.size).toBe(1);
    submitAndSync(smmu, tlbiCmd(OP.CMD_TLBI_NSNH_ALL));
    expect(atc.size).toBe(1);
    const hits = smmu.stats[SmmuStat.ATC_HITS];
    expect(smmu.translate(4, 0, 0x100)).toBe(0x900);
    expect(smmu.lastCache).toBe(SmmuCache.ATC);
    expect(smmu.stats[SmmuStat.ATC_HITS]).toBe(hits + 1);
    // ATC_INV of another page: kept; of the page: gone, and the next access walks.
    submitAndSync(smmu, atcInv(4, 0, 0, 0, 0, 0x101));
    expect(atc.size).toBe(1);
    submitAndSync(smmu, atcInv(4, 0, 0, 0, 0, 0x100));
    expect(atc.size).toBe(0);
    smmu.translate(4, 0, 0x100);
    expect(smmu.lastCache).toBe(SmmuCache.TLB);
    expect(smmu.lastWalk).toBe(4);
  });

  it('CMD_ATC_INV Size: 4KiB*2^Size aligned span; Size=52 is everything', () => {
    const { smmu } = atcSystem();
    smmu.translate(4, 0, 0x100);
    smmu.translate(4, 0, 0x101);
    const atc = smmu.atcs.get(4)!;
    submitAndSync(smmu, atcInv(4, 0, 0, 0, 1, 0x100)); // pages 0x100..0x101
    expect(atc.size).toBe(0);
    smmu.translate(4, 0, 0x100);
    submitAndSync(smmu, atcInv(4, 0, 0, 0, 52, 0));
    expect(atc.size).toBe(0);
  });

  it('regression §4.5.1/§6.3.2 (SSIDSIZE up to 20): ATS translation with SubstreamID >= 0x10000 works and is invalidated by SSID', () => {
    const { smmu } = atcSystem();
    expect(smmu.translate(4, 0x10001, 0x100)).toBe(0x900); // used to throw in Tlb.fill (asid tag > 0xffff)
    smmu.translate(4, 0, 0x100);
    const atc = smmu.atcs.get(4)!;
    expect(atc.size).toBe(2);
    submitAndSync(smmu, atcInv(4, 1, 0x0001, 0, 0, 0x100)); // SSID 1: neither entry
    expect(atc.size).toBe(2);
    submitAndSync(smmu, atcInv(4, 1, 0x10001, 0, 0, 0x100));
    expect(atc.size).toBe(1);
    expect(smmu.translate(4, 0, 0x100)).toBe(0x900);
    expect(smmu.lastCache).toBe(SmmuCache.ATC);
    submitAndSync(smmu, atcInv(4, 0, 0, 1, 52, 0)); // Global: all SSIDs
    expect(atc.size).toBe(0);
  });
});
