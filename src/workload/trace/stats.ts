/**
 * `btmsim replay --stats`: what a QEMU trace contains, without modelling anything. Counts lines,
 * events by name, commands by opcode (spec names), translations per StreamID and stage, VMIDs
 * and ASIDs seen, the IOTLB hits and misses QEMU observed, range-invalidation pieces, and QEMU's
 * own capacity flushes told apart from driver invalidations.
 *
 * IOTLB hits/misses are the number of `smmu_iotlb_lookup_hit/miss` lines (and of the pre-5.2
 * `smmu_iotlb_cache_hit/miss`). The hit=/miss= counters those lines print are NOT used: they
 * live in QEMU's per-device translation config (`SMMUTransCfg.iotlb_hits`), start again at 0 for
 * every StreamID and whenever the config is re-decoded after a CFGI, so they are not the
 * SMMU-wide totals (the first translation of StreamID 0x8 in s1-strict prints hit=0 miss=1 after
 * StreamID 0x10 had printed miss=2).
 *
 * No Node or DOM imports.
 */
import { OPCODE_NAMES } from '../../arch/commands.js';
import type { TraceEvent } from './jsonl.js';
import { EV, QEMU_CMD_OPCODES, QEMU_EVENT_SPECS, dec, hex, lineTs, sidValue, type QemuLine } from './qemu.js';

export interface QemuStats {
  format: 'qemu';
  /** Lines read, blank ones included. */
  lines: number;
  /** Events by name (unknown names included), most frequent first. */
  events: Record<string, number>;
  /** Event names this version does not know (counted, not errors). */
  unknownEvents: Record<string, number>;
  /** Malformed lines skipped (--skip-bad). */
  badLines: number;
  /** Commands consumed, by opcode spec name (smmuv3_cmdq_opcode lines). */
  commands: Record<string, number>;
  /** smmuv3_translate_success lines. */
  translations: number;
  /** DMA that was not translated: bypass (STE bypass), abort, disabled (SMMU off). */
  untranslated: { bypass: number; abort: number; disabled: number };
  iotlb: { hits: number; misses: number; hitRate: number; inserts: number };
  /** Translations per StreamID (hex). */
  streams: Record<string, number>;
  /** Translations per stage as QEMU prints it (1 S1, 2 S2, 3 nested; "?" before 9.1). */
  stages: Record<string, number>;
  vmids: number[];
  asids: number[];
  /** smmuv3_range_inval pieces by stage and num_pages, and how many range TLBI commands they came from. */
  rangeInval: { pieces: number; commands: number; byStage: Record<string, Record<string, number>> };
  /** smmu_iotlb_inv_all printed while a command was being consumed (driver TLBIs). */
  driverInvalidateAll: number;
  /** smmu_iotlb_inv_all with no command being consumed: QEMU's own flush of its full IOTLB. */
  capacityFlushes: number;
  configCache: { hits: number; misses: number };
  /** Descriptor reads of page walks (smmu_get_pte lines). */
  walkReads: number;
  /** First to last timestamp, seconds (null without timestamps). */
  timeSpanS: number | null;
  threads: number;
}

/** Accumulates QemuStats from lines (QemuReader handler). */
export class QemuStatsCollector {
  /** Known events by code; unknown ones are counted by the reader. */
  private readonly byCode = new Float64Array(QEMU_EVENT_SPECS.length);
  private readonly commands = new Map<string, number>();
  private readonly streams = new Map<number, number>();
  private readonly stages = new Map<string, number>();
  private readonly vmids = new Set<number>();
  private readonly asids = new Set<number>();
  private readonly rangeByStage = new Map<string, Map<number, number>>();
  private readonly threads = new Set<number>();
  /** Open command per thread: the opcode of the last smmuv3_cmdq_opcode, -1 when none. */
  private readonly openCmd = new Map<number, number>();
  /** Whether the open command of a thread already printed a range piece. */
  private readonly openHasRange = new Map<number, boolean>();
  private translations = 0;
  private bypass = 0;
  private abort = 0;
  private disabled = 0;
  private hits = 0;
  private misses = 0;
  private inserts = 0;
  private pieces = 0;
  private rangeCommands = 0;
  private driverAll = 0;
  private capacity = 0;
  private cfgHits = 0;
  private cfgMisses = 0;
  private walkReads = 0;
  private firstTs = NaN;
  private lastText = '';
  private lastTsStart = -1;
  private lastTsEnd = -1;
  private lastIso = NaN;

  /** The QemuReader handler. */
  readonly onLine = (l: QemuLine, m: RegExpExecArray | undefined): void => {
    const tid = l.tid;
    if (tid >= 0 && !this.threads.has(tid)) this.threads.add(tid);
    if (l.tsStart >= 0 || l.isoTs === l.isoTs) {
      if (this.firstTs !== this.firstTs) this.firstTs = lineTs(l);
      this.lastText = l.text; this.lastTsStart = l.tsStart; this.lastTsEnd = l.tsEnd; this.lastIso = l.isoTs;
    }
    if (m === undefined) return;
    const code = l.code;
    this.byCode[code]++;
    switch (code) {
      case EV.smmuv3_translate_success: {
        this.translations++;
        const sid = sidValue(m[2]);
        this.streams.set(sid, (this.streams.get(sid) ?? 0) + 1);
        const st = m[6] ?? '?';
        this.stages.set(st, (this.stages.get(st) ?? 0) + 1);
        break;
      }
      case EV.smmu_get_pte: this.walkReads++; break;
      case EV.smmuv3_config_cache_hit: this.cfgHits++; break;
      case EV.smmuv3_config_cache_miss: this.cfgMisses++; break;
      case EV.smmu_iotlb_lookup_hit:
      case EV.smmu_iotlb_lookup_miss:
        if (code === EV.smmu_iotlb_lookup_hit) this.hits++; else this.misses++;
        this.ids(dec(m[1]), m[2] !== undefined ? dec(m[2]) : NaN);
        break;
      case EV.smmu_iotlb_cache_hit: this.hits++; this.ids(dec(m[1]), NaN); break;
      case EV.smmu_iotlb_cache_miss: this.misses++; this.ids(dec(m[1]), NaN); break;
      case EV.smmu_iotlb_insert: this.inserts++; this.ids(dec(m[1]), m[2] !== undefined ? dec(m[2]) : NaN); break;
      case EV.smmuv3_translate_bypass: this.bypass++; break;
      case EV.smmuv3_translate_abort: this.abort++; break;
      case EV.smmuv3_translate_disable: this.disabled++; break;
      case EV.smmuv3_cmdq_opcode: {
        const op = QEMU_CMD_OPCODES[m[1]];
        const spec = op === undefined ? m[1] : (OPCODE_NAMES[op] ?? m[1]);
        this.commands.set(spec, (this.commands.get(spec) ?? 0) + 1);
        this.openCmd.set(tid, op ?? -2);
        this.openHasRange.set(tid, false);
        break;
      }
      case EV.smmuv3_cmdq_consume:
      case EV.smmuv3_cmdq_consume_out:
        this.openCmd.set(tid, -1);
        break;
      case EV.smmuv3_range_inval:
      case EV.smmuv3_s1_range_inval: {
        this.pieces++;
        if (this.openHasRange.get(tid) !== true) { this.rangeCommands++; this.openHasRange.set(tid, true); }
        this.ids(dec(m[2]), dec(m[1]));
        const stage = m[8] ?? '1';
        const pages = m[5] !== undefined ? hex(m[5]) : 1;
        let h = this.rangeByStage.get(stage);
        if (h === undefined) { h = new Map(); this.rangeByStage.set(stage, h); }
        h.set(pages, (h.get(pages) ?? 0) + 1);
        break;
      }
      case EV.smmuv3_cmdq_tlbi_nh_va: this.pieces++; this.rangeCommands++; this.ids(dec(m[2]), dec(m[1])); break;
      case EV.smmu_iotlb_inv_asid_vmid: this.ids(dec(m[1]), dec(m[2])); break;
      case EV.smmuv3_cmdq_tlbi_nh_asid: this.ids(dec(m[1]), NaN); break;
      case EV.smmu_iotlb_inv_vmid:
      case EV.smmu_iotlb_inv_vmid_s1:
      case EV.smmuv3_cmdq_tlbi_s12_vmid: this.ids(NaN, dec(m[1])); break;
      case EV.smmu_iotlb_inv_all: {
        const open = this.openCmd.get(tid) ?? -1;
        if (open !== -1) this.driverAll++; else this.capacity++;
        break;
      }
      default: break;
    }
  };

  private lastTs(): number {
    return this.lastTsStart >= 0 ? Number(this.lastText.slice(this.lastTsStart, this.lastTsEnd)) : this.lastIso;
  }

  private eventCounts(unknown: ReadonlyMap<string, number>): Map<string, number> {
    const m = new Map<string, number>();
    for (let c = 0; c < this.byCode.length; c++) if (this.byCode[c] > 0) m.set(QEMU_EVENT_SPECS[c].name, this.byCode[c]);
    for (const [k, v] of unknown) m.set(k, v);
    return m;
  }

  private ids(asid: number, vmid: number): void {
    if (asid >= 0 && !this.asids.has(asid)) this.asids.add(asid);
    if (vmid >= 0 && !this.vmids.has(vmid)) this.vmids.add(vmid);
  }

  result(reader: { lines: number; badLines: number; unknown: ReadonlyMap<string, number> }): QemuStats {
    const lookups = this.hits + this.misses;
    const byStage: Record<string, Record<string, number>> = {};
    for (const [st, h] of [...this.rangeByStage].sort()) {
      byStage[st] = Object.fromEntries([...h].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v]));
    }
    return {
      format: 'qemu',
      lines: reader.lines,
      events: sortedCounts(this.eventCounts(reader.unknown)),
      unknownEvents: sortedCounts(reader.unknown),
      badLines: reader.badLines,
      commands: sortedCounts(this.commands),
      translations: this.translations,
      untranslated: { bypass: this.bypass, abort: this.abort, disabled: this.disabled },
      iotlb: { hits: this.hits, misses: this.misses, hitRate: lookups > 0 ? round6(this.hits / lookups) : 0, inserts: this.inserts },
      streams: Object.fromEntries([...this.streams].sort((a, b) => a[0] - b[0]).map(([s, n]) => ['0x' + s.toString(16), n])),
      stages: Object.fromEntries([...this.stages].sort()),
      vmids: [...this.vmids].sort((a, b) => a - b),
      asids: [...this.asids].sort((a, b) => a - b),
      rangeInval: { pieces: this.pieces, commands: this.rangeCommands, byStage },
      driverInvalidateAll: this.driverAll,
      capacityFlushes: this.capacity,
      configCache: { hits: this.cfgHits, misses: this.cfgMisses },
      walkReads: this.walkReads,
      timeSpanS: this.firstTs === this.firstTs ? round6(this.lastTs() - this.firstTs) : null,
      threads: this.threads.size,
    };
  }
}

/** Counts as an object, most frequent first, then by name (stable output). */
export function sortedCounts(m: ReadonlyMap<string, number>): Record<string, number> {
  return Object.fromEntries([...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

/** The statistics as text, in the layout of the traces' *.summary.txt files. */
export function statsText(s: QemuStats, file: string): string {
  const out: string[] = [];
  const pad = (n: number): string => String(n).padStart(9);
  out.push(`file: ${file}`, `lines: ${s.lines}`);
  if (s.timeSpanS !== null) out.push(`trace time span: ${s.timeSpanS.toFixed(2)}s`);
  if (s.badLines > 0) out.push(`malformed lines skipped: ${s.badLines}`);
  out.push('', '## events');
  for (const [k, v] of Object.entries(s.events)) out.push(`${pad(v)} ${k}${k in s.unknownEvents ? '  (unknown event)' : ''}`);
  out.push('', '## commands by opcode (smmuv3_cmdq_opcode, spec names)');
  for (const [k, v] of Object.entries(s.commands)) out.push(`${pad(v)} ${k}`);
  out.push('', '## translate_success per StreamID');
  for (const [k, v] of Object.entries(s.streams)) out.push(`${pad(v)} ${k}`);
  out.push('', '## translate_success per stage');
  for (const [k, v] of Object.entries(s.stages)) out.push(`${pad(v)} ${k}`);
  out.push('', '## IOTLB as QEMU observed it');
  out.push(`${pad(s.iotlb.hits)} hits`, `${pad(s.iotlb.misses)} misses`, `  hit rate ${(s.iotlb.hitRate * 100).toFixed(2)}%`);
  out.push(`${pad(s.capacityFlushes)} capacity flushes (smmu_iotlb_inv_all with no command: QEMU's 256-entry IOTLB emptying itself)`);
  out.push(`${pad(s.driverInvalidateAll)} invalidate-all by a command (TLBI_NSNH_ALL / NH_ALL)`);
  out.push(`${pad(s.walkReads)} page-walk descriptor reads (smmu_get_pte)`);
  out.push('', '## range_inval pieces (num_pages per stage)');
  out.push(`${pad(s.rangeInval.pieces)} pieces from ${s.rangeInval.commands} range TLBI commands`);
  for (const [st, h] of Object.entries(s.rangeInval.byStage)) {
    for (const [p, v] of Object.entries(h)) out.push(`${pad(v)} (${p}, '${st}')`);
  }
  out.push('', `VMIDs: ${s.vmids.join(', ') || '-'}`, `ASIDs: ${s.asids.join(', ') || '-'}`);
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// btmsim JSONL traces

/** `--stats` of a btmsim JSONL trace: what it holds, without replaying it. */
export interface JsonlStats {
  format: 'jsonl';
  lines: number;
  badLines: number;
  source: string | null;
  /** Events by kind. */
  events: Record<string, number>;
  /** Commands by opcode spec name (decoded from the 128-bit words). */
  commands: Record<string, number>;
  /** `cmds` events (CMDQ_PROD writes). */
  submissions: number;
  translations: number;
  /** Not in a btmsim trace (the model computes them on replay). */
  iotlb: null;
  streams: Record<string, number>;
  /** CPU TLBIs by instruction. */
  tlbis: Record<string, number>;
  vmids: number[];
  asids: number[];
  timeSpanNs: number | null;
}

export class JsonlStatsCollector {
  private readonly events = new Map<string, number>();
  private readonly commands = new Map<string, number>();
  private readonly streams = new Map<number, number>();
  private readonly tlbis = new Map<string, number>();
  private readonly vmids = new Set<number>();
  private readonly asids = new Set<number>();
  private submissions = 0;
  private translations = 0;
  private source: string | null = null;
  private tMin = Infinity;
  private tMax = -Infinity;

  readonly onEvent = (ev: TraceEvent): void => {
    this.events.set(ev.e, (this.events.get(ev.e) ?? 0) + 1);
    if (ev.t !== undefined) { if (ev.t < this.tMin) this.tMin = ev.t; if (ev.t > this.tMax) this.tMax = ev.t; }
    switch (ev.e) {
      case 'header': this.source = ev.source; break;
      case 'dma': this.translations++; this.streams.set(ev.sid, (this.streams.get(ev.sid) ?? 0) + 1); break;
      case 'cmds':
        this.submissions++;
        for (let off = 0; off < ev.w.length; off += 4) {
          const op = ev.w[off] & 0xff;
          const name = OPCODE_NAMES[op] ?? `0x${op.toString(16)}`;
          this.commands.set(name, (this.commands.get(name) ?? 0) + 1);
        }
        break;
      case 'tlbi':
        this.tlbis.set(ev.op, (this.tlbis.get(ev.op) ?? 0) + 1);
        if (ev.el === 1 || !ev.tge) this.vmids.add(ev.vmid);
        break;
      case 'ste': if (ev.ste !== null && (ev.ste.Config & 0b110) === 0b110) this.vmids.add(ev.ste.S2VMID); break;
      case 'cd': if (ev.cd !== null) this.asids.add(ev.cd.ASID); break;
      default: break;
    }
  };

  result(reader: { lines: number; badLines: number }): JsonlStats {
    return {
      format: 'jsonl', lines: reader.lines, badLines: reader.badLines, source: this.source,
      events: sortedCounts(this.events), commands: sortedCounts(this.commands), submissions: this.submissions,
      translations: this.translations, iotlb: null,
      streams: Object.fromEntries([...this.streams].sort((a, b) => a[0] - b[0]).map(([s, n]) => ['0x' + s.toString(16), n])),
      tlbis: sortedCounts(this.tlbis),
      vmids: [...this.vmids].sort((a, b) => a - b), asids: [...this.asids].sort((a, b) => a - b),
      timeSpanNs: this.tMax >= this.tMin ? this.tMax - this.tMin : null,
    };
  }
}

export function jsonlStatsText(s: JsonlStats, file: string): string {
  const pad = (n: number): string => String(n).padStart(9);
  const out: string[] = [`file: ${file}`, `format: btmsim trace (source: ${s.source ?? '?'})`, `lines: ${s.lines}`];
  if (s.badLines > 0) out.push(`malformed lines skipped: ${s.badLines}`);
  out.push('', '## events');
  for (const [k, v] of Object.entries(s.events)) out.push(`${pad(v)} ${k}`);
  out.push('', `## commands by opcode (${s.submissions} submissions)`);
  for (const [k, v] of Object.entries(s.commands)) out.push(`${pad(v)} ${k}`);
  out.push('', '## DMA translations per StreamID');
  for (const [k, v] of Object.entries(s.streams)) out.push(`${pad(v)} ${k}`);
  out.push('', '## CPU TLBIs');
  for (const [k, v] of Object.entries(s.tlbis)) out.push(`${pad(v)} ${k}`);
  out.push('', `VMIDs: ${s.vmids.join(', ') || '-'}`, `ASIDs: ${s.asids.join(', ') || '-'}`);
  return out.join('\n') + '\n';
}
