/**
 * The built-in scenario: the setup of the May 2020 thread ("[PATCH v7 13/24] iommu/arm-smmu-v3:
 * Enable broadcast TLB maintenance"). Identical to scenarios/thread-2020.yaml (a test checks).
 */
export const BUILTIN_SCENARIO_NAME = 'thread-2020';

export const BUILTIN_SCENARIO_YAML = `# yaml-language-server: $schema=../scenario.schema.json
# The 2020 thread's question: with BTM on, KVM's TLBIs by VMID hit SMMU stage-2 contexts that
# share the VMID. A v8.0-class host (8-bit VMIDs on CPU and SMMU), VMs with SR-IOV VFs assigned
# through stage 2 with nesting (guest stage 1), KVM stage-2 activity and guest TLBIs, a
# BTM-capable SMMU. Every policy of the thread and after runs on the same workload and seed.
name: thread-2020
description: 8-bit VMIDs, 16 VMs x 4 VFs (nested), KVM stage-2 activity, BTM-capable SMMU
seed: 1
duration: { ms: 20 }
cpu:
  count: 8
  vmidBits: 8
  asidBits: 16
  tlbiRange: true
smmu:
  count: 1
  btm: true
  vmidBits: 8
  ril: true
  tlb: { entries: 2048, ways: 4, policy: rr }
kernel:
  kvmVmidAllocator: v5.18
  svaEra: private
compare: [ptm, btm-2020, btm-split, btm-kvm-pinned, btm-s2aset]
policyOptions:
  vmidScope: device
  s2Tables: private
workload:
  vms: 16
  vcpusPerVm: 2
  vmPages: 8192
  timesliceUs: 1000
  devicesPerVm: 4
  nested: true
  dma: { ratePerUs: 0.5, workingSetPages: 16, locality: 0.9 }
  kvm:
    unmapPerMsPerVm: 1
    rangeUnmapPerMsPerVm: 0.05
    rangePages: 512
    flushVmPerMsPerVm: 0.02
  guestTlbiPerMsPerVm: 2
  churn: { vmLifetimeMs: 40 }
  sva: { processes: 2, munmapPerMs: 1, munmapPages: 16, hostProcesses: 16 }
`;
