/**
 * Identifier allocation of the SMMUv3 driver (drivers/iommu/arm/arm-smmu-v3/):
 *
 *  - `arm_smmu_asid_xa`: ONE XArray (DEFINE_XARRAY_ALLOC1) shared by every SMMU instance, holding
 *    the owner of each ASID (a private stage-1 domain, an SVA domain, or — v5.10..v6.10 — a shared
 *    SVA context descriptor). `xa_alloc(xa, &id, entry, XA_LIMIT(1, 2^asid_bits - 1))` returns the
 *    lowest free index in the limit; `xa_insert` claims a given index (-EBUSY if taken).
 *  - `smmu->vmid_map`: a per-SMMU IDA; `ida_alloc_range(&vmid_map, 1, 2^vmid_bits - 1)` returns the
 *    lowest free id; VMID 0 is reserved for stage-2 bypass / stage-1-only STEs.
 *
 * Both are bitmaps over the whole 16-bit space (2 KiB each) with a lowest-free scan, so allocation
 * is O(words) and allocates nothing. Errors are the kernel's errno values, raised as DriverError.
 *
 * No Node or DOM imports.
 */

/** errno values the driver returns (include/uapi/asm-generic/errno-base.h). */
export const Errno = {
  ENOENT: 2,
  ESRCH: 3,
  ENXIO: 6,
  ENOMEM: 12,
  EBUSY: 16,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  E2BIG: 7,
  EOPNOTSUPP: 95,
} as const;
export type ErrnoName = keyof typeof Errno;

/**
 * A driver call failed the way the kernel function would (`return -ENOSPC` …). `code` is the
 * errno name, `errno` its positive value. Policies catch it and count allocation failures.
 */
export class DriverError extends Error {
  readonly errno: number;
  constructor(readonly code: ErrnoName, message: string) {
    super(`${code}: ${message}`);
    this.name = 'DriverError';
    this.errno = Errno[code];
  }
}

/** True if `e` is a DriverError with the given code (or any code when omitted). */
export function isDriverError(e: unknown, code?: ErrnoName): e is DriverError {
  return e instanceof DriverError && (code === undefined || e.code === code);
}

// ---------------------------------------------------------------------------------------------
// Bitmap with lowest-free search (the part of xa_alloc / ida_alloc_range that matters here).

const ID_SPACE = 1 << 16;

export class IdBitmap {
  private readonly words: Uint32Array;
  private count = 0;

  constructor(readonly size: number = ID_SPACE) {
    this.words = new Uint32Array((size + 31) >>> 5);
  }

  get used(): number { return this.count; }

  test(id: number): boolean {
    return id >= 0 && id < this.size && (this.words[id >>> 5] & (1 << (id & 31))) !== 0;
  }

  /** Lowest clear id in [min, max], or -1. */
  findFree(min: number, max: number): number {
    const hi = Math.min(max, this.size - 1);
    if (min > hi) return -1;
    let w = min >>> 5;
    let inv = ~this.words[w] & (-1 << (min & 31));
    const lastWord = hi >>> 5;
    for (;;) {
      if (inv !== 0) {
        const id = (w << 5) + (31 - Math.clz32(inv & -inv));
        return id <= hi ? id : -1;
      }
      if (++w > lastWord) return -1;
      inv = ~this.words[w];
    }
  }

  set(id: number): void {
    const m = 1 << (id & 31);
    if ((this.words[id >>> 5] & m) === 0) { this.words[id >>> 5] |= m; this.count++; }
  }

  clear(id: number): void {
    const m = 1 << (id & 31);
    if ((this.words[id >>> 5] & m) !== 0) { this.words[id >>> 5] &= ~m; this.count--; }
  }
}

// ---------------------------------------------------------------------------------------------
// arm_smmu_asid_xa

/**
 * `arm_smmu_asid_xa` with its mutex `arm_smmu_asid_lock` (the model is single-threaded, so the
 * lock is implicit). One instance per simulated system, shared by all its SMMU devices: create it
 * through ArmSmmuDriver, which every ArmSmmuDevice of the system references.
 */
export class AsidXArray<T> {
  private readonly bits = new IdBitmap(ID_SPACE);
  private readonly entries = new Map<number, T>();

  /** Number of ASIDs in use. */
  get size(): number { return this.entries.size; }

  /** `xa_load` */
  load(asid: number): T | undefined { return this.entries.get(asid); }

  /**
   * `xa_alloc(xa, &id, entry, XA_LIMIT(1, 2^bits - 1))`: lowest free index. Returns -1 where the
   * kernel returns -EBUSY/-ENOSPC (no free index in the limit).
   */
  alloc(entry: T, asidBits: number): number {
    const id = this.bits.findFree(1, (1 << asidBits) - 1);
    if (id < 0) return -1;
    this.bits.set(id);
    this.entries.set(id, entry);
    return id;
  }

  /** `xa_insert`: false if the index is already used (-EBUSY). */
  insert(asid: number, entry: T): boolean {
    if (this.bits.test(asid)) return false;
    this.bits.set(asid);
    this.entries.set(asid, entry);
    return true;
  }

  /** `xa_erase`: returns the entry that was there. */
  erase(asid: number): T | undefined {
    const e = this.entries.get(asid);
    if (e !== undefined) { this.entries.delete(asid); this.bits.clear(asid); }
    return e;
  }

  entriesSnapshot(): Array<[number, T]> { return [...this.entries.entries()].sort((a, b) => a[0] - b[0]); }
}

// ---------------------------------------------------------------------------------------------
// smmu->vmid_map and the pluggable VMID source

/** `ida_alloc_range` / `ida_free` over one SMMU's VMID space. */
export class VmidIda {
  private readonly bits = new IdBitmap(ID_SPACE);

  get used(): number { return this.bits.used; }
  isAllocated(vmid: number): boolean { return this.bits.test(vmid); }

  /** Lowest free id in [min, max], or -1 (-ENOSPC). */
  allocRange(min: number, max: number): number {
    const id = this.bits.findFree(min, max);
    if (id >= 0) this.bits.set(id);
    return id;
  }

  free(vmid: number): void { this.bits.clear(vmid); }
}

/** What a VMID provider is told about the request (everything optional but `device`). */
export interface VmidAllocContext<D = unknown, S = unknown> {
  /** The ArmSmmuDevice allocating (the domain's SMMU). */
  device: S;
  /** The VM the stage-2 domain belongs to, when the caller knows it (VFIO/iommufd assignment). */
  vmId?: number;
  /** The domain is an iommufd nesting parent. */
  nestParent: boolean;
  /**
   * Ask for exactly this VMID (used to give a VM the same VMID on several SMMUs, vmidScope 'vm').
   * A provider that cannot honour it returns -1.
   */
  want?: number;
  /** The domain being finalised. */
  domain: D;
}

/**
 * Where a stage-2 domain's VMID comes from. The default is the per-SMMU IDA in
 * [1, 2^vmid_bits − 1] (`arm_smmu_domain_finalise_s2`). A policy can restrict the IDA range
 * (`btm-split`), or hand out the VM's pinned KVM VMID (`btm-kvm-pinned`). `alloc` returns the
 * VMID or -1 (the driver then fails with -ENOSPC and counts it).
 */
export interface VmidProvider<D = unknown, S = unknown> {
  alloc(domain: D, ctx: VmidAllocContext<D, S>): number;
  free(domain: D, vmid: number): void;
}

/**
 * The mainline VMID source: `ida_alloc_range(&smmu->vmid_map, min, max)` (min = 1: VMID 0 reserved
 * for stage-2 bypass STEs), lowest free first; `ida_free` with the domain. `range` restricts it
 * (e.g. [split, 2^bits − 1] for a reserved SMMU range); it is clamped to [1, 2^vmidBits − 1].
 */
export class IdaVmidProvider<D = unknown, S = unknown> implements VmidProvider<D, S> {
  constructor(readonly ida: VmidIda, readonly vmidBits: number, readonly range?: readonly [number, number]) {}

  get min(): number { return Math.max(1, this.range?.[0] ?? 1); }
  get max(): number { return Math.min((1 << this.vmidBits) - 1, this.range?.[1] ?? Infinity); }

  alloc(_domain: D, ctx: VmidAllocContext<D, S>): number {
    if (ctx.want !== undefined) {
      if (ctx.want < this.min || ctx.want > this.max) return -1;
      return this.ida.allocRange(ctx.want, ctx.want);
    }
    return this.ida.allocRange(this.min, this.max);
  }

  free(_domain: D, vmid: number): void {
    if (vmid !== 0) this.ida.free(vmid);
  }
}
