/**
 * The benchmarks that need Node: trace replay throughput on the real QEMU trace, and the sweep
 * speedup from 1 to 2 workers (both through the built CLI code, as a user runs them).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { replayFile } from './replay.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = resolve(here, '../..');

/** The 2.1-million-line Linux arm-smmu-v3 trace of ../shared/traces (stage 1, strict). */
export const S1_STRICT = resolve(repo, '../shared/traces/s1-strict.trace.log.xz');

export interface ReplayBenchResult {
  file: string;
  lines: number;
  /** Best of the runs, ms: decompression, parsing, import, replay as recorded and statistics. */
  ms: number;
  linesPerSec: number;
}

/** `btmsim replay <file>` (xz streamed, imported, replayed as recorded): best of `repeat`. */
export async function replayBench(file = S1_STRICT, repeat = 2): Promise<ReplayBenchResult | null> {
  if (!existsSync(file)) return null;
  let best = Infinity;
  let lines = 0;
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    const r = await replayFile(file, { xz: 'wasm' });
    best = Math.min(best, performance.now() - t0);
    lines = r.lines;
  }
  return { file, lines, ms: Math.round(best), linesPerSec: Math.round(lines / (best / 1000)) };
}

export interface SweepSpeedupResult {
  grid: string;
  jobs: number;
  /** Best wall time (s) with --jobs 1 and --jobs 2. */
  seconds1: number;
  seconds2: number;
  speedup: number;
  /** results.csv was byte-identical between the two. */
  identical: boolean;
}

/**
 * Wall time of the same sweep with --jobs 1 and --jobs 2 (alternated, best of `reps`), run as a
 * child `btmsim sweep` so that worker start-up and result writing are included.
 */
export function sweepSpeedup(quick: boolean, reps = 2): SweepSpeedupResult {
  const vary = quick
    ? ['--vary', 'cpu.vmidBits+smmu.vmidBits=8,16', '--vary', 'workload.devicesPerVm=4,8']
    : ['--vary', 'cpu.vmidBits+smmu.vmidBits=8,16', '--vary', 'workload.devicesPerVm=4,8,16'];
  // Quick: 8 jobs of two policies; full: 30 jobs, every policy of the scenario (with few jobs
  // per worker, the longest job's tail bounds the speedup).
  const policies = quick ? ['--policy', 'ptm,btm-2020'] : [];
  const args = [join(repo, 'scenarios/thread-2020.yaml'), ...vary, ...policies, '--samples', '10'];
  const best: Record<number, number> = { 1: Infinity, 2: Infinity };
  let csv: string | null = null;
  let identical = true;
  let jobs = 0;
  for (let i = 0; i < reps; i++) {
    for (const j of [1, 2]) {
      const out = mkdtempSync(join(tmpdir(), 'btmsim-bench-sweep-'));
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [join(here, 'main.js'), 'sweep', ...args, '--jobs', String(j), '--no-progress', '--out', out], { encoding: 'utf8' });
      const s = (performance.now() - t0) / 1000;
      if (r.status !== 0) throw new Error(`sweep --jobs ${j} failed: ${r.stderr.trim()}`);
      const c = readFileSync(join(out, 'results.csv'), 'utf8');
      jobs = c.trim().split('\n').length - 1;
      rmSync(out, { recursive: true, force: true });
      if (csv === null) csv = c; else if (c !== csv) identical = false;
      best[j] = Math.min(best[j], s);
    }
  }
  return {
    grid: ['thread-2020.yaml', ...vary.filter((v) => v !== '--vary'), quick ? 'policies ptm,btm-2020' : 'all its policies'].join(' '), jobs,
    seconds1: Math.round(best[1] * 100) / 100, seconds2: Math.round(best[2] * 100) / 100,
    speedup: Math.round((best[1] / best[2]) * 100) / 100, identical,
  };
}
