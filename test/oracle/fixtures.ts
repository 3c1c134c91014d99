/** Small scenarios for the oracle's tests, each enabling what one fault needs. */
import { loadScenarioText } from '../../src/workload/load.js';
import type { PolicyName, Scenario } from '../../src/workload/schema.js';
import { checkScenario, type CheckOutput } from '../../src/oracle/check.js';
import type { FaultName } from '../../src/oracle/faults.js';

export function scenario(yaml: string): Scenario {
  const r = loadScenarioText(yaml, 'test.yaml');
  if (!r.ok) throw new Error(r.issues.map((i) => i.message).join('\n'));
  return r.scenario;
}

/** Host SVA only: 2 bound processes that munmap their whole working set often. */
export const SVA = `
seed: 3
duration: { ms: 1 }
cpu: { count: 4 }
workload:
  vms: 0
  devicesPerVm: 0
  dma: { ratePerUs: 1, workingSetPages: 16 }
  sva: { processes: 2, munmapPerMs: 4, munmapPages: 16, hostProcesses: 4 }
`;

/** VM churn: nested VFs whose stage-2 domains are freed and whose VMIDs and StreamIDs are reused. */
export const CHURN = `
seed: 8
duration: { ms: 3 }
cpu: { count: 4 }
workload:
  vms: 4
  vcpusPerVm: 1
  vmPages: 64
  devicesPerVm: 2
  nested: true
  dma: { ratePerUs: 1, workingSetPages: 64, locality: 0.5 }
  kvm: { unmapPerMsPerVm: 0, rangeUnmapPerMsPerVm: 0, flushVmPerMsPerVm: 0 }
  guestTlbiPerMsPerVm: 0
  churn: { vmLifetimeMs: 0.5 }
  sva: { processes: 0, hostProcesses: 0 }
`;

/** Guest SVA through nesting: guests munmap parts of their devices' buffers (shared-ASID era under btm-*). */
export const NESTED_SVA = `
seed: 5
duration: { ms: 2 }
cpu: { count: 4, vmidBits: 16 }
smmu: { vmidBits: 16 }
workload:
  vms: 2
  vcpusPerVm: 2
  vmPages: 256
  devicesPerVm: 1
  nested: true
  dma: { ratePerUs: 1, workingSetPages: 32, locality: 0.5 }
  kvm: { unmapPerMsPerVm: 0, rangeUnmapPerMsPerVm: 0, flushVmPerMsPerVm: 0 }
  guestTlbiPerMsPerVm: 0
  guestSva: { munmapPerMsPerVm: 8, munmapPages: 16 }
  sva: { processes: 0, hostProcesses: 0 }
`;

/** 16-bit VMIDs and 260 stage-2 domains (VMIDs 1..260) over the same small guest IPA range. */
export const WIDE_VMIDS = `
seed: 2
duration: { ms: 0.3 }
cpu: { count: 4, vmidBits: 16 }
smmu: { vmidBits: 16 }
policyOptions: { vmidScope: device }
workload:
  vms: 65
  vcpusPerVm: 1
  vmPages: 64
  devicesPerVm: 4
  dma: { ratePerUs: 0.2, workingSetPages: 64 }
  kvm: { unmapPerMsPerVm: 0, rangeUnmapPerMsPerVm: 0, flushVmPerMsPerVm: 0 }
  guestTlbiPerMsPerVm: 0
  sva: { processes: 0, hostProcesses: 0 }
`;

/** 8-bit CPU ASIDs, 300 host processes on short timeslices: CPU ASID rollovers with SVA bound. */
export const ASID_ROLLOVER = `
seed: 3
duration: { ms: 2 }
cpu: { count: 4, asidBits: 8 }
workload:
  vms: 0
  devicesPerVm: 0
  timesliceUs: 10
  dma: { ratePerUs: 1, workingSetPages: 16 }
  sva: { processes: 2, munmapPerMs: 4, munmapPages: 16, hostProcesses: 300 }
`;

/** VHE host with SVA (and a couple of VMs). */
export const VHE = `
seed: 4
duration: { ms: 1 }
cpu: { count: 4, vhe: true }
workload:
  vms: 2
  devicesPerVm: 1
  dma: { ratePerUs: 1, workingSetPages: 16 }
  sva: { processes: 2, munmapPerMs: 4, munmapPages: 16, hostProcesses: 4 }
`;

/** Endpoints with ATCs (ATS): SVA munmaps and nested VFs reassigned on VM churn. */
export const ATS = `
seed: 5
duration: { ms: 2 }
cpu: { count: 4 }
smmu: { ats: true, atcEntries: 32 }
workload:
  vms: 4
  devicesPerVm: 2
  nested: true
  dma: { ratePerUs: 1, workingSetPages: 16 }
  churn: { vmLifetimeMs: 1 }
  sva: { processes: 2, munmapPerMs: 4, munmapPages: 16, hostProcesses: 4 }
`;

/** Two VMs with two vCPUs each on 4 CPUs, tiny guest memory (CPU TLB hits), frequent KVM unmaps. */
export const CPU_TLB = `
seed: 6
duration: { ms: 2 }
cpu: { count: 4 }
workload:
  vms: 2
  vcpusPerVm: 2
  vmPages: 16
  timesliceUs: 20
  devicesPerVm: 0
  kvm: { unmapPerMsPerVm: 20, rangeUnmapPerMsPerVm: 0, flushVmPerMsPerVm: 0 }
  guestTlbiPerMsPerVm: 0
  sva: { processes: 0, hostProcesses: 0 }
`;

export function check(yaml: string, policy: PolicyName, faults: FaultName[] = []): CheckOutput {
  return checkScenario(scenario(yaml), [policy], { faults });
}
