/**
 * Replays trace events (`btmsim-trace` JSONL, or a QEMU trace through qemu-import.ts) into the
 * hardware model and the SMMU driver's command queue, deterministically, and measures what
 * `btmsim run` measures (RunMetrics names where they apply).
 *
 * The system is built from the header (PEs, SMMUs with their ID registers and TLB geometry),
 * each SMMU is probed and reset by the driver model (CMDQEN, SMMUEN, CR2 as the recording driver
 * had them: PTM unless FEAT_BTM), then every counter is zeroed: the trace's own commands,
 * reset ones included, are the only ones counted. Commands go through the driver's
 * `issueCmdlist` (one call per `cmds` event: one CMDQ_PROD write), so a command the model
 * rejects is handled as Linux would (CERROR_ILL → replaced by CMD_SYNC) and counted.
 *
 * Page-table ids and context ids of the trace are mapped to the replay's own (the synthetic KVM
 * of a what-if adds contexts), and STE.S2TTB / CD.TTB0 pseudo addresses are rewritten through
 * that map.
 *
 * No Node or DOM imports.
 */
import { IDR0, IDR3, setField } from '../../arch/registers.js';
import { TLBI } from '../../arch/tlbi.js';
import { PeStat, type Pe } from '../../hw/cpu/pe.js';
import { defaultSmmuKnobs } from '../../hw/knobs.js';
import { tableBase, type PageTable } from '../../hw/memory.js';
import { SmmuStat, type Smmu, type SmmuParams } from '../../hw/smmu/smmu.js';
import type { Cd, Ste } from '../../hw/smmu/structures.js';
import { HwSystem } from '../../hw/system.js';
import type { TlbGeometry } from '../../hw/tlb/tlb-api.js';
import { newTlbiArgs, type TlbiArgs } from '../../hw/tlbi-scope.js';
import { ArmSmmuDriver, type ArmSmmuDevice } from '../../kernel/smmu-driver/device.js';
import { isDriverError } from '../../kernel/smmu-driver/ids.js';
import { ContextRegistry, CtxKind } from '../../sim/contexts.js';
import { Metrics, Source, commandsByName, smmuTotals } from '../../sim/metrics.js';
import type { RunMetrics } from '../../sim/run.js';
import type { PolicyName } from '../schema.js';
import { TraceError } from './errors.js';
import { INTENT_SOURCES, type CostDesc, type HeaderEvent, type TraceEvent } from './jsonl.js';
import {
  SyntheticKvm, newRewriteStats, replayPolicy, rewriteCommands, type ReplayPolicy, type RewriteStats,
  type SyntheticKvmOptions,
} from './whatif.js';

export const DEFAULT_COST: CostDesc = { tlbHitNs: 3, walkAccessNs: 90, commandNs: 50, cmdSyncNs: 2000, dvmMessageNs: 100 };

/** The geometry QEMU's IOTLB behaves like: one table of 256 entries, any key anywhere. */
export const QEMU_IOTLB_GEOMETRY: TlbGeometry = { entries: 256, ways: 256, policy: 'lru' };

export interface ReplayOptions {
  /** Name shown in reports. */
  label?: string;
  /** SMMU main TLB geometry (default: the header's). */
  tlb?: TlbGeometry;
  /** IDR3.RIL: 'off' also re-encodes range TLBIs as per-granule commands; 'on' merges per-page runs. */
  ril?: 'on' | 'off';
  /** IDR0.BTM and the driver's FEAT_BTM (CR2.PTM=0). Default: the policy's, else the header's. */
  btm?: boolean;
  /** A coordination policy (what-if; see replayPolicy). */
  policy?: PolicyName;
  /** A synthetic KVM beside the traced system. */
  kvm?: SyntheticKvmOptions | null;
  /**
   * Apply `flush` events (QEMU emptying its IOTLB when full). Default: when the trace comes from
   * QEMU and the TLB geometry is the header's; a what-if with another TLB does not inherit
   * QEMU's capacity behaviour.
   */
  applyFlushes?: boolean;
  /** Number of PEs (default: the header's). */
  cpus?: number;
}

/** The hardware-side metrics of a run (RunMetrics' own shapes), plus what a replay knows. */
export interface ReplayMetrics extends Pick<RunMetrics,
  'dmaTranslations' | 'collateral' | 'intended' | 'collateralRefills' | 'collateralRefillWalkAccesses' | 'commands' | 'dvm' | 'cpu'> {
  label: string;
  /** Trace events applied (header excluded). */
  events: number;
  /** No vSMMU traps in a trace: the guest's commands appear as the host's. */
  translation: Omit<RunMetrics['translation'], 'vsmmuTrapTimeNs'>;
  smmu: {
    /** Commands the SMMU model rejected (CERROR_ILL), handled as Linux does. */
    commandErrors: number;
    configMisses: number;
    entriesInvalidated: number;
    /** Recorded capacity flushes applied / ignored (what-if with another TLB). */
    capacityFlushesApplied: number;
    capacityFlushesIgnored: number;
  };
  rewrite: RewriteStats;
  kvm: { vms: number; vmids: number[]; unmaps: number; vmFlushes: number; rollovers: number } | null;
  workload: Record<string, number>;
}

const SOURCE_INDEX: Record<string, number> = Object.fromEntries(INTENT_SOURCES.map((s, i) => [s, i]));
/** SMMU context kinds (what a driver command may intend). */
const SMMU_CTX_KINDS = new Set<number>([CtxKind.SMMU_S1, CtxKind.SMMU_S2, CtxKind.NESTED_S1, CtxKind.MM]);
const TABLE_STRIDE = 0x1000_0000;

export class Replayer {
  hw: HwSystem | null = null;
  readonly devs: ArmSmmuDevice[] = [];
  readonly ctxs = new ContextRegistry();
  readonly metrics = new Metrics(this.ctxs);
  header: HeaderEvent | null = null;
  /** What the recording run measured (`end` event), if any. */
  recorded: Record<string, unknown> | null = null;
  readonly policy: ReplayPolicy | null;
  kvm: SyntheticKvm | null = null;
  /** Trace time (ns) of the last event. */
  now = 0;
  private sawTime = false;
  private events = 0;
  private dma = 0;
  private flushesApplied = 0;
  private flushesIgnored = 0;
  private applyFlushes = false;
  private autoIntent = true;
  private openIntent = false;
  private readonly tables = new Map<number, PageTable>();
  private readonly ctxMap = new Map<number, number>();
  private readonly smmuCtxs: number[] = [];
  /** Replay ctx ids per SMMU stage-2 VMID (from STEs), for btm-kvm-pinned intents. */
  private readonly vmidCtxs = new Map<number, Set<number>>();
  private readonly tableCtx = new Map<number, number>();
  private readonly tlbiArgs = new Map<string, TlbiArgs>();
  private readonly workload = { vm: 0, vcpu: 0, mm: 0, mark: 0, reg: 0 };
  private readonly rewrite = newRewriteStats();
  private vmidSplit = 0;
  private readonly stage2Vmids: number[] = [];

  constructor(readonly opts: ReplayOptions = {}) {
    this.policy = opts.policy !== undefined ? replayPolicy(opts.policy) : null;
  }

  /** Apply one event. `lineNo` locates errors. */
  apply(ev: TraceEvent, lineNo = 0): void {
    if (ev.e === 'header') { this.setup(ev, lineNo); return; }
    const hw = this.hw;
    if (hw === null) throw new TraceError(lineNo, 'event before the header');
    this.events++;
    if (ev.t !== undefined) {
      this.sawTime = true;
      if (ev.t > this.now) this.now = ev.t;
    } else if (ev.e === 'dma' && !this.sawTime) {
      // No timestamps: trace time advances 1 us per DMA translation.
      this.now += 1000;
    }
    if (this.kvm !== null && !this.openIntent) this.kvm.advanceTo(this.now);
    switch (ev.e) {
      case 'dma': {
        this.dma++;
        this.smmuAt(ev.smmu, lineNo).translate(ev.sid, ev.ssid, ev.page);
        return;
      }
      case 'cmds': this.commands(ev.smmu, ev.w, lineNo); return;
      case 'map': this.table(ev.table, lineNo).map(ev.page, ev.out, ev.size); return;
      case 'unmap': this.table(ev.table, lineNo).unmap(ev.page); return;
      case 'unmapRange': this.table(ev.table, lineNo).unmapRange(ev.page, ev.count); return;
      case 'remap': this.table(ev.table, lineNo).remapLinear(ev.page); return;
      case 'linear': this.table(ev.table, lineNo).mapLinear(ev.start, ev.count, ev.out); return;
      case 'tlbi': {
        const pe = this.pe(ev.cpu, lineNo);
        const r = pe.regime;
        r.vmid = ev.vmid; r.el = ev.el; r.e2h = ev.e2h; r.tge = ev.tge;
        pe.hcrFb = ev.fb;
        let a = this.tlbiArgs.get(ev.op);
        if (a === undefined) {
          const op = TLBI[ev.op];
          if (op === undefined) throw new TraceError(lineNo, `unknown TLBI ${ev.op}`);
          a = newTlbiArgs(op);
          this.tlbiArgs.set(ev.op, a);
        }
        a.asid = ev.asid; a.page = ev.page; a.pages = ev.pages; a.ttl = ev.ttl; a.granuleLog2 = ev.granule;
        pe.tlbi(a);
        return;
      }
      case 'dsb': this.pe(ev.cpu, lineNo).dsb(); return;
      case 'access': {
        const pe = this.pe(ev.cpu, lineNo);
        const r = pe.regime;
        r.vmid = ev.vmid; r.el = ev.el; r.e2h = ev.e2h; r.tge = ev.tge;
        pe.asid = ev.asid;
        pe.access(this.table(ev.table, lineNo), ev.page, this.ctxOf(ev.ctx));
        return;
      }
      case 'ste': this.ste(ev.smmu, ev.sid, ev.ste, lineNo); return;
      case 'cd': this.cd(ev.smmu, ev.ptr, ev.index, ev.cd, lineNo); return;
      case 'cfginv': {
        const s = this.smmuAt(ev.smmu, lineNo);
        if (ev.sid < 0) s.invalidateConfigAll();
        else if (ev.ssid !== undefined) s.invalidateConfigCd(ev.sid, ev.ssid);
        else s.invalidateConfigSid(ev.sid);
        return;
      }
      case 'table': {
        const t = hw.memory.newTable(this.ctxOf(ev.ctx), ev.name);
        if (this.tables.has(ev.id)) throw new TraceError(lineNo, `table ${ev.id} defined twice`);
        this.tables.set(ev.id, t);
        this.tableCtx.set(ev.id, t.ctx);
        return;
      }
      case 'ctx': {
        if (this.ctxMap.has(ev.id)) throw new TraceError(lineNo, `context ${ev.id} defined twice`);
        const id = this.ctxs.add(ev.kind, ev.vm, ev.name);
        this.ctxMap.set(ev.id, id);
        if (SMMU_CTX_KINDS.has(ev.kind)) this.smmuCtxs.push(id);
        return;
      }
      case 'reg': {
        // PROD/CONS/GERRORN belong to the driver's queue handling, which the replay does itself.
        if (ev.off === 0x98 || ev.off === 0x9c || ev.off === 0x64) return;
        this.workload.reg++;
        this.smmuAt(ev.smmu, lineNo).writeReg(ev.off, ev.val);
        return;
      }
      case 'flush': {
        const s = this.smmuAt(ev.smmu, lineNo);
        if (this.applyFlushes) {
          s.tlb.clear();
          for (const u of s.microTlbs.values()) u.clear();
          this.flushesApplied++;
        } else {
          this.flushesIgnored++;
        }
        return;
      }
      case 'intent': {
        this.autoIntent = false;
        const src = SOURCE_INDEX[ev.source];
        if (ev.mode === 'kvm-all') this.metrics.beginKvmAll(src); else this.metrics.begin(src);
        this.openIntent = true;
        return;
      }
      case 'intend': this.metrics.intend(this.ctxOf(ev.ctx)); return;
      case 'intent-end': this.metrics.end(); this.openIntent = false; return;
      case 'vm': this.workload.vm++; return;
      case 'vcpu': this.workload.vcpu++; return;
      case 'mm': this.workload.mm++; return;
      case 'mark': this.workload.mark++; return;
      case 'end': this.recorded = ev.metrics ?? null; this.events--; return;
    }
  }

  // ------------------------------------------------------------------ setup

  private setup(h: HeaderEvent, lineNo: number): void {
    if (this.hw !== null) throw new TraceError(lineNo, 'a second header');
    this.header = h;
    const o = this.opts;
    const pol = this.policy;
    const btm = o.btm ?? pol?.btm ?? h.driver.btm;
    const params: SmmuParams[] = h.system.smmus.map((d) => {
      let idr0 = d.idr0 >>> 0;
      let idr3 = d.idr3 >>> 0;
      if (o.btm !== undefined || pol !== null) idr0 = setField(idr0, IDR0.BTM, btm ? 1 : 0);
      if (o.ril !== undefined) idr3 = setField(idr3, IDR3.RIL, o.ril === 'on' ? 1 : 0);
      return {
        idr0, idr1: d.idr1 >>> 0, idr3, idr5: d.idr5 >>> 0, aidr: d.aidr, iidr: d.iidr,
        tlb: o.tlb ?? d.tlb,
        microTlbEntries: d.microTlbEntries, walkCacheEntries: d.walkCacheEntries, atcEntries: d.atcEntries,
        knobs: defaultSmmuKnobs(d.knobs ?? {}),
      };
    });
    let hw: HwSystem;
    try {
      hw = new HwSystem({ cpus: o.cpus ?? h.system.cpus, vhe: h.system.vhe, cpuTlb: h.system.cpuTlb, smmus: params });
    } catch (e) {
      throw new TraceError(lineNo, `header: cannot build the system: ${(e as Error).message}`);
    }
    const driver = new ArmSmmuDriver();
    for (const s of hw.smmus) {
      try {
        this.devs.push(driver.probe(s, { btm, vhe: h.driver.vhe }));
      } catch (e) {
        if (isDriverError(e)) throw new TraceError(lineNo, `header: the SMMU driver rejects SMMU ${s.id}: ${e.message}`);
        throw e;
      }
    }
    // Count only what the trace does.
    for (const s of hw.smmus) {
      s.stats.fill(0);
      s.commandsByOpcode.fill(0);
      s.listener = this.metrics;
    }
    for (const d of this.devs) { d.cmdq.commandsByOpcode.fill(0); d.cmdq.stats.fill(0); d.stats.fill(0); }
    for (const pe of hw.pes) {
      pe.stats.fill(0);
      const t = pe.tlb;
      t.onRemove = (slot, cause) => this.metrics.onCpuRemove(t, slot, cause);
    }
    hw.dvm.messages = 0;
    hw.dvm.syncs = 0;
    this.hw = hw;
    this.autoIntent = h.info?.attribution !== 'recorded';
    const fromQemu = h.source.startsWith('qemu');
    this.applyFlushes = o.applyFlushes ?? (fromQemu && o.tlb === undefined);
    if (pol?.splitVmids) {
      const bits = h.system.smmus.some((d) => (d.idr0 >>> 18 & 1) === 0) ? 8 : 16;
      this.vmidSplit = 2 ** (bits - 1);
    }
    if (o.kvm !== undefined && o.kvm !== null && o.kvm.vms > 0) {
      const k = { ...o.kvm };
      if (this.vmidSplit > 0) { k.vmidBase = 1; k.vmidLimit = this.vmidSplit; }
      this.kvm = new SyntheticKvm(
        k, hw, this.ctxs, this.metrics,
        pol?.kvmPinned ? (i) => this.stage2Vmids[i] ?? null : null,
        pol?.kvmPinned ? (vmid) => this.vmidCtxs.get(vmid) ?? [] : null,
      );
    }
  }

  // ------------------------------------------------------------------ helpers

  private smmuAt(i: number, lineNo: number): Smmu {
    const s = this.hw!.smmus[i];
    if (s === undefined) throw new TraceError(lineNo, `no SMMU ${i} (the header declares ${this.hw!.smmus.length})`);
    return s;
  }

  private pe(i: number, lineNo: number): Pe {
    const p = this.hw!.pes[i];
    if (p === undefined) throw new TraceError(lineNo, `no CPU ${i} (the header declares ${this.hw!.pes.length})`);
    return p;
  }

  private table(id: number, lineNo: number): PageTable {
    const t = this.tables.get(id);
    if (t === undefined) throw new TraceError(lineNo, `page table ${id} used before its "table" event`);
    return t;
  }

  /** Replay ctx id of a trace ctx id (an unknown one is registered as an SMMU stage-1 context). */
  private ctxOf(id: number): number {
    if (id < 0) return id;
    let c = this.ctxMap.get(id);
    if (c === undefined) {
      c = this.ctxs.add(CtxKind.SMMU_S1, -1, `ctx ${id}`);
      this.ctxMap.set(id, c);
      this.smmuCtxs.push(c);
    }
    return c;
  }

  /** STE.S2TTB / CD.TTB0 of the trace → the replay's table address. */
  private ttb(x: number): number {
    if (x <= 0 || x % TABLE_STRIDE !== 0) return x;
    const t = this.tables.get(x / TABLE_STRIDE - 1);
    return t === undefined ? x : tableBase(t.id);
  }

  private ste(smmu: number, sid: number, ste: Ste | null, lineNo: number): void {
    const s = this.smmuAt(smmu, lineNo);
    if (ste === null) { s.streamTable.delete(sid); return; }
    const e: Ste = { ...ste, S2TTB: this.ttb(ste.S2TTB) };
    const s2 = (ste.Config & 0b010) !== 0 && (ste.Config & 0b100) !== 0;
    if (s2) {
      if (this.vmidSplit > 0 && e.S2VMID !== 0) e.S2VMID = this.splitVmid(e.S2VMID);
      if (this.policy?.s2aset) e.S2ASET_HYP = true;
      if (!this.stage2Vmids.includes(e.S2VMID)) this.stage2Vmids.push(e.S2VMID);
      const t = this.tables.get(ste.S2TTB / TABLE_STRIDE - 1);
      if (t !== undefined) this.vmidCtx(e.S2VMID, t.ctx);
    }
    s.streamTable.set(sid, e);
  }

  private vmidCtx(vmid: number, ctx: number): void {
    let set = this.vmidCtxs.get(vmid);
    if (set === undefined) { set = new Set(); this.vmidCtxs.set(vmid, set); }
    set.add(ctx);
  }

  private cd(smmu: number, ptr: number, index: number, cd: Cd | null, lineNo: number): void {
    const s = this.smmuAt(smmu, lineNo);
    let a = s.cdTables.get(ptr);
    if (a === undefined) { a = []; s.cdTables.set(ptr, a); }
    if (cd === null) delete a[index];
    else a[index] = { ...cd, TTB0: this.ttb(cd.TTB0) };
  }

  private splitVmid(v: number): number {
    return v === 0 ? 0 : this.vmidSplit + ((v - 1) % this.vmidSplit);
  }

  private commands(smmu: number, words: Uint32Array, lineNo: number): void {
    const dev = this.devs[smmu];
    if (dev === undefined) throw new TraceError(lineNo, `no SMMU ${smmu} (the header declares ${this.devs.length})`);
    const w = this.opts.ril !== undefined || this.vmidSplit > 0
      ? rewriteCommands(words, { ril: this.opts.ril, vmidMap: this.vmidSplit > 0 ? (v) => this.splitVmid(v) : null }, this.rewrite)
      : words;
    const auto = this.autoIntent && !this.openIntent;
    if (auto) {
      this.metrics.begin(Source.DRIVER);
      for (let i = 0; i < this.smmuCtxs.length; i++) this.metrics.intend(this.smmuCtxs[i]);
    }
    // One CMDQ_PROD write per event; longer lists (a rewrite) go 128 at a time, like batches.
    const n = w.length >>> 2;
    const max = Math.min(128, 1 << dev.smmu.cmdqLog2Size);
    for (let i = 0; i < n; i += max) {
      const k = Math.min(max, n - i);
      dev.cmdq.issueCmdlist(i === 0 && k === n ? w : w.subarray(i * 4, (i + k) * 4), k, false);
    }
    if (auto) this.metrics.end();
  }

  // ------------------------------------------------------------------ results

  result(): ReplayMetrics {
    const hw = this.hw;
    if (hw === null) throw new TraceError(0, 'empty trace (no header)');
    if (this.openIntent) { this.metrics.end(); this.openIntent = false; }
    const m = this.metrics;
    const cost = this.header?.cost ?? DEFAULT_COST;
    const t = smmuTotals(hw.smmus);
    const by = new Float64Array(256);
    for (const d of this.devs) for (let i = 0; i < 256; i++) by[i] += d.cmdq.commandsByOpcode[i];
    let total = 0;
    for (let i = 0; i < 256; i++) total += by[i];
    const syncs = by[0x46];
    let tlbiB = 0, tlbiL = 0, dsb = 0;
    for (const pe of hw.pes) { tlbiB += pe.stats[PeStat.TLBI_BROADCAST]; tlbiL += pe.stats[PeStat.TLBI_LOCAL]; dsb += pe.stats[PeStat.DSB]; }
    let dvmRecv = 0;
    for (const x of t.dvmReceived) dvmRecv += x;
    let cerr = 0, cfgMiss = 0, inval = 0;
    for (const s of hw.smmus) { cerr += s.stats[SmmuStat.CERRORS]; cfgMiss += s.stats[SmmuStat.CONFIG_MISSES]; inval += s.stats[SmmuStat.ENTRIES_INVALIDATED]; }
    const lookups = t.hits + t.misses;
    const dmaTimeNs = lookups * cost.tlbHitNs + t.walkAccesses * cost.walkAccessNs;
    const driverNs = total * cost.commandNs + syncs * cost.cmdSyncNs;
    return {
      label: this.opts.label ?? 'replay',
      events: this.events,
      dmaTranslations: this.dma,
      collateral: { total: m.total(m.collateral), bySource: m.bySource(m.collateral), byVictim: m.byVictim(m.collateral), matrix: m.matrix(m.collateral) },
      intended: { total: m.total(m.intended), bySource: m.bySource(m.intended), byVictim: m.byVictim(m.intended) },
      collateralRefills: m.collateralRefills,
      collateralRefillWalkAccesses: m.collateralRefillWalkAccesses,
      commands: { total, syncs, byOpcode: commandsByName(by) },
      dvm: { messages: hw.dvm.messages, syncs: hw.dvm.syncs, receivedPerSmmu: t.dvmReceived, ignoredPerSmmu: t.dvmIgnored },
      translation: {
        hits: t.hits, misses: t.misses, hitRate: lookups > 0 ? round6(t.hits / lookups) : 0,
        walkAccesses: t.walkAccesses, faults: t.faults,
        dmaTimeNs: round3(dmaTimeNs), meanTranslationNs: lookups > 0 ? round3(dmaTimeNs / lookups) : 0,
        driverInvalidationTimeNs: round3(driverNs), dvmTimeNs: round3(dvmRecv * cost.dvmMessageNs),
      },
      cpu: { tlbiBroadcast: tlbiB, tlbiLocal: tlbiL, dsb },
      smmu: {
        commandErrors: cerr, configMisses: cfgMiss, entriesInvalidated: inval,
        capacityFlushesApplied: this.flushesApplied, capacityFlushesIgnored: this.flushesIgnored,
      },
      rewrite: { ...this.rewrite },
      kvm: this.kvm === null ? null : { vms: this.kvm.vms.length, vmids: this.kvm.vmids(), unmaps: this.kvm.unmaps, vmFlushes: this.kvm.vmFlushes, rollovers: this.kvm.rollovers },
      workload: { ...this.workload },
    };
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

/**
 * The subset of RunMetrics a replay reproduces exactly: everything measured on the hardware
 * model and the attribution. (VMID/ASID allocator figures, simulated time and workload counters
 * come from the kernel model and the workload generator, which a replay does not run.)
 */
export function comparableMetrics(m: Record<string, unknown>): Record<string, unknown> {
  const pick = (o: unknown, keys: string[]): Record<string, unknown> => {
    const r: Record<string, unknown> = {};
    if (typeof o === 'object' && o !== null) for (const k of keys) r[k] = (o as Record<string, unknown>)[k];
    return r;
  };
  return {
    dmaTranslations: m.dmaTranslations,
    collateral: m.collateral,
    intended: m.intended,
    collateralRefills: m.collateralRefills,
    collateralRefillWalkAccesses: m.collateralRefillWalkAccesses,
    commands: m.commands,
    dvm: m.dvm,
    translation: pick(m.translation, ['hits', 'misses', 'hitRate', 'walkAccesses', 'faults', 'dmaTimeNs', 'meanTranslationNs', 'driverInvalidationTimeNs', 'dvmTimeNs']),
    cpu: m.cpu,
  };
}
