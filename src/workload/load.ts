import {
  LineCounter, parseDocument, isAlias, isMap, isPair, isScalar, isSeq, visit,
  type Document, type Node, type YAMLError,
} from 'yaml';
import type { z } from 'zod';
import { ScenarioSchema, type Scenario } from './schema.js';

/** One mistake in a scenario file, located. */
export interface ScenarioIssue {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  col: number;
  /** Dotted field path, e.g. `workload.dma.ratePerUs` or `compare.1`; empty for the document itself. */
  path: string;
  /** One line, no trailing period. */
  message: string;
}

export type LoadResult = { ok: true; scenario: Scenario } | { ok: false; issues: ScenarioIssue[] };

/** `file:line:col: path: message` (the `path: ` part only when there is a path). */
export function formatIssue(i: ScenarioIssue): string {
  return `${i.file}:${i.line}:${i.col}: ${i.path === '' ? '' : i.path + ': '}${i.message}`;
}

/**
 * Parse and validate a scenario (YAML or JSON: JSON is read by the YAML 1.2 parser, so both get
 * positions). Never throws on bad input: every problem comes back as a located issue, sorted by
 * position. An empty file (or one holding only comments) is valid and gives all the defaults.
 *
 * Positions: a wrong value points at the value; an unknown field at its key; a missing required
 * field at the mapping that lacks it; a YAML syntax error where the parser noticed it.
 */
export function loadScenarioText(text: string, file: string): LoadResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const fail = (issues: ScenarioIssue[]): LoadResult => ({ ok: false, issues: sortIssues(issues) });
  if (doc.errors.length > 0) {
    const seen = new Set<string>();
    const issues: ScenarioIssue[] = [];
    for (const e of doc.errors) {
      const { offset, message } = syntaxIssue(e, text, doc, lc);
      const pos = lc.linePos(offset);
      const key = `${pos.line}:${pos.col}`;
      if (seen.has(key)) continue;
      seen.add(key);
      issues.push({ file, line: pos.line, col: pos.col, path: '', message });
    }
    return fail(issues);
  }
  const root = doc.contents as Node | null;
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return fail([{ file, line: 1, col: 1, path: '', message: firstLine((e as Error).message) }]);
  }
  if (data === null || data === undefined) data = {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    const pos = lc.linePos(root?.range?.[0] ?? 0);
    return fail([{
      file, line: pos.line, col: pos.col, path: '',
      message: `expected a mapping of scenario fields (key: value lines) at the top level, got ${describeValue(data, root, text)}`,
    }]);
  }
  const r = ScenarioSchema.safeParse(data);
  if (r.success) return { ok: true, scenario: r.data };
  const ctx: Ctx = { root, lc, file, text, data };
  return fail(dedupe(tightest(r.error.issues).flatMap((iss) => toIssues(iss, [], ctx))));
}

function sortIssues(issues: ScenarioIssue[]): ScenarioIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.col - b.col);
}

function firstLine(s: string): string {
  return s.split('\n')[0].trim();
}

// ---------------------------------------------------------------------------------------------
// YAML syntax errors

/** Message and offset of one YAML error; unclosed brackets and quotes point at the opening one. */
function syntaxIssue(e: YAMLError, text: string, doc: Document, lc: LineCounter): { offset: number; message: string } {
  const offset = e.pos[0];
  const raw = firstLine(e.message);
  const flow = /^Flow (sequence|map) .*end with an? ([\]}])/.exec(raw);
  if (flow) {
    const open = flow[2] === ']' ? '[' : '{';
    const opened = unclosedBracket(text, offset, open);
    return opened === undefined
      ? { offset, message: `unclosed "${open}": expected "${flow[2]}"` }
      : { offset: opened, message: `unclosed "${open}": no matching "${flow[2]}" before line ${lc.linePos(offset).line}` };
  }
  const quote = /^Missing closing (["'])quote/.exec(raw);
  if (quote) {
    const opened = text.lastIndexOf(quote[1], offset - 1);
    return { offset: opened >= 0 ? opened : offset, message: `unclosed quoted string: missing the closing ${quote[1]}` };
  }
  switch (e.code) {
    case 'DUPLICATE_KEY': {
      const dup = duplicateKeyInfo(doc, offset, lc);
      return {
        offset,
        message: dup
          ? `duplicate key "${dup.key}" (first given on line ${dup.firstLine})`
          : 'duplicate key: each field may appear only once in a mapping',
      };
    }
    case 'TAB_AS_INDENT':
      return { offset, message: 'tab character used for indentation: YAML indentation must use spaces' };
    case 'MULTIPLE_DOCS':
      return { offset, message: 'a scenario file must hold a single YAML document (remove the second "---")' };
    case 'BLOCK_AS_IMPLICIT_KEY':
    case 'MULTILINE_IMPLICIT_KEY':
      return {
        offset,
        message: 'a mapping cannot start inside this value: check the indentation of the next line, or quote a value that contains ": "',
      };
    case 'BAD_INDENT':
      return { offset, message: `bad indentation: ${yamlText(raw)}` };
    case 'BLOCK_IN_FLOW':
      return { offset, message: 'syntax error: expected "," or a closing bracket (missing comma between items?)' };
    default: {
      const tok = /^Unexpected \S+ token in YAML stream: (.*)$/.exec(raw);
      return { offset, message: `syntax error: ${tok ? `unexpected ${tok[1]}` : yamlText(raw)}` };
    }
  }
}

/**
 * Offset of the innermost `open` bracket still unclosed at `end` (quotes and comments skipped),
 * or undefined.
 */
function unclosedBracket(text: string, end: number, open: '[' | '{'): number | undefined {
  const stack: { ch: string; at: number }[] = [];
  for (let i = 0; i < end && i < text.length; i++) {
    const c = text[i];
    if (c === '#' && (i === 0 || /\s/.test(text[i - 1]))) {
      while (i < end && text[i] !== '\n') i++;
    } else if (c === '"' || (c === "'" && (i === 0 || /[\s,\[{:]/.test(text[i - 1])))) {
      for (i++; i < end && text[i] !== c; i++) if (c === '"' && text[i] === '\\') i++;
    } else if (c === '[' || c === '{') {
      stack.push({ ch: c, at: i });
    } else if ((c === ']' || c === '}') && stack.length > 0) {
      stack.pop();
    }
  }
  for (let k = stack.length - 1; k >= 0; k--) if (stack[k].ch === open) return stack[k].at;
  return undefined;
}

function yamlText(raw: string): string {
  const m = raw.replace(/\s+at line \d+, column \d+:?$/, '');
  return m.charAt(0).toLowerCase() + m.slice(1);
}

/** The duplicated key at `offset` and the line of its first occurrence in the same mapping. */
function duplicateKeyInfo(doc: Document, offset: number, lc: LineCounter): { key: string; firstLine: number } | undefined {
  let found: { key: string; firstLine: number } | undefined;
  visit(doc, {
    Map(_, map) {
      const idx = map.items.findIndex((p) => isScalar(p.key) && p.key.range?.[0] === offset);
      if (idx < 0) return undefined;
      const k = (map.items[idx].key as { value: unknown }).value;
      const first = map.items.find((p) => isScalar(p.key) && p.key.value === k);
      const firstOff = (first?.key as Node | undefined)?.range?.[0] ?? offset;
      found = { key: String(k), firstLine: lc.linePos(firstOff).line };
      return visit.BREAK;
    },
  });
  return found;
}

// ---------------------------------------------------------------------------------------------
// Validation issues

type ZIssue = z.core.$ZodIssue;
type Seg = string | number;

interface Ctx {
  root: Node | null;
  lc: LineCounter;
  file: string;
  text: string;
  data: unknown;
}

/** Converts one zod issue (whose path is relative to `base`) into located, readable issues. */
function toIssues(iss: ZIssue, base: Seg[], ctx: Ctx): ScenarioIssue[] {
  const path: Seg[] = [...base, ...iss.path.map((p) => (typeof p === 'number' ? p : String(p)))];
  const value = valueAt(ctx.data, path);
  const node = findNode(ctx.root, path);
  switch (iss.code) {
    case 'unrecognized_keys':
      return iss.keys.map((k) => unknownKey([...path, k], expectedKeys(path), ctx));
    case 'invalid_union':
      return unionIssues(iss, path, value, ctx);
    case 'invalid_type':
      if (value === undefined && !hasKey(ctx.data, path)) {
        return [at(ctx, path, `missing required field "${String(path[path.length - 1])}"`)];
      }
      return [at(ctx, path, typeMessage(iss.expected, value, node, ctx.text))];
    case 'too_big':
    case 'too_small':
      return [at(ctx, path, rangeMessage(iss, value, node, ctx.text))];
    case 'invalid_value':
      return [at(ctx, path, valueMessage(iss.values, value, node, ctx.text))];
    default:
      return [at(ctx, path, iss.message)];
  }
}

/** An issue located at the value of `path`, or at the closest ancestor present in the file. */
function at(ctx: Ctx, path: Seg[], message: string): ScenarioIssue {
  let target = path;
  let node = findNode(ctx.root, target);
  while (node === undefined && target.length > 0) {
    target = target.slice(0, -1);
    node = findNode(ctx.root, target);
  }
  const pos = ctx.lc.linePos(node?.range?.[0] ?? 0);
  return { file: ctx.file, line: pos.line, col: pos.col, path: path.join('.'), message };
}

/** An issue located at the key of the last segment of `path` (falls back to the value). */
function atKey(ctx: Ctx, path: Seg[], message: string): ScenarioIssue {
  const off = findKey(ctx.root, path);
  if (off === undefined) return at(ctx, path, message);
  const pos = ctx.lc.linePos(off);
  return { file: ctx.file, line: pos.line, col: pos.col, path: path.join('.'), message };
}

function unknownKey(path: Seg[], expected: string[], ctx: Ctx): ScenarioIssue {
  const key = String(path[path.length - 1]);
  const guess = closest(key, expected);
  const hint = guess === undefined ? '' : ` (did you mean "${guess}"?)`;
  const list = expected.length > 0 ? `; expected one of: ${expected.join(', ')}` : '';
  return atKey(ctx, path, `unknown field "${key}"${hint}${list}`);
}

/**
 * The only union in the format is `duration`: strict objects that each need one key. Rather than
 * zod's "no option matched", say which key is missing, extra or doubled, or validate the one
 * option the user evidently meant.
 */
function unionIssues(iss: ZIssue & { code: 'invalid_union' }, path: Seg[], value: unknown, ctx: Ctx): ScenarioIssue[] {
  const options = unionOptions(schemaAt(path));
  const keysOf = options.map((o) => Object.keys(o.shape));
  if (options.length === 0 || keysOf.some((k) => k.length !== 1)) {
    return [at(ctx, path, 'does not match any of the allowed forms')];
  }
  const allowed = keysOf.map((k) => k[0]);
  const example = `{ ${options.map((o, i) => `${allowed[i]}: <${typeName(o.shape[allowed[i]])}>`).join(' } or { ')} }`;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const node = findNode(ctx.root, path);
    return [at(ctx, path, `expected a mapping ${example}, got ${describeValue(value, node, ctx.text)}`)];
  }
  const keys = Object.keys(value);
  const present = allowed.filter((k) => keys.includes(k));
  if (present.length > 1) {
    return [atKey(ctx, [...path, present[1]], `give either ${present.join(' or ')}, not both`)];
  }
  if (present.length === 0) {
    if (keys.length === 0) return [at(ctx, path, `empty: expected ${example}`)];
    return keys.map((k) => unknownKey([...path, k], allowed, ctx));
  }
  const option = options[allowed.indexOf(present[0])];
  const r = option.safeParse(value);
  if (r.success) return [at(ctx, path, 'does not match any of the allowed forms')];
  return tightest(r.error.issues).flatMap((i) =>
    i.code === 'unrecognized_keys' && i.path.length === 0
      ? i.keys.map((k) => unknownKey([...path, k], allowed, ctx))
      : toIssues(i, path, ctx));
}

/**
 * Of several range issues on one field keep the tightest bound (`seed: 1e20` breaks both the
 * safe-integer and the 2^32-1 maximum: report the latter).
 */
function tightest(issues: ZIssue[]): ZIssue[] {
  const key = (i: ZIssue) => `${i.code}:${i.path.map(String).join('.')}`;
  const best = new Map<string, ZIssue>();
  for (const i of issues) {
    if (i.code !== 'too_big' && i.code !== 'too_small') continue;
    const b = best.get(key(i));
    const tighter = b === undefined ||
      (i.code === 'too_big' ? Number(i.maximum) < Number((b as typeof i).maximum) : Number(i.minimum) > Number((b as typeof i).minimum));
    if (tighter) best.set(key(i), i);
  }
  return issues.filter((i) => (i.code !== 'too_big' && i.code !== 'too_small') || best.get(key(i)) === i);
}

/** Keeps the first issue per location and path (zod can report several for one value). */
function dedupe(issues: ScenarioIssue[]): ScenarioIssue[] {
  const out = new Map<string, ScenarioIssue>();
  for (const i of issues) {
    const k = `${i.line}:${i.col}:${i.path}`;
    if (!out.has(k)) out.set(k, i);
  }
  return [...out.values()];
}

// ---------------------------------------------------------------------------------------------
// Messages

const ARTICLE_TYPE: Record<string, string> = {
  number: 'a number', int: 'an integer', boolean: 'a boolean (true or false)', string: 'a string',
  object: 'a mapping', array: 'a list', null: 'null',
};

function typeMessage(expected: string, value: unknown, node: Node | undefined, text: string): string {
  if ((expected === 'number' || expected === 'int') && typeof value === 'number' && !Number.isFinite(value)) {
    return `expected a finite number, got ${plainValue(value, node, text)}`;
  }
  let msg = `expected ${ARTICLE_TYPE[expected] ?? expected}, got ${describeValue(value, node, text)}`;
  if (typeof value === 'string') {
    const t = value.trim();
    if (expected === 'boolean' && /^(y|yes|n|no|on|off)$/i.test(t)) {
      msg += ' (YAML 1.2 reads yes/no/on/off as strings: write true or false)';
    } else if (expected === 'boolean' && /^(true|false)$/i.test(t)) {
      msg += ' (remove the quotes)';
    } else if ((expected === 'number' || expected === 'int') && t !== '' && Number.isFinite(Number(t))) {
      msg += ' (remove the quotes)';
    }
  }
  if (value === null && node !== undefined && sourceOf(node, text) === '') msg += ' (the value is missing)';
  return msg;
}

function rangeMessage(iss: ZIssue & { code: 'too_big' | 'too_small' }, value: unknown, node: Node | undefined, text: string): string {
  const big = iss.code === 'too_big';
  const bound = big ? (iss as { maximum: number | bigint }).maximum : (iss as { minimum: number | bigint }).minimum;
  const inclusive = iss.inclusive !== false;
  if (iss.origin === 'array' || iss.origin === 'set') {
    const n = Array.isArray(value) ? value.length : '?';
    const items = (k: number | bigint | string) => `${k} item${k === 1 || k === 1n ? '' : 's'}`;
    if (!big && n === 0) return `must not be empty: list at least ${items(bound)}`;
    return `must have ${big ? 'at most' : 'at least'} ${items(bound)}, got ${n}`;
  }
  if (iss.origin === 'string') {
    return `must be ${big ? 'at most' : 'at least'} ${bound} characters long`;
  }
  const rel = big ? (inclusive ? 'at most' : 'less than') : (inclusive ? 'at least' : 'greater than');
  const what = !big && !inclusive && Number(bound) === 0 ? 'positive (greater than 0)' : `${rel} ${formatBound(bound)}`;
  return `must be ${what}, got ${plainValue(value, node, text)}`;
}

function formatBound(b: number | bigint): string {
  return typeof b === 'number' && Number.isSafeInteger(b) && Math.abs(b) >= 1e6 && isPow2Minus1(b)
    ? `${b} (2^${Math.log2(b + 1)}-1)`
    : String(b);
}

function isPow2Minus1(n: number): boolean {
  const l = Math.log2(n + 1);
  return Number.isInteger(l);
}

function valueMessage(values: readonly unknown[], value: unknown, node: Node | undefined, text: string): string {
  const shown = values.map((v) => (typeof v === 'string' ? JSON.stringify(v) : String(v)));
  const list = shown.length <= 2 ? shown.join(' or ') : `one of ${shown.join(', ')}`;
  let msg = `expected ${list}, got ${plainValue(value, node, text)}`;
  if (typeof value === 'string') {
    const guess = closest(value, values.filter((v): v is string => typeof v === 'string'));
    if (guess !== undefined) msg += ` (did you mean "${guess}"?)`;
    else if (values.every((v) => typeof v === 'number') && Number.isFinite(Number(value))) msg += ' (remove the quotes)';
  }
  return msg;
}

/** "the string \"four\"", "the number 5", "a list", "an empty value"... */
function describeValue(value: unknown, node: Node | undefined | null, text: string): string {
  if (value === null || value === undefined) {
    return node && sourceOf(node, text) !== '' ? 'null' : 'an empty value';
  }
  if (typeof value === 'string') return value.length <= 40 && !value.includes('\n') ? `the string ${JSON.stringify(value)}` : `a string of ${value.length} characters`;
  if (typeof value === 'number') return `the number ${plainValue(value, node ?? undefined, text)}`;
  if (typeof value === 'boolean') return `the boolean ${value}`;
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

/** The value as written in the file when short (keeps 0x10, 1e3, .inf), else a JS rendering. */
function plainValue(value: unknown, node: Node | undefined, text: string): string {
  if (typeof value === 'string') return describeValue(value, node, text).replace(/^the string /, '');
  if (node && isScalar(node)) {
    const src = sourceOf(node, text);
    if (src !== '' && src.length <= 40 && !src.includes('\n')) return src;
  }
  if (typeof value === 'number') return Number.isNaN(value) ? '.nan' : value === Infinity ? '.inf' : value === -Infinity ? '-.inf' : String(value);
  return describeValue(value, node, text);
}

function sourceOf(node: Node, text: string): string {
  const r = node.range;
  return r ? text.slice(r[0], r[1]).trim() : '';
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const w = word.toLowerCase();
  for (const c of candidates) {
    const d = c.toLowerCase() === w ? 0 : editDistance(w, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  return bestD <= limit ? best : undefined;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

// ---------------------------------------------------------------------------------------------
// Walking the data, the YAML tree and the zod schema by path

function valueAt(data: unknown, path: Seg[]): unknown {
  let cur = data;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[String(seg)];
  }
  return cur;
}

function hasKey(data: unknown, path: Seg[]): boolean {
  const parent = valueAt(data, path.slice(0, -1));
  return parent !== null && typeof parent === 'object' && String(path[path.length - 1]) in parent;
}

function pairIn(map: unknown, seg: Seg) {
  if (!isMap(map)) return undefined;
  return map.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
}

function findNode(root: Node | null, path: Seg[]): Node | undefined {
  let cur: unknown = root;
  for (const seg of path) {
    if (isAlias(cur)) return undefined;
    if (isMap(cur)) {
      const pair = pairIn(cur, seg);
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
function findKey(root: Node | null, path: Seg[]): number | undefined {
  const pair = pairIn(findNode(root, path.slice(0, -1)), path[path.length - 1]);
  return pair && isScalar(pair.key) ? pair.key.range?.[0] : undefined;
}

interface ZodLike {
  def?: { type?: string; innerType?: unknown; in?: unknown; options?: unknown[]; element?: unknown; shape?: Record<string, unknown> };
  shape?: Record<string, unknown>;
  safeParse?: unknown;
}
type ObjectSchema = z.ZodObject & { shape: Record<string, unknown> };

function unwrap(s: unknown): ZodLike | undefined {
  let cur = s as ZodLike | undefined;
  for (let i = 0; i < 10 && cur?.def; i++) {
    const d = cur.def;
    if (d.innerType) cur = d.innerType as ZodLike;
    else if (d.type === 'pipe' && d.in) cur = d.in as ZodLike;
    else break;
  }
  return cur;
}

/** The (unwrapped) schema of the field at `path`, or undefined. */
function schemaAt(path: Seg[]): ZodLike | undefined {
  let s = unwrap(ScenarioSchema);
  for (const seg of path) {
    if (s?.def?.type === 'array') {
      s = unwrap(s.def.element);
      continue;
    }
    const shape = s?.shape;
    if (!shape || !(String(seg) in shape)) return undefined;
    s = unwrap(shape[String(seg)]);
  }
  return s;
}

function expectedKeys(path: Seg[]): string[] {
  const s = schemaAt(path);
  if (s?.shape) return Object.keys(s.shape);
  return [...new Set(unionOptions(s).flatMap((o) => Object.keys(o.shape)))];
}

function unionOptions(s: ZodLike | undefined): ObjectSchema[] {
  if (s?.def?.type !== 'union') return [];
  const opts = (s.def.options ?? []).map((o) => unwrap(o));
  return opts.every((o) => o?.def?.type === 'object') ? (opts as unknown as ObjectSchema[]) : [];
}

function typeName(s: unknown): string {
  const u = unwrap(s);
  const t = u?.def?.type ?? 'value';
  if (t === 'number') {
    const checks = (u as { def: { checks?: { _zod?: { def?: { format?: string } } }[] } }).def.checks ?? [];
    return checks.some((c) => c._zod?.def?.format === 'safeint') ? 'integer' : 'number';
  }
  return t;
}
