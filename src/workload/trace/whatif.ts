/**
 * What-if replays: the same trace on other hardware and policy. This module holds the parts that
 * change the trace or add to it:
 *  - command rewriting: range TLBIs re-encoded as one command per granule when IDR3.RIL is off
 *    (what Linux issues without FEAT_RANGE_INV), per-page runs merged into range TLBIs when RIL is
 *    turned on, SMMU VMIDs moved into the upper half of the VMID space (btm-split);
 *  - a synthetic KVM beside the traced system: K VMs whose stage-2 maintenance is broadcast from
 *    the PEs at a given rate (IPAS2E1IS + VMALLE1IS per page unmap, VMALLS12E1IS per whole-VM
 *    flush, through the kernel model's exact TLBI sequences), so that with BTM the SMMU sees the
 *    DVM traffic and, where VMIDs collide, loses entries;
 *  - the difference between two replays.
 *
 * No Node or DOM imports.
 */
import {
  OP, cmdAddrPage, cmdIpaPage, cmdLeaf, cmdNum, cmdOpcode, cmdScale, cmdTg, cmdVmid, cmdAsid, writeTlbi,
} from '../../arch/commands.js';
import type { PolicyName } from '../schema.js';
import { PeCpuOps } from '../../kernel/cpu-ops.js';
import { kvmFlushRemoteTlbs, kvmFlushVmContext, kvmTlbFlushVmidIpa } from '../../kernel/kvm/tlb.js';
import type { HwSystem } from '../../hw/system.js';
import { Prng } from '../../sim/prng.js';
import { CtxKind, type ContextRegistry } from '../../sim/contexts.js';
import { Source, type Metrics } from '../../sim/metrics.js';

// ---------------------------------------------------------------------------------------------
// Command rewriting

const RANGE_OPS = new Set<number>([OP.CMD_TLBI_NH_VA, OP.CMD_TLBI_NH_VAA, OP.CMD_TLBI_EL2_VA, OP.CMD_TLBI_EL2_VAA, OP.CMD_TLBI_S2_IPA]);
const VMID_OPS = new Set<number>([OP.CMD_TLBI_NH_ALL, OP.CMD_TLBI_NH_ASID, OP.CMD_TLBI_NH_VA, OP.CMD_TLBI_NH_VAA, OP.CMD_TLBI_S12_VMALL, OP.CMD_TLBI_S2_IPA]);
/** Granules one range command may be turned into; beyond this the rewrite gives up (keeps the command). */
export const MAX_SPLIT = 1 << 20;

export interface RewriteStats {
  /** Range TLBIs replaced by per-granule commands (RIL off). */
  rangeSplit: number;
  /** Per-granule commands they became. */
  perPageCommands: number;
  /** Runs of per-page TLBIs merged into one range TLBI (RIL on). */
  merged: number;
  /** Commands whose VMID field was moved (btm-split). */
  vmidRemapped: number;
}
export function newRewriteStats(): RewriteStats {
  return { rangeSplit: 0, perPageCommands: 0, merged: 0, vmidRemapped: 0 };
}

export interface RewriteOptions {
  /** 'off': split range TLBIs; 'on': merge per-page runs; undefined: leave as recorded. */
  ril?: 'on' | 'off';
  /** New VMID for a command VMID (btm-split), or null. */
  vmidMap?: ((vmid: number) => number) | null;
}

function addrPageOf(w: Uint32Array, off: number, op: number): number {
  return op === OP.CMD_TLBI_S2_IPA ? cmdIpaPage(w, off) : cmdAddrPage(w, off);
}
function tgPages(tg: number): number {
  return tg === 2 ? 4 : tg === 3 ? 16 : 1;
}

/**
 * Rewrite one submission's commands (4 words each). Returns the input when nothing changes,
 * else a new array. Deterministic.
 */
export function rewriteCommands(w: Uint32Array, o: RewriteOptions, st: RewriteStats): Uint32Array {
  const n = w.length >>> 2;
  let out: number[] | null = null;
  const keep = (i: number): void => { out!.push(w[i * 4], w[i * 4 + 1], w[i * 4 + 2], w[i * 4 + 3]); };
  const begin = (upTo: number): void => {
    if (out !== null) return;
    out = [];
    for (let k = 0; k < upTo; k++) keep(k);
  };
  const scratch = new Uint32Array(4);
  for (let i = 0; i < n; i++) {
    const off = i * 4;
    const op = cmdOpcode(w, off);
    let vmid = VMID_OPS.has(op) ? cmdVmid(w, off) : 0;
    let vmidChanged = false;
    if (o.vmidMap && VMID_OPS.has(op)) {
      const nv = o.vmidMap(vmid);
      if (nv !== vmid) { vmid = nv; vmidChanged = true; st.vmidRemapped++; }
    }
    const hasAsid = op === OP.CMD_TLBI_NH_VA || op === OP.CMD_TLBI_NH_ASID || op === OP.CMD_TLBI_EL2_VA || op === OP.CMD_TLBI_EL2_ASID;
    const asid = hasAsid ? cmdAsid(w, off) : 0;
    if (o.ril === 'off' && RANGE_OPS.has(op) && cmdTg(w, off) !== 0) {
      // Linux without FEAT_RANGE_INV: one command per granule, TG/TTL/NUM/SCALE zero.
      const tg = cmdTg(w, off);
      const count = (cmdNum(w, off) + 1) * 2 ** cmdScale(w, off);
      if (count <= MAX_SPLIT) {
        begin(i);
        const base = addrPageOf(w, off, op);
        const step = tgPages(tg);
        const leaf = cmdLeaf(w, off);
        for (let k = 0; k < count; k++) {
          writeTlbi(scratch, 0, op, vmid, asid, base + k * step, leaf, 0, 0, 0, 0);
          out!.push(scratch[0], scratch[1], scratch[2], scratch[3]);
        }
        st.rangeSplit++;
        st.perPageCommands += count;
        continue;
      }
    }
    if (o.ril === 'on' && RANGE_OPS.has(op) && cmdTg(w, off) === 0) {
      // Merge a run of single-page TLBIs on consecutive 4 KiB pages (same op, VMID, ASID, leaf).
      let j = i + 1;
      const base = addrPageOf(w, off, op);
      const leaf = cmdLeaf(w, off);
      while (j < n && j - i < 32 * 2 ** 20) {
        const o2 = j * 4;
        if (cmdOpcode(w, o2) !== op || cmdTg(w, o2) !== 0 || cmdLeaf(w, o2) !== leaf) break;
        if (VMID_OPS.has(op) && cmdVmid(w, o2) !== cmdVmid(w, off)) break;
        if (hasAsid && cmdAsid(w, o2) !== cmdAsid(w, off)) break;
        if (addrPageOf(w, o2, op) !== base + (j - i)) break;
        j++;
      }
      const pages = j - i;
      if (pages > 1) {
        begin(i);
        // arm_smmu_tlb_inv_range_cmd: scale = ctz(num_pages), num = (num_pages >> scale) & 31.
        let left = pages, addr = base;
        const ttl = leaf === 1 ? 3 : 0;
        while (left > 0) {
          const scale = ctz(left);
          const num = (left / 2 ** scale) % 32;
          const chunk = num * 2 ** scale;
          // TG!=0 with NUM=SCALE=TTL=0 is Reserved (§4.4.1.1): a lone non-leaf page goes as TG=0.
          if (num === 1 && scale === 0 && ttl === 0) writeTlbi(scratch, 0, op, vmid, asid, addr, leaf, 0, 0, 0, 0);
          else writeTlbi(scratch, 0, op, vmid, asid, addr, leaf, ttl, 1, num - 1, scale);
          out!.push(scratch[0], scratch[1], scratch[2], scratch[3]);
          addr += chunk;
          left -= chunk;
        }
        st.merged++;
        i = j - 1;
        continue;
      }
    }
    if (vmidChanged) {
      begin(i);
      const a = w[off], b = w[off + 1], c = w[off + 2], d = w[off + 3];
      out!.push(a, ((b & 0xffff0000) | (vmid & 0xffff)) >>> 0, c, d);
      continue;
    }
    if (out !== null) keep(i);
  }
  return out === null ? w : Uint32Array.from(out as number[]);
}

function ctz(x: number): number {
  let n = 0;
  while (x > 0 && x % 2 === 0) { x /= 2; n++; }
  return n;
}


// ---------------------------------------------------------------------------------------------
// Policies in a replay

/**
 * What a policy changes when replaying a trace (the trace fixes the SMMU's own commands and
 * VMIDs; only the hardware and KVM side can change):
 *  ptm            BTM off (CR2.PTM=1): broadcasts ignored.
 *  btm-2020       BTM on; KVM allocates VMIDs from 1, colliding with the SMMU's stage-2 VMIDs.
 *  btm-split      BTM on; SMMU VMIDs moved to [split, 2^bits) (STEs and commands rewritten), KVM
 *                 VMIDs from [1, split).
 *  btm-kvm-pinned BTM on; KVM VM i runs with the i-th stage-2 VMID the SMMU uses (the SMMU uses
 *                 the VM's pinned VMID), so its flushes are intended for those SMMU contexts.
 *  btm-s2aset     BTM on; every stage-2 STE has the hypothetical S2ASET: VMID broadcasts spare it.
 */
export interface ReplayPolicy {
  name: PolicyName;
  btm: boolean;
  splitVmids: boolean;
  kvmPinned: boolean;
  s2aset: boolean;
}

export function replayPolicy(name: PolicyName): ReplayPolicy {
  const p: ReplayPolicy = { name, btm: true, splitVmids: false, kvmPinned: false, s2aset: false };
  switch (name) {
    case 'ptm': p.btm = false; break;
    case 'btm-2020': break;
    case 'btm-split': p.splitVmids = true; break;
    case 'btm-kvm-pinned': p.kvmPinned = true; break;
    case 'btm-s2aset': p.s2aset = true; break;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Synthetic KVM

export interface SyntheticKvmOptions {
  /** Number of VMs. */
  vms: number;
  /** Stage-2 page unmaps per ms per VM (each: IPAS2E1IS; DSB; VMALLE1IS; DSB). */
  unmapPerMs: number;
  /** Whole-VM flushes per ms per VM (VMALLS12E1IS; DSB). */
  flushPerMs: number;
  /**
   * KVM VMID rollovers per second (`__kvm_flush_vm_context`: TLBI ALLE1IS; DSB), which with BTM
   * remove every NS-EL1 SMMU entry whatever its VMID (VMID 0 stage-1 contexts included).
   */
  rolloverPerS: number;
  /** First KVM VMID (KVM allocates from 1). */
  vmidBase: number;
  /** Exclusive upper bound of KVM VMIDs (btm-split: the split point); 0 = none. */
  vmidLimit: number;
  /** Guest memory per VM in pages (the IPAs unmapped are drawn from it). */
  vmPages: number;
  seed: number;
}

export function defaultSyntheticKvm(over: Partial<SyntheticKvmOptions> = {}): SyntheticKvmOptions {
  // Rates as the scenario defaults (workload.kvm.unmapPerMsPerVm 1, flushVmPerMsPerVm 0.05).
  return { vms: 4, unmapPerMs: 1, flushPerMs: 0.05, rolloverPerS: 0, vmidBase: 1, vmidLimit: 0, vmPages: 262144, seed: 1, ...over };
}

interface KvmVm {
  index: number;
  vmid: number;
  ctx: number;
  cpu: number;
  rng: Prng;
  nextUnmap: number;
  nextFlush: number;
}

/** Guest IPA where VM memory starts (1 GiB), as in the simulation. */
const GUEST_IPA_BASE = 0x40000;

/**
 * K VMs on the PEs of `hw`, issuing KVM's stage-2 maintenance at Poisson rates in trace time.
 * `advanceTo(ns)` issues everything due up to that time. Removed SMMU entries are attributed to
 * the VM's context (so any SMMU entry hit is collateral) unless `intendFor` names SMMU contexts
 * the VM owns (btm-kvm-pinned).
 */
export class SyntheticKvm {
  readonly vms: KvmVm[] = [];
  unmaps = 0;
  vmFlushes = 0;
  rollovers = 0;
  private readonly ops: PeCpuOps[];
  private nextRollover = Infinity;
  private readonly rolloverRng: Prng;

  constructor(
    readonly o: SyntheticKvmOptions,
    private readonly hw: HwSystem,
    ctxs: ContextRegistry,
    private readonly metrics: Metrics,
    /** VMID for VM i (null: vmidBase + i); re-asked at each operation (pinned VMIDs appear late). */
    private readonly vmidFor: ((i: number) => number | null) | null = null,
    /** SMMU contexts a VM's flushes are intended for (btm-kvm-pinned). */
    private readonly intendFor: ((vmid: number) => Iterable<number>) | null = null,
  ) {
    this.ops = hw.pes.map((pe) => new PeCpuOps(pe));
    this.rolloverRng = new Prng(o.seed, 0x5fff_0000);
    if (o.rolloverPerS > 0) this.nextRollover = this.rolloverRng.exp(1e9 / o.rolloverPerS);
    for (let i = 0; i < o.vms; i++) {
      const rng = new Prng(o.seed, 0x5000_0000 + i);
      const ctx = ctxs.add(CtxKind.VM_S2, -1, `synthetic kvm vm${i}`);
      let vmid = o.vmidBase + i;
      if (o.vmidLimit > 0) vmid = o.vmidBase + (i % Math.max(1, o.vmidLimit - o.vmidBase));
      this.vms.push({
        index: i, vmid, ctx, cpu: i % hw.pes.length, rng,
        nextUnmap: o.unmapPerMs > 0 ? rng.exp(1e6 / o.unmapPerMs) : Infinity,
        nextFlush: o.flushPerMs > 0 ? rng.exp(1e6 / o.flushPerMs) : Infinity,
      });
    }
  }

  /** Issue every operation due at or before `ns`, in time order. */
  advanceTo(ns: number): void {
    for (;;) {
      let best: KvmVm | null = null;
      let bestT = Infinity;
      let flush = false;
      for (const vm of this.vms) {
        if (vm.nextUnmap < bestT) { bestT = vm.nextUnmap; best = vm; flush = false; }
        if (vm.nextFlush < bestT) { bestT = vm.nextFlush; best = vm; flush = true; }
      }
      if (this.nextRollover <= bestT && this.nextRollover <= ns) {
        this.rollover();
        this.nextRollover += this.rolloverRng.exp(1e9 / this.o.rolloverPerS);
        continue;
      }
      if (best === null || bestT > ns) return;
      if (flush) {
        this.flushVm(best);
        best.nextFlush += best.rng.exp(1e6 / this.o.flushPerMs);
      } else {
        this.unmap(best);
        best.nextUnmap += best.rng.exp(1e6 / this.o.unmapPerMs);
      }
    }
  }

  private vmidOf(vm: KvmVm): number {
    const v = this.vmidFor?.(vm.index);
    return v === null || v === undefined ? vm.vmid : v;
  }

  private begin(vm: KvmVm, source: number, vmid: number): void {
    this.metrics.begin(source);
    this.metrics.intend(vm.ctx);
    if (this.intendFor !== null) for (const c of this.intendFor(vmid)) this.metrics.intend(c);
  }

  private unmap(vm: KvmVm): void {
    const vmid = this.vmidOf(vm);
    const pe = this.hw.pes[vm.cpu];
    const ipaPage = GUEST_IPA_BASE + vm.rng.int(this.o.vmPages);
    this.unmaps++;
    this.begin(vm, Source.KVM_PAGE, vmid);
    kvmTlbFlushVmidIpa(this.ops[vm.cpu], pe, vmid, ipaPage * 4096, 3);
    this.metrics.end();
  }

  private flushVm(vm: KvmVm): void {
    const vmid = this.vmidOf(vm);
    this.vmFlushes++;
    this.begin(vm, Source.KVM_VM, vmid);
    kvmFlushRemoteTlbs(this.ops[vm.cpu], this.hw.pes[vm.cpu], vmid);
    this.metrics.end();
  }

  /** VMID rollover from CPU 0: ALLE1IS hits every VM's and every NS-EL1 SMMU entry. */
  private rollover(): void {
    this.rollovers++;
    this.metrics.beginKvmAll(Source.KVM_ROLLOVER);
    kvmFlushVmContext(this.ops[0]);
    this.metrics.end();
  }

  vmids(): number[] { return this.vms.map((v) => this.vmidOf(v)); }
}

// ---------------------------------------------------------------------------------------------
// Differences

export interface MetricDelta {
  metric: string;
  base: number;
  whatIf: number;
  delta: number;
  /** delta / base, null when base is 0. */
  ratio: number | null;
}

/** Numeric leaves of a metrics object, as dotted paths (arrays summed). */
export function flattenMetrics(o: unknown, prefix = '', out = new Map<string, number>()): Map<string, number> {
  if (typeof o === 'number') { out.set(prefix, o); return out; }
  if (Array.isArray(o)) {
    let s = 0;
    for (const x of o) if (typeof x === 'number') s += x;
    out.set(prefix, s);
    return out;
  }
  if (typeof o === 'object' && o !== null) {
    for (const [k, v] of Object.entries(o)) flattenMetrics(v, prefix === '' ? k : `${prefix}.${k}`, out);
  }
  return out;
}

/** Every metric that differs (or all with `all`), in the order of `base` then new ones. */
export function diffMetrics(base: unknown, whatIf: unknown, all = false): MetricDelta[] {
  const a = flattenMetrics(base), b = flattenMetrics(whatIf);
  const keys = [...a.keys(), ...[...b.keys()].filter((k) => !a.has(k))];
  const out: MetricDelta[] = [];
  for (const k of keys) {
    const x = a.get(k) ?? 0, y = b.get(k) ?? 0;
    if (!all && x === y) continue;
    const d = y - x;
    out.push({ metric: k, base: x, whatIf: y, delta: round6(d), ratio: x !== 0 ? round6(d / x) : null });
  }
  return out;
}

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;
