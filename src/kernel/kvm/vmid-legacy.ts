/**
 * The pre-5.18 KVM/arm VMID scheme: `update_vmid()` / `need_new_vmid_gen()` of
 * `virt/kvm/arm/arm.c` (v4.x–v5.8) and `arch/arm64/kvm/arm.c` (v5.9–v5.17); `update_vttbr()` in
 * 3.x/4.x with the same logic. Globals: `kvm_vmid_gen` (atomic64, initialised to 1) and
 * `kvm_next_vmid` (u32, initialised to 0; u8 before 16-bit VMID support in v4.6, 20475f784d29,
 * which wrapped the same way). Per VM (`struct kvm_vmid`): `vmid_gen` (0 at creation) and `vmid`.
 *
 *   update_vmid(v):
 *     if v.vmid_gen == kvm_vmid_gen: return                  (fast: no lock)
 *     lock; re-check
 *     if kvm_next_vmid == 0:                                  (first user of a new generation —
 *        kvm_vmid_gen++; kvm_next_vmid = 1                      also true at the very first call)
 *        force_vm_exit(cpu_all_mask); __kvm_flush_vm_context()  (IPI all CPUs; TLBI ALLE1IS)
 *     v.vmid = kvm_next_vmid; kvm_next_vmid = (kvm_next_vmid + 1) & (2^bits - 1)
 *     v.vmid_gen = kvm_vmid_gen; unlock
 *
 * Linear allocation 1..2^bits-1, no reuse within a generation, and a rollover makes every VM
 * reallocate at its next entry. The run loop's re-check of need_new_vmid_gen after entering
 * guest mode is a concurrency detail not modelled (single-threaded).
 */
import type { KvmVmidAllocatorLike, KvmVmidUpdateResult } from './vmid.js';
import { growTo } from '../mm/asid.js';

export interface KvmLegacyVmidOptions {
  /** kvm_get_vmid_bits(): 8 or 16 on real CPUs; 2..16 accepted. */
  bits: number;
  /** Number of CPUs (force_vm_exit targets all of them). */
  cpus: number;
  /**
   * NOT kernel: allocate from [1, limit) and wrap to 0 at `limit` (a policy reserving
   * [limit, 2^bits) for the SMMU). Default 2^bits.
   */
  limit?: number;
  hooks?: KvmLegacyVmidHooks;
}

export interface KvmLegacyVmidHooks {
  /** A new generation started: force_vm_exit(all CPUs) then __kvm_flush_vm_context (ALLE1IS). */
  onVmFlush?: (gen: number) => void;
}

export interface KvmLegacyVmidStateSnapshot {
  /** kvm_vmid_gen */
  gen: number;
  /** kvm_next_vmid */
  next: number;
}

const MAX_OBJECT_ID = 1 << 26;

export class KvmLegacyVmidAllocator implements KvmVmidAllocatorLike {
  readonly bits: number;
  readonly cpus: number;
  readonly limit: number;
  /** kvm_vmid_gen */
  kvmVmidGen = 1;
  /** kvm_next_vmid */
  kvmNextVmid = 0;

  private vmGen: Float64Array;
  private vmVmid: Int32Array;

  rollovers = 0;
  hooks: KvmLegacyVmidHooks;

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

  constructor(opts: KvmLegacyVmidOptions) {
    const { bits, cpus } = opts;
    if (!Number.isInteger(bits) || bits < 2 || bits > 16) {
      throw new RangeError(`VMID bits must be an integer in [2, 16], got ${bits}`);
    }
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 4096) {
      throw new RangeError(`cpus must be an integer in [1, 4096], got ${cpus}`);
    }
    const limit = opts.limit ?? 2 ** bits;
    if (!Number.isInteger(limit) || limit < 2 || limit > 2 ** bits) {
      throw new RangeError(`VMID limit must be an integer in [2, 2^bits], got ${limit}`);
    }
    this.bits = bits;
    this.cpus = cpus;
    this.limit = limit;
    this.hooks = opts.hooks ?? {};
    this.vmGen = new Float64Array(64);
    this.vmVmid = new Int32Array(64);
  }

  private ensureVm(vm: number): void {
    if ((vm >>> 0) !== vm || vm >= MAX_OBJECT_ID) throw new RangeError(`bad VM id ${vm}`);
    this.vmGen = growTo(this.vmGen, vm + 1);
    this.vmVmid = growTo(this.vmVmid, vm + 1);
  }

  /** need_new_vmid_gen(&vm->vmid) */
  needNewVmidGen(vm: number): boolean {
    return this.vmidGenOf(vm) !== this.kvmVmidGen;
  }

  /** The VM's vmid_gen (0 = never allocated). */
  vmidGenOf(vm: number): number {
    return vm < this.vmGen.length ? this.vmGen[vm] : 0;
  }

  hwVmid(vm: number): number {
    return vm < this.vmVmid.length ? this.vmVmid[vm] : 0;
  }

  /** VM creation: vmid_gen = 0 (so the first entry allocates). */
  initVm(vm: number): void {
    if ((vm >>> 0) !== vm || vm >= this.vmGen.length) this.ensureVm(vm);
    this.vmGen[vm] = 0;
    this.vmVmid[vm] = 0;
  }

  /**
   * update_vmid(&vm->vmid), called on guest entry on `cpu` (the CPU only matters to the caller:
   * a rollover IPIs every CPU). Returns the reused result object; `vmid` = hw VMID, `gen` = the
   * VM's vmid_gen.
   */
  updateVmid(cpu: number, vm: number): KvmVmidUpdateResult {
    if ((cpu >>> 0) !== cpu || cpu >= this.cpus) throw new RangeError(`bad CPU ${cpu}`);
    if ((vm >>> 0) !== vm || vm >= this.vmGen.length) this.ensureVm(vm);
    const r = this.result;
    if (this.vmGen[vm] === this.kvmVmidGen) {
      const v = this.vmVmid[vm];
      r.vmid = v;
      r.hw = v;
      r.gen = this.kvmVmidGen;
      r.path = 'fast';
      r.changed = false;
      r.rollover = false;
      r.vmFlush = false;
      r.exitAllCpus = false;
      return r;
    }

    let rollover = false;
    if (this.kvmNextVmid === 0) {
      // First user of a new VMID generation.
      this.kvmVmidGen++;
      this.kvmNextVmid = 1;
      rollover = true;
      this.rollovers++;
      this.hooks.onVmFlush?.(this.kvmVmidGen);
    }
    const v = this.kvmNextVmid;
    this.vmVmid[vm] = v;
    this.kvmNextVmid = v + 1 === this.limit ? 0 : (v + 1) & (2 ** this.bits - 1);
    this.vmGen[vm] = this.kvmVmidGen;

    r.vmid = v;
    r.hw = v;
    r.gen = this.kvmVmidGen;
    r.path = 'slow';
    r.changed = true; // a new (vmid_gen, vmid) pair; the hw value may coincide with the old one
    r.rollover = rollover;
    r.vmFlush = rollover;
    r.exitAllCpus = rollover;
    return r;
  }

  /** KvmVmidAllocatorLike: same as updateVmid. */
  kvmArmVmidUpdate(cpu: number, vm: number): KvmVmidUpdateResult {
    return this.updateVmid(cpu, vm);
  }

  /** The legacy scheme has no per-CPU state: vCPU put does nothing. */
  kvmArmVmidClearActive(cpu: number): void {
    if ((cpu >>> 0) !== cpu || cpu >= this.cpus) throw new RangeError(`bad CPU ${cpu}`);
  }

  snapshot(): KvmLegacyVmidStateSnapshot {
    return { gen: this.kvmVmidGen, next: this.kvmNextVmid };
  }
}
