import { Prng } from '../../sim/prng.js';
import { setIndexOf, validateGeometry, validateTlbEntry } from './geometry.js';
import { entryMatchesLookup, entryMatchesScope, type InvalScope, type TlbEntry } from './scope.js';
import { RemoveCause, type TlbGeometry, type TlbLike } from './tlb-api.js';

/** Stream id of the 'random' replacement policy's PRNG (shared with the fast TLB). */
export const TLB_RANDOM_STREAM = 0x7e1b;

/**
 * Slow, obviously correct TLB. It *defines* placement and replacement; the fast `Tlb` must
 * reproduce it slot for slot. Everything is a linear scan over `TlbEntry` objects and the
 * matching rules are `entryMatchesScope` / `entryMatchesLookup`, called as they are.
 *
 * - Slot = set * ways + way; the set of an entry is `setIndexOf(page, sizeLog2, setsLog2)`.
 * - Lookup probes, for each sizeLog2 present in the TLB in ascending order, the set of `page`
 *   at that size, ways ascending; first hit wins.
 * - Fill uses the lowest invalid way of the set, else the policy's victim: 'lru' = smallest
 *   last-use tick (ticks advance on every fill and every lookup hit); 'rr' = one counter per TLB
 *   shared by all sets (gem5), victim way = counter % ways, counter++ per eviction;
 *   'random' = Prng(seed ?? 1, TLB_RANDOM_STREAM).int(ways) per eviction.
 */
export class ReferenceTlb implements TlbLike {
  readonly geometry: Readonly<TlbGeometry>;
  onRemove: ((slot: number, cause: number) => void) | null = null;

  private readonly slots: (TlbEntry | null)[];
  private readonly lastUse: number[];
  private readonly setsLog2: number;
  private readonly ways: number;
  private tick = 0;
  private rrCounter = 0;
  private readonly rng: Prng;

  constructor(geometry: TlbGeometry) {
    const layout = validateGeometry(geometry);
    this.geometry = { ...geometry };
    this.setsLog2 = layout.setsLog2;
    this.ways = layout.ways;
    this.slots = new Array<TlbEntry | null>(geometry.entries).fill(null);
    this.lastUse = new Array<number>(geometry.entries).fill(0);
    this.rng = new Prng(geometry.seed ?? 1, TLB_RANDOM_STREAM);
  }

  get size(): number {
    let n = 0;
    for (const e of this.slots) if (e) n++;
    return n;
  }

  private presentSizes(): number[] {
    const sizes = new Set<number>();
    for (const e of this.slots) if (e) sizes.add(e.sizeLog2);
    return [...sizes].sort((a, b) => a - b);
  }

  lookup(world: number, vmid: number, asid: number, aset: number, ipa: boolean, page: number): number {
    for (const k of this.presentSizes()) {
      const base = setIndexOf(page, k, this.setsLog2) * this.ways;
      for (let w = 0; w < this.ways; w++) {
        const e = this.slots[base + w];
        if (e && entryMatchesLookup(e, world, vmid, asid, aset, ipa, page)) {
          this.lastUse[base + w] = ++this.tick;
          return base + w;
        }
      }
    }
    return -1;
  }

  fill(e: Readonly<TlbEntry>): number {
    validateTlbEntry(e);
    const base = setIndexOf(e.page, e.sizeLog2, this.setsLog2) * this.ways;
    let slot = -1;
    for (let w = 0; w < this.ways; w++) {
      if (this.slots[base + w] === null) { slot = base + w; break; }
    }
    if (slot < 0) {
      slot = base + this.victimWay(base);
      this.onRemove?.(slot, RemoveCause.EVICT);
      this.slots[slot] = null;
    }
    this.slots[slot] = copyEntry(e);
    this.lastUse[slot] = ++this.tick;
    return slot;
  }

  private victimWay(base: number): number {
    switch (this.geometry.policy) {
      case 'lru': {
        let best = 0;
        for (let w = 1; w < this.ways; w++) {
          if (this.lastUse[base + w] < this.lastUse[base + best]) best = w;
        }
        return best;
      }
      case 'rr':
        return this.rrCounter++ % this.ways;
      case 'random':
        return this.rng.int(this.ways);
    }
  }

  invalidate(s: Readonly<InvalScope>): number {
    let n = 0;
    for (let i = 0; i < this.slots.length; i++) {
      const e = this.slots[i];
      if (e && entryMatchesScope(e, s)) {
        this.onRemove?.(i, RemoveCause.INVALIDATE);
        this.slots[i] = null;
        n++;
      }
    }
    return n;
  }

  /** Number of entries the scope would remove (nothing is removed). */
  countMatching(s: Readonly<InvalScope>): number {
    let n = 0;
    for (const e of this.slots) if (e && entryMatchesScope(e, s)) n++;
    return n;
  }

  /** Drop one slot (reported to onRemove with `cause`). Returns false if it was already invalid. */
  invalidateSlot(slot: number, cause: number = RemoveCause.INVALIDATE): boolean {
    if (!this.slots[slot]) return false;
    this.onRemove?.(slot, cause);
    this.slots[slot] = null;
    return true;
  }

  clear(): void {
    this.slots.fill(null);
  }

  entry(slot: number): TlbEntry | null {
    const e = this.slots[slot];
    return e ? copyEntry(e) : null;
  }

  entries(): TlbEntry[] {
    const out: TlbEntry[] = [];
    for (const e of this.slots) if (e) out.push(copyEntry(e));
    return out;
  }
}

/** Field-by-field copy in a fixed key order (so deep-equality with the fast TLB's copies is exact). */
export function copyEntry(e: Readonly<TlbEntry>): TlbEntry {
  return {
    world: e.world, vmid: e.vmid, asid: e.asid, global: !!e.global, aset: e.aset, stage: e.stage,
    page: e.page, sizeLog2: e.sizeLog2, granuleLog2: e.granuleLog2, level: e.level, leaf: e.leaf,
    out: e.out, ctx: e.ctx,
  };
}
