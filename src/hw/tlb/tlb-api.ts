import type { InvalScope, TlbEntry } from './scope.js';

export type ReplacementPolicy = 'lru' | 'rr' | 'random';

export interface TlbGeometry {
  /** Total entries; a power of two. */
  entries: number;
  /** Ways per set; entries/ways sets (a power of two). ways === entries is fully associative. */
  ways: number;
  /** Victim choice when the set is full: invalid ways are always used first (gem5 does the same). */
  policy: ReplacementPolicy;
  /** Seed of the 'random' policy's own stream. */
  seed?: number;
}

/** Why an entry left the TLB. */
export const RemoveCause = {
  INVALIDATE: 1,
  EVICT: 2,
} as const;

/**
 * What every TLB implementation offers (the fast typed-array one and the reference one).
 * Slots are stable small integers; an entry's fields may be read with `entry(slot)` (allocates;
 * debugging and tests) or, in the fast TLB, straight from its typed arrays.
 */
export interface TlbLike {
  readonly geometry: Readonly<TlbGeometry>;
  /** Number of valid entries. */
  readonly size: number;
  /**
   * Find the entry translating `page` for a context with these tags (rule: `entryMatchesLookup`).
   * Sizes are probed in ascending sizeLog2 order, ways in ascending order; first hit wins.
   * A hit updates the replacement state (LRU). Returns the slot or -1.
   */
  lookup(world: number, vmid: number, asid: number, aset: number, ipa: boolean, page: number): number;
  /** Insert a copy of `e` (read, not retained). Returns its slot. May evict (cause EVICT). */
  fill(e: Readonly<TlbEntry>): number;
  /** Remove every entry matching the scope (rule: `entryMatchesScope`). Returns the count. */
  invalidate(s: Readonly<InvalScope>): number;
  /** Remove everything (not counted as invalidation by the listener). */
  clear(): void;
  /** Copy of the entry in `slot`, or null if invalid. */
  entry(slot: number): TlbEntry | null;
  /** All valid entries, ordered by slot (tests). */
  entries(): TlbEntry[];
  /**
   * Called for each entry just before it is removed by invalidate() or evicted by fill(); the
   * entry is still readable in the slot. Used by metrics (collateral damage) and the oracle.
   */
  onRemove: ((slot: number, cause: number) => void) | null;
}
