import { describe, expect, it } from 'vitest';
import { MAX_TLBI_RANGE_PAGES, TLBI } from '../../src/arch/tlbi.js';
import { HwSystem } from '../../src/hw/system.js';
import { newTlbiArgs } from '../../src/hw/tlbi-scope.js';
import { PeCpuOps, RecordingCpuOps, canonicalRangeScaleNum } from '../../src/kernel/cpu-ops.js';
import {
  ULONG_MAX, archTlbbatchAddPending, archTlbbatchFlush, decodeTlbiRangeOperand, defaultTlbFlushOptions,
  encodeTlbiRangeOperand, fillTlbiArgsFromRangeOperand, flushTlbAll, flushTlbKernelRange, flushTlbMm,
  flushTlbPage, flushTlbRange, flushTlbRangeOp, localFlushTlbAll, tlbFlush, tlbGetLevel, tlbiRangeNum,
  TLBI_TTL_UNKNOWN, type TlbFlushOptions,
} from '../../src/kernel/mm/tlbflush.js';

const ASID = 0x12;
const VA = 0x7f0000; // page 0x7f0
const PAGE = 4096;

function rec(): RecordingCpuOps {
  return new RecordingCpuOps(null, { markers: true });
}
/** Instruction lines only (markers dropped). */
const insns = (r: RecordingCpuOps): string[] => r.lines.filter((l) => !l.startsWith('#'));
const opts = (over: Partial<TlbFlushOptions> = {}): TlbFlushOptions => defaultTlbFlushOptions(over);

describe('CpuOps sinks', () => {
  it('PeCpuOps: TLBIs go to the PE; DSB ISHST completes nothing, DSB ISH sends the DVM Sync', () => {
    const sys = new HwSystem({ cpus: 2 });
    const pe = sys.pes[0];
    const ops = new PeCpuOps(pe);
    ops.tlbi(newTlbiArgs(TLBI.VMALLE1IS));
    expect(pe.pendingBroadcasts).toBe(1);
    ops.dsb('ishst');
    ops.dsb('nsh');
    ops.isb();
    expect(pe.pendingBroadcasts).toBe(1);
    expect(sys.dvm.syncs).toBe(0);
    ops.dsb('ish');
    expect(pe.pendingBroadcasts).toBe(0);
    expect(sys.dvm.syncs).toBe(1);
  });
  it('RecordingCpuOps records and forwards', () => {
    const sys = new HwSystem({ cpus: 2 });
    const r = new RecordingCpuOps(new PeCpuOps(sys.pes[1]));
    flushTlbPage(r, ASID, VA);
    expect(r.lines).toEqual(['DSB ISHST', 'TLBI VALE1IS asid=0x12 va=0x7f0000 ttl=3', 'DSB ISH']);
    expect(sys.dvm.messages).toBe(1);
    expect(sys.dvm.syncs).toBe(1);
    r.clear();
    expect(r.lines).toEqual([]);
  });
});

describe('flush_tlb_all / local_flush_tlb_all', () => {
  it('flush_tlb_all: DSB ISHST; VMALLE1IS; DSB ISH; ISB', () => {
    const r = rec();
    expect(flushTlbAll(r)).toBe('all');
    expect(r.lines).toEqual(['DSB ISHST', 'TLBI VMALLE1IS', 'DSB ISH', 'ISB']);
  });
  it('local_flush_tlb_all: DSB NSHST; VMALLE1; DSB NSH; ISB', () => {
    const r = rec();
    localFlushTlbAll(r);
    expect(r.lines).toEqual(['DSB NSHST', 'TLBI VMALLE1', 'DSB NSH', 'ISB']);
  });
});

describe('flush_tlb_mm', () => {
  it('KPTI off: one ASIDE1IS, notifier (0, ULONG_MAX) after the DSB ISH', () => {
    const r = rec();
    const calls: number[][] = [];
    flushTlbMm(r, ASID, opts({ notifier: (a, s, e) => calls.push([a, s, e]) }));
    expect(r.lines).toEqual([
      'DSB ISHST', 'TLBI ASIDE1IS asid=0x12', 'DSB ISH',
      '# mmu_notifier_arch_invalidate_secondary_tlbs asid=0x12 start=0x0 end=ULONG_MAX',
    ]);
    expect(calls).toEqual([[ASID, 0, ULONG_MAX]]);
  });
  it('KPTI on: the user ASID (ASID|1) too', () => {
    const r = rec();
    flushTlbMm(r, ASID, opts({ kpti: true }));
    expect(r.lines).toEqual(['DSB ISHST', 'TLBI ASIDE1IS asid=0x12', 'TLBI ASIDE1IS asid=0x13', 'DSB ISH']);
    expect(r.operands.map((o) => o.xt)).toEqual([0x12n << 48n, 0x13n << 48n]);
  });
});

describe('flush_tlb_page', () => {
  it('KPTI off: DSB ISHST; VALE1IS with level-3 TTL; notifier; DSB ISH', () => {
    const r = rec();
    const calls: number[][] = [];
    expect(flushTlbPage(r, ASID, VA + 0x123, opts({ notifier: (a, s, e) => calls.push([a, s, e]) }))).toBe('page');
    expect(r.lines).toEqual([
      'DSB ISHST', 'TLBI VALE1IS asid=0x12 va=0x7f0000 ttl=3',
      '# mmu_notifier_arch_invalidate_secondary_tlbs asid=0x12 start=0x7f0000 end=0x7f1000',
      'DSB ISH',
    ]);
    expect(calls).toEqual([[ASID, VA, VA + PAGE]]);
    // Xt = ASID<<48 | TTL(level 3 | TG 4K<<2 = 0b0111)<<44 | VA>>12
    expect(r.operands[0].xt).toBe(0x0012_7000_0000_07f0n);
  });
  it('KPTI on: each TLBI doubled for ASID|1', () => {
    const r = rec();
    flushTlbPage(r, ASID, VA, opts({ kpti: true }));
    expect(insns(r)).toEqual([
      'DSB ISHST', 'TLBI VALE1IS asid=0x12 va=0x7f0000 ttl=3', 'TLBI VALE1IS asid=0x13 va=0x7f0000 ttl=3', 'DSB ISH',
    ]);
  });
  it('v6.x __flush_tlb_page_nosync (pageTtlHint=false) and CPUs without FEAT_TTL carry no hint', () => {
    for (const o of [opts({ pageTtlHint: false }), opts({ featTtl: false })]) {
      const r = rec();
      flushTlbPage(r, ASID, VA, o);
      expect(insns(r)).toEqual(['DSB ISHST', 'TLBI VALE1IS asid=0x12 va=0x7f0000', 'DSB ISH']);
      expect(r.operands[0].xt).toBe(0x0012_0000_0000_07f0n);
    }
  });
  it('FEAT_TLBIRANGE changes nothing for one page', () => {
    const r = rec();
    flushTlbPage(r, ASID, VA, opts({ tlbiRange: true }));
    expect(insns(r)).toEqual(['DSB ISHST', 'TLBI VALE1IS asid=0x12 va=0x7f0000 ttl=3', 'DSB ISH']);
  });
});

describe('__flush_tlb_range', () => {
  const va = (i: number): string => `0x${(VA + i * PAGE).toString(16)}`;

  it('4 pages, no FEAT_TLBIRANGE, KPTI off: VAE1IS per page, no hint (flush_tlb_range)', () => {
    const r = rec();
    expect(flushTlbRange(r, ASID, VA, VA + 4 * PAGE, PAGE, false, undefined, opts())).toBe('range');
    expect(insns(r)).toEqual([
      'DSB ISHST', ...[0, 1, 2, 3].map((i) => `TLBI VAE1IS asid=0x12 va=${va(i)}`), 'DSB ISH',
    ]);
  });
  it('4 pages, no FEAT_TLBIRANGE, KPTI on: kernel then user op per page', () => {
    const r = rec();
    flushTlbRange(r, ASID, VA, VA + 4 * PAGE, PAGE, false, undefined, opts({ kpti: true }));
    expect(insns(r)).toEqual([
      'DSB ISHST',
      ...[0, 1, 2, 3].flatMap((i) => [`TLBI VAE1IS asid=0x12 va=${va(i)}`, `TLBI VAE1IS asid=0x13 va=${va(i)}`]),
      'DSB ISH',
    ]);
  });
  it('4 pages, last level, level 3 hint: VALE1IS ttl=3', () => {
    const r = rec();
    flushTlbRange(r, ASID, VA, VA + 4 * PAGE, PAGE, true, 3, opts());
    expect(insns(r)[1]).toBe(`TLBI VALE1IS asid=0x12 va=${va(0)} ttl=3`);
    expect(insns(r)).toHaveLength(6);
  });
  it('4 pages with FEAT_TLBIRANGE: one RVAE1IS SCALE=0 NUM=1 (KPTI off and on)', () => {
    const r = rec();
    flushTlbRange(r, ASID, VA, VA + 4 * PAGE, PAGE, false, undefined, opts({ tlbiRange: true }));
    expect(insns(r)).toEqual(['DSB ISHST', 'TLBI RVAE1IS asid=0x12 va=0x7f0000 scale=0 num=1 pages=4', 'DSB ISH']);
    // ASID 0x12<<48 | TG=1<<46 | SCALE 0 | NUM 1<<39 | TTL 0 | BaseADDR 0x7f0
    expect(r.operands[0].xt).toBe(0x0012_4080_0000_07f0n);
    const k = rec();
    flushTlbRange(k, ASID, VA, VA + 4 * PAGE, PAGE, false, undefined, opts({ tlbiRange: true, kpti: true }));
    expect(insns(k)).toEqual([
      'DSB ISHST', 'TLBI RVAE1IS asid=0x12 va=0x7f0000 scale=0 num=1 pages=4',
      'TLBI RVAE1IS asid=0x13 va=0x7f0000 scale=0 num=1 pages=4', 'DSB ISH',
    ]);
  });
  it('rounds start down and end up to the stride; notifier gets the rounded range before DSB ISH', () => {
    const r = rec();
    const calls: number[][] = [];
    flushTlbRange(r, ASID, VA + 0x10, VA + PAGE + 1, PAGE, false, undefined, opts({ notifier: (a, s, e) => calls.push([a, s, e]) }));
    expect(r.lines).toEqual([
      'DSB ISHST', `TLBI VAE1IS asid=0x12 va=${va(0)}`, `TLBI VAE1IS asid=0x12 va=${va(1)}`,
      '# mmu_notifier_arch_invalidate_secondary_tlbs asid=0x12 start=0x7f0000 end=0x7f2000',
      'DSB ISH',
    ]);
    expect(calls).toEqual([[ASID, VA, VA + 2 * PAGE]]);
  });
  it('v6.6–v6.13 notifier bug: start == end (empty range)', () => {
    const calls: number[][] = [];
    flushTlbRange(rec(), ASID, VA, VA + 4 * PAGE, PAGE, false, undefined,
      opts({ notifierEmptyRangeBug: true, notifier: (a, s, e) => calls.push([a, s, e]) }));
    expect(calls).toEqual([[ASID, VA + 4 * PAGE, VA + 4 * PAGE]]);
  });

  it('no FEAT_TLBIRANGE: 511 pages are flushed page by page, 512 fall back to flush_tlb_mm', () => {
    const r = rec();
    expect(flushTlbRange(r, ASID, 0x40000000, 0x40000000 + 511 * PAGE, PAGE, false, undefined, opts())).toBe('range');
    const l = insns(r);
    expect(l).toHaveLength(1 + 511 + 1);
    expect(l[0]).toBe('DSB ISHST');
    expect(l[1]).toBe('TLBI VAE1IS asid=0x12 va=0x40000000');
    expect(l[511]).toBe(`TLBI VAE1IS asid=0x12 va=0x${(0x40000000 + 510 * PAGE).toString(16)}`);
    expect(l[512]).toBe('DSB ISH');

    const m = rec();
    const calls: number[][] = [];
    expect(flushTlbRange(m, ASID, 0x40000000, 0x40000000 + 512 * PAGE, PAGE, false, undefined,
      opts({ kpti: true, notifier: (a, s, e) => calls.push([a, s, e]) }))).toBe('mm');
    expect(insns(m)).toEqual(['DSB ISHST', 'TLBI ASIDE1IS asid=0x12', 'TLBI ASIDE1IS asid=0x13', 'DSB ISH']);
    expect(calls).toEqual([[ASID, 0, ULONG_MAX]]); // only flush_tlb_mm's notifier
  });
  it('no FEAT_TLBIRANGE, 2 MiB stride: the limit is 512 strides (1 GiB), one op per stride', () => {
    const r = rec();
    flushTlbRange(r, ASID, 0x40000000, 0x40000000 + 3 * 0x200000, 0x200000, false, 2, opts());
    expect(insns(r)).toEqual([
      'DSB ISHST', 'TLBI VAE1IS asid=0x12 va=0x40000000 ttl=2', 'TLBI VAE1IS asid=0x12 va=0x40200000 ttl=2',
      'TLBI VAE1IS asid=0x12 va=0x40400000 ttl=2', 'DSB ISH',
    ]);
    expect(flushTlbRange(rec(), ASID, 0, 512 * 0x200000, 0x200000, false, 2, opts())).toBe('mm');
  });
  it('FEAT_TLBIRANGE: 512 pages use range ops; 2^21 pages is one op; 2^21+1 falls back to flush_tlb_mm', () => {
    const r = rec();
    expect(flushTlbRange(r, ASID, 0, 512 * PAGE, PAGE, false, undefined, opts({ tlbiRange: true }))).toBe('range');
    expect(insns(r)).toEqual(['DSB ISHST', 'TLBI RVAE1IS asid=0x12 va=0x0 scale=1 num=7 pages=512', 'DSB ISH']);

    const big = rec();
    expect(flushTlbRange(big, ASID, 0, MAX_TLBI_RANGE_PAGES * PAGE, PAGE, false, undefined, opts({ tlbiRange: true }))).toBe('range');
    expect(insns(big)).toEqual(['DSB ISHST', `TLBI RVAE1IS asid=0x12 va=0x0 scale=3 num=31 pages=${2 ** 21}`, 'DSB ISH']);

    const over = rec();
    expect(flushTlbRange(over, ASID, 0, (MAX_TLBI_RANGE_PAGES + 1) * PAGE, PAGE, false, undefined,
      opts({ tlbiRange: true, kpti: true }))).toBe('mm');
    expect(insns(over)).toEqual(['DSB ISHST', 'TLBI ASIDE1IS asid=0x12', 'TLBI ASIDE1IS asid=0x13', 'DSB ISH']);
  });
  it("before Gavin Shan's fix (maxPagesCompare '>='), exactly 2^21 pages already fell back", () => {
    expect(flushTlbRange(rec(), ASID, 0, MAX_TLBI_RANGE_PAGES * PAGE, PAGE, false, undefined,
      opts({ tlbiRange: true, maxPagesCompare: '>=' }))).toBe('mm');
    expect(flushTlbRange(rec(), ASID, 0, (MAX_TLBI_RANGE_PAGES - 2) * PAGE, PAGE, false, undefined,
      opts({ tlbiRange: true, maxPagesCompare: '>=' }))).toBe('range');
  });
});

describe('range operands (__flush_tlb_range_op, FEAT_TLBIRANGE, ASID 0x12, base page 0x7f0)', () => {
  /** The (op, scale, num, start offset, pages) sequence of a range flush of `pages` pages. */
  function ops(pages: number, over: Partial<TlbFlushOptions> = {}): string[] {
    const r = rec();
    flushTlbRangeOp(r, TLBI.VAE1IS, 0x7f0, pages, 1, ASID, 0x7fffffff, false, opts({ tlbiRange: true, ...over }));
    return r.lines;
  }

  it('v6.9+ (decreasing scale, NUM up to 31)', () => {
    // 1 page: `pages == 1` → a non-range op.
    expect(ops(1)).toEqual(['TLBI VAE1IS asid=0x12 va=0x7f0000']);
    // 2 pages: scales 3,2,1 give NUM = (min(2, 32<<(5s+1)) >> (5s+1)) - 1 = -1; scale 0: (2>>1)-1 = 0
    // → one op of (0+1)*2^1 = 2 pages.
    expect(ops(2)).toEqual(['TLBI RVAE1IS asid=0x12 va=0x7f0000 scale=0 num=0 pages=2']);
    // 3 pages: scale 0: NUM = (3>>1)-1 = 0 → 2 pages; the last page with a non-range op.
    expect(ops(3)).toEqual([
      'TLBI RVAE1IS asid=0x12 va=0x7f0000 scale=0 num=0 pages=2', 'TLBI VAE1IS asid=0x12 va=0x7f2000',
    ]);
    // 33 pages: scale 0: NUM = (33>>1)-1 = 15 → 16*2 = 32 pages; then 1 page.
    expect(ops(33)).toEqual([
      'TLBI RVAE1IS asid=0x12 va=0x7f0000 scale=0 num=15 pages=32', 'TLBI VAE1IS asid=0x12 va=0x810000',
    ]);
    // 64 pages: scale 1: NUM = (64>>6)-1 = 0 → (0+1)*2^6 = 64 pages, one op.
    expect(ops(64)).toEqual(['TLBI RVAE1IS asid=0x12 va=0x7f0000 scale=1 num=0 pages=64']);
    // 513 pages: scale 1: NUM = (513>>6)-1 = 7 → 8*64 = 512; scale 0 with 1 page left → non-range.
    expect(ops(513)).toEqual([
      'TLBI RVAE1IS asid=0x12 va=0x7f0000 scale=1 num=7 pages=512', 'TLBI VAE1IS asid=0x12 va=0x9f0000',
    ]);
    // 2^21 pages: scale 3: NUM = (min(2^21, 32<<16) >> 16) - 1 = 31 → 32*2^16 = 2^21.
    expect(ops(2 ** 21)).toEqual([`TLBI RVAE1IS asid=0x12 va=0x7f0000 scale=3 num=31 pages=${2 ** 21}`]);
    // 66 pages: 64 at scale 1 first, then 2 at scale 0.
    expect(ops(66)).toEqual([
      'TLBI RVAE1IS asid=0x12 va=0x7f0000 scale=1 num=0 pages=64', 'TLBI RVAE1IS asid=0x12 va=0x830000 scale=0 num=0 pages=2',
    ]);
  });

  it('v5.10–v6.8 (increasing scale, odd page first, NUM masked)', () => {
    const old: Partial<TlbFlushOptions> = { rangeLoop: 'v5.10', maxPagesCompare: '>=' };
    expect(ops(1, old)).toEqual(['TLBI VAE1IS asid=0x12 va=0x7f0000']);
    expect(ops(3, old)).toEqual([
      'TLBI VAE1IS asid=0x12 va=0x7f0000', 'TLBI RVAE1IS asid=0x12 va=0x7f1000 scale=0 num=0 pages=2',
    ]);
    expect(ops(33, old)).toEqual([
      'TLBI VAE1IS asid=0x12 va=0x7f0000', 'TLBI RVAE1IS asid=0x12 va=0x7f1000 scale=0 num=15 pages=32',
    ]);
    // 64: scale 0: ((64>>1) & 31) - 1 = (32 & 31) - 1 = -1; scale 1: (1 & 31) - 1 = 0 → 64 pages.
    expect(ops(64, old)).toEqual(['TLBI RVAE1IS asid=0x12 va=0x7f0000 scale=1 num=0 pages=64']);
    expect(ops(513, old)).toEqual([
      'TLBI VAE1IS asid=0x12 va=0x7f0000', 'TLBI RVAE1IS asid=0x12 va=0x7f1000 scale=1 num=7 pages=512',
    ]);
    // 66: low digit first: 2 pages at scale 0, then 64 at scale 1.
    expect(ops(66, old)).toEqual([
      'TLBI RVAE1IS asid=0x12 va=0x7f0000 scale=0 num=0 pages=2', 'TLBI RVAE1IS asid=0x12 va=0x7f2000 scale=1 num=0 pages=64',
    ]);
  });

  it('operands match the field layout and decode back', () => {
    const r = rec();
    flushTlbRangeOp(r, TLBI.VAE1IS, 0x7f0, 2 ** 21, 1, ASID, 3, false, opts({ tlbiRange: true }));
    // ASID<<48 | TG 1<<46 | SCALE 3<<44 | NUM 31<<39 | TTL 3<<37 | 0x7f0
    expect(r.operands[0].xt).toBe(0x0012_7fe0_0000_07f0n);
    expect(decodeTlbiRangeOperand(r.operands[0].xt)).toEqual({ asid: 0x12, tg: 1, scale: 3, num: 31, ttl: 3, baseAddr: 0x7f0 });
    expect(r.lines[0]).toBe(`TLBI RVAE1IS asid=0x12 va=0x7f0000 scale=3 num=31 pages=${2 ** 21} ttl=3`);
  });

  it('without FEAT_TLBIRANGE the same loop is one op per stride', () => {
    const r = rec();
    flushTlbRangeOp(r, TLBI.VAE1IS, 0x7f0, 3, 1, ASID, 0x7fffffff, true, opts());
    expect(r.lines).toEqual([
      'TLBI VAE1IS asid=0x12 va=0x7f0000', 'TLBI VAE1IS asid=0x13 va=0x7f0000',
      'TLBI VAE1IS asid=0x12 va=0x7f1000', 'TLBI VAE1IS asid=0x13 va=0x7f1000',
      'TLBI VAE1IS asid=0x12 va=0x7f2000', 'TLBI VAE1IS asid=0x13 va=0x7f2000',
    ]);
  });

  it('the canonical decode of the recorder agrees with the loop for every page count up to 4096', () => {
    for (let pages = 2; pages <= 4096; pages++) {
      const r = rec();
      flushTlbRangeOp(r, TLBI.VAE1IS, 0, pages, 1, 0, 0x7fffffff, false, opts({ tlbiRange: true }));
      let covered = 0;
      for (const o of r.operands) {
        const f = decodeTlbiRangeOperand(o.xt);
        if (o.op === 'RVAE1IS') {
          expect(canonicalRangeScaleNum((f.num + 1) * 2 ** (5 * f.scale + 1))).toEqual({ scale: f.scale, num: f.num });
          expect(f.baseAddr).toBe(covered);
          covered += (f.num + 1) * 2 ** (5 * f.scale + 1);
        } else {
          covered += 1;
        }
      }
      expect(covered).toBe(pages);
      expect(r.operands.length).toBeLessThanOrEqual(5); // at most one op per scale plus a single page
    }
  });
});

describe('operand encoder / decoder', () => {
  it('round-trips and fills TlbiArgs for the hardware model', () => {
    const f = { asid: 0xbeef, tg: 1, scale: 2, num: 5, ttl: 2, baseAddr: 0x1_2345_6789 };
    const xt = encodeTlbiRangeOperand(f);
    expect(xt).toBe((0xbeefn << 48n) | (1n << 46n) | (2n << 44n) | (5n << 39n) | (2n << 37n) | 0x1_2345_6789n);
    expect(decodeTlbiRangeOperand(xt)).toEqual(f);
    const a = fillTlbiArgsFromRangeOperand(newTlbiArgs(TLBI.RVAE1IS), xt);
    expect(a).toMatchObject({ asid: 0xbeef, page: 0x1_2345_6789, pages: 6 * 2 ** 11, ttl: 2, granuleLog2: 12 });
  });
  it('rejects fields that do not fit', () => {
    expect(() => encodeTlbiRangeOperand({ asid: 0, tg: 1, scale: 4, num: 0, ttl: 0, baseAddr: 0 })).toThrow(RangeError);
    expect(() => encodeTlbiRangeOperand({ asid: 0, tg: 1, scale: 0, num: 32, ttl: 0, baseAddr: 0 })).toThrow(RangeError);
    expect(() => encodeTlbiRangeOperand({ asid: 0x10000, tg: 1, scale: 0, num: 0, ttl: 0, baseAddr: 0 })).toThrow(RangeError);
    expect(() => encodeTlbiRangeOperand({ asid: 0, tg: 1, scale: 0, num: 0, ttl: 0, baseAddr: 2 ** 37 })).toThrow(RangeError);
  });
  it('__TLBI_RANGE_NUM before and after the fix', () => {
    expect(tlbiRangeNum(2 ** 21, 3, true)).toBe(31);
    expect(tlbiRangeNum(2 ** 21, 3, false)).toBe(-1); // (32 & 31) - 1: the bug
    expect(tlbiRangeNum(3 * 2 ** 16, 3, false)).toBe(2);
  });
});

describe('flush_tlb_kernel_range', () => {
  const K = 0xffff800008000000; // page aligned: exact in a double
  it('v6.13+ without FEAT_TLBIRANGE: VAALE1IS per page (no KPTI doubling, no notifier), ISB at the end', () => {
    const r = rec();
    const calls: number[][] = [];
    const o = opts({ kpti: true, notifier: (a, s, e) => calls.push([a, s, e]) });
    expect(flushTlbKernelRange(r, K, K + 3 * PAGE, o)).toBe('range');
    expect(r.lines).toEqual([
      'DSB ISHST', 'TLBI VAALE1IS va=0xffff800008000000', 'TLBI VAALE1IS va=0xffff800008001000',
      'TLBI VAALE1IS va=0xffff800008002000', 'DSB ISH', 'ISB',
    ]);
    expect(calls).toEqual([]);
    expect(r.operands[0].xt).toBe(0xffff800008000000n / 4096n & (2n ** 44n - 1n));
  });
  it('v6.13+: 511 pages per page, 512 fall back to flush_tlb_all (VMALLE1IS)', () => {
    const r = rec();
    flushTlbKernelRange(r, K, K + 511 * PAGE, opts());
    expect(r.lines).toHaveLength(511 + 3);
    const all = rec();
    expect(flushTlbKernelRange(all, K, K + 512 * PAGE, opts())).toBe('all');
    expect(all.lines).toEqual(['DSB ISHST', 'TLBI VMALLE1IS', 'DSB ISH', 'ISB']);
  });
  it('pre-6.13: 512 pages still per page, 513 fall back', () => {
    const r = rec();
    expect(flushTlbKernelRange(r, K, K + 512 * PAGE, opts({ kernelRange: 'pre-6.13' }))).toBe('range');
    expect(r.lines).toHaveLength(512 + 3);
    expect(flushTlbKernelRange(rec(), K, K + 513 * PAGE, opts({ kernelRange: 'pre-6.13' }))).toBe('all');
  });
  it('v6.13+ with FEAT_TLBIRANGE: RVAALE1IS range ops', () => {
    const r = rec();
    flushTlbKernelRange(r, K, K + 1024 * PAGE, opts({ tlbiRange: true }));
    expect(r.lines).toEqual(['DSB ISHST', 'TLBI RVAALE1IS va=0xffff800008000000 scale=1 num=15 pages=1024', 'DSB ISH', 'ISB']);
  });
});

describe('batched unmap (arch_tlbbatch_add_pending / arch_tlbbatch_flush)', () => {
  it('no DSB ISH per page, one at the end; notifier per page', () => {
    const r = rec();
    const calls: number[][] = [];
    const o = opts({ kpti: true, notifier: (a, s, e) => calls.push([a, s, e]) });
    for (const p of [0, 5, 9]) archTlbbatchAddPending(r, ASID, VA + p * PAGE, VA + (p + 1) * PAGE, o);
    archTlbbatchFlush(r);
    const l = insns(r);
    expect(l).toEqual([
      'DSB ISHST', 'TLBI VALE1IS asid=0x12 va=0x7f0000 ttl=3', 'TLBI VALE1IS asid=0x13 va=0x7f0000 ttl=3',
      'DSB ISHST', 'TLBI VALE1IS asid=0x12 va=0x7f5000 ttl=3', 'TLBI VALE1IS asid=0x13 va=0x7f5000 ttl=3',
      'DSB ISHST', 'TLBI VALE1IS asid=0x12 va=0x7f9000 ttl=3', 'TLBI VALE1IS asid=0x13 va=0x7f9000 ttl=3',
      'DSB ISH',
    ]);
    expect(l.filter((x) => x === 'DSB ISH')).toHaveLength(1);
    expect(calls).toEqual([[ASID, VA, VA + PAGE], [ASID, VA + 5 * PAGE, VA + 6 * PAGE], [ASID, VA + 9 * PAGE, VA + 10 * PAGE]]);
  });
  it('a large folio with FEAT_TLBIRANGE is one RVALE1IS', () => {
    const r = rec();
    archTlbbatchAddPending(r, ASID, VA, VA + 16 * PAGE, opts({ tlbiRange: true }));
    archTlbbatchFlush(r);
    expect(r.lines).toEqual(['DSB ISHST', 'TLBI RVALE1IS asid=0x12 va=0x7f0000 scale=0 num=7 pages=16 ttl=3', 'DSB ISH']);
  });
});

describe('mmu_gather tlb_flush', () => {
  it('full-mm teardown: flush_tlb_mm only if page tables were freed', () => {
    const r = rec();
    const g = { start: 0, end: 0, fullmm: true, freedTables: false, stride: PAGE, tlbLevel: TLBI_TTL_UNKNOWN };
    expect(tlbFlush(r, ASID, g, opts())).toBeNull();
    expect(r.lines).toEqual([]);
    expect(tlbFlush(r, ASID, { ...g, freedTables: true }, opts())).toBe('mm');
    expect(r.lines).toEqual(['DSB ISHST', 'TLBI ASIDE1IS asid=0x12', 'DSB ISH']);
  });
  it('munmap of PTEs only: last-level VALE1IS with level 3; with freed tables: VAE1IS, no hint', () => {
    const r = rec();
    const lvl = tlbGetLevel(false, true, false, false);
    expect(lvl).toBe(3);
    tlbFlush(r, ASID, { start: VA, end: VA + 2 * PAGE, fullmm: false, freedTables: false, stride: PAGE, tlbLevel: lvl }, opts());
    expect(r.lines).toEqual([
      'DSB ISHST', 'TLBI VALE1IS asid=0x12 va=0x7f0000 ttl=3', 'TLBI VALE1IS asid=0x12 va=0x7f1000 ttl=3', 'DSB ISH',
    ]);
    const f = rec();
    tlbFlush(f, ASID, { start: VA, end: VA + PAGE, fullmm: false, freedTables: true, stride: PAGE,
      tlbLevel: tlbGetLevel(true, true, false, false) }, opts());
    expect(f.lines).toEqual(['DSB ISHST', 'TLBI VAE1IS asid=0x12 va=0x7f0000', 'DSB ISH']);
  });
});
