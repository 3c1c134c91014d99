/**
 * Sweep results: the sweep's definition, one record per finished job, and their serialisation
 * to `results.csv` and `results.json`. Everything here is a function of (definition, records),
 * rows sorted by job index, numbers printed by one deterministic formatter: the bytes do not
 * depend on how many workers ran, in which order jobs finished, or how the grid was sharded.
 *
 * Pure: no Node, no DOM.
 */
import { SOURCE_KEYS, VICTIM_KEYS } from '../sim/metrics.js';
import type { RunMetrics } from '../sim/run.js';
import type { Timeline } from '../sim/timeline.js';
import type { PolicyName, Scenario } from '../workload/schema.js';
import { pointParams, type AxisValue, type SweepAxis } from './grid.js';

export const SWEEP_FORMAT_VERSION = 1;

/** What a sweep is: everything its results depend on (and nothing about how it was run). */
export interface SweepDefinition {
  version: number;
  /** The base scenario's name and its source text (YAML or JSON, as given). */
  scenarioName: string;
  scenarioText: string;
  /** The base seed (after --seed); a `seed` axis overrides it per point. */
  seed: number;
  axes: { key: string; paths: string[]; values: AxisValue[]; flag: string }[];
  policies: PolicyName[];
  /** Time-series samples per run (0 = none). */
  samples: number;
  points: number;
  jobs: number;
}

/** One finished job, as journaled (one JSON line each). */
export interface JobRecord {
  job: number;
  policy: PolicyName;
  seed: number;
  status: 'ok' | 'error';
  error?: string;
  metrics?: RunMetrics;
  timeline?: Timeline;
}

/** A row of the results: a record with its grid point. */
export interface SweepRow extends JobRecord {
  point: number;
  params: Record<string, AxisValue>;
}

export interface Shard { index: number; count: number }

/** Axes of a definition, as grid axes (paths split). */
export function defAxes(def: SweepDefinition): SweepAxis[] {
  return def.axes.map((a) => ({ key: a.key, paths: a.paths.map((p) => p.split('.')), values: a.values, flag: a.flag }));
}

export function definitionOf(args: {
  scenarioName: string; scenarioText: string; seed: number; axes: readonly SweepAxis[]; policies: PolicyName[]; samples: number;
}): SweepDefinition {
  const points = args.axes.reduce((n, a) => n * a.values.length, 1);
  return {
    version: SWEEP_FORMAT_VERSION,
    scenarioName: args.scenarioName,
    scenarioText: args.scenarioText,
    seed: args.seed,
    axes: args.axes.map((a) => ({ key: a.key, paths: a.paths.map((p) => p.join('.')), values: [...a.values], flag: a.flag })),
    policies: [...args.policies],
    samples: args.samples,
    points,
    jobs: points * args.policies.length,
  };
}

/** Job `j` is grid point ⌊j / policies⌋ under policy j mod policies. */
export function jobPoint(def: SweepDefinition, job: number): number {
  return Math.floor(job / def.policies.length);
}

export function jobPolicy(def: SweepDefinition, job: number): PolicyName {
  return def.policies[job % def.policies.length];
}

/** Jobs of shard i/n: every n-th job from i (interleaved, so heavy and light points spread evenly). */
export function shardJobs(def: SweepDefinition, shard: Shard | null): number[] {
  const out: number[] = [];
  const n = shard?.count ?? 1, i = shard?.index ?? 0;
  for (let j = i; j < def.jobs; j += n) out.push(j);
  return out;
}

/**
 * The records to report, one per job: the last record of each job wins, except that an `ok`
 * record is never replaced by an `error` one (a resumed sweep retries failed jobs; identical
 * jobs give identical results, so which `ok` copy is kept does not matter).
 */
export function latestRecords(records: Iterable<JobRecord>): Map<number, JobRecord> {
  const by = new Map<number, JobRecord>();
  for (const r of records) {
    const prev = by.get(r.job);
    if (prev !== undefined && prev.status === 'ok' && r.status !== 'ok') continue;
    by.set(r.job, r);
  }
  return by;
}

/** Rows for `jobs` (sorted), from the records; jobs without a record are left out. */
export function rowsOf(def: SweepDefinition, records: Map<number, JobRecord>, jobs?: readonly number[]): SweepRow[] {
  const axes = defAxes(def);
  const list = [...(jobs ?? records.keys())].sort((a, b) => a - b);
  const rows: SweepRow[] = [];
  for (const job of list) {
    const r = records.get(job);
    if (r === undefined) continue;
    const point = jobPoint(def, job);
    const row: SweepRow = { job, point, params: pointParams(axes, point), policy: jobPolicy(def, job), seed: r.seed, status: r.status };
    if (r.status === 'error') row.error = r.error ?? 'unknown error';
    if (r.metrics !== undefined) row.metrics = r.metrics;
    if (r.timeline !== undefined) row.timeline = r.timeline;
    rows.push(row);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// CSV

type Getter = (m: RunMetrics) => number | null;

const WORKLOAD_KEYS = [
  'vcpuLoads', 'kvmUnmaps', 'kvmRangeUnmaps', 'kvmVmFlushes', 'dirtyPasses', 'guestTlbis', 'vmsCreated', 'vmsDestroyed',
  'svaMunmaps', 'guestSvaMunmaps', 'vsmmuTraps', 'hostSwitches', 'localAsidFlushes', 'kvmRolloverFlushes', 'dmaFaults', 'devicesUnattached',
] as const;

const sum = (a: readonly number[]): number => a.reduce((x, y) => x + y, 0);

/**
 * The metric columns of results.csv, named as in `btmsim run --json` (dotted). Left out: the
 * per-opcode command counts and the source × victim matrix (in results.json); the per-SMMU DVM
 * arrays are summed (`dvm.received`, `dvm.ignored`).
 */
export const METRIC_COLUMNS: ReadonlyArray<readonly [string, Getter]> = [
  ['simulatedNs', (m) => m.simulatedNs],
  ['events', (m) => m.events],
  ['dmaTranslations', (m) => m.dmaTranslations],
  ['collateral.total', (m) => m.collateral.total],
  ...SOURCE_KEYS.map((k) => [`collateral.bySource.${k}`, (m: RunMetrics) => m.collateral.bySource[k] ?? null] as const),
  ...VICTIM_KEYS.map((k) => [`collateral.byVictim.${k}`, (m: RunMetrics) => m.collateral.byVictim[k] ?? null] as const),
  ['intended.total', (m) => m.intended.total],
  ...SOURCE_KEYS.map((k) => [`intended.bySource.${k}`, (m: RunMetrics) => m.intended.bySource[k] ?? null] as const),
  ...VICTIM_KEYS.map((k) => [`intended.byVictim.${k}`, (m: RunMetrics) => m.intended.byVictim[k] ?? null] as const),
  ['collateralRefills', (m) => m.collateralRefills],
  ['collateralRefillWalkAccesses', (m) => m.collateralRefillWalkAccesses],
  ['commands.total', (m) => m.commands.total],
  ['commands.syncs', (m) => m.commands.syncs],
  ['dvm.messages', (m) => m.dvm.messages],
  ['dvm.syncs', (m) => m.dvm.syncs],
  ['dvm.received', (m) => sum(m.dvm.receivedPerSmmu)],
  ['dvm.ignored', (m) => sum(m.dvm.ignoredPerSmmu)],
  ['vmid.kvmRollovers', (m) => m.vmid.kvmRollovers],
  ['vmid.kvmRolloverFlushes', (m) => m.vmid.kvmRolloverFlushes],
  ['vmid.smmuAllocFailures', (m) => m.vmid.smmuAllocFailures],
  ['vmid.pinned', (m) => m.vmid.pinned],
  ['vmid.pinnedPeak', (m) => m.vmid.pinnedPeak],
  ['vmid.pinFailures', (m) => m.vmid.pinFailures],
  ['vmid.timeToExhaustionNs', (m) => m.vmid.timeToExhaustionNs],
  ['vmid.devicesUnattached', (m) => m.vmid.devicesUnattached],
  ['asid.cpuRollovers', (m) => m.asid.cpuRollovers],
  ['asid.localFlushes', (m) => m.asid.localFlushes],
  ['asid.pins', (m) => m.asid.pins],
  ['asid.pinFailures', (m) => m.asid.pinFailures],
  ['translation.hits', (m) => m.translation.hits],
  ['translation.misses', (m) => m.translation.misses],
  ['translation.hitRate', (m) => m.translation.hitRate],
  ['translation.walkAccesses', (m) => m.translation.walkAccesses],
  ['translation.faults', (m) => m.translation.faults],
  ['translation.dmaTimeNs', (m) => m.translation.dmaTimeNs],
  ['translation.meanTranslationNs', (m) => m.translation.meanTranslationNs],
  ['translation.driverInvalidationTimeNs', (m) => m.translation.driverInvalidationTimeNs],
  ['translation.dvmTimeNs', (m) => m.translation.dvmTimeNs],
  ['translation.vsmmuTrapTimeNs', (m) => m.translation.vsmmuTrapTimeNs],
  ['cpu.tlbiBroadcast', (m) => m.cpu.tlbiBroadcast],
  ['cpu.tlbiLocal', (m) => m.cpu.tlbiLocal],
  ['cpu.dsb', (m) => m.cpu.dsb],
  ...WORKLOAD_KEYS.map((k) => [`workload.${k}`, (m: RunMetrics) => m.workload[k] ?? null] as const),
];

/** The columns before the metrics: job, point, one per axis (its key), policy, seed, status, error. */
export function csvHeader(def: SweepDefinition): string[] {
  return ['job', 'point', ...def.axes.map((a) => a.key), 'policy', 'seed', 'status', 'error', ...METRIC_COLUMNS.map(([k]) => k)];
}

/** A number as printed everywhere in sweep outputs: JavaScript's shortest round-trip form. */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? 'NaN' : n > 0 ? 'Infinity' : '-Infinity';
  return Object.is(n, -0) ? '0' : String(n);
}

function csvCell(v: AxisValue | null | undefined): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? formatNumber(v) : String(v);
  return /[",\r\n]/.test(s) || /^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** results.csv: RFC 4180, `\n` line ends, one row per job sorted by job index. */
export function sweepCsv(def: SweepDefinition, rows: readonly SweepRow[]): string {
  const lines = [csvHeader(def).map(csvCell).join(',')];
  for (const r of rows) {
    const cells: (AxisValue | null | undefined)[] = [r.job, r.point, ...def.axes.map((a) => r.params[a.key]), r.policy, r.seed, r.status, r.error ?? ''];
    for (const [, get] of METRIC_COLUMNS) cells.push(r.metrics ? get(r.metrics) : null);
    lines.push(cells.map(csvCell).join(','));
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// JSON

/**
 * JSON with 2-space indentation in which arrays of numbers, strings or booleans stay on one line
 * (time series would otherwise take a line per sample). Key order is the objects' own.
 */
export function formatJson(value: unknown, indent = ''): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number') return Number.isFinite(value) ? formatNumber(value) : 'null';
  if (typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  const inner = indent + '  ';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    if (value.every((v) => v === null || typeof v !== 'object')) return '[' + value.map((v) => formatJson(v)).join(', ') + ']';
    return '[\n' + value.map((v) => inner + formatJson(v, inner)).join(',\n') + '\n' + indent + ']';
  }
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return '{}';
  return '{\n' + entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${formatJson(v, inner)}`).join(',\n') + '\n' + indent + '}';
}

/** results.json: the definition (without the scenario text, which is in the report), then the rows. */
export function sweepJson(def: SweepDefinition, rows: readonly SweepRow[], shard: Shard | null = null): string {
  const failed = rows.filter((r) => r.status !== 'ok').length;
  const doc: Record<string, unknown> = {
    version: def.version,
    kind: 'btmsim-sweep',
    scenario: def.scenarioName,
    seed: def.seed,
    axes: def.axes.map((a) => ({ key: a.key, paths: a.paths, values: a.values })),
    policies: def.policies,
    samples: def.samples,
    points: def.points,
    jobs: def.jobs,
  };
  if (shard !== null) doc.shard = { index: shard.index, count: shard.count };
  doc.ok = rows.length - failed;
  doc.failed = failed;
  doc.rows = rows.map((r) => {
    const o: Record<string, unknown> = { job: r.job, point: r.point, params: r.params, policy: r.policy, seed: r.seed, status: r.status };
    if (r.error !== undefined) o.error = r.error;
    if (r.metrics !== undefined) o.metrics = r.metrics;
    if (r.timeline !== undefined) o.timeline = r.timeline;
    return o;
  });
  return formatJson(doc) + '\n';
}

// ---------------------------------------------------------------------------------------------
// Scheduling

/**
 * Relative cost of running `sc` (about its event count), to dispatch the longest jobs first
 * and to weight the ETA. Only an estimate: results never depend on it.
 */
export function estimateCost(sc: Scenario): number {
  const w = sc.workload;
  const d = sc.duration;
  if ('events' in d) return d.events;
  const us = d.ms * 1000;
  const streams = w.vms * w.devicesPerVm + w.sva.processes;
  const dma = streams * w.dma.ratePerUs * us;
  const sched = sc.cpu.count * us / w.timesliceUs;
  const kvm = w.vms * (w.kvm.unmapPerMsPerVm + w.kvm.rangeUnmapPerMsPerVm * w.kvm.rangePages / 8 + w.guestTlbiPerMsPerVm) * d.ms;
  const nestedFactor = w.nested ? 1.5 : 1;
  return Math.max(1, dma * nestedFactor + sched + kvm + streams * 50);
}
