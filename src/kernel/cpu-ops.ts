/**
 * The sink the kernel model emits barriers and TLB maintenance into. The kernel code
 * (`kernel/mm/tlbflush.ts`, `kernel/kvm/tlb.ts`) is written against this interface only, so the
 * same code drives the hardware model (`PeCpuOps`) or records the exact instruction sequence
 * (`RecordingCpuOps`) for tests and traces. See docs/flush-paths.md.
 */
import { TlbiKind } from '../arch/tlbi.js';
import type { Pe } from '../hw/cpu/pe.js';
import type { TlbiArgs } from '../hw/tlbi-scope.js';

/** Barrier domains the kernel code uses: `dsb(ishst)`, `dsb(ish)`, `dsb(nsh)`, `dsb(nshst)`. */
export type DsbKind = 'ishst' | 'ish' | 'nsh' | 'nshst';

export interface CpuOps {
  /** Execute one TLBI. `a` is owned by the caller and reused: read it, never keep it. */
  tlbi(a: TlbiArgs): void;
  dsb(kind: DsbKind): void;
  isb(): void;
  /** IC IALLUIS (Inner Shareable I-cache invalidate; the model has no I-cache). */
  icIalluis?(): void;
  /** IC IALLU (local I-cache invalidate). */
  icIallu?(): void;
  /**
   * Optional: also receive the raw 64-bit Xt operand the kernel would have written. When a sink
   * defines it, the kernel code calls it instead of `tlbi` for every TLBI that takes an operand
   * (building the BigInt only then, so the hardware path never allocates).
   */
  tlbiWithOperand?(a: TlbiArgs, xt: bigint): void;
  /** Optional: a non-instruction event (context switch, notifier call) for traces. */
  marker?(text: string): void;
}

/**
 * Adapts a hardware PE. `dsb('ish')` is the only barrier with an effect in the model: it sends the
 * DVM Sync that completes this PE's outstanding broadcast TLBIs (`Pe.dsb`). `ishst`/`nshst` are
 * store barriers (they publish page-table writes; they complete no TLBI); `nsh` completes only
 * local maintenance, which the model applies at once. ISB and I-cache maintenance have no TLB
 * effect. Allocates nothing.
 */
export class PeCpuOps implements CpuOps {
  constructor(readonly pe: Pe) {}

  tlbi(a: TlbiArgs): void {
    this.pe.tlbi(a);
  }

  dsb(kind: DsbKind): void {
    if (kind === 'ish') this.pe.dsb();
  }

  isb(): void {}

  icIalluis(): void {}

  icIallu(): void {}
}

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
/** Address of a 4 KiB page number, exact for any page number below 2^53. */
const pageAddr = (page: number): string => hex(BigInt(page) << 12n);

/**
 * Canonical (SCALE, NUM) for a range TLBI covering `pages` 4 KiB pages: the largest SCALE with
 * pages = (NUM+1) * 2^(5*SCALE+1), NUM in [0, 31]. Unique except that NUM=31 at SCALE s equals
 * NUM=0 at SCALE s+1; the kernel loops never emit the former below SCALE 3, so this matches what
 * they emit. Returns null if `pages` is not encodable.
 */
export function canonicalRangeScaleNum(pages: number): { scale: number; num: number } | null {
  for (let scale = 3; scale >= 0; scale--) {
    const unit = 2 ** (5 * scale + 1);
    if (pages % unit === 0 && pages / unit >= 1 && pages / unit <= 32) return { scale, num: pages / unit - 1 };
  }
  return null;
}

/** Text of one TLBI as the recorder prints it (see RecordingCpuOps). */
export function formatTlbi(a: TlbiArgs, scaleNum?: { scale: number; num: number } | null): string {
  const op = a.op;
  let s = `TLBI ${op.name}`;
  switch (op.kind) {
    case TlbiKind.ASID:
      s += ` asid=${hex(a.asid)}`;
      break;
    case TlbiKind.VA:
      s += ` asid=${hex(a.asid)} va=${pageAddr(a.page)}`;
      break;
    case TlbiKind.VAA:
      s += ` va=${pageAddr(a.page)}`;
      break;
    case TlbiKind.IPA:
      s += ` ipa=${pageAddr(a.page)}`;
      break;
    default:
      return s;
  }
  if (op.range) {
    const sn = scaleNum === undefined ? canonicalRangeScaleNum(a.pages) : scaleNum;
    if (sn !== null) s += ` scale=${sn.scale} num=${sn.num}`;
    s += ` pages=${a.pages}`;
  }
  if (a.ttl !== 0) s += ` ttl=${a.ttl}`;
  return s;
}

export interface RecordingOptions {
  /** Also record `marker()` events (context switches, notifier calls) as "# ..." lines. */
  markers?: boolean;
}

/**
 * Records the exact textual instruction sequence, e.g.
 * `["DSB ISHST", "TLBI VALE1IS asid=0x12 va=0x7f0000 ttl=3", "DSB ISH"]`, and optionally
 * forwards every instruction to another sink (e.g. a PeCpuOps, to record and execute).
 *
 * Format: `TLBI <OP>` then, by kind, `asid=` (ASID and VA forms), `va=`/`ipa=` (byte address of the
 * 4 KiB page the operand names), for range forms `scale= num= pages=`, and `ttl=<level>` only when
 * a level hint is carried. Barriers: `DSB ISHST|ISH|NSH|NSHST`, `ISB`, `IC IALLUIS|IALLU`.
 * Raw operands (when the kernel code supplies them) are kept in `operands`, in order.
 */
export class RecordingCpuOps implements CpuOps {
  readonly lines: string[] = [];
  /** Xt operands of TLBIs that take one, in emission order. */
  readonly operands: { op: string; xt: bigint }[] = [];
  private readonly markers: boolean;

  constructor(readonly next: CpuOps | null = null, opts: RecordingOptions = {}) {
    this.markers = opts.markers ?? false;
  }

  tlbi(a: TlbiArgs): void {
    this.lines.push(formatTlbi(a));
    this.next?.tlbi(a);
  }

  tlbiWithOperand(a: TlbiArgs, xt: bigint): void {
    let sn: { scale: number; num: number } | null | undefined;
    if (a.op.range) sn = { scale: Number((xt >> 44n) & 3n), num: Number((xt >> 39n) & 31n) };
    this.lines.push(formatTlbi(a, sn));
    this.operands.push({ op: a.op.name, xt });
    this.next?.tlbi(a);
  }

  dsb(kind: DsbKind): void {
    this.lines.push(`DSB ${kind.toUpperCase()}`);
    this.next?.dsb(kind);
  }

  isb(): void {
    this.lines.push('ISB');
    this.next?.isb();
  }

  icIalluis(): void {
    this.lines.push('IC IALLUIS');
    this.next?.icIalluis?.();
  }

  icIallu(): void {
    this.lines.push('IC IALLU');
    this.next?.icIallu?.();
  }

  marker(text: string): void {
    if (this.markers) this.lines.push(`# ${text}`);
    this.next?.marker?.(text);
  }

  /** Append a free-form line (tests use it to interleave notifier calls with instructions). */
  note(text: string): void {
    this.lines.push(text);
  }

  clear(): void {
    this.lines.length = 0;
    this.operands.length = 0;
  }
}
