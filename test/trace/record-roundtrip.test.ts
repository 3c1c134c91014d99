/**
 * `btmsim run --record` → `btmsim replay`: a real Simulation is recorded with TraceRecorder
 * (attached right after it builds its HwSystem and Metrics, as the simulation will do), the
 * JSONL is replayed, and the replay reproduces every hardware and attribution metric of the run.
 * The hooks below stand in for the two lines the simulation will call; they change nothing else.
 */
import { describe, expect, it, vi } from 'vitest';
import type { HwSystem } from '../../src/hw/system.js';
import type { ContextRegistry } from '../../src/sim/contexts.js';
import type { Metrics } from '../../src/sim/metrics.js';

type HwHook = (hw: HwSystem) => void;
type MetricsHook = (m: Metrics, ctxs: ContextRegistry) => void;
const hooks = vi.hoisted(() => ({ hw: null as HwHook | null, metrics: null as MetricsHook | null }));

vi.mock('../../src/hw/system.js', async (orig) => {
  const mod = await orig<typeof import('../../src/hw/system.js')>();
  class HookedHwSystem extends mod.HwSystem {
    constructor(...a: ConstructorParameters<typeof mod.HwSystem>) {
      super(...a);
      const h = hooks.hw;
      hooks.hw = null;
      h?.(this);
    }
  }
  return { ...mod, HwSystem: HookedHwSystem };
});
vi.mock('../../src/sim/metrics.js', async (orig) => {
  const mod = await orig<typeof import('../../src/sim/metrics.js')>();
  class HookedMetrics extends mod.Metrics {
    constructor(ctxs: ContextRegistry) {
      super(ctxs);
      const h = hooks.metrics;
      hooks.metrics = null;
      h?.(this, ctxs);
    }
  }
  return { ...mod, Metrics: HookedMetrics };
});

const { Simulation } = await import('../../src/sim/simulation.js');
const { collectMetrics } = await import('../../src/sim/run.js');
const { policyConfig } = await import('../../src/policy/policies.js');
const { loadScenarioText } = await import('../../src/workload/load.js');
const { TraceRecorder } = await import('../../src/workload/trace/recorder.js');
const { runLines } = await import('../../src/workload/trace/pipeline.js');
const { comparableMetrics } = await import('../../src/workload/trace/replay.js');
const { replayOutput } = await import('../../src/workload/trace/report.js');
const { parseTraceLine, eventToJson } = await import('../../src/workload/trace/jsonl.js');

const SCENARIO = `
seed: 7
duration: { ms: 2 }
cpu: { count: 4, vmidBits: 8 }
smmu: { vmidBits: 8, btm: true, walkCacheEntries: 64, microTlbEntries: 8 }
workload:
  vms: 3
  vcpusPerVm: 2
  vmPages: 64
  devicesPerVm: 2
  nested: true
  dma: { ratePerUs: 1, workingSetPages: 32, locality: 0.7 }
  kvm: { unmapPerMsPerVm: 6, rangeUnmapPerMsPerVm: 1, rangePages: 16, flushVmPerMsPerVm: 0.5 }
  guestTlbiPerMsPerVm: 3
  churn: { vmLifetimeMs: 1 }
  sva: { processes: 2, munmapPerMs: 2, munmapPages: 4, hostProcesses: 2 }
`;

function record(policy: 'ptm' | 'btm-2020' | 'btm-kvm-pinned' | 'btm-s2aset') {
  const r = loadScenarioText(SCENARIO, 'roundtrip.yaml');
  if (!r.ok) throw new Error(r.issues.map((i) => i.message).join('; '));
  const sc = r.scenario;
  const lines: string[] = [];
  let sim: InstanceType<typeof Simulation> | null = null;
  const rec = new TraceRecorder((l) => lines.push(l));
  rec.setClock(() => sim?.now ?? 0);
  let hw: HwSystem | null = null;
  hooks.hw = (h) => { hw = h; };
  hooks.metrics = (m, ctxs) => {
    rec.start(hw!, {
      driver: { btm: policyConfig(policy, sc).btm, vhe: sc.cpu.vhe }, cost: sc.cost, metrics: m, ctxs,
      info: { scenario: sc.name, policy, seed: sc.seed },
    });
  };
  sim = new Simulation(sc, policy);
  sim.run();
  const metrics = collectMetrics(sim);
  rec.end(sim.now, metrics);
  return { lines, metrics };
}

describe('TraceRecorder → replay of a real simulation', () => {
  for (const policy of ['btm-2020', 'ptm', 'btm-kvm-pinned', 'btm-s2aset'] as const) {
    it(`${policy}: the replay reproduces the run's hardware and attribution metrics`, () => {
      const { lines, metrics } = record(policy);
      expect(lines.length).toBeGreaterThan(1000);
      expect(metrics.dmaTranslations).toBeGreaterThan(100);
      const r = runLines(lines);
      const out = replayOutput('rec.jsonl', r);
      expect(out.recordingMismatches).toEqual([]);
      expect(out.matchesRecording).toBe(true);
      expect(comparableMetrics(out.asRecorded as unknown as Record<string, unknown>)).toEqual(comparableMetrics(metrics as unknown as Record<string, unknown>));
      if (policy === 'btm-2020') expect(metrics.collateral.total).toBeGreaterThan(0);
    });
  }

  it('every recorded line parses and writes back byte for byte', () => {
    const { lines } = record('btm-2020');
    lines.forEach((l, i) => {
      const ev = parseTraceLine(l, i + 1, i === 0)!;
      expect(eventToJson(ev)).toBe(l);
    });
    // Events carry the simulated time, non-decreasing.
    const ts = lines.slice(1).map((l) => JSON.parse(l).t as number | undefined).filter((t) => t !== undefined) as number[];
    expect(ts.length).toBe(lines.length - 1);
    expect(ts.every((t, i) => i === 0 || t >= ts[i - 1])).toBe(true);
    expect(ts[ts.length - 1]).toBeGreaterThan(1e6);
  });
});
