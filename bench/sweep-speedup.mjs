#!/usr/bin/env node
// Sweep speedup from 1 to 2 workers (README "Sweeps"). Runs the built CLI (npm run build first)
// on a realistic grid, alternating --jobs 1 and --jobs 2, `reps` times each, and reports the
// fastest wall time of each (the least disturbed by anything else on the machine) with the CPU
// the CPU the sweep used and what other processes took meanwhile (from /proc/stat and the
// children's times in /proc/self/stat). Before each run it waits (up to a minute) for the machine
// to be idle; a run during which other processes took more than 0.1 CPU on average is marked
// `clean: false`, and the speedup uses clean runs when both sides have one.
//
//   node bench/sweep-speedup.mjs [reps]          → JSON on stdout
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const reps = Number(process.argv[2] ?? 3);
const grid = ['scenarios/thread-2020.yaml', '--vary', 'cpu.vmidBits+smmu.vmidBits=8,16', '--vary', 'workload.devicesPerVm=4,8,16'];

function busyJiffies() {
  const [cpu] = readFileSync('/proc/stat', 'utf8').split('\n');
  const f = cpu.split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  return { busy: f.reduce((a, b) => a + b, 0) - idle };
}

/** CPUs busy on the machine over `ms` milliseconds. */
function busyOver(ms) {
  const a = busyJiffies();
  const t = Date.now();
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return (busyJiffies().busy - a.busy) / 100 / ((Date.now() - t) / 1000);
}

function waitIdle() {
  const t0 = Date.now();
  while (Date.now() - t0 < 60_000) if (busyOver(1000) < 0.1) return true;
  return false;
}

/** CPU seconds used by waited-for children (cutime + cstime of /proc/self/stat). */
function childCpu() {
  const f = readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

function once(jobs) {
  const idle = waitIdle();
  const c0 = childCpu();
  const out = mkdtempSync(join(tmpdir(), 'btmsim-speedup-'));
  const b0 = busyJiffies();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['dist/cli/main.js', 'sweep', ...grid, '--jobs', String(jobs), '--no-progress', '--out', out], { cwd: root, encoding: 'utf8' });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const b1 = busyJiffies();
  if (r.status !== 0) throw new Error(r.stderr);
  const csv = readFileSync(join(out, 'results.csv'), 'utf8');
  rmSync(out, { recursive: true, force: true });
  // USER_HZ is 100 on Linux.
  const machineCpus = (b1.busy - b0.busy) / 100 / wall;
  const sweepCpus = (childCpu() - c0) / wall;
  const otherCpus = Math.max(0, machineCpus - sweepCpus);
  return { wall, sweepCpus, otherCpus, clean: idle && otherCpus <= 0.1, csv };
}

const runs = { 1: [], 2: [] };
let csv1 = null;
for (let i = 0; i < reps; i++) {
  for (const j of [1, 2]) {
    const r = once(j);
    csv1 ??= r.csv;
    if (r.csv !== csv1) throw new Error('results differ between --jobs 1 and --jobs 2');
    runs[j].push({ wall: Number(r.wall.toFixed(3)), sweepCpus: Number(r.sweepCpus.toFixed(2)), otherCpus: Number(r.otherCpus.toFixed(2)), clean: r.clean });
    process.stderr.write(`jobs ${j}: ${r.wall.toFixed(2)} s, sweep ${r.sweepCpus.toFixed(2)} CPUs, others ${r.otherCpus.toFixed(2)} CPUs${r.clean ? '' : ' (disturbed)'}\n`);
  }
}
const clean = runs[1].some((r) => r.clean) && runs[2].some((r) => r.clean);
const best = (j) => Math.min(...runs[j].filter((r) => r.clean || !clean).map((r) => r.wall));
console.log(JSON.stringify({
  grid: grid.join(' '), jobs: 30, cpu: cpus()[0]?.model, cpus: availableParallelism(), node: process.version,
  runs, cleanOnly: clean, best1: best(1), best2: best(2), speedup: Number((best(1) / best(2)).toFixed(2)),
}, null, 2));
