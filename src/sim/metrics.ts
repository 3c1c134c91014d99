import { OPCODE_NAMES } from '../arch/commands.js';
import { Stage } from '../arch/world.js';
import type { Smmu, StreamConfig, SmmuListener } from '../hw/smmu/smmu.js';
import { SmmuCache, SmmuStat } from '../hw/smmu/smmu.js';
import type { Tlb } from '../hw/tlb/tlb.js';
import { RemoveCause } from '../hw/tlb/tlb-api.js';
import { CtxKind, type ContextRegistry } from './contexts.js';
import { NumberSet } from './number-set.js';

/** Who issued an invalidation (DESIGN.md §5 "by source"). */
export const Source = {
  KVM_PAGE: 0, KVM_RANGE: 1, KVM_VM: 2, KVM_ROLLOVER: 3, HOST_MM: 4, GUEST: 5, DRIVER: 6, ASID_ROLLOVER: 7,
} as const;
export const SOURCE_KEYS = ['kvmPage', 'kvmRange', 'kvmVm', 'kvmRollover', 'hostMm', 'guest', 'driver', 'asidRollover'] as const;
const N_SRC = SOURCE_KEYS.length;

/** Whose entry was removed (DESIGN.md §5 "by victim"). */
export const Victim = { SMMU_S2: 0, SMMU_S1: 1, SMMU_NESTED: 2, CPU: 3 } as const;
export const VICTIM_KEYS = ['smmuS2', 'smmuS1', 'smmuNested', 'cpu'] as const;
const N_VIC = VICTIM_KEYS.length;

/** Intent modes: a set of contexts, or "every KVM (VM-owned) context on the CPUs" (rollover). */
const INTENT_SET = 1;
const INTENT_KVM_ALL = 2;

/**
 * Counts intended and collateral invalidations and collateral refills, attributing each removed
 * TLB entry to the invalidation in progress (its source and intent). An entry is collateral when
 * the context it was filled for is not in the intent (DESIGN.md §5).
 */
export class Metrics implements SmmuListener {
  readonly collateral = new Float64Array(N_SRC * N_VIC);
  readonly intended = new Float64Array(N_SRC * N_VIC);
  collateralRefills = 0;
  collateralRefillWalkAccesses = 0;
  /** Entries removed while no invalidation was being attributed (should stay 0). */
  unattributed = 0;
  private readonly pendingRefill = new NumberSet();
  private source = -1;
  private mode = 0;
  private mark = new Uint8Array(256);
  private readonly marked: number[] = [];

  constructor(private readonly ctxs: ContextRegistry) {
    // Replaced when it grows: stored twice here so V8 never treats it as a constant field
    // (growing it mid-run would then deoptimise every compiled function that read it).
    this.mark = new Uint8Array(256);
  }

  /** Start attributing removals to `source` with an (initially empty) intent set. */
  begin(source: number): void {
    this.end();
    this.source = source;
    this.mode = INTENT_SET;
  }

  /** Rollover: intended = CPU entries of VM contexts; everything else is collateral. */
  beginKvmAll(source: number): void {
    this.end();
    this.source = source;
    this.mode = INTENT_KVM_ALL;
  }

  intend(ctx: number): void {
    if (ctx < 0) return;
    if (ctx >= this.mark.length) {
      const m = new Uint8Array(Math.max(ctx + 1, this.mark.length * 2)); m.set(this.mark); this.mark = m;
    }
    if (this.mark[ctx] === 0) { this.mark[ctx] = 1; this.marked.push(ctx); }
  }

  end(): void {
    for (let i = 0; i < this.marked.length; i++) this.mark[this.marked[i]] = 0;
    this.marked.length = 0;
    this.source = -1;
    this.mode = 0;
  }

  private isIntended(ctx: number, cpu: boolean): boolean {
    if (this.mode === INTENT_KVM_ALL) return cpu && ctx >= 0 && this.ctxs.kind[ctx] === CtxKind.VM_S2;
    return ctx >= 0 && ctx < this.mark.length && this.mark[ctx] === 1;
  }

  private record(victim: number, ctx: number, cpu: boolean): boolean {
    if (this.source < 0) { this.unattributed++; return false; }
    const i = this.source * N_VIC + victim;
    if (this.isIntended(ctx, cpu)) { this.intended[i]++; return false; }
    this.collateral[i]++;
    return true;
  }

  // ---- SMMU listener ----
  onRemove(_smmu: Smmu, cache: number, tlb: Tlb, slot: number, cause: number): void {
    // Only the main TLB counts: micro-TLB copies and walk-cache entries would count twice.
    if (cause !== RemoveCause.INVALIDATE || cache !== SmmuCache.TLB) return;
    const st = tlb.stage[slot];
    const victim = st === Stage.S2 ? Victim.SMMU_S2 : st === Stage.NESTED ? Victim.SMMU_NESTED : Victim.SMMU_S1;
    const ctx = tlb.ctx[slot];
    if (this.record(victim, ctx, false)) {
      const set = this.pendingRefill;
      set.key[0] = refillKey(ctx, tlb.page[slot], tlb.sizeLog2[slot]);
      set.addKey();
    }
  }

  onFill(smmu: Smmu, _cfg: StreamConfig, cache: number, tlb: Tlb, slot: number): void {
    if (cache !== SmmuCache.TLB || this.pendingRefill.size === 0) return;
    const set = this.pendingRefill;
    set.key[0] = refillKey(tlb.ctx[slot], tlb.page[slot], tlb.sizeLog2[slot]);
    if (set.deleteKey()) {
      this.collateralRefills++;
      this.collateralRefillWalkAccesses += smmu.lastWalk;
    }
  }

  /** PE TLB removal hook. */
  onCpuRemove(tlb: Tlb, slot: number, cause: number): void {
    if (cause !== RemoveCause.INVALIDATE) return;
    this.record(Victim.CPU, tlb.ctx[slot], true);
  }

  total(arr: Float64Array): number {
    let s = 0;
    for (let i = 0; i < arr.length; i++) s += arr[i];
    return s;
  }

  bySource(arr: Float64Array): Record<string, number> {
    const o: Record<string, number> = {};
    for (let s = 0; s < N_SRC; s++) {
      let t = 0;
      for (let v = 0; v < N_VIC; v++) t += arr[s * N_VIC + v];
      o[SOURCE_KEYS[s]] = t;
    }
    return o;
  }

  byVictim(arr: Float64Array): Record<string, number> {
    const o: Record<string, number> = {};
    for (let v = 0; v < N_VIC; v++) {
      let t = 0;
      for (let s = 0; s < N_SRC; s++) t += arr[s * N_VIC + v];
      o[VICTIM_KEYS[v]] = t;
    }
    return o;
  }

  /** collateral[source][victim] as a nested object (only non-zero cells). */
  matrix(arr: Float64Array): Record<string, Record<string, number>> {
    const o: Record<string, Record<string, number>> = {};
    for (let s = 0; s < N_SRC; s++) {
      for (let v = 0; v < N_VIC; v++) {
        const x = arr[s * N_VIC + v];
        if (x !== 0) (o[SOURCE_KEYS[s]] ??= {})[VICTIM_KEYS[v]] = x;
      }
    }
    return o;
  }
}

function refillKey(ctx: number, page: number, sizeLog2: number): number {
  return (ctx * 64 + sizeLog2) * 4294967296 + (page % 4294967296);
}

/** Commands by spec name from per-opcode counters (only non-zero). */
export function commandsByName(byOpcode: Float64Array): Record<string, number> {
  const o: Record<string, number> = {};
  for (let op = 0; op < 256; op++) if (byOpcode[op] > 0) o[OPCODE_NAMES[op] ?? `0x${op.toString(16)}`] = byOpcode[op];
  return o;
}

export function smmuTotals(smmus: readonly Smmu[]): { hits: number; misses: number; walkAccesses: number; faults: number; dvmReceived: number[]; dvmIgnored: number[]; dvmSyncs: number[] } {
  let hits = 0, misses = 0, walk = 0, faults = 0;
  const dvmReceived: number[] = [], dvmIgnored: number[] = [], dvmSyncs: number[] = [];
  for (const s of smmus) {
    hits += s.stats[SmmuStat.HITS] + s.stats[SmmuStat.ATC_HITS];
    misses += s.stats[SmmuStat.MISSES];
    walk += s.stats[SmmuStat.WALK_ACCESSES];
    faults += s.stats[SmmuStat.FAULTS];
    dvmReceived.push(s.stats[SmmuStat.DVM_TLBI]);
    dvmIgnored.push(s.stats[SmmuStat.DVM_IGNORED]);
    dvmSyncs.push(s.stats[SmmuStat.DVM_SYNC]);
  }
  return { hits, misses, walkAccesses: walk, faults, dvmReceived, dvmIgnored, dvmSyncs };
}
