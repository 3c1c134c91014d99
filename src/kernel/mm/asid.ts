/**
 * The arm64 CPU ASID allocator, `arch/arm64/mm/context.c` of current mainline (v6.13+, commit
 * c0900d15d31c "generation step fixed at 1<<16"; pinning since 48118151d8cc, v5.10; KPTI 0xaa
 * odd-bit pattern since f88f42f853a8, v5.6). Transcribed function by function; names follow the
 * kernel (`new_context` → `newContext`, `flush_context` → `flushContext`, ...). See
 * docs/allocators.md for what was read and every deliberate simplification.
 *
 * Single-threaded model: the lock-free fast path is taken exactly when the CPU's `active_asids`
 * entry is non-zero and the mm's context id is of the current generation (the `cmpxchg` of the
 * kernel cannot lose a race here).
 *
 * Number representation: context ids (`generation | asid`, 64-bit in the kernel) are JS numbers.
 * They are exact while `generation number < 2^37` (step 2^16) — i.e. for more than 10^11
 * rollovers, far beyond any simulation. `ctx & mask` is exact for every safe integer (ToInt32 is
 * a modulo 2^32), so no BigInt is needed anywhere.
 *
 * Hot path (`checkAndSwitchContext` fast path) allocates nothing: it returns a result object
 * owned by the allocator and overwritten by every call.
 */

// ---------------------------------------------------------------------------------------------
// Bitmaps (unsigned long * in the kernel): Uint32Array words, bit i = word i>>5, bit i&31.
// Shared with the KVM VMID allocator (arch/arm64/kvm/vmid.c is a copy of this file's algorithm).

/** Number of 32-bit words holding `nbits` bits. */
export function bitmapWords(nbits: number): number {
  return (nbits + 31) >>> 5;
}

export function testBit(map: Uint32Array, bit: number): boolean {
  return (map[bit >>> 5] & (1 << (bit & 31))) !== 0;
}

/** `__set_bit` */
export function setBit(map: Uint32Array, bit: number): void {
  map[bit >>> 5] |= 1 << (bit & 31);
}

/** `__clear_bit` */
export function clearBit(map: Uint32Array, bit: number): void {
  map[bit >>> 5] &= ~(1 << (bit & 31));
}

/** `__test_and_set_bit`: returns the old value. */
export function testAndSetBit(map: Uint32Array, bit: number): boolean {
  const w = bit >>> 5;
  const m = 1 << (bit & 31);
  const old = map[w];
  map[w] = old | m;
  return (old & m) !== 0;
}

/**
 * `find_next_zero_bit(map, size, offset)`: index of the first clear bit in [offset, size), or
 * `size` if there is none. Word scan, no wrap-around.
 */
export function findNextZeroBit(map: Uint32Array, size: number, offset: number): number {
  if (offset >= size) return size;
  let w = offset >>> 5;
  // Bits below `offset` in the first word count as "set".
  let inv = ~map[w] & (-1 << (offset & 31));
  const lastWord = (size - 1) >>> 5;
  for (;;) {
    if (inv !== 0) {
      const bit = (w << 5) + (31 - Math.clz32(inv & -inv));
      return bit < size ? bit : size;
    }
    if (++w > lastWord) return size;
    inv = ~map[w];
  }
}

/** `memset(map, 0xaa, ...)` over whole words: sets every odd bit (the kernel's set_kpti_asid_bits). */
export function fillOddBits(map: Uint32Array): void {
  map.fill(0xaaaaaaaa);
}

/** Bits [0, nbits) as a string of '0'/'1', character i = bit i (vector `map` format). */
export function bitmapToString(map: Uint32Array, nbits: number): string {
  let s = '';
  for (let i = 0; i < nbits; i++) s += testBit(map, i) ? '1' : '0';
  return s;
}

/** `unsigned long` arithmetic of a limit that may underflow (kernel WARNs, then wraps). */
export function ulongLimit(x: number): number {
  return x >= 0 ? x : 2 ** 64 + x;
}

/** `REFCOUNT_SATURATED` (INT_MIN / 2): where refcount_t parks after an underflow/overflow WARN. */
/** Per-object state arrays grow by doubling to hold index `minLength - 1` (zero-filled). */
export function growTo<T extends Float64Array | Int32Array>(a: T, minLength: number): T {
  if (a.length >= minLength) return a;
  let n = Math.max(1, a.length);
  while (n < minLength) n *= 2;
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}

export const REFCOUNT_SATURATED = -(2 ** 30);

// ---------------------------------------------------------------------------------------------

export type AsidGenerationStep = '2^16' | '2^bits';

export interface Arm64AsidOptions {
  /** `asid_bits` (what get_cpu_asid_bits() returns): 8 or 16 on real CPUs; 2..16 accepted. */
  bits: number;
  /** `num_possible_cpus()`; CPUs are 0..cpus-1. */
  cpus: number;
  /** `arm64_kernel_unmapped_at_el0()` at run time (KPTI in use). Default false. */
  kpti?: boolean;
  /** `IS_ENABLED(CONFIG_UNMAP_KERNEL_AT_EL0)`. Default true (defconfig). */
  cfgUnmap?: boolean;
  /**
   * `ASID_FIRST_VERSION`: '2^16' since v6.13 (c0900d15d31c, also in stable), '2^bits' before.
   * Default '2^16'.
   */
  generationStep?: AsidGenerationStep;
  /**
   * Pinning support (`pinned_asid_map` allocated; v5.10+). false models a kernel without it (or
   * whose bitmap allocation failed): context_get returns 0 and rollover rebuilds the map from the
   * KPTI pattern only (the v5.6–v5.9 flush_context). Default true.
   */
  pinning?: boolean;
  hooks?: Arm64AsidHooks;
}

/** Optional callbacks for the simulator (not on the fast path). */
export interface Arm64AsidHooks {
  /** flush_context() ran (called after it completed); `gen` = new generation number. */
  onRollover?: (gen: number) => void;
  /** local_flush_tlb_all() (TLBI VMALLE1, non-shareable) on `cpu`, inside a slow-path switch. */
  onLocalFlush?: (cpu: number) => void;
}

/** Result of checkAndSwitchContext; one object per allocator, overwritten by every call. */
export interface AsidSwitchResult {
  /** mm's context.id after the call. */
  ctxid: number;
  /** ctxid & (2^bits - 1): the ASID programmed into TTBR1 (kernel ASID; user ASID is |1 under KPTI). */
  asid: number;
  /** Generation number of ctxid (ctxid / ASID_FIRST_VERSION). */
  gen: number;
  /** 'fast' = lock-free path; 'slow' = took cpu_asid_lock. */
  path: 'fast' | 'slow';
  /** context.id changed. */
  changed: boolean;
  /** local_flush_tlb_all() ran on this CPU (its tlb_flush_pending bit was consumed). */
  flush: boolean;
  /** flush_context() ran (generation bumped) during this call. */
  rollover: boolean;
}

/** Details of the last contextGet (arm64_mm_context_get); overwritten by every call. */
export interface AsidPinResult {
  /** Returned value: ASID (|1 under KPTI), 0 on failure. */
  ret: number;
  ctxid: number;
  /** mm's context.pinned after the call. */
  refcount: number;
  changed: boolean;
  rollover: boolean;
}

/** Vector-format `state` (FORMAT.md). */
export interface AsidStateSnapshot {
  gen: number;
  active: string[];
  reserved: string[];
  pending: boolean[];
  nr_pinned: number;
  map?: string;
  pinned_map?: string;
}

const MAX_OBJECT_ID = 1 << 26;

export class Arm64AsidAllocator {
  readonly bits: number;
  readonly cpus: number;
  readonly kpti: boolean;
  readonly cfgUnmap: boolean;
  readonly generationStep: AsidGenerationStep;
  /** ASID_FIRST_VERSION */
  readonly asidFirstVersion: number;
  /** NUM_USER_ASIDS = 2^bits */
  readonly numUserAsids: number;
  /** ~ASID_MASK = 2^bits - 1 */
  readonly asidLowMask: number;

  /** asid_generation (generation number × ASID_FIRST_VERSION). */
  asidGeneration = 0;
  readonly asidMap: Uint32Array;
  /** null = pinning unsupported (kernel: bitmap allocation failed / pre-v5.10). */
  readonly pinnedAsidMap: Uint32Array | null;
  /** Per-CPU active_asids (context ids; 0 = cleared by a rollover). */
  readonly activeAsids: Float64Array;
  /** Per-CPU reserved_asids. */
  readonly reservedAsids: Float64Array;
  /** tlb_flush_pending cpumask, one byte per CPU. */
  readonly tlbFlushPending: Uint8Array;
  /** The function-local `static u32 cur_idx = 1` of new_context(). */
  curIdx = 1;
  nrPinnedAsids = 0;
  maxPinnedAsids = 0;

  /** Per-mm context.id, indexed by mm id (grown on demand). */
  private mmCtx: Float64Array;
  /** Per-mm context.pinned refcount. */
  private mmPinned: Int32Array;

  /** Statistics. */
  rollovers = 0;
  localFlushes = 0;
  /** Kernel WARN_ONs that fired (never on a correct configuration / call sequence). */
  readonly warnings: string[] = [];

  hooks: Arm64AsidHooks;

  /** Reused result of checkAndSwitchContext. */
  readonly result: AsidSwitchResult = {
    ctxid: 0,
    asid: 0,
    gen: 0,
    path: 'slow',
    changed: false,
    flush: false,
    rollover: false,
  };
  /** Reused details of the last contextGet. */
  readonly pinResult: AsidPinResult = { ret: 0, ctxid: 0, refcount: 0, changed: false, rollover: false };

  private rolledOver = false;

  constructor(opts: Arm64AsidOptions) {
    const { bits, cpus } = opts;
    if (!Number.isInteger(bits) || bits < 2 || bits > 16) {
      throw new RangeError(`ASID bits must be an integer in [2, 16], got ${bits}`);
    }
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 4096) {
      throw new RangeError(`cpus must be an integer in [1, 4096], got ${cpus}`);
    }
    this.bits = bits;
    this.cpus = cpus;
    this.kpti = opts.kpti ?? false;
    this.cfgUnmap = opts.cfgUnmap ?? true;
    this.generationStep = opts.generationStep ?? '2^16';
    if (this.generationStep !== '2^16' && this.generationStep !== '2^bits') {
      throw new RangeError(`generationStep must be '2^16' or '2^bits'`);
    }
    this.asidFirstVersion = this.generationStep === '2^16' ? 1 << 16 : 1 << bits;
    this.numUserAsids = 1 << bits;
    this.asidLowMask = this.numUserAsids - 1;
    this.hooks = opts.hooks ?? {};

    const words = bitmapWords(this.numUserAsids);
    this.asidMap = new Uint32Array(words);
    this.pinnedAsidMap = opts.pinning ?? true ? new Uint32Array(words) : null;
    this.activeAsids = new Float64Array(cpus);
    this.reservedAsids = new Float64Array(cpus);
    this.tlbFlushPending = new Uint8Array(cpus);
    this.mmCtx = new Float64Array(64);
    this.mmPinned = new Int32Array(64);

    this.asidsInit();
    this.asidsUpdateLimit();
  }

  // --- boot ------------------------------------------------------------------------------------

  /** asids_init() (early_initcall): CPU caps not final, so assume KPTI if it is built in. */
  private asidsInit(): void {
    this.asidGeneration = this.asidFirstVersion;
    this.asidMap.fill(0);
    if (this.pinnedAsidMap) this.pinnedAsidMap.fill(0);
    this.nrPinnedAsids = 0;
    if (this.cfgUnmap) fillOddBits(this.asidMap);
  }

  /** asids_update_limit() (arch_initcall): available ASIDs, the boot WARN and max_pinned_asids. */
  private asidsUpdateLimit(): void {
    let numAvailableAsids = this.numUserAsids;
    if (this.kpti) {
      numAvailableAsids /= 2;
      if (this.pinnedAsidMap) fillOddBits(this.pinnedAsidMap);
    }
    if (numAvailableAsids - 1 <= this.cpus) {
      this.warnings.push('WARN_ON(num_available_asids - 1 <= num_possible_cpus())');
    }
    this.maxPinnedAsids = ulongLimit(numAvailableAsids - this.cpus - 2);
  }

  // --- helpers ---------------------------------------------------------------------------------

  /** asid_gen_match(): (ctx ^ asid_generation) >> asid_bits == 0. */
  asidGenMatch(ctx: number): boolean {
    return ctx - (ctx & this.asidLowMask) === this.asidGeneration;
  }

  /** Current generation number (asid_generation / ASID_FIRST_VERSION). */
  get generation(): number {
    return this.asidGeneration / this.asidFirstVersion;
  }

  private checkCpu(cpu: number): void {
    if ((cpu >>> 0) !== cpu || cpu >= this.cpus) throw new RangeError(`bad CPU ${cpu}`);
  }

  private ensureMm(mm: number): void {
    if ((mm >>> 0) !== mm || mm >= MAX_OBJECT_ID) throw new RangeError(`bad mm id ${mm}`);
    this.mmCtx = growTo(this.mmCtx, mm + 1);
    this.mmPinned = growTo(this.mmPinned, mm + 1);
  }

  /** mm->context.id (0 = never allocated). */
  contextId(mm: number): number {
    return mm < this.mmCtx.length ? this.mmCtx[mm] : 0;
  }

  /** ASID(mm): low bits of context.id (the kernel ASID). */
  asidOf(mm: number): number {
    return this.contextId(mm) & this.asidLowMask;
  }

  /** mm->context.pinned. */
  pinnedRefcount(mm: number): number {
    return mm < this.mmPinned.length ? this.mmPinned[mm] : 0;
  }

  /**
   * init_new_context(): context.id = 0, pinned = 0. The kernel never frees an ASID; use this
   * when a simulated mm id is recycled for a brand-new mm.
   */
  initNewContext(mm: number): void {
    if ((mm >>> 0) !== mm || mm >= this.mmCtx.length) this.ensureMm(mm);
    this.mmCtx[mm] = 0;
    this.mmPinned[mm] = 0;
  }

  /** CPU's bit in tlb_flush_pending: it will do a local TLBI VMALLE1 at its next slow-path switch. */
  flushPending(cpu: number): boolean {
    return this.tlbFlushPending[cpu] !== 0;
  }

  // --- the algorithm ---------------------------------------------------------------------------

  /** set_reserved_asid_bits() */
  private setReservedAsidBits(): void {
    if (this.pinnedAsidMap) this.asidMap.set(this.pinnedAsidMap);
    else if (this.kpti) fillOddBits(this.asidMap);
    else this.asidMap.fill(0);
  }

  /** flush_context(): lock held, generation already bumped. */
  private flushContext(): void {
    this.setReservedAsidBits();
    const active = this.activeAsids;
    const reserved = this.reservedAsids;
    for (let i = 0; i < this.cpus; i++) {
      let asid = active[i];
      active[i] = 0;
      // A CPU that went through a previous rollover without switching since keeps its
      // reserved ASID: the only trace of the process it is still running.
      if (asid === 0) asid = reserved[i];
      setBit(this.asidMap, asid & this.asidLowMask);
      reserved[i] = asid;
    }
    // Queue a local TLB invalidation on every CPU for its next context switch.
    this.tlbFlushPending.fill(1);
    this.rollovers++;
    this.rolledOver = true;
    this.hooks.onRollover?.(this.generation);
  }

  /** check_update_reserved_asid(): replace every matching copy (no early exit). */
  private checkUpdateReservedAsid(asid: number, newasid: number): boolean {
    const reserved = this.reservedAsids;
    let hit = false;
    for (let cpu = 0; cpu < this.cpus; cpu++) {
      if (reserved[cpu] === asid) {
        hit = true;
        reserved[cpu] = newasid;
      }
    }
    return hit;
  }

  /** new_context(mm): lock held. Returns the new context id (caller stores it). */
  private newContext(mm: number): number {
    let asid = this.mmCtx[mm];
    let generation = this.asidGeneration;

    if (asid !== 0) {
      const idx = asid & this.asidLowMask;
      const newasid = generation + idx;
      // Active during a rollover: keep it (false alarm).
      if (this.checkUpdateReservedAsid(asid, newasid)) return newasid;
      // Pinned: its bit was copied into asid_map at the rollover. Reserved takes priority so
      // the reserved copies get the new generation.
      if (this.mmPinned[mm] !== 0) return newasid;
      // Valid ASID in a previous life: re-use it if still free.
      if (!testAndSetBit(this.asidMap, idx)) return newasid;
    }

    // Allocate a free ASID from cur_idx upwards (no wrap-around); ASID #0 is never handed out.
    asid = findNextZeroBit(this.asidMap, this.numUserAsids, this.curIdx);
    if (asid === this.numUserAsids) {
      // Out of ASIDs: bump the generation and roll over.
      generation = this.asidGeneration += this.asidFirstVersion;
      this.flushContext();
      // "We have more ASIDs than CPUs, so this will always succeed"
      asid = findNextZeroBit(this.asidMap, this.numUserAsids, 1);
      if (asid === this.numUserAsids) {
        // Only reachable on a configuration the kernel WARNs about at boot; the kernel would
        // set a bit past the end of asid_map. Refuse instead of corrupting the model.
        throw new Error('arm64 ASID allocator: no free ASID after rollover (too many CPUs for asid_bits)');
      }
    }
    setBit(this.asidMap, asid);
    this.curIdx = asid;
    return generation + asid;
  }

  /**
   * check_and_switch_context(mm) on `cpu`. Returns the allocator's reused result object.
   * On the slow path, a pending local flush is consumed (result.flush, hooks.onLocalFlush).
   */
  checkAndSwitchContext(cpu: number, mm: number): AsidSwitchResult {
    if ((cpu >>> 0) !== cpu || cpu >= this.cpus) this.checkCpu(cpu);
    if ((mm >>> 0) !== mm || mm >= this.mmCtx.length) this.ensureMm(mm);
    const r = this.result;
    const before = this.mmCtx[mm];
    let asid = before;

    // Fast path: active non-zero, generation match, cmpxchg (always succeeds single-threaded).
    const old = this.activeAsids[cpu];
    if (old !== 0 && asid - (asid & this.asidLowMask) === this.asidGeneration) {
      this.activeAsids[cpu] = asid;
      r.ctxid = asid;
      r.asid = asid & this.asidLowMask;
      r.gen = (asid - r.asid) / this.asidFirstVersion;
      r.path = 'fast';
      r.changed = false;
      r.flush = false;
      r.rollover = false;
      return r;
    }

    // Slow path (cpu_asid_lock held).
    this.rolledOver = false;
    if (!this.asidGenMatch(asid)) {
      asid = this.newContext(mm);
      this.mmCtx[mm] = asid;
    }
    let flush = false;
    if (this.tlbFlushPending[cpu] !== 0) {
      this.tlbFlushPending[cpu] = 0;
      flush = true;
      this.localFlushes++;
      this.hooks.onLocalFlush?.(cpu);
    }
    this.activeAsids[cpu] = asid;

    r.ctxid = asid;
    r.asid = asid & this.asidLowMask;
    r.gen = (asid - r.asid) / this.asidFirstVersion;
    r.path = 'slow';
    r.changed = asid !== before;
    r.flush = flush;
    r.rollover = this.rolledOver;
    return r;
  }

  /**
   * arm64_mm_context_get(mm): pin the mm's ASID. Returns the ASID (|1 under KPTI: the user ASID),
   * 0 on failure (nr_pinned_asids >= max_pinned_asids) or when pinning is unsupported. Details in
   * `pinResult`. Does not touch tlb_flush_pending (may roll over, like any new_context call).
   */
  contextGet(mm: number): number {
    if ((mm >>> 0) !== mm || mm >= this.mmCtx.length) this.ensureMm(mm);
    const p = this.pinResult;
    const before = this.mmCtx[mm];
    this.rolledOver = false;
    if (!this.pinnedAsidMap) {
      p.ret = 0;
      p.ctxid = before;
      p.refcount = this.mmPinned[mm];
      p.changed = false;
      p.rollover = false;
      return 0;
    }

    let asid = before;
    const refs = this.mmPinned[mm];
    if (refs !== 0) {
      // refcount_inc_not_zero(); a saturated refcount stays saturated (WARN).
      if (refs < 0 || refs === 0x7fffffff) {
        this.warnings.push('refcount_t: saturated; leaking memory (context.pinned)');
        this.mmPinned[mm] = REFCOUNT_SATURATED;
      } else {
        this.mmPinned[mm] = refs + 1;
      }
    } else if (this.nrPinnedAsids >= this.maxPinnedAsids) {
      asid = 0;
    } else {
      if (!this.asidGenMatch(asid)) {
        // One or more rollovers since that ASID was used: revalidate or get a new one.
        asid = this.newContext(mm);
        this.mmCtx[mm] = asid;
      }
      this.nrPinnedAsids++;
      setBit(this.pinnedAsidMap, asid & this.asidLowMask);
      this.mmPinned[mm] = 1;
    }

    let ret = asid & this.asidLowMask;
    if (ret !== 0 && this.kpti) ret |= 1; // USER_ASID_BIT equivalent
    p.ret = ret;
    p.ctxid = this.mmCtx[mm];
    p.refcount = this.mmPinned[mm];
    p.changed = p.ctxid !== before;
    p.rollover = this.rolledOver;
    return ret;
  }

  /**
   * arm64_mm_context_put(mm): drop a pin. Returns true when the refcount reached 0 (the pinned
   * bit was cleared; the asid_map bit stays set until the next rollover).
   */
  contextPut(mm: number): boolean {
    if ((mm >>> 0) !== mm || mm >= this.mmCtx.length) this.ensureMm(mm);
    if (!this.pinnedAsidMap) return false;
    const asid = this.mmCtx[mm];
    const refs = this.mmPinned[mm];
    if (refs <= 0) {
      // refcount_dec_and_test() on 0 (or saturated): WARN, saturate, return false.
      this.warnings.push('refcount_t: underflow; use-after-free (context.pinned)');
      this.mmPinned[mm] = REFCOUNT_SATURATED;
      return false;
    }
    this.mmPinned[mm] = refs - 1;
    if (refs === 1) {
      clearBit(this.pinnedAsidMap, asid & this.asidLowMask);
      this.nrPinnedAsids--;
      return true;
    }
    return false;
  }

  // --- inspection ------------------------------------------------------------------------------

  /** The vector-format `state` object (allocates; for tests and vectors). */
  snapshot(): AsidStateSnapshot {
    const s: AsidStateSnapshot = {
      gen: this.generation,
      active: Array.from(this.activeAsids, (v) => String(v)),
      reserved: Array.from(this.reservedAsids, (v) => String(v)),
      pending: Array.from(this.tlbFlushPending, (v) => v !== 0),
      nr_pinned: this.nrPinnedAsids,
    };
    if (this.bits <= 6) {
      s.map = bitmapToString(this.asidMap, this.numUserAsids);
      s.pinned_map = this.pinnedAsidMap
        ? bitmapToString(this.pinnedAsidMap, this.numUserAsids)
        : '0'.repeat(this.numUserAsids);
    }
    return s;
  }
}
