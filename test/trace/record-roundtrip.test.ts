/**
 * `btmsim run --record` → `btmsim replay`: a real run is recorded through runScenario's `record`
 * option (the recorder attaches right after the Simulation builds its HwSystem and Metrics), the
 * JSONL is replayed, and the replay reproduces every hardware and attribution metric of the run.
 */
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/sim/run.js';
import { loadScenarioText } from '../../src/workload/load.js';
import { runLines } from '../../src/workload/trace/pipeline.js';
import { comparableMetrics } from '../../src/workload/trace/replay.js';
import { replayOutput } from '../../src/workload/trace/report.js';
import { parseTraceLine, eventToJson } from '../../src/workload/trace/jsonl.js';

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
  const lines: string[] = [];
  const out = runScenario(r.scenario, [policy], { record: () => (l) => lines.push(l) });
  return { lines, metrics: out.results[0].metrics };
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
