/**
 * The page's controls ("knobs") as views of the scenario YAML: each knob reads a value from the
 * text and writes it back into the text, so the editor always shows what runs. Edits change
 * only the value's own characters when the field is present (comments and layout survive);
 * a missing field is added through the YAML document model.
 *
 * Pure (no DOM): unit-tested in Node by test/web/knobs.test.ts.
 */
import { isMap, parseDocument, type Node } from 'yaml';
import { isPolicy, type Policy } from './policies.js';

export interface KnobValues {
  /** cpu.vmidBits and smmu.vmidBits, set together. */
  vmidBits: 8 | 16;
  /** workload.devicesPerVm: SR-IOV VFs assigned to each VM. */
  vfs: number;
  /** compare (or the single `policy`). */
  policies: Policy[];
  /** smmu.tlb.entries. */
  tlbEntries: number;
  /** workload.kvm.unmapPerMsPerVm. */
  kvmUnmap: number;
  /** duration.ms. */
  durationMs: number;
}
export type Knob = keyof KnobValues;
export const KNOBS: readonly Knob[] = ['vmidBits', 'vfs', 'policies', 'tlbEntries', 'kvmUnmap', 'durationMs'];
export type KnobEdits = Partial<KnobValues>;

/** What the knobs show for a scenario text. */
export interface KnobView {
  /** null when CPU and SMMU VMID widths differ (or are not 8/16). */
  vmidBits: 8 | 16 | null;
  cpuVmidBits: unknown;
  smmuVmidBits: unknown;
  vfs: number;
  policies: Policy[];
  tlbEntries: number;
  tlbWays: number;
  kvmUnmap: number;
  /** null when the scenario stops after a number of events. */
  durationMs: number | null;
  durationEvents: number | null;
}

/**
 * The schema defaults of the fields the knobs show (src/workload/schema.ts; a test checks they
 * agree with ScenarioSchema.parse({})).
 */
export const KNOB_DEFAULTS = {
  cpuVmidBits: 8, smmuVmidBits: 8, vfs: 2, policy: 'btm-2020' as Policy, tlbEntries: 2048, tlbWays: 4,
  kvmUnmap: 1, durationMs: 20,
};

/** The values each slider steps through (the current value is added when it is not on the scale). */
export const SCALES = {
  vfs: Array.from({ length: 65 }, (_, i) => i),
  kvmUnmap: [0, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100],
  durationMs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
  /** entries = ways x 2^k sets, so the geometry stays valid (sets must be a power of two). */
  tlbEntries: (ways: number): number[] => Array.from({ length: 11 }, (_, k) => ways * 2 ** (k + 4)),
};

/** `scale` with `v` inserted in order if it is not already there. */
export function withValue(scale: readonly number[], v: number): number[] {
  if (!Number.isFinite(v) || scale.includes(v)) return [...scale];
  return [...scale, v].sort((a, b) => a - b);
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const num = (v: unknown, d: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : d);

/** The knob values of a scenario text, or null if it is not a YAML mapping. */
export function readKnobs(text: string): KnobView | null {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return null;
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch {
    return null;
  }
  if (data === null || data === undefined) data = {};
  if (typeof data !== 'object' || Array.isArray(data)) return null;
  const d = data as Obj;
  const cpu = obj(d.cpu), smmu = obj(d.smmu), wl = obj(d.workload), tlb = obj(smmu.tlb), dur = obj(d.duration);
  const cpuBits = cpu.vmidBits ?? KNOB_DEFAULTS.cpuVmidBits;
  const smmuBits = smmu.vmidBits ?? KNOB_DEFAULTS.smmuVmidBits;
  const compare = Array.isArray(d.compare) ? d.compare.filter(isPolicy) : null;
  const single = isPolicy(d.policy) ? d.policy : KNOB_DEFAULTS.policy;
  const hasEvents = d.duration !== undefined && 'events' in dur && !('ms' in dur);
  return {
    vmidBits: cpuBits === smmuBits && (cpuBits === 8 || cpuBits === 16) ? cpuBits : null,
    cpuVmidBits: cpuBits,
    smmuVmidBits: smmuBits,
    vfs: num(wl.devicesPerVm, KNOB_DEFAULTS.vfs),
    policies: compare !== null && compare.length > 0 ? [...new Set(compare)] : [single],
    tlbEntries: num(tlb.entries, KNOB_DEFAULTS.tlbEntries),
    tlbWays: num(tlb.ways, KNOB_DEFAULTS.tlbWays),
    kvmUnmap: num(obj(wl.kvm).unmapPerMsPerVm, KNOB_DEFAULTS.kvmUnmap),
    durationMs: hasEvents ? null : num(dur.ms, KNOB_DEFAULTS.durationMs),
    durationEvents: hasEvents ? num(dur.events, 0) : null,
  };
}

/** The current value of one knob in a view (null when the view cannot show one). */
export function knobValue<K extends Knob>(v: KnobView, k: K): KnobValues[K] | null {
  return (v as unknown as Record<Knob, unknown>)[k] as KnobValues[K] | null;
}

/**
 * `text` with one knob set to `value`, or null when the text cannot take it (a YAML syntax
 * error, or the top level or a parent field is not a mapping).
 */
export function applyKnob<K extends Knob>(text: string, knob: K, value: KnobValues[K]): string | null {
  switch (knob) {
    case 'vmidBits': {
      const t = setPath(text, ['cpu', 'vmidBits'], value);
      return t === null ? null : setPath(t, ['smmu', 'vmidBits'], value);
    }
    case 'vfs': return setPath(text, ['workload', 'devicesPerVm'], value);
    case 'policies': {
      const list = value as Policy[];
      return setPath(text, ['compare'], [...list], `[${list.join(', ')}]`);
    }
    case 'tlbEntries': return setPath(text, ['smmu', 'tlb', 'entries'], value);
    case 'kvmUnmap': return setPath(text, ['workload', 'kvm', 'unmapPerMsPerVm'], value);
    case 'durationMs': {
      const doc = parseDocument(text);
      const dur = doc.errors.length === 0 && isMap(doc.contents) ? doc.get('duration', true) : undefined;
      if (isMap(dur) && dur.has('ms') && !dur.has('events')) return setPath(text, ['duration', 'ms'], value);
      return setPath(text, ['duration'], { ms: value }, `{ ms: ${String(value)} }`);
    }
    default: return null;
  }
}

/** Applies several knob edits in KNOBS order; null if one cannot be applied. */
export function applyKnobs(text: string, edits: KnobEdits): string | null {
  let t: string | null = text;
  for (const k of KNOBS) {
    const v = edits[k];
    if (v === undefined || t === null) continue;
    t = applyKnob(t, k, v as never);
  }
  return t;
}

/**
 * Sets `path` to `value`: by replacing the source characters of the existing node with `flow`
 * (default: the scalar as YAML writes it) when the field exists, else through the document model.
 */
function setPath(text: string, path: string[], value: unknown, flow?: string): string | null {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return null;
  if (doc.contents !== null && !isMap(doc.contents)) return null;
  const node = doc.getIn(path, true) as Node | undefined;
  if (node?.range !== undefined && node.range !== null) {
    const [a, b] = node.range;
    const out = text.slice(0, a) + (flow ?? String(value)) + text.slice(b);
    if (holds(out, path, value)) return out;
  }
  try {
    doc.setIn(path, value);
  } catch {
    return null; // a parent on the path is a scalar or a list
  }
  const out = doc.toString();
  return holds(out, path, value) ? out : null;
}

function holds(text: string, path: string[], value: unknown): boolean {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return false;
  const got = doc.getIn(path) as unknown;
  const plain = got !== null && typeof got === 'object' && 'toJSON' in got ? (got as { toJSON(): unknown }).toJSON() : got;
  return JSON.stringify(plain) === JSON.stringify(value);
}

/** The edits whose value differs from the knob's value in `base` (keeps URLs short). */
export function effectiveEdits(base: KnobView | null, edits: KnobEdits): KnobEdits {
  if (base === null) return { ...edits };
  const out: KnobEdits = {};
  for (const k of KNOBS) {
    const v = edits[k];
    if (v === undefined) continue;
    if (JSON.stringify(knobValue(base, k)) !== JSON.stringify(v)) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}
