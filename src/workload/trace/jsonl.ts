/**
 * btmsim's own trace format: JSON Lines, one event per line, versioned (`btmsim-trace` v1).
 * It holds everything the hardware model consumes, so a replay is deterministic and gives the
 * same metrics as the run that recorded it: page-table changes, STE/CD contents as the SMMU read
 * them, SMMU commands as 128-bit words (or named fields), register writes, DMA translations, CPU
 * TLBIs with the issuing regime (VMID, E2H, TGE, EL, HCR_EL2.FB), DSBs, CPU accesses, and the
 * metrics attribution (contexts and invalidation intents). docs/traces.md is the reference.
 *
 * This module is the codec: event types, `eventToJson` (stable key order) and
 * `parseTraceLine` (validation with line numbers). No Node or DOM imports.
 */
import { encodeCommand, fromHex32, toHex32, CommandSyntaxError, type FieldValue } from '../../arch/commands.js';
import { TLBI } from '../../arch/tlbi.js';
import { newCd, newSte, type Cd, type Ste } from '../../hw/smmu/structures.js';
import type { TlbGeometry } from '../../hw/tlb/tlb-api.js';
import type { SmmuKnobs } from '../../hw/knobs.js';
import { TraceError } from './errors.js';

export const TRACE_FORMAT = 'btmsim-trace';
export const TRACE_VERSION = 1;

// ---------------------------------------------------------------------------------------------
// Events

export interface SmmuDesc {
  idr0: number; idr1: number; idr3: number; idr5: number; aidr: number; iidr: number;
  tlb: TlbGeometry;
  microTlbEntries: number; walkCacheEntries: number; atcEntries: number;
  knobs?: Partial<SmmuKnobs>;
}
export interface SystemDesc {
  cpus: number;
  vhe: boolean;
  cpuTlb: TlbGeometry;
  smmus: SmmuDesc[];
}
/** How the SMMU driver was probed (ArmSmmuDriver.probe options that change hardware state). */
export interface DriverDesc {
  btm: boolean;
  vhe: boolean;
}
export interface CostDesc {
  tlbHitNs: number; walkAccessNs: number; commandNs: number; cmdSyncNs: number; dvmMessageNs: number;
  /** Since btmsim 0.1 with guest SVA (optional: older traces lack it). */
  vsmmuTrapNs?: number;
}

interface Base { t?: number }
export interface HeaderEvent extends Base {
  e: 'header'; format: string; version: number; source: string;
  system: SystemDesc; driver: DriverDesc; cost?: CostDesc; info?: Record<string, unknown>;
}
export interface RegEvent extends Base { e: 'reg'; smmu: number; off: number; val: number }
/** One publication of commands (one CMDQ_PROD write): 4 words per command, as in the ring. */
export interface CmdsEvent extends Base { e: 'cmds'; smmu: number; w: Uint32Array }
export interface SteEvent extends Base { e: 'ste'; smmu: number; sid: number; ste: Ste | null }
export interface CdEvent extends Base { e: 'cd'; smmu: number; ptr: number; index: number; cd: Cd | null }
/** Configuration-cache invalidation outside the command queue (sid -1: all). */
export interface CfgInvEvent extends Base { e: 'cfginv'; smmu: number; sid: number; ssid?: number }
export interface TableEvent extends Base { e: 'table'; id: number; ctx: number; name: string }
export interface MapEvent extends Base { e: 'map'; table: number; page: number; out: number; size: number }
export interface LinearEvent extends Base { e: 'linear'; table: number; start: number; count: number; out: number }
export interface UnmapEvent extends Base { e: 'unmap'; table: number; page: number }
export interface UnmapRangeEvent extends Base { e: 'unmapRange'; table: number; page: number; count: number }
export interface RemapEvent extends Base { e: 'remap'; table: number; page: number }
export interface DmaEvent extends Base { e: 'dma'; smmu: number; sid: number; ssid: number; page: number }
/** The issuing PE's regime at the TLBI: VTTBR_EL2.VMID, HCR_EL2.{E2H,TGE,FB}, current EL. */
export interface Regime { vmid: number; el: 1 | 2; e2h: boolean; tge: boolean; fb: boolean }
export interface TlbiEvent extends Base, Regime {
  e: 'tlbi'; cpu: number; op: string; asid: number; page: number; pages: number; ttl: number; granule: number;
}
export interface DsbEvent extends Base { e: 'dsb'; cpu: number }
export interface AccessEvent extends Base, Omit<Regime, 'fb'> {
  e: 'access'; cpu: number; table: number; page: number; ctx: number; asid: number;
}
/** The SMMU emptied its TLB by itself (QEMU's capacity flush). Applied only when replaying as recorded. */
export interface FlushEvent extends Base { e: 'flush'; smmu: number; why: string }
export interface CtxEvent extends Base { e: 'ctx'; id: number; kind: number; vm: number; name: string }
/** Start attributing removed entries to `source`; mode 'kvm-all' = KVM rollover intent. */
export interface IntentEvent extends Base { e: 'intent'; source: string; mode?: 'set' | 'kvm-all' }
export interface IntendEvent extends Base { e: 'intend'; ctx: number }
export interface IntentEndEvent extends Base { e: 'intent-end' }
export interface VmEvent extends Base { e: 'vm'; op: string; slot: number; kvmId: number; vmid?: number }
export interface VcpuEvent extends Base { e: 'vcpu'; op: string; cpu: number; slot: number; vmid: number }
export interface MmEvent extends Base { e: 'mm'; op: string; cpu: number; mm: number; asid: number }
export interface MarkEvent extends Base { e: 'mark'; text: string }
/** Trailer: what the recording run measured (compared by replay). */
export interface EndEvent extends Base { e: 'end'; metrics?: Record<string, unknown> }

export type TraceEvent =
  | HeaderEvent | RegEvent | CmdsEvent | SteEvent | CdEvent | CfgInvEvent | TableEvent | MapEvent
  | LinearEvent | UnmapEvent | UnmapRangeEvent | RemapEvent | DmaEvent | TlbiEvent | DsbEvent
  | AccessEvent | FlushEvent | CtxEvent | IntentEvent | IntendEvent | IntentEndEvent | VmEvent
  | VcpuEvent | MmEvent | MarkEvent | EndEvent;
export type TraceEventKind = TraceEvent['e'];

export const EVENT_KINDS: readonly TraceEventKind[] = [
  'header', 'reg', 'cmds', 'ste', 'cd', 'cfginv', 'table', 'map', 'linear', 'unmap', 'unmapRange',
  'remap', 'dma', 'tlbi', 'dsb', 'access', 'flush', 'ctx', 'intent', 'intend', 'intent-end', 'vm',
  'vcpu', 'mm', 'mark', 'end',
];

/** Source names of `intent` events (Metrics Source order). */
export const INTENT_SOURCES = ['kvmPage', 'kvmRange', 'kvmVm', 'kvmRollover', 'hostMm', 'guest', 'driver', 'asidRollover'] as const;

// ---------------------------------------------------------------------------------------------
// Writing

const STE_KEYS = ['V', 'Config', 'S1ContextPtr', 'S1CDMax', 'S1DSS', 'EATS', 'STRW', 'S2VMID', 'S2TTB', 'S2TG'] as const;
const CD_KEYS = ['V', 'ASID', 'ASET', 'TTB0', 'TG0', 'EPD0'] as const;

export function steToJson(s: Ste): Record<string, number | boolean> {
  const o: Record<string, number | boolean> = {};
  for (const k of STE_KEYS) o[k] = s[k];
  if (s.S2ASET_HYP === true) o.S2ASET_HYP = true;
  return o;
}
export function cdToJson(c: Cd): Record<string, number | boolean> {
  const o: Record<string, number | boolean> = {};
  for (const k of CD_KEYS) o[k] = c[k];
  return o;
}

/** Commands of a `cmds` event as 32-hex-digit strings (dw1 then dw0, as `btmsim explain` reads). */
export function commandsToHex(w: Uint32Array): string[] {
  const out: string[] = [];
  for (let off = 0; off + 4 <= w.length; off += 4) out.push(toHex32(w, off));
  return out;
}

/** One event as one JSON line (no newline). Keys in a fixed order, so output is byte-stable. */
export function eventToJson(ev: TraceEvent): string {
  if (ev.e === 'cmds') {
    return JSON.stringify(withT({ e: ev.e, smmu: ev.smmu, w: commandsToHex(ev.w) }, ev.t));
  }
  if (ev.e === 'ste') return JSON.stringify(withT({ e: ev.e, smmu: ev.smmu, sid: ev.sid, ste: ev.ste === null ? null : steToJson(ev.ste) }, ev.t));
  if (ev.e === 'cd') return JSON.stringify(withT({ e: ev.e, smmu: ev.smmu, ptr: ev.ptr, index: ev.index, cd: ev.cd === null ? null : cdToJson(ev.cd) }, ev.t));
  // Everything else is plain data: `e` first, then `t`, then the fields in declaration order.
  const { e, t, ...rest } = ev as TraceEvent & { t?: number };
  return JSON.stringify(t === undefined ? { e, ...rest } : { e, t, ...rest });
}

function withT(o: Record<string, unknown>, t: number | undefined): Record<string, unknown> {
  if (t === undefined) return o;
  const { e, ...rest } = o;
  return { e, t, ...rest };
}

// ---------------------------------------------------------------------------------------------
// Reading

type Obj = Record<string, unknown>;

/** The line being parsed (for error columns). */
let curLine = '';
let curLineOffset = 0;

/** 1-based column of `"key":` in the current line (the first occurrence), 1 if absent. */
function colOfKey(key: string): number {
  const m = new RegExp(`"${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"\\s*:`).exec(curLine);
  return m === null ? 1 : curLineOffset + m.index + 1;
}

class V {
  constructor(readonly o: Obj, readonly lineNo: number, readonly what: string) {}
  /** Fail at field `k` (its column in the line) or at the line. */
  fail(msg: string, k?: string): never {
    throw new TraceError(this.lineNo, `${this.what}: ${msg}`, k === undefined ? 1 : colOfKey(k));
  }
  int(k: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.o[k];
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(v === undefined ? `missing "${k}"` : `"${k}" must be an integer, got ${JSON.stringify(v)}`, k);
    if (v < min || v > max) this.fail(`"${k}" = ${v} out of range ${min}..${max}`, k);
    return v;
  }
  optInt(k: string, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    return this.o[k] === undefined ? dflt : this.int(k, min, max);
  }
  num(k: string): number {
    const v = this.o[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(v === undefined ? `missing "${k}"` : `"${k}" must be a number`, k);
    return v;
  }
  bool(k: string, dflt?: boolean): boolean {
    const v = this.o[k];
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== 'boolean') this.fail(v === undefined ? `missing "${k}"` : `"${k}" must be true or false`, k);
    return v;
  }
  str(k: string, dflt?: string): string {
    const v = this.o[k];
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== 'string') this.fail(v === undefined ? `missing "${k}"` : `"${k}" must be a string`, k);
    return v;
  }
  obj(k: string): Obj {
    const v = this.o[k];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(v === undefined ? `missing "${k}"` : `"${k}" must be an object`, k);
    return v as Obj;
  }
}

const M32 = 0xffffffff;
const PAGE_MAX = 2 ** 52;

function geometry(v: V, k: string): TlbGeometry {
  const g = new V(v.obj(k), v.lineNo, `${v.what} ${k}`);
  const policy = g.str('policy', 'lru');
  if (policy !== 'lru' && policy !== 'rr' && policy !== 'random') g.fail(`"policy" must be lru, rr or random`, 'policy');
  const out: TlbGeometry = { entries: g.int('entries', 1, 2 ** 26), ways: g.int('ways', 1, 2 ** 26), policy: policy as TlbGeometry['policy'] };
  if (g.o.seed !== undefined) out.seed = g.int('seed', 0, M32);
  return out;
}

function parseHeader(v: V): HeaderEvent {
  const format = v.str('format');
  if (format !== TRACE_FORMAT) v.fail(`"format" must be "${TRACE_FORMAT}", got "${format}"`, 'format');
  const version = v.int('version', 1, 1000);
  if (version > TRACE_VERSION) v.fail(`version ${version} is newer than this btmsim reads (${TRACE_VERSION})`, 'version');
  const sys = new V(v.obj('system'), v.lineNo, 'header system');
  const smmusRaw = sys.o.smmus;
  if (!Array.isArray(smmusRaw) || smmusRaw.length === 0) sys.fail('"smmus" must be a non-empty array', 'smmus');
  const smmus: SmmuDesc[] = (smmusRaw as unknown[]).map((x, i) => {
    if (typeof x !== 'object' || x === null) sys.fail(`smmus[${i}] must be an object`, 'smmus');
    const s = new V(x as Obj, v.lineNo, `header smmus[${i}]`);
    const d: SmmuDesc = {
      idr0: s.int('idr0', 0, M32), idr1: s.int('idr1', 0, M32), idr3: s.int('idr3', 0, M32), idr5: s.int('idr5', 0, M32),
      aidr: s.optInt('aidr', 0, 0, M32), iidr: s.optInt('iidr', 0, 0, M32), tlb: geometry(s, 'tlb'),
      microTlbEntries: s.optInt('microTlbEntries', 0), walkCacheEntries: s.optInt('walkCacheEntries', 0),
      atcEntries: s.optInt('atcEntries', 0),
    };
    if (s.o.knobs !== undefined) d.knobs = s.obj('knobs') as Partial<SmmuKnobs>;
    return d;
  });
  const system: SystemDesc = {
    cpus: sys.int('cpus', 1, 4096), vhe: sys.bool('vhe', false), cpuTlb: geometry(sys, 'cpuTlb'), smmus,
  };
  const drv = v.o.driver === undefined ? new V({}, v.lineNo, 'header driver') : new V(v.obj('driver'), v.lineNo, 'header driver');
  const h: HeaderEvent = {
    e: 'header', format, version, source: v.str('source', 'unknown'), system,
    driver: { btm: drv.bool('btm', false), vhe: drv.bool('vhe', system.vhe) },
  };
  if (v.o.cost !== undefined) {
    const c = new V(v.obj('cost'), v.lineNo, 'header cost');
    h.cost = { tlbHitNs: c.num('tlbHitNs'), walkAccessNs: c.num('walkAccessNs'), commandNs: c.num('commandNs'), cmdSyncNs: c.num('cmdSyncNs'), dvmMessageNs: c.num('dvmMessageNs') };
    if (c.o.vsmmuTrapNs !== undefined) h.cost.vsmmuTrapNs = c.num('vsmmuTrapNs');
  }
  if (v.o.info !== undefined) h.info = v.obj('info');
  return h;
}

function parseCommands(v: V): Uint32Array {
  const raw = v.o.w;
  if (!Array.isArray(raw) || raw.length === 0) v.fail('"w" must be a non-empty array of commands', 'w');
  const list = raw as unknown[];
  if (list.length > 256) v.fail(`${list.length} commands in one submission (at most 256: the queue size)`, 'w');
  const w = new Uint32Array(list.length * 4);
  list.forEach((c, i) => {
    let words: Uint32Array;
    try {
      if (typeof c === 'string') words = fromHex32(c);
      else if (typeof c === 'object' && c !== null && !Array.isArray(c)) {
        const o = c as Obj;
        if (typeof o.name !== 'string') v.fail(`w[${i}]: a named command needs "name"`, 'w');
        const fields: Record<string, FieldValue | undefined> = {};
        if (o.fields !== undefined) {
          if (typeof o.fields !== 'object' || o.fields === null) v.fail(`w[${i}]: "fields" must be an object`, 'fields');
          for (const [k, x] of Object.entries(o.fields as Obj)) {
            if (typeof x === 'number') fields[k] = x;
            else if (typeof x === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(x)) fields[k] = BigInt(x);
            else v.fail(`w[${i}]: field ${k} must be a number or a "0x..." string`, k);
          }
        }
        words = encodeCommand({ name: o.name, fields });
      } else {
        v.fail(`w[${i}] must be 32 hex digits, "dw0 dw1", or {"name": ..., "fields": {...}}`, 'w');
      }
    } catch (e) {
      if (e instanceof TraceError) throw e;
      if (e instanceof CommandSyntaxError || e instanceof RangeError) v.fail(`w[${i}]: ${e.message}`, 'w');
      throw e;
    }
    w.set(words, i * 4);
  });
  return w;
}

function parseSte(v: V): Ste | null {
  if (v.o.ste === null) return null;
  const s = new V(v.obj('ste'), v.lineNo, 'ste');
  const ste = newSte({
    V: s.bool('V', true), Config: s.optInt('Config', 0, 0, 7), S1ContextPtr: s.optInt('S1ContextPtr', 0),
    S1CDMax: s.optInt('S1CDMax', 0, 0, 20), S1DSS: s.optInt('S1DSS', 0, 0, 3), EATS: s.optInt('EATS', 0, 0, 3),
    STRW: s.optInt('STRW', 0, 0, 3), S2VMID: s.optInt('S2VMID', 0, 0, 0xffff), S2TTB: s.optInt('S2TTB', 0),
    S2TG: s.optInt('S2TG', 0, 0, 3),
  });
  if (s.o.S2ASET_HYP !== undefined) ste.S2ASET_HYP = s.bool('S2ASET_HYP');
  return ste;
}

function parseCd(v: V): Cd | null {
  if (v.o.cd === null) return null;
  const c = new V(v.obj('cd'), v.lineNo, 'cd');
  return newCd({
    V: c.bool('V', true), ASID: c.optInt('ASID', 0, 0, 0xffff), ASET: c.optInt('ASET', 0, 0, 3),
    TTB0: c.optInt('TTB0', 0), TG0: c.optInt('TG0', 0, 0, 3), EPD0: c.bool('EPD0', false),
  });
}

function regime(v: V): Regime {
  const el = v.optInt('el', 1, 1, 2) as 1 | 2;
  return { vmid: v.optInt('vmid', 0, 0, 0xffff), el, e2h: v.bool('e2h', false), tge: v.bool('tge', false), fb: v.bool('fb', false) };
}

/**
 * Parse and validate one line. Returns null for a blank line. Throws TraceError (with the line
 * number) for anything malformed: bad JSON, unknown event, missing or mistyped field, value out
 * of range, header not first or repeated (`expectHeader` says whether this must be the header).
 */
export function parseTraceLine(text: string, lineNo: number, expectHeader: boolean): TraceEvent | null {
  const s = text.trim();
  if (s.length === 0) return null;
  curLine = s;
  curLineOffset = text.indexOf(s[0]);
  let raw: unknown;
  try {
    raw = JSON.parse(s);
  } catch (e) {
    const msg = (e as Error).message;
    const pos = /at position (\d+)/.exec(msg);
    throw new TraceError(lineNo, `not valid JSON (${msg})`, pos === null ? 1 : curLineOffset + Number(pos[1]) + 1);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new TraceError(lineNo, 'each line must be a JSON object', curLineOffset + 1);
  const o = raw as Obj;
  const kind = o.e;
  if (typeof kind !== 'string') throw new TraceError(lineNo, 'missing event kind "e"', colOfKey('e'));
  if (expectHeader && kind !== 'header') throw new TraceError(lineNo, `the first line must be the header ({"e":"header","format":"${TRACE_FORMAT}","version":${TRACE_VERSION},...}), got "${kind}"`, colOfKey('e'));
  if (!expectHeader && kind === 'header') throw new TraceError(lineNo, 'a second header', colOfKey('e'));
  const v = new V(o, lineNo, kind);
  let t: number | undefined;
  if (o.t !== undefined) t = v.num('t');
  const T = t === undefined ? {} : { t };
  switch (kind as TraceEventKind) {
    case 'header': return { ...parseHeader(v), ...T };
    case 'reg': return { e: 'reg', ...T, smmu: v.int('smmu', 0, 255), off: v.int('off', 0, 0xfffff), val: v.int('val', 0, M32) };
    case 'cmds': return { e: 'cmds', ...T, smmu: v.int('smmu', 0, 255), w: parseCommands(v) };
    case 'ste': return { e: 'ste', ...T, smmu: v.int('smmu', 0, 255), sid: v.int('sid', 0, M32), ste: parseSte(v) };
    case 'cd': return { e: 'cd', ...T, smmu: v.int('smmu', 0, 255), ptr: v.int('ptr'), index: v.int('index', 0, 0xfffff), cd: parseCd(v) };
    case 'cfginv': {
      const ev: CfgInvEvent = { e: 'cfginv', ...T, smmu: v.int('smmu', 0, 255), sid: v.int('sid', -1, M32) };
      if (o.ssid !== undefined) ev.ssid = v.int('ssid', 0, 0xfffff);
      return ev;
    }
    case 'table': return { e: 'table', ...T, id: v.int('id'), ctx: v.int('ctx', -1), name: v.str('name', '') };
    case 'map': {
      const size = v.optInt('size', 0, 0, 18);
      if (size !== 0 && size !== 9 && size !== 18) v.fail('"size" must be 0 (4 KiB), 9 (2 MiB) or 18 (1 GiB)', 'size');
      return { e: 'map', ...T, table: v.int('table'), page: v.int('page', 0, PAGE_MAX), out: v.int('out', 0, PAGE_MAX), size };
    }
    case 'linear': return { e: 'linear', ...T, table: v.int('table'), start: v.int('start', 0, PAGE_MAX), count: v.int('count', 0, PAGE_MAX), out: v.int('out', 0, PAGE_MAX) };
    case 'unmap': return { e: 'unmap', ...T, table: v.int('table'), page: v.int('page', 0, PAGE_MAX) };
    case 'unmapRange': return { e: 'unmapRange', ...T, table: v.int('table'), page: v.int('page', 0, PAGE_MAX), count: v.int('count', 0, PAGE_MAX) };
    case 'remap': return { e: 'remap', ...T, table: v.int('table'), page: v.int('page', 0, PAGE_MAX) };
    case 'dma': return { e: 'dma', ...T, smmu: v.int('smmu', 0, 255), sid: v.int('sid', 0, M32), ssid: v.optInt('ssid', 0, 0, 0xfffff), page: v.int('page', 0, PAGE_MAX) };
    case 'tlbi': {
      const op = v.str('op');
      if (TLBI[op] === undefined) v.fail(`unknown TLBI instruction "${op}" (e.g. VMALLS12E1IS, IPAS2E1IS, VAE1IS)`, 'op');
      return {
        e: 'tlbi', ...T, cpu: v.int('cpu', 0, 4095), op, ...regime(v), asid: v.optInt('asid', 0, 0, 0xffff),
        page: v.optInt('page', 0, 0, PAGE_MAX), pages: v.optInt('pages', 1, 0, PAGE_MAX), ttl: v.optInt('ttl', 0, 0, 3),
        granule: v.optInt('granule', 0, 0, 16),
      };
    }
    case 'dsb': return { e: 'dsb', ...T, cpu: v.int('cpu', 0, 4095) };
    case 'access': {
      const r = regime(v);
      return {
        e: 'access', ...T, cpu: v.int('cpu', 0, 4095), table: v.int('table'), page: v.int('page', 0, PAGE_MAX),
        ctx: v.int('ctx', -1), vmid: r.vmid, el: r.el, e2h: r.e2h, tge: r.tge, asid: v.optInt('asid', 0, 0, 0xffff),
      };
    }
    case 'flush': return { e: 'flush', ...T, smmu: v.int('smmu', 0, 255), why: v.str('why', 'capacity') };
    case 'ctx': return { e: 'ctx', ...T, id: v.int('id'), kind: v.int('kind', 0, 255), vm: v.int('vm', -1), name: v.str('name', '') };
    case 'intent': {
      const source = v.str('source');
      if (!(INTENT_SOURCES as readonly string[]).includes(source)) v.fail(`unknown source "${source}" (${INTENT_SOURCES.join(', ')})`, 'source');
      const mode = v.str('mode', 'set');
      if (mode !== 'set' && mode !== 'kvm-all') v.fail('"mode" must be "set" or "kvm-all"', 'mode');
      return { e: 'intent', ...T, source, mode: mode as 'set' | 'kvm-all' };
    }
    case 'intend': return { e: 'intend', ...T, ctx: v.int('ctx', -1) };
    case 'intent-end': return { e: 'intent-end', ...T };
    case 'vm': {
      const ev: VmEvent = { e: 'vm', ...T, op: v.str('op'), slot: v.int('slot', -1), kvmId: v.int('kvmId', -1) };
      if (o.vmid !== undefined) ev.vmid = v.int('vmid', 0, 0xffff);
      return ev;
    }
    case 'vcpu': return { e: 'vcpu', ...T, op: v.str('op'), cpu: v.int('cpu', 0, 4095), slot: v.int('slot', -1), vmid: v.optInt('vmid', 0, 0, 0xffff) };
    case 'mm': return { e: 'mm', ...T, op: v.str('op'), cpu: v.int('cpu', 0, 4095), mm: v.int('mm', -1), asid: v.optInt('asid', 0, 0, 0xffff) };
    case 'mark': return { e: 'mark', ...T, text: v.str('text', '') };
    case 'end': {
      const ev: EndEvent = { e: 'end', ...T };
      if (o.metrics !== undefined) ev.metrics = v.obj('metrics');
      return ev;
    }
    default:
      throw new TraceError(lineNo, `unknown event "${kind}" (known: ${EVENT_KINDS.join(', ')})`, colOfKey('e'));
  }
}

/** Reads a JSONL trace line by line: the header first, then events (constant memory). */
export class JsonlReader {
  lines = 0;
  badLines = 0;
  header: HeaderEvent | null = null;

  constructor(
    private readonly onEvent: (ev: TraceEvent, lineNo: number) => void,
    private readonly policy: { skipBad?: boolean; onBad?: (e: TraceError) => void } = {},
  ) {}

  push(text: string): void {
    const lineNo = ++this.lines;
    let ev: TraceEvent | null;
    try {
      ev = parseTraceLine(text, lineNo, this.header === null);
    } catch (e) {
      // A bad header cannot be skipped: nothing after it could be replayed.
      if (!(e instanceof TraceError) || this.policy.skipBad !== true || this.header === null) throw e;
      this.badLines++;
      this.policy.onBad?.(e);
      return;
    }
    if (ev === null) return;
    if (ev.e === 'header') this.header = ev;
    this.onEvent(ev, lineNo);
  }
}
