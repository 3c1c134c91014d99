import { describe, expect, it } from 'vitest';
import { parseShard, resolveShard, shardDirName } from '../../src/cli/shard.js';
import { UserError } from '../../src/cli/errors.js';
import { definitionOf, shardJobs } from '../../src/sweep/results.js';
import { parseVary } from '../../src/sweep/grid.js';

describe('shard detection', () => {
  it('explicit --shard i/n wins over the environment', () => {
    const env = { JOB_COMPLETION_INDEX: '3', JOB_COMPLETIONS: '4', SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '2' };
    expect(resolveShard('1/3', env)).toEqual({ shard: { index: 1, count: 3 }, source: '--shard' });
    // 0/1 is the whole grid, whatever the environment says.
    expect(resolveShard('0/1', env)).toEqual({ shard: null, source: '--shard' });
  });

  it('a Kubernetes Indexed Job: JOB_COMPLETION_INDEX of JOB_COMPLETIONS', () => {
    expect(resolveShard(undefined, { JOB_COMPLETION_INDEX: '2', JOB_COMPLETIONS: '4' }))
      .toEqual({ shard: { index: 2, count: 4 }, source: 'Kubernetes Indexed Job' });
    expect(() => resolveShard(undefined, { JOB_COMPLETION_INDEX: '2' })).toThrow(/JOB_COMPLETIONS is not/);
    expect(() => resolveShard(undefined, { JOB_COMPLETION_INDEX: '4', JOB_COMPLETIONS: '4' })).toThrow(/out of range/);
    expect(() => resolveShard(undefined, { JOB_COMPLETION_INDEX: 'x', JOB_COMPLETIONS: '4' })).toThrow(UserError);
  });

  it('Kubernetes wins over Slurm when both are set', () => {
    expect(resolveShard(undefined, { JOB_COMPLETION_INDEX: '0', JOB_COMPLETIONS: '2', SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '2' }).source)
      .toBe('Kubernetes Indexed Job');
  });

  it('a Slurm job array: SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT, offset by _MIN and _STEP', () => {
    expect(resolveShard(undefined, { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '3' }))
      .toEqual({ shard: { index: 0, count: 3 }, source: 'Slurm job array' });
    // --array=1-3
    expect(resolveShard(undefined, { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '1' }).shard)
      .toEqual({ index: 2, count: 3 });
    // --array=0-8:4 → ids 0, 4, 8
    expect(resolveShard(undefined, { SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_STEP: '4' }).shard)
      .toEqual({ index: 1, count: 3 });
    expect(() => resolveShard(undefined, { SLURM_ARRAY_TASK_ID: '1' })).toThrow(/SLURM_ARRAY_TASK_COUNT/);
    expect(() => resolveShard(undefined, { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_COUNT: '3' })).toThrow(/out of range/);
  });

  it('no flag and no batch environment: the whole grid', () => {
    expect(resolveShard(undefined, {})).toEqual({ shard: null, source: 'none' });
    // A one-task array is the whole grid.
    expect(resolveShard(undefined, { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '1' }).shard).toBeNull();
  });

  it.each(['1', '1/', '/2', 'a/b', '2/2', '3/2', '0/0', '-1/2'])('--shard %s is refused', (s) => {
    expect(() => parseShard(s)).toThrow(UserError);
  });

  it('shards partition the jobs, interleaved; directory names', () => {
    const def = definitionOf({ scenarioName: 's', scenarioText: '', seed: 1, axes: [parseVary('cpu.count=1..7')], policies: ['ptm', 'btm-2020'], samples: 0 });
    expect(def.jobs).toBe(14);
    const parts = [0, 1, 2].map((i) => shardJobs(def, { index: i, count: 3 }));
    expect(parts[0]).toEqual([0, 3, 6, 9, 12]);
    expect(parts.flat().sort((a, b) => a - b)).toEqual([...Array(14).keys()]);
    expect(shardJobs(def, null)).toEqual([...Array(14).keys()]);
    expect(shardDirName({ index: 1, count: 3 })).toBe('shard-1-of-3');
  });
});
