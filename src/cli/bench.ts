import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { benchSimulation } from '../bench/sim.js';
import { benchTlb } from '../bench/tlb.js';
import { Simulation } from '../sim/simulation.js';
import { builtinScenario } from '../bench/sim.js';
import { benchOracle } from '../oracle/bench.js';
import { replayBench, S1_STRICT, sweepSpeedup } from './bench-more.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = resolve(here, '../..');

/** Build and run the bare C reference of the TLB lookup loop; null when no compiler. */
function cReference(): number | null {
  const src = join(repo, 'bench/tlb_ref.c');
  if (!existsSync(src)) return null;
  const out = join(mkdtempSync(join(tmpdir(), 'btmsim-bench-')), 'tlb_ref');
  const cc = process.env.CC ?? 'cc';
  const b = spawnSync(cc, ['-O2', '-o', out, src], { encoding: 'utf8' });
  if (b.status !== 0) return null;
  const r = spawnSync(out, [], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return (JSON.parse(r.stdout) as { lookupsPerSec: number }).lookupsPerSec;
}

/**
 * Peak RSS of a child process running `events` events of the built-in scenario, and its live
 * heap after a full GC at the end (what the run really keeps; RSS also holds garbage V8 has not
 * collected yet).
 */
function peakRss(events: number): { peakRssMiB: number; liveHeapMiB: number } {
  const r = spawnSync(process.execPath, ['--expose-gc', join(here, 'main.js'), 'bench', '--internal-rss', String(events)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`rss child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as { peakRssMiB: number; liveHeapMiB: number };
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('measure TLB lookups, invalidation cost, end-to-end simulation rate and memory (npm run bench)')
    .option('--json', 'print one JSON object')
    .option('--quick', 'shorter runs')
    .option('--internal-rss <events>', '(internal) run N events and print the peak RSS in MiB')
    .action(async (flags: { json?: boolean; quick?: boolean; internalRss?: string }) => {
      if (flags.internalRss !== undefined) {
        const sim = new Simulation({ ...builtinScenario(), duration: { events: Number(flags.internalRss) } }, 'btm-2020');
        sim.run();
        const peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
        (globalThis as { gc?: () => void }).gc?.();
        const liveHeapMiB = Math.round((process.memoryUsage().heapUsed / 1048576) * 10) / 10;
        process.stdout.write(JSON.stringify({ peakRssMiB, liveHeapMiB }) + '\n');
        return;
      }
      const log = (s: string) => { if (flags.json !== true) process.stderr.write(s + '\n'); };
      log('TLB lookups and invalidation...');
      const tlb = benchTlb();
      log('C reference...');
      const c = cReference();
      log('end-to-end simulation...');
      const quick = flags.quick === true;
      const sim = benchSimulation(quick ? 500_000 : 3_000_000, 'btm-2020', quick ? 1 : 3);
      log('oracle on and off...');
      const oracle = benchOracle(quick ? 300_000 : 2_000_000, 'btm-2020', quick ? 1 : 3);
      log('trace replay (s1-strict, 2.1 M lines)...');
      const replay = await replayBench(undefined, quick ? 1 : 2);
      log('sweep with 1 and 2 workers...');
      const sweep = sweepSpeedup(quick, quick ? 1 : 2);
      log('memory against run length...');
      const lengths = quick ? [1e5, 1e6] : [1e6, 1e7, 1e8];
      const rss = lengths.map((n) => ({ events: n, ...peakRss(n) }));
      const result = {
        machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version },
        tlbLookupsPerSec: Math.round(tlb.tlbLookupsPerSec),
        cTlbLookupsPerSec: c === null ? null : Math.round(c),
        tlbVsC: c === null ? null : Math.round((tlb.tlbLookupsPerSec / c) * 1000) / 1000,
        invalidateVmidNs1k: Math.round(tlb.invalidateVmidNsSmall),
        invalidateVmidNs64k: Math.round(tlb.invalidateVmidNsLarge),
        eventsPerSec: Math.round(sim.eventsPerSec),
        dmaTranslationsPerSec: Math.round(sim.dmaPerSec),
        eventsPerSecWithOracle: Math.round(oracle.eventsPerSecWithOracle),
        oracleSlowdown: oracle.slowdown,
        replayLinesPerSec: replay === null ? null : replay.linesPerSec,
        replay,
        sweepSpeedup2: sweep.speedup,
        sweep,
        peakRssMiB: Math.max(...rss.map((r) => r.peakRssMiB)),
        rssByRunLength: rss,
      };
      if (flags.json === true) { process.stdout.write(JSON.stringify(result) + '\n'); return; }
      const m = (x: number) => (x / 1e6).toFixed(2) + ' M/s';
      process.stdout.write([
        `machine: ${result.machine.cpus} x ${result.machine.model}, Node ${result.machine.node}`,
        `TLB lookups (2048 entries, 4-way):      ${m(result.tlbLookupsPerSec)}` +
          (c === null ? '  (no C compiler: no reference)' : `  = ${(result.tlbVsC! * 100).toFixed(0)}% of the C reference (${m(c)})`),
        `invalidate one VMID (4 entries):        ${result.invalidateVmidNs1k} ns in a 1K TLB, ${result.invalidateVmidNs64k} ns in a 64K TLB`,
        `end-to-end events (built-in workload):  ${m(result.eventsPerSec)} (${m(result.dmaTranslationsPerSec)} DMA translations)`,
        `with the oracle:                        ${m(result.eventsPerSecWithOracle)} (${oracle.slowdown}x slower; same run measured ${m(oracle.eventsPerSec)} without)`,
        `trace replay:                           ` + (replay === null ? `no trace at ${S1_STRICT}` : `${m(replay.linesPerSec)} lines (${replay.lines} lines in ${(replay.ms / 1000).toFixed(2)} s)`),
        `sweep, 1 -> 2 workers:                  ${sweep.speedup}x (${sweep.jobs} jobs: ${sweep.seconds1} s -> ${sweep.seconds2} s${sweep.identical ? ', identical results' : ', RESULTS DIFFER'})`,
        `peak RSS by run length:                 ${rss.map((r) => `${r.events.toExponential(0)} events: ${r.peakRssMiB} MiB`).join(', ')}`,
        `live heap after the run (full GC):      ${rss.map((r) => `${r.events.toExponential(0)} events: ${r.liveHeapMiB} MiB`).join(', ')}`,
      ].join('\n') + '\n');
    });
}
