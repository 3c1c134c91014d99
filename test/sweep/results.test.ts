import { describe, expect, it } from 'vitest';
import { parseVary } from '../../src/sweep/grid.js';
import {
  csvHeader, definitionOf, formatJson, latestRecords, METRIC_COLUMNS, rowsOf, sweepCsv, sweepJson, type JobRecord,
} from '../../src/sweep/results.js';
import { runScenario } from '../../src/sim/run.js';
import { runPolicyWithTimeline } from '../../src/sim/run.js';
import { loadScenarioText } from '../../src/workload/load.js';
import type { Scenario } from '../../src/workload/schema.js';

function scenario(text: string): Scenario {
  const r = loadScenarioText(text, 't.yaml');
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.scenario;
}

const tiny = scenario('duration: { ms: 0.5 }\nworkload: { vms: 2, devicesPerVm: 1, sva: { processes: 1, hostProcesses: 2 } }\n');

/** Every scalar leaf of the metrics, dotted, except the per-opcode counts and the matrix. */
function leaves(x: unknown, prefix = ''): string[] {
  if (x === null || typeof x !== 'object') return [prefix];
  if (Array.isArray(x)) return [prefix];
  return Object.entries(x).flatMap(([k, v]) => (k === 'byOpcode' || k === 'matrix' ? [] : leaves(v, prefix ? `${prefix}.${k}` : k)));
}

describe('sweep results', () => {
  const def = definitionOf({
    scenarioName: 'n', scenarioText: 'x: 1\n', seed: 5,
    axes: [parseVary('name=a,b'), parseVary('cpu.count=1,2')], policies: ['ptm', 'btm-2020'], samples: 4,
  });

  it('the CSV has a column for every scalar metric of a run (arrays summed)', () => {
    const m = runScenario(tiny, ['btm-2020']).results[0].metrics;
    const cols = new Set(METRIC_COLUMNS.map(([k]) => k));
    const expected = leaves(m).map((k) => k.replace(/PerSmmu$/, ''));
    expect(expected.filter((k) => !cols.has(k))).toEqual([]);
    expect(cols.size).toBe(METRIC_COLUMNS.length);
  });

  it('a timeline does not change the run: same metrics as runScenario', () => {
    const a = runScenario(tiny, ['btm-kvm-pinned']).results[0].metrics;
    const b = runPolicyWithTimeline(tiny, 'btm-kvm-pinned', { samples: 10 });
    expect(b.result.metrics).toEqual(a);
    expect(b.timeline.tNs).toHaveLength(11);
    expect(b.timeline.tNs[0]).toBe(0);
    expect(b.timeline.tNs[10]).toBe(0.5e6);
    expect(b.timeline.collateral[10]).toBe(a.collateral.total);
    expect(b.timeline.kvmRollovers[10]).toBe(a.vmid.kvmRollovers);
    // Cumulative series never decrease.
    for (const k of ['collateral', 'collateralRefills', 'kvmRollovers'] as const) {
      expect(b.timeline[k].every((v, i, arr) => i === 0 || v >= arr[i - 1])).toBe(true);
    }
  });

  it('CSV cells are quoted per RFC 4180; header = job, point, axes, policy, seed, status, error, metrics', () => {
    expect(csvHeader(def).slice(0, 8)).toEqual(['job', 'point', 'name', 'cpu.count', 'policy', 'seed', 'status', 'error']);
    const recs: JobRecord[] = [
      { job: 0, policy: 'ptm', seed: 5, status: 'error', error: 'boom, "quoted"\nsecond line' },
      { job: 3, policy: 'btm-2020', seed: 5, status: 'error', error: 'x' },
    ];
    const csv = sweepCsv(def, rowsOf(def, latestRecords(recs)));
    expect(csv.split('\n')[1].startsWith('0,0,a,1,ptm,5,error,')).toBe(true);
    expect(csv).toContain('"boom, ""quoted""\nsecond line"');
    expect(csv.endsWith('\n')).toBe(true);
  });

  it('rows are sorted by job whatever the record order; ok is never replaced by a later error', () => {
    const mk = (job: number, status: 'ok' | 'error'): JobRecord => (status === 'ok'
      ? { job, policy: job % 2 === 0 ? 'ptm' : 'btm-2020', seed: 5, status, metrics: runScenario(tiny, ['ptm']).results[0].metrics }
      : { job, policy: job % 2 === 0 ? 'ptm' : 'btm-2020', seed: 5, status, error: 'e' });
    const a = [mk(3, 'ok'), mk(0, 'error'), mk(1, 'ok'), mk(0, 'ok')];
    const b = [mk(0, 'ok'), mk(1, 'ok'), mk(3, 'ok'), mk(3, 'error')];
    const ra = rowsOf(def, latestRecords(a)), rb = rowsOf(def, latestRecords(b));
    expect(ra.map((r) => r.job)).toEqual([0, 1, 3]);
    expect(sweepCsv(def, ra)).toBe(sweepCsv(def, rb));
    expect(sweepJson(def, ra)).toBe(sweepJson(def, rb));
  });

  it('formatJson keeps number arrays on one line and prints numbers deterministically', () => {
    expect(formatJson({ a: [1, 2.5, -0], b: { c: 'x"' }, d: [], e: [{ f: 1 }], g: undefined, h: null }))
      .toBe('{\n  "a": [1, 2.5, 0],\n  "b": {\n    "c": "x\\""\n  },\n  "d": [],\n  "e": [\n    {\n      "f": 1\n    }\n  ],\n  "h": null\n}');
    expect(JSON.parse(formatJson({ x: 0.1 + 0.2 })).x).toBe(0.1 + 0.2);
  });
});
