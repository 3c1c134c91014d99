/**
 * arch.md §3.3 "Per-operation table", one table-driven test per row: a PE broadcasts the TLBI
 * through the DVM domain to an SMMU with IDR0.BTM=1, CR2.PTM=0 whose TLB holds the fixed
 * population of fixtures.ts, and we assert exactly which entries go (column "SMMU entries
 * invalidated") and what happens to ASET=1 entries (column "ASET=1 entries"; §2.10, §6.6-6.7).
 * "Not required" cells are asserted at the model's default (minimal) behaviour and, where a knob
 * exists (hw/knobs.ts, arch.md §3.4), at the over-invalidating one too.
 */
import { describe, expect, it } from 'vitest';
import { TLBI, tlbiRangePages } from '../../src/arch/tlbi.js';
import { Stage, World } from '../../src/arch/world.js';
import type { SmmuKnobs } from '../../src/hw/knobs.js';
import { tableBase } from '../../src/hw/memory.js';
import { SmmuStat } from '../../src/hw/smmu/smmu.js';
import { newCd, newSte, STE_CONFIG } from '../../src/hw/smmu/structures.js';
import { newTlbiArgs, tlbiScope, type IssuerRegime } from '../../src/hw/tlbi-scope.js';
import { resetScope, type InvalScope } from '../../src/hw/tlb/scope.js';
import {
  A, A2, P, Q, R_START, REGIME, V, V2, fillNamed, makeSystem, population, removed,
} from './fixtures.js';

// Groups of the population, spelled out so each expectation reads like the table.
/** NS-EL1, VMID V, stage 1 and combined (VA-tagged) entries: everything VMALLE1IS(V) must remove. */
const L1_V_VA = [
  'L1.own', 'L1.aset1', 'L1.asid2', 'L1.glob', 'L1.glob.aset1', 'L1.r', 'L1.far', 'L1.block', 'L1.walk',
  'L1.g64k', 'L1.nested', 'L1.nested.aset1', 'L1.nested.far',
];
const L1_V_S2 = ['L1.s2', 'L1.s2.far', 'L1.s2.walk'];
const L1_OTHER = ['L1.vmid2', 'L1.vmid0', 'L1.s2.vmid2'];
const ALL_L1 = [...L1_V_VA, ...L1_V_S2, ...L1_OTHER];
const ALL_L2 = ['L2.p', 'L2.aset1', 'L2.far', 'L2.walk'];
const ALL_E2H = ['E2H.own', 'E2H.aset1', 'E2H.asid2', 'E2H.glob', 'E2H.glob.aset1', 'E2H.far', 'E2H.walk'];
const ALL_EL3 = ['EL3.p', 'EL3.far'];

interface Case {
  /** Row of arch.md §3.3. */
  row: string;
  /** What differs between the cases of one row. */
  what: string;
  op: string;
  regime: IssuerRegime;
  /** ASID operand (VA / ASID forms). */
  asid?: number;
  /** Range forms: [R_START, R_START+32) with TG=4K; else the single page P. */
  range?: boolean;
  ttl?: number;
  knobs?: Partial<SmmuKnobs>;
  removed: string[];
}

const CASES: Case[] = [
  // ---- VMALLE1IS
  { row: 'VMALLE1IS', what: 'guest EL1, VMID 5: all S1+combined NS-EL1 entries of VMID 5 incl. global and ASET=1', op: 'VMALLE1IS', regime: REGIME.guestEl1, removed: L1_V_VA },
  { row: 'VMALLE1IS', what: 'from EL2 with TGE=0 (KVM VHE guest context): same EL1&0 scope', op: 'VMALLE1IS', regime: REGIME.vheGuestCtx, removed: L1_V_VA },
  { row: 'VMALLE1IS', what: 'nVHE host VMID 0 hits only VMID-0 (STE.S2VMID=0) entries', op: 'VMALLE1IS', regime: { ...REGIME.guestEl1, vmid: 0 }, removed: ['L1.vmid0'] },
  { row: 'VMALLE1IS', what: 'knob nhAllHitsS2: stage-2-only entries of the VMID too ("not required")', op: 'VMALLE1IS', regime: REGIME.guestEl1, knobs: { nhAllHitsS2: true }, removed: [...L1_V_VA, ...L1_V_S2] },
  // ---- ASIDE1IS
  { row: 'ASIDE1IS', what: 'non-global ASID+VMID entries; ASET=1 and global spared', op: 'ASIDE1IS', regime: REGIME.guestEl1, asid: A, removed: ['L1.own', 'L1.r', 'L1.far', 'L1.block', 'L1.walk', 'L1.g64k', 'L1.nested', 'L1.nested.far'] },
  { row: 'ASIDE1IS', what: 'knob asetSparesAsidBroadcasts=false: ASET=1 entries too', op: 'ASIDE1IS', regime: REGIME.guestEl1, asid: A, knobs: { asetSparesAsidBroadcasts: false }, removed: ['L1.own', 'L1.aset1', 'L1.r', 'L1.far', 'L1.block', 'L1.walk', 'L1.g64k', 'L1.nested', 'L1.nested.aset1', 'L1.nested.far'] },
  // ---- VAE1IS / VALE1IS
  { row: 'VAE1IS/VALE1IS', what: 'VAE1IS: VA+ASID and global by VA, walk entries too, ASET=1 spared', op: 'VAE1IS', regime: REGIME.guestEl1, asid: A, removed: ['L1.own', 'L1.glob', 'L1.block', 'L1.walk', 'L1.g64k', 'L1.nested'] },
  { row: 'VAE1IS/VALE1IS', what: 'VALE1IS: leaf only, the walk-cache (leaf=0) entry survives', op: 'VALE1IS', regime: REGIME.guestEl1, asid: A, removed: ['L1.own', 'L1.glob', 'L1.block', 'L1.g64k', 'L1.nested'] },
  { row: 'VAE1IS/VALE1IS', what: 'knob asetSparesAsidBroadcasts=false: ASET=1 (incl. global ASET=1) too', op: 'VAE1IS', regime: REGIME.guestEl1, asid: A, knobs: { asetSparesAsidBroadcasts: false }, removed: ['L1.own', 'L1.aset1', 'L1.glob', 'L1.glob.aset1', 'L1.block', 'L1.walk', 'L1.g64k', 'L1.nested', 'L1.nested.aset1'] },
  // ---- VAAE1IS / VAALE1IS
  { row: 'VAAE1IS/VAALE1IS', what: 'VAAE1IS: by VA, all ASIDs, ASET=1 must go', op: 'VAAE1IS', regime: REGIME.guestEl1, removed: ['L1.own', 'L1.aset1', 'L1.asid2', 'L1.glob', 'L1.glob.aset1', 'L1.block', 'L1.walk', 'L1.g64k', 'L1.nested', 'L1.nested.aset1'] },
  { row: 'VAAE1IS/VAALE1IS', what: 'VAALE1IS: leaf only', op: 'VAALE1IS', regime: REGIME.guestEl1, removed: ['L1.own', 'L1.aset1', 'L1.asid2', 'L1.glob', 'L1.glob.aset1', 'L1.block', 'L1.g64k', 'L1.nested', 'L1.nested.aset1'] },
  // ---- R forms (TG=4K: 64K-granule entries are not selected, §4.4.1.1)
  { row: 'RVAE1IS/RVALE1IS/RVAAE1IS/RVAALE1IS', what: 'RVAE1IS: range, ASID+global, ASET=1 spared, block overlapping the range', op: 'RVAE1IS', regime: REGIME.guestEl1, asid: A, range: true, removed: ['L1.own', 'L1.glob', 'L1.r', 'L1.block', 'L1.walk', 'L1.nested'] },
  { row: 'RVAE1IS/RVALE1IS/RVAAE1IS/RVAALE1IS', what: 'RVALE1IS: leaf only', op: 'RVALE1IS', regime: REGIME.guestEl1, asid: A, range: true, removed: ['L1.own', 'L1.glob', 'L1.r', 'L1.block', 'L1.nested'] },
  { row: 'RVAE1IS/RVALE1IS/RVAAE1IS/RVAALE1IS', what: 'RVAAE1IS: range, all ASIDs, ASET=1 must go', op: 'RVAAE1IS', regime: REGIME.guestEl1, range: true, removed: ['L1.own', 'L1.aset1', 'L1.asid2', 'L1.glob', 'L1.glob.aset1', 'L1.r', 'L1.block', 'L1.walk', 'L1.nested', 'L1.nested.aset1'] },
  { row: 'RVAE1IS/RVALE1IS/RVAAE1IS/RVAALE1IS', what: 'RVAALE1IS: leaf only', op: 'RVAALE1IS', regime: REGIME.guestEl1, range: true, removed: ['L1.own', 'L1.aset1', 'L1.asid2', 'L1.glob', 'L1.glob.aset1', 'L1.r', 'L1.block', 'L1.nested', 'L1.nested.aset1'] },
  { row: 'RVAE1IS/RVALE1IS/RVAAE1IS/RVAALE1IS', what: 'RVALE1IS TTL=2: only the level-2 block', op: 'RVALE1IS', regime: REGIME.guestEl1, asid: A, range: true, ttl: 2, removed: ['L1.block'] },
  { row: 'RVAE1IS/RVALE1IS/RVAAE1IS/RVAALE1IS', what: 'RVAALE1IS TTL=3: only level-3 leaves', op: 'RVAALE1IS', regime: REGIME.guestEl1, range: true, ttl: 3, removed: ['L1.own', 'L1.aset1', 'L1.asid2', 'L1.glob', 'L1.glob.aset1', 'L1.r', 'L1.nested', 'L1.nested.aset1'] },
  // ---- IPAS2E1IS / IPAS2LE1IS / RIPAS2(L)E1IS
  { row: 'IPAS2E1IS/IPAS2LE1IS/RIPAS2E1IS', what: 'IPAS2E1IS: stage-2-only entries of the VMID by IPA; combined entries spared', op: 'IPAS2E1IS', regime: REGIME.nvheEl2, removed: ['L1.s2', 'L1.s2.walk'] },
  { row: 'IPAS2E1IS/IPAS2LE1IS/RIPAS2E1IS', what: 'IPAS2LE1IS: leaf only', op: 'IPAS2LE1IS', regime: REGIME.nvheEl2, removed: ['L1.s2'] },
  { row: 'IPAS2E1IS/IPAS2LE1IS/RIPAS2E1IS', what: 'RIPAS2E1IS: range', op: 'RIPAS2E1IS', regime: REGIME.nvheEl2, range: true, removed: ['L1.s2', 'L1.s2.walk'] },
  { row: 'IPAS2E1IS/IPAS2LE1IS/RIPAS2E1IS', what: 'from VHE KVM (E2H=1, TGE=0): same', op: 'IPAS2E1IS', regime: REGIME.vheGuestCtx, removed: ['L1.s2', 'L1.s2.walk'] },
  { row: 'IPAS2E1IS/IPAS2LE1IS/RIPAS2E1IS', what: 'knob s2IpaHitsCombined: every combined entry of the VMID (they carry no IPA)', op: 'IPAS2E1IS', regime: REGIME.nvheEl2, knobs: { s2IpaHitsCombined: true }, removed: ['L1.s2', 'L1.s2.walk', 'L1.nested', 'L1.nested.aset1', 'L1.nested.far'] },
  // ---- VMALLS12E1IS
  { row: 'VMALLS12E1IS', what: 'every NS-EL1 entry of the VMID, all stages, ASET=1 included', op: 'VMALLS12E1IS', regime: REGIME.nvheEl2, removed: [...L1_V_VA, ...L1_V_S2] },
  { row: 'VMALLS12E1IS', what: 'from VHE KVM (E2H=1, TGE=0): same', op: 'VMALLS12E1IS', regime: REGIME.vheGuestCtx, removed: [...L1_V_VA, ...L1_V_S2] },
  // ---- ALLE1IS
  { row: 'ALLE1IS', what: 'all NS-EL1 entries, every VMID and stage; no EL2/EL2-E2H/EL3', op: 'ALLE1IS', regime: REGIME.nvheEl2, removed: ALL_L1 },
  // ---- ALLE2IS
  { row: 'ALLE2IS', what: 'all NS-EL2 and NS-EL2-E2H entries', op: 'ALLE2IS', regime: REGIME.el2NoE2h, removed: [...ALL_L2, ...ALL_E2H] },
  { row: 'ALLE2IS', what: 'from a VHE host: same', op: 'ALLE2IS', regime: REGIME.vheHost, removed: [...ALL_L2, ...ALL_E2H] },
  // ---- VAE2IS / VALE2IS
  { row: 'VAE2IS/VALE2IS', what: 'E2H=0: NS-EL2 entries by VA (ASID-less)', op: 'VAE2IS', regime: REGIME.el2NoE2h, asid: A, removed: ['L2.p', 'L2.aset1', 'L2.walk'] },
  { row: 'VAE2IS/VALE2IS', what: 'VALE2IS E2H=0: leaf only', op: 'VALE2IS', regime: REGIME.el2NoE2h, removed: ['L2.p', 'L2.aset1'] },
  { row: 'VAE2IS/VALE2IS', what: 'E2H=1: NS-EL2-E2H entries by VA+ASID or global, ASET=1 spared', op: 'VAE2IS', regime: REGIME.vheHost, asid: A, removed: ['E2H.own', 'E2H.glob', 'E2H.walk'] },
  { row: 'VAE2IS/VALE2IS', what: 'VALE2IS E2H=1: leaf only', op: 'VALE2IS', regime: REGIME.vheHost, asid: A, removed: ['E2H.own', 'E2H.glob'] },
  { row: 'VAE2IS/VALE2IS', what: 'knob el2WorldsCrossMatch, E2H=0: NS-EL2-E2H entries by VA as well', op: 'VAE2IS', regime: REGIME.el2NoE2h, knobs: { el2WorldsCrossMatch: true }, removed: ['L2.p', 'L2.aset1', 'L2.walk', 'E2H.own', 'E2H.aset1', 'E2H.asid2', 'E2H.glob', 'E2H.glob.aset1', 'E2H.walk'] },
  // ---- E1 ops at EL2 with {E2H,TGE}={1,1}: the EL2&0 regime
  { row: 'VMALLE1IS at EL2 {E2H,TGE}={1,1}', what: 'every NS-EL2-E2H entry, ASET=1 included; plain EL2 not required', op: 'VMALLE1IS', regime: REGIME.vheHost, removed: ALL_E2H },
  { row: 'ASIDE1IS at EL2 {E2H,TGE}={1,1}', what: 'non-global NS-EL2-E2H entries with the ASID; ASET=1 spared', op: 'ASIDE1IS', regime: REGIME.vheHost, asid: A, removed: ['E2H.own', 'E2H.far', 'E2H.walk'] },
  { row: 'VAE1IS/VALE1IS at EL2 {E2H,TGE}={1,1}', what: 'VAE1IS: NS-EL2-E2H by VA+ASID or global; ASET=1 spared', op: 'VAE1IS', regime: REGIME.vheHost, asid: A, removed: ['E2H.own', 'E2H.glob', 'E2H.walk'] },
  { row: 'VAE1IS/VALE1IS at EL2 {E2H,TGE}={1,1}', what: 'VALE1IS: leaf only', op: 'VALE1IS', regime: REGIME.vheHost, asid: A, removed: ['E2H.own', 'E2H.glob'] },
  { row: 'VAAE1IS/VAALE1IS at EL2 {E2H,TGE}={1,1}', what: 'VAAE1IS: NS-EL2-E2H by VA, all ASIDs, ASET=1 must go', op: 'VAAE1IS', regime: REGIME.vheHost, removed: ['E2H.own', 'E2H.aset1', 'E2H.asid2', 'E2H.glob', 'E2H.glob.aset1', 'E2H.walk'] },
  { row: 'VAAE1IS/VAALE1IS at EL2 {E2H,TGE}={1,1}', what: 'VAALE1IS: leaf only', op: 'VAALE1IS', regime: REGIME.vheHost, removed: ['E2H.own', 'E2H.aset1', 'E2H.asid2', 'E2H.glob', 'E2H.glob.aset1'] },
  // ---- ALLE3IS / VAE3IS
  { row: 'ALLE3IS/VAE3IS', what: 'ALLE3IS: EL3 StreamWorld entries only', op: 'ALLE3IS', regime: REGIME.el2NoE2h, removed: ALL_EL3 },
  { row: 'ALLE3IS/VAE3IS', what: 'VAE3IS: EL3 entries by VA', op: 'VAE3IS', regime: REGIME.el2NoE2h, removed: ['EL3.p'] },
];

function argsFor(c: Case) {
  const a = newTlbiArgs(TLBI[c.op]);
  a.asid = c.asid ?? 0;
  if (c.range) {
    // TG=4K, SCALE=0, NUM=15: (15+1) * 2^(5*0+1) = 32 pages from BaseADDR.
    a.page = R_START;
    a.pages = tlbiRangePages(1, 0, 15);
    a.granuleLog2 = 12;
  } else {
    a.page = P;
  }
  a.ttl = c.ttl ?? 0;
  return a;
}

/** Broadcast `c` from PE 0 and return the SMMU TLB and PE 1 TLB removals. */
function run(c: Case): { smmu: string[]; pe: string[]; accepted: number } {
  const { sys, smmu } = makeSystem({ knobs: c.knobs });
  const pop = population();
  const names = fillNamed(smmu.tlb, pop);
  // The PE's own TLB: the same population minus ASET (CPU entries have ASET 0).
  const pePop = Object.fromEntries(Object.entries(pop).filter(([, e]) => (e.aset ?? 0) === 0));
  const peNames = fillNamed(sys.pes[1].tlb, pePop);
  const pe = sys.pes[0];
  Object.assign(pe.regime, c.regime);
  pe.tlbi(argsFor(c));
  pe.dsb();
  return { smmu: removed(smmu.tlb, names), pe: removed(sys.pes[1].tlb, peNames), accepted: smmu.stats[SmmuStat.DVM_TLBI] };
}

describe('arch.md §3.3 per-operation table: SMMU TLB (BTM=1, PTM=0), entries filled directly', () => {
  it('rows have consistent fixtures (sanity: every expected name exists)', () => {
    const names = new Set(Object.keys(population()));
    for (const c of CASES) for (const n of c.removed) expect(names.has(n), `${c.row}: ${n}`).toBe(true);
    expect(new Set([A, A2]).size + new Set([V, V2]).size).toBe(4);
  });

  const rows = [...new Set(CASES.map((c) => c.row))];
  for (const row of rows) {
    const cases = CASES.filter((c) => c.row === row);
    it(`§3.3 row ${row}`, () => {
      for (const c of cases) {
        const r = run(c);
        expect(r.accepted, `${c.what}: broadcast accepted`).toBe(1);
        expect(r.smmu, `${row} — ${c.what}`).toEqual([...c.removed].sort());
      }
    });
  }
});

describe('arch.md §3.3 per-operation table: the PE\'s own TLB (same rows, CPU entries have ASET 0)', () => {
  const rows = [...new Set(CASES.map((c) => c.row))];
  for (const row of rows) {
    // Knob cases are SMMU implementation choices; a PE applies the architectural scope.
    const cases = CASES.filter((c) => c.row === row && c.knobs === undefined);
    it(`§3.3 row ${row} on a PE`, () => {
      for (const c of cases) {
        const r = run(c);
        const expected = c.removed.filter((n) => !n.includes('aset1'));
        // ASID-matching ops spare ASET=1 on the SMMU only; with ASET 0 everywhere the PE removes
        // exactly the SMMU's set restricted to ASET-0 entries.
        expect(r.pe, `${row} — ${c.what}`).toEqual([...expected].sort());
      }
    });
  }
});

describe('arch.md §2.10 / §6.6-6.7 rules', () => {
  const find = (op: string, knobs?: Partial<SmmuKnobs>) => CASES.find((c) => c.op === op && c.knobs === knobs && !c.range && c.regime === REGIME.guestEl1);

  it('§6.6: ASET=1 entries are spared only by ASID-matching broadcasts (ASIDE1IS, VA{L}E1IS)', () => {
    for (const op of ['ASIDE1IS', 'VAE1IS', 'VALE1IS']) {
      const r = run(find(op)!);
      expect(r.smmu.filter((n) => n.includes('aset1')), op).toEqual([]);
    }
  });

  it('§6.6: VMALLE1IS, VAAE1IS, VMALLS12E1IS, ALLE1IS always remove ASET=1 entries', () => {
    for (const c of [find('VMALLE1IS')!, find('VAAE1IS')!,
      CASES.find((x) => x.op === 'VMALLS12E1IS')!, CASES.find((x) => x.op === 'ALLE1IS')!]) {
      const r = run(c);
      expect(r.smmu, c.op).toEqual(expect.arrayContaining(['L1.aset1', 'L1.glob.aset1', 'L1.nested.aset1']));
    }
  });

  it('§2.10: global entries are hit by VA ops (whatever the ASID) but not by ASIDE1IS', () => {
    expect(run(find('VAE1IS')!).smmu).toContain('L1.glob');
    expect(run({ ...find('VAE1IS')!, asid: A2 }).smmu).toContain('L1.glob');
    expect(run(find('ASIDE1IS')!).smmu).not.toContain('L1.glob');
  });

  it('§6.5: S1-only NS-EL1 entries filled by translate() carry STE.S2VMID (S2P=1), so VMALLE1IS of that VMID hits them', () => {
    const { sys, smmu } = makeSystem();
    const t = sys.memory.newTable(1, 'sva mm');
    t.map(0x100, 0x900);
    smmu.cdTables.set(0x1000, [newCd({ ASID: 9, TTB0: tableBase(t.id) })]);
    smmu.streamTable.set(3, newSte({ Config: STE_CONFIG.S1_TRANS, S1ContextPtr: 0x1000, S2VMID: 7 }));
    expect(smmu.translate(3, 0, 0x100)).toBe(0x900);
    const e = smmu.tlb.entry(smmu.lastSlot)!;
    expect([e.world, e.vmid, e.asid, e.stage]).toEqual([World.NS_EL1, 7, 9, Stage.S1]);
    const pe = sys.pes[0];
    const hit = (vmid: number, op: string) => {
      smmu.translate(3, 0, 0x100);
      Object.assign(pe.regime, { ...REGIME.guestEl1, vmid });
      pe.tlbi(newTlbiArgs(TLBI[op]));
      pe.dsb();
      return smmu.tlb.size === 0;
    };
    expect(hit(8, 'VMALLE1IS')).toBe(false);
    expect(hit(7, 'IPAS2E1IS')).toBe(false); // stage 1 entry: not an IPA entry
    expect(hit(7, 'VMALLE1IS')).toBe(true);
  });

  it('§6.7: there is no VMID opt-out — no knob and no ASET value keeps VMID-wide broadcasts off an entry of that VMID', () => {
    const knobSets: Partial<SmmuKnobs>[] = [
      {}, { asetSparesAsidBroadcasts: false }, { nhAllHitsS2: true }, { s2IpaHitsCombined: true },
      { el2WorldsCrossMatch: true }, { narrowIdsMatchLowBits: true }, { leafDropsWalkCache: true },
      { ptmIgnoresBroadcasts: false },
    ];
    const vmidWide: [string, string[]][] = [
      ['VMALLE1IS', ['L1.own', 'L1.aset1', 'L1.glob.aset1', 'L1.nested.aset1']],
      ['VMALLS12E1IS', ['L1.own', 'L1.aset1', 'L1.nested.aset1', 'L1.s2', 'L1.s2.far']],
      ['ALLE1IS', ['L1.aset1', 'L1.s2', 'L1.s2.vmid2', 'L1.vmid2']],
      ['IPAS2E1IS', ['L1.s2']],
    ];
    for (const knobs of knobSets) {
      for (const [op, must] of vmidWide) {
        const r = run({ row: op, what: JSON.stringify(knobs), op, regime: REGIME.nvheEl2, knobs, removed: [] });
        expect(r.smmu, `${op} ${JSON.stringify(knobs)}`).toEqual(expect.arrayContaining(must));
      }
    }
  });

  it('§3.3: the range decoding used by the table (TG=4K, SCALE=0, NUM=15) covers 32 pages including P', () => {
    expect(tlbiRangePages(1, 0, 15)).toBe(32);
    expect(P >= R_START && P < R_START + 32).toBe(true);
    expect(Q >= R_START + 32).toBe(true);
  });

  it('tlbiScope is deterministic and reuses its output object (no allocation per TLBI)', () => {
    const s: InvalScope = resetScope({} as InvalScope);
    const a = newTlbiArgs(TLBI.VAE1IS);
    a.asid = A; a.page = P;
    expect(tlbiScope(a, REGIME.guestEl1, true, s)).toBe(true);
    expect([s.worlds, s.vmid, s.asid, s.includeGlobal, s.skipAset, s.pageStart, s.pageCount])
      .toEqual([World.NS_EL1, V, A, true, true, P, 1]);
    a.op = TLBI.VMALLE1IS;
    tlbiScope(a, REGIME.guestEl1, true, s);
    expect([s.asid, s.skipAset, s.pageCount]).toEqual([-1, false, 0]);
  });
});
