import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Node } from 'yaml';
import type { z } from 'zod';
import { ScenarioSchema, type Scenario } from './schema.js';

/** One mistake in a scenario file, located. */
export interface ScenarioIssue {
  file: string;
  line: number;
  col: number;
  /** Dotted field path, e.g. `workload.dma.ratePerUs`; empty for the document itself. */
  path: string;
  message: string;
}

export type LoadResult = { ok: true; scenario: Scenario } | { ok: false; issues: ScenarioIssue[] };

export function formatIssue(i: ScenarioIssue): string {
  return `${i.file}:${i.line}:${i.col}: ${i.path === '' ? '' : i.path + ': '}${i.message}`;
}

/**
 * Parse and validate a scenario (YAML or JSON: JSON is read by the YAML 1.2 parser, so both get
 * positions). Never throws on bad input: every problem comes back as a located issue.
 */
export function loadScenarioText(text: string, file: string): LoadResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      issues: doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
        return { file, line: pos.line, col: pos.col, path: '', message: `syntax error: ${firstLine(e.message)}` };
      }),
    };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return { ok: false, issues: [{ file, line: 1, col: 1, path: '', message: firstLine((e as Error).message) }] };
  }
  if (data === null || data === undefined) data = {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    return { ok: false, issues: [{ file, line: 1, col: 1, path: '', message: 'expected a mapping of scenario fields at the top level' }] };
  }
  const r = ScenarioSchema.safeParse(data);
  if (r.success) return { ok: true, scenario: r.data };
  const issues = r.error.issues.map((iss) => toIssue(iss, doc.contents as Node | null, lc, file));
  issues.sort((a, b) => a.line - b.line || a.col - b.col);
  return { ok: false, issues };
}

function firstLine(s: string): string {
  return s.split('\n')[0].trim();
}

type ZIssue = z.core.$ZodIssue;

function toIssue(iss: ZIssue, root: Node | null, lc: LineCounter, file: string): ScenarioIssue {
  const path = iss.path.map((p) => String(p));
  let message = iss.message;
  // Point at the offending key for unknown fields, else at the value; for a missing field at its parent.
  let target = path;
  if (iss.code === 'unrecognized_keys') {
    const keys = (iss as { keys: string[] }).keys;
    message = `unknown field${keys.length > 1 ? 's' : ''} ${keys.map((k) => `'${k}'`).join(', ')}` +
      ` (expected one of: ${expectedKeys(path)})`;
    target = [...path, keys[0]];
    const keyNode = findKey(root, target);
    const pos = keyNode ? lc.linePos(keyNode) : undefined;
    if (pos) return { file, line: pos.line, col: pos.col, path: target.join('.'), message };
  }
  let node = findNode(root, target);
  while (node === undefined && target.length > 0) {
    target = target.slice(0, -1);
    node = findNode(root, target);
  }
  const off = node?.range?.[0] ?? 0;
  const pos = lc.linePos(off);
  return { file, line: pos.line, col: pos.col, path: path.join('.'), message: humanize(message, iss) };
}

function humanize(message: string, iss: ZIssue): string {
  if (iss.code === 'invalid_union' && iss.path.join('.') === 'duration') {
    return 'expected either { ms: <number> } or { events: <integer> }';
  }
  if (iss.code === 'invalid_value' && 'values' in iss) {
    return `expected one of ${(iss.values as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return message;
}

function findNode(root: Node | null, path: string[]): Node | undefined {
  let cur: unknown = root;
  for (const seg of path) {
    if (isMap(cur)) {
      const pair = cur.items.find((p) => isScalar(p.key) && String(p.key.value) === seg);
      if (!pair) return undefined;
      cur = pair.value;
    } else if (isSeq(cur)) {
      cur = cur.items[Number(seg)];
    } else {
      return undefined;
    }
  }
  return (cur ?? undefined) as Node | undefined;
}

/** Offset of the key node `path[last]` inside the map at `path[..last]`. */
function findKey(root: Node | null, path: string[]): number | undefined {
  const parent = findNode(root, path.slice(0, -1));
  if (!isMap(parent)) return undefined;
  const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === path[path.length - 1]);
  return pair && isScalar(pair.key) ? pair.key.range?.[0] : undefined;
}

function expectedKeys(path: string[]): string {
  let s: unknown = ScenarioSchema;
  for (const seg of path) {
    s = unwrap(s);
    const shape = (s as { shape?: Record<string, unknown> }).shape;
    if (shape && seg in shape) s = shape[seg];
    else return '?';
  }
  s = unwrap(s);
  const shape = (s as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape).join(', ') : '?';
}

function unwrap(s: unknown): unknown {
  let cur = s as { def?: { type?: string; innerType?: unknown; in?: unknown; options?: unknown[] } } | undefined;
  for (let i = 0; i < 10 && cur?.def; i++) {
    const d = cur.def;
    if (d.innerType) cur = d.innerType as typeof cur;
    else if (d.type === 'pipe' && d.in) cur = d.in as typeof cur;
    else break;
  }
  return cur;
}
