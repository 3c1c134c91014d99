/**
 * Which part of a sweep this process runs: `--shard i/n` (0 ≤ i < n), else a Kubernetes Indexed
 * Job (JOB_COMPLETION_INDEX, JOB_COMPLETIONS), else a Slurm job array (SLURM_ARRAY_TASK_ID,
 * SLURM_ARRAY_TASK_COUNT, with SLURM_ARRAY_TASK_MIN / _STEP when the array does not start at 0
 * or has a step), else the whole grid. `--shard 0/1` runs the whole grid whatever the environment.
 */
import { UserError } from './errors.js';
import type { Shard } from '../sweep/results.js';

export interface ShardChoice {
  /** null: the whole grid. */
  shard: Shard | null;
  /** Where it came from, for messages: `--shard`, `Kubernetes Indexed Job`, `Slurm job array`, or `none`. */
  source: string;
}

const INT = /^\d+$/;

export function parseShard(s: string, what = '--shard'): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(s);
  if (!m) throw new UserError(`${what}: expected i/n with 0 <= i < n (e.g. 0/4), got "${s}"`);
  const index = Number(m[1]), count = Number(m[2]);
  if (count < 1) throw new UserError(`${what}: the shard count must be at least 1, got ${count}`);
  if (index >= count) throw new UserError(`${what}: shard index ${index} is out of range: shards are numbered 0..${count - 1}`);
  return { index, count };
}

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v.trim() === '') return undefined;
  if (!INT.test(v.trim())) throw new UserError(`${name}=${v}: expected a non-negative integer`);
  return Number(v.trim());
}

/** The shard to run, from the flag or the environment. */
export function resolveShard(flag: string | undefined, env: NodeJS.ProcessEnv): ShardChoice {
  if (flag !== undefined) {
    const s = parseShard(flag);
    return { shard: s.count === 1 ? null : s, source: '--shard' };
  }
  const k8sIndex = envInt(env, 'JOB_COMPLETION_INDEX');
  if (k8sIndex !== undefined) {
    const n = envInt(env, 'JOB_COMPLETIONS');
    if (n === undefined) {
      throw new UserError('JOB_COMPLETION_INDEX is set (Kubernetes Indexed Job) but JOB_COMPLETIONS is not: set it to the Job\'s spec.completions in the pod template, or pass --shard i/n');
    }
    const s = parseShard(`${k8sIndex}/${n}`, `JOB_COMPLETION_INDEX=${k8sIndex}, JOB_COMPLETIONS=${n}`);
    return { shard: s.count === 1 ? null : s, source: 'Kubernetes Indexed Job' };
  }
  const id = envInt(env, 'SLURM_ARRAY_TASK_ID');
  if (id !== undefined) {
    const n = envInt(env, 'SLURM_ARRAY_TASK_COUNT');
    if (n === undefined) throw new UserError('SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not (Slurm 18.08+ sets both): pass --shard i/n');
    const min = envInt(env, 'SLURM_ARRAY_TASK_MIN') ?? 0;
    const step = envInt(env, 'SLURM_ARRAY_TASK_STEP') ?? 1;
    const off = id - min;
    if (off < 0 || step < 1 || off % step !== 0) {
      throw new UserError(`SLURM_ARRAY_TASK_ID=${id} does not fit the array (min ${min}, step ${step}): pass --shard i/n`);
    }
    const s = parseShard(`${off / step}/${n}`, `SLURM_ARRAY_TASK_ID=${id}, SLURM_ARRAY_TASK_COUNT=${n}`);
    return { shard: s.count === 1 ? null : s, source: 'Slurm job array' };
  }
  return { shard: null, source: 'none' };
}

/** Directory name of a shard's results under --out. */
export function shardDirName(s: Shard): string {
  return `shard-${s.index}-of-${s.count}`;
}
