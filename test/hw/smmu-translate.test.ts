/**
 * SMMU translation (arch.md §2.8-2.9 STE/CD, §3.2 TLB tagging): configurations, StreamWorld and
 * tag selection, walk memory-access accounting with and without the walk cache, micro-TLB,
 * counters and faults.
 */
import { describe, expect, it } from 'vitest';
import { OP } from '../../src/arch/commands.js';
import { TLBI } from '../../src/arch/tlbi.js';
import { Stage, World } from '../../src/arch/world.js';
import { tableBase, type PageTable } from '../../src/hw/memory.js';
import { SmmuCache, SmmuStat, XlateFault, type Smmu } from '../../src/hw/smmu/smmu.js';
import { newCd, newSte, STE_CONFIG, STRW, type Cd, type Ste } from '../../src/hw/smmu/structures.js';
import { newTlbiArgs } from '../../src/hw/tlbi-scope.js';
import type { HwSystem } from '../../src/hw/system.js';
import { REGIME, idr0With, makeSystem, submitAndSync, tlbiCmd, type SysOpts } from './fixtures.js';

const CD_PTR = 0x1000;

interface Rig { sys: HwSystem; smmu: Smmu; s1: PageTable; s2: PageTable }

/** An enabled SMMU with a stage-1 table (VA→IPA/PA) and a stage-2 table (IPA→PA). */
function rig(o: SysOpts = {}): Rig {
  const { sys, smmu } = makeSystem({ ...o, smmu: { tlb: { entries: 256, ways: 4, policy: 'lru' }, ...o.smmu } });
  const s1 = sys.memory.newTable(1, 's1');
  const s2 = sys.memory.newTable(2, 's2');
  return { sys, smmu, s1, s2 };
}

function s1Ste(r: Rig, cd: Partial<Cd> = {}, ste: Partial<Ste> = {}): void {
  r.smmu.cdTables.set(CD_PTR, [newCd({ ASID: 0x33, TTB0: tableBase(r.s1.id), ...cd })]);
  r.smmu.streamTable.set(1, newSte({ Config: STE_CONFIG.S1_TRANS, S1ContextPtr: CD_PTR, S2VMID: 7, ...ste }));
}
function s2Ste(r: Rig, ste: Partial<Ste> = {}): void {
  r.smmu.streamTable.set(1, newSte({ Config: STE_CONFIG.S2_TRANS, S2VMID: 7, S2TTB: tableBase(r.s2.id), ...ste }));
}
function nestedSte(r: Rig, cd: Partial<Cd> = {}, ste: Partial<Ste> = {}): void {
  r.smmu.cdTables.set(CD_PTR, [newCd({ ASID: 0x33, TTB0: tableBase(r.s1.id), ...cd })]);
  r.smmu.streamTable.set(1, newSte({ Config: STE_CONFIG.NESTED, S1ContextPtr: CD_PTR, S2VMID: 7, S2TTB: tableBase(r.s2.id), ...ste }));
}

/** The TLB entry the last translate() used or filled. */
const lastEntry = (smmu: Smmu) => smmu.tlb.entry(smmu.lastSlot)!;

describe('configurations (STE.Config, §2.8)', () => {
  it('SMMUEN=0: every transaction bypasses', () => {
    const r = rig({ disabled: true });
    s1Ste(r);
    expect(r.smmu.translate(1, 0, 0x1234)).toBe(0x1234);
    expect(r.smmu.stats[SmmuStat.BYPASS]).toBe(1);
    expect(r.smmu.tlb.size).toBe(0);
  });

  it('bypass: output = input, nothing cached in the TLB', () => {
    const r = rig();
    r.smmu.streamTable.set(1, newSte({ Config: STE_CONFIG.BYPASS }));
    expect(r.smmu.translate(1, 0, 0x1234)).toBe(0x1234);
    expect(r.smmu.stats[SmmuStat.BYPASS]).toBe(1);
    expect(r.smmu.tlb.size).toBe(0);
  });

  it('abort: Config=000, STE.V=0 and a missing STE all abort', () => {
    const r = rig();
    r.smmu.streamTable.set(1, newSte({ Config: STE_CONFIG.ABORT }));
    r.smmu.streamTable.set(2, newSte({ V: false, Config: STE_CONFIG.BYPASS }));
    expect(r.smmu.translate(1, 0, 0x10)).toBe(XlateFault.ABORT);
    expect(r.smmu.translate(2, 0, 0x10)).toBe(XlateFault.ABORT);
    expect(r.smmu.translate(9, 0, 0x10)).toBe(XlateFault.ABORT);
    expect(r.smmu.stats[SmmuStat.FAULTS]).toBe(3);
  });

  it('stage 1: VA→PA, NS-EL1 entry tagged with CD.ASID, CD.ASET and STE.S2VMID', () => {
    const r = rig();
    r.s1.map(0x100, 0x900);
    s1Ste(r, { ASET: 1 });
    expect(r.smmu.translate(1, 0, 0x100)).toBe(0x900);
    const e = lastEntry(r.smmu);
    expect([e.world, e.vmid, e.asid, e.aset, e.stage, e.global, e.leaf, e.level]).toEqual([World.NS_EL1, 7, 0x33, 1, Stage.S1, false, 1, 3]);
  });

  it('stage 2: IPA→PA, stage-2 entry without ASID', () => {
    const r = rig();
    r.s2.map(0x100, 0x900);
    s2Ste(r);
    expect(r.smmu.translate(1, 0, 0x100)).toBe(0x900);
    const e = lastEntry(r.smmu);
    expect([e.world, e.vmid, e.asid, e.stage]).toEqual([World.NS_EL1, 7, -1, Stage.S2]);
  });

  it('nested: VA→IPA→PA, one combined entry tagged with ASID and VMID', () => {
    const r = rig();
    r.s1.map(0x100, 0x5000);
    r.s2.map(0x5000, 0x9000);
    nestedSte(r);
    expect(r.smmu.translate(1, 0, 0x100)).toBe(0x9000);
    const e = lastEntry(r.smmu);
    expect([e.world, e.vmid, e.asid, e.stage, e.page]).toEqual([World.NS_EL1, 7, 0x33, Stage.NESTED, 0x100]);
    expect(r.smmu.tlb.size).toBe(1);
  });

  it('nested: the combined entry has the smaller of the two sizes', () => {
    const r = rig();
    r.s1.map(0x200, 0x5000, 9); // S1 2 MiB block
    r.s2.map(0x5000 + 3, 0x9003); // S2 4K page
    nestedSte(r);
    expect(r.smmu.translate(1, 0, 0x203)).toBe(0x9003);
    expect([lastEntry(r.smmu).sizeLog2, lastEntry(r.smmu).page]).toEqual([0, 0x203]);
  });

  it('illegal configurations: unimplemented stage, invalid CD, EPD0, STRW=0b01', () => {
    const r = rig({ smmu: { idr0: idr0With({ S2P: 0 }) } });
    s2Ste(r);
    expect(r.smmu.translate(1, 0, 0x100)).toBe(XlateFault.BAD_CONFIG);
    const r2 = rig();
    s1Ste(r2, { V: false });
    expect(r2.smmu.translate(1, 0, 0x100)).toBe(XlateFault.BAD_CONFIG);
    const r3 = rig();
    s1Ste(r3, { EPD0: true });
    expect(r3.smmu.translate(1, 0, 0x100)).toBe(XlateFault.BAD_CONFIG);
    // Regression (§5.2 STRW; arch.md §2.8): on the NS stream table STRW=0bx1 is ILLEGAL (C_BAD_STE).
    for (const strw of [0b01, 0b11]) {
      const r4 = rig();
      r4.s1.map(0x100, 0x900);
      s1Ste(r4, {}, { STRW: strw });
      expect(r4.smmu.translate(1, 0, 0x100), `STRW=${strw}`).toBe(XlateFault.BAD_CONFIG);
    }
    // STRW is ignored (not illegal) when stage 2 is enabled.
    const r5 = rig();
    r5.s2.map(0x100, 0x900);
    s2Ste(r5, { STRW: 0b01 });
    expect(r5.smmu.translate(1, 0, 0x100)).toBe(0x900);
  });

  it('translation fault for an unmapped page: F_TRANSLATION, counted, nothing filled', () => {
    const r = rig();
    r.s1.map(0x100, 0x900);
    s1Ste(r);
    expect(r.smmu.translate(1, 0, 0x101)).toBe(XlateFault.TRANSLATION);
    expect(r.smmu.stats[SmmuStat.FAULTS]).toBe(1);
    expect(r.smmu.tlb.size).toBe(0);
    // Nested: mapped at stage 1, unmapped at stage 2.
    const n = rig();
    n.s1.map(0x100, 0x5000);
    nestedSte(n);
    expect(n.smmu.translate(1, 0, 0x100)).toBe(XlateFault.TRANSLATION);
    expect(n.smmu.tlb.size).toBe(0);
  });

  it('CD.TG0 sets the granule recorded in the entry', () => {
    const r = rig();
    r.s1.map(0x100, 0x900);
    s1Ste(r, { TG0: 1 });
    r.smmu.translate(1, 0, 0x100);
    expect(lastEntry(r.smmu).granuleLog2).toBe(16);
  });
});

describe('StreamWorld and tags (§2.6 CR2.E2H, §2.8 STRW/S2VMID, §3.2)', () => {
  it('STRW=EL2 with CR2.E2H=1: NS-EL2-E2H entries tagged with the CD ASID, no VMID', () => {
    const r = rig({ e2h: 1 });
    r.s1.map(0x100, 0x900);
    s1Ste(r, {}, { STRW: STRW.EL2 });
    r.smmu.translate(1, 0, 0x100);
    const e = lastEntry(r.smmu);
    expect([e.world, e.asid, e.vmid]).toEqual([World.NS_EL2_E2H, 0x33, 0]);
  });

  it('STRW=EL2 with CR2.E2H=0: NS-EL2 entries without ASID', () => {
    const r = rig({ e2h: 0 });
    r.s1.map(0x100, 0x900);
    s1Ste(r, {}, { STRW: STRW.EL2 });
    r.smmu.translate(1, 0, 0x100);
    const e = lastEntry(r.smmu);
    expect([e.world, e.asid, e.vmid]).toEqual([World.NS_EL2, -1, 0]);
  });

  it('stage 2 enabled forces NS-EL1 whatever STRW says (S2-only and nested)', () => {
    const r = rig({ e2h: 1 });
    r.s2.map(0x100, 0x900);
    s2Ste(r, { STRW: STRW.EL2 });
    r.smmu.translate(1, 0, 0x100);
    expect([lastEntry(r.smmu).world, lastEntry(r.smmu).vmid]).toEqual([World.NS_EL1, 7]);
    const n = rig({ e2h: 1 });
    n.s1.map(0x100, 0x5000);
    n.s2.map(0x5000, 0x9000);
    nestedSte(n, {}, { STRW: STRW.EL2 });
    n.smmu.translate(1, 0, 0x100);
    expect([lastEntry(n.smmu).world, lastEntry(n.smmu).vmid, lastEntry(n.smmu).asid]).toEqual([World.NS_EL1, 7, 0x33]);
  });

  it('STRW=EL2 without IDR0.Hyp is ignored (NS-EL1)', () => {
    const r = rig({ smmu: { idr0: idr0With({ HYP: 0 }) } });
    r.s1.map(0x100, 0x900);
    s1Ste(r, {}, { STRW: STRW.EL2 });
    r.smmu.translate(1, 0, 0x100);
    expect(lastEntry(r.smmu).world).toBe(World.NS_EL1);
  });

  it('§6.5: an S2P=0 SMMU tags NS-EL1 entries with VMID 0 (STE.S2VMID ignored)', () => {
    const r = rig({ smmu: { idr0: idr0With({ S2P: 0 }) } });
    r.s1.map(0x100, 0x900);
    s1Ste(r, {}, { S2VMID: 9 });
    r.smmu.translate(1, 0, 0x100);
    expect([lastEntry(r.smmu).vmid, lastEntry(r.smmu).asid]).toEqual([0, 0x33]);
  });

  it('8-bit ASID/VMID SMMU keeps the low 8 bits of CD.ASID and STE.S2VMID', () => {
    const r = rig({ smmu: { idr0: idr0With({ ASID16: 0, VMID16: 0 }) } });
    r.s1.map(0x100, 0x900);
    s1Ste(r, { ASID: 0x5678 }, { S2VMID: 0x1234 });
    r.smmu.translate(1, 0, 0x100);
    expect([lastEntry(r.smmu).vmid, lastEntry(r.smmu).asid]).toEqual([0x34, 0x78]);
  });
});

describe('walk memory accesses', () => {
  function walk(setup: (r: Rig) => void, page: number, o: SysOpts = {}): number {
    const r = rig(o);
    setup(r);
    expect(r.smmu.translate(1, 0, page)).toBeGreaterThanOrEqual(0);
    return r.smmu.lastWalk;
  }

  it('stage 1 = 4, stage 2 = 4, 2 MiB block = 3, 1 GiB block = 2', () => {
    expect(walk((r) => { r.s1.map(0x100, 0x900); s1Ste(r); }, 0x100)).toBe(4);
    expect(walk((r) => { r.s2.map(0x100, 0x900); s2Ste(r); }, 0x100)).toBe(4);
    expect(walk((r) => { r.s1.map(0x200, 0x1000, 9); s1Ste(r); }, 0x201)).toBe(3);
    expect(walk((r) => { r.s2.map(0x200, 0x1000, 9); s2Ste(r); }, 0x201)).toBe(3);
    expect(walk((r) => { r.s1.map(0x40000, 0x80000, 18); s1Ste(r); }, 0x40001)).toBe(2);
  });

  it('nested = (n+1)(m+1)-1: 24 for 4K/4K, 19 with a stage-1 or a stage-2 2 MiB block, 15 with both', () => {
    const nested = (s1Size: number, s2Size: number) => walk((r) => {
      r.s1.map(0x200, 0x5000, s1Size);
      r.s2.map(0x5000, 0x9000, s2Size);
      nestedSte(r);
    }, 0x200);
    expect(nested(0, 0)).toBe(24);
    expect(nested(9, 0)).toBe(19);
    // Regression (fixed): stage-2 blocks used to be counted as 4-level walks (24 instead of 19).
    expect(nested(0, 9)).toBe(19);
    expect(nested(9, 9)).toBe(15);
  });

  it('a hit costs no walk; accesses accumulate in stats', () => {
    const r = rig();
    r.s1.map(0x100, 0x900);
    s1Ste(r);
    r.smmu.translate(1, 0, 0x100);
    r.smmu.translate(1, 0, 0x100);
    expect(r.smmu.lastWalk).toBe(0);
    expect(r.smmu.stats[SmmuStat.WALK_ACCESSES]).toBe(4);
  });

  it('a faulting stage-1 walk costs 4 reads; nested 4 stage-1 reads with their stage-2 walks (20)', () => {
    const r = rig();
    s1Ste(r);
    r.smmu.translate(1, 0, 0x100);
    expect(r.smmu.lastWalk).toBe(4);
    const n = rig();
    nestedSte(n);
    n.smmu.translate(1, 0, 0x100);
    expect(n.smmu.lastWalk).toBe(20);
  });
});

describe('walk cache (params.walkCacheEntries)', () => {
  const WC: SysOpts = { smmu: { walkCacheEntries: 64 } };

  function s1Rig(): Rig {
    const r = rig(WC);
    for (const p of [0x100, 0x101, 0x300, 0x40100, 0x40101, 0x8000000]) r.s1.map(p, 0x900 + (p % 0x1000));
    s1Ste(r);
    return r;
  }
  const cost = (r: Rig, page: number) => { r.smmu.translate(1, 0, page); return r.smmu.lastWalk; };

  it('stage 1: cold 4; same 2 MiB → 1; same 1 GiB → 2; same 512 GiB → 3; another 512 GiB → 4', () => {
    const r = s1Rig();
    expect(cost(r, 0x100)).toBe(4);
    expect(cost(r, 0x101)).toBe(1);
    expect(cost(r, 0x300)).toBe(2);
    expect(cost(r, 0x40100)).toBe(3);
    expect(cost(r, 0x8000000)).toBe(4);
    expect(r.smmu.stats[SmmuStat.WALK_CACHE_HITS]).toBe(3);
  });

  it('regression: descriptors read below a walk-cache hit are cached (level-0 hit, then the same 2 MiB costs 1)', () => {
    const r = s1Rig();
    cost(r, 0x100);
    expect(cost(r, 0x40100)).toBe(3); // level-0 hit
    expect(cost(r, 0x40101)).toBe(1); // used to be 3: levels 1-2 were not cached after the hit
  });

  it('stage 2 alone uses it too; nested: 1 stage-1 read left → 1*(4+1)+4 = 9', () => {
    const r = rig(WC);
    r.s2.map(0x100, 0x900); r.s2.map(0x101, 0x901);
    s2Ste(r);
    expect(cost(r, 0x100)).toBe(4);
    expect(cost(r, 0x101)).toBe(1);
    const n = rig(WC);
    n.s1.map(0x100, 0x5000); n.s1.map(0x101, 0x5001);
    n.s2.map(0x5000, 0x9000); n.s2.map(0x5001, 0x9001);
    nestedSte(n);
    expect(cost(n, 0x100)).toBe(24);
    expect(cost(n, 0x101)).toBe(9);
  });

  function invalidateThenCost(op: string, knobs: SysOpts['knobs'] = {}): number {
    const r = rig({ ...WC, knobs });
    r.s1.map(0x100, 0x900); r.s1.map(0x101, 0x901);
    s1Ste(r);
    cost(r, 0x100);
    Object.assign(r.sys.pes[0].regime, { ...REGIME.guestEl1, vmid: 7 });
    const a = newTlbiArgs(TLBI[op]);
    a.asid = 0x33; a.page = 0x100;
    r.sys.pes[0].tlbi(a);
    r.sys.pes[0].dsb();
    expect(r.smmu.tlb.size).toBe(0);
    return cost(r, 0x101);
  }

  it('VALE1IS (leaf) keeps walk-cache entries, VAE1IS drops those covering the VA; knob leafDropsWalkCache', () => {
    expect(invalidateThenCost('VALE1IS')).toBe(1);
    expect(invalidateThenCost('VAE1IS')).toBe(4);
    expect(invalidateThenCost('VALE1IS', { leafDropsWalkCache: true })).toBe(4);
    expect(invalidateThenCost('VMALLE1IS')).toBe(4);
  });

  it('§4.4.1.1: range NH_VA with Leaf=0 and TTL=3 also removes intermediate (walk-cache) entries; Leaf=1 does not', () => {
    for (const [leaf, expected] of [[0, 4], [1, 1]] as const) {
      const r = rig(WC);
      r.s1.map(0x100, 0x900); r.s1.map(0x101, 0x901);
      s1Ste(r);
      cost(r, 0x100);
      submitAndSync(r.smmu, tlbiCmd(OP.CMD_TLBI_NH_VA, { vmid: 7, asid: 0x33, page: 0x100, tg: 1, num: 0, scale: 0, ttl: 3, leaf }));
      expect(r.smmu.tlb.size).toBe(0);
      expect(cost(r, 0x101), `Leaf=${leaf}`).toBe(expected);
    }
  });

  it('stage-2 walk cache: IPAS2LE1IS keeps it, IPAS2E1IS drops it', () => {
    for (const [op, expected] of [['IPAS2LE1IS', 1], ['IPAS2E1IS', 4]] as const) {
      const r = rig(WC);
      r.s2.map(0x100, 0x900); r.s2.map(0x101, 0x901);
      s2Ste(r);
      cost(r, 0x100);
      Object.assign(r.sys.pes[0].regime, { ...REGIME.nvheEl2, vmid: 7 });
      const a = newTlbiArgs(TLBI[op]);
      a.page = 0x100;
      r.sys.pes[0].tlbi(a);
      expect(r.smmu.tlb.size).toBe(0);
      expect(cost(r, 0x101), op).toBe(expected);
    }
  });
});

describe('micro-TLB, counters', () => {
  it('hits/misses and configuration-cache counters', () => {
    const r = rig();
    r.s1.map(0x100, 0x900);
    s1Ste(r);
    r.smmu.translate(1, 0, 0x100);
    r.smmu.translate(1, 0, 0x100);
    r.smmu.translate(1, 0, 0x100);
    const st = r.smmu.stats;
    expect([st[SmmuStat.MISSES], st[SmmuStat.HITS], st[SmmuStat.CONFIG_MISSES], st[SmmuStat.CONFIG_HITS]]).toEqual([1, 2, 1, 2]);
    expect(r.smmu.lastCache).toBe(SmmuCache.TLB);
  });

  it('micro-TLB: filled on a walk, hit first, refilled from the main TLB, and invalidated with it', () => {
    const r = rig({ smmu: { microTlbEntries: 2 } });
    for (const p of [0x100, 0x101, 0x102]) r.s1.map(p, 0x800 + p);
    s1Ste(r);
    r.smmu.translate(1, 0, 0x100);
    expect(r.smmu.microTlbFor(1).size).toBe(1);
    expect(r.smmu.translate(1, 0, 0x100)).toBe(0x900);
    expect(r.smmu.lastCache).toBe(SmmuCache.MICRO_TLB);
    expect([r.smmu.stats[SmmuStat.MICRO_HITS], r.smmu.stats[SmmuStat.HITS]]).toEqual([1, 1]);
    // Evict 0x100 from the 2-entry micro-TLB, then hit it in the main TLB (copied back).
    r.smmu.translate(1, 0, 0x101);
    r.smmu.translate(1, 0, 0x102);
    r.smmu.translate(1, 0, 0x100);
    expect(r.smmu.lastCache).toBe(SmmuCache.TLB);
    r.smmu.translate(1, 0, 0x100);
    expect(r.smmu.lastCache).toBe(SmmuCache.MICRO_TLB);
    // A broadcast reaches the micro-TLB as well.
    Object.assign(r.sys.pes[0].regime, { ...REGIME.guestEl1, vmid: 7 });
    r.sys.pes[0].tlbi(newTlbiArgs(TLBI.VMALLE1IS));
    expect(r.smmu.microTlbFor(1).size).toBe(0);
    r.smmu.translate(1, 0, 0x100);
    expect(r.smmu.lastWalk).toBe(4);
  });
});
