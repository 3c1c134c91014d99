/**
 * arm64 host TLB invalidation, `arch/arm64/include/asm/tlbflush.h`, for 4 KiB pages without LPA2.
 * Names follow the kernel (`flush_tlb_mm` → `flushTlbMm`, `__flush_tlb_range_op` →
 * `flushTlbRangeOp`, ...). Every function emits the exact barrier/TLBI sequence into a `CpuOps`
 * sink and calls the secondary-TLB notifier where the kernel calls
 * `mmu_notifier_arch_invalidate_secondary_tlbs()`.
 *
 * Default behaviour = mainline after v6.14 as read in a ~v6.15 copy of the file (decreasing-scale
 * range loop of e2768b798a19, Gavin Shan's NUM/limit fix, `__flush_tlb_range_limit_excess()` and
 * range-based `flush_tlb_kernel_range()` of v6.13, notifier range fix f7edb07ad7c6 of v6.14,
 * batched unmap by (start, end)), except `pageTtlHint` (level-3 hint on flush_tlb_page, from the
 * later TLBF_* refactor). Knobs select the older behaviours. docs/flush-paths.md lists what was read.
 *
 * Addresses are byte addresses held in JS numbers; page-aligned 64-bit addresses (even kernel VAs
 * such as 0xffff8000_0000_0000) have at most 52 significant bits and are exact in a double.
 * The hardware path allocates nothing: one module-level TlbiArgs is refilled for every TLBI.
 * BigInt operands are built only when the sink asks for them (`CpuOps.tlbiWithOperand`).
 */
import { MAX_TLBI_RANGE_PAGES, TLBI, tlbiRangePages, type TlbiOp } from '../../arch/tlbi.js';
import { newTlbiArgs, type TlbiArgs } from '../../hw/tlbi-scope.js';
import type { CpuOps } from '../cpu-ops.js';

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
/** PTRS_PER_PTE for 4 KiB pages. */
export const PTRS_PER_PTE = 512;
/** `MAX_DVM_OPS` (named `MAX_TLBI_OPS` before v6.13): per-stride TLBIs allowed before falling back. */
export const MAX_DVM_OPS = PTRS_PER_PTE;
/** `TLBI_TTL_UNKNOWN` (INT_MAX since v6.9; v5.10–v6.8 used 0): no level hint. */
export const TLBI_TTL_UNKNOWN = 0x7fffffff;
/** `TLBI_TTL_TG_4K`: TG / TTL<3:2> encoding of the 4 KiB granule. */
export const TLBI_TTL_TG_4K = 1;
/** `-1UL` as passed by flush_tlb_mm() to the notifier (2^64 - 1, which rounds to 2^64 in a double). */
export const ULONG_MAX = 2 ** 64;

const VA_MASK = 2n ** 44n - 1n; // __TLBI_VADDR: (addr >> 12) & GENMASK_ULL(43, 0)
const BADDR_MASK_N = 2 ** 37; // TLBIR_BADDR_MASK = GENMASK_ULL(36, 0)

/** Secondary-TLB notifier: `mmu_notifier_arch_invalidate_secondary_tlbs(mm, start, end)`. */
export type SecondaryTlbNotifier = (asid: number, start: number, end: number) => void;

/** Knobs of `__flush_tlb_range_op` shared by the host and KVM stage-2 paths. */
export interface RangeOpOptions {
  /** `system_supports_tlb_range()`: FEAT_TLBIRANGE on every CPU. */
  tlbiRange: boolean;
  /** `ARM64_HAS_ARMv8_4_TTL`: non-range TLBIs carry TTL = level | TG<<2 in Xt[47:44]. */
  featTtl: boolean;
  /**
   * 'v6.9+': scale starts at 3 and decreases, a single page is flushed last (e2768b798a19,
   * "Modify range-based tlbi to decrement scale"). 'v5.10': v5.10–v6.8, scale starts at 0 and
   * increases, an odd page count first flushes one page with a non-range op.
   */
  rangeLoop: 'v6.9+' | 'v5.10';
  /**
   * Gavin Shan's fix (v6.9, "arm64: tlb: Fix TLBI RANGE operand" + "Allow range operation for
   * MAX_TLBI_RANGE_PAGES"): '>' = fall back to flush_tlb_mm only when pages > MAX_TLBI_RANGE_PAGES
   * and NUM = min(pages, 32 << (5*scale+1)) >> (5*scale+1) - 1 (up to 31). '>=' = before the fix:
   * fall back at pages >= MAX_TLBI_RANGE_PAGES and NUM = ((pages >> (5*scale+1)) & 31) - 1.
   */
  maxPagesCompare: '>' | '>=';
}

export interface TlbFlushOptions extends RangeOpOptions {
  /** `arm64_kernel_unmapped_at_el0()`: every user TLBI is repeated for the user ASID (ASID | 1). */
  kpti: boolean;
  /** FEAT_LPA2 in use: not modelled (64 KiB alignment of range starts). */
  lpa2: false;
  pageShift: 12;
  /**
   * 'v6.13+': flush_tlb_kernel_range() rounds, uses `__flush_tlb_range_limit_excess()` and the
   * range loop (RVAALE1IS with FEAT_TLBIRANGE) (a923705c69f7). 'pre-6.13': VAALE1IS per page,
   * falling back to flush_tlb_all() when (end - start) > MAX_DVM_OPS * PAGE_SIZE.
   */
  kernelRange: 'v6.13+' | 'pre-6.13';
  /**
   * flush_tlb_page() passes a level-3 TTL hint (the TLBF_* refactor: `__flush_tlb_page()` →
   * `__do_flush_tlb_range(..., 3, TLBF_NOWALKCACHE)`). false = v5.x–v6.1x `__flush_tlb_page_nosync`
   * (`__tlbi(vale1is, addr)`, no hint).
   */
  pageTtlHint: boolean;
  /**
   * v6.6–v6.13: `__flush_tlb_range_op` advanced the caller's `start`, so the range flush called the
   * notifier with start == end (an empty range, which SVA drivers take as "invalidate all").
   * Fixed by f7edb07ad7c6 (v6.14, backported to stable).
   */
  notifierEmptyRangeBug: boolean;
  /**
   * Called where the kernel calls `mmu_notifier_arch_invalidate_secondary_tlbs()` (v6.6+;
   * before v6.6 the arch code did not call it: leave undefined to model that).
   */
  notifier?: SecondaryTlbNotifier;
}

export function defaultTlbFlushOptions(over: Partial<TlbFlushOptions> = {}): TlbFlushOptions {
  return {
    kpti: false, tlbiRange: false, featTtl: true, lpa2: false, pageShift: 12,
    rangeLoop: 'v6.9+', maxPagesCompare: '>', kernelRange: 'v6.13+', pageTtlHint: true,
    notifierEmptyRangeBug: false,
    ...over,
  };
}

const DEFAULTS = defaultTlbFlushOptions();

// ---------------------------------------------------------------------------------------------
// Operand encoding (FEAT_TLBIRANGE: Arm ARM C5.5; kernel __TLBI_VADDR_RANGE / __tlbi_range)

/** Fields of a range TLBI operand: ASID[63:48] TG[47:46] SCALE[45:44] NUM[43:39] TTL[38:37] BaseADDR[36:0]. */
export interface TlbiRangeOperand {
  asid: number;
  /** 1 = 4 KiB, 2 = 16 KiB, 3 = 64 KiB (0 reserved). */
  tg: number;
  scale: number;
  num: number;
  /** Level hint 1..3, 0 = none. */
  ttl: number;
  /** Start address in granules (page number for 4 KiB without LPA2). */
  baseAddr: number;
}

function checkField(name: string, v: number, bits: number): bigint {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits) throw new RangeError(`${name}=${v} does not fit in ${bits} bits`);
  return BigInt(v);
}

/** Encode a range operand (FIELD_PREP semantics; throws on a field that does not fit). */
export function encodeTlbiRangeOperand(f: TlbiRangeOperand): bigint {
  return (checkField('asid', f.asid, 16) << 48n) | (checkField('tg', f.tg, 2) << 46n)
    | (checkField('scale', f.scale, 2) << 44n) | (checkField('num', f.num, 5) << 39n)
    | (checkField('ttl', f.ttl, 2) << 37n) | checkField('baseAddr', f.baseAddr, 37);
}

export function decodeTlbiRangeOperand(xt: bigint): TlbiRangeOperand {
  return {
    asid: Number((xt >> 48n) & 0xffffn),
    tg: Number((xt >> 46n) & 3n),
    scale: Number((xt >> 44n) & 3n),
    num: Number((xt >> 39n) & 31n),
    ttl: Number((xt >> 37n) & 3n),
    baseAddr: Number(xt & (2n ** 37n - 1n)),
  };
}

/** Granules covered: (NUM+1) * 2^(5*SCALE+1) (`__TLBI_RANGE_PAGES`). */
export function tlbiRangeGranules(scale: number, num: number): number {
  return (num + 1) * 2 ** (5 * scale + 1);
}

const granuleLog2OfTg = (tg: number): number => (tg === 1 ? 12 : tg === 2 ? 14 : tg === 3 ? 16 : 0);

/**
 * Fill a TlbiArgs (asid, page, pages, ttl, granuleLog2) from a range operand, as the hardware model
 * must see it: `page` is the first 4 KiB page, `pages` the range in 4 KiB pages.
 */
export function fillTlbiArgsFromRangeOperand(a: TlbiArgs, xt: bigint): TlbiArgs {
  const f = decodeTlbiRangeOperand(xt);
  const g = granuleLog2OfTg(f.tg);
  a.asid = f.asid;
  a.page = g === 0 ? f.baseAddr : f.baseAddr * 2 ** (g - 12);
  a.pages = tlbiRangePages(f.tg, f.scale, f.num);
  a.ttl = f.ttl;
  a.granuleLog2 = g;
  return a;
}

/** `__TLBI_VADDR(addr, asid)`: VA[55:12] in Xt[43:0], ASID in Xt[63:48]. */
export function tlbiVaddr(va: number, asid: number): bigint {
  return ((BigInt(Math.floor(va / PAGE_SIZE)) & VA_MASK) | (BigInt(asid & 0xffff) << 48n));
}

/**
 * The v5.10–v6.8 `__TLBI_VADDR_RANGE` macro: fields shifted and ORed without masking, so an
 * out-of-range SCALE (4, reached by the pre-fix loops for exactly 2^21 pages) spills into TG.
 */
function legacyRangeOperand(baddr: number, asid: number, scale: number, num: number, ttl: number): bigint {
  return (BigInt(baddr) & (2n ** 37n - 1n)) | (BigInt(ttl) << 37n) | (BigInt(num) << 39n)
    | (BigInt(scale) << 44n) | (BigInt(TLBI_TTL_TG_4K) << 46n) | (BigInt(asid) << 48n);
}

// ---------------------------------------------------------------------------------------------
// Emission (one reused TlbiArgs; no allocation unless the sink wants operands)

const A: TlbiArgs = newTlbiArgs(TLBI.VMALLE1IS);

/** `__tlbi(op)` for operand-less ops (VMALLE1IS, ALLE1IS, VMALLS12E1IS, VMALLE1, ...). */
export function emitTlbiNoArg(ops: CpuOps, op: TlbiOp): void {
  A.op = op; A.asid = 0; A.page = 0; A.pages = 1; A.ttl = 0; A.granuleLog2 = 0;
  ops.tlbi(A);
}

/** `__tlbi(aside1is, __TLBI_VADDR(0, asid))`. */
export function emitTlbiAsid(ops: CpuOps, op: TlbiOp, asid: number): void {
  A.op = op; A.asid = asid; A.page = 0; A.pages = 1; A.ttl = 0; A.granuleLog2 = 0;
  if (ops.tlbiWithOperand !== undefined) ops.tlbiWithOperand(A, BigInt(asid & 0xffff) << 48n);
  else ops.tlbi(A);
}

/**
 * `__tlbi_level(op, __TLBI_VADDR(page << 12, asid), level)`: VA/VAA/IPA forms. The TTL field is
 * written when FEAT_TTL is present and 0 <= level <= 3 (level 0 is a reserved encoding without
 * LPA2, i.e. no hint; the model carries only levels 1..3).
 */
export function emitTlbiLevel(ops: CpuOps, op: TlbiOp, page: number, asid: number, level: number, featTtl: boolean): void {
  const hinted = featTtl && level >= 0 && level <= 3;
  A.op = op; A.asid = asid; A.page = page; A.pages = 1; A.ttl = hinted ? level : 0; A.granuleLog2 = 0;
  if (ops.tlbiWithOperand !== undefined) {
    let xt = (BigInt(page) & VA_MASK) | (BigInt(asid & 0xffff) << 48n);
    if (hinted) xt |= BigInt(level | (TLBI_TTL_TG_4K << 2)) << 44n;
    ops.tlbiWithOperand(A, xt);
  } else {
    ops.tlbi(A);
  }
}

/**
 * One range TLBI (`__tlbi(r##op, __TLBI_VADDR_RANGE(start >> PAGE_SHIFT, asid, scale, num, level))`).
 * The TTL field carries `level` only for 1..3. SCALE > 3 (pre-fix loops only) is encoded the way
 * the old macro did and the hardware model is given what the hardware would decode.
 */
function emitTlbiRange(ops: CpuOps, op: TlbiOp, page: number, asid: number, scale: number, num: number, level: number): void {
  const ttl = level >= 1 && level <= 3 ? level : 0;
  A.op = op;
  if (scale >= 0 && scale <= 3) {
    A.asid = asid; A.page = page; A.pages = tlbiRangeGranules(scale, num); A.ttl = ttl; A.granuleLog2 = 12;
    if (ops.tlbiWithOperand !== undefined) {
      ops.tlbiWithOperand(A, encodeTlbiRangeOperand({
        asid: asid & 0xffff, tg: TLBI_TTL_TG_4K, scale, num, ttl, baseAddr: page % BADDR_MASK_N,
      }));
    } else {
      ops.tlbi(A);
    }
    return;
  }
  const xt = legacyRangeOperand(page % BADDR_MASK_N, asid, scale, num, ttl);
  fillTlbiArgsFromRangeOperand(A, xt);
  A.page = page; // keep the full start page (BaseADDR only holds its low 37 bits)
  if (ops.tlbiWithOperand !== undefined) ops.tlbiWithOperand(A, xt);
  else ops.tlbi(A);
}

/** `__TLBI_RANGE_NUM(pages, scale)`, fixed (min-clamped, up to 31) or pre-fix (masked to 5 bits). */
export function tlbiRangeNum(pages: number, scale: number, fixed: boolean): number {
  const unit = 2 ** (5 * scale + 1);
  return fixed ? Math.floor(Math.min(pages, 32 * unit) / unit) - 1 : (Math.floor(pages / unit) % 32) - 1;
}

const RANGE_OF: ReadonlyMap<TlbiOp, TlbiOp> = new Map([
  [TLBI.VAE1IS, TLBI.RVAE1IS], [TLBI.VALE1IS, TLBI.RVALE1IS], [TLBI.VAALE1IS, TLBI.RVAALE1IS],
  [TLBI.VAAE1IS, TLBI.RVAAE1IS], [TLBI.IPAS2E1IS, TLBI.RIPAS2E1IS], [TLBI.IPAS2LE1IS, TLBI.RIPAS2LE1IS],
  [TLBI.VALE1, TLBI.RVALE1], [TLBI.VAE1, TLBI.RVAE1],
]);

/**
 * `__flush_tlb_range_op(op, start, pages, stride, asid, tlb_level, tlbi_user, lpa2=false)`:
 * the TLBIs only (no barriers). `startPage`/`stridePages` in 4 KiB pages. With `tlbiUser`, every
 * op is repeated for ASID | 1 (KPTI). Throws where the kernel loop would not terminate (v6.9-rc
 * decreasing loop without Gavin Shan's NUM fix given 2^21 pages; increasing loop with the fixed NUM).
 */
export function flushTlbRangeOp(
  ops: CpuOps, op: TlbiOp, startPage: number, pages: number, stridePages: number,
  asid: number, level: number, tlbiUser: boolean, o: RangeOpOptions,
): void {
  const rop = RANGE_OF.get(op);
  if (rop === undefined) throw new Error(`no range form for ${op.name}`);
  const fixed = o.maxPagesCompare === '>';
  let start = startPage;
  let left = pages;
  const decreasing = o.rangeLoop === 'v6.9+';
  let scale = decreasing ? 3 : 0;
  while (left > 0) {
    if (!o.tlbiRange || (decreasing ? left === 1 : left % 2 === 1)) {
      emitTlbiLevel(ops, op, start, asid, level, o.featTtl);
      if (tlbiUser) emitTlbiLevel(ops, op, start, asid | 1, level, o.featTtl);
      start += stridePages;
      left -= stridePages;
      continue;
    }
    if (scale < 0 || scale > 8) {
      throw new Error(`__flush_tlb_range_op: ${left} pages left at scale ${scale} (the kernel loop would not terminate with rangeLoop=${o.rangeLoop}, maxPagesCompare=${o.maxPagesCompare})`);
    }
    const num = tlbiRangeNum(left, scale, fixed);
    if (num >= 0) {
      emitTlbiRange(ops, rop, start, asid, scale, num, level);
      if (tlbiUser) emitTlbiRange(ops, rop, start, asid | 1, scale, num, level);
      const n = tlbiRangeGranules(scale, num);
      start += n;
      left -= n;
    }
    scale += decreasing ? -1 : 1;
  }
}

function notify(ops: CpuOps, o: TlbFlushOptions, asid: number, start: number, end: number): void {
  if (o.notifier === undefined) return;
  ops.marker?.(`mmu_notifier_arch_invalidate_secondary_tlbs asid=0x${asid.toString(16)} start=0x${start.toString(16)} end=${end === ULONG_MAX ? 'ULONG_MAX' : `0x${end.toString(16)}`}`);
  o.notifier(asid, start, end);
}

// ---------------------------------------------------------------------------------------------
// The API

/** What a flush ended up doing (fallbacks included). */
export type FlushPath = 'mm' | 'range' | 'all' | 'page';

/** `local_flush_tlb_all()`: DSB NSHST; TLBI VMALLE1; DSB NSH; ISB (ASID rollover; never broadcast). */
export function localFlushTlbAll(ops: CpuOps): void {
  ops.dsb('nshst');
  emitTlbiNoArg(ops, TLBI.VMALLE1);
  ops.dsb('nsh');
  ops.isb();
}

/** `flush_tlb_all()`: DSB ISHST; TLBI VMALLE1IS; DSB ISH; ISB. */
export function flushTlbAll(ops: CpuOps): FlushPath {
  ops.dsb('ishst');
  emitTlbiNoArg(ops, TLBI.VMALLE1IS);
  ops.dsb('ish');
  ops.isb();
  return 'all';
}

/**
 * `flush_tlb_mm(mm)`: DSB ISHST; TLBI ASIDE1IS(asid) [; TLBI ASIDE1IS(asid|1) under KPTI];
 * DSB ISH; then notifier(0, ULONG_MAX).
 */
export function flushTlbMm(ops: CpuOps, asid: number, o: TlbFlushOptions = DEFAULTS): FlushPath {
  ops.dsb('ishst');
  emitTlbiAsid(ops, TLBI.ASIDE1IS, asid);
  if (o.kpti) emitTlbiAsid(ops, TLBI.ASIDE1IS, asid | 1);
  ops.dsb('ish');
  notify(ops, o, asid, 0, ULONG_MAX);
  return 'mm';
}

/**
 * `__flush_tlb_page_nosync(mm, uaddr)` / `__flush_tlb_page(vma, uaddr, TLBF_NOSYNC)`:
 * DSB ISHST; TLBI VALE1IS [ttl=3] [; user]; notifier(page) — no trailing DSB.
 */
export function flushTlbPageNosync(ops: CpuOps, asid: number, va: number, o: TlbFlushOptions = DEFAULTS): FlushPath {
  const page = Math.floor(va / PAGE_SIZE);
  const level = o.pageTtlHint ? 3 : TLBI_TTL_UNKNOWN;
  ops.dsb('ishst');
  emitTlbiLevel(ops, TLBI.VALE1IS, page, asid, level, o.featTtl);
  if (o.kpti) emitTlbiLevel(ops, TLBI.VALE1IS, page, asid | 1, level, o.featTtl);
  notify(ops, o, asid, page * PAGE_SIZE, page * PAGE_SIZE + PAGE_SIZE);
  return 'page';
}

/** `flush_tlb_page(vma, uaddr)`: flushTlbPageNosync then DSB ISH. */
export function flushTlbPage(ops: CpuOps, asid: number, va: number, o: TlbFlushOptions = DEFAULTS): FlushPath {
  flushTlbPageNosync(ops, asid, va, o);
  ops.dsb('ish');
  return 'page';
}

/**
 * `__flush_tlb_range_limit_excess()` (v6.13+; the same test was inline before): without
 * FEAT_TLBIRANGE, (end - start) >= MAX_DVM_OPS * stride; and pages > (or, before Gavin Shan's
 * fix, >=) MAX_TLBI_RANGE_PAGES.
 */
export function flushTlbRangeLimitExcess(start: number, end: number, pages: number, stride: number, o: RangeOpOptions): boolean {
  if (!o.tlbiRange && end - start >= MAX_DVM_OPS * stride) return true;
  return o.maxPagesCompare === '>' ? pages > MAX_TLBI_RANGE_PAGES : pages >= MAX_TLBI_RANGE_PAGES;
}

const roundDown = (x: number, a: number): number => x - (x % a);
const roundUp = (x: number, a: number): number => (x % a === 0 ? x : x - (x % a) + a);

/**
 * `__flush_tlb_range_nosync(mm, start, end, stride, last_level, tlb_level)`: round to `stride`;
 * fall back to flush_tlb_mm() on limit excess; else DSB ISHST, the range loop with VALE1IS/RVALE1IS
 * (last_level) or VAE1IS/RVAE1IS, each doubled under KPTI, then notifier(start, end). No trailing DSB.
 */
export function flushTlbRangeNosync(
  ops: CpuOps, asid: number, start: number, end: number, stride: number,
  lastLevel: boolean, tlbLevel: number, o: TlbFlushOptions = DEFAULTS,
): FlushPath {
  start = roundDown(start, stride);
  end = roundUp(end, stride);
  const pages = (end - start) / PAGE_SIZE;
  if (flushTlbRangeLimitExcess(start, end, pages, stride, o)) {
    flushTlbMm(ops, asid, o);
    return 'mm';
  }
  ops.dsb('ishst');
  flushTlbRangeOp(ops, lastLevel ? TLBI.VALE1IS : TLBI.VAE1IS, start / PAGE_SIZE, pages, stride / PAGE_SIZE,
    asid, tlbLevel, o.kpti, o);
  notify(ops, o, asid, o.notifierEmptyRangeBug ? end : start, end);
  return 'range';
}

/**
 * `__flush_tlb_range(vma, start, end, stride, last_level, tlb_level)`: flushTlbRangeNosync then
 * DSB ISH (the fallback's flush_tlb_mm() already ended with its own DSB ISH).
 * `flush_tlb_range(vma, start, end)` is `flushTlbRange(ops, asid, start, end)` (stride PAGE_SIZE,
 * not last level, level unknown).
 */
export function flushTlbRange(
  ops: CpuOps, asid: number, start: number, end: number, stride: number = PAGE_SIZE,
  lastLevel = false, tlbLevel: number = TLBI_TTL_UNKNOWN, o: TlbFlushOptions = DEFAULTS,
): FlushPath {
  const path = flushTlbRangeNosync(ops, asid, start, end, stride, lastLevel, tlbLevel, o);
  if (path === 'range') ops.dsb('ish');
  return path;
}

/**
 * `flush_tlb_kernel_range(start, end)`: kernel mappings, all ASIDs, no KPTI doubling, no notifier.
 * v6.13+: round; on limit excess flush_tlb_all(); else DSB ISHST; VAALE1IS per page or RVAALE1IS
 * range ops; DSB ISH; ISB. pre-6.13: flush_tlb_all() when (end - start) > MAX_DVM_OPS * PAGE_SIZE,
 * else DSB ISHST; VAALE1IS per page; DSB ISH; ISB.
 */
export function flushTlbKernelRange(ops: CpuOps, start: number, end: number, o: TlbFlushOptions = DEFAULTS): FlushPath {
  if (o.kernelRange === 'pre-6.13') {
    if (end - start > MAX_DVM_OPS * PAGE_SIZE) return flushTlbAll(ops);
    ops.dsb('ishst');
    const last = Math.floor(end / PAGE_SIZE);
    for (let p = Math.floor(start / PAGE_SIZE); p < last; p++) emitTlbiLevel(ops, TLBI.VAALE1IS, p, 0, TLBI_TTL_UNKNOWN, false);
    ops.dsb('ish');
    ops.isb();
    return 'range';
  }
  start = roundDown(start, PAGE_SIZE);
  end = roundUp(end, PAGE_SIZE);
  const pages = (end - start) / PAGE_SIZE;
  if (flushTlbRangeLimitExcess(start, end, pages, PAGE_SIZE, o)) return flushTlbAll(ops);
  ops.dsb('ishst');
  flushTlbRangeOp(ops, TLBI.VAALE1IS, start / PAGE_SIZE, pages, 1, 0, TLBI_TTL_UNKNOWN, false, o);
  ops.dsb('ish');
  ops.isb();
  return 'range';
}

/**
 * `arch_tlbbatch_add_pending(batch, mm, start, end)` (after v6.14; exact release not pinned down):
 * `__flush_tlb_range_nosync(mm, start, end, PAGE_SIZE, true, 3)` — DSB ISHST; VALE1IS ttl=3 per
 * page (or RVALE1IS) [; user]; notifier; no DSB ISH. (From v6.5 it took one `uaddr` and called
 * `__flush_tlb_page_nosync`: the same sequence for one page but without the TTL hint —
 * `flushTlbPageNosync` with pageTtlHint=false.)
 */
export function archTlbbatchAddPending(ops: CpuOps, asid: number, start: number, end: number, o: TlbFlushOptions = DEFAULTS): FlushPath {
  return flushTlbRangeNosync(ops, asid, start, end, PAGE_SIZE, true, 3, o);
}

/** `arch_tlbbatch_flush(batch)`: one DSB ISH completing every pending TLBI of the batch. */
export function archTlbbatchFlush(ops: CpuOps): void {
  ops.dsb('ish');
}

/**
 * `tlb_get_level(tlb)` (asm/tlb.h, v6.x): the TTL hint of an mmu_gather flush — unknown if page
 * tables were freed, else the level whose entries alone were cleared (3 PTEs, 2 PMDs, 1 PUDs),
 * else unknown. (v5.10 returned 0 for "unknown".)
 */
export function tlbGetLevel(freedTables: boolean, clearedPtes: boolean, clearedPmds: boolean, clearedPuds: boolean): number {
  if (freedTables) return TLBI_TTL_UNKNOWN;
  if (clearedPtes && !clearedPmds && !clearedPuds) return 3;
  if (clearedPmds && !clearedPtes && !clearedPuds) return 2;
  if (clearedPuds && !clearedPtes && !clearedPmds) return 1;
  return TLBI_TTL_UNKNOWN;
}

/** The state of an `mmu_gather` that `tlb_flush()` reads. */
export interface MmuGather {
  start: number;
  end: number;
  /** Tearing down the whole address space (exit / exec). */
  fullmm: boolean;
  /** Page-table pages were freed (the walk caches must go: not last-level). */
  freedTables: boolean;
  /** `tlb_get_unmap_size()`: PAGE_SIZE, PMD_SIZE (2 MiB) or PUD_SIZE (1 GiB). */
  stride: number;
  /** `tlb_get_level()` (see tlbGetLevel). */
  tlbLevel: number;
}

/**
 * `tlb_flush(tlb)` (arch/arm64/include/asm/tlb.h), the munmap/zap path: for a full-mm teardown
 * only `flush_tlb_mm()` and only if tables were freed (the ASID is not reused before a rollover);
 * otherwise `__flush_tlb_range(start, end, stride, last_level = !freed_tables, tlb_level)`.
 * Returns null when nothing was issued.
 */
export function tlbFlush(ops: CpuOps, asid: number, g: MmuGather, o: TlbFlushOptions = DEFAULTS): FlushPath | null {
  const lastLevel = !g.freedTables;
  if (g.fullmm) {
    if (!lastLevel) return flushTlbMm(ops, asid, o);
    return null;
  }
  return flushTlbRange(ops, asid, g.start, g.end, g.stride, lastLevel, g.tlbLevel, o);
}
