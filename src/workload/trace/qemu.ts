/**
 * QEMU `-trace 'smmu*'` log lines (log backend): the line prefix, and every smmu/smmuv3 trace
 * event of hw/arm/trace-events (master, Feb 2026) plus the older names and formats a replayer
 * must accept (arch.md §4.4). Format strings are matched exactly, with the old variants as
 * optional parts, so a line of a known event that does not fit its format is reported as
 * malformed; an event name we do not know is only counted (QEMU adds events).
 *
 * Line shapes:
 *   `<tid>@<sec>.<usec>:<event> <text>`       -msg timestamp=on, QEMU <= 10.0
 *   `<ISO-8601 UTC time> <event> <text>`      -msg timestamp=on, QEMU >= 10.1
 *   `<event> <text>`                          no timestamps
 *
 * No Node or DOM imports.
 */
import { TraceError, type BadLinePolicy } from './errors.js';

/**
 * One line split into its prefix and event name. Reused for every line (no allocation): the
 * timestamp and the event text are kept as offsets into `text` (see lineTs, lineRest).
 */
export interface QemuLine {
  lineNo: number;
  /** Host thread id (`<tid>@` prefix), -1 when the line has none. */
  tid: number;
  /** The event name (the spec's own string for a known event). */
  name: string;
  /** Index of the event in QEMU_EVENT_SPECS (see EV), -1 for an unknown event. */
  code: number;
  /** The whole line. */
  text: string;
  /** The event text (arguments) is text[restStart, restEnd). */
  restStart: number;
  restEnd: number;
  /** `<sec>.<usec>` is text[tsStart, tsEnd); tsStart -1 when absent (see isoTs). */
  tsStart: number;
  tsEnd: number;
  /** Seconds of an ISO-8601 prefix (QEMU >= 10.1), NaN when none. */
  isoTs: number;
}

export function newQemuLine(): QemuLine {
  return { lineNo: 0, tid: -1, name: '', code: -1, text: '', restStart: 0, restEnd: 0, tsStart: -1, tsEnd: -1, isoTs: NaN };
}

/** Host time of the line in seconds, NaN without a timestamp. */
export function lineTs(l: QemuLine): number {
  return l.tsStart >= 0 ? Number(l.text.slice(l.tsStart, l.tsEnd)) : l.isoTs;
}

/** The event text (trailing blanks removed). */
export function lineRest(l: QemuLine): string {
  return l.text.slice(l.restStart, l.restEnd);
}

const ISO_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s+/;
/** QEMU trace event names are <subsystem>_<event>: lower case with at least one underscore. */
const NAME_RE = /^[a-z][a-z0-9]*_[a-z0-9_]*$/;

/**
 * Split a line. Returns null for a blank line, a string (the reason) for a line that is not a
 * trace line, or fills and returns `out` (name and code resolved against QEMU_EVENT_SPECS).
 */
export function splitQemuLine(line: string, lineNo: number, out: QemuLine): QemuLine | string | null {
  let i = 0;
  const n = line.length;
  while (i < n && (line.charCodeAt(i) === 32 || line.charCodeAt(i) === 9)) i++;
  if (i === n || (i === n - 1 && line.charCodeAt(i) === 13)) return null;
  out.lineNo = lineNo;
  out.text = line;
  out.tid = -1;
  out.tsStart = -1;
  out.isoTs = NaN;
  const c0 = line.charCodeAt(i);
  if (c0 >= 48 && c0 <= 57) {
    // `<tid>@<sec>.<usec>:` or an ISO time.
    let j = i, tid = 0;
    for (; j < n; j++) {
      const c = line.charCodeAt(j);
      if (c < 48 || c > 57) break;
      tid = tid * 10 + (c - 48);
    }
    if (j < n && line.charCodeAt(j) === 64 /* @ */ && j - i <= 10) {
      const colon = line.indexOf(':', j);
      let ok = colon > j + 1;
      for (let k = j + 1; ok && k < colon; k++) {
        const c = line.charCodeAt(k);
        if ((c < 48 || c > 57) && c !== 46) ok = false;
      }
      if (!ok) return `bad timestamp "${line.slice(i, colon < 0 ? Math.min(n, i + 30) : colon + 1)}" (expected <tid>@<sec>.<usec>:)`;
      out.tid = tid;
      out.tsStart = j + 1;
      out.tsEnd = colon;
      i = colon + 1;
    } else {
      const m = ISO_RE.exec(i === 0 ? line : line.slice(i));
      if (m === null) return 'not a QEMU trace line (expected "<tid>@<sec>.<usec>:<event> ...", "<ISO time> <event> ..." or "<event> ...")';
      const t = Date.parse(m[1]);
      if (!Number.isFinite(t)) return `bad ISO-8601 timestamp "${m[1]}"`;
      const frac = /\.(\d+)/.exec(m[1]);
      out.isoTs = Math.floor(t / 1000) + (frac !== null ? Number('0.' + frac[1]) : 0);
      i += m[0].length;
    }
  }
  // Event name: hashed while scanning, looked up without slicing.
  let h = 0, j = i;
  for (; j < n; j++) {
    const c = line.charCodeAt(j);
    if (c === 32 || c === 13 || c === 9) break;
    h = (Math.imul(h, 31) + c) | 0;
  }
  const len = j - i;
  const cands = BY_HASH[(h ^ len) & HASH_MASK];
  let spec: EventSpec | undefined;
  if (cands !== undefined) {
    for (let k = 0; k < cands.length; k++) {
      const s = cands[k];
      if (s.name.length === len && line.startsWith(s.name, i)) { spec = s; break; }
    }
  }
  if (spec !== undefined) {
    out.name = spec.name;
    out.code = spec.code;
  } else {
    const name = line.slice(i, j);
    if (!NAME_RE.test(name)) {
      return name.length === 0 ? 'missing event name' : `not a trace event name: "${name.length > 40 ? name.slice(0, 40) + '...' : name}"`;
    }
    out.name = name;
    out.code = -1;
  }
  let end = n;
  while (end > j + 1 && isSpace(line.charCodeAt(end - 1))) end--;
  out.restStart = j + 1 < n ? j + 1 : n;
  out.restEnd = end > out.restStart ? end : out.restStart;
  return out;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 13;
}

// ---------------------------------------------------------------------------------------------
// Event formats

const H = '([0-9a-fA-F]+)';
const D = '(-?\\d+)';
/** A StreamID: `0x%x` since 6.0, `%d` before. */
const SID = '((?:0x)?[0-9a-fA-F]+)';

/** What an event is for the importer. */
export type EventRole =
  | 'walk' | 'iotlb' | 'inv' | 'config' | 'mmio' | 'cmdq' | 'cmd-handler' | 'translate' | 'notifier'
  | 'other' | 'deleted';

export interface EventSpec {
  readonly name: string;
  /** Index in QEMU_EVENT_SPECS. */
  readonly code: number;
  readonly re: RegExp | null;
  readonly role: EventRole;
  /** The event is an older name (arch.md §4.4 "older names"). */
  readonly old?: boolean;
  /** The format string(s) accepted, for docs and error messages. */
  readonly format: string;
}

const specs: EventSpec[] = [];
function ev(name: string, role: EventRole, re: string | null, format: string, old = false): void {
  specs.push({ name, code: specs.length, role, re: re === null ? null : new RegExp('(?:' + re + ')\\s*$', 'y'), format, ...(old ? { old } : {}) });
}

// smmu-common.c
ev('smmu_add_mr', 'other', '(.*)', '"%s"');
ev('smmu_ptw_level', 'walk', `(?:stage=${D} )?level=${D} iova=0x${H} subpage_sz=0x${H} baseaddr=0x${H} offset=${D} => pte=0x${H}`,
  '"stage=%d level=%d iova=0x%"PRIx64" subpage_sz=0x%zx baseaddr=0x%"PRIx64" offset=%d => pte=0x%"PRIx64 (stage= since 8.1)');
ev('smmu_ptw_invalid_pte', 'walk', `(?:stage=${D} )?level=${D} base@=0x${H} pte@=0x${H} offset=${D} pte=0x${H}`,
  '"stage=%d level=%d base@=0x%"PRIx64" pte@=0x%"PRIx64" offset=%d pte=0x%"PRIx64');
ev('smmu_ptw_page_pte', 'walk', `(?:stage=${D} )?level=${D} iova=0x${H} base@=0x${H} pte@=0x${H} pte=0x${H} page address = 0x${H}`,
  '"stage=%d level=%d iova=0x%"PRIx64" base@=0x%"PRIx64" pte@=0x%"PRIx64" pte=0x%"PRIx64" page address = 0x%"PRIx64');
ev('smmu_ptw_block_pte', 'walk', `(?:stage=${D} )?level=${D} base@=0x${H} pte@=0x${H} pte=0x${H} iova=0x${H} block address = 0x${H} block size = ${D} MiB`,
  '"stage=%d level=%d base@=0x%"PRIx64" pte@=0x%"PRIx64" pte=0x%"PRIx64" iova=0x%"PRIx64" block address = 0x%"PRIx64" block size = %d MiB"');
ev('smmu_get_pte', 'walk', `baseaddr=0x${H} index=0x${H}, pteaddr=0x${H}, pte=0x${H}`,
  '"baseaddr=0x%"PRIx64" index=0x%x, pteaddr=0x%"PRIx64", pte=0x%"PRIx64');
ev('smmu_iotlb_inv_all', 'inv', 'IOTLB invalidate all', '"IOTLB invalidate all"');
ev('smmu_iotlb_inv_asid_vmid', 'inv', `IOTLB invalidate asid=${D} vmid=${D}`, '"IOTLB invalidate asid=%d vmid=%d"');
ev('smmu_iotlb_inv_asid', 'inv', `IOTLB invalidate asid=${D}`, '"IOTLB invalidate asid=%d" (before 9.1)', true);
ev('smmu_iotlb_inv_vmid', 'inv', `IOTLB invalidate vmid=${D}`, '"IOTLB invalidate vmid=%d"');
ev('smmu_iotlb_inv_vmid_s1', 'inv', `IOTLB invalidate vmid=${D}`, '"IOTLB invalidate vmid=%d"');
ev('smmu_iotlb_inv_iova', 'inv', `IOTLB invalidate asid=${D} addr=0x${H}`, '"IOTLB invalidate asid=%d addr=0x%"PRIx64');
ev('smmu_configs_inv_sid_range', 'cmd-handler', `Config cache INV SID range from 0x${H} to 0x${H}`, '"Config cache INV SID range from 0x%x to 0x%x"');
ev('smmu_config_cache_inv', 'cmd-handler', `Config cache INV for sid[= ]${SID}`, '"Config cache INV for sid=0x%x"');
ev('smmuv3_config_cache_inv', 'cmd-handler', `Config cache INV for sid[= ]${SID}`, '"Config cache INV for sid %d" (before 10.0)', true);
ev('smmu_inv_notifiers_mr', 'notifier', 'iommu mr=(.*)', '"iommu mr=%s"');
ev('smmu_iotlb_lookup_hit', 'iotlb', `IOTLB cache HIT asid=${D}(?: vmid=${D})? addr=0x${H} hit=${D} miss=${D} hit rate=${D}`,
  '"IOTLB cache HIT asid=%d vmid=%d addr=0x%"PRIx64" hit=%d miss=%d hit rate=%d" (vmid= since 8.1)');
ev('smmu_iotlb_lookup_miss', 'iotlb', `IOTLB cache MISS asid=${D}(?: vmid=${D})? addr=0x${H} hit=${D} miss=${D} hit rate=${D}`,
  '"IOTLB cache MISS asid=%d vmid=%d addr=0x%"PRIx64" hit=%d miss=%d hit rate=%d" (vmid= since 8.1)');
ev('smmu_iotlb_cache_hit', 'iotlb', `IOTLB cache HIT asid=${D} addr=0x${H} hit=${D} miss=${D} hit rate=${D}`,
  '"IOTLB cache HIT asid=%d addr=0x%"PRIx64" hit=%d miss=%d hit rate=%d" (before 5.2)', true);
ev('smmu_iotlb_cache_miss', 'iotlb', `IOTLB cache MISS asid=${D} addr=0x${H} hit=${D} miss=${D} hit rate=${D}`,
  '"IOTLB cache MISS asid=%d addr=0x%"PRIx64" hit=%d miss=%d hit rate=%d" (before 5.2)', true);
ev('smmu_iotlb_insert', 'iotlb', `IOTLB \\+\\+ asid=${D}(?: vmid=${D})? addr=0x${H}(?: tg=${D} level=${D})?`,
  '"IOTLB ++ asid=%d vmid=%d addr=0x%"PRIx64" tg=%d level=%d" (tg/level since 5.2, vmid since 8.1)');
ev('smmu_reset_exit', 'other', '', '""');

// smmuv3.c
ev('smmuv3_read_mmio', 'mmio', `addr: 0x${H} val:0x${H} size: 0x${H}\\(${D}\\)`, '"addr: 0x%"PRIx64" val:0x%"PRIx64" size: 0x%x(%d)"');
ev('smmuv3_write_mmio', 'mmio', `addr: 0x${H} val:0x${H} size: 0x${H}\\(${D}\\)`, '"addr: 0x%"PRIx64" val:0x%"PRIx64" size: 0x%x(%d)"');
ev('smmuv3_trigger_irq', 'other', `irq=${D}`, '"irq=%d"');
ev('smmuv3_write_gerror', 'mmio', `toggled=0x${H}, new GERROR=0x${H}`, '"toggled=0x%x, new GERROR=0x%x"');
ev('smmuv3_write_gerrorn', 'mmio', `acked=0x${H}, new GERRORN=0x${H}`, '"acked=0x%x, new GERRORN=0x%x"');
ev('smmuv3_unhandled_cmd', 'cmd-handler', `Unhandled command type=${D}`, '"Unhandled command type=%d"');
ev('smmuv3_cmdq_consume', 'cmdq', `prod=${D} cons=${D} prod\\.wrap=${D} cons\\.wrap=${D}`, '"prod=%d cons=%d prod.wrap=%d cons.wrap=%d"');
ev('smmuv3_cmdq_opcode', 'cmdq', '<--- (\\S+)', '"<--- %s"');
ev('smmuv3_cmdq_consume_out', 'cmdq', `prod:${D}, cons:${D}, prod_wrap:${D}, cons_wrap:${D}`, '"prod:%d, cons:%d, prod_wrap:%d, cons_wrap:%d "');
ev('smmuv3_cmdq_consume_error', 'cmdq', `Error on (\\S+) command execution: ${D}`, '"Error on %s command execution: %d"');
ev('smmuv3_record_event', 'other', `(\\S+) sid=${SID}`, '"%s sid=0x%x"');
ev('smmuv3_find_ste', 'config', `(?:sid|SID)[=:] ?${SID} features:0x${H}, sid_split:0x${H}`, '"sid=0x%x features:0x%x, sid_split:0x%x"');
ev('smmuv3_find_ste_2lvl', 'config', `strtab_base:0x${H} l1ptr:0x${H} l1_off:0x${H}, l2ptr:0x${H} l2_off:0x${H} max_l2_ste:${D}`,
  '"strtab_base:0x%"PRIx64" l1ptr:0x%"PRIx64" l1_off:0x%x, l2ptr:0x%"PRIx64" l2_off:0x%x max_l2_ste:%d"');
ev('smmuv3_get_ste', 'config', `STE addr: 0x${H}`, '"STE addr: 0x%"PRIx64');
ev('smmuv3_translate_disable', 'translate', `(\\S+) sid=${SID} bypass \\(smmu disabled\\) iova:0x${H} is_write=${D}`,
  '"%s sid=0x%x bypass (smmu disabled) iova:0x%"PRIx64" is_write=%d"');
ev('smmuv3_translate_bypass', 'translate', `(\\S+) sid=${SID} (?:STE )?bypass iova:0x${H} is_write=${D}`,
  '"%s sid=0x%x STE bypass iova:0x%"PRIx64" is_write=%d"');
ev('smmuv3_translate_abort', 'translate', `(\\S+) sid=${SID} abort on iova:0x${H} is_write=${D}`,
  '"%s sid=0x%x abort on iova:0x%"PRIx64" is_write=%d"');
ev('smmuv3_translate_success', 'translate', `(\\S+) sid=${SID} iova=0x${H} translated=0x${H} perm=0x${H}(?: stage=${D})?`,
  '"%s sid=0x%x iova=0x%"PRIx64" translated=0x%"PRIx64" perm=0x%x stage=%d" (stage= since 9.1)');
ev('smmuv3_get_cd', 'config', `CD addr: 0x${H}`, '"CD addr: 0x%"PRIx64');
ev('smmuv3_decode_cd', 'config', `oas=${D}`, '"oas=%d"');
ev('smmuv3_decode_cd_tt', 'config', `TT\\[${D}\\]:tsz:${D} ttb:0x${H} granule_sz:${D}(?: had:${D})?`,
  '"TT[%d]:tsz:%d ttb:0x%"PRIx64" granule_sz:%d had:%d"');
ev('smmuv3_cmdq_cfgi_ste', 'cmd-handler', `streamid ?= ?${SID}`, '"streamid= 0x%x" ("streamid =%d" before 6.0)');
// Before 6.0 printed "0x%d" of ints: CFGI_ALL's end showed as 0x-1.
ev('smmuv3_cmdq_cfgi_ste_range', 'cmd-handler', `start=0x(-?[0-9a-fA-F]+) - end=0x(-?[0-9a-fA-F]+)`, '"start=0x%x - end=0x%x" ("0x%d" before 6.0)');
ev('smmuv3_cmdq_cfgi_cd', 'cmd-handler', `(?:sid=|streamid ?= ?)${SID}`, '"sid=0x%x" ("streamid = %d" before 6.0)');
ev('smmuv3_config_cache_hit', 'config', `Config cache HIT for sid[= ]${SID} \\(hits=${D}, misses=${D}, hit rate=${D}\\)`,
  '"Config cache HIT for sid=0x%x (hits=%d, misses=%d, hit rate=%d)"');
ev('smmuv3_config_cache_miss', 'config', `Config cache MISS for sid[= ]${SID} \\(hits=${D}, misses=${D}, hit rate=${D}\\)`,
  '"Config cache MISS for sid=0x%x (hits=%d, misses=%d, hit rate=%d)"');
const RANGE_RE = `vmid ?= ?${D} asid ?= ?${D} addr=0x${H}(?: tg=${D} num_pages=0x${H} ttl=${D})? leaf=${D}(?: stage=${D})?`;
ev('smmuv3_range_inval', 'cmd-handler', RANGE_RE,
  '"vmid=%d asid=%d addr=0x%"PRIx64" tg=%d num_pages=0x%"PRIx64" ttl=%d leaf=%d stage=%d" (stage= since 9.1)');
ev('smmuv3_s1_range_inval', 'cmd-handler', RANGE_RE,
  '"vmid=%d asid=%d addr=0x%"PRIx64" tg=%d num_pages=0x%"PRIx64" ttl=%d leaf=%d" (5.2-8.0)', true);
ev('smmuv3_cmdq_tlbi_nh_va', 'cmd-handler', `vmid ?= ?${D} asid ?= ?${D} addr=0x${H} leaf=${D}`,
  '"vmid =%d asid =%d addr=0x%"PRIx64" leaf=%d" (before 5.2)', true);
ev('smmuv3_cmdq_tlbi_nh_vaa', 'cmd-handler', `vmid ?= ?${D} addr=0x${H}(?: leaf=${D})?`,
  '"vmid =%d addr=0x%"PRIx64 (before 5.2)', true);
ev('smmuv3_cmdq_tlbi_nh', 'cmd-handler', `(?:vmid=${D})?`, '"vmid=%d" ("" before 9.1)');
ev('smmuv3_cmdq_tlbi_nsnh', 'cmd-handler', '', '""');
ev('smmuv3_cmdq_tlbi_nh_asid', 'cmd-handler', `asid=${D}`, '"asid=%d"');
ev('smmuv3_cmdq_tlbi_s12_vmid', 'cmd-handler', `vmid=${D}`, '"vmid=%d"');
ev('smmuv3_notify_flag_add', 'notifier', 'ADD SMMUNotifier node for iommu mr=(.*)', '"ADD SMMUNotifier node for iommu mr=%s"');
ev('smmuv3_notify_flag_del', 'notifier', 'DEL SMMUNotifier node for iommu mr=(.*)', '"DEL SMMUNotifier node for iommu mr=%s"');
ev('smmuv3_inv_notifiers_iova', 'notifier',
  `iommu mr=(\\S+) asid=${D}(?: vmid=${D})? iova=0x${H}(?: tg=${D} num_pages=0x${H})?(?: stage=${D})?`,
  '"iommu mr=%s asid=%d vmid=%d iova=0x%"PRIx64" tg=%d num_pages=0x%"PRIx64" stage=%d" (tg/num_pages 5.2, vmid 8.1, stage 9.1)');
// smmuv3-accel.c (master only)
ev('smmuv3_accel_set_iommu_device', 'other', `devfn=0x${H} \\(idev devid=0x${H}\\)`, '"devfn=0x%x (idev devid=0x%x)"');
ev('smmuv3_accel_unset_iommu_device', 'other', `devfn=0x${H} \\(idev devid=0x${H}\\)`, '"devfn=0x%x (idev devid=0x%x)"');
ev('smmuv3_accel_translate_ste', 'other', `vSID=0x${H} hwpt_id=0x${H} ste=${H}:${H}`, '"vSID=0x%x hwpt_id=0x%x ste=%"PRIx64":%"PRIx64');
ev('smmuv3_accel_install_ste', 'other', `vSID=0x${H} ste type=(\\S+) hwpt_id=0x${H}`, '"vSID=0x%x ste type=%s hwpt_id=0x%x"');
// Deleted in 4.0: accepted and counted, their arguments are not read.
for (const n of ['smmu_page_walk', 'smmu_lookup_table', 'smmuv3_update', 'smmuv3_update_check_cmd',
  'smmuv3_write_mmio_idr', 'smmuv3_write_mmio_evtq_cons_bef_clear', 'smmuv3_write_mmio_evtq_cons_after_clear']) {
  ev(n, 'deleted', null, '(deleted in QEMU 4.0; arguments not read)', true);
}

/** Every event we know, by name. */
export const QEMU_EVENTS: ReadonlyMap<string, EventSpec> = new Map(specs.map((s) => [s.name, s]));
export const QEMU_EVENT_SPECS: readonly EventSpec[] = specs;
/** Event codes by name (QemuLine.code), for switches on numbers instead of strings. */
export const EV: Readonly<Record<string, number>> = Object.fromEntries(specs.map((s) => [s.name, s.code]));

/** Specs by (name hash ^ length) & HASH_MASK, the hash splitQemuLine computes while scanning. */
const HASH_MASK = 1023;
const BY_HASH: (EventSpec[] | undefined)[] = new Array<EventSpec[] | undefined>(HASH_MASK + 1).fill(undefined);
for (const s of specs) {
  let h = 0;
  for (let k = 0; k < s.name.length; k++) h = (Math.imul(h, 31) + s.name.charCodeAt(k)) | 0;
  const key = (h ^ s.name.length) & HASH_MASK;
  const a = BY_HASH[key];
  if (a === undefined) BY_HASH[key] = [s]; else a.push(s);
}

/**
 * Match the text of a known event against its format. Returns the regexp match (group 1.. are
 * the fields in format order), `null` if the text does not fit, or `undefined` for an unknown
 * event. Events without a format (deleted ones) return an empty match.
 */
export function matchEvent(name: string, rest: string): RegExpExecArray | null | undefined {
  const s = QEMU_EVENTS.get(name);
  if (s === undefined) return undefined;
  if (s.re === null) return EMPTY_MATCH;
  s.re.lastIndex = 0;
  return s.re.exec(rest);
}
const EMPTY_MATCH = Object.assign([''], { index: 0, input: '' }) as unknown as RegExpExecArray;

/** Why a known event's text is malformed: names the event and its format. */
export function formatMismatch(name: string, rest: string): string {
  const s = QEMU_EVENTS.get(name)!;
  const shown = rest.length > 80 ? rest.slice(0, 80) + '...' : rest;
  return `${name}: "${shown}" does not match its format ${s.format}`;
}

// ---------------------------------------------------------------------------------------------
// Numbers

/** A hex field (no 0x) as a number; exact below 2^53 (callers needing pages use hexPage). */
export function hex(s: string | undefined): number {
  if (s === undefined) return 0;
  return s.length <= 13 ? parseInt(s, 16) : Number(BigInt('0x' + s));
}

/** A hex address as a 4 KiB page number, exact for any 64-bit address. */
export function hexPage(s: string): number {
  if (s.length <= 13) return Math.floor(parseInt(s, 16) / 4096);
  return Number(BigInt('0x' + s) >> 12n);
}

export function dec(s: string | undefined): number {
  return s === undefined ? NaN : Number(s);
}

/** A StreamID field: `0x..` hex (6.0+) or decimal (older). */
export function sidValue(s: string): number {
  return s.length > 2 && s.charCodeAt(1) === 120 /* x */ ? parseInt(s.slice(2), 16) : parseInt(s, 10);
}

// ---------------------------------------------------------------------------------------------
// Command names

/**
 * QEMU's `smmuv3_cmdq_opcode` names (`SMMU_CMD_*`, from its `cmd_stringify`) → opcode and the
 * spec name. QEMU's enum labels 0x07 `SMMU_CMD_CFGI_ALL`; architecturally 0x07 is
 * CMD_CFGI_VMS_PIDM and CMD_CFGI_ALL is CFGI_STE_RANGE with Range=31 (arch.md §1.3), which QEMU
 * prints as SMMU_CMD_CFGI_STE_RANGE.
 */
export const QEMU_CMD_OPCODES: Readonly<Record<string, number>> = {
  SMMU_CMD_PREFETCH_CONFIG: 0x01,
  SMMU_CMD_PREFETCH_ADDR: 0x02,
  SMMU_CMD_CFGI_STE: 0x03,
  SMMU_CMD_CFGI_STE_RANGE: 0x04,
  SMMU_CMD_CFGI_CD: 0x05,
  SMMU_CMD_CFGI_CD_ALL: 0x06,
  SMMU_CMD_CFGI_ALL: 0x07,
  SMMU_CMD_TLBI_NH_ALL: 0x10,
  SMMU_CMD_TLBI_NH_ASID: 0x11,
  SMMU_CMD_TLBI_NH_VA: 0x12,
  SMMU_CMD_TLBI_NH_VAA: 0x13,
  SMMU_CMD_TLBI_EL3_ALL: 0x18,
  SMMU_CMD_TLBI_EL3_VA: 0x1a,
  SMMU_CMD_TLBI_EL2_ALL: 0x20,
  SMMU_CMD_TLBI_EL2_ASID: 0x21,
  SMMU_CMD_TLBI_EL2_VA: 0x22,
  SMMU_CMD_TLBI_EL2_VAA: 0x23,
  SMMU_CMD_TLBI_S12_VMALL: 0x28,
  SMMU_CMD_TLBI_S2_IPA: 0x2a,
  SMMU_CMD_TLBI_NSNH_ALL: 0x30,
  SMMU_CMD_ATC_INV: 0x40,
  SMMU_CMD_PRI_RESP: 0x41,
  SMMU_CMD_RESUME: 0x44,
  SMMU_CMD_STALL_TERM: 0x45,
  SMMU_CMD_SYNC: 0x46,
};

// ---------------------------------------------------------------------------------------------
// Reading


/** Receives each well-formed line: `m` is the format match, undefined for an unknown event. */
export type QemuLineHandler = (l: QemuLine, m: RegExpExecArray | undefined) => void;

/**
 * Splits, validates and dispatches lines one at a time (constant memory). A malformed line
 * throws TraceError with its line number, or with `skipBad` is counted in `badLines` and
 * skipped. Unknown event names are passed on (m undefined) and counted in `unknown`.
 */
export class QemuReader {
  /** Lines read, blank ones included (what `wc -l` says). */
  lines = 0;
  badLines = 0;
  readonly unknown = new Map<string, number>();
  private readonly cur: QemuLine = newQemuLine();

  constructor(private readonly handler: QemuLineHandler, private readonly policy: BadLinePolicy = {}) {}

  push(text: string): void {
    const lineNo = ++this.lines;
    const r = splitQemuLine(text, lineNo, this.cur);
    if (r === null) return;
    if (typeof r === 'string') { this.bad(new TraceError(lineNo, r, 1)); return; }
    if (r.code < 0) {
      this.unknown.set(r.name, (this.unknown.get(r.name) ?? 0) + 1);
      this.handler(r, undefined);
      return;
    }
    const re = SPEC_RE[r.code];
    let m: RegExpExecArray | null;
    if (re === null) m = EMPTY_MATCH;
    else {
      re.lastIndex = r.restStart;
      m = re.exec(text);
    }
    if (m === null) { this.bad(new TraceError(lineNo, formatMismatch(r.name, lineRest(r)), r.restStart + 1)); return; }
    this.handler(r, m);
  }

  private bad(e: TraceError): void {
    if (this.policy.skipBad !== true) throw e;
    this.badLines++;
    this.policy.onBad?.(e);
  }
}

const SPEC_RE: readonly (RegExp | null)[] = specs.map((s) => s.re);
