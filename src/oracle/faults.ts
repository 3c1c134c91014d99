/**
 * Faults the oracle must catch (DESIGN.md §6 "fault injection proves the oracle can fail"), as
 * data: each one is a real failure of the stale-translation / aliasing class, injected through a
 * hook in the hardware or kernel model (src/hw/fault-hooks.ts; every hook site says which bug it
 * models). `needs` says what a scenario must contain for the fault to have any effect, so a run
 * that never gave the fault a chance says so instead of claiming the design is safe.
 */
import { FaultHook, FaultHooks } from '../hw/fault-hooks.js';
import type { PolicyConfig } from '../policy/policies.js';
import type { Scenario } from '../workload/schema.js';
import { Rule, type RuleId } from './rules.js';

export const FAULT_NAMES = [
  'drop-dvm', 'skip-sync', 'vmid-reuse-no-inval', 'vmid-truncate-8', 'range-first-page-only',
  'sva-asid-unpinned', 'vhe-strw-el1', 'no-atc-inv', 'tlbi-non-shareable', 'vsmmu-btm-unpinned',
] as const;
export type FaultName = (typeof FAULT_NAMES)[number];

export interface FaultDef {
  name: FaultName;
  hook: number;
  /** What goes wrong, in one line. */
  summary: string;
  /** The real failure it models, with its reference. */
  realBug: string;
  /** The rules a violation it causes breaks (first = the usual one). */
  rules: readonly RuleId[];
  /** What a scenario needs for the fault to act. */
  needs: string;
  /**
   * Static check: null when the scenario and policy can exercise the fault, else why not. Runs
   * before the simulation; a run can still give the fault no occasion (activations 0).
   */
  blocker(sc: Scenario, p: PolicyConfig): string | null;
}

const svaShared = (sc: Scenario, p: PolicyConfig): boolean =>
  (p.svaEra === 'scenario' ? sc.kernel.svaEra : p.svaEra) === 'shared';

export const FAULTS: readonly FaultDef[] = [
  {
    name: 'drop-dvm', hook: FaultHook.DROP_DVM,
    summary: 'the SMMU ignores broadcast TLBIs while the driver relies on BTM',
    realBug: 'Arm MMU-700 erratum 2812531 (the SMMU may miss broadcast TLB invalidations; Linux clears FEAT_BTM and forces CMD_SYNC for it); also gem5 issue #548, a device TLB kept a translation the kernel invalidated by DVM',
    rules: [Rule.STALE_TLB],
    needs: 'a policy that enables BTM (btm-*) on a BTM-capable SMMU, and invalidations left to broadcasts (SVA munmaps in the shared-ASID era, KVM unmaps with shared stage-2 tables)',
    blocker: (sc, p) => (!p.btm ? `policy ${p.name} keeps CR2.PTM=1 and relies on commands, not broadcasts`
      : !sc.smmu.btm ? 'smmu.btm is false (no BTM to rely on)'
        : sc.smmu.mmu700Erratum2812531 ? 'smmu.mmu700Erratum2812531: the driver applies the workaround (no BTM)' : null),
  },
  {
    name: 'skip-sync', hook: FaultHook.SKIP_SYNC,
    summary: 'the driver returns (and software frees or reuses) before its CMD_SYNC has completed',
    realBug: 'CMD_SYNC is the only completion of SMMU commands (SMMUv3 §4.7.3, arch.md §1.5); a driver path that does not wait for it (a batch submitted without sync, a timeout ignored) frees pages or reuses a VMID/StreamID while the TLBI or CFGI is still queued',
    rules: [Rule.STALE_TLB, Rule.STALE_CONFIG, Rule.VMID_ALIASING],
    needs: 'invalidation by commands (policy ptm, private-ASID SVA, stage-2 domains freed on VM churn, device reassignment)',
    blocker: () => null,
  },
  {
    name: 'vmid-reuse-no-inval', hook: FaultHook.VMID_REUSE_NO_INVAL,
    summary: 'an SMMU stage-2 VMID is released without CMD_TLBI_S12_VMALL and given to a new domain',
    realBug: 'a domain free path that returns the VMID to the IDA (ida_free) without arm_smmu_tlb_inv_context: the next domain with that VMID hits the old domain\'s entries',
    rules: [Rule.VMID_ALIASING],
    needs: 'stage-2 domains freed while others are created (VM churn: workload.churn.vmLifetimeMs, with assigned devices)',
    blocker: (sc) => (sc.workload.churn.vmLifetimeMs === undefined ? 'no VM churn (workload.churn.vmLifetimeMs): no stage-2 domain is ever freed'
      : sc.workload.devicesPerVm === 0 ? 'no assigned devices (workload.devicesPerVm: 0)' : null),
  },
  {
    name: 'vmid-truncate-8', hook: FaultHook.VMID_TRUNCATE_8,
    summary: '16-bit SMMU VMIDs honoured as 8 bits: domains 0x001 and 0x101 share TLB entries',
    realBug: 'FreeBSD review D55860: 16-bit VMIDs silently truncated to 8 bits',
    rules: [Rule.VMID_ALIASING],
    needs: 'smmu.vmidBits: 16 and more than 255 stage-2 VMIDs in use at once (e.g. 70 VMs x 4 VFs with vmidScope: device)',
    blocker: (sc) => (sc.smmu.vmidBits !== 16 ? 'smmu.vmidBits is 8: no VMID above 255 to truncate' : null),
  },
  {
    name: 'range-first-page-only', hook: FaultHook.RANGE_FIRST_PAGE_ONLY,
    summary: 'a range TLBI command invalidates only its first page',
    realBug: 'Qualcomm SMMU-500 erratum: TLBIVA/TLBIVAL by range invalidated only the first base page (use-after-free by the DSP; qualcomm-linux/kernel-topics PR #1550)',
    rules: [Rule.STALE_TLB],
    needs: 'range invalidation commands (smmu.ril) covering several pages: SVA munmaps under policy ptm or the private-ASID era, or a shared stage 2 without BTM',
    blocker: (sc) => (!sc.smmu.ril ? 'smmu.ril is false: the driver sends one command per page' : null),
  },
  {
    name: 'sva-asid-unpinned', hook: FaultHook.SVA_ASID_UNPINNED,
    summary: 'the SMMU shares a CPU ASID without pinning it; a CPU ASID rollover moves the mm to another ASID',
    realBug: 'SVA before arm64_mm_context_get (v5.10 added ASID pinning for it): the CD keeps an ASID the CPU allocator recycles, so the mm\'s TLBIs stop matching the SMMU\'s entries and another mm may get the ASID',
    rules: [Rule.STALE_TLB, Rule.ASID_ALIASING],
    needs: 'the shared SVA ASID era (btm-* policies or kernel.svaEra: shared) with SVA processes, and CPU ASID rollovers while they are bound (e.g. cpu.asidBits: 8 with more than 255 host processes)',
    blocker: (sc, p) => (sc.workload.sva.processes === 0 ? 'no SVA processes (workload.sva.processes: 0)'
      : !svaShared(sc, p) ? `policy ${p.name} uses private SVA ASIDs (kernel.svaEra: private): no CPU ASID is shared`
        : null),
  },
  {
    name: 'vhe-strw-el1', hook: FaultHook.VHE_STRW_EL1,
    summary: 'VHE host, SVA stream configured with StreamWorld EL1: host broadcasts and EL2 commands miss its entries',
    realBug: 'the v7 patch\'s condition "BTM only if !VHE || IDR0.HYP" and Linux\'s STRW=EL2 under FEAT_E2H exist because a VHE host invalidates the EL2&0 regime (arch.md §3.3 "SVA with VHE host")',
    rules: [Rule.STALE_TLB],
    needs: 'cpu.vhe: true and SVA processes',
    blocker: (sc) => (!sc.cpu.vhe ? 'cpu.vhe is false (nVHE host: STRW=EL1 is correct)'
      : sc.workload.sva.processes === 0 ? 'no SVA processes (workload.sva.processes: 0)' : null),
  },
  {
    name: 'no-atc-inv', hook: FaultHook.NO_ATC_INV,
    summary: 'the driver never sends CMD_ATC_INV: endpoints keep their ATC entries',
    realBug: 'broadcast TLBIs never reach an ATC (SMMUv3 §4.5.1); Linux still sends ATC invalidations from the SVA notifier under BTM — a driver relying on BTM alone, or forgetting the ATC, leaves DMA translating through freed pages',
    rules: [Rule.STALE_ATC, Rule.VMID_ALIASING],
    needs: 'devices with ATCs: smmu.ats: true and smmu.atcEntries > 0',
    blocker: (sc) => (!sc.smmu.ats || sc.smmu.atcEntries === 0 ? 'no ATCs (needs smmu.ats: true and smmu.atcEntries > 0)' : null),
  },
  {
    name: 'tlbi-non-shareable', hook: FaultHook.TLBI_NON_SHAREABLE,
    summary: 'software issues local TLBIs where Inner Shareable ones are needed',
    realBug: 'Zephyr #98344: non-IS TLBI on SMP — other CPUs, and any BTM SMMU, never see the invalidation',
    rules: [Rule.STALE_TLB, Rule.STALE_CPU_TLB],
    needs: 'broadcast TLBIs that matter: BTM SMMUs relying on them (btm-* with shared-ASID SVA), or KVM unmaps of pages other CPUs cached',
    blocker: () => null,
  },
  {
    name: 'vsmmu-btm-unpinned', hook: FaultHook.VSMMU_BTM_UNPINNED,
    summary: 'the VMM advertises BTM to a nested guest although the device\'s SMMU VMID is not the VM\'s KVM VMID',
    realBug: 'why Kolothum\'s 2021 RFC patch 4/5 "Use pinned VMID for NESTED stage with BTM" replaced the SMMU VMID of a nested domain with the pinned KVM VMID (kernel.md §5.2): the guest\'s broadcast TLBIs carry the KVM VMID, the SMMU\'s nested entries the SMMU\'s own, so a guest relying on BTM leaves its device translating through pages it unmapped',
    rules: [Rule.STALE_TLB],
    needs: 'guest SVA through nesting (workload.nested: true, workload.guestSva.munmapPerMsPerVm > 0) under a btm-* policy whose SMMU VMIDs are not the pinned KVM VMIDs (btm-2020, btm-split; btm-kvm-pinned after a pin failure)',
    blocker: (sc, p) => (!p.btm ? `policy ${p.name} keeps CR2.PTM=1: no vSMMU BTM to advertise`
      : !sc.workload.nested || sc.workload.guestSva.munmapPerMsPerVm === 0 ? 'no guest SVA through nesting (workload.nested and workload.guestSva.munmapPerMsPerVm)'
        : p.s2Aset ? `policy ${p.name}: stage-2 STEs opt out of VMID broadcasts` : null),
  },
];

export function faultDef(name: string): FaultDef | undefined {
  return FAULTS.find((f) => f.name === name);
}

/** Parse `a,b,c`; throws Error with the list of known faults on an unknown name. */
export function parseFaultList(list: string): FaultName[] {
  const names = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const n of names) {
    if (faultDef(n) === undefined) throw new Error(`unknown fault "${n}" (expected one of: ${FAULT_NAMES.join(', ')})`);
  }
  return [...new Set(names)] as FaultName[];
}

/** The hook object injecting `names` (null for none). */
export function faultHooksFor(names: readonly FaultName[]): FaultHooks | null {
  if (names.length === 0) return null;
  const h = new FaultHooks();
  for (const n of names) h.on[faultDef(n)!.hook] = 1;
  return h;
}
