/**
 * Trace replay throughput: lines per second on the full s1-strict QEMU trace (2.1 M lines,
 * 247 MB raw, 10.9 MB xz), decompression included. Not wired into any CLI: call
 * `replayBench()` from a script or a test, e.g.
 *
 *   npx vitest run --dir bench   (with a small *.test.ts calling it), or
 *   node --import tsx bench/replay-bench.ts
 *
 * `stats: true` measures `btmsim replay --stats` (parse and count only); the default measures
 * `btmsim replay` (parse, import, model as recorded, and the statistics beside it).
 * Figures from TypeScript under vitest are about twice the compiled CLI's for the replay (the
 * module transform slows cross-module calls); docs/traces.md §5 has the compiled figures.
 */
import { resolve } from 'node:path';
import { replayFile, type XzMode } from '../src/cli/replay.js';

export const S1_STRICT = resolve(import.meta.dirname, '../../shared/traces/s1-strict.trace.log.xz');

export interface ReplayBenchResult {
  file: string;
  mode: 'stats' | 'replay';
  xz: XzMode;
  lines: number;
  /** Best of `repeat` runs. */
  ms: number;
  linesPerSec: number;
  /** Peak resident set size of this process after the runs, MiB. */
  rssMiB: number;
}

export async function replayBench(o: { file?: string; stats?: boolean; xz?: XzMode; repeat?: number } = {}): Promise<ReplayBenchResult> {
  const file = o.file ?? S1_STRICT;
  const xz = o.xz ?? 'wasm';
  let best = Infinity;
  let lines = 0;
  for (let i = 0; i < (o.repeat ?? 1); i++) {
    const t0 = performance.now();
    const r = await replayFile(file, { stats: o.stats === true, xz });
    best = Math.min(best, performance.now() - t0);
    lines = r.lines;
  }
  return {
    file, mode: o.stats === true ? 'stats' : 'replay', xz, lines, ms: Math.round(best),
    linesPerSec: Math.round(lines / (best / 1000)), rssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

// Run directly: print the figures as JSON.
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${resolve(process.argv[1])}`).href) {
  const stats = process.argv.includes('--stats');
  const xz = (process.argv.find((a) => a.startsWith('--xz='))?.slice(5) ?? 'wasm') as XzMode;
  replayBench({ stats, xz, repeat: 2 }).then((r) => process.stdout.write(JSON.stringify(r) + '\n'), (e: unknown) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exitCode = 1;
  });
}
