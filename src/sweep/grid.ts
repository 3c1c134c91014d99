/**
 * Sweep grids: `--vary key=v1,v2,…` and `--vary key=a..b[:step]` axes over dotted scenario paths,
 * their cartesian product, and applying one grid point to the raw (unvalidated) scenario object.
 *
 * Pure: no Node, no DOM (the web explorer can build the same grids).
 */

/** A value on an axis: what YAML would read for the same text (number, boolean or string). */
export type AxisValue = number | string | boolean;

export interface SweepAxis {
  /** The key as written: one dotted path, or several joined by `+` that take the same value. */
  key: string;
  /** The dotted paths, split. */
  paths: string[][];
  values: AxisValue[];
  /** The flag as given, for messages: `--vary key=spec`. */
  flag: string;
}

/** A mistake in a `--vary` flag; the message names the flag and is one line. */
export class SweepSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SweepSpecError';
  }
}

/** At most this many values on one axis, and grid points in all (a typo guard). */
export const MAX_AXIS_VALUES = 10_000;
export const MAX_GRID_POINTS = 1_000_000;

/** Fields that are not swept as data: the policies are the grid's last dimension (`--policy`). */
const RESERVED_KEYS = new Set(['policy', 'compare']);

const SEGMENT = /^(?:[A-Za-z_$][\w$-]*|\d+)$/;
const NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
const HEX = /^0x[0-9a-f]+$/i;

/**
 * Parse one `--vary` flag value: `key=spec` where key is `a.b.c` (or `a.b+c.d`: the same value
 * to several paths) and spec is a comma-separated list of items, each a scalar (`8`, `true`,
 * `lru`, `"8"` for the string) or a range: `a..b` (step 1), `a..b:step` (arithmetic),
 * `a..b:x2` / `a..b:*2` (geometric). Ranges include both ends when the step lands on b.
 */
export function parseVary(flag: string): SweepAxis {
  const shown = `--vary ${flag}`;
  const eq = flag.indexOf('=');
  if (eq < 0) throw new SweepSpecError(`${shown}: expected key=values (e.g. workload.devicesPerVm=1,2,4 or cpu.count=2..8:2)`);
  const key = flag.slice(0, eq).trim();
  const spec = flag.slice(eq + 1).trim();
  if (key === '') throw new SweepSpecError(`${shown}: missing the field path before "="`);
  const paths = key.split('+').map((p) => p.trim());
  const split: string[][] = [];
  for (const p of paths) {
    const segs = p.split('.');
    if (p === '' || segs.some((s) => !SEGMENT.test(s))) {
      throw new SweepSpecError(`${shown}: "${p}" is not a dotted field path (e.g. workload.devicesPerVm)`);
    }
    if (RESERVED_KEYS.has(segs[0])) {
      throw new SweepSpecError(`${shown}: the policies are not a --vary axis: use --policy ${POLICY_HINT}`);
    }
    split.push(segs);
  }
  if (spec === '') throw new SweepSpecError(`${shown}: no values after "="`);
  const values: AxisValue[] = [];
  for (const rawItem of spec.split(',')) {
    const item = rawItem.trim();
    if (item === '') throw new SweepSpecError(`${shown}: empty value in the list (two commas, or a trailing comma?)`);
    const got = item.includes('..') && !/^["']/.test(item) ? parseRange(item, shown) : [parseScalar(item)];
    for (const v of got) {
      if (values.some((w) => w === v)) throw new SweepSpecError(`${shown}: value ${String(v)} is given twice`);
      values.push(v);
      if (values.length > MAX_AXIS_VALUES) throw new SweepSpecError(`${shown}: more than ${MAX_AXIS_VALUES} values`);
    }
  }
  return { key: paths.join('+'), paths: split, values, flag };
}

const POLICY_HINT = 'p1,p2,…';

/** A scalar as YAML would read it (numbers, true/false; `"…"` or `'…'` forces a string). */
export function parseScalar(s: string): AxisValue {
  if (s.length >= 2 && ((s[0] === '"' && s.endsWith('"')) || (s[0] === "'" && s.endsWith("'")))) return s.slice(1, -1);
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (NUMBER.test(s)) return Number(s);
  if (HEX.test(s)) return Number(s);
  return s;
}

function decimals(s: string): number {
  const m = /\.(\d+)/.exec(s);
  const e = /e([-+]?\d+)$/i.exec(s);
  return Math.max(0, (m?.[1].length ?? 0) - (e ? Number(e[1]) : 0));
}

function parseRange(item: string, shown: string): number[] {
  const m = /^([^.:]+|[-+]?\d*\.\d+)\.\.([^:]+)(?::(x|\*)?(.+))?$/.exec(item);
  const bad = (why: string): SweepSpecError => new SweepSpecError(`${shown}: bad range "${item}": ${why}`);
  if (!m) throw bad('expected a..b, a..b:step or a..b:x factor');
  const [, aS, bS, geo, stepS] = m;
  if (!NUMBER.test(aS) || !NUMBER.test(bS)) throw bad('both ends must be numbers');
  const a = Number(aS), b = Number(bS);
  if (a > b) throw bad(`the start ${aS} is greater than the end ${bS}`);
  if (stepS !== undefined && !NUMBER.test(stepS)) throw bad(`the step "${stepS}" is not a number`);
  const out: number[] = [];
  if (geo !== undefined) {
    const f = Number(stepS);
    if (!(f > 1)) throw bad('a geometric factor must be greater than 1');
    if (!(a > 0)) throw bad('a geometric range must start above 0');
    const dec = Math.max(decimals(aS), decimals(stepS!) * 4);
    for (let v = a; v <= b * (1 + 1e-12); v = round(v * f, dec)) {
      out.push(v);
      if (out.length > MAX_AXIS_VALUES) throw bad(`more than ${MAX_AXIS_VALUES} values`);
    }
    return out;
  }
  const step = stepS === undefined ? 1 : Number(stepS);
  if (!(step > 0)) throw bad('the step must be greater than 0');
  const dec = Math.max(decimals(aS), decimals(stepS ?? '1'));
  const n = Math.floor((b - a) / step + 1e-9);
  if (n + 1 > MAX_AXIS_VALUES) throw bad(`more than ${MAX_AXIS_VALUES} values`);
  for (let i = 0; i <= n; i++) out.push(round(a + i * step, dec));
  return out;
}

const round = (v: number, dec: number): number => (dec > 0 ? Number(v.toFixed(Math.min(dec, 12))) : Math.round(v));

/** Checks a set of axes: no path given twice, a grid of reasonable size. */
export function checkAxes(axes: readonly SweepAxis[]): void {
  const seen = new Map<string, string>();
  for (const ax of axes) {
    for (const p of ax.paths) {
      const k = p.join('.');
      for (const [other, flag] of seen) {
        if (k === other || k.startsWith(other + '.') || other.startsWith(k + '.')) {
          throw new SweepSpecError(`--vary ${ax.flag}: ${k} is already varied by --vary ${flag}`);
        }
      }
      seen.set(k, ax.flag);
    }
  }
  if (gridSize(axes) > MAX_GRID_POINTS) throw new SweepSpecError(`--vary: the grid has ${gridSize(axes)} points (at most ${MAX_GRID_POINTS})`);
}

export function gridSize(axes: readonly SweepAxis[]): number {
  return axes.reduce((n, a) => n * a.values.length, 1);
}

/**
 * Indices into each axis' values for grid point `p`: row-major, the first axis outermost (so
 * points of the last --vary are adjacent). No axes = one point.
 */
export function pointIndices(axes: readonly SweepAxis[], p: number): number[] {
  const idx = new Array<number>(axes.length);
  for (let i = axes.length - 1; i >= 0; i--) {
    const n = axes[i].values.length;
    idx[i] = p % n;
    p = Math.floor(p / n);
  }
  return idx;
}

/** `{ key: value }` of grid point `p`, in axis order. */
export function pointParams(axes: readonly SweepAxis[], p: number): Record<string, AxisValue> {
  const idx = pointIndices(axes, p);
  const o: Record<string, AxisValue> = {};
  axes.forEach((a, i) => { o[a.key] = a.values[idx[i]]; });
  return o;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Deep copy of JSON-like data (what a YAML document's toJS() gives for a scenario). */
export function cloneJson<T>(x: T): T {
  return x === undefined ? x : (JSON.parse(JSON.stringify(x)) as T);
}

/**
 * Set `path` in `obj` to `value`, creating missing mappings. Throws SweepSpecError if the path
 * runs through a scalar (`seed.x` when seed is 1).
 */
export function setPath(obj: Record<string, unknown>, path: readonly string[], value: AxisValue, shown: string): void {
  let cur: Json = obj as Json;
  for (let i = 0; i < path.length - 1; i++) {
    const seg = path[i];
    const container = cur as Record<string, Json> | Json[];
    let next: Json | undefined = Array.isArray(container) ? container[Number(seg)] : container[seg];
    if (next === undefined || next === null) {
      next = {};
      if (Array.isArray(container)) {
        if (!/^\d+$/.test(seg)) throw new SweepSpecError(`${shown}: ${path.slice(0, i).join('.')} is a list: "${seg}" is not an index`);
        container[Number(seg)] = next;
      } else {
        container[seg] = next;
      }
    }
    if (typeof next !== 'object') {
      throw new SweepSpecError(`${shown}: cannot set ${path.join('.')}: ${path.slice(0, i + 1).join('.')} is ${JSON.stringify(next)}, not a mapping`);
    }
    cur = next;
  }
  const last = path[path.length - 1];
  if (Array.isArray(cur)) {
    if (!/^\d+$/.test(last)) throw new SweepSpecError(`${shown}: ${path.slice(0, -1).join('.')} is a list: "${last}" is not an index`);
    cur[Number(last)] = value;
  } else {
    (cur as Record<string, Json>)[last] = value;
  }
}

/** The raw scenario with grid point `p`'s values applied (a copy; `base` is not changed). */
export function applyPoint(base: Record<string, unknown>, axes: readonly SweepAxis[], p: number): Record<string, unknown> {
  const raw = cloneJson(base);
  const idx = pointIndices(axes, p);
  axes.forEach((a, i) => {
    for (const path of a.paths) setPath(raw, path, a.values[idx[i]], `--vary ${a.flag}`);
  });
  return raw;
}

/** Short label of a grid point for charts and tables: `key=value, key=value`. */
export function pointLabel(axes: readonly SweepAxis[], p: number): string {
  const params = pointParams(axes, p);
  const parts = axes.map((a) => `${shortKey(a.key)}=${String(params[a.key])}`);
  return parts.length === 0 ? 'scenario' : parts.join(', ');
}

/** The last segment of each path of a key: `cpu.vmidBits+smmu.vmidBits` → `vmidBits`. */
export function shortKey(key: string): string {
  const lasts = key.split('+').map((p) => p.split('.').pop() ?? p);
  return [...new Set(lasts)].join('+');
}
