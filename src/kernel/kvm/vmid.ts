/**
 * The KVM/arm64 VMID allocator, `arch/arm64/kvm/vmid.c` (v5.18+, Shameer Kolothum, commits
 * 417838392f2e/f8051e960922/3248136b3637/100b4f092f87; logic unchanged through v6.17). Same
 * generation/bitmap algorithm as the CPU ASID allocator (src/kernel/mm/asid.ts) with:
 *   - generation step VMID_FIRST_VERSION = 2^bits (NOT 2^16: only the ASID step was changed);
 *   - `kvm_arm_vmid_clear_active()` on vCPU put writes VMID_ACTIVE_INVALID (= 2^bits, "VMID 0 of
 *     generation 1") so descheduled VMs are not reserved at rollover;
 *   - rollover broadcasts `__kvm_flush_vm_context` (TLBI ALLE1IS) from flush_context() instead of
 *     queueing per-CPU local flushes — reported as `vmFlush` / hooks.onVmFlush.
 *
 * Optional extension (off by default, so mainline behaviour is unchanged): the pinned-VMID API of
 * the never-merged RFC ("KVM: arm64: Introduce support to pin VMIDs", Shameer Kolothum; text read
 * in hisilicon/kernel-dev@057f86dc and Linaro/linux-kernel-uadk@c9d3eacc arch/arm64/kvm/vmid.c):
 * `pinned_vmid_map` copied into `vmid_map` at rollover, `kvm_arm_pinned_vmid_get/put`,
 * `max_pinned_vmids = NUM_USER_VMIDS - num_possible_cpus() - 2`. See docs/allocators.md.
 *
 * Numbers: VMIDs (`generation | idx`) are JS numbers, exact while generation < 2^(53-bits).
 */
import {
  REFCOUNT_SATURATED,
  bitmapToString,
  bitmapWords,
  clearBit,
  findNextZeroBit,
  setBit,
  testAndSetBit,
  ulongLimit,
  growTo,
} from '../mm/asid.js';

export interface KvmVmidOptions {
  /** kvm_arm_vmid_bits: 8 or 16 on real CPUs; 2..16 accepted. */
  bits: number;
  /** num_possible_cpus() */
  cpus: number;
  /** Pinned-VMID RFC extension (pinned_vmid_map allocated). Default false = mainline. */
  pinning?: boolean;
  /**
   * The RFC's new_vmid() returns the refreshed VMID of a pinned VM without writing it back to
   * kvm_vmid->id (the other branches do write it), so such a VM keeps a stale-generation id and
   * takes the slow path at every load until it is unpinned. true = write it back (what the code
   * evidently intends). Default false = the RFC text as read. Only matters with `pinning`.
   */
  pinnedWriteback?: boolean;
  /**
   * NOT kernel: NUM_USER_VMIDS override — VMIDs are allocated from [1, limit) (a policy that
   * reserves [limit, 2^bits) for the SMMU). The generation step stays 2^bits. Default 2^bits.
   */
  limit?: number;
  hooks?: KvmVmidHooks;
}

export interface KvmVmidHooks {
  /** flush_context() ran and issued __kvm_flush_vm_context (TLBI ALLE1IS broadcast). */
  onVmFlush?: (gen: number) => void;
}

/** Result of a VMID update; one object per allocator, overwritten by every call. */
export interface KvmVmidUpdateResult {
  /** VM's VMID after the call (v5.18+: vmid.id = gen<<bits | hw; legacy: the hw VMID). */
  vmid: number;
  /** VMID programmed into VTTBR_EL2.VMID. */
  hw: number;
  /** Generation number of the VM's VMID. */
  gen: number;
  /** 'fast' = returned before taking the VMID lock. */
  path: 'fast' | 'slow';
  /** The VM's VMID (generation or value) changed. */
  changed: boolean;
  /** The global generation changed during the call. */
  rollover: boolean;
  /** __kvm_flush_vm_context (TLBI ALLE1IS + DSB ISH, broadcast) was issued during the call. */
  vmFlush: boolean;
  /** force_vm_exit(cpu_all_mask): IPI kicking every CPU out of the guest (legacy scheme only). */
  exitAllCpus: boolean;
}

/** What both KVM VMID allocators offer, so a policy can choose 'legacy' | 'v5.18'. */
export interface KvmVmidAllocatorLike {
  readonly bits: number;
  readonly cpus: number;
  /** vCPU load on `cpu` of a vCPU of VM `vm` (v5.18+: kvm_arm_vmid_update; legacy: update_vmid). */
  kvmArmVmidUpdate(cpu: number, vm: number): KvmVmidUpdateResult;
  /** vCPU put on `cpu` (v5.18+: kvm_arm_vmid_clear_active; legacy: nothing). */
  kvmArmVmidClearActive(cpu: number): void;
  /** Hardware VMID of `vm` as currently recorded (0 = never allocated). */
  hwVmid(vm: number): number;
  readonly rollovers: number;
}

export interface KvmVmidPinResult {
  /** Returned VMID (hw bits), 0 on failure or when pinning is disabled. */
  ret: number;
  vmid: number;
  refcount: number;
  changed: boolean;
  rollover: boolean;
}

/** Vector-format `state` (FORMAT.md); nr_pinned / pinned_map only with the pinning extension. */
export interface KvmVmidStateSnapshot {
  gen: number;
  active: string[];
  reserved: string[];
  map?: string;
  nr_pinned?: number;
  pinned_map?: string;
}

const MAX_OBJECT_ID = 1 << 26;

export class KvmVmidAllocator implements KvmVmidAllocatorLike {
  readonly bits: number;
  readonly cpus: number;
  /** VMID_FIRST_VERSION = 2^bits (also VMID_ACTIVE_INVALID). */
  readonly vmidFirstVersion: number;
  readonly vmidActiveInvalid: number;
  /** NUM_USER_VMIDS (2^bits unless `limit`). */
  readonly numUserVmids: number;
  /** ~VMID_MASK */
  readonly vmidLowMask: number;
  readonly pinnedWriteback: boolean;

  /** vmid_generation */
  vmidGeneration = 0;
  readonly vmidMap: Uint32Array;
  readonly pinnedVmidMap: Uint32Array | null;
  readonly activeVmids: Float64Array;
  readonly reservedVmids: Float64Array;
  /** static cur_idx of new_vmid() */
  curIdx = 1;
  nrPinnedVmids = 0;
  maxPinnedVmids = 0;
  /** kvm_arm_vmid_alloc_init() return value (0; -ENOMEM cannot happen here). */
  readonly initRet = 0;

  private vmId: Float64Array;
  private vmPinned: Int32Array;

  rollovers = 0;
  readonly warnings: string[] = [];
  hooks: KvmVmidHooks;

  readonly result: KvmVmidUpdateResult = {
    vmid: 0,
    hw: 0,
    gen: 0,
    path: 'slow',
    changed: false,
    rollover: false,
    vmFlush: false,
    exitAllCpus: false,
  };
  readonly pinResult: KvmVmidPinResult = { ret: 0, vmid: 0, refcount: 0, changed: false, rollover: false };

  private rolledOver = false;

  constructor(opts: KvmVmidOptions) {
    const { bits, cpus } = opts;
    if (!Number.isInteger(bits) || bits < 2 || bits > 16) {
      throw new RangeError(`VMID bits must be an integer in [2, 16], got ${bits}`);
    }
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 4096) {
      throw new RangeError(`cpus must be an integer in [1, 4096], got ${cpus}`);
    }
    this.bits = bits;
    this.cpus = cpus;
    this.vmidFirstVersion = 2 ** bits;
    this.vmidActiveInvalid = this.vmidFirstVersion;
    this.vmidLowMask = this.vmidFirstVersion - 1;
    const limit = opts.limit ?? this.vmidFirstVersion;
    if (!Number.isInteger(limit) || limit < 2 || limit > this.vmidFirstVersion) {
      throw new RangeError(`VMID limit must be an integer in [2, 2^bits], got ${limit}`);
    }
    this.numUserVmids = limit;
    this.pinnedWriteback = opts.pinnedWriteback ?? false;
    this.hooks = opts.hooks ?? {};

    // Bitmaps cover the whole 2^bits space: flush_context sets the bit of whatever a CPU holds.
    const words = bitmapWords(this.vmidFirstVersion);
    this.vmidMap = new Uint32Array(words);
    this.pinnedVmidMap = opts.pinning ? new Uint32Array(words) : null;
    this.activeVmids = new Float64Array(cpus);
    this.reservedVmids = new Float64Array(cpus);
    this.vmId = new Float64Array(64);
    this.vmPinned = new Int32Array(64);

    this.kvmArmVmidAllocInit();
  }

  /** kvm_arm_vmid_alloc_init() */
  private kvmArmVmidAllocInit(): void {
    if (this.numUserVmids - 1 <= this.cpus) {
      this.warnings.push('WARN_ON(NUM_USER_VMIDS - 1 <= num_possible_cpus())');
    }
    this.vmidGeneration = this.vmidFirstVersion;
    this.vmidMap.fill(0);
    if (this.pinnedVmidMap) {
      this.pinnedVmidMap.fill(0);
      this.nrPinnedVmids = 0;
      this.maxPinnedVmids = ulongLimit(this.numUserVmids - this.cpus - 2);
    }
  }

  /** vmid_gen_match() */
  vmidGenMatch(vmid: number): boolean {
    return vmid - (vmid & this.vmidLowMask) === this.vmidGeneration;
  }

  get generation(): number {
    return this.vmidGeneration / this.vmidFirstVersion;
  }

  private checkCpu(cpu: number): void {
    if ((cpu >>> 0) !== cpu || cpu >= this.cpus) throw new RangeError(`bad CPU ${cpu}`);
  }

  private ensureVm(vm: number): void {
    if ((vm >>> 0) !== vm || vm >= MAX_OBJECT_ID) throw new RangeError(`bad VM id ${vm}`);
    this.vmId = growTo(this.vmId, vm + 1);
    this.vmPinned = growTo(this.vmPinned, vm + 1);
  }

  /** kvm_vmid.id of `vm` (0 = never allocated). */
  vmidOf(vm: number): number {
    return vm < this.vmId.length ? this.vmId[vm] : 0;
  }

  hwVmid(vm: number): number {
    return this.vmidOf(vm) & this.vmidLowMask;
  }

  pinnedRefcount(vm: number): number {
    return vm < this.vmPinned.length ? this.vmPinned[vm] : 0;
  }

  /** VM creation (kvm_init_stage2_mmu: vmid.id = 0). Use when a simulated VM id is recycled. */
  initVm(vm: number): void {
    if ((vm >>> 0) !== vm || vm >= this.vmId.length) this.ensureVm(vm);
    this.vmId[vm] = 0;
    this.vmPinned[vm] = 0;
  }

  /** flush_context(): lock held, generation already bumped. */
  private flushContext(): void {
    if (this.pinnedVmidMap) this.vmidMap.set(this.pinnedVmidMap);
    else this.vmidMap.fill(0);
    const active = this.activeVmids;
    const reserved = this.reservedVmids;
    for (let cpu = 0; cpu < this.cpus; cpu++) {
      let vmid = active[cpu];
      active[cpu] = 0;
      // Preserve reserved VMID
      if (vmid === 0) vmid = reserved[cpu];
      setBit(this.vmidMap, vmid & this.vmidLowMask);
      reserved[cpu] = vmid;
    }
    // kvm_call_hyp(__kvm_flush_vm_context): broadcast TLB (+ I-cache) invalidation.
    this.rollovers++;
    this.rolledOver = true;
    this.hooks.onVmFlush?.(this.generation);
  }

  /** check_update_reserved_vmid() */
  private checkUpdateReservedVmid(vmid: number, newvmid: number): boolean {
    const reserved = this.reservedVmids;
    let hit = false;
    for (let cpu = 0; cpu < this.cpus; cpu++) {
      if (reserved[cpu] === vmid) {
        hit = true;
        reserved[cpu] = newvmid;
      }
    }
    return hit;
  }

  /** new_vmid(kvm_vmid): lock held; writes kvm_vmid->id itself (except the RFC's pinned branch). */
  private newVmid(vm: number): number {
    let vmid = this.vmId[vm];
    let generation = this.vmidGeneration;

    if (vmid !== 0) {
      const idx = vmid & this.vmidLowMask;
      const newvmid = generation + idx;
      if (this.checkUpdateReservedVmid(vmid, newvmid)) {
        this.vmId[vm] = newvmid;
        return newvmid;
      }
      // RFC: pinned → keep it (its bit came from pinned_vmid_map). Reserved takes priority.
      if (this.vmPinned[vm] !== 0) {
        if (this.pinnedWriteback) this.vmId[vm] = newvmid;
        return newvmid;
      }
      if (!testAndSetBit(this.vmidMap, idx)) {
        this.vmId[vm] = newvmid;
        return newvmid;
      }
    }

    vmid = findNextZeroBit(this.vmidMap, this.numUserVmids, this.curIdx);
    if (vmid === this.numUserVmids) {
      // Out of VMIDs: increment the global generation count and roll over.
      generation = this.vmidGeneration += this.vmidFirstVersion;
      this.flushContext();
      // "We have more VMIDs than CPUs, so this will always succeed"
      vmid = findNextZeroBit(this.vmidMap, this.numUserVmids, 1);
      if (vmid === this.numUserVmids) {
        throw new Error('KVM VMID allocator: no free VMID after rollover (too many CPUs for the VMID space)');
      }
    }
    setBit(this.vmidMap, vmid);
    this.curIdx = vmid;
    vmid = vmid + generation;
    this.vmId[vm] = vmid;
    return vmid;
  }

  /** kvm_arm_vmid_clear_active() on `cpu` (vCPU put): active_vmids = VMID_ACTIVE_INVALID. */
  kvmArmVmidClearActive(cpu: number): void {
    if ((cpu >>> 0) !== cpu || cpu >= this.cpus) this.checkCpu(cpu);
    this.activeVmids[cpu] = this.vmidActiveInvalid;
  }

  /** kvm_arm_vmid_update(&vm->vmid) on `cpu` (from kvm_arch_vcpu_load). Reused result. */
  kvmArmVmidUpdate(cpu: number, vm: number): KvmVmidUpdateResult {
    if ((cpu >>> 0) !== cpu || cpu >= this.cpus) this.checkCpu(cpu);
    if ((vm >>> 0) !== vm || vm >= this.vmId.length) this.ensureVm(vm);
    const r = this.result;
    const before = this.vmId[vm];
    let vmid = before;

    // Fast path: explicit "!= 0" because VMID_ACTIVE_INVALID is non-zero.
    const old = this.activeVmids[cpu];
    if (old !== 0 && vmid - (vmid & this.vmidLowMask) === this.vmidGeneration) {
      this.activeVmids[cpu] = vmid;
      r.vmid = vmid;
      r.hw = vmid & this.vmidLowMask;
      r.gen = (vmid - r.hw) / this.vmidFirstVersion;
      r.path = 'fast';
      r.changed = false;
      r.rollover = false;
      r.vmFlush = false;
      r.exitAllCpus = false;
      return r;
    }

    this.rolledOver = false;
    if (!this.vmidGenMatch(vmid)) vmid = this.newVmid(vm);
    this.activeVmids[cpu] = vmid;

    const now = this.vmId[vm];
    r.vmid = now;
    r.hw = now & this.vmidLowMask;
    r.gen = (now - r.hw) / this.vmidFirstVersion;
    r.path = 'slow';
    r.changed = now !== before;
    r.rollover = this.rolledOver;
    r.vmFlush = this.rolledOver;
    r.exitAllCpus = false;
    return r;
  }

  /**
   * kvm_arm_pinned_vmid_get(vm) (RFC): pin the VM's VMID. Returns the hw VMID, 0 on failure
   * (nr_pinned_vmids >= max_pinned_vmids) or when pinning is disabled. The 2025 variant returns
   * -EINVAL in those cases; 0 is used here (VMID 0 is never allocated). Details in `pinResult`.
   */
  pinnedVmidGet(vm: number): number {
    if ((vm >>> 0) !== vm || vm >= this.vmId.length) this.ensureVm(vm);
    const p = this.pinResult;
    const before = this.vmId[vm];
    this.rolledOver = false;
    let vmid = before;
    if (!this.pinnedVmidMap) {
      vmid = 0;
    } else {
      const refs = this.vmPinned[vm];
      if (refs !== 0) {
        if (refs < 0 || refs === 0x7fffffff) {
          this.warnings.push('refcount_t: saturated; leaking memory (kvm_vmid.pinned)');
          this.vmPinned[vm] = REFCOUNT_SATURATED;
        } else {
          this.vmPinned[vm] = refs + 1;
        }
      } else if (this.nrPinnedVmids >= this.maxPinnedVmids) {
        vmid = 0;
      } else {
        // Rolled over since that VMID was used: revalidate it or generate a new one.
        if (!this.vmidGenMatch(vmid)) vmid = this.newVmid(vm);
        this.nrPinnedVmids++;
        setBit(this.pinnedVmidMap, vmid & this.vmidLowMask);
        this.vmPinned[vm] = 1;
      }
    }
    const ret = vmid & this.vmidLowMask;
    p.ret = ret;
    p.vmid = this.vmId[vm];
    p.refcount = this.vmPinned[vm];
    p.changed = p.vmid !== before;
    p.rollover = this.rolledOver;
    return ret;
  }

  /** kvm_arm_pinned_vmid_put(vm) (RFC). Returns true when the last pin was dropped. */
  pinnedVmidPut(vm: number): boolean {
    if ((vm >>> 0) !== vm || vm >= this.vmId.length) this.ensureVm(vm);
    if (!this.pinnedVmidMap) return false;
    const vmid = this.vmId[vm];
    const refs = this.vmPinned[vm];
    if (refs <= 0) {
      this.warnings.push('refcount_t: underflow; use-after-free (kvm_vmid.pinned)');
      this.vmPinned[vm] = REFCOUNT_SATURATED;
      return false;
    }
    this.vmPinned[vm] = refs - 1;
    if (refs === 1) {
      clearBit(this.pinnedVmidMap, vmid & this.vmidLowMask);
      this.nrPinnedVmids--;
      return true;
    }
    return false;
  }

  /** The vector-format `state` object (allocates). */
  snapshot(): KvmVmidStateSnapshot {
    const s: KvmVmidStateSnapshot = {
      gen: this.generation,
      active: Array.from(this.activeVmids, (v) => String(v)),
      reserved: Array.from(this.reservedVmids, (v) => String(v)),
    };
    if (this.bits <= 6) s.map = bitmapToString(this.vmidMap, this.vmidFirstVersion);
    if (this.pinnedVmidMap) {
      s.nr_pinned = this.nrPinnedVmids;
      if (this.bits <= 6) s.pinned_map = bitmapToString(this.pinnedVmidMap, this.vmidFirstVersion);
    }
    return s;
  }
}
