/**
 * `btmsim vectors <dir>`: replay every *.json kernel vector file of a directory through our
 * allocators (src/kernel/vectors.ts). Prints each mismatch as
 * `file: op N: field: expected X, got Y` (at most 20 lines per file, then "... and K more"), and
 * a last line `N passed, M failed` (files). Exit code 1 if any file failed.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UserError } from './errors.js';
import { formatMismatch, replayVectorFile, type Mismatch } from '../kernel/vectors.js';

/** Printed mismatch lines per file before "... and K more". */
export const MAX_LINES_PER_FILE = 20;

export interface VectorsRunSummary {
  passed: number;
  failed: number;
  lines: string[];
}

function errCode(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code ?? (e instanceof Error ? e.message : String(e));
}

function replayFile(dir: string, f: string): Mismatch[] {
  let text: string;
  try {
    text = readFileSync(join(dir, f), 'utf8');
  } catch (e) {
    return [{ file: f, op: -1, field: 'file', expected: 'a readable file', got: errCode(e) }];
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return [{ file: f, op: -1, field: 'file', expected: 'valid JSON', got: e instanceof Error ? e.message : String(e) }];
  }
  return replayVectorFile(json, f);
}

/** Replay the directory; returns the lines to print (last one is the summary). */
export function runVectorsDir(dir: string): VectorsRunSummary {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new UserError(`vectors: '${dir}' is not a directory`);
    names = readdirSync(dir);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`vectors: cannot read directory '${dir}' (${errCode(e)})`);
  }
  const files = names.filter((n) => n.toLowerCase().endsWith('.json')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (files.length === 0) throw new UserError(`vectors: no *.json vector files in '${dir}'`);

  const lines: string[] = [];
  let passed = 0;
  let failed = 0;
  for (const f of files) {
    const ms = replayFile(dir, f);
    if (ms.length === 0) {
      passed++;
      continue;
    }
    failed++;
    for (const m of ms.slice(0, MAX_LINES_PER_FILE)) lines.push(formatMismatch(m));
    if (ms.length > MAX_LINES_PER_FILE) lines.push(`${f}: ... and ${ms.length - MAX_LINES_PER_FILE} more`);
  }
  lines.push(`${passed} passed, ${failed} failed`);
  return { passed, failed, lines };
}

export function registerVectors(program: Command): void {
  program
    .command('vectors')
    .description('replay every *.json kernel allocator vector file in <dir> (ASID/VMID) and report mismatches')
    .argument('<dir>', 'directory of vector files (FORMAT.md)')
    .action((dir: string) => {
      const { failed, lines } = runVectorsDir(dir);
      process.stdout.write(lines.join('\n') + '\n');
      if (failed > 0) process.exitCode = 1;
    });
}
