import { ASID_TAGGED_WORLDS, Stage, VMID_TAGGED_WORLDS } from '../../arch/world.js';
import { Prng } from '../../sim/prng.js';
import {
  INV_POW2, POW2, TAG_LIMIT, setIndexOf, setIndexOfBlock, validateGeometry, validateTlbEntry,
} from './geometry.js';
import { TLB_RANDOM_STREAM } from './reference-tlb.js';
import type { InvalScope, TlbEntry } from './scope.js';
import { RemoveCause, type TlbGeometry, type TlbLike } from './tlb-api.js';

/**
 * How `invalidate`/`countMatching` enumerate candidates. AUTO picks the cheapest applicable one;
 * the others exist so tests can force each path (ignored when not applicable to the scope).
 */
export const InvalStrategy = {
  AUTO: 0,
  /** Probe the sets of every aligned block of the range, for every present size. */
  ADDRESS: 1,
  /** Walk the VMID list(s) (2^vmidIgnoreBits of them) + the world lists of VMID-untagged worlds. */
  VMID: 2,
  /** Walk one ASID list + the world lists of ASID-untagged worlds (only when !includeGlobal). */
  ASID: 3,
  /** Walk the world list of every world in scope: a full scan that skips invalid slots. */
  WORLD: 4,
} as const;

/** Counters for tests and metrics (plain numbers, bumped in place). */
export interface TlbStats {
  /** Candidate slots examined by invalidate/countMatching (each probed or walked slot counts once). */
  examined: number;
  invalByAddress: number;
  invalByVmid: number;
  invalByAsid: number;
  invalByWorld: number;
}

/** Construction options of the fast TLB. */
export interface TlbOptions {
  /**
   * Keep the per-VMID and per-ASID lists (1 MiB of heads and counts per TLB). Default: only
   * for TLBs of at least TAG_INDEX_MIN_ENTRIES entries; a micro-TLB is scanned faster than
   * the index would save, and many of them would otherwise cost 1 MiB each.
   */
  tagIndex?: boolean;
}

/** Default size from which VMID/ASID lists are kept (see TlbOptions.tagIndex). */
export const TAG_INDEX_MIN_ENTRIES = 128;

const NIL = -1;
const WORLD_COUNT = 5; // World bits 1..16 -> list index 0..4
const WORLD_MASK = 0x1f;
/** Maximum vmidIgnoreBits served by walking VMID lists (CR0.VMW is 0..4); wider falls back. */
const MAX_VMID_LIST_BITS = 8;
/** A forced ADDRESS strategy is honoured only below this many probes (huge ranges would hang a test). */
const FORCE_ADDRESS_LIMIT = 1 << 16;

/**
 * Lookup record: REC_STRIDE int32 words per slot, so that everything a probe reads for one set
 * sits in one cache line (the public per-field arrays would cost a line per field):
 *   REC_LO    low 32 bits of page (ToInt32)
 *   REC_LIMF  (2^sizeLog2 - 1) ^ 0x80000000: the span limit with the sign bit flipped, so that
 *             an unsigned compare is done as a signed int32 compare (sizeLog2 <= 32 fits)
 *   REC_KEY   world bit | KEY_S2 for stage-2 entries | VMID << 8 (VMID-tagged worlds);
 *             NO_KEY (-1) when the entry never hits (invalid slot or non-leaf entry)
 *   REC_AKEY  the ASID of a non-global entry (-1..65535), AKEY_GLOBAL - aset of a global one
 *             (-16..-271); neither range contains AKEY_NONE
 * All int32 so V8 compares words without float conversions. A candidate's page is then checked
 * exactly against page/pageEnd.
 */
const REC_STRIDE = 4;
const REC_LO = 0;
const REC_LIMF = 1;
const REC_KEY = 2;
const REC_AKEY = 3;
const INT_MIN = -0x80000000;
const KEY_S2 = 0x20;
const KEY_VMID_SHIFT = 8;
const NO_KEY = -1;
const AKEY_GLOBAL = -16;
/** A wanted akey no entry has (out-of-range lookup ASID or ASET). */
const AKEY_NONE = -2;

const POLICY_LRU = 0;
const POLICY_RR = 1;
const POLICY_RANDOM = 2;

function link(head: Int32Array, next: Int32Array, prev: Int32Array, key: number, i: number): void {
  const h = head[key];
  next[i] = h;
  prev[i] = NIL;
  if (h !== NIL) prev[h] = i;
  head[key] = i;
}

function unlink(head: Int32Array, next: Int32Array, prev: Int32Array, key: number, i: number): void {
  const p = prev[i];
  const n = next[i];
  if (p !== NIL) next[p] = n;
  else head[key] = n;
  if (n !== NIL) prev[n] = p;
}

/**
 * The fast TLB. Produces exactly the results of `ReferenceTlb` (same slots, hits, victims, set of
 * removed slots) for any operation sequence; only the order of onRemove calls within one
 * invalidate() may differ. Nothing is allocated by lookup/fill/invalidate/countMatching.
 * onRemove must not modify the TLB (it runs in the middle of a list walk).
 *
 * Entry fields live in one typed array per field, indexed by slot (= set * ways + way), and are
 * public so metrics and the oracle can read them without allocating. A slot's fields are
 * meaningful only while `valid[slot] === 1` (stale values remain after removal).
 *
 * Lookup: for each size present (ascending), one set is probed through `rec`, a packed int32
 * copy of what a probe needs (low page word, span, a key of world/stage/leaf/VMID, an ASID key),
 * 16 bytes per slot, so a 4-way set is one cache line; the way test is branch-free.
 *
 * Invalidation index: every valid slot is on an intrusive doubly linked list for its world;
 * entries of VMID-tagged worlds also on the list of their VMID; non-global entries of ASID-tagged
 * worlds (with asid >= 0) on the list of their ASID. VMID/ASID heads are indexed directly by the
 * 16-bit tag, with per-key counts, so invalidating a VMID or ASID costs O(entries with that tag)
 * whatever the TLB size. invalidate() picks the cheapest of: probing the sets of the range,
 * walking the VMID or ASID list(s), walking the world lists (see InvalStrategy).
 */
export class Tlb implements TlbLike {
  readonly geometry: Readonly<TlbGeometry>;
  readonly sets: number;
  readonly ways: number;
  readonly setsLog2: number;

  /** World bit (World.*). */
  readonly world: Uint8Array;
  /** Stage bit (Stage.*). */
  readonly stage: Uint8Array;
  /** CD.ASET. */
  readonly aset: Uint8Array;
  /** 1 = global (nG=0). */
  readonly global: Uint8Array;
  /** 1 = last-level entry. */
  readonly leaf: Uint8Array;
  /** Walk level of the leaf. */
  readonly level: Uint8Array;
  /** log2 of the 4 KiB pages covered. */
  readonly sizeLog2: Uint8Array;
  /** Granule the entry was inserted with (12/14/16). */
  readonly granuleLog2: Uint8Array;
  /** VMID tag (0..65535). */
  readonly vmid: Int32Array;
  /** ASID tag, -1 = none. */
  readonly asid: Int32Array;
  /** Translation context that filled the entry (never used to match). */
  readonly ctx: Int32Array;
  /** First page covered, size aligned. */
  readonly page: Float64Array;
  /** Output page. */
  readonly out: Float64Array;
  /** 1 = slot holds an entry. */
  readonly valid: Uint8Array;
  /** Replacement tick of the last fill or lookup hit (LRU). */
  readonly lastUse: Float64Array;

  /** Test/metrics counters; see TlbStats. */
  readonly stats: TlbStats = { examined: 0, invalByAddress: 0, invalByVmid: 0, invalByAsid: 0, invalByWorld: 0 };
  /** InvalStrategy to force (tests); AUTO in normal use. */
  forceStrategy: number = InvalStrategy.AUTO;
  onRemove: ((slot: number, cause: number) => void) | null = null;

  /** page + 2^sizeLog2, kept so a lookup compares without recomputing the span. */
  private readonly pageEnd: Float64Array;
  /** Packed lookup records, REC_STRIDE words per slot (see REC_*). */
  private readonly rec: Int32Array;
  private readonly wNext: Int32Array;
  private readonly wPrev: Int32Array;
  private readonly vNext: Int32Array;
  private readonly vPrev: Int32Array;
  private readonly aNext: Int32Array;
  private readonly aPrev: Int32Array;
  private readonly worldHead = new Int32Array(WORLD_COUNT).fill(NIL);
  private readonly worldCount = new Int32Array(WORLD_COUNT);
  /** Whether the VMID/ASID lists exist (TlbOptions.tagIndex); without them VMID/ASID scopes walk world lists. */
  readonly tagIndexed: boolean;
  private readonly vmidHead: Int32Array;
  private readonly vmidCount: Int32Array;
  private readonly asidHead: Int32Array;
  private readonly asidCount: Int32Array;
  /** Entries per sizeLog2 (<= MAX_SIZE_LOG2 < 64), and the sizes with a non-zero count in ascending order. */
  private readonly sizeCount = new Int32Array(64);
  private readonly sizeList = new Uint8Array(64);
  private nSizes = 0;

  private count = 0;
  /** Valid entries whose span reaches page 2^32 (see probe()). */
  private farEntries = 0;
  private tick = 0;
  private rrCounter = 0;
  private readonly policy: number;
  private readonly rng: Prng;

  constructor(geometry: TlbGeometry, options: TlbOptions = {}) {
    const layout = validateGeometry(geometry);
    this.tagIndexed = options.tagIndex ?? geometry.entries >= TAG_INDEX_MIN_ENTRIES;
    const tags = this.tagIndexed ? TAG_LIMIT : 0;
    this.vmidHead = new Int32Array(tags).fill(NIL);
    this.vmidCount = new Int32Array(tags);
    this.asidHead = new Int32Array(tags).fill(NIL);
    this.asidCount = new Int32Array(tags);
    this.geometry = { ...geometry };
    this.sets = layout.sets;
    this.ways = layout.ways;
    this.setsLog2 = layout.setsLog2;
    const n = geometry.entries;
    this.world = new Uint8Array(n);
    this.stage = new Uint8Array(n);
    this.aset = new Uint8Array(n);
    this.global = new Uint8Array(n);
    this.leaf = new Uint8Array(n);
    this.level = new Uint8Array(n);
    this.sizeLog2 = new Uint8Array(n);
    this.granuleLog2 = new Uint8Array(n);
    this.vmid = new Int32Array(n);
    this.asid = new Int32Array(n);
    this.ctx = new Int32Array(n);
    this.page = new Float64Array(n);
    this.out = new Float64Array(n);
    this.valid = new Uint8Array(n);
    this.lastUse = new Float64Array(n);
    this.pageEnd = new Float64Array(n);
    this.rec = new Int32Array(n * REC_STRIDE);
    for (let i = 0; i < n; i++) this.clearRec(i);
    this.wNext = new Int32Array(n);
    this.wPrev = new Int32Array(n);
    this.vNext = new Int32Array(n);
    this.vPrev = new Int32Array(n);
    this.aNext = new Int32Array(n);
    this.aPrev = new Int32Array(n);
    this.policy = geometry.policy === 'lru' ? POLICY_LRU : geometry.policy === 'rr' ? POLICY_RR : POLICY_RANDOM;
    this.rng = new Prng(geometry.seed ?? 1, TLB_RANDOM_STREAM);
  }

  get size(): number {
    return this.count;
  }

  /** Valid entries tagged with this VMID (VMID-tagged worlds only). */
  vmidEntries(vmid: number): number {
    if (!this.tagIndexed) return this.countTagged(vmid, true);
    return vmid >= 0 && vmid < TAG_LIMIT ? this.vmidCount[vmid] : 0;
  }

  /** Valid non-global entries of ASID-tagged worlds with this ASID. */
  asidEntries(asid: number): number {
    if (!this.tagIndexed) return this.countTagged(asid, false);
    return asid >= 0 && asid < TAG_LIMIT ? this.asidCount[asid] : 0;
  }

  /** vmidEntries/asidEntries by scanning, for a TLB without the tag lists. */
  private countTagged(tag: number, byVmid: boolean): number {
    let n = 0;
    for (let i = 0; i < this.valid.length; i++) {
      if (this.valid[i] === 0) continue;
      if (byVmid ? (this.world[i] & VMID_TAGGED_WORLDS) !== 0 && this.vmid[i] === tag
        : this.inAsidList(i) && this.asid[i] === tag) n++;
    }
    return n;
  }

  lookup(world: number, vmid: number, asid: number, aset: number, ipa: boolean, page: number): number {
    // Tags no entry can carry cannot hit (and a miss changes no state): stop here, which also
    // keeps the packed keys collision-free. A world must be one integer bit of WORLD_MASK.
    if ((world & WORLD_MASK) !== world || (world & (world - 1)) !== 0 || world === 0) return -1;
    const vmidTagged = (world & VMID_TAGGED_WORLDS) !== 0;
    if (vmidTagged && (vmid & 0xffff) !== vmid) return -1;
    const want = world | (ipa ? KEY_S2 : 0) | (vmidTagged ? vmid << KEY_VMID_SHIFT : 0);
    // The ASID rule as two akey values, one for non-global entries (the ASID), one for global
    // entries (AKEY_GLOBAL - aset); an input no entry can carry maps to AKEY_NONE.
    const checkAsid = !ipa && (world & ASID_TAGGED_WORLDS) !== 0;
    const wantAsid = (asid | 0) === asid && asid >= -1 && asid < TAG_LIMIT ? asid : AKEY_NONE;
    const wantAset = (aset & 0xff) === aset ? AKEY_GLOBAL - aset : AKEY_NONE;
    if (this.ways > 32) return this.probeWide(want, checkAsid, wantAsid, wantAset, page);
    return this.farEntries === 0 && (page >>> 0) === page
      ? this.probeExact(want, checkAsid, wantAsid, wantAset, page)
      : this.probe(want, checkAsid, wantAsid, wantAset, page);
  }

  /**
   * The probe loop of lookup() (kept apart so each function stays under V8's inlining bytecode
   * limit and callers get lookup inlined). Sizes ascending, ways ascending, first hit wins.
   */
  private probe(want: number, checkAsid: boolean, wantAsid: number, wantAset: number, page: number): number {
    const ways = this.ways;
    const rec = this.rec;
    const p32 = page | 0;
    for (let si = 0; si < this.nSizes; si++) {
      const base = setIndexOf(page, this.sizeList[si], this.setsLog2) * ways;
      // Candidate ways as a bitmask computed without branches: the hit way is random, and a
      // data-dependent branch per way mispredicts often enough to dominate the lookup.
      // The test is the unsigned range check (page - pg) mod 2^32 <= span - 1 on the low words
      // (sign-flipped to a signed compare). It never drops a hit; false candidates (pages 2^32
      // apart, invalid slots) are rejected by hitAt.
      let m = 0;
      for (let w = 0; w < ways; w++) {
        const r = (base + w) * REC_STRIDE; // (one induction variable: a second one cost 25% of a hit)
        m |= Number((((p32 - rec[r + REC_LO]) | 0) ^ INT_MIN) <= rec[r + REC_LIMF]) << w;
      }
      while (m !== 0) {
        const i = base + 31 - Math.clz32(m & -m); // lowest candidate way first
        m &= m - 1;
        if (this.hitAt(i, want, checkAsid, wantAsid, wantAset, page)) return i;
      }
    }
    return -1;
  }

  /**
   * probe() when the low-word range test is exact: no entry reaches page 2^32 and `page` is an
   * integer in [0, 2^32), so no wrap-around is possible. A candidate then only needs its key
   * and akey checked, both in the record line the range test already read: the entry arrays
   * (page, pageEnd) are not touched.
   */
  private probeExact(want: number, checkAsid: boolean, wantAsid: number, wantAset: number, page: number): number {
    const ways = this.ways;
    const rec = this.rec;
    const p32 = page | 0;
    const setsLog2 = this.setsLog2;
    const setMask = (1 << setsLog2) - 1;
    for (let si = 0; si < this.nSizes; si++) {
      // setIndexOf() for a page below 2^32: the block number is page >>> k, and its high word 0.
      const b = (p32 >>> this.sizeList[si]) | 0;
      const base = ((b ^ (b >>> setsLog2)) & setMask) * ways;
      let m = 0;
      for (let w = 0; w < ways; w++) {
        const r = (base + w) * REC_STRIDE;
        m |= Number((((p32 - rec[r + REC_LO]) | 0) ^ INT_MIN) <= rec[r + REC_LIMF]) << w;
      }
      while (m !== 0) {
        const i = base + 31 - Math.clz32(m & -m);
        m &= m - 1;
        const r = i * REC_STRIDE;
        if (rec[r + REC_KEY] !== want) continue;
        if (checkAsid) {
          const a = rec[r + REC_AKEY];
          if (a !== wantAsid && a !== wantAset) continue;
        }
        if (this.policy === POLICY_LRU) this.lastUse[i] = ++this.tick;
        return i;
      }
    }
    return -1;
  }

  /** probe() for more than 32 ways (no bitmask): every way of each probed set is a candidate. */
  private probeWide(want: number, checkAsid: boolean, wantAsid: number, wantAset: number, page: number): number {
    for (let si = 0; si < this.nSizes; si++) {
      const base = setIndexOf(page, this.sizeList[si], this.setsLog2) * this.ways;
      for (let i = base; i < base + this.ways; i++) {
        if (this.hitAt(i, want, checkAsid, wantAsid, wantAset, page)) return i;
      }
    }
    return -1;
  }

  /**
   * entryMatchesLookup for slot i: world/stage/leaf/VMID as one key compare, the ASID rule as an
   * akey compare, then the exact page range (candidates only passed a low-word filter). Invalid
   * slots carry NO_KEY. A hit refreshes the LRU tick (only the LRU policy reads it).
   */
  private hitAt(i: number, want: number, checkAsid: boolean, wantAsid: number, wantAset: number, page: number): boolean {
    const rec = this.rec;
    const r = i * REC_STRIDE;
    if (rec[r + REC_KEY] !== want) return false;
    if (checkAsid) {
      const a = rec[r + REC_AKEY];
      if (a !== wantAsid && a !== wantAset) return false;
    }
    if (!(page >= this.page[i] && page < this.pageEnd[i])) return false;
    if (this.policy === POLICY_LRU) this.lastUse[i] = ++this.tick;
    return true;
  }

  private clearRec(i: number): void {
    const r = i * REC_STRIDE;
    // Candidate only for pages whose low word is 2^31, then rejected by NO_KEY.
    this.rec[r + REC_LO] = INT_MIN;
    this.rec[r + REC_LIMF] = INT_MIN;
    this.rec[r + REC_KEY] = NO_KEY;
    this.rec[r + REC_AKEY] = AKEY_NONE;
  }

  fill(e: Readonly<TlbEntry>): number {
    validateTlbEntry(e);
    const ways = this.ways;
    const base = setIndexOf(e.page, e.sizeLog2, this.setsLog2) * ways;
    let slot = -1;
    for (let i = base; i < base + ways; i++) {
      if (this.valid[i] === 0) { slot = i; break; }
    }
    if (slot < 0) {
      slot = base + this.victimWay(base);
      this.onRemove?.(slot, RemoveCause.EVICT);
      this.removeSlot(slot);
    }
    const i = slot;
    const w = e.world;
    this.world[i] = w;
    this.stage[i] = e.stage;
    this.aset[i] = e.aset;
    this.global[i] = e.global ? 1 : 0;
    this.leaf[i] = e.leaf;
    this.level[i] = e.level;
    this.sizeLog2[i] = e.sizeLog2;
    this.granuleLog2[i] = e.granuleLog2;
    this.vmid[i] = e.vmid;
    this.asid[i] = e.asid;
    this.ctx[i] = e.ctx;
    this.page[i] = e.page;
    this.pageEnd[i] = e.page + POW2[e.sizeLog2];
    const r = i * REC_STRIDE;
    this.rec[r + REC_LO] = e.page | 0;
    this.rec[r + REC_LIMF] = (POW2[e.sizeLog2] - 1) ^ INT_MIN;
    this.rec[r + REC_KEY] = e.leaf === 0 ? NO_KEY
      : w | (e.stage === Stage.S2 ? KEY_S2 : 0) | ((w & VMID_TAGGED_WORLDS) !== 0 ? e.vmid << KEY_VMID_SHIFT : 0);
    this.rec[r + REC_AKEY] = e.global ? AKEY_GLOBAL - e.aset : e.asid;
    this.out[i] = e.out;
    this.valid[i] = 1;
    this.lastUse[i] = ++this.tick;
    this.count++;
    const wi = 31 - Math.clz32(w);
    link(this.worldHead, this.wNext, this.wPrev, wi, i);
    this.worldCount[wi]++;
    if (this.tagIndexed && (w & VMID_TAGGED_WORLDS) !== 0) {
      link(this.vmidHead, this.vNext, this.vPrev, e.vmid, i);
      this.vmidCount[e.vmid]++;
    }
    if (this.tagIndexed && this.inAsidList(i)) {
      link(this.asidHead, this.aNext, this.aPrev, e.asid, i);
      this.asidCount[e.asid]++;
    }
    if (this.sizeCount[e.sizeLog2]++ === 0) this.addSize(e.sizeLog2);
    if (this.pageEnd[i] > 4294967296) this.farEntries++;
    return slot;
  }

  private victimWay(base: number): number {
    const ways = this.ways;
    if (this.policy === POLICY_LRU) {
      let best = 0;
      let bestTick = this.lastUse[base];
      for (let w = 1; w < ways; w++) {
        const t = this.lastUse[base + w];
        if (t < bestTick) { best = w; bestTick = t; }
      }
      return best;
    }
    if (this.policy === POLICY_RR) return this.rrCounter++ % ways;
    return this.rng.int(ways);
  }

  private inAsidList(i: number): boolean {
    return (this.world[i] & ASID_TAGGED_WORLDS) !== 0 && this.global[i] === 0 && this.asid[i] >= 0;
  }

  private addSize(k: number): void {
    const list = this.sizeList;
    let j = this.nSizes++;
    while (j > 0 && list[j - 1] > k) { list[j] = list[j - 1]; j--; }
    list[j] = k;
  }

  private dropSize(k: number): void {
    const list = this.sizeList;
    const n = this.nSizes;
    let j = 0;
    while (list[j] !== k) j++;
    for (; j < n - 1; j++) list[j] = list[j + 1];
    this.nSizes = n - 1;
  }

  /** Unlink a valid slot from every index and mark it invalid (no listener call). */
  private removeSlot(i: number): void {
    const w = this.world[i];
    const wi = 31 - Math.clz32(w);
    unlink(this.worldHead, this.wNext, this.wPrev, wi, i);
    this.worldCount[wi]--;
    if (this.tagIndexed && (w & VMID_TAGGED_WORLDS) !== 0) {
      unlink(this.vmidHead, this.vNext, this.vPrev, this.vmid[i], i);
      this.vmidCount[this.vmid[i]]--;
    }
    if (this.tagIndexed && this.inAsidList(i)) {
      unlink(this.asidHead, this.aNext, this.aPrev, this.asid[i], i);
      this.asidCount[this.asid[i]]--;
    }
    const k = this.sizeLog2[i];
    if (--this.sizeCount[k] === 0) this.dropSize(k);
    if (this.pageEnd[i] > 4294967296) this.farEntries--;
    this.valid[i] = 0;
    this.clearRec(i);
    this.count--;
  }

  /** entryMatchesScope over the typed arrays; must stay equivalent to it. */
  private matches(i: number, s: Readonly<InvalScope>): boolean {
    const w = this.world[i];
    if ((w & s.worlds) === 0) return false;
    if ((this.stage[i] & s.stages) === 0) return false;
    if (s.vmid >= 0 && (w & VMID_TAGGED_WORLDS) !== 0) {
      if (this.vmid[i] >>> s.vmidIgnoreBits !== s.vmid >>> s.vmidIgnoreBits) return false;
    }
    if (s.asid >= 0 && (w & ASID_TAGGED_WORLDS) !== 0) {
      if (this.global[i] !== 0) {
        if (!s.includeGlobal) return false;
      } else if (this.asid[i] !== s.asid) return false;
    }
    if (s.skipAset && (this.aset[i] & 1) !== 0) return false;
    if (s.skipVmidAset && (this.aset[i] & 2) !== 0) return false;
    if (s.leafOnly && this.leaf[i] === 0) return false;
    if (s.ttl !== 0 && (this.leaf[i] === 0 || this.level[i] !== s.ttl)) return false;
    if (s.granuleLog2 !== 0 && this.granuleLog2[i] !== s.granuleLog2) return false;
    if (s.pageCount !== 0) {
      if (this.page[i] >= s.pageStart + s.pageCount || this.pageEnd[i] <= s.pageStart) return false;
    }
    return true;
  }

  invalidate(s: Readonly<InvalScope>): number {
    return this.scan(s, true);
  }

  /** Number of entries `invalidate(s)` would remove; removes nothing. */
  countMatching(s: Readonly<InvalScope>): number {
    return this.scan(s, false);
  }

  /**
   * Drop one slot, e.g. one found by lookup that must go (a micro-TLB kept coherent).
   * onRemove sees it first. Returns false if the slot was already invalid.
   */
  invalidateSlot(slot: number, cause: number = RemoveCause.INVALIDATE): boolean {
    if (this.valid[slot] === 0) return false;
    this.onRemove?.(slot, cause);
    this.removeSlot(slot);
    return true;
  }

  private worldsCost(worlds: number): number {
    let c = 0;
    for (let b = 0; b < WORLD_COUNT; b++) if ((worlds >>> b) & 1) c += this.worldCount[b];
    return c;
  }

  /** Probes needed by the ADDRESS strategy, or Infinity if it does not apply; stops above `limit`. */
  private addressCost(s: Readonly<InvalScope>, limit: number): number {
    const start = s.pageStart;
    const end = s.pageStart + s.pageCount;
    if (!(s.pageCount > 0) || !Number.isFinite(end) || !Number.isFinite(start)) return Infinity;
    let c = 0;
    for (let si = 0; si < this.nSizes; si++) {
      const k = this.sizeList[si];
      const first = Math.max(0, Math.floor(start * INV_POW2[k]));
      const last = Math.ceil(end * INV_POW2[k]) - 1;
      if (last >= first) c += (last - first + 1) * this.ways;
      if (c > limit) return Infinity;
    }
    return c;
  }

  private scan(s: Readonly<InvalScope>, remove: boolean): number {
    const worlds = s.worlds & WORLD_MASK;
    const worldCost = this.worldsCost(worlds);
    if (worldCost === 0) return 0; // no entry of any world in scope

    let vmidCost = Infinity;
    let vmidFirst = 0;
    let vmidEnd = 0;
    const vb = s.vmidIgnoreBits;
    if (this.tagIndexed && s.vmid >= 0 && (worlds & VMID_TAGGED_WORLDS) !== 0 && Number.isInteger(vb) && vb >= 0 && vb <= MAX_VMID_LIST_BITS) {
      // Keys k with k >>> vb === s.vmid >>> vb, computed exactly as the predicate does.
      vmidFirst = (s.vmid >>> vb) * POW2[vb];
      vmidEnd = Math.min(vmidFirst + POW2[vb], TAG_LIMIT);
      vmidCost = this.worldsCost(worlds & ~VMID_TAGGED_WORLDS);
      for (let k = vmidFirst; k < vmidEnd; k++) vmidCost += this.vmidCount[k];
    }

    let asidCost = Infinity;
    let asidKey = -1;
    if (this.tagIndexed && s.asid >= 0 && !s.includeGlobal && (worlds & ASID_TAGGED_WORLDS) !== 0) {
      // A tagged non-global entry matches only if its asid === s.asid, so it is on that list
      // (an s.asid outside 0..65535 or fractional matches no tagged entry at all).
      if (Number.isInteger(s.asid) && s.asid < TAG_LIMIT) asidKey = s.asid;
      asidCost = this.worldsCost(worlds & ~ASID_TAGGED_WORLDS) + (asidKey >= 0 ? this.asidCount[asidKey] : 0);
    }

    let strategy: number = InvalStrategy.WORLD;
    let best = worldCost;
    if (vmidCost < best) { strategy = InvalStrategy.VMID; best = vmidCost; }
    if (asidCost < best) { strategy = InvalStrategy.ASID; best = asidCost; }
    const forced = this.forceStrategy;
    const addrCost = this.addressCost(s, forced === InvalStrategy.ADDRESS ? FORCE_ADDRESS_LIMIT : best);
    if (addrCost < best) { strategy = InvalStrategy.ADDRESS; best = addrCost; }
    if (forced === InvalStrategy.ADDRESS && addrCost !== Infinity) strategy = forced;
    else if (forced === InvalStrategy.VMID && vmidCost !== Infinity) strategy = forced;
    else if (forced === InvalStrategy.ASID && asidCost !== Infinity) strategy = forced;
    else if (forced === InvalStrategy.WORLD) strategy = forced;

    switch (strategy) {
      case InvalStrategy.ADDRESS:
        this.stats.invalByAddress++;
        return this.scanAddress(s, remove);
      case InvalStrategy.VMID: {
        this.stats.invalByVmid++;
        let n = this.scanWorlds(worlds & ~VMID_TAGGED_WORLDS, s, remove);
        for (let k = vmidFirst; k < vmidEnd; k++) n += this.scanList(this.vmidHead, this.vNext, k, s, remove);
        return n;
      }
      case InvalStrategy.ASID: {
        this.stats.invalByAsid++;
        let n = this.scanWorlds(worlds & ~ASID_TAGGED_WORLDS, s, remove);
        if (asidKey >= 0) n += this.scanList(this.asidHead, this.aNext, asidKey, s, remove);
        return n;
      }
      default:
        this.stats.invalByWorld++;
        return this.scanWorlds(worlds, s, remove);
    }
  }

  private scanWorlds(worlds: number, s: Readonly<InvalScope>, remove: boolean): number {
    let n = 0;
    for (let b = 0; b < WORLD_COUNT; b++) {
      if ((worlds >>> b) & 1) n += this.scanList(this.worldHead, this.wNext, b, s, remove);
    }
    return n;
  }

  private scanList(head: Int32Array, next: Int32Array, key: number, s: Readonly<InvalScope>, remove: boolean): number {
    let n = 0;
    let i = head[key];
    while (i !== NIL) {
      const nx = next[i]; // read before i is unlinked
      this.stats.examined++;
      if (this.matches(i, s)) {
        n++;
        if (remove) {
          this.onRemove?.(i, RemoveCause.INVALIDATE);
          this.removeSlot(i);
        }
      }
      i = nx;
    }
    return n;
  }

  /**
   * For each present size k, an entry of size k overlapping [start, end) sits in an aligned block
   * b with floor(start/2^k) <= b <= ceil(end/2^k) - 1, in set setIndexOfBlock(b). Candidates are
   * filtered to that exact (size, block) first, so each entry is examined once even when several
   * blocks share a set.
   */
  private scanAddress(s: Readonly<InvalScope>, remove: boolean): number {
    const start = s.pageStart;
    const end = s.pageStart + s.pageCount;
    const ways = this.ways;
    let n = 0;
    // Iterate sizes by value: removals may shrink sizeList while we walk it.
    const kMax = this.sizeList[this.nSizes - 1];
    for (let k = 0; k <= kMax; k++) {
      if (this.sizeCount[k] === 0) continue;
      const first = Math.max(0, Math.floor(start * INV_POW2[k]));
      const last = Math.ceil(end * INV_POW2[k]) - 1;
      const span = POW2[k];
      for (let b = first; b <= last; b++) {
        const base = setIndexOfBlock(b, this.setsLog2) * ways;
        const blockPage = b * span;
        for (let i = base; i < base + ways; i++) {
          this.stats.examined++;
          if (this.valid[i] === 0 || this.sizeLog2[i] !== k || this.page[i] !== blockPage) continue;
          if (this.matches(i, s)) {
            n++;
            if (remove) {
              this.onRemove?.(i, RemoveCause.INVALIDATE);
              this.removeSlot(i);
            }
          }
        }
      }
    }
    return n;
  }

  clear(): void {
    this.valid.fill(0);
    for (let i = 0; i < this.valid.length; i++) this.clearRec(i);
    this.worldHead.fill(NIL);
    this.worldCount.fill(0);
    this.vmidHead.fill(NIL);
    this.vmidCount.fill(0);
    this.asidHead.fill(NIL);
    this.asidCount.fill(0);
    this.sizeCount.fill(0);
    this.nSizes = 0;
    this.count = 0;
    this.farEntries = 0;
  }

  entry(slot: number): TlbEntry | null {
    if (!(slot >= 0 && slot < this.valid.length) || this.valid[slot] === 0) return null;
    return {
      world: this.world[slot], vmid: this.vmid[slot], asid: this.asid[slot], global: this.global[slot] !== 0,
      aset: this.aset[slot], stage: this.stage[slot], page: this.page[slot], sizeLog2: this.sizeLog2[slot],
      granuleLog2: this.granuleLog2[slot], level: this.level[slot], leaf: this.leaf[slot], out: this.out[slot],
      ctx: this.ctx[slot],
    };
  }

  entries(): TlbEntry[] {
    const out: TlbEntry[] = [];
    for (let i = 0; i < this.valid.length; i++) {
      const e = this.entry(i);
      if (e) out.push(e);
    }
    return out;
  }
}
