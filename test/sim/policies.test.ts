import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/sim/run.js';
import { loadScenarioText } from '../../src/workload/load.js';
import type { PolicyName, Scenario } from '../../src/workload/schema.js';
import { BUILTIN_SCENARIO_YAML } from '../../src/workload/builtin.js';
import { NESTED_SVA } from '../oracle/fixtures.js';

function scenario(yaml: string): Scenario {
  const r = loadScenarioText(yaml, 'test.yaml');
  if (!r.ok) throw new Error(r.issues.map((i) => i.message).join('; '));
  return r.scenario;
}

function metricsOf(sc: Scenario, p: PolicyName) {
  return runScenario(sc, [p]).results[0].metrics;
}

/** Two VMs, one VF each, stage 2 only; KVM unmaps land in the devices' working sets. */
const SMALL = `
seed: 42
duration: { ms: 5 }
cpu: { count: 4, vmidBits: 8 }
smmu: { vmidBits: 8 }
workload:
  vms: 2
  vcpusPerVm: 1
  vmPages: 16
  devicesPerVm: 1
  nested: false
  dma: { ratePerUs: 1, workingSetPages: 16, locality: 0.5 }
  kvm: { unmapPerMsPerVm: 4, rangeUnmapPerMsPerVm: 0, flushVmPerMsPerVm: 0 }
  guestTlbiPerMsPerVm: 0
  sva: { processes: 0, hostProcesses: 0 }
`;

describe('policies on small scenarios (relations that hold by reasoning)', () => {
  it('ptm has no collateral invalidations: the SMMU ignores every broadcast (CR2.PTM=1)', () => {
    const m = metricsOf(scenario(SMALL), 'ptm');
    expect(m.collateral.total).toBe(0);
    expect(m.dvm.receivedPerSmmu[0]).toBe(0);
    expect(m.dvm.ignoredPerSmmu[0]).toBeGreaterThan(0);
  });

  it('btm-2020 with colliding VMIDs has collateral stage-2 invalidations from KVM page flushes', () => {
    const m = metricsOf(scenario(SMALL), 'btm-2020');
    expect(m.collateral.matrix.kvmPage?.smmuS2 ?? 0).toBeGreaterThan(0);
    expect(m.collateralRefills).toBeGreaterThan(0);
    expect(m.collateralRefillWalkAccesses).toBe(m.collateralRefills * 4);
  });

  it('btm-kvm-pinned with shared stage-2 tables has no collateral from KVM page flushes', () => {
    const sc = scenario(SMALL + 'policyOptions: { s2Tables: shared }\n');
    const m = metricsOf(sc, 'btm-kvm-pinned');
    expect(m.collateral.bySource.kvmPage).toBe(0);
    expect(m.intended.byVictim.smmuS2).toBeGreaterThan(0);
    expect(m.vmid.pinnedPeak).toBe(2);
  });

  it('btm-kvm-pinned with private stage-2 tables pays for its own VM\'s flushes', () => {
    const m = metricsOf(scenario(SMALL), 'btm-kvm-pinned');
    expect(m.collateral.bySource.kvmPage).toBeGreaterThan(0);
  });

  it('btm-split has no VMID collisions and more KVM rollovers than btm-2020 at 8 bits', () => {
    const sc = scenario(`
seed: 5
duration: { ms: 30 }
cpu: { count: 4, vmidBits: 8 }
smmu: { vmidBits: 8 }
workload:
  vms: 16
  vcpusPerVm: 1
  timesliceUs: 100
  devicesPerVm: 1
  dma: { ratePerUs: 0.2, workingSetPages: 8 }
  kvm: { unmapPerMsPerVm: 1, rangeUnmapPerMsPerVm: 0, flushVmPerMsPerVm: 0 }
  guestTlbiPerMsPerVm: 0
  churn: { vmLifetimeMs: 1 }
  sva: { processes: 0, hostProcesses: 0 }
`);
    const a = metricsOf(sc, 'btm-2020');
    const s = metricsOf(sc, 'btm-split');
    expect(s.vmid.kvmRollovers).toBeGreaterThan(a.vmid.kvmRollovers);
    expect(s.collateral.bySource.kvmPage + s.collateral.bySource.kvmVm).toBe(0);
    // Every ALLE1IS still empties the SMMU (no VMID opt-out for ALL-type broadcasts).
    expect(s.collateral.bySource.kvmRollover).toBeGreaterThan(0);
  });

  it('pin failures appear when pinned VMIDs exceed 2^bits - CPUs - 2', () => {
    // 8-bit VMIDs, 16 CPUs: cap = 256 - 16 - 2 = 238; 240 VMs each pin one VMID.
    const sc = scenario(`
seed: 1
duration: { ms: 0.2 }
cpu: { count: 16, vmidBits: 8 }
smmu: { vmidBits: 8 }
policyOptions: { s2Tables: shared }
workload:
  vms: 240
  vcpusPerVm: 1
  vmPages: 64
  devicesPerVm: 1
  dma: { ratePerUs: 0.01, workingSetPages: 4 }
  kvm: { unmapPerMsPerVm: 0, rangeUnmapPerMsPerVm: 0, flushVmPerMsPerVm: 0 }
  guestTlbiPerMsPerVm: 0
  sva: { processes: 0, hostProcesses: 0 }
`);
    const m = metricsOf(sc, 'btm-kvm-pinned');
    expect(m.vmid.pinnedPeak).toBe(238);
    expect(m.vmid.pinFailures).toBe(2);
    expect(m.vmid.timeToExhaustionNs).not.toBeNull();
  });

  it('btm-s2aset spares SMMU entries from VMID-matching KVM flushes but not from rollover ALLE1IS', () => {
    const sc = scenario(SMALL);
    const a = metricsOf(sc, 'btm-2020');
    const s = metricsOf(sc, 'btm-s2aset');
    expect(a.collateral.bySource.kvmPage).toBeGreaterThan(0);
    expect(s.collateral.bySource.kvmPage).toBe(0);
  });

  it('guest SVA through nesting: the vSMMU can rely on BTM only with pinned KVM VMIDs; otherwise every guest munmap is a trapped command batch', () => {
    const sc = scenario(NESTED_SVA);
    const ptm = metricsOf(sc, 'ptm');
    const btm = metricsOf(sc, 'btm-2020');
    const pinned = metricsOf(sc, 'btm-kvm-pinned');
    for (const m of [ptm, btm, pinned]) expect(m.workload.guestSvaMunmaps).toBeGreaterThan(5);
    // ptm, and btm-2020 whose SMMU VMIDs are not KVM's: CMD_TLBI_NH_VA + CMD_SYNC through the VMM.
    for (const m of [ptm, btm]) {
      expect(m.workload.vsmmuTraps).toBe(m.workload.guestSvaMunmaps);
      expect(m.commands.byOpcode.CMD_TLBI_NH_VA).toBeGreaterThanOrEqual(m.workload.guestSvaMunmaps);
      expect(m.translation.vsmmuTrapTimeNs).toBe(m.workload.vsmmuTraps * sc.cost.vsmmuTrapNs);
    }
    // Pinned KVM VMIDs: the guest's broadcast TLBIs reach the nested entries; no trap, no NH_VA.
    expect(pinned.vmid.pinnedPeak).toBe(2);
    expect(pinned.workload.vsmmuTraps).toBe(0);
    expect(pinned.commands.byOpcode.CMD_TLBI_NH_VA ?? 0).toBe(0);
  });

  it('host SVA with BTM (shared pinned CPU ASID) replaces notifier commands by broadcasts', () => {
    const sc = scenario(`
seed: 3
duration: { ms: 5 }
cpu: { count: 4 }
workload:
  vms: 0
  sva: { processes: 2, munmapPerMs: 2, munmapPages: 8, hostProcesses: 4 }
`);
    const off = metricsOf(sc, 'ptm');
    const on = metricsOf(sc, 'btm-2020');
    expect(on.commands.byOpcode.CMD_TLBI_NH_VA ?? 0).toBe(0);
    expect(off.commands.total).toBeGreaterThan(on.commands.total);
    expect(on.asid.pins).toBe(2);
    expect(off.translation.faults).toBe(0);
    expect(on.translation.faults).toBe(0);
  });
});

describe('determinism', () => {
  it('the same scenario and seed give byte-identical JSON', () => {
    const r = loadScenarioText(BUILTIN_SCENARIO_YAML, 'builtin');
    if (!r.ok) throw new Error('builtin invalid');
    const sc = { ...r.scenario, duration: { ms: 2 } };
    const a = JSON.stringify(runScenario(sc, ['btm-2020', 'btm-kvm-pinned']));
    const b = JSON.stringify(runScenario(sc, ['btm-2020', 'btm-kvm-pinned']));
    expect(a).toBe(b);
  });

  it('a different seed gives different numbers', () => {
    const r = loadScenarioText(BUILTIN_SCENARIO_YAML, 'builtin');
    if (!r.ok) throw new Error('builtin invalid');
    const sc = { ...r.scenario, duration: { ms: 2 } };
    const a = runScenario(sc, ['btm-2020']).results[0].metrics;
    const b = runScenario({ ...sc, seed: 99 }, ['btm-2020']).results[0].metrics;
    expect(a.translation.hits).not.toBe(b.translation.hits);
  });

  it('a policy run alone gives the same metrics as inside a comparison', () => {
    const sc = scenario(SMALL);
    const alone = JSON.stringify(runScenario(sc, ['btm-2020']).results[0]);
    const both = JSON.stringify(runScenario(sc, ['ptm', 'btm-2020']).results[1]);
    expect(alone).toBe(both);
  });
});
