/**
 * docs/distributed.md: the Kubernetes manifest's container arguments and the Slurm array script
 * are run as written against the built CLI, with the batch system's variables set (for one
 * shard of 70, so that it is a single short run).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'dist/cli/main.js');
const built = existsSync(bin) && existsSync(join(root, 'dist/cli/sweep-worker.js'));
const doc = readFileSync(join(root, 'docs/distributed.md'), 'utf8');
const blocks = (lang: string): string[] => [...doc.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]);
const tmp = mkdtempSync(join(tmpdir(), 'btmsim-dist-'));

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('SLURM_') || k.startsWith('JOB_COMPLETION')) delete env[k];
  return { ...env, ...extra };
}

interface Container { name: string; command: string[]; args: string[]; env: { name: string; value: string }[] }

describe('docs/distributed.md', () => {
  const job = parse(blocks('yaml').find((b) => b.includes('kind: Job'))!) as {
    kind: string;
    spec: { completionMode: string; completions: number; podFailurePolicy: { rules: { onExitCodes?: { containerName: string } }[] }; template: { spec: { containers: Container[]; restartPolicy: string } } };
  };
  const c = job.spec.template.spec.containers[0];

  it('the Kubernetes manifest is an Indexed Job whose JOB_COMPLETIONS equals its completions', () => {
    expect(job.kind).toBe('Job');
    expect(job.spec.completionMode).toBe('Indexed');
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
    expect(c.env.find((e) => e.name === 'JOB_COMPLETIONS')?.value).toBe(String(job.spec.completions));
    for (const r of job.spec.podFailurePolicy.rules) if (r.onExitCodes) expect(r.onExitCodes.containerName).toBe(c.name);
    expect(c.args[0]).toBe('sweep');
    expect(c.args).toContain('--resume');
    expect(c.command).toEqual(['node', '/btmsim/dist/cli/main.js']);
  });

  it.runIf(built)('the manifest\'s arguments run as a shard of a Kubernetes Indexed Job', () => {
    const args = [...c.args];
    const out = join(tmp, 'k8s');
    args[args.indexOf('--out') + 1] = out;
    const r = spawnSync(process.execPath, [bin, ...args], {
      cwd: root, encoding: 'utf8', env: cleanEnv({ JOB_COMPLETION_INDEX: '0', JOB_COMPLETIONS: '70' }),
    });
    expect(r.stderr).toContain('shard 0/70 (Kubernetes Indexed Job): 1 of 70 runs (14 grid points × 5 policies)');
    expect(r.status).toBe(0);
    expect(existsSync(join(out, 'shard-0-of-70', 'results.csv'))).toBe(true);
  });

  it.runIf(built)('the Slurm array script runs as a shard of a job array; merge is invoked as documented', () => {
    const script = blocks('bash').find((b) => b.includes('#SBATCH --array'))!;
    expect(script).toMatch(/#SBATCH --array=0-3/);
    const out = join(tmp, 'slurm');
    const r = spawnSync('bash', ['-c', script], {
      cwd: root, encoding: 'utf8',
      env: cleanEnv({ SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '70', SLURM_ARRAY_TASK_MIN: '0', SLURM_SUBMIT_DIR: root, SLURM_CPUS_PER_TASK: '1', OUT: out }),
    });
    expect(r.stderr).toContain('shard 0/70 (Slurm job array): 1 of 70 runs');
    expect(r.status).toBe(0);
    // The documented merge line, on this one shard: refused, naming what is missing.
    const wrap = /--wrap '([^']+)'/.exec(doc)![1].replace('results/vmid-bits-merged', join(tmp, 'merged')).replace('results/vmid-bits', out);
    const m = spawnSync('bash', ['-c', wrap], { cwd: root, encoding: 'utf8', env: cleanEnv({}) });
    expect(m.status).toBe(2);
    expect(m.stderr).toContain('merge: 69 of 70 runs are missing');
  });
});
