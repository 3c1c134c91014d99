/**
 * Translation contexts: the unit an invalidation intends and a TLB entry is filled for
 * (DESIGN.md §5). Kept in growable typed arrays indexed by ctx id.
 */
export const CtxKind = {
  /** A host process (mm); its table is shared with SVA devices. */
  MM: 1,
  /** A VM's stage 2 as KVM owns it; CPU guest entries are filled with this ctx too. */
  VM_S2: 2,
  /** An SMMU stage-2 domain with its own table (VFIO / iommufd S2 domain). */
  SMMU_S2: 3,
  /** An SMMU stage-1 DMA domain (private ASID). */
  SMMU_S1: 4,
  /** A guest's stage-1 I/O page table under nesting (the S1 half of nested entries). */
  NESTED_S1: 5,
} as const;

export const CTX_KIND_NAMES: Record<number, string> = {
  1: 'mm', 2: 'vm-s2', 3: 'smmu-s2', 4: 'smmu-s1', 5: 'nested-s1',
};

export class ContextRegistry {
  kind = new Uint8Array(256);
  /** Owning VM index, or -1. */
  vm = new Int32Array(256).fill(-1);
  names: string[] = [];
  count = 0;

  constructor() {
    // kind and vm are replaced when the registry grows: stored twice here so V8 never treats
    // them as constant fields (growing mid-run would deoptimise every function that read them).
    this.kind = new Uint8Array(256);
    this.vm = new Int32Array(256).fill(-1);
  }

  add(kind: number, vm: number, name: string): number {
    if (this.count === this.kind.length) {
      const k = new Uint8Array(this.count * 2); k.set(this.kind); this.kind = k;
      const v = new Int32Array(this.count * 2).fill(-1); v.set(this.vm); this.vm = v;
    }
    const id = this.count++;
    this.kind[id] = kind;
    this.vm[id] = vm;
    this.names.push(name);
    return id;
  }
}
