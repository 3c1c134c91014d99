import { describe, expect, it } from 'vitest';
import { Stage, World } from '../../src/arch/world.js';
import { setIndexOf } from '../../src/hw/tlb/geometry.js';
import { ReferenceTlb } from '../../src/hw/tlb/reference-tlb.js';
import { scopeAll, type InvalScope, type TlbEntry } from '../../src/hw/tlb/scope.js';
import { RemoveCause, type TlbGeometry } from '../../src/hw/tlb/tlb-api.js';
import { InvalStrategy, Tlb } from '../../src/hw/tlb/tlb.js';
import { Prng } from '../../src/sim/prng.js';

type AnyTlb = Tlb | ReferenceTlb;

function entry(over: Partial<TlbEntry> = {}): TlbEntry {
  return {
    world: World.NS_EL1, vmid: 1, asid: 1, global: false, aset: 0, stage: Stage.S1,
    page: 0x100, sizeLog2: 0, granuleLog2: 12, level: 3, leaf: 1, out: 0x5000, ctx: 1,
    ...over,
  };
}

function scope(over: Partial<InvalScope> = {}): InvalScope {
  return { ...scopeAll(), ...over };
}

const impls: [string, (g: TlbGeometry) => AnyTlb][] = [
  ['Tlb', (g) => new Tlb(g)],
  ['ReferenceTlb', (g) => new ReferenceTlb(g)],
];

const G64: TlbGeometry = { entries: 64, ways: 4, policy: 'lru' };

/** Pages whose 4K set in a TLB with 2^setsLog2 sets is `set`. */
function pagesInSet(set: number, setsLog2: number, n: number, from = 0): number[] {
  const out: number[] = [];
  for (let p = from; out.length < n; p++) if (setIndexOf(p, 0, setsLog2) === set) out.push(p);
  return out;
}

describe.each(impls)('%s', (_name, make) => {
  describe('lookup', () => {
    it('hits after fill', () => {
      const t = make(G64);
      const slot = t.fill(entry());
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, 0x100)).toBe(slot);
      expect(t.entry(slot)).toEqual(entry());
      expect(t.size).toBe(1);
    });

    it('misses for another VMID, another ASID, another world or another page', () => {
      const t = make(G64);
      t.fill(entry());
      expect(t.lookup(World.NS_EL1, 2, 1, 0, false, 0x100)).toBe(-1);
      expect(t.lookup(World.NS_EL1, 1, 2, 0, false, 0x100)).toBe(-1);
      expect(t.lookup(World.SECURE, 1, 1, 0, false, 0x100)).toBe(-1);
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, 0x101)).toBe(-1);
    });

    it('ignores the VMID for worlds without a VMID tag', () => {
      const t = make(G64);
      const slot = t.fill(entry({ world: World.NS_EL2, vmid: 0, asid: -1 }));
      expect(t.lookup(World.NS_EL2, 9, 3, 0, false, 0x100)).toBe(slot);
    });

    it('global entry hits any ASID with the same ASET but not another ASET', () => {
      const t = make(G64);
      const slot = t.fill(entry({ global: true, asid: -1, aset: 0 }));
      expect(t.lookup(World.NS_EL1, 1, 5, 0, false, 0x100)).toBe(slot);
      expect(t.lookup(World.NS_EL1, 1, 77, 0, false, 0x100)).toBe(slot);
      expect(t.lookup(World.NS_EL1, 1, 5, 1, false, 0x100)).toBe(-1);
    });

    it('S2 (IPA) entries never hit VA lookups, and S1 entries never hit IPA lookups', () => {
      const t = make(G64);
      const s2 = t.fill(entry({ stage: Stage.S2, asid: -1 }));
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, 0x100)).toBe(-1);
      expect(t.lookup(World.NS_EL1, 1, 1, 0, true, 0x100)).toBe(s2);
      t.clear();
      t.fill(entry({ stage: Stage.S1 }));
      expect(t.lookup(World.NS_EL1, 1, 1, 0, true, 0x100)).toBe(-1);
    });

    it('NESTED entries hit VA lookups like S1 entries', () => {
      const t = make(G64);
      const slot = t.fill(entry({ stage: Stage.NESTED }));
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, 0x100)).toBe(slot);
    });

    it('non-leaf (walk-cache) entries never hit', () => {
      const t = make(G64);
      t.fill(entry({ leaf: 0, level: 2 }));
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, 0x100)).toBe(-1);
    });

    it('block entry (sizeLog2 9) hits any page in its 2 MiB', () => {
      const t = make(G64);
      const slot = t.fill(entry({ page: 0x400, sizeLog2: 9 }));
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, 0x400)).toBe(slot);
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, 0x4ab)).toBe(slot);
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, 0x5ff)).toBe(slot);
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, 0x600)).toBe(-1);
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, 0x3ff)).toBe(-1);
    });

    it('prefers the smaller size when a 4K and a 2M entry both translate the page', () => {
      const t = make(G64);
      t.fill(entry({ page: 0x400, sizeLog2: 9, out: 1 }));
      const small = t.fill(entry({ page: 0x401, sizeLog2: 0, out: 2 }));
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, 0x401)).toBe(small);
    });

    it('handles pages above 2^32', () => {
      const t = make(G64);
      const p = 2 ** 40 + 0x1234;
      const slot = t.fill(entry({ page: p }));
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, p)).toBe(slot);
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, 0x1234)).toBe(-1);
    });
  });

  describe('invalidate', () => {
    it('by VMID removes only that VMID', () => {
      const t = make(G64);
      for (let i = 0; i < 6; i++) t.fill(entry({ vmid: 1 + (i % 3), page: 0x100 + i }));
      expect(t.invalidate(scope({ vmid: 2 }))).toBe(2);
      expect(t.entries().map((e) => e.vmid).sort()).toEqual([1, 1, 3, 3]);
    });

    it('by VMID spares worlds without a VMID tag only if they are out of scope', () => {
      const t = make(G64);
      t.fill(entry({ vmid: 1 }));
      t.fill(entry({ world: World.NS_EL2, vmid: 0, asid: -1, page: 0x200 }));
      expect(t.countMatching(scope({ worlds: World.NS_EL1, vmid: 2 }))).toBe(0);
      // An NS-EL2 entry has no VMID, so a VMID-qualified scope naming NS-EL2 still matches it.
      expect(t.invalidate(scope({ worlds: World.NS_EL1 | World.NS_EL2, vmid: 2 }))).toBe(1);
      expect(t.entries()[0].world).toBe(World.NS_EL1);
    });

    it('ASID invalidation spares global entries unless includeGlobal', () => {
      const t = make(G64);
      t.fill(entry({ asid: 5, page: 1 }));
      t.fill(entry({ asid: 6, page: 2 }));
      t.fill(entry({ global: true, asid: -1, page: 3 }));
      expect(t.invalidate(scope({ vmid: 1, asid: 5, includeGlobal: false }))).toBe(1);
      expect(t.size).toBe(2);
      expect(t.invalidate(scope({ vmid: 1, asid: 5, includeGlobal: true }))).toBe(1);
      expect(t.entries().map((e) => e.asid)).toEqual([6]);
    });

    it('skipAset spares ASET=1 entries (aset bit 0)', () => {
      const t = make(G64);
      t.fill(entry({ aset: 0, page: 1 }));
      t.fill(entry({ aset: 1, page: 2 }));
      t.fill(entry({ aset: 2, page: 3 }));
      expect(t.invalidate(scope({ vmid: 1, skipAset: true }))).toBe(2);
      expect(t.entries().map((e) => e.aset)).toEqual([1]);
    });

    it('skipVmidAset spares entries with the stage-2 ASET (aset bit 1)', () => {
      const t = make(G64);
      t.fill(entry({ aset: 0, page: 1 }));
      t.fill(entry({ aset: 1, page: 2 }));
      t.fill(entry({ aset: 2, page: 3 }));
      t.fill(entry({ aset: 3, page: 4 }));
      expect(t.invalidate(scope({ vmid: 1, skipVmidAset: true }))).toBe(2);
      expect(t.entries().map((e) => e.aset)).toEqual([2, 3]);
    });

    it('leafOnly spares non-leaf entries', () => {
      const t = make(G64);
      t.fill(entry({ leaf: 1, page: 1 }));
      t.fill(entry({ leaf: 0, level: 2, page: 2 }));
      expect(t.invalidate(scope({ leafOnly: true }))).toBe(1);
      expect(t.entries().map((e) => e.leaf)).toEqual([0]);
    });

    it('TTL only removes leaf entries from that level', () => {
      const t = make(G64);
      t.fill(entry({ leaf: 1, level: 2, page: 0x200, sizeLog2: 9 }));
      t.fill(entry({ leaf: 1, level: 3, page: 1 }));
      t.fill(entry({ leaf: 0, level: 2, page: 2 }));
      expect(t.invalidate(scope({ ttl: 2 }))).toBe(1);
      expect(t.entries().map((e) => [e.level, e.leaf])).toEqual(expect.arrayContaining([[3, 1], [2, 0]]));
      expect(t.size).toBe(2);
    });

    it('granule filter only removes entries inserted with that granule', () => {
      const t = make(G64);
      t.fill(entry({ granuleLog2: 12, page: 1 }));
      t.fill(entry({ granuleLog2: 16, page: 16, sizeLog2: 4 }));
      expect(t.invalidate(scope({ granuleLog2: 16 }))).toBe(1);
      expect(t.entries().map((e) => e.granuleLog2)).toEqual([12]);
    });

    it('stage mask: S2-only scope spares S1 and NESTED entries', () => {
      const t = make(G64);
      t.fill(entry({ stage: Stage.S1, page: 1 }));
      t.fill(entry({ stage: Stage.NESTED, page: 2 }));
      t.fill(entry({ stage: Stage.S2, asid: -1, page: 3 }));
      expect(t.invalidate(scope({ vmid: 1, stages: Stage.S2 }))).toBe(1);
      expect(t.entries().map((e) => e.stage).sort()).toEqual([Stage.S1, Stage.NESTED]);
    });

    it('range invalidation hits a block entry that overlaps the range start', () => {
      const t = make(G64);
      t.fill(entry({ page: 0x200, sizeLog2: 9 })); // [0x200, 0x400)
      t.fill(entry({ page: 0x400, sizeLog2: 0 }));
      t.fill(entry({ page: 0x500, sizeLog2: 0 }));
      expect(t.invalidate(scope({ pageStart: 0x3ff, pageCount: 2 }))).toBe(2);
      expect(t.entries().map((e) => e.page)).toEqual([0x500]);
    });

    it('range invalidation is exclusive at the end of the range', () => {
      const t = make(G64);
      t.fill(entry({ page: 0x10 }));
      expect(t.invalidate(scope({ pageStart: 0x8, pageCount: 8 }))).toBe(0);
      expect(t.invalidate(scope({ pageStart: 0x8, pageCount: 9 }))).toBe(1);
    });

    it('vmidIgnoreBits ignores the low VMID bits', () => {
      const t = make(G64);
      for (let v = 3; v <= 8; v++) t.fill(entry({ vmid: v, page: v }));
      expect(t.invalidate(scope({ vmid: 5, vmidIgnoreBits: 2 }))).toBe(4);
      expect(t.entries().map((e) => e.vmid).sort()).toEqual([3, 8]);
    });

    it('invalidateSlot drops one slot and reports it', () => {
      const t = make(G64);
      const slot = t.fill(entry());
      const seen: [number, number][] = [];
      t.onRemove = (s, c) => seen.push([s, c]);
      expect(t.invalidateSlot(slot, RemoveCause.INVALIDATE)).toBe(true);
      expect(t.invalidateSlot(slot, RemoveCause.INVALIDATE)).toBe(false);
      expect(seen).toEqual([[slot, RemoveCause.INVALIDATE]]);
      expect(t.size).toBe(0);
    });

    it('clear removes everything without calling onRemove', () => {
      const t = make(G64);
      for (let i = 0; i < 10; i++) t.fill(entry({ page: i }));
      let calls = 0;
      t.onRemove = () => calls++;
      t.clear();
      expect(t.size).toBe(0);
      expect(calls).toBe(0);
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, 3)).toBe(-1);
    });

    it('onRemove sees the entry before removal with the right cause', () => {
      const t = make({ entries: 4, ways: 4, policy: 'lru' });
      const seen: [number, number, TlbEntry | null][] = [];
      t.onRemove = (s, c) => seen.push([s, c, t.entry(s)]);
      for (let i = 0; i < 4; i++) t.fill(entry({ page: i, ctx: i }));
      t.fill(entry({ page: 9, ctx: 9 })); // evicts the oldest (page 0, slot 0)
      expect(seen).toEqual([[0, RemoveCause.EVICT, entry({ page: 0, ctx: 0 })]]);
      seen.length = 0;
      t.invalidate(scope({ pageStart: 2, pageCount: 1 }));
      expect(seen).toEqual([[2, RemoveCause.INVALIDATE, entry({ page: 2, ctx: 2 })]]);
    });
  });

  describe('replacement', () => {
    it('uses the lowest invalid way before evicting', () => {
      const t = make({ entries: 4, ways: 4, policy: 'rr' });
      for (let i = 0; i < 4; i++) t.fill(entry({ page: i }));
      t.invalidate(scope({ pageStart: 1, pageCount: 2 }));
      let evictions = 0;
      t.onRemove = () => evictions++;
      expect(t.fill(entry({ page: 10 }))).toBe(1);
      expect(t.fill(entry({ page: 11 }))).toBe(2);
      expect(evictions).toBe(0);
    });

    it('lru evicts the least recently filled-or-hit way', () => {
      const t = make({ entries: 4, ways: 4, policy: 'lru' });
      for (let i = 0; i < 4; i++) t.fill(entry({ page: i }));
      t.lookup(World.NS_EL1, 1, 1, 0, false, 0); // refresh way 0
      t.lookup(World.NS_EL1, 1, 1, 0, false, 1); // refresh way 1
      expect(t.fill(entry({ page: 20 }))).toBe(2);
      expect(t.fill(entry({ page: 21 }))).toBe(3);
      expect(t.fill(entry({ page: 22 }))).toBe(0);
      // misses do not refresh anything
      t.lookup(World.NS_EL1, 1, 1, 0, false, 999);
      expect(t.fill(entry({ page: 23 }))).toBe(1);
    });

    it('rr uses one counter shared by all sets (gem5)', () => {
      const g: TlbGeometry = { entries: 8, ways: 2, policy: 'rr' }; // 4 sets
      const t = make(g);
      const a = pagesInSet(0, 2, 3);
      const b = pagesInSet(3, 2, 3);
      for (const p of [a[0], a[1], b[0], b[1]]) t.fill(entry({ page: p }));
      expect(t.fill(entry({ page: a[2] }))).toBe(0 * 2 + 0); // counter 0 -> way 0
      expect(t.fill(entry({ page: b[2] }))).toBe(3 * 2 + 1); // counter 1 -> way 1 of another set
      expect(t.fill(entry({ page: a[0] }))).toBe(0 * 2 + 0); // counter 2 -> way 0
    });

    it('random draws the victim from Prng(seed, 0x7e1b)', () => {
      const t = make({ entries: 8, ways: 8, policy: 'random', seed: 42 });
      for (let i = 0; i < 8; i++) t.fill(entry({ page: i }));
      const rng = new Prng(42, 0x7e1b);
      for (let i = 0; i < 20; i++) expect(t.fill(entry({ page: 100 + i }))).toBe(rng.int(8));
    });
  });

  describe('validation', () => {
    it('rejects bad geometry with a clear message', () => {
      expect(() => make({ entries: 12, ways: 4, policy: 'lru' })).toThrow(/number of sets, 12\/4 = 3\) must be a power of two/);
      expect(() => make({ entries: 0, ways: 1, policy: 'lru' })).toThrow(/entries must be an integer/);
      expect(() => make({ entries: 16, ways: 3, policy: 'lru' })).toThrow(/must divide entries/);
      expect(() => make({ entries: 16, ways: 0, policy: 'lru' })).toThrow(/ways must be an integer >= 1/);
      expect(() => make({ entries: 16, ways: 4, policy: 'fifo' as 'lru' })).toThrow(/policy/);
    });

    it('accepts ways that are not a power of two when the sets are (Cortex-A76 L2: 1280 x 5-way)', () => {
      const t = make({ entries: 1280, ways: 5, policy: 'lru' });
      const pages = pagesInSet(7, 8, 6);
      const slots = pages.map((p) => t.fill(entry({ page: p }))); // the 6th evicts the oldest
      expect(slots).toEqual([35, 36, 37, 38, 39, 35]);
      expect(t.size).toBe(5);
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, pages[0])).toBe(-1);
      expect(t.lookup(World.NS_EL1, 1, 1, 0, false, pages[5])).toBe(35);
    });

    it('rejects entries that would not fit the tags or the placement rule', () => {
      const t = make(G64);
      expect(() => t.fill(entry({ vmid: 65536 }))).toThrow(/vmid/);
      expect(() => t.fill(entry({ asid: -2 }))).toThrow(/asid/);
      expect(() => t.fill(entry({ page: 0x201, sizeLog2: 9 }))).toThrow(/aligned/);
      expect(() => t.fill(entry({ world: 3 }))).toThrow(/world/);
      expect(t.size).toBe(0);
    });
  });
});

describe('Tlb indexed invalidation', () => {
  /** 4096-entry 4-way TLB full of VMIDs 100..199, plus 3 entries of VMID 7 and ASID 9. */
  function crowded(): Tlb {
    const t = new Tlb({ entries: 4096, ways: 4, policy: 'rr' });
    for (let p = 0; p < 4096; p++) t.fill(entry({ vmid: 100 + (p % 100), asid: 1 + (p % 50), page: p }));
    for (let i = 0; i < 3; i++) t.fill(entry({ vmid: 7, asid: 900, page: 0x10000 + i * 77 }));
    expect(t.size).toBe(4096);
    return t;
  }

  it('examines only the entries of the VMID being invalidated', () => {
    const t = crowded();
    t.stats.examined = 0;
    expect(t.invalidate(scope({ worlds: World.NS_EL1, vmid: 7, stages: Stage.S1 | Stage.NESTED }))).toBe(3);
    expect(t.stats.examined).toBeLessThanOrEqual(3 + 2);
    expect(t.stats.invalByVmid).toBe(1);
    expect(t.vmidEntries(7)).toBe(0);
  });

  it('examines only the entries of the ASID being invalidated', () => {
    const t = crowded();
    t.stats.examined = 0;
    expect(t.invalidate(scope({ worlds: World.NS_EL1, vmid: 7, asid: 900, includeGlobal: false }))).toBe(3);
    expect(t.stats.examined).toBeLessThanOrEqual(3 + 2);
  });

  it('walks the 2^vmidIgnoreBits VMID lists', () => {
    const t = crowded();
    t.stats.examined = 0;
    // VMIDs 4..7 (VMW=2): only the three VMID-7 entries exist among them.
    expect(t.invalidate(scope({ worlds: World.NS_EL1, vmid: 4, vmidIgnoreBits: 2 }))).toBe(3);
    expect(t.stats.examined).toBeLessThanOrEqual(3 + 2);
  });

  it('small TLBs keep no VMID/ASID lists by default and still answer by scanning', () => {
    const small = new Tlb({ entries: 32, ways: 32, policy: 'rr' });
    expect(small.tagIndexed).toBe(false);
    for (let i = 0; i < 5; i++) small.fill(entry({ vmid: 7, page: i }));
    expect(small.vmidEntries(7)).toBe(5);
    expect(small.asidEntries(1)).toBe(5);
    expect(small.invalidate(scope({ worlds: World.NS_EL1, vmid: 7 }))).toBe(5);
    expect(new Tlb({ entries: 32, ways: 32, policy: 'rr' }, { tagIndex: true }).tagIndexed).toBe(true);
    expect(new Tlb({ entries: 4096, ways: 4, policy: 'rr' }).tagIndexed).toBe(true);
  });

  it('probes only the sets of a small address range', () => {
    const t = crowded();
    t.stats.examined = 0;
    expect(t.invalidate(scope({ pageStart: 10, pageCount: 2 }))).toBe(2);
    expect(t.stats.examined).toBeLessThanOrEqual(2 * 4);
    expect(t.stats.invalByAddress).toBe(1);
  });

  it('gives the same result whichever strategy is forced', () => {
    const s = scope({ worlds: World.NS_EL1, vmid: 150, asid: 1, includeGlobal: false, pageStart: 0, pageCount: 2048 });
    const expected = countRef(s);
    expect(expected).toBeGreaterThan(0);
    for (const strategy of Object.values(InvalStrategy)) {
      const t = crowded();
      t.forceStrategy = strategy;
      expect(t.invalidate(s)).toBe(expected);
      expect(t.countMatching(s)).toBe(0);
    }
  });
});

/** The same crowded TLB contents, counted by the reference rule. */
function countRef(s: InvalScope): number {
  const r = new ReferenceTlb({ entries: 4096, ways: 4, policy: 'rr' });
  for (let p = 0; p < 4096; p++) r.fill(entry({ vmid: 100 + (p % 100), asid: 1 + (p % 50), page: p }));
  for (let i = 0; i < 3; i++) r.fill(entry({ vmid: 7, asid: 900, page: 0x10000 + i * 77 }));
  return r.countMatching(s);
}
