import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Command } from 'commander';
import { runReportHtml } from '../report/html.js';
import { comparisonTable } from '../report/table.js';
import { policiesOf, runScenario } from '../sim/run.js';
import type { Timeline } from '../sim/timeline.js';
import { BUILTIN_SCENARIO_NAME, BUILTIN_SCENARIO_YAML } from '../workload/builtin.js';
import { loadScenarioText } from '../workload/load.js';
import { POLICY_NAMES, type PolicyName, type Scenario } from '../workload/schema.js';
import { UserError } from './errors.js';
import { readScenarioFile, ScenarioFileError } from './scenario-file.js';
import { checkOutputOf, formatCheck } from '../oracle/check.js';
import { parseFaultList, type FaultName } from '../oracle/faults.js';
import { scenarioSource } from './scenario-source.js';

export interface RunFlags {
  policy?: string;
  seed?: string;
  json?: boolean;
  out?: string;
  progress?: boolean;
  html?: string;
  check?: boolean;
  inject?: string;
  record?: string;
}

/**
 * Where `--record` writes each policy's trace: the path itself with one policy, else
 * `<name>.<policy><ext>` beside it (one replayable trace per run).
 */
export function recordPaths(path: string, policies: readonly PolicyName[]): Map<PolicyName, string> {
  const m = new Map<PolicyName, string>();
  if (policies.length === 1) { m.set(policies[0], path); return m; }
  const ext = extname(path);
  const stem = basename(path, ext);
  for (const p of policies) m.set(p, join(dirname(path), `${stem}.${p}${ext}`));
  return m;
}

/** The scenario named on the command line, or the built-in one. */
export function scenarioFromArg(file: string | undefined): Scenario {
  if (file === undefined) {
    const r = loadScenarioText(BUILTIN_SCENARIO_YAML, `<built-in ${BUILTIN_SCENARIO_NAME}>`);
    if (!r.ok) throw new ScenarioFileError(r.issues);
    return r.scenario;
  }
  return readScenarioFile(file);
}

export function parsePolicies(list: string | undefined): PolicyName[] | undefined {
  if (list === undefined) return undefined;
  const names = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new UserError('--policy: expected a comma-separated list of policies');
  for (const n of names) {
    if (!(POLICY_NAMES as readonly string[]).includes(n)) {
      throw new UserError(`--policy: unknown policy "${n}" (expected one of: ${POLICY_NAMES.join(', ')})`);
    }
  }
  return names as PolicyName[];
}

export function parseSeed(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(s.trim())) throw new UserError(`--seed: expected a non-negative integer, got "${s}"`);
  const n = Number(s.trim());
  if (!Number.isSafeInteger(n) || n > 0xffffffff) throw new UserError(`--seed: must be at most 4294967295, got ${s}`);
  return n;
}

export function registerRun(program: Command): void {
  program
    .command('run [scenario]')
    .description('run a scenario (default: the built-in scenario of the 2020 thread) under its policies and compare them')
    .option('--policy <list>', `comma-separated policies to compare (${POLICY_NAMES.join(', ')}); default: the scenario's compare list`)
    .option('--seed <n>', 'override the scenario seed')
    .option('--json', 'print the results as JSON instead of a table')
    .option('--out <file>', 'also write the JSON results to this file')
    .option('--html <file>', 'also write a self-contained HTML report (charts, tables, the scenario) to this file')
    .option('--check', 'also run the coherence and isolation oracle (see `btmsim check`); exit 1 on violations')
    .option('--inject <faults>', 'with --check: inject these faults (see `btmsim check --list-faults`)')
    .option('--record <file>', 'record each run as a btmsim JSONL trace for `btmsim replay` (several policies: <file>.<policy>.jsonl)')
    .option('--no-progress', 'no progress on stderr')
    .action((file: string | undefined, flags: RunFlags) => {
      let faults: FaultName[] = [];
      if (flags.inject !== undefined) {
        try { faults = parseFaultList(flags.inject); } catch (e) { throw new UserError(`--inject: ${(e as Error).message}`); }
        if (flags.check !== true) throw new UserError('--inject needs --check (or use `btmsim check --inject …`)');
      }
      const sc = scenarioFromArg(file);
      const seed = parseSeed(flags.seed);
      if (seed !== undefined) sc.seed = seed;
      const policies = policiesOf(sc, parsePolicies(flags.policy));
      const showProgress = flags.progress !== false && process.stderr.isTTY === true;
      const t0 = Date.now();
      let last = 0;
      const onProgress = showProgress
        ? (p: PolicyName, f: number): void => {
          const now = Date.now();
          if (now - last < 200 || now - t0 < 500) return;
          last = now;
          process.stderr.write(`\r${p}: ${(f * 100).toFixed(0).padStart(3)}%   `);
        }
        : undefined;
      // Recording: one file per policy, written line by line as the run goes (constant memory).
      const paths = flags.record !== undefined ? recordPaths(flags.record, policies) : null;
      const fds: number[] = [];
      const flushes: (() => void)[] = [];
      const open = (p: PolicyName): ((line: string) => void) => {
        const path = paths!.get(p)!;
        let fd: number;
        try { fd = openSync(path, 'w'); } catch (e) {
          throw new UserError(`--record: cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
        fds.push(fd);
        // Lines are batched into ~1 MiB writes: one syscall per line would dominate the run.
        let buf: string[] = [];
        let size = 0;
        const flush = (): void => { if (buf.length > 0) { writeSync(fd, buf.join('')); buf = []; size = 0; } };
        flushes.push(flush);
        return (line) => {
          buf.push(line, '\n');
          size += line.length + 1;
          if (size >= 1 << 20) flush();
        };
      };
      // The report's charts need VMID/rollover time series: sample them when --html is asked.
      const timelines: Timeline[] | undefined = flags.html !== undefined ? [] : undefined;
      let out;
      try {
        out = runScenario(sc, policies, {
          ...(onProgress !== undefined ? { onProgress } : {}),
          ...(flags.check === true ? { check: { faults, ...(file !== undefined ? { scenarioRef: file } : {}) } } : {}),
          ...(paths !== null ? { record: open } : {}),
          ...(timelines !== undefined ? { timelines: { samples: 100, out: timelines } } : {}),
        });
      } finally {
        for (const f of flushes) f();
        for (const fd of fds) closeSync(fd);
      }
      if (showProgress && Date.now() - t0 >= 500) process.stderr.write('\r' + ' '.repeat(40) + '\r');
      const json = JSON.stringify(out, null, 2) + '\n';
      if (flags.out !== undefined) {
        try { writeFileSync(flags.out, json); } catch (e) {
          throw new UserError(`--out: cannot write ${flags.out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
      }
      if (flags.html !== undefined) {
        const src = scenarioSource(file);
        const html = runReportHtml({
          output: out, timelines, scenarioText: src.text, scenarioSource: src.source, description: sc.description,
          ...(seed !== undefined ? { seedOverride: seed } : {}),
        });
        try { writeFileSync(flags.html, html); } catch (e) {
          throw new UserError(`--html: cannot write ${flags.html}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
      }
      process.stdout.write(flags.json === true ? json : comparisonTable(out));
      if (flags.check === true) {
        const verdict = checkOutputOf(out, faults);
        if (flags.json !== true) process.stdout.write('\n' + formatCheck(verdict));
        if (!verdict.clean) process.exitCode = 1;
      }
    });
}
