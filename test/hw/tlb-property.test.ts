import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Stage, World } from '../../src/arch/world.js';
import { ReferenceTlb } from '../../src/hw/tlb/reference-tlb.js';
import type { InvalScope, TlbEntry } from '../../src/hw/tlb/scope.js';
import type { ReplacementPolicy, TlbGeometry } from '../../src/hw/tlb/tlb-api.js';
import { InvalStrategy, Tlb } from '../../src/hw/tlb/tlb.js';

/**
 * Drive the fast Tlb and the ReferenceTlb with the same random operation sequences and require
 * identical observable behaviour after every step. Small pools of VMIDs/ASIDs/pages make
 * collisions, evictions and overlapping blocks common.
 */

const WORLDS = [World.NS_EL1, World.NS_EL2, World.NS_EL2_E2H, World.SECURE, World.EL3];
const STAGES = [Stage.S1, Stage.S2, Stage.NESTED];
const VMIDS = [0, 1, 2, 3, 5, 7];
const ASIDS = [0, 1, 2, 3];
/** Near-by small pages, plus pages straddling 2^32 and far above it (set-index folding). */
const pageArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 1100 }) },
  { weight: 1, arbitrary: fc.integer({ min: 2 ** 32 - 600, max: 2 ** 32 + 600 }) },
  { weight: 1, arbitrary: fc.integer({ min: 2 ** 45 - 600, max: 2 ** 45 + 600 }) },
);

const entryArb: fc.Arbitrary<TlbEntry> = fc
  .record({
    world: fc.constantFrom(...WORLDS),
    vmid: fc.constantFrom(...VMIDS),
    asid: fc.constantFrom(-1, ...ASIDS),
    global: fc.boolean(),
    aset: fc.constantFrom(0, 1, 2, 3),
    stage: fc.constantFrom(...STAGES),
    page: pageArb,
    sizeLog2: fc.constantFrom(0, 2, 9),
    granuleLog2: fc.constantFrom(12, 14, 16),
    level: fc.integer({ min: 0, max: 3 }),
    leaf: fc.constantFrom(0, 1, 1),
    out: fc.integer({ min: 0, max: 1 << 20 }),
    ctx: fc.integer({ min: 0, max: 9 }),
  })
  .map((e) => ({ ...e, page: Math.floor(e.page / 2 ** e.sizeLog2) * 2 ** e.sizeLog2 }));

const scopeArb: fc.Arbitrary<InvalScope> = fc
  .record({
    worlds: fc.integer({ min: 0, max: 31 }),
    vmid: fc.constantFrom(-1, ...VMIDS),
    vmidIgnoreBits: fc.integer({ min: 0, max: 2 }),
    asid: fc.constantFrom(-1, ...ASIDS),
    includeGlobal: fc.boolean(),
    skipAset: fc.constantFrom(false, false, true),
    skipVmidAset: fc.constantFrom(false, false, true),
    stages: fc.integer({ min: 0, max: 7 }),
    range: fc.option(fc.tuple(pageArb, fc.constantFrom(1, 2, 3, 5, 511, 512, 1000, 2 ** 20)), { nil: undefined }),
    leafOnly: fc.constantFrom(false, false, true),
    ttl: fc.constantFrom(0, 0, 0, 0, 1, 2, 3),
    granuleLog2: fc.constantFrom(0, 0, 0, 0, 12, 14, 16),
  })
  .map(({ range, ...s }) => ({ ...s, pageStart: range ? range[0] : 0, pageCount: range ? range[1] : 0 }));

/**
 * `like` ties a lookup or a scope to an entry filled earlier in the sequence (index modulo the
 * fills so far), so hits and non-empty invalidations are common rather than lucky.
 */
interface Like { idx: number; off: number; vmid: boolean; asid: boolean; addr: boolean; warp: number }

type Op =
  | { op: 'fill'; e: TlbEntry }
  | { op: 'lookup'; world: number; vmid: number; asid: number; aset: number; ipa: boolean; page: number; like: Like | null }
  | { op: 'invalidate'; s: InvalScope; strategy: number; like: Like | null }
  | { op: 'count'; s: InvalScope; strategy: number; like: Like | null }
  | { op: 'invalidateSlot'; slot: number }
  | { op: 'clear' };

const strategyArb = fc.constantFrom(...Object.values(InvalStrategy));
/** Number of lookup perturbations in warp(). */
const WARPS = 9;

/** Mostly `normal`, sometimes an input no entry can carry (the fast lookup short-cuts those). */
function weird<T>(normal: fc.Arbitrary<T>, odd: T[]): fc.Arbitrary<T> {
  return fc.oneof({ weight: 12, arbitrary: normal }, { weight: 1, arbitrary: fc.constantFrom(...odd) });
}
const likeArb: fc.Arbitrary<Like | null> = fc.option(
  fc.record({
    idx: fc.nat(1000), off: fc.nat(1000), vmid: fc.boolean(), asid: fc.boolean(), addr: fc.boolean(),
    warp: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: WARPS }) }),
  }),
  { nil: null, freq: 3 },
);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: entryArb.map((e): Op => ({ op: 'fill', e })) },
  {
    weight: 8,
    arbitrary: fc
      .record({
        world: weird(fc.constantFrom(...WORLDS), [0, 3, 2.5, 32, -1]),
        vmid: weird(fc.constantFrom(...VMIDS), [-1, 65536, 1.5]),
        asid: weird(fc.constantFrom(...ASIDS), [-1, -2, -16, 65536, 1.5]),
        aset: weird(fc.constantFrom(0, 1, 2, 3), [256, -1, 0.5]),
        ipa: fc.boolean(),
        page: weird(pageArb, [-1, -0.5, 3.5, 1023.25, 2 ** 32 + 0.5, 2 ** 53, 2 ** 60, NaN, Infinity]),
        like: likeArb,
      })
      .map((l): Op => ({ op: 'lookup', ...l })),
  },
  {
    weight: 3,
    arbitrary: fc.record({ s: scopeArb, strategy: strategyArb, like: likeArb }).map((x): Op => ({ op: 'invalidate', ...x })),
  },
  {
    weight: 1,
    arbitrary: fc.record({ s: scopeArb, strategy: strategyArb, like: likeArb }).map((x): Op => ({ op: 'count', ...x })),
  },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 127 }).map((slot): Op => ({ op: 'invalidateSlot', slot })) },
  { weight: 1, arbitrary: fc.constant<Op>({ op: 'clear' }) },
);

/** Rewrite a lookup so that it targets an earlier fill (tags from it, page inside it). */
/**
 * Near misses of a lookup aimed at entry e, each one wrong in a way the fast TLB's packed keys
 * could confuse with a hit (fractions truncated by ToInt32, values aliasing another key range).
 */
function warp(l: Extract<Op, { op: 'lookup' }>, e: TlbEntry, w: number): Extract<Op, { op: 'lookup' }> {
  switch (w) {
    case 1: return { ...l, world: l.world + 0.5 };
    case 2: return { ...l, world: l.world | 32 };
    case 3: return { ...l, vmid: l.vmid + 0.5 };
    case 4: return { ...l, vmid: l.vmid + 65536 };
    case 5: return { ...l, asid: l.asid + 0.5 };
    case 6: return { ...l, asid: -16 - e.aset }; // a global entry's packed ASID key
    case 7: return { ...l, aset: l.aset + 0.5 };
    case 8: return { ...l, aset: l.aset + 256 };
    case 9: return { ...l, page: l.page + 2 ** 32 }; // same low word
    default: return l;
  }
}

/** Rewrite a lookup so that it targets an earlier fill (tags from it, page inside it). */
function lookupLike(o: Extract<Op, { op: 'lookup' }>, fills: TlbEntry[]): Extract<Op, { op: 'lookup' }> {
  if (!o.like || fills.length === 0) return o;
  const e = fills[o.like.idx % fills.length];
  const l = {
    ...o,
    world: e.world,
    vmid: o.like.vmid ? e.vmid : o.vmid,
    asid: e.asid >= 0 && o.like.asid ? e.asid : o.asid,
    aset: o.like.addr ? e.aset : o.aset,
    ipa: e.stage === Stage.S2,
    page: e.page + (o.like.off % 2 ** e.sizeLog2),
  };
  return warp(l, e, o.like.warp);
}

/** Rewrite a scope so that its VMID/ASID/range come from an earlier fill. */
function scopeLike(s: InvalScope, like: Like | null, fills: TlbEntry[]): InvalScope {
  if (!like || fills.length === 0) return s;
  const e = fills[like.idx % fills.length];
  const out = { ...s, worlds: s.worlds | e.world, stages: s.stages | e.stage };
  if (like.vmid) out.vmid = e.vmid;
  if (like.asid && e.asid >= 0) out.asid = e.asid;
  if (like.addr) {
    // Start inside, before or after the entry so ranges cut blocks at either end.
    out.pageStart = Math.max(0, e.page + (like.off % 1100) - 550);
    if (out.pageCount === 0) out.pageCount = 1 + (like.off % 700);
  }
  return out;
}

interface Removal { slot: number; cause: number; e: TlbEntry | null }

function byCause(a: Removal, b: Removal): number {
  return a.slot - b.slot || a.cause - b.cause;
}

function snapshot(t: Tlb | ReferenceTlb, n: number): [number, TlbEntry][] {
  const out: [number, TlbEntry][] = [];
  for (let i = 0; i < n; i++) {
    const e = t.entry(i);
    if (e) out.push([i, e]);
  }
  return out;
}

function runBoth(geometry: TlbGeometry, tagIndex: boolean, ops: Op[]): void {
  const fast = new Tlb(geometry, { tagIndex });
  const ref = new ReferenceTlb(geometry);
  const fastRemoved: Removal[] = [];
  const refRemoved: Removal[] = [];
  fast.onRemove = (slot, cause) => fastRemoved.push({ slot, cause, e: fast.entry(slot) });
  ref.onRemove = (slot, cause) => refRemoved.push({ slot, cause, e: ref.entry(slot) });

  const fills: TlbEntry[] = [];
  for (const [step, op] of ops.entries()) {
    const o: Op =
      op.op === 'lookup' ? lookupLike(op, fills)
      : op.op === 'invalidate' || op.op === 'count' ? { ...op, s: scopeLike(op.s, op.like, fills) }
      : op;
    // Compare cheaply (JSON of plain numbers/booleans) and only build expect() diffs on a mismatch.
    const same = (what: string, a: unknown, b: unknown): void => {
      if (JSON.stringify(a) !== JSON.stringify(b)) expect(a, `step ${step} ${what}: ${JSON.stringify(o)}`).toEqual(b);
    };
    fastRemoved.length = 0;
    refRemoved.length = 0;
    switch (o.op) {
      case 'fill':
        fills.push(o.e);
        same('fill slot', fast.fill(o.e), ref.fill(o.e));
        break;
      case 'lookup': {
        const a = fast.lookup(o.world, o.vmid, o.asid, o.aset, o.ipa, o.page);
        const b = ref.lookup(o.world, o.vmid, o.asid, o.aset, o.ipa, o.page);
        same('lookup slot', a, b);
        same('lookup entry', fast.entry(a), ref.entry(b));
        break;
      }
      case 'invalidate':
        fast.forceStrategy = o.strategy;
        same('invalidate count', fast.invalidate(o.s), ref.invalidate(o.s));
        break;
      case 'count':
        fast.forceStrategy = o.strategy;
        same('countMatching', fast.countMatching(o.s), ref.countMatching(o.s));
        break;
      case 'invalidateSlot': {
        const slot = o.slot % geometry.entries;
        same('invalidateSlot', fast.invalidateSlot(slot), ref.invalidateSlot(slot));
        break;
      }
      case 'clear':
        fast.clear();
        ref.clear();
        break;
    }
    same('removed', fastRemoved.slice().sort(byCause), refRemoved.slice().sort(byCause));
    same('size', fast.size, ref.size);
    same('entries()', fast.entries(), ref.entries());
    same('slots', snapshot(fast, geometry.entries), snapshot(ref, geometry.entries));
  }
}

const GEOMETRIES: [string, number, number][] = [
  ['fully associative 8', 8, 8],
  ['16 sets x 4 ways', 64, 4],
  ['64 sets x 2 ways', 128, 2],
  ['8 sets x 5 ways', 40, 5],
  ['fully associative 64 (no way bitmask)', 64, 64],
];
const POLICIES: ReplacementPolicy[] = ['lru', 'rr', 'random'];

describe('Tlb agrees with ReferenceTlb on random operation sequences', () => {
  for (const [name, entries, ways] of GEOMETRIES) {
    for (const policy of POLICIES) {
      // Small TLBs have no VMID/ASID lists by default; run the lists too (they are what the
      // VMID/ASID strategies walk), and the list-less variant for the fully associative 8.
      for (const tagIndex of entries === 8 ? [true, false] : [true]) {
        it(`${name}, ${policy}${tagIndex ? '' : ', no tag index'}`, () => {
          const geometry: TlbGeometry = { entries, ways, policy, seed: 7 };
          fc.assert(
            fc.property(fc.array(opArb, { minLength: 1, maxLength: 150, size: 'medium' }), (ops) => runBoth(geometry, tagIndex, ops)),
            { seed: 0x5eed, numRuns: 200 },
          );
        });
      }
    }
  }
});
