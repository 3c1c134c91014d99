/**
 * Fault-injection points of the hardware and kernel models (the oracle's "proof it can fail",
 * DESIGN.md §6; the faults themselves, as data, are in src/oracle/faults.ts).
 *
 * A model object that hosts a hook holds `faults: FaultHooks | null` (null in normal runs, so a
 * hook costs one null check). At the point where the real bug changes behaviour the model tests
 * `faults.on[FaultHook.X]` and, when it acts, counts one activation — so a run can tell "the
 * fault never had a chance to matter here" from "the fault acted and the oracle saw (or did not
 * see) a violation". Each hook site documents the real bug it models.
 */
export const FaultHook = {
  /** Smmu.receiveBroadcast: the SMMU ignores broadcasts (MMU-700 erratum 2812531). Uses Smmu.dropBroadcasts. */
  DROP_DVM: 0,
  /** Smmu.writeReg(CMDQ_PROD): commands consumed later; the driver returns before CMD_SYNC completes. */
  SKIP_SYNC: 1,
  /** domain.ts freeDomain: an S2 domain's VMID released without CMD_TLBI_S12_VMALL. */
  VMID_REUSE_NO_INVAL: 2,
  /** Smmu.resolve / cmdexec / receiveBroadcast: 16-bit VMIDs honoured as 8 bits (FreeBSD D55860). */
  VMID_TRUNCATE_8: 3,
  /** cmdexec addressRange: a range TLBI command invalidates its first page only (Qualcomm SMMU-500). */
  RANGE_FIRST_PAGE_ONLY: 4,
  /** SmmuSide CPU-ASID pinner: the shared SVA ASID is taken without arm64_mm_context_get's pin. */
  SVA_ASID_UNPINNED: 5,
  /** domain.ts makeCdTableSte: STRW=EL1 on a VHE host (broadcasts and EL2 commands miss). */
  VHE_STRW_EL1: 6,
  /** invalidate.ts atcInvDomain / atcInvMaster: CMD_ATC_INV never issued. */
  NO_ATC_INV: 7,
  /** Pe.tlbi: Inner Shareable TLBIs executed as local ones (Zephyr #98344). */
  TLBI_NON_SHAREABLE: 8,
  /** SmmuSide.guestSeesBtm: the vSMMU advertises BTM to a nested guest whose SMMU VMID is not its KVM VMID. */
  VSMMU_BTM_UNPINNED: 9,
} as const;
export type FaultHookId = (typeof FaultHook)[keyof typeof FaultHook];
export const N_FAULT_HOOKS = 10;

export class FaultHooks {
  /** 1 = the fault is injected. */
  readonly on = new Uint8Array(N_FAULT_HOOKS);
  /** Times each injected fault changed the model's behaviour. */
  readonly activations = new Float64Array(N_FAULT_HOOKS);

  /** Is `hook` injected? (No counting.) */
  has(hook: number): boolean {
    return this.on[hook] === 1;
  }

  /** If `hook` is injected, count one activation and return true. Call where the fault acts. */
  fire(hook: number): boolean {
    if (this.on[hook] === 0) return false;
    this.activations[hook]++;
    return true;
  }
}
