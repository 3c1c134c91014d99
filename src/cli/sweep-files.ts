/**
 * The files of a sweep directory:
 *
 *   manifest.json   what the sweep is (definition, its hash, the shard): written first; --resume
 *                   refuses a directory whose manifest describes a different sweep
 *   jobs.jsonl      the journal: one JSON line per finished job, appended and fsync'd as each
 *                   job finishes (a torn last line after a kill is dropped on resume)
 *   results.csv     \
 *   results.json     } generated from the journal when every job of the directory is done
 *   report.html     /
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fdatasyncSync, fsyncSync, openSync, readFileSync, renameSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { sweepReportHtml } from '../report/html.js';
import {
  formatJson, jobPolicy, sweepCsv, sweepJson, type JobRecord, type Shard, type SweepDefinition, type SweepRow,
} from '../sweep/results.js';
import { UserError } from './errors.js';

export const MANIFEST = 'manifest.json';
export const JOURNAL = 'jobs.jsonl';
export const OUTPUTS = ['results.csv', 'results.json', 'report.html'] as const;

export interface Manifest {
  kind: 'btmsim-sweep-manifest';
  version: number;
  /** sha256 of the definition as formatted by formatJson. */
  hash: string;
  shard: Shard | null;
  definition: SweepDefinition;
}

export function definitionHash(def: SweepDefinition): string {
  return createHash('sha256').update(formatJson(def)).digest('hex');
}

export function makeManifest(def: SweepDefinition, shard: Shard | null): Manifest {
  return { kind: 'btmsim-sweep-manifest', version: 1, hash: definitionHash(def), shard, definition: def };
}

/** Write a file whole: to a temporary name, then rename (a reader never sees half a file). */
export function writeAtomic(path: string, data: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data);
    const fd = openSync(tmp, 'r+');
    try { fsyncSync(fd); } finally { closeSync(fd); }
    renameSync(tmp, path);
  } catch (e) {
    throw new UserError(`cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export function readManifest(dir: string): Manifest | null {
  const p = join(dir, MANIFEST);
  if (!existsSync(p)) return null;
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(p, 'utf8')) as Manifest;
  } catch (e) {
    throw new UserError(`${p}: not a sweep manifest (${(e as Error).message.split('\n')[0]})`);
  }
  if (m?.kind !== 'btmsim-sweep-manifest' || typeof m.hash !== 'string' || typeof m.definition !== 'object') {
    throw new UserError(`${p}: not a btmsim sweep manifest`);
  }
  if (m.version !== 1) throw new UserError(`${p}: sweep format version ${m.version}, this btmsim reads version 1`);
  return m;
}

export function writeManifest(dir: string, m: Manifest): void {
  writeAtomic(join(dir, MANIFEST), formatJson(m) + '\n');
}

export interface JournalContents {
  records: JobRecord[];
  /** Bytes up to the end of the last complete line. */
  validBytes: number;
  /** Complete lines that were not valid records (skipped). */
  bad: number;
  /** A torn last line (the process was killed while writing it). */
  torn: boolean;
}

/** Read a journal; only complete, valid lines for jobs of `def` count. */
export function readJournal(path: string, def: SweepDefinition): JournalContents {
  if (!existsSync(path)) return { records: [], validBytes: 0, bad: 0, torn: false };
  const buf = readFileSync(path);
  const end = buf.lastIndexOf(0x0a) + 1;
  const text = buf.subarray(0, end).toString('utf8');
  const records: JobRecord[] = [];
  let bad = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const r = JSON.parse(line) as JobRecord;
      const okShape = Number.isInteger(r.job) && r.job >= 0 && r.job < def.jobs && r.policy === jobPolicy(def, r.job)
        && (r.status === 'ok' ? typeof r.metrics === 'object' : r.status === 'error');
      if (okShape) records.push(r); else bad++;
    } catch {
      bad++;
    }
  }
  return { records, validBytes: end, bad, torn: end < buf.length };
}

/** The journal, opened for appending, with a torn last line cut off first. */
export class Journal {
  private fd: number;

  constructor(readonly path: string, validBytes: number) {
    try {
      if (existsSync(path)) truncateSync(path, validBytes);
      this.fd = openSync(path, 'a');
    } catch (e) {
      throw new UserError(`cannot open ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }

  append(r: JobRecord): void {
    writeSync(this.fd, JSON.stringify(r) + '\n');
    fdatasyncSync(this.fd);
  }

  close(): void {
    if (this.fd >= 0) { closeSync(this.fd); this.fd = -1; }
  }
}

/** results.csv, results.json and report.html of `rows`. */
export function writeOutputs(dir: string, def: SweepDefinition, rows: readonly SweepRow[], shard: Shard | null): string[] {
  const files = OUTPUTS.map((f) => join(dir, f));
  writeAtomic(files[0], sweepCsv(def, rows));
  writeAtomic(files[1], sweepJson(def, rows, shard));
  writeAtomic(files[2], sweepReportHtml({ def, rows, shard }));
  return files;
}
