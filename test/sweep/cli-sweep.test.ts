/**
 * The built CLI end to end (`npm test` builds first): sweep on 1 and 2 workers, kill and resume,
 * a failing job, shards and merge, run --html.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'dist/cli/main.js');
const built = existsSync(bin) && existsSync(join(root, 'dist/cli/sweep-worker.js'));

/** The environment without any batch-system variables (so no shard is detected by accident). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('SLURM_') || k.startsWith('JOB_COMPLETION')) delete env[k];
  return { ...env, ...extra };
}

function cli(args: string[], extraEnv: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root, env: cleanEnv(extraEnv) });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const tmp = mkdtempSync(join(tmpdir(), 'btmsim-sweep-'));
const scenario = join(tmp, 'tiny.yaml');
writeFileSync(scenario, `name: tiny
seed: 3
duration: { ms: 1 }
compare: [ptm, btm-2020]
workload: { vms: 2, devicesPerVm: 1, sva: { processes: 1, hostProcesses: 2 } }
`);
// 2 × 2 grid points × 2 policies = 8 jobs.
const GRID = ['--vary', 'cpu.vmidBits+smmu.vmidBits=8,16', '--vary', 'workload.devicesPerVm=1..2', '--samples', '8'];
const OUTPUTS = ['results.csv', 'results.json', 'report.html'];

const read = (dir: string): Record<string, string> => Object.fromEntries(OUTPUTS.map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
const journalLines = (dir: string): string[] => {
  const p = join(dir, 'jobs.jsonl');
  return existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter((l) => l !== '') : [];
};

describe.runIf(built)('btmsim sweep / merge (built CLI)', () => {
  let reference: Record<string, string>;

  it('--jobs 1 and --jobs 2 write byte-identical results.csv, results.json and report.html', () => {
    const a = join(tmp, 'j1'), b = join(tmp, 'j2');
    const r1 = cli(['sweep', scenario, ...GRID, '--jobs', '1', '--out', a]);
    expect(r1.err).toContain('8 of 8 runs');
    expect(r1.code).toBe(0);
    const r2 = cli(['sweep', scenario, ...GRID, '--jobs', '2', '--out', b]);
    expect(r2.code).toBe(0);
    reference = read(a);
    expect(read(b)).toEqual(reference);
    // The progress bar (non-terminal: plain lines) ends with done/total.
    expect(r2.err).toMatch(/sweep 8\/8 \(100%\)/);
    // Rows sorted by job, one per job; the CSV has the axes as columns.
    const csv = reference['results.csv'].trimEnd().split('\n');
    expect(csv).toHaveLength(9);
    expect(csv[0].startsWith('job,point,cpu.vmidBits+smmu.vmidBits,workload.devicesPerVm,policy,seed,status,error,simulatedNs,')).toBe(true);
    expect(csv.slice(1).map((l) => l.split(',').slice(0, 7).join(','))).toEqual([
      '0,0,8,1,ptm,3,ok', '1,0,8,1,btm-2020,3,ok', '2,1,8,2,ptm,3,ok', '3,1,8,2,btm-2020,3,ok',
      '4,2,16,1,ptm,3,ok', '5,2,16,1,btm-2020,3,ok', '6,3,16,2,ptm,3,ok', '7,3,16,2,btm-2020,3,ok',
    ]);
    const json = JSON.parse(reference['results.json']);
    expect(json.rows).toHaveLength(8);
    expect(json.rows[7].params).toEqual({ 'cpu.vmidBits+smmu.vmidBits': 16, 'workload.devicesPerVm': 2 });
    expect(json.rows[7].timeline.tNs).toHaveLength(9);
    // The report: SVG charts and the scenario.
    expect(reference['report.html']).toContain('<svg');
    expect(reference['report.html']).toContain('name: tiny');
    // A run from the sweep equals `btmsim run` of the same point.
    const point = join(tmp, 'point.yaml');
    writeFileSync(point, readFileSync(scenario, 'utf8') + 'cpu: { vmidBits: 16 }\nsmmu: { vmidBits: 16 }\n');
    const run = JSON.parse(cli(['run', point, '--json', '--policy', 'btm-2020']).out);
    expect(json.rows[5].metrics).toEqual(run.results[0].metrics);
  });

  it('an existing sweep directory is refused without --resume; --resume of a finished sweep runs nothing', () => {
    const a = join(tmp, 'j1');
    const r = cli(['sweep', scenario, ...GRID, '--out', a]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('already holds a sweep');
    const again = cli(['sweep', scenario, ...GRID, '--out', a, '--resume']);
    expect(again.code).toBe(0);
    expect(again.err).toContain('8 already done');
    expect(read(a)).toEqual(reference);
    expect(journalLines(a)).toHaveLength(8);
    const other = cli(['sweep', scenario, '--vary', 'workload.devicesPerVm=1,3', '--out', a, '--resume']);
    expect(other.code).toBe(2);
    expect(other.err).toContain('holds a different sweep');
  });

  it('survives being killed: --resume completes it with the same bytes, no row lost or duplicated', async () => {
    const dir = join(tmp, 'killed');
    const child = spawn(process.execPath, [bin, 'sweep', scenario, ...GRID, '--jobs', '1', '--out', dir],
      { cwd: root, env: cleanEnv({ BTMSIM_TEST_SLOW_MS: '300' }), stdio: 'ignore' });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    const t0 = Date.now();
    while (journalLines(dir).length < 2 && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    await exited;
    const before = journalLines(dir).length;
    expect(before).toBeGreaterThanOrEqual(2);
    expect(before).toBeLessThan(8);
    expect(existsSync(join(dir, 'results.csv'))).toBe(false);
    // A torn last line (killed mid-write) must be dropped, not crash the resume.
    writeFileSync(join(dir, 'jobs.jsonl'), readFileSync(join(dir, 'jobs.jsonl'), 'utf8') + '{"job":7,"poli');
    const r = cli(['sweep', scenario, ...GRID, '--jobs', '2', '--out', dir, '--resume']);
    expect(r.code).toBe(0);
    expect(r.err).toContain(`${before} already done`);
    expect(read(dir)).toEqual(reference);
    const jobs = journalLines(dir).map((l) => JSON.parse(l).job as number).sort((x, y) => x - y);
    expect(jobs).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('SIGINT stops the sweep, keeps the journal and says how to resume', async () => {
    const dir = join(tmp, 'interrupted');
    const child = spawn(process.execPath, [bin, 'sweep', scenario, ...GRID, '--jobs', '1', '--out', dir],
      { cwd: root, env: cleanEnv({ BTMSIM_TEST_SLOW_MS: '300' }), stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => { err += String(d); });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    const t0 = Date.now();
    while (journalLines(dir).length < 1 && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(err).toContain('interrupted (SIGINT)');
    expect(err).toContain('--resume');
    const r = cli(['sweep', scenario, ...GRID, '--out', dir, '--resume']);
    expect(r.code).toBe(0);
    expect(read(dir)).toEqual(reference);
  });

  it('a failing job is recorded with its error and does not stop the others (exit 1)', () => {
    const dir = join(tmp, 'failing');
    // Job 1 throws; job 6 kills its worker thread (the pool records it and starts another).
    const r = cli(['sweep', scenario, ...GRID, '--jobs', '2', '--out', dir], { BTMSIM_TEST_FAIL_JOBS: '1', BTMSIM_TEST_CRASH_JOBS: '6' });
    expect(r.code).toBe(1);
    expect(r.err).toContain('2 of 8 runs failed');
    const csv = readFileSync(join(dir, 'results.csv'), 'utf8').trimEnd().split('\n').slice(1);
    expect(csv).toHaveLength(8);
    expect(csv.map((l) => l.split(',')[6])).toEqual(['ok', 'error', 'ok', 'ok', 'ok', 'ok', 'error', 'ok']);
    expect(csv[1]).toContain('injected failure for job 1');
    expect(csv[6]).toContain('worker exited with code 3');
    const refRows = reference['results.csv'].trimEnd().split('\n').slice(1);
    expect(csv[2]).toBe(refRows[2]);
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('Failed runs');
    // --resume retries the failed jobs; without the injected failure the sweep completes.
    const again = cli(['sweep', scenario, ...GRID, '--out', dir, '--resume']);
    expect(again.code).toBe(0);
    expect(again.err).toContain('6 already done');
    expect(read(dir)).toEqual(reference);
  });

  it('merges 2 shards (--shard) into the bytes of the unsharded sweep', () => {
    const out = join(tmp, 'sh2');
    for (const i of [0, 1]) {
      const r = cli(['sweep', scenario, ...GRID, '--shard', `${i}/2`, '--out', out]);
      expect(r.code).toBe(0);
      expect(r.err).toContain(`shard ${i}/2: 4 of 8 runs`);
    }
    expect(readdirSync(out).sort()).toEqual(['shard-0-of-2', 'shard-1-of-2']);
    const m = cli(['merge', out, '--out', join(tmp, 'merged2')]);
    expect(m.code).toBe(0);
    expect(read(join(tmp, 'merged2'))).toEqual(reference);
  });

  it('merges 3 shards found from Kubernetes, Slurm and --shard into the same bytes; an incomplete set is refused', () => {
    const out = join(tmp, 'sh3');
    const runs: [string[], Record<string, string>, string][] = [
      [[], { JOB_COMPLETION_INDEX: '0', JOB_COMPLETIONS: '3' }, 'Kubernetes Indexed Job'],
      [[], { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '1' }, 'Slurm job array'],
      [['--shard', '2/3'], {}, ''],
    ];
    for (const [flags, env, source] of runs) {
      const r = cli(['sweep', scenario, ...GRID, ...flags, '--out', out], env);
      expect(r.code).toBe(0);
      if (source) expect(r.err).toContain(source);
    }
    const dirs = readdirSync(out).sort();
    expect(dirs).toEqual(['shard-0-of-3', 'shard-1-of-3', 'shard-2-of-3']);
    const partial = cli(['merge', join(out, dirs[0]), join(out, dirs[2]), '--out', join(tmp, 'merged-partial')]);
    expect(partial.code).toBe(2);
    expect(partial.err).toMatch(/merge: 3 of 8 runs are missing/);
    const m = cli(['merge', ...dirs.map((d) => join(out, d)), '--out', join(tmp, 'merged3')]);
    expect(m.code).toBe(0);
    expect(read(join(tmp, 'merged3'))).toEqual(reference);
    // A different sweep does not merge.
    const other = join(tmp, 'other');
    expect(cli(['sweep', scenario, '--vary', 'workload.devicesPerVm=1', '--out', other]).code).toBe(0);
    const bad = cli(['merge', join(out, dirs[0]), other, '--out', join(tmp, 'merged-bad')]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('is a different sweep');
  });

  it('bad flags are one-line errors (exit 2) before anything runs', () => {
    const cases: [string[], RegExp][] = [
      [['--vary', 'cpu.vmidBits=8,12'], /--vary cpu\.vmidBits=8,12: value 12: cpu\.vmidBits/],
      [['--vary', 'workload.nope=1'], /--vary workload\.nope=1: value 1: .*nope/],
      [['--vary', 'cpu.count=4..1'], /bad range/],
      [['--vary', 'cpu.count=1', '--jobs', '0'], /--jobs/],
      [['--vary', 'cpu.count=1', '--shard', '3/3'], /out of range/],
      [['--vary', 'cpu.count=1', '--policy', 'nope'], /unknown policy/],
    ];
    for (const [flags, msg] of cases) {
      const dir = join(tmp, 'bad');
      const r = cli(['sweep', scenario, ...flags, '--out', dir]);
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.err).toMatch(msg);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(existsSync(dir)).toBe(false);
    }
    expect(cli(['sweep', scenario, '--vary', 'cpu.count=1']).err).toContain("required option '--out <dir>'");
  });

  it('run --html writes a self-contained report with charts and the scenario', () => {
    const file = join(tmp, 'run.html');
    const r = cli(['run', scenario, '--html', file, '--seed', '4']);
    expect(r.code).toBe(0);
    const html = readFileSync(file, 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('id="time-kvmVmids"');
    expect(html).toContain('name: tiny');
    expect(html).toContain('--seed 4');
    expect(html).not.toMatch(/\b(src|href)=["']?https?:/);
  });
});
