import type { Command } from 'commander';
import { checkScenario, formatCheck, formatFaultList } from '../oracle/check.js';
import { parseFaultList, type FaultName } from '../oracle/faults.js';
import { policiesOf } from '../sim/run.js';
import type { PolicyName } from '../workload/schema.js';
import { UserError } from './errors.js';
import { parsePolicies, parseSeed, scenarioFromArg } from './run.js';

export interface CheckFlags {
  policy?: string;
  inject?: string;
  seed?: string;
  json?: boolean;
  listFaults?: boolean;
  max?: string;
  progress?: boolean;
}

/** `--inject a,b` → fault names; a UserError (exit 2) naming the known faults otherwise. */
export function parseInject(list: string | undefined): FaultName[] {
  if (list === undefined) return [];
  try {
    const f = parseFaultList(list);
    if (f.length === 0) throw new Error('expected a comma-separated list of faults (see --list-faults)');
    return f;
  } catch (e) {
    throw new UserError(`--inject: ${(e as Error).message}`);
  }
}

function parseMax(s: string | undefined): number {
  if (s === undefined) return 3;
  if (!/^\d+$/.test(s.trim())) throw new UserError(`--max: expected a non-negative integer, got "${s}"`);
  return Number(s.trim());
}

export function registerCheck(program: Command): void {
  program
    .command('check [scenario]')
    .description('run a scenario under the coherence and isolation oracle: can a device or a VM use a translation it must not? ' +
      'Exit 0 when clean, 1 with violations')
    .option('--policy <list>', 'comma-separated policies to check; default: the scenario\'s compare list')
    .option('--inject <faults>', 'comma-separated faults to inject (see --list-faults)')
    .option('--seed <n>', 'override the scenario seed')
    .option('--json', 'print every verdict and every violation as JSON')
    .option('--max <n>', 'violations printed in full (default 3)')
    .option('--list-faults', 'list the injectable faults, the real bug each models and what a scenario needs for it')
    .option('--no-progress', 'no progress on stderr')
    .action((file: string | undefined, flags: CheckFlags) => {
      if (flags.listFaults === true) { process.stdout.write(formatFaultList()); return; }
      const faults = parseInject(flags.inject);
      const max = parseMax(flags.max);
      const sc = scenarioFromArg(file);
      const seed = parseSeed(flags.seed);
      if (seed !== undefined) sc.seed = seed;
      const policies = policiesOf(sc, parsePolicies(flags.policy));
      const showProgress = flags.progress !== false && process.stderr.isTTY === true && flags.json !== true;
      const t0 = Date.now();
      let last = 0;
      const out = checkScenario(sc, policies, {
        faults,
        ...(file !== undefined ? { scenarioRef: file } : {}),
        ...(showProgress ? {
          onProgress: (p: PolicyName, f: number) => {
            const now = Date.now();
            if (now - last < 200 || now - t0 < 500) return;
            last = now;
            process.stderr.write(`\rchecking ${p}: ${(f * 100).toFixed(0).padStart(3)}%   `);
          },
        } : {}),
      });
      if (showProgress && Date.now() - t0 >= 500) process.stderr.write('\r' + ' '.repeat(40) + '\r');
      process.stdout.write(flags.json === true ? JSON.stringify(out, null, 2) + '\n' : formatCheck(out, max));
      if (!out.clean) process.exitCode = 1;
    });
}
