import { World, Stage } from '../../arch/world.js';
import type { TlbEntry } from './scope.js';
import type { TlbGeometry } from './tlb-api.js';

/**
 * Placement rules shared by the fast and the reference TLB. Both must compute set indexes with
 * exactly these functions, otherwise they would place entries differently and stop agreeing.
 */

/**
 * Largest entry size (log2 of 4 KiB pages): 2^32 pages = 16 TiB, above any Arm block (a 64K-granule
 * level-1 block is 4 TiB = 2^30 pages). The fast TLB keeps 2^size - 1 in 32 bits.
 */
export const MAX_SIZE_LOG2 = 32;
/** VMID and ASID tags are 16-bit (IDR0.VMID16 / ASID16); the fast TLB indexes them directly. */
export const TAG_LIMIT = 65536;

/** 2^k and 2^-k for k in 0..63: exact, and avoids Math.pow on the hot path. */
export const POW2 = new Float64Array(64);
export const INV_POW2 = new Float64Array(64);
for (let k = 0; k < 64; k++) {
  POW2[k] = 2 ** k;
  INV_POW2[k] = 2 ** -k;
}

const POLICIES = new Set(['lru', 'rr', 'random']);
const WORLD_BITS = World.NS_EL1 | World.NS_EL2 | World.NS_EL2_E2H | World.SECURE | World.EL3;
const STAGE_BITS = Stage.S1 | Stage.S2 | Stage.NESTED;

export interface SetLayout {
  sets: number;
  setsLog2: number;
  ways: number;
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0 && n <= 2 ** 30;
}

/**
 * Throws a descriptive Error unless the geometry is usable; returns the set layout. The number
 * of sets must be a power of two (the set index is a bit mask); ways need not be, so that e.g.
 * a Cortex-A76 L2 TLB (1280 entries, 5-way, 256 sets) can be modelled.
 */
export function validateGeometry(g: TlbGeometry): SetLayout {
  if (!Number.isInteger(g.entries) || g.entries < 1 || g.entries > 2 ** 26) {
    throw new Error(`TLB geometry: entries must be an integer in 1..2^26, got ${g.entries}`);
  }
  if (!Number.isInteger(g.ways) || g.ways < 1) {
    throw new Error(`TLB geometry: ways must be an integer >= 1, got ${g.ways}`);
  }
  if (g.entries % g.ways !== 0) {
    throw new Error(`TLB geometry: ways (${g.ways}) must divide entries (${g.entries})`);
  }
  const sets = g.entries / g.ways;
  if (!isPow2(sets)) {
    throw new Error(`TLB geometry: entries/ways (the number of sets, ${g.entries}/${g.ways} = ${sets}) must be a power of two`);
  }
  if (!POLICIES.has(g.policy)) {
    throw new Error(`TLB geometry: policy must be 'lru', 'rr' or 'random', got '${String(g.policy)}'`);
  }
  if (g.seed !== undefined && !Number.isInteger(g.seed)) {
    throw new Error(`TLB geometry: seed must be an integer, got ${g.seed}`);
  }
  return { sets, setsLog2: Math.log2(sets), ways: g.ways };
}

/**
 * Set of a size-aligned block number (page / 2^sizeLog2). The block number can need up to 52
 * bits; it is folded to 32 deterministically: low word, low word shifted by the index width
 * (so that neighbouring blocks at a set-count stride still spread), and the high word.
 * Blocks are integers >= 0 in every real use; anything else is still folded deterministically
 * (ToUint32), identically for both TLBs.
 */
export function setIndexOfBlock(block: number, setsLog2: number): number {
  const lo = block >>> 0; // ToUint32 = block mod 2^32 for integers below 2^53
  // floor(block / 2^32), skipped (0) in the common case so the hot path saves a multiply.
  const hi = block < 4294967296 ? 0 : (block * 2.3283064365386963e-10) >>> 0;
  return (lo ^ (lo >>> setsLog2) ^ hi) & ((1 << setsLog2) - 1);
}

/** Set probed for `page` at entry size 2^sizeLog2 pages (also the set an entry of that size is filled into). */
export function setIndexOf(page: number, sizeLog2: number, setsLog2: number): number {
  // sizeLog2 0 (4 KiB, the common case) needs no division.
  return setIndexOfBlock(sizeLog2 === 0 ? page : Math.floor(page * INV_POW2[sizeLog2]), setsLog2);
}

function bad(field: string, v: unknown, want: string): never {
  throw new Error(`TLB fill: ${field} ${String(v)} is invalid (${want})`);
}

/**
 * Checks that an entry fits the fast TLB's typed arrays and indexes. Both TLBs call it so that
 * they accept and reject exactly the same entries. Every fill pays for it, so the common case is
 * one chain of cheap tests ((x & m) === x is an integer-and-range test); the field-by-field
 * diagnosis runs only for a bad entry.
 */
export function validateTlbEntry(e: Readonly<TlbEntry>): void {
  const w = e.world;
  const st = e.stage;
  const k = e.sizeLog2;
  const p = e.page;
  if (
    (w & WORLD_BITS) === w && w !== 0 && (w & (w - 1)) === 0
    && (st & STAGE_BITS) === st && st !== 0 && (st & (st - 1)) === 0
    && (e.vmid & 0xffff) === e.vmid
    && (e.asid === -1 || (e.asid & 0xffff) === e.asid)
    && (e.aset & 0xff) === e.aset
    && (e.leaf === 0 || e.leaf === 1)
    && (e.level & 0xff) === e.level
    && (e.granuleLog2 & 0xff) === e.granuleLog2
    && (k & 0x3f) === k && k <= MAX_SIZE_LOG2
    && p >= 0 && p + POW2[k] <= 2 ** 53
    && Math.floor(p * INV_POW2[k]) * POW2[k] === p // integer and aligned (exact power-of-two scaling)
    && typeof e.out === 'number' && e.out === e.out // not NaN
    && (e.ctx | 0) === e.ctx
  ) return;
  diagnoseTlbEntry(e);
}

/** Throws the precise complaint about an entry validateTlbEntry rejected. */
function diagnoseTlbEntry(e: Readonly<TlbEntry>): never {
  const w = e.world;
  if (!Number.isInteger(w) || w <= 0 || (w & (w - 1)) !== 0 || (w & WORLD_BITS) !== w) {
    bad('world', w, 'one World bit');
  }
  const st = e.stage;
  if (!Number.isInteger(st) || st <= 0 || (st & (st - 1)) !== 0 || (st & STAGE_BITS) !== st) {
    bad('stage', st, 'one Stage bit');
  }
  if (!Number.isInteger(e.vmid) || e.vmid < 0 || e.vmid >= TAG_LIMIT) bad('vmid', e.vmid, '0..65535');
  if (!Number.isInteger(e.asid) || e.asid < -1 || e.asid >= TAG_LIMIT) bad('asid', e.asid, '-1..65535');
  if (!Number.isInteger(e.aset) || e.aset < 0 || e.aset > 255) bad('aset', e.aset, '0..255');
  if (e.leaf !== 0 && e.leaf !== 1) bad('leaf', e.leaf, '0 or 1');
  if (!Number.isInteger(e.level) || e.level < 0 || e.level > 255) bad('level', e.level, '0..255');
  if (!Number.isInteger(e.granuleLog2) || e.granuleLog2 < 0 || e.granuleLog2 > 255) {
    bad('granuleLog2', e.granuleLog2, '0..255');
  }
  const k = e.sizeLog2;
  if (!Number.isInteger(k) || k < 0 || k > MAX_SIZE_LOG2) bad('sizeLog2', k, `0..${MAX_SIZE_LOG2}`);
  const p = e.page;
  if (!Number.isInteger(p) || p < 0 || p + POW2[k] > 2 ** 53) bad('page', p, 'integer >= 0, page + size <= 2^53');
  // Placement and range invalidation rely on the entry sitting in its own aligned block.
  if (p % POW2[k] !== 0) bad('page', p, `aligned to 2^${k} pages`);
  if (typeof e.out !== 'number' || Number.isNaN(e.out)) bad('out', e.out, 'a number');
  bad('ctx', e.ctx, 'a 32-bit integer');
}
