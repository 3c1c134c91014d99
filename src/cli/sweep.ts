/**
 * `btmsim sweep [scenario] --vary key=values … --out dir`: a grid over scenario fields × the
 * scenario's policies, run on a pool of worker threads (built JavaScript), journaled as jobs
 * finish, resumable, shardable across machines. See README "Sweeps" and docs/distributed.md.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { parseDocument, stringify } from 'yaml';
import { policiesOf } from '../sim/run.js';
import {
  applyPoint, checkAxes, cloneJson, gridSize, parseVary, pointLabel, setPath, SweepSpecError, type SweepAxis,
} from '../sweep/grid.js';
import {
  definitionOf, estimateCost, jobPoint, jobPolicy, latestRecords, rowsOf, shardJobs, type JobRecord, type SweepDefinition,
} from '../sweep/results.js';
import { loadScenarioText } from '../workload/load.js';
import { POLICY_NAMES, type Scenario } from '../workload/schema.js';
import { UserError } from './errors.js';
import { runPool, type PoolJob } from './pool.js';
import { ProgressBar } from './progress.js';
import { parsePolicies, parseSeed } from './run.js';
import { ScenarioFileError } from './scenario-file.js';
import { scenarioSource } from './scenario-source.js';
import { resolveShard, shardDirName } from './shard.js';
import { Journal, JOURNAL, makeManifest, readJournal, readManifest, writeManifest, writeOutputs } from './sweep-files.js';
import type { SweepJobMessage, SweepJobValue } from './sweep-worker.js';

export interface SweepFlags {
  vary: string[];
  policy?: string;
  seed?: string;
  jobs?: string;
  out: string;
  resume?: boolean;
  shard?: string;
  samples?: string;
  progress?: boolean;
}

export const DEFAULT_SAMPLES = 50;

/** Validate a raw scenario object; the first issues as one line, or the scenario. */
function validateRaw(raw: Record<string, unknown>): { ok: true; scenario: Scenario } | { ok: false; message: string } {
  const r = loadScenarioText(stringify(raw), '<sweep>');
  if (r.ok) return r;
  const shown = r.issues.slice(0, 3).map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`));
  if (r.issues.length > 3) shown.push(`… and ${r.issues.length - 3} more`);
  return { ok: false, message: shown.join('; ') };
}

export interface SweepPlan {
  def: SweepDefinition;
  axes: SweepAxis[];
  /** Validated scenario of each grid point. */
  points: Scenario[];
}

/**
 * Everything checked before anything runs: the base scenario, each --vary (syntax, path, and
 * every value alone against the schema), every grid point, the policies.
 */
export function planSweep(file: string | undefined, flags: Pick<SweepFlags, 'vary' | 'policy' | 'seed' | 'samples'>): SweepPlan {
  const { text, source } = scenarioSource(file);
  const base = loadScenarioText(text, source);
  if (!base.ok) throw new ScenarioFileError(base.issues);
  let raw = (parseDocument(text).toJS({ maxAliasCount: 100 }) ?? {}) as Record<string, unknown>;
  raw = cloneJson(raw);
  const seed = parseSeed(flags.seed);
  if (seed !== undefined) raw.seed = seed;
  const baseSc = seed !== undefined ? { ...base.scenario, seed } : base.scenario;

  let axes: SweepAxis[];
  try {
    axes = flags.vary.map(parseVary);
    checkAxes(axes);
  } catch (e) {
    if (e instanceof SweepSpecError) throw new UserError(e.message);
    throw e;
  }
  // Each value alone: a mistake is reported against its own --vary flag.
  for (const a of axes) {
    for (const v of a.values) {
      const one = cloneJson(raw);
      try {
        for (const p of a.paths) setPath(one, p, v, `--vary ${a.flag}`);
      } catch (e) {
        if (e instanceof SweepSpecError) throw new UserError(e.message);
        throw e;
      }
      const r = validateRaw(one);
      if (!r.ok) throw new UserError(`--vary ${a.flag}: value ${JSON.stringify(v)}: ${r.message}`);
    }
  }
  const n = gridSize(axes);
  const points: Scenario[] = [];
  for (let p = 0; p < n; p++) {
    const r = validateRaw(applyPoint(raw, axes, p));
    if (!r.ok) throw new UserError(`--vary: grid point ${pointLabel(axes, p)} is not a valid scenario: ${r.message}`);
    points.push(r.scenario);
  }
  const policies = policiesOf(baseSc, parsePolicies(flags.policy));
  const samples = parseSamples(flags.samples);
  const def = definitionOf({ scenarioName: baseSc.name, scenarioText: text, seed: baseSc.seed, axes, policies, samples });
  return { def, axes, points };
}

function parseSamples(s: string | undefined): number {
  if (s === undefined) return DEFAULT_SAMPLES;
  if (!/^\d+$/.test(s.trim()) || Number(s) > 10000) throw new UserError(`--samples: expected an integer from 0 to 10000, got "${s}"`);
  return Number(s);
}

function parseJobs(s: string | undefined): number {
  if (s === undefined) return availableParallelism();
  if (!/^\d+$/.test(s.trim()) || Number(s) < 1 || Number(s) > 1024) throw new UserError(`--jobs: expected a number of workers from 1 to 1024, got "${s}"`);
  return Number(s);
}

/** dist/cli/sweep-worker.js, next to this file when built; refuse clearly when it is missing. */
export function workerFile(here: string = import.meta.url): URL {
  const url = here.endsWith('.ts') ? new URL('../../dist/cli/sweep-worker.js', here) : new URL('./sweep-worker.js', here);
  if (!existsSync(fileURLToPath(url))) {
    throw new UserError(`sweep runs its workers from the built JavaScript, and ${fileURLToPath(url)} is missing: run \`npm run build\` first`);
  }
  return url;
}

function relaunchHint(file: string | undefined, flags: SweepFlags): string {
  const parts = ['btmsim sweep'];
  if (file !== undefined) parts.push(file);
  for (const v of flags.vary) parts.push(`--vary '${v}'`);
  if (flags.policy !== undefined) parts.push(`--policy ${flags.policy}`);
  if (flags.seed !== undefined) parts.push(`--seed ${flags.seed}`);
  if (flags.samples !== undefined) parts.push(`--samples ${flags.samples}`);
  if (flags.shard !== undefined) parts.push(`--shard ${flags.shard}`);
  parts.push(`--out ${flags.out}`, '--resume');
  return parts.join(' ');
}

export async function runSweep(file: string | undefined, flags: SweepFlags): Promise<void> {
  const plan = planSweep(file, flags);
  const { def, points } = plan;
  const workers = parseJobs(flags.jobs);
  const { shard, source: shardSource } = resolveShard(flags.shard, process.env);
  const dir = shard ? join(flags.out, shardDirName(shard)) : flags.out;
  const wfile = workerFile();

  // The manifest: a new sweep, or the same one resumed.
  const manifest = makeManifest(def, shard);
  const existing = readManifest(dir);
  if (existing !== null) {
    if (flags.resume !== true) {
      throw new UserError(`${dir} already holds a sweep (${join(dir, 'manifest.json')}): add --resume to continue it, or choose another --out`);
    }
    if (existing.hash !== manifest.hash) {
      throw new UserError(`--resume: ${dir} holds a different sweep (its scenario, --vary, --policy, --seed or --samples differ): choose another --out`);
    }
    const a = existing.shard, b = shard;
    if ((a === null) !== (b === null) || (a && b && (a.index !== b.index || a.count !== b.count))) {
      throw new UserError(`--resume: ${dir} holds shard ${a ? `${a.index}/${a.count}` : 'none'} of this sweep, not ${b ? `${b.index}/${b.count}` : 'the whole grid'}`);
    }
  } else {
    try { mkdirSync(dir, { recursive: true }); } catch (e) {
      throw new UserError(`--out: cannot create ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    writeManifest(dir, manifest);
  }

  const journalPath = join(dir, JOURNAL);
  const prior = readJournal(journalPath, def);
  if (prior.bad > 0) process.stderr.write(`sweep: ${journalPath}: skipped ${prior.bad} unreadable line(s)\n`);
  const done = latestRecords(prior.records);
  const mine = shardJobs(def, shard);
  const todo = mine.filter((j) => done.get(j)?.status !== 'ok');
  const already = mine.length - todo.length;

  const cost = (j: number): number => estimateCost(points[jobPoint(def, j)]);
  const order = [...todo].sort((a, b) => cost(b) - cost(a) || a - b);
  const jobs: PoolJob<SweepJobMessage>[] = order.map((j) => ({
    id: j, message: { scenario: points[jobPoint(def, j)], policy: jobPolicy(def, j), samples: def.samples },
  }));

  const say = (s: string): void => { process.stderr.write(`sweep: ${s}\n`); };
  const nWorkers = Math.max(1, Math.min(workers, todo.length));
  const shardText = shard ? `shard ${shard.index}/${shard.count}${shardSource !== '--shard' ? ` (${shardSource})` : ''}: ` : '';
  say(`${shardText}${mine.length} of ${def.jobs} runs (${def.points} grid point${def.points === 1 ? '' : 's'} × ${def.policies.length} polic${def.policies.length === 1 ? 'y' : 'ies'})`
    + (already > 0 ? `, ${already} already done` : '') + (todo.length > 0 ? `, on ${nWorkers} worker${nWorkers === 1 ? '' : 's'}` : '') + ` → ${dir}`);

  const journal = new Journal(journalPath, prior.validBytes);
  const bar = flags.progress !== false
    ? new ProgressBar(process.stderr, { total: mine.length, already, costTotal: todo.reduce((s, j) => s + cost(j), 0), label: 'sweep' })
    : null;
  const fresh: JobRecord[] = [];
  let interrupted: NodeJS.Signals | null = null;

  const pool = runPool<SweepJobMessage, SweepJobValue>({
    workerFile: wfile,
    size: nWorkers,
    jobs,
    onResult: (id, res) => {
      const sc = points[jobPoint(def, id)];
      const rec: JobRecord = { job: id, policy: jobPolicy(def, id), seed: sc.seed, status: res.ok ? 'ok' : 'error' };
      if (res.ok) {
        rec.metrics = res.value.result.metrics;
        if (def.samples > 0) rec.timeline = res.value.timeline;
      } else {
        rec.error = res.error;
      }
      journal.append(rec);
      fresh.push(rec);
      bar?.tick(res.ok, cost(id));
    },
  });
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted !== null) return;
    interrupted = sig;
    void pool.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    bar?.start();
    await pool.done;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    journal.close();
    bar?.finish();
  }
  if (interrupted !== null) {
    const finished = already + fresh.filter((r) => r.status === 'ok').length;
    throw new UserError(`interrupted (${interrupted}) with ${finished} of ${mine.length} runs done, all kept in ${journalPath}; continue with:\n  ${relaunchHint(file, flags)}`,
      interrupted === 'SIGINT' ? 130 : 143);
  }

  const records = latestRecords([...prior.records, ...fresh]);
  const rows = rowsOf(def, records, mine);
  const files = writeOutputs(dir, def, rows, shard);
  const failed = rows.filter((r) => r.status !== 'ok').length;
  say(`${rows.length - failed} ok, ${failed} failed; wrote ${files.join(', ')}`);
  if (shard) say(`when every shard is done: btmsim merge ${flags.out} --out <merged dir>`);
  if (failed > 0) {
    throw new UserError(`${failed} of ${rows.length} runs failed (see the status and error columns of ${files[0]})`, 1);
  }
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function registerSweep(program: Command): void {
  program
    .command('sweep [scenario]')
    .description('run a grid of scenario variations × policies on all cores; write results.csv, results.json and report.html')
    .option('--vary <key=values>', 'a grid axis over a scenario field (dotted path; a+b sets several): v1,v2,… or a..b[:step] or a..b:x<factor>; repeat for more axes', collect, [])
    .option('--policy <list>', `comma-separated policies (${POLICY_NAMES.join(', ')}); default: the scenario's compare list`)
    .option('--seed <n>', 'override the scenario seed (a seed axis overrides it per point)')
    .option('-j, --jobs <n>', 'worker threads (default: the number of CPUs)')
    .requiredOption('--out <dir>', 'output directory (with a shard: <dir>/shard-<i>-of-<n>)')
    .option('--resume', 'continue the sweep in --out (or start it): keeps finished runs, retries failed ones')
    .option('--shard <i/n>', 'run shard i of n (0 <= i < n); default: from JOB_COMPLETION_INDEX/JOB_COMPLETIONS or SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT; 0/1 = all')
    .option('--samples <n>', `time-series samples per run for the report (default ${DEFAULT_SAMPLES}; 0 = none)`)
    .option('--no-progress', 'no progress bar on stderr')
    .action(async (file: string | undefined, flags: SweepFlags) => {
      await runSweep(file, flags);
    });
}
