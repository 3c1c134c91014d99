/**
 * `btmsim merge <dir…> --out <dir>`: combine the shards of a sweep into the outputs of the whole
 * sweep, byte for byte those an unsharded run writes. Each argument is a sweep directory (holding
 * manifest.json) or a directory of them (e.g. the --out given to every shard).
 */
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { latestRecords, rowsOf, shardJobs, type JobRecord } from '../sweep/results.js';
import { UserError } from './errors.js';
import { JOURNAL, makeManifest, readJournal, readManifest, writeAtomic, writeManifest, writeOutputs, type Manifest } from './sweep-files.js';

function sweepDirs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    if (!existsSync(a) || !statSync(a).isDirectory()) throw new UserError(`merge: ${a}: no such directory`);
    if (existsSync(join(a, 'manifest.json'))) { out.push(a); continue; }
    const subs = readdirSync(a).sort().map((s) => join(a, s)).filter((s) => statSync(s).isDirectory() && existsSync(join(s, 'manifest.json')));
    if (subs.length === 0) throw new UserError(`merge: ${a} holds no sweep (no manifest.json in it or in its subdirectories)`);
    out.push(...subs);
  }
  return [...new Set(out)];
}

export function runMerge(args: readonly string[], outDir: string): { dirs: string[]; files: string[] } {
  const dirs = sweepDirs(args);
  let first: Manifest | null = null;
  let firstDir = '';
  const records: JobRecord[] = [];
  for (const d of dirs) {
    const m = readManifest(d)!;
    if (first === null) { first = m; firstDir = d; } else if (m.hash !== first.hash) {
      throw new UserError(`merge: ${d} is a different sweep from ${firstDir} (scenario, --vary, --policy, --seed or --samples differ)`);
    }
    const j = readJournal(join(d, JOURNAL), m.definition);
    // Only the jobs this directory was meant to run.
    const own = new Set(shardJobs(m.definition, m.shard));
    for (const r of j.records) if (own.has(r.job)) records.push(r);
  }
  const def = first!.definition;
  const latest = latestRecords(records);
  const missing: number[] = [];
  for (let job = 0; job < def.jobs; job++) if (!latest.has(job)) missing.push(job);
  if (missing.length > 0) {
    const shards = dirs.map((d) => readManifest(d)!.shard).map((s) => (s ? `${s.index}/${s.count}` : 'all'));
    throw new UserError(`merge: ${missing.length} of ${def.jobs} runs are missing (jobs ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}); `
      + `shards found: ${shards.join(', ')}: run or --resume the missing or unfinished shards first`);
  }
  const existing = existsSync(outDir) ? readManifest(outDir) : null;
  if (existing !== null && (existing.hash !== first!.hash || existing.shard !== null)) {
    throw new UserError(`merge: --out ${outDir} already holds another sweep or a shard: choose another directory`);
  }
  try { mkdirSync(outDir, { recursive: true }); } catch (e) {
    throw new UserError(`merge: cannot create ${outDir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  writeManifest(outDir, makeManifest(def, null));
  // The merged journal, sorted: the directory is a complete sweep (it can be merged again).
  const all = [...latest.values()].sort((a, b) => a.job - b.job);
  writeAtomic(join(outDir, JOURNAL), all.map((r) => JSON.stringify(r) + '\n').join(''));
  const rows = rowsOf(def, latest);
  const files = writeOutputs(outDir, def, rows, null);
  return { dirs, files };
}

export function registerMerge(program: Command): void {
  program
    .command('merge <dirs...>')
    .description('merge the shards of a sweep (their directories, or the directory holding them) into the whole sweep\'s results')
    .requiredOption('--out <dir>', 'directory for the merged manifest.json, jobs.jsonl, results.csv, results.json and report.html')
    .action((dirs: string[], flags: { out: string }) => {
      const r = runMerge(dirs, flags.out);
      process.stderr.write(`merge: ${r.dirs.length} director${r.dirs.length === 1 ? 'y' : 'ies'}; wrote ${r.files.join(', ')}\n`);
    });
}
