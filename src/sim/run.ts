import { SmmuStat } from '../hw/smmu/smmu.js';
import { PeStat } from '../hw/cpu/pe.js';
import type { PolicyName, Scenario } from '../workload/schema.js';
import { commandsByName, smmuTotals } from './metrics.js';
import { Simulation, type RunOptions, type SimOptions } from './simulation.js';
import { Oracle, type OracleResult } from '../oracle/oracle.js';
import { faultHooksFor, type FaultName } from '../oracle/faults.js';
import { TraceRecorder, type TraceSink } from '../workload/trace/recorder.js';
import { runWithTimeline, type Timeline, type TimelineOptions } from './timeline.js';

export const RESULT_VERSION = 1;

/**
 * The metrics of one run, with the names the README documents (DESIGN.md §5). Plain data:
 * numbers, and objects of numbers; key order is fixed so JSON output is byte-stable.
 */
export interface RunMetrics {
  simulatedNs: number;
  events: number;
  dmaTranslations: number;
  collateral: { total: number; bySource: Record<string, number>; byVictim: Record<string, number>; matrix: Record<string, Record<string, number>> };
  intended: { total: number; bySource: Record<string, number>; byVictim: Record<string, number> };
  collateralRefills: number;
  collateralRefillWalkAccesses: number;
  commands: { total: number; syncs: number; byOpcode: Record<string, number> };
  dvm: { messages: number; syncs: number; receivedPerSmmu: number[]; ignoredPerSmmu: number[] };
  vmid: {
    kvmRollovers: number; kvmRolloverFlushes: number; smmuAllocFailures: number; pinned: number; pinnedPeak: number;
    pinFailures: number; timeToExhaustionNs: number | null; devicesUnattached: number;
  };
  asid: { cpuRollovers: number; localFlushes: number; pins: number; pinFailures: number };
  translation: {
    hits: number; misses: number; hitRate: number; walkAccesses: number; faults: number;
    dmaTimeNs: number; meanTranslationNs: number; driverInvalidationTimeNs: number; dvmTimeNs: number;
    /** Guest vSMMU command batches trapped to the VMM × cost.vsmmuTrapNs (guest SVA through nesting without vSMMU BTM). */
    vsmmuTrapTimeNs: number;
  };
  cpu: { tlbiBroadcast: number; tlbiLocal: number; dsb: number };
  workload: Record<string, number>;
}

export interface PolicyResult {
  policy: PolicyName;
  metrics: RunMetrics;
  /** The oracle's verdict, when the run was checked (`run --check`, `check`). */
  oracle?: OracleResult;
}

/** Run with the coherence and isolation oracle (src/oracle), optionally injecting faults. */
export interface CheckRunOptions {
  faults?: readonly FaultName[];
  /** How reports name the scenario in their `reproduce` line (a path; omitted = built-in). */
  scenarioRef?: string;
}

export interface RunOutput {
  version: number;
  scenario: string;
  seed: number;
  results: PolicyResult[];
}

export function policiesOf(sc: Scenario, override?: PolicyName[]): PolicyName[] {
  if (override !== undefined && override.length > 0) return override;
  return sc.compare ?? [sc.policy];
}

/** Run every policy on the same workload and seed. */
export function runScenario(
  sc: Scenario, policies: PolicyName[],
  opts: {
    onProgress?: (policy: PolicyName, fraction: number) => void;
    check?: CheckRunOptions;
    /** Record each policy's run as a btmsim trace (docs/traces.md) into the sink this returns. */
    record?: (policy: PolicyName) => TraceSink;
    /** Sample a Timeline of each run (src/sim/timeline.ts) into this array, one per policy. */
    timelines?: { samples: number; out: Timeline[] };
  } = {},
): RunOutput {
  const results: PolicyResult[] = [];
  for (const p of policies) {
    let oracle: Oracle | null = null;
    const so: SimOptions = {};
    const check = opts.check;
    if (check !== undefined) {
      const hooks = faultHooksFor(check.faults ?? []);
      if (hooks !== null) so.faults = hooks;
      so.attach = (s) => { oracle = Oracle.attach(s, { faults: check.faults ?? [], scenarioRef: check.scenarioRef }); };
    }
    let rec: TraceRecorder | null = null;
    if (opts.record !== undefined) {
      const r = new TraceRecorder(opts.record(p));
      rec = r;
      so.onHardware = (s) => {
        r.setClock(() => s.now);
        r.start(s.hw, {
          driver: { btm: s.policy.btm, vhe: sc.cpu.vhe }, cost: sc.cost, metrics: s.metrics, ctxs: s.ctxs,
          info: { scenario: sc.name, policy: p, seed: sc.seed },
        });
      };
    }
    const sim = new Simulation(sc, p, so);
    const ro: RunOptions = {};
    if (opts.onProgress) ro.onProgress = (f) => opts.onProgress!(p, f);
    if (opts.timelines !== undefined) {
      const to: TimelineOptions = { samples: opts.timelines.samples };
      if (ro.onProgress !== undefined) to.onProgress = ro.onProgress;
      opts.timelines.out.push(runWithTimeline(sim, to));
    } else {
      sim.run(ro);
    }
    const r: PolicyResult = { policy: p, metrics: collectMetrics(sim) };
    rec?.end(sim.now, r.metrics);
    if (oracle !== null) r.oracle = (oracle as Oracle).result();
    results.push(r);
  }
  return { version: RESULT_VERSION, scenario: sc.name, seed: sc.seed, results };
}

/** One policy's run with its timeline (the metrics equal runScenario's for the same policy). */
export function runPolicyWithTimeline(sc: Scenario, policy: PolicyName, opts: TimelineOptions = {}): { result: PolicyResult; timeline: Timeline } {
  const sim = new Simulation(sc, policy);
  const timeline = runWithTimeline(sim, opts);
  return { result: { policy, metrics: collectMetrics(sim) }, timeline };
}

/** runScenario with a timeline per policy (100 samples unless told). */
export function runScenarioWithTimelines(
  sc: Scenario, policies: PolicyName[],
  opts: { samples?: number; onProgress?: (policy: PolicyName, fraction: number) => void } = {},
): { output: RunOutput; timelines: Timeline[] } {
  const timelines: Timeline[] = [];
  const output = runScenario(sc, policies, {
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    timelines: { samples: opts.samples ?? 100, out: timelines },
  });
  return { output, timelines };
}

export function collectMetrics(sim: Simulation): RunMetrics {
  const m = sim.metrics;
  const cost = sim.sc.cost;
  const t = smmuTotals(sim.hw.smmus);
  const drv = sim.smmuSide.commandCounters();
  let tlbiB = 0, tlbiL = 0, dsb = 0;
  for (const pe of sim.hw.pes) { tlbiB += pe.stats[PeStat.TLBI_BROADCAST]; tlbiL += pe.stats[PeStat.TLBI_LOCAL]; dsb += pe.stats[PeStat.DSB]; }
  let dvmRecv = 0;
  for (const x of t.dvmReceived) dvmRecv += x;
  const lookups = t.hits + t.misses;
  const dmaTimeNs = lookups * cost.tlbHitNs + t.walkAccesses * cost.walkAccessNs;
  const driverNs = drv.total * cost.commandNs + drv.syncs * cost.cmdSyncNs;
  const ps = sim.smmuSide.pinStats();
  return {
    simulatedNs: sim.now,
    events: sim.events,
    dmaTranslations: sim.dmaEvents,
    collateral: { total: m.total(m.collateral), bySource: m.bySource(m.collateral), byVictim: m.byVictim(m.collateral), matrix: m.matrix(m.collateral) },
    intended: { total: m.total(m.intended), bySource: m.bySource(m.intended), byVictim: m.byVictim(m.intended) },
    collateralRefills: m.collateralRefills,
    collateralRefillWalkAccesses: m.collateralRefillWalkAccesses,
    commands: { total: drv.total, syncs: drv.syncs, byOpcode: commandsByName(drv.byOpcode) },
    dvm: { messages: sim.hw.dvm.messages, syncs: sim.hw.dvm.syncs, receivedPerSmmu: t.dvmReceived, ignoredPerSmmu: t.dvmIgnored },
    vmid: {
      kvmRollovers: sim.kvm.rollovers,
      kvmRolloverFlushes: sim.counters.kvmRolloverFlushes,
      smmuAllocFailures: sim.smmuSide.vmidAllocFailures,
      pinned: ps.pinned,
      pinnedPeak: ps.pinnedPeak,
      pinFailures: ps.pinFailures,
      timeToExhaustionNs: sim.firstExhaustionNs >= 0 ? sim.firstExhaustionNs : null,
      devicesUnattached: sim.counters.devicesUnattached,
    },
    asid: {
      cpuRollovers: sim.asids.rollovers,
      localFlushes: sim.counters.localAsidFlushes,
      pins: sim.smmuSide.asidPins,
      pinFailures: sim.smmuSide.asidPinFailures,
    },
    translation: {
      hits: t.hits, misses: t.misses, hitRate: lookups > 0 ? round6(t.hits / lookups) : 0,
      walkAccesses: t.walkAccesses, faults: t.faults,
      dmaTimeNs: round3(dmaTimeNs), meanTranslationNs: lookups > 0 ? round3(dmaTimeNs / lookups) : 0,
      driverInvalidationTimeNs: round3(driverNs), dvmTimeNs: round3(dvmRecv * cost.dvmMessageNs),
      vsmmuTrapTimeNs: round3(sim.counters.vsmmuTraps * cost.vsmmuTrapNs),
    },
    cpu: { tlbiBroadcast: tlbiB, tlbiLocal: tlbiL, dsb },
    workload: { ...sim.counters },
  };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

export { SmmuStat };
