/**
 * The coherence and isolation oracle (DESIGN.md §6; docs/oracle.md).
 *
 * Shadow state. Every page table (one per translation context: an mm, a VM's stage 2, an SMMU
 * domain, a guest stage 1 under nesting) gets a TableShadow with a generation per page and one for
 * the whole table. A change (unmap, write-protect, teardown) bumps the generations of what it
 * touches: an obligation. Software then says when it considers the change invalidated everywhere
 * (`maintenanceDone`: its TLBIs + DSB, commands + CMD_SYNC, ATC invalidations have returned);
 * that copies the generations into `done`. Every TLB, micro-TLB, ATC and CPU TLB slot remembers
 * the generations of the page(s) it was filled from. A hit on a slot whose page has
 * `done > generation at fill` returns a translation software already considers gone: the right
 * invalidation did not remove it — a stale translation, DMA after free. Hits between a change and
 * its `maintenanceDone` are the legitimate window and are not flagged.
 *
 * Aliasing. Before each DMA the simulation says which context software attached the device to
 * (its DeviceHandle); a hit on an entry filled for another context, or a walk through another
 * context's configuration, is a cross-VM / cross-process access whatever the addresses.
 *
 * Cost: the hit path reads a few typed arrays (no allocation); fills record a few numbers;
 * invalidations are logged into a ring (history.ts) for reports. Reports allocate.
 */
import { Stage, STAGE_NAMES, World, WORLD_NAMES } from '../arch/world.js';
import type { Pe, PeListener } from '../hw/cpu/pe.js';
import { TableOp, type PageTable, type PageTableListener } from '../hw/memory.js';
import { SmmuCache, teeSmmuListeners, type Smmu, type SmmuListener, type StreamConfig } from '../hw/smmu/smmu.js';
import type { Tlb } from '../hw/tlb/tlb.js';
import type { InvalScope, TlbEntry } from '../hw/tlb/scope.js';
import type { IssuerRegime, TlbiArgs } from '../hw/tlbi-scope.js';
import { CtxKind } from '../sim/contexts.js';
import type { SimObserver, Simulation } from '../sim/simulation.js';
import type { DeviceHandle } from '../sim/smmu-side.js';
import { formatCommand, formatEntry, ignoredText, Ignored, InvalLog, LogKind, mismatchReason, type LogRecord } from './history.js';
import { FAULTS, type FaultName } from './faults.js';
import { Rule, RULES, type RuleClass, type RuleId } from './rules.js';

/** Distinct violations kept with full detail; beyond, only counted. */
export const MAX_RECORDED = 10000;
/** Violations whose history is rebuilt from the log (the log is a ring: later ones are summaries). */
const MAX_DETAILED = 500;
const CHANGE_RING = 32;

const hex = (n: number): string => `0x${n.toString(16)}`;
const ms = (ns: number): string => `${(ns / 1e6).toFixed(6)} ms`;

interface ChangeRec {
  /** Oracle-wide order of logged changes (fills record the last one they saw). */
  seq: number;
  ns: number;
  op: number;
  start: number;
  /** Pages, or -1 for the whole table. */
  count: number;
  doneNs: number;
  doneBy: string;
}

const OBLIGING = (op: number): boolean => op === TableOp.UNMAP || op === TableOp.PROTECT || op === TableOp.UNMAP_ALL ||
  op === TableOp.MAP_LINEAR || op === TableOp.MAP;

const OP_TEXT: Record<number, string> = {
  [TableOp.MAP]: 'mapped (replacing any mapping)',
  [TableOp.UNMAP]: 'unmapped',
  [TableOp.REMAP]: 'mapped again',
  [TableOp.MAP_LINEAR]: 'linear region replaced',
  [TableOp.PROTECT]: 'write-protected (dirty logging)',
  [TableOp.UNMAP_ALL]: 'torn down (every mapping removed)',
};

/** Shadow of one page table: generations per page and per table, and what software completed. */
class TableShadow {
  /** Linear region the typed arrays cover (pages outside use the maps). */
  start: number;
  count: number;
  gen: Uint32Array | null = null;
  done: Uint32Array | null = null;
  otherGen: Map<number, number> | null = null;
  otherDone: Map<number, number> | null = null;
  /** Whole-table generation and the one software completed. */
  tgen = 0;
  tdone = 0;
  pendingWhole = false;
  /** Changed page ranges not yet completed: start, count pairs. */
  readonly pending: number[] = [];
  /** Too many pending ranges: complete every page at the next maintenanceDone. */
  pendingAll = false;
  /** Torn down (UNMAP_ALL) and nothing mapped since: page state can go once that is completed. */
  retired = false;
  readonly changes: ChangeRec[] = [];
  changeNext = 0;

  constructor(readonly table: PageTable) {
    this.start = table.linearStart;
    this.count = table.linearCount;
  }

  genOf(page: number): number {
    const i = page - this.start;
    if (i >= 0 && i < this.count) return this.gen === null ? 0 : this.gen[i];
    return this.otherGen === null ? 0 : this.otherGen.get(page) ?? 0;
  }

  doneOf(page: number): number {
    const i = page - this.start;
    if (i >= 0 && i < this.count) return this.done === null ? 0 : this.done[i];
    return this.otherDone === null ? 0 : this.otherDone.get(page) ?? 0;
  }

  bump(page: number): void {
    const i = page - this.start;
    if (i >= 0 && i < this.count) {
      if (this.gen === null) { this.gen = new Uint32Array(this.count); this.done = new Uint32Array(this.count); }
      this.gen[i]++;
    } else {
      if (this.otherGen === null) { this.otherGen = new Map(); this.otherDone = new Map(); }
      this.otherGen.set(page, (this.otherGen.get(page) ?? 0) + 1);
    }
  }

  complete(): void {
    if (this.pendingWhole) { this.tdone = this.tgen; this.pendingWhole = false; }
    if (this.retired) {
      // Every entry filled before the teardown is now caught by the table generation alone.
      this.gen = null; this.done = null; this.otherGen = null; this.otherDone = null;
      this.pending.length = 0; this.pendingAll = false;
      return;
    }
    if (this.pendingAll) {
      if (this.gen !== null) this.done!.set(this.gen);
      if (this.otherGen !== null) for (const [k, v] of this.otherGen) this.otherDone!.set(k, v);
    } else {
      const p = this.pending;
      for (let k = 0; k < p.length; k += 2) {
        for (let page = p[k]; page < p[k] + p[k + 1]; page++) {
          const i = page - this.start;
          if (i >= 0 && i < this.count) { if (this.gen !== null) this.done![i] = this.gen[i]; }
          else if (this.otherGen !== null) this.otherDone!.set(page, this.otherGen.get(page) ?? 0);
        }
      }
    }
    this.pending.length = 0;
    this.pendingAll = false;
  }

  logChange(seq: number, ns: number, op: number, start: number, count: number): void {
    let r: ChangeRec;
    if (this.changes.length < CHANGE_RING) {
      r = { seq, ns, op, start, count, doneNs: -1, doneBy: '' };
      this.changes.push(r);
    } else {
      r = this.changes[this.changeNext];
      r.seq = seq; r.ns = ns; r.op = op; r.start = start; r.count = count; r.doneNs = -1; r.doneBy = '';
    }
    this.changeNext = (this.changeNext + 1) % CHANGE_RING;
  }

  /** The first obliging change after change number `seq` covering `page` (oldest first), if remembered. */
  changeAfter(seq: number, page: number, op = 0): ChangeRec | null {
    let best: ChangeRec | null = null;
    for (const c of this.changes) {
      if (c.seq <= seq || !OBLIGING(c.op) || (op !== 0 && c.op !== op)) continue;
      if (c.count >= 0 && (page < c.start || page >= c.start + c.count)) continue;
      if (best === null || c.seq < best.seq) best = c;
    }
    return best;
  }
}

/** Per-slot fill record of one cache (SMMU TLB, micro-TLB, ATC, CPU TLB). */
class CacheShadow {
  readonly t1: Int32Array;
  readonly g1: Uint32Array;
  readonly tg1: Uint32Array;
  readonly t2: Int32Array;
  readonly ipa: Float64Array;
  readonly g2: Uint32Array;
  readonly tg2: Uint32Array;
  readonly fillNs: Float64Array;
  /** The oracle's change sequence number when the entry was filled (for reports). */
  readonly fillSeq: Float64Array;
  /** Index of the violation reported for the entry in the slot, -1 if none. */
  readonly viol: Int32Array;

  constructor(n: number, readonly cache: number, readonly unit: number, readonly sid: number) {
    this.t1 = new Int32Array(n).fill(-1);
    this.g1 = new Uint32Array(n);
    this.tg1 = new Uint32Array(n);
    this.t2 = new Int32Array(n).fill(-1);
    this.ipa = new Float64Array(n);
    this.g2 = new Uint32Array(n);
    this.tg2 = new Uint32Array(n);
    this.fillNs = new Float64Array(n);
    this.fillSeq = new Float64Array(n);
    this.viol = new Int32Array(n).fill(-1);
  }

  copyFrom(slot: number, src: CacheShadow, s: number): void {
    this.t1[slot] = src.t1[s]; this.g1[slot] = src.g1[s]; this.tg1[slot] = src.tg1[s];
    this.t2[slot] = src.t2[s]; this.ipa[slot] = src.ipa[s]; this.g2[slot] = src.g2[s]; this.tg2[slot] = src.tg2[s];
    this.fillNs[slot] = src.fillNs[s];
    this.fillSeq[slot] = src.fillSeq[s];
    this.viol[slot] = -1;
  }
}

/** Cache kinds of reports (SmmuCache values plus the CPU TLB). */
const CPU_TLB = 100;
const CACHE_NAMES: Record<number, string> = {
  [SmmuCache.TLB]: 'TLB', [SmmuCache.MICRO_TLB]: 'micro-TLB', [SmmuCache.WALK]: 'walk cache', [SmmuCache.ATC]: 'ATC',
  [CPU_TLB]: 'CPU TLB',
};

/** One violation, as printed and as JSON. */
export interface Violation {
  /** 1-based, in order of detection. */
  n: number;
  rule: RuleId;
  class: RuleClass;
  ruleText: string;
  timeNs: number;
  /** The access: who, what address. */
  event: string;
  /** smmu<N> or cpu<N>. */
  unit: string;
  cache: string;
  slot: number;
  /** The entry used (null when a walk through a stale configuration faulted). */
  entry: {
    text: string; world: string; vmid: number; asid: number; aset: number; stage: string; page: number; out: number;
    sizeLog2: number; ctx: number; context: string; filledNs: number;
  } | null;
  requester: { ctx: number; context: string; tags: string };
  /** The change software considered invalidated (stale rules). */
  obligation: {
    table: string; page: number; change: string; changedNs: number; doneNs: number; doneBy: string; expected: string;
  } | null;
  /** Why the entry survived / why it was used: lines. */
  explanation: string[];
  /** Invalidations that reached the unit after the change (or the context's end) and why they did not match. */
  history: string[];
  /** Violating accesses to this entry (the first and any later hit). */
  hits: number;
  scenario: string;
  policy: string;
  seed: number;
  faults: string[];
  reproduce: string;
}

export interface FaultReport {
  name: FaultName;
  activations: number;
  /** Why this scenario/policy cannot exercise it (static), or null. */
  blocker: string | null;
  exercised: boolean;
  /** "not exercised by this scenario: needs …" when activations = 0. */
  note: string | null;
}

export interface OracleResult {
  clean: boolean;
  /** Distinct violations (one per entry, or per stale-configuration walk). */
  violations: number;
  /** Accesses that used a violating entry (>= violations). */
  violatingAccesses: number;
  byRule: Record<string, number>;
  checked: { smmuHits: number; atcHits: number; cpuHits: number; fills: number; maintenance: number };
  faults: FaultReport[];
  /** Violations kept (all of them up to MAX_RECORDED). */
  list: Violation[];
  /** Violations beyond MAX_RECORDED (counted only). */
  unrecorded: number;
}

export interface OracleOptions {
  faults?: readonly FaultName[];
  /** How to name the scenario in `reproduce` (a path; omitted = the built-in scenario). */
  scenarioRef?: string;
}

/**
 * Attach with `Oracle.attach(sim)` from SimOptions.attach (before the workload is built):
 *   new Simulation(sc, policy, { attach: (s) => { oracle = Oracle.attach(s); } })
 */
export class Oracle implements SimObserver, SmmuListener, PageTableListener {
  private readonly tables: (TableShadow | undefined)[] = [];
  private readonly shadows = new Map<Tlb, CacheShadow>();
  private lastTlb: Tlb | null = null;
  private lastSh: CacheShadow | null = null;
  private expectCtx = -1;
  private expectHandle: DeviceHandle | null = null;
  private readonly ctxHandle: (DeviceHandle | undefined)[] = [];
  /** Stale configurations already reported (by the resolved configuration object). */
  private readonly staleCfgs = new Map<StreamConfig, number>();
  readonly log = new InvalLog();
  readonly violations: Violation[] = [];
  private distinct = 0;
  private accesses = 0;
  private unrecorded = 0;
  private readonly byRule = new Map<string, number>();
  private smmuHits = 0;
  private atcHits = 0;
  private cpuHits = 0;
  private fills = 0;
  private maintenance = 0;
  private changeSeq = 0;
  private readonly faultNames: readonly FaultName[];
  private readonly scenarioRef: string | undefined;

  private constructor(private readonly sim: Simulation, opts: OracleOptions) {
    this.faultNames = opts.faults ?? [];
    this.scenarioRef = opts.scenarioRef;
  }

  /** Create an oracle and hook it into `sim` (call before the workload is built). */
  static attach(sim: Simulation, opts: OracleOptions = {}): Oracle {
    const o = new Oracle(sim, opts);
    sim.observer = o;
    for (const s of sim.hw.smmus) s.listener = teeSmmuListeners(s.listener, o);
    for (const pe of sim.hw.pes) pe.listener = o.pe;
    sim.hw.memory.setTableListener(o);
    return o;
  }

  // ------------------------------------------------------------------ shadow state

  private tableShadow(t: PageTable): TableShadow {
    let ts = this.tables[t.id];
    if (ts === undefined) {
      ts = new TableShadow(t);
      while (this.tables.length < t.id) this.tables.push(undefined);
      this.tables[t.id] = ts;
    }
    return ts;
  }

  onTableChange(table: PageTable, op: number, page: number, count: number): void {
    const ts = this.tableShadow(table);
    if (count < 0) {
      ts.tgen++;
      ts.pendingWhole = true;
      ts.retired = op === TableOp.UNMAP_ALL;
      if (op === TableOp.MAP_LINEAR && (table.linearStart !== ts.start || table.linearCount !== ts.count)) {
        // A new linear region: page generations restart; entries of the old one are covered by tgen.
        ts.start = table.linearStart; ts.count = table.linearCount;
        ts.gen = null; ts.done = null;
        ts.pending.length = 0; ts.pendingAll = false;
      }
      ts.logChange(++this.changeSeq, this.sim.now, op, 0, -1);
      return;
    }
    if (op === TableOp.MAP || op === TableOp.REMAP) ts.retired = false;
    for (let p = page; p < page + count; p++) ts.bump(p);
    if (!ts.pendingAll) {
      if (ts.pending.length >= 8192) ts.pendingAll = true;
      else ts.pending.push(page, count);
    }
    if (OBLIGING(op)) ts.logChange(++this.changeSeq, this.sim.now, op, page, count);
  }

  maintenanceDone(table: PageTable, what: string): void {
    this.maintenance++;
    const ts = this.tableShadow(table);
    ts.complete();
    for (const c of ts.changes) if (c.doneNs < 0) { c.doneNs = this.sim.now; c.doneBy = what; }
  }

  beforeDma(h: DeviceHandle, _page: number): void {
    this.expectCtx = h.ctx;
    this.expectHandle = h;
    if (h.ctx >= 0 && this.ctxHandle[h.ctx] !== h) {
      while (this.ctxHandle.length < h.ctx) this.ctxHandle.push(undefined);
      this.ctxHandle[h.ctx] = h;
    }
  }

  private shadowOf(tlb: Tlb, cache: number, unit: number, sid: number): CacheShadow {
    let sh = this.shadows.get(tlb);
    if (sh === undefined) {
      sh = new CacheShadow(tlb.valid.length, cache, unit, sid);
      this.shadows.set(tlb, sh);
    }
    this.lastTlb = tlb;
    this.lastSh = sh;
    return sh;
  }

  private sidOf(smmu: Smmu, cache: number, tlb: Tlb): number {
    const m = cache === SmmuCache.ATC ? smmu.atcs : cache === SmmuCache.MICRO_TLB ? smmu.microTlbs : null;
    if (m !== null) for (const [sid, t] of m) if (t === tlb) return sid;
    return -1;
  }

  // ------------------------------------------------------------------ SMMU listener

  onFill(smmu: Smmu, cfg: StreamConfig, cache: number, tlb: Tlb, slot: number): void {
    this.fills++;
    const sh = tlb === this.lastTlb ? this.lastSh! : this.shadowOf(tlb, cache, smmu.id, -1);
    const base = tlb.page[slot];
    const now = this.sim.now;
    sh.fillNs[slot] = now;
    sh.fillSeq[slot] = this.changeSeq;
    sh.viol[slot] = -1;
    if (cfg.stage === Stage.S2) {
      const ts = this.tableShadow(cfg.s2!);
      sh.t1[slot] = cfg.s2!.id; sh.g1[slot] = ts.genOf(base); sh.tg1[slot] = ts.tgen;
      sh.t2[slot] = -1;
    } else {
      const ts = this.tableShadow(cfg.s1!);
      sh.t1[slot] = cfg.s1!.id; sh.g1[slot] = ts.genOf(base); sh.tg1[slot] = ts.tgen;
      if (cfg.stage === Stage.NESTED) {
        const ipa = cfg.s1!.walk(base);
        const t2 = this.tableShadow(cfg.s2!);
        sh.t2[slot] = cfg.s2!.id; sh.ipa[slot] = ipa; sh.g2[slot] = t2.genOf(ipa); sh.tg2[slot] = t2.tgen;
      } else {
        sh.t2[slot] = -1;
      }
    }
    const exp = this.expectCtx;
    this.expectCtx = -1;
    if (exp >= 0 && cfg.ctx !== exp) this.staleConfig(smmu, cfg, cache, tlb, slot, sh, exp, base);
  }

  onFault(smmu: Smmu, cfg: StreamConfig, page: number): void {
    const exp = this.expectCtx;
    this.expectCtx = -1;
    if (exp >= 0 && cfg.ctx !== exp) this.staleConfig(smmu, cfg, SmmuCache.TLB, null, -1, null, exp, page);
  }

  onCopy(smmu: Smmu, cache: number, tlb: Tlb, slot: number, from: Tlb, fromSlot: number): void {
    const src = this.shadows.get(from);
    const sh = this.shadows.get(tlb) ?? this.shadowOf(tlb, cache, smmu.id, this.sidOf(smmu, cache, tlb));
    if (src === undefined) { sh.t1[slot] = -1; sh.t2[slot] = -1; sh.viol[slot] = -1; return; }
    sh.copyFrom(slot, src, fromSlot);
  }

  onHit(smmu: Smmu, cfg: StreamConfig, cache: number, tlb: Tlb, slot: number, page: number): void {
    if (cache === SmmuCache.ATC) this.atcHits++; else this.smmuHits++;
    const exp = this.expectCtx;
    this.expectCtx = -1;
    const sh = tlb === this.lastTlb ? this.lastSh : this.shadows.get(tlb);
    if (sh === undefined || sh === null) return;
    if (sh !== this.lastSh) { this.lastTlb = tlb; this.lastSh = sh; }
    const v = sh.viol[slot];
    if (v >= 0) { this.repeat(v); return; }
    if (exp >= 0 && tlb.ctx[slot] !== exp) { this.aliasing(smmu, null, cfg, cache, tlb, slot, sh, page, exp); return; }
    const which = this.staleWhich(sh, slot, page, tlb);
    if (which !== 0) this.stale(smmu, null, cache, tlb, slot, sh, page, which, cfg);
  }

  onCommand(smmu: Smmu, _op: number, ring: Uint32Array, off: number): void {
    this.log.command(this.sim.now, smmu.id, ring, off);
  }

  onInvalidate(_smmu: Smmu, _cache: number, sid: number, s: Readonly<InvalScope>): void {
    this.log.stage(s, sid);
  }

  onBroadcast(smmu: Smmu, a: TlbiArgs, who: IssuerRegime, accepted: boolean): void {
    let why: number = Ignored.ACTED;
    if (!accepted) {
      if (!smmu.smmuEnabled) why = Ignored.DISABLED;
      else if (!smmu.features.btm) why = Ignored.NO_BTM;
      else if (smmu.dropBroadcasts && smmu.takesBroadcasts) why = Ignored.DROPPED_FAULT;
      else if (!smmu.takesBroadcasts) why = Ignored.PTM;
      else if (!smmu.features.vmid16 || !smmu.features.asid16) why = Ignored.NARROW_ID;
      else why = Ignored.NO_EFFECT;
    }
    this.log.broadcast(this.sim.now, smmu.id, a, who, why, smmu.knobs.asetSparesAsidBroadcasts);
  }

  // ------------------------------------------------------------------ PE listener

  onTlbi(pe: Pe, a: TlbiArgs, broadcast: boolean): void {
    this.log.cpuTlbi(this.sim.now, pe.id, a, pe.regime, broadcast);
  }

  // (PeListener.onFill / onHit: the same names as the SMMU listener's take other arguments,
  // so the PE side is an adapter object.)
  readonly pe: PeListener = {
    onFill: (pe: Pe, slot: number, table: PageTable, page: number, _ctx: number): void => {
      this.fills++;
      const tlb = pe.tlb;
      const sh = tlb === this.lastTlb ? this.lastSh! : this.shadowOf(tlb, CPU_TLB, pe.id, -1);
      const ts = this.tableShadow(table);
      const base = tlb.page[slot];
      sh.t1[slot] = table.id; sh.g1[slot] = ts.genOf(base); sh.tg1[slot] = ts.tgen; sh.t2[slot] = -1;
      sh.fillNs[slot] = this.sim.now;
      sh.fillSeq[slot] = this.changeSeq;
      sh.viol[slot] = -1;
      void page;
    },
    onHit: (pe: Pe, slot: number, page: number, ctx: number): void => {
      this.cpuHits++;
      const tlb = pe.tlb;
      const sh = tlb === this.lastTlb ? this.lastSh : this.shadows.get(tlb);
      if (sh === undefined || sh === null) return;
      if (sh !== this.lastSh) { this.lastTlb = tlb; this.lastSh = sh; }
      const v = sh.viol[slot];
      if (v >= 0) { this.repeat(v); return; }
      if (tlb.ctx[slot] !== ctx) { this.aliasing(null, pe, null, CPU_TLB, tlb, slot, sh, page, ctx); return; }
      const which = this.staleWhich(sh, slot, page, tlb);
      if (which !== 0) this.stale(null, pe, CPU_TLB, tlb, slot, sh, page, which, null);
    },
    onTlbi: (pe: Pe, a: TlbiArgs, broadcast: boolean): void => this.onTlbi(pe, a, broadcast),
  };

  // ------------------------------------------------------------------ checks

  /** 0: fresh; 1: stale through the stage-1 (or only) table; 2: through the stage-2 table. */
  private staleWhich(sh: CacheShadow, slot: number, page: number, tlb: Tlb): number {
    const t1 = sh.t1[slot];
    if (t1 < 0) return 0;
    const ts = this.tables[t1]!;
    if (ts.tdone > sh.tg1[slot]) return 1;
    if (ts.done !== null || ts.otherDone !== null) {
      if (ts.doneOf(page) > sh.g1[slot]) return 1;
    }
    const t2 = sh.t2[slot];
    if (t2 < 0) return 0;
    const u = this.tables[t2]!;
    if (u.tdone > sh.tg2[slot]) return 2;
    if (u.done !== null || u.otherDone !== null) {
      if (u.doneOf(sh.ipa[slot] + (page - tlb.page[slot])) > sh.g2[slot]) return 2;
    }
    return 0;
  }

  private repeat(v: number): void {
    this.accesses++;
    if (v < this.violations.length) this.violations[v].hits++;
  }

  // ------------------------------------------------------------------ reports

  private entryOf(tlb: Tlb, slot: number): TlbEntry {
    return tlb.entry(slot)!;
  }

  private ctxName(ctx: number): string {
    return ctx >= 0 ? this.sim.ctxs.names[ctx] ?? `ctx ${ctx}` : 'none';
  }

  private eventText(smmu: Smmu | null, pe: Pe | null, page: number, ipa: boolean, ctx: number): string {
    if (pe !== null) return `access by a vCPU on cpu${pe.id} (${this.ctxName(ctx)}) to guest page ${hex(page)}`;
    const h = this.expectHandle;
    const who = h !== null ? `sid ${hex(h.sid)}${h.ssid !== 0 ? ` ssid ${h.ssid}` : ''}` : 'a device';
    return `DMA by ${who} (${this.ctxName(ctx)}) through smmu${smmu!.id} to ${ipa ? 'IPA' : 'IOVA/VA'} page ${hex(page)}`;
  }

  private reproduce(): { scenario: string; policy: string; seed: number; faults: string[]; reproduce: string } {
    const sc = this.sim.sc;
    const faults = [...this.faultNames];
    const file = this.scenarioRef;
    const cmd = ['btmsim check'];
    if (file !== undefined) cmd.push(file);
    cmd.push(`--policy ${this.sim.policy.name}`, `--seed ${sc.seed}`);
    if (faults.length > 0) cmd.push(`--inject ${faults.join(',')}`);
    return { scenario: file ?? `${sc.name} (built-in)`, policy: this.sim.policy.name, seed: sc.seed, faults, reproduce: cmd.join(' ') };
  }

  private push(v: Omit<Violation, 'n' | 'ruleText' | 'class' | 'hits' | 'scenario' | 'policy' | 'seed' | 'faults' | 'reproduce'>,
    sh: CacheShadow | null, slot: number): void {
    this.distinct++;
    this.accesses++;
    this.byRule.set(v.rule, (this.byRule.get(v.rule) ?? 0) + 1);
    if (this.violations.length >= MAX_RECORDED) { this.unrecorded++; if (sh !== null) sh.viol[slot] = MAX_RECORDED + 1; return; }
    const def = RULES[v.rule];
    const full: Violation = {
      n: this.distinct, rule: v.rule, class: def.class, ruleText: def.text, timeNs: v.timeNs, event: v.event,
      unit: v.unit, cache: v.cache, slot: v.slot, entry: v.entry, requester: v.requester, obligation: v.obligation,
      explanation: v.explanation, history: v.history, hits: 1, ...this.reproduce(),
    };
    if (sh !== null) sh.viol[slot] = this.violations.length;
    this.violations.push(full);
  }

  private entryJson(tlb: Tlb, slot: number, sh: CacheShadow): Violation['entry'] {
    const e = this.entryOf(tlb, slot);
    return {
      text: formatEntry(e), world: WORLD_NAMES[e.world] ?? String(e.world), vmid: e.vmid, asid: e.asid, aset: e.aset,
      stage: STAGE_NAMES[e.stage] ?? String(e.stage), page: e.page, out: e.out, sizeLog2: e.sizeLog2, ctx: e.ctx,
      context: this.ctxName(e.ctx), filledNs: sh.fillNs[slot],
    };
  }

  private stale(smmu: Smmu | null, pe: Pe | null, cache: number, tlb: Tlb, slot: number, sh: CacheShadow, page: number,
    which: number, cfg: StreamConfig | null): void {
    const now = this.sim.now;
    const rule = pe !== null ? Rule.STALE_CPU_TLB : cache === SmmuCache.ATC ? Rule.STALE_ATC : Rule.STALE_TLB;
    const e = this.entryOf(tlb, slot);
    const tableId = which === 1 ? sh.t1[slot] : sh.t2[slot];
    const ts = this.tables[tableId]!;
    const tpage = which === 1 ? page : sh.ipa[slot] + (page - tlb.page[slot]);
    const detailed = this.distinct < MAX_DETAILED;
    const change = ts.changeAfter(sh.fillSeq[slot], tpage);
    const obligation = {
      table: ts.table.name, page: tpage,
      change: change === null ? 'a change the oracle no longer remembers'
        : change.count < 0 ? `the whole table ${OP_TEXT[change.op] ?? 'changed'}`
          : `pages [${hex(change.start)}, ${hex(change.start + change.count)}) ${OP_TEXT[change.op] ?? 'changed'}`,
      changedNs: change?.ns ?? -1, doneNs: change?.doneNs ?? -1, doneBy: change?.doneBy ?? '',
      expected: RULES[rule].discharge,
    };
    const explanation: string[] = [];
    if (which === 2) explanation.push(`the entry combines two stages: it is stale through its stage 2 (${ts.table.name}, IPA page ${hex(tpage)})`);
    if (change === null) explanation.push(`the change of ${ts.table.name} page ${hex(tpage)} after the fill is older than the oracle's change log`);
    const history = detailed ? this.history(smmu, pe, cache, sh.sid >= 0 ? sh.sid : cfg?.sid ?? -1, e, change?.ns ?? sh.fillNs[slot], change?.doneNs ?? now, now) : [];
    if (smmu !== null) this.queued(smmu, explanation);
    this.push({
      rule, timeNs: now, event: this.eventText(smmu, pe, page, e.stage === Stage.S2, pe !== null ? e.ctx : (this.expectHandle?.ctx ?? e.ctx)),
      unit: smmu !== null ? `smmu${smmu.id}` : `cpu${pe!.id}`, cache: CACHE_NAMES[cache], slot,
      entry: this.entryJson(tlb, slot, sh),
      requester: { ctx: e.ctx, context: this.ctxName(e.ctx), tags: cfg !== null ? this.cfgTags(cfg) : '' },
      obligation, explanation, history,
    }, sh, slot);
  }

  private aliasing(smmu: Smmu | null, pe: Pe | null, cfg: StreamConfig | null, cache: number, tlb: Tlb, slot: number,
    sh: CacheShadow, page: number, exp: number): void {
    const now = this.sim.now;
    const e = this.entryOf(tlb, slot);
    const kind = exp >= 0 ? this.sim.ctxs.kind[exp] : 0;
    const rule = kind === CtxKind.MM || (e.world & World.NS_EL1) === 0 ? Rule.ASID_ALIASING : Rule.VMID_ALIASING;
    const explanation: string[] = [];
    explanation.push(`the entry was filled at ${ms(sh.fillNs[slot])} for ${this.ctxName(e.ctx)}; the requester belongs to ${this.ctxName(exp)}`);
    const mine = this.ctxHandle[exp];
    const theirs = e.ctx >= 0 ? this.ctxHandle[e.ctx] : undefined;
    if (cfg !== null) explanation.push(`the requester's configuration tags its lookups ${this.cfgTags(cfg)}${mine !== undefined ? this.driverIds(mine) : ''}`);
    if (theirs !== undefined) explanation.push(`the entry's owner ${this.ctxName(e.ctx)}${this.driverIds(theirs)}`);
    // When did the owner's context end (its tables torn down)?
    let endNs = -1;
    const t1 = sh.t1[slot];
    const ts = t1 >= 0 ? this.tables[t1] : undefined;
    if (ts !== undefined) {
      const end = ts.changeAfter(sh.fillSeq[slot], 0, TableOp.UNMAP_ALL);
      if (end !== null) {
        endNs = end.ns;
        explanation.push(`${this.ctxName(e.ctx)} ended at ${ms(end.ns)} (${ts.table.name} torn down; software done at ${ms(end.doneNs)}: ${end.doneBy})`);
        if (smmu !== null && (e.world & World.NS_EL1) !== 0) {
          const covering = this.log.between(end.ns, now).records.some((r) => r.unit === smmu.id && r.scope !== null &&
            (r.kind === LogKind.CMD || r.aux === Ignored.ACTED) && (r.scope.worlds & World.NS_EL1) !== 0 &&
            (r.scope.vmid < 0 || r.scope.vmid === e.vmid) && r.scope.pageCount === 0 && (r.scope.stages & e.stage) !== 0);
          if (!covering) explanation.push(`no invalidation of every VMID ${hex(e.vmid)} entry (CMD_TLBI_S12_VMALL, NSNH_ALL, ALLE1IS…) reached smmu${smmu.id} after that, yet VMID ${hex(e.vmid)} now tags another context's lookups`);
        }
      } else {
        explanation.push(`${this.ctxName(e.ctx)} is still alive: both contexts use the same tags at the same time`);
      }
    }
    const detailed = this.distinct < MAX_DETAILED;
    const history = detailed ? this.history(smmu, pe, cache, sh.sid >= 0 ? sh.sid : cfg?.sid ?? -1, e, endNs >= 0 ? endNs : sh.fillNs[slot], endNs, now) : [];
    if (smmu !== null) this.queued(smmu, explanation);
    this.push({
      rule, timeNs: now, event: this.eventText(smmu, pe, page, e.stage === Stage.S2, exp),
      unit: smmu !== null ? `smmu${smmu.id}` : `cpu${pe!.id}`, cache: CACHE_NAMES[cache], slot,
      entry: this.entryJson(tlb, slot, sh),
      requester: { ctx: exp, context: this.ctxName(exp), tags: cfg !== null ? this.cfgTags(cfg) : '' },
      obligation: null, explanation, history,
    }, sh, slot);
  }

  private staleConfig(smmu: Smmu, cfg: StreamConfig, cache: number, tlb: Tlb | null, slot: number, sh: CacheShadow | null,
    exp: number, page: number): void {
    const seen = this.staleCfgs.get(cfg);
    if (seen !== undefined) { this.repeat(seen); if (sh !== null) sh.viol[slot] = seen; return; }
    const now = this.sim.now;
    const explanation = [
      `the walk for sid ${hex(cfg.sid)} used a cached configuration of ${this.ctxName(cfg.ctx)} (${this.cfgTags(cfg)}); software attached the stream to ${this.ctxName(exp)}`,
    ];
    const mine = this.ctxHandle[exp];
    if (mine !== undefined) explanation.push(`the driver's configuration for the requester${this.driverIds(mine)}`);
    if (tlb === null) explanation.push(`the walk through ${this.ctxName(cfg.ctx)}'s tables found no mapping (they were torn down): a translation fault instead of a cross-VM access, by luck`);
    this.queued(smmu, explanation);
    const e = tlb !== null ? this.entryOf(tlb, slot) : null;
    const history = this.distinct < MAX_DETAILED && e !== null ? this.history(smmu, null, cache, cfg.sid, e, Math.max(0, now - 1e5), now, now) : [];
    if (e === null) {
      const { records } = this.log.between(Math.max(0, now - 1e5), now);
      for (const r of records) if (r.kind === LogKind.CMD && r.unit === smmu.id) history.push(`${ms(r.timeNs)}  ${r.text}`);
    }
    this.staleCfgs.set(cfg, this.violations.length);
    this.push({
      rule: Rule.STALE_CONFIG, timeNs: now, event: this.eventText(smmu, null, page, cfg.stage === Stage.S2, exp),
      unit: `smmu${smmu.id}`, cache: tlb !== null ? CACHE_NAMES[cache] : 'walk', slot,
      entry: tlb !== null && sh !== null ? this.entryJson(tlb, slot, sh) : null,
      requester: { ctx: exp, context: this.ctxName(exp), tags: this.cfgTags(cfg) },
      obligation: null, explanation, history,
    }, sh, slot);
  }

  private cfgTags(cfg: StreamConfig): string {
    const parts = [WORLD_NAMES[cfg.world] ?? String(cfg.world)];
    if ((cfg.world & World.NS_EL1) !== 0) parts.push(`VMID ${hex(cfg.vmid)}`);
    if (cfg.stage !== Stage.S2 && cfg.asid >= 0) parts.push(`ASID ${hex(cfg.asid)}`);
    parts.push(STAGE_NAMES[cfg.stage] ?? '');
    return parts.join(' ');
  }

  private driverIds(h: DeviceHandle): string {
    if (h.assignment !== null) return ` (driver: stage-2 domain VMID ${hex(h.assignment.vmid)}, sid ${hex(h.sid)})`;
    if (h.sva !== null) return ` (driver: SVA domain ASID ${hex(h.sva.effectiveAsid)}, sid ${hex(h.sid)} ssid ${h.ssid})`;
    return '';
  }

  /** Commands still in the SMMU's queue at the access (fault skip-sync). */
  private queued(smmu: Smmu, out: string[]): void {
    const mask = (2 << smmu.cmdqLog2Size) - 1;
    const size = 1 << smmu.cmdqLog2Size;
    let cons = smmu.cmdqCons & mask;
    const prod = smmu.cmdqProd;
    if (cons === prod) return;
    const lines: string[] = [];
    let n = 0;
    while (cons !== prod) {
      if (n < 6) {
        const off = (cons & (size - 1)) * 4;
        lines.push(formatCommand(smmu.ring.subarray(off, off + 4)));
      }
      n++;
      cons = (cons + 1) & mask;
    }
    out.push(`still in smmu${smmu.id}'s command queue at the access, not yet consumed (the driver returned before its CMD_SYNC completed): ` +
      `${lines.join('; ')}${n > lines.length ? `; … ${n - lines.length} more` : ''}`);
  }

  /**
   * Invalidations that reached the entry's unit from `fromNs` to `nowNs`, with why each did not
   * remove the entry. Those up to `doneNs` are the change's own maintenance; later ones are
   * summarised.
   */
  private history(smmu: Smmu | null, pe: Pe | null, cache: number, sid: number, e: TlbEntry, fromNs: number, doneNs: number,
    nowNs: number): string[] {
    const { records, truncated } = this.log.between(fromNs, nowNs);
    const relevant = records.filter((r) => this.relevant(r, smmu, pe, cache, sid));
    const out: string[] = [];
    if (truncated) out.push('(the oracle\'s invalidation log no longer holds the oldest records of this window)');
    const own = relevant.filter((r) => doneNs < 0 || r.timeNs <= doneNs);
    const later = relevant.filter((r) => doneNs >= 0 && r.timeNs > doneNs);
    const unit = smmu !== null ? `smmu${smmu.id}${cache === SmmuCache.ATC ? ` ATC of sid ${hex(sid)}` : ''}` : `cpu${pe!.id}`;
    if (own.length === 0) out.push(`no invalidation reached ${unit} ${doneNs >= 0 ? 'during that maintenance' : 'in that window'}`);
    const show = (r: LogRecord): string => `${ms(r.timeNs)}  ${r.text}${r.kind === LogKind.BCAST ? ` (at smmu${r.unit})` : r.kind === LogKind.CPU_TLBI ? ` (cpu${r.unit}, ${r.aux === 1 ? 'broadcast' : 'local'})` : ''}: ${this.why(r, e, pe)}`;
    for (const r of own.slice(-12)) out.push(show(r));
    if (own.length > 12) out.splice(out.length - 12, 0, `… ${own.length - 12} earlier`);
    if (later.length > 0) {
      const near = later.filter((r) => r.scope === null || r.scope.pageCount === 0 ||
        (e.page < r.scope.pageStart + r.scope.pageCount && e.page + 2 ** e.sizeLog2 > r.scope.pageStart));
      out.push(`${later.length} later invalidation(s) for ${unit} before the access; none removed the entry${near.length > 0 ? ', e.g.:' : ''}`);
      for (const r of near.slice(0, 3)) out.push(show(r));
    }
    return out;
  }

  private relevant(r: LogRecord, smmu: Smmu | null, pe: Pe | null, cache: number, sid: number): boolean {
    if (pe !== null) return r.kind === LogKind.CPU_TLBI;
    if (smmu === null || r.kind === LogKind.CPU_TLBI || r.unit !== smmu.id) return false;
    if (cache === SmmuCache.ATC) return r.kind === LogKind.CMD && r.aux === sid && r.scope !== null;
    if (r.kind === LogKind.BCAST) return true;
    return r.scope !== null && r.aux === -1;
  }

  private why(r: LogRecord, e: TlbEntry, pe: Pe | null): string {
    if (r.kind === LogKind.CPU_TLBI && r.aux === 0 && pe !== null && r.unit !== pe.id) {
      return `local to cpu${r.unit}: never reaches cpu${pe.id}${r.scope !== null && mismatchReason(e, r.scope) === null ? ' (an Inner Shareable one would have removed the entry)' : ''}`;
    }
    if (r.kind === LogKind.BCAST) {
      const ig = ignoredText(r.aux);
      if (ig !== null) {
        const m = r.scope !== null ? mismatchReason(e, r.scope) : null;
        return m === null && r.scope !== null ? `${ig} — it would have removed the entry` : `${ig}${m !== null ? ` (and would not have matched: ${m})` : ''}`;
      }
    }
    if (r.scope === null) return 'no TLB effect';
    const m = mismatchReason(e, r.scope);
    const cut = r.encodedPages > r.scope.pageCount && r.scope.pageCount > 0
      ? ` (the command encodes ${r.encodedPages} pages; the SMMU acted on ${r.scope.pageCount})` : '';
    return m === null ? 'matches the entry (it was refilled afterwards?)' : `did not match — ${m}${cut}`;
  }

  // ------------------------------------------------------------------ result

  result(): OracleResult {
    const faults: FaultReport[] = [];
    const hooks = this.sim.faults;
    for (const name of this.faultNames) {
      const def = FAULTS.find((f) => f.name === name)!;
      const activations = hooks !== null ? hooks.activations[def.hook] : 0;
      const blocker = def.blocker(this.sim.sc, this.sim.policy);
      const exercised = activations > 0;
      faults.push({
        name, activations, blocker, exercised,
        note: exercised ? null : `not exercised by this scenario: needs ${def.needs}${blocker !== null ? ` (here: ${blocker})` : ''}`,
      });
    }
    const byRule: Record<string, number> = {};
    for (const [k, v] of [...this.byRule.entries()].sort()) byRule[k] = v;
    return {
      clean: this.distinct === 0,
      violations: this.distinct,
      violatingAccesses: this.accesses,
      byRule,
      checked: { smmuHits: this.smmuHits, atcHits: this.atcHits, cpuHits: this.cpuHits, fills: this.fills, maintenance: this.maintenance },
      faults,
      list: this.violations,
      unrecorded: this.unrecorded,
    };
  }
}
