// Replays the kernel allocator vectors (/work/shared/kernel-vectors) through our allocators.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { formatMismatch, replayVectorFile } from '../../src/kernel/vectors.js';
import { runVectorsDir } from '../../src/cli/vectors.js';
import { UserError } from '../../src/cli/errors.js';

const VECTORS_DIR = path.resolve(import.meta.dirname, '../../../shared/kernel-vectors');
const files = readdirSync(VECTORS_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

function load(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(VECTORS_DIR, name), 'utf8')) as Record<string, unknown>;
}

describe('kernel vectors', () => {
  it('the shared directory holds ASID and VMID vector files', () => {
    expect(files.some((f) => f.startsWith('asid-'))).toBe(true);
    expect(files.some((f) => f.startsWith('vmid-'))).toBe(true);
  });

  for (const f of files) {
    it(`${f}: every result and state snapshot matches`, () => {
      const ms = replayVectorFile(load(f), f);
      expect(ms.map(formatMismatch)).toEqual([]);
    });
  }

  it('reports a changed expected value as one mismatch with a dotted field path', () => {
    const v = load('asid-flush-pending-per-cpu.json');
    const results = v['results'] as Array<Record<string, any>>;
    const flush = results[4]['flush'] as boolean;
    results[3]['state']['active'][1] = '42';
    results[4]['flush'] = !flush;
    const ms = replayVectorFile(v, 'x.json');
    expect(ms).toEqual([
      { file: 'x.json', op: 3, field: 'state.active[1]', expected: '42', got: '0' },
      { file: 'x.json', op: 4, field: 'flush', expected: !flush, got: flush },
    ]);
    expect(formatMismatch(ms[0])).toBe('x.json: op 3: state.active[1]: expected "42", got "0"');
  });

  it('compares init (max_pinned) with op -1', () => {
    const v = load('asid-pin-max-nokpti.json');
    (v['init'] as Record<string, unknown>)['max_pinned'] = 5;
    expect(replayVectorFile(v, 'y.json')).toEqual([{ file: 'y.json', op: -1, field: 'max_pinned', expected: 5, got: 4 }]);
  });

  it('reports a malformed file as a single "file" mismatch and never throws', () => {
    const good = load('vmid-first-alloc.json');
    const bad: unknown[] = [
      null,
      [],
      'text',
      { ...good, allocator: 'riscv-vmid' },
      { ...good, params: { bits: 99, cpus: 1 } },
      { ...good, params: { bits: 3, cpus: 1, kpti: 'no' } },
      { ...good, ops: 'x' },
      { ...good, results: (good['results'] as unknown[]).slice(1) },
      { ...good, ops: [{ op: 'load', cpu: 5, vm: 1 }, ...(good['ops'] as unknown[]).slice(1)] },
      { ...good, ops: [{ op: 'switch', cpu: 0, mm: 1 }, ...(good['ops'] as unknown[]).slice(1)] },
      { ...good, results: [3, ...(good['results'] as unknown[]).slice(1)] },
    ];
    for (const b of bad) {
      const ms = replayVectorFile(b, 'bad.json');
      expect(ms).toHaveLength(1);
      expect(ms[0].field).toBe('file');
      expect(ms[0].file).toBe('bad.json');
    }
  });

  it('reports an unknown expected field as missing on our side', () => {
    const v = load('vmid-first-alloc.json');
    (v['results'] as Array<Record<string, unknown>>)[0]['novel'] = 1;
    expect(replayVectorFile(v, 'z.json')).toEqual([{ file: 'z.json', op: 0, field: 'novel', expected: 1, got: undefined }]);
  });

  it('replays the extensions: legacy VMID scheme, pinned VMIDs, pre-6.13 ASID generation step', () => {
    const legacy = {
      allocator: 'kvm-vmid-legacy',
      params: { bits: 2, cpus: 1 },
      init: { gen: 1, state: { gen: 1, next: 0 } },
      ops: [
        { op: 'load', cpu: 0, vm: 1 },
        { op: 'load', cpu: 0, vm: 2 },
        { op: 'load', cpu: 0, vm: 3 },
        { op: 'put', cpu: 0 },
        { op: 'load', cpu: 0, vm: 4 },
        { op: 'load', cpu: 0, vm: 1 },
      ],
      results: [
        { vmid: 1, hw: 1, gen: 2, path: 'slow', changed: true, rollover: true, vm_flush: true, exit_all_cpus: true },
        { vmid: 2, hw: 2, gen: 2, path: 'slow', rollover: false },
        { vmid: 3, hw: 3, gen: 2, path: 'slow', rollover: false, state: { gen: 2, next: 0 } },
        { ok: true },
        { vmid: 1, hw: 1, gen: 3, rollover: true, exit_all_cpus: true },
        { vmid: 2, hw: 2, gen: 3, path: 'slow', rollover: false },
      ],
    };
    expect(replayVectorFile(legacy, 'legacy.json')).toEqual([]);

    const pinned = {
      allocator: 'kvm-vmid',
      params: { bits: 3, cpus: 2, pinning: true },
      init: { ret: 0, gen: 1, state: { gen: 1, active: ['0', '0'], reserved: ['0', '0'], map: '00000000', nr_pinned: 0 } },
      ops: [
        { op: 'pin', vm: 9 },
        { op: 'load', cpu: 0, vm: 9 },
        { op: 'unpin', vm: 9 },
      ],
      results: [
        { ret: 1, vmid: '9', refcount: 1, changed: true, rollover: false, state: { nr_pinned: 1, pinned_map: '01000000' } },
        { vmid: '9', hw: 1, path: 'slow', changed: false },
        { refcount: 0, freed: true, state: { nr_pinned: 0, pinned_map: '00000000', map: '01000000' } },
      ],
    };
    expect(replayVectorFile(pinned, 'pinned.json')).toEqual([]);

    const oldStep = {
      allocator: 'arm64-asid',
      params: { bits: 8, cpus: 2, kpti: false, cfg_unmap: true, generation_step: '2^bits' },
      init: { max_pinned: 252, gen: 1, state: { gen: 1, nr_pinned: 0 } },
      ops: [{ op: 'switch', cpu: 0, mm: 1 }],
      results: [{ ctxid: String(256 + 2), asid: 2, gen: 1, path: 'slow' }],
    };
    expect(replayVectorFile(oldStep, 'old.json')).toEqual([]);
  });
});

describe('btmsim vectors <dir> (runVectorsDir)', () => {
  it('passes every shared vector file', () => {
    const { passed, failed, lines } = runVectorsDir(VECTORS_DIR);
    expect(failed).toBe(0);
    expect(passed).toBe(files.length);
    expect(lines).toEqual([`${files.length} passed, 0 failed`]);
  });

  it('prints at most 20 lines per failing file, then "... and K more", then the summary', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'btmsim-vectors-'));
    try {
      const v = load('asid-random-b3-c2-nokpti-s1001.json');
      (v['params'] as Record<string, unknown>)['kpti'] = true; // diverges everywhere
      writeFileSync(path.join(dir, 'b-diverged.json'), JSON.stringify(v));
      writeFileSync(path.join(dir, 'a-ok.json'), readFileSync(path.join(VECTORS_DIR, 'vmid-first-alloc.json')));
      writeFileSync(path.join(dir, 'c-broken.json'), '{not json');
      writeFileSync(path.join(dir, 'notes.txt'), 'ignored');
      const total = replayVectorFile(v, 'b-diverged.json').length;
      const { passed, failed, lines } = runVectorsDir(dir);
      expect([passed, failed]).toEqual([1, 2]);
      expect(lines.filter((l) => l.startsWith('b-diverged.json: op '))).toHaveLength(20);
      expect(lines).toContain(`b-diverged.json: ... and ${total - 20} more`);
      expect(lines.filter((l) => l.startsWith('c-broken.json: op -1: file: expected "valid JSON"'))).toHaveLength(1);
      expect(lines.at(-1)).toBe('1 passed, 2 failed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a missing directory is a one-line UserError', () => {
    expect(() => runVectorsDir('/nonexistent/btmsim-vectors')).toThrow(UserError);
  });
});
