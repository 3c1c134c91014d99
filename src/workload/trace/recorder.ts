/**
 * Writes a `btmsim-trace` JSONL trace (jsonl.ts, docs/traces.md) of a run through a sink
 * function, one line per event, so that `btmsim replay` reproduces the run's hardware metrics.
 *
 * Two ways to use it, which can be mixed:
 *  - `attach(hw)` + `attachMetrics(metrics, ctxs)` right after the HwSystem and the Metrics are
 *    built (before any table, driver probe or DMA): every call the kernel model and the workload
 *    make into the hardware model is recorded by wrapping the instances' methods (PageTable
 *    map/unmap..., Memory.newTable, Smmu translate/submit/writeReg/config/invalidateConfig*,
 *    Pe tlbi/dsb/access) and the attribution (ContextRegistry.add, Metrics begin/intend/end).
 *    Nothing in the model changes; each wrapper records, then calls the original.
 *  - the explicit methods (`dma`, `tlbi`, `command`, `ste`, ...), for a caller that prefers to
 *    record at its own call sites; `t` is the simulated time in ns.
 *
 * No Node or DOM imports.
 */
import type { Pe } from '../../hw/cpu/pe.js';
import type { Memory, PageTable } from '../../hw/memory.js';
import type { Smmu, StreamConfig } from '../../hw/smmu/smmu.js';
import type { Cd, Ste } from '../../hw/smmu/structures.js';
import type { HwSystem } from '../../hw/system.js';
import type { TlbiArgs } from '../../hw/tlbi-scope.js';
import type { ContextRegistry } from '../../sim/contexts.js';
import type { Metrics } from '../../sim/metrics.js';
import {
  INTENT_SOURCES, TRACE_FORMAT, TRACE_VERSION, cdToJson, eventToJson, steToJson,
  type CostDesc, type DriverDesc, type SmmuDesc, type SystemDesc, type TraceEvent,
} from './jsonl.js';

export type TraceSink = (line: string) => void;

export interface RecorderOptions {
  /** Simulated time (ns) stamped on events recorded through attach() (default: none). */
  clock?: () => number;
}

/** The issuing PE's regime of a TLBI (`Pe.regime` plus HCR_EL2.FB). */
export interface RecordedRegime { vmid: number; e2h: boolean; tge: boolean; el: 1 | 2; fb?: boolean }

/** SMMU register offsets not recorded: the replay's driver model owns the queue indexes and error acks. */
const SKIP_REGS = new Set([0x98, 0x9c, 0x64]);

export class TraceRecorder {
  /** Events written. */
  count = 0;
  private headerDone = false;
  /** Depth of calls into the hardware model made by recorded methods (inner calls are not recorded). */
  private depth = 0;
  private readonly lastSte = new Map<string, string>();
  private readonly lastCd = new Map<string, string>();
  private suppressEnd = false;

  private readonly opts: RecorderOptions;

  constructor(private readonly sink: TraceSink, opts: RecorderOptions = {}) {
    this.opts = { ...opts };
  }

  /** Set the clock stamped on events recorded through attach() (e.g. `() => sim.now`). */
  setClock(clock: () => number): void {
    this.opts.clock = clock;
  }

  private write(ev: TraceEvent): void {
    this.sink(eventToJson(ev));
    this.count++;
  }

  private now(): number | undefined {
    return this.opts.clock?.();
  }

  private T(t: number | undefined): { t?: number } {
    return t === undefined ? {} : { t };
  }

  // ------------------------------------------------------------------ header

  /** The first line. `info.attribution: 'recorded'` is set by attachMetrics. */
  header(h: { system: SystemDesc; driver: DriverDesc; cost?: CostDesc; info?: Record<string, unknown>; source?: string }): void {
    if (this.headerDone) throw new Error('TraceRecorder: header written twice');
    this.headerDone = true;
    this.write({
      e: 'header', format: TRACE_FORMAT, version: TRACE_VERSION, source: h.source ?? 'btmsim run',
      system: h.system, driver: h.driver, ...(h.cost !== undefined ? { cost: h.cost } : {}),
      ...(h.info !== undefined ? { info: h.info } : {}),
    });
  }

  /** The system description of a HwSystem (PEs, their TLB, each SMMU's ID registers and caches). */
  static describe(hw: HwSystem): SystemDesc {
    return {
      cpus: hw.pes.length,
      vhe: hw.pes[0]?.regime.e2h ?? false,
      cpuTlb: { ...(hw.pes[0]?.tlb.geometry ?? { entries: 1280, ways: 5, policy: 'lru' }) },
      smmus: hw.smmus.map((s): SmmuDesc => ({
        idr0: s.params.idr0 >>> 0, idr1: s.params.idr1 >>> 0, idr3: s.params.idr3 >>> 0, idr5: s.params.idr5 >>> 0,
        aidr: s.params.aidr, iidr: s.params.iidr, tlb: { ...s.params.tlb },
        microTlbEntries: s.params.microTlbEntries, walkCacheEntries: s.params.walkCacheEntries,
        atcEntries: s.params.atcEntries, knobs: { ...s.params.knobs },
      })),
    };
  }

  /**
   * Header + attach(hw) + attachMetrics: what a simulation calls once, right after building its
   * HwSystem and Metrics and before anything else touches them.
   */
  start(hw: HwSystem, o: { driver: DriverDesc; cost?: CostDesc; info?: Record<string, unknown>; metrics?: Metrics; ctxs?: ContextRegistry }): void {
    const attributed = o.metrics !== undefined && o.ctxs !== undefined;
    this.header({
      system: TraceRecorder.describe(hw), driver: o.driver, ...(o.cost !== undefined ? { cost: o.cost } : {}),
      info: { ...(o.info ?? {}), attribution: attributed ? 'recorded' : 'auto' },
    });
    this.attach(hw);
    if (attributed) this.attachMetrics(o.metrics!, o.ctxs!);
  }

  // ------------------------------------------------------------------ explicit events

  dma(t: number | undefined, smmu: number, sid: number, ssid: number, page: number): void {
    this.write({ e: 'dma', ...this.T(t), smmu, sid, ssid, page });
  }

  /** A TLBI executed by PE `cpu` (`opName` as in arch/tlbi.ts TLBI, e.g. 'VMALLS12E1IS'). */
  tlbi(t: number | undefined, cpu: number, opName: string, regime: RecordedRegime, args: Pick<TlbiArgs, 'asid' | 'page' | 'pages' | 'ttl' | 'granuleLog2'>): void {
    this.write({
      e: 'tlbi', ...this.T(t), cpu, op: opName, vmid: regime.vmid, el: regime.el, e2h: regime.e2h, tge: regime.tge,
      fb: regime.fb ?? false, asid: args.asid, page: args.page, pages: args.pages, ttl: args.ttl, granule: args.granuleLog2,
    });
  }

  dsb(t: number | undefined, cpu: number): void {
    this.write({ e: 'dsb', ...this.T(t), cpu });
  }

  /** `n` commands published with one CMDQ_PROD write: words[off .. off + 4n). */
  command(t: number | undefined, smmu: number, words: Uint32Array, off: number, n = 1): void {
    this.write({ e: 'cmds', ...this.T(t), smmu, w: words.slice(off, off + 4 * n) });
  }

  ste(t: number | undefined, smmu: number, sid: number, ste: Ste | null): void {
    this.write({ e: 'ste', ...this.T(t), smmu, sid, ste: ste === null ? null : { ...ste } });
  }

  cd(t: number | undefined, smmu: number, ptr: number, index: number, cd: Cd | null): void {
    this.write({ e: 'cd', ...this.T(t), smmu, ptr, index, cd: cd === null ? null : { ...cd } });
  }

  /** Configuration-cache invalidation outside the queue (sid -1: all). */
  configInval(t: number | undefined, smmu: number, sid: number, ssid?: number): void {
    this.write(ssid === undefined ? { e: 'cfginv', ...this.T(t), smmu, sid } : { e: 'cfginv', ...this.T(t), smmu, sid, ssid });
  }

  reg(t: number | undefined, smmu: number, off: number, val: number): void {
    this.write({ e: 'reg', ...this.T(t), smmu, off, val: val >>> 0 });
  }

  table(t: number | undefined, id: number, ctx: number, name: string): void {
    this.write({ e: 'table', ...this.T(t), id, ctx, name });
  }
  map(t: number | undefined, table: number, page: number, out: number, size: number): void {
    this.write({ e: 'map', ...this.T(t), table, page, out, size });
  }
  linear(t: number | undefined, table: number, start: number, count: number, out: number): void {
    this.write({ e: 'linear', ...this.T(t), table, start, count, out });
  }
  unmap(t: number | undefined, table: number, page: number): void {
    this.write({ e: 'unmap', ...this.T(t), table, page });
  }
  unmapRange(t: number | undefined, table: number, page: number, count: number): void {
    this.write({ e: 'unmapRange', ...this.T(t), table, page, count });
  }
  remap(t: number | undefined, table: number, page: number): void {
    this.write({ e: 'remap', ...this.T(t), table, page });
  }

  /** A software access on PE `cpu` through `table` (fills the CPU TLB). */
  access(t: number | undefined, cpu: number, table: number, page: number, ctx: number, regime: RecordedRegime, asid: number): void {
    this.write({ e: 'access', ...this.T(t), cpu, table, page, ctx, vmid: regime.vmid, el: regime.el, e2h: regime.e2h, tge: regime.tge, asid });
  }

  ctx(t: number | undefined, id: number, kind: number, vm: number, name: string): void {
    this.write({ e: 'ctx', ...this.T(t), id, kind, vm, name });
  }
  /** Start attributing removals to `source` (Metrics Source index or name). */
  intent(t: number | undefined, source: number | string, mode: 'set' | 'kvm-all' = 'set'): void {
    const name = typeof source === 'number' ? INTENT_SOURCES[source] : source;
    this.write({ e: 'intent', ...this.T(t), source: name, mode });
  }
  intend(t: number | undefined, ctx: number): void {
    this.write({ e: 'intend', ...this.T(t), ctx });
  }
  intentEnd(t: number | undefined): void {
    this.write({ e: 'intent-end', ...this.T(t) });
  }

  vm(t: number | undefined, op: 'create' | 'destroy', slot: number, kvmId: number, vmid?: number): void {
    this.write(vmid === undefined ? { e: 'vm', ...this.T(t), op, slot, kvmId } : { e: 'vm', ...this.T(t), op, slot, kvmId, vmid });
  }
  vcpu(t: number | undefined, op: 'load' | 'put', cpu: number, slot: number, vmid: number): void {
    this.write({ e: 'vcpu', ...this.T(t), op, cpu, slot, vmid });
  }
  mm(t: number | undefined, op: string, cpu: number, mm: number, asid: number): void {
    this.write({ e: 'mm', ...this.T(t), op, cpu, mm, asid });
  }
  mark(t: number | undefined, text: string): void {
    this.write({ e: 'mark', ...this.T(t), text });
  }
  /** The last line: the run's metrics (RunMetrics), which `btmsim replay` checks it reproduces. */
  end(t: number | undefined, metrics?: object): void {
    this.write(metrics === undefined ? { e: 'end', ...this.T(t) } : { e: 'end', ...this.T(t), metrics: JSON.parse(JSON.stringify(metrics)) as Record<string, unknown> });
  }

  // ------------------------------------------------------------------ instrumentation

  /**
   * Record every call into `hw` from now on. Tables that already exist are written out first
   * (their current contents). Call before the driver probes the SMMUs so the reset is recorded.
   */
  attach(hw: HwSystem): void {
    this.attachMemory(hw.memory);
    for (const s of hw.smmus) this.attachSmmu(s);
    for (const pe of hw.pes) this.attachPe(pe);
  }

  private attachMemory(mem: Memory): void {
    for (let i = 0; i < mem.count; i++) this.snapshotTable(mem.table(i)!);
    const orig = mem.newTable.bind(mem);
    mem.newTable = (ctx: number, name: string): PageTable => {
      const t = orig(ctx, name);
      this.table(this.now(), t.id, t.ctx, t.name);
      this.attachTable(t);
      return t;
    };
  }

  private snapshotTable(t: PageTable): void {
    const now = this.now();
    this.table(now, t.id, t.ctx, t.name);
    if (t.linearCount > 0) {
      this.linear(now, t.id, t.linearStart, t.linearCount, t.linearOut);
      for (const h of [...t.holes].sort((a, b) => a - b)) this.unmap(now, t.id, h);
    }
    for (const [p, o] of t.pages) this.map(now, t.id, p, o, 0);
    for (const [p, o] of t.blocks2m) this.map(now, t.id, p, o, 9);
    for (const [p, o] of t.blocks1g) this.map(now, t.id, p, o, 18);
    this.attachTable(t);
  }

  private attachTable(t: PageTable): void {
    const id = t.id;
    const map = t.map.bind(t), mapLinear = t.mapLinear.bind(t), unmap = t.unmap.bind(t);
    const unmapRange = t.unmapRange.bind(t), remapLinear = t.remapLinear.bind(t);
    t.map = (page: number, out: number, sizeLog2 = 0): void => { this.map(this.now(), id, page, out, sizeLog2); map(page, out, sizeLog2); };
    t.mapLinear = (start: number, count: number, out: number): void => { this.linear(this.now(), id, start, count, out); mapLinear(start, count, out); };
    t.unmap = (page: number): number => { this.unmap(this.now(), id, page); return unmap(page); };
    t.unmapRange = (page: number, count: number): number => { this.unmapRange(this.now(), id, page, count); return unmapRange(page, count); };
    t.remapLinear = (page: number): boolean => {
      // Only a page that is a hole changes anything; record only those (the replay would agree anyway).
      const r = remapLinear(page);
      if (r) this.remap(this.now(), id, page);
      return r;
    };
  }

  private attachSmmu(s: Smmu): void {
    const id = s.id;
    const translate = s.translate.bind(s), submit = s.submit.bind(s), writeReg = s.writeReg.bind(s);
    const config = s.config.bind(s);
    const invSid = s.invalidateConfigSid.bind(s), invCd = s.invalidateConfigCd.bind(s);
    const invRange = s.invalidateConfigRange.bind(s), invAll = s.invalidateConfigAll.bind(s);
    const inner = <R>(f: () => R): R => { this.depth++; try { return f(); } finally { this.depth--; } };
    s.translate = (sid: number, ssid: number, page: number): number => {
      if (this.depth === 0) {
        // The STE/CD a configuration-cache miss is about to read go before the DMA that reads them.
        const a = s.configCache.get(sid);
        if (a === undefined || a[ssid] === undefined) this.snapshotConfig(s, sid, ssid);
        this.dma(this.now(), id, sid, ssid, page);
      }
      return inner(() => translate(sid, ssid, page));
    };
    s.submit = (words: Uint32Array, off: number, n: number): boolean => {
      if (this.depth === 0 && n <= s.cmdqSpace()) this.command(this.now(), id, words, off, n);
      return inner(() => submit(words, off, n));
    };
    s.writeReg = (offset: number, value: number): void => {
      if (this.depth === 0 && !SKIP_REGS.has(offset)) this.reg(this.now(), id, offset, value);
      inner(() => writeReg(offset, value));
    };
    s.config = (sid: number, ssid: number): StreamConfig => {
      const a = s.configCache.get(sid);
      if (a === undefined || a[ssid] === undefined) this.snapshotConfig(s, sid, ssid);
      return config(sid, ssid);
    };
    s.invalidateConfigSid = (sid: number): void => {
      if (this.depth === 0) this.configInval(this.now(), id, sid);
      inner(() => invSid(sid));
    };
    s.invalidateConfigCd = (sid: number, ssid: number): void => {
      if (this.depth === 0) this.configInval(this.now(), id, sid, ssid);
      inner(() => invCd(sid, ssid));
    };
    s.invalidateConfigRange = (first: number, count: number): void => {
      if (this.depth === 0) for (let k = first; k < first + count; k++) this.configInval(this.now(), id, k);
      inner(() => invRange(first, count));
    };
    s.invalidateConfigAll = (): void => {
      if (this.depth === 0) this.configInval(this.now(), id, -1);
      inner(() => invAll());
    };
  }

  /** The STE (and CD) the SMMU is about to read, when they differ from what was last written. */
  private snapshotConfig(s: Smmu, sid: number, ssid: number): void {
    const now = this.now();
    const ste = s.streamTable.get(sid);
    const key = `${s.id}:${sid}`;
    const js = ste === undefined ? 'null' : JSON.stringify(steToJson(ste));
    if (this.lastSte.get(key) !== js) {
      this.lastSte.set(key, js);
      this.ste(now, s.id, sid, ste ?? null);
    }
    if (ste === undefined || (ste.Config & 0b001) === 0) return;
    const idx = ste.S1CDMax === 0 ? 0 : ssid;
    const cd = s.cdTables.get(ste.S1ContextPtr)?.[idx];
    const ck = `${s.id}:${ste.S1ContextPtr}:${idx}`;
    const cj = cd === undefined ? 'null' : JSON.stringify(cdToJson(cd));
    if (this.lastCd.get(ck) !== cj) {
      this.lastCd.set(ck, cj);
      this.cd(now, s.id, ste.S1ContextPtr, idx, cd ?? null);
    }
  }

  private attachPe(pe: Pe): void {
    const cpu = pe.id;
    const tlbi = pe.tlbi.bind(pe), dsb = pe.dsb.bind(pe), access = pe.access.bind(pe);
    pe.tlbi = (a: TlbiArgs): void => {
      const r = pe.regime;
      this.tlbi(this.now(), cpu, a.op.name, { vmid: r.vmid, e2h: r.e2h, tge: r.tge, el: r.el, fb: pe.hcrFb }, a);
      tlbi(a);
    };
    pe.dsb = (): void => { this.dsb(this.now(), cpu); dsb(); };
    pe.access = (table: PageTable, page: number, ctx: number): number => {
      this.access(this.now(), cpu, table.id, page, ctx, pe.regime, pe.asid);
      return access(table, page, ctx);
    };
  }

  /**
   * Record the attribution: contexts (existing ones first) and every Metrics begin / intend /
   * end, so a replay computes the same collateral and intended counts.
   */
  attachMetrics(metrics: Metrics, ctxs: ContextRegistry): void {
    for (let i = 0; i < ctxs.count; i++) this.ctx(this.now(), i, ctxs.kind[i], ctxs.vm[i], ctxs.names[i]);
    const add = ctxs.add.bind(ctxs);
    ctxs.add = (kind: number, vm: number, name: string): number => {
      const id = add(kind, vm, name);
      this.ctx(this.now(), id, kind, vm, name);
      return id;
    };
    const begin = metrics.begin.bind(metrics), all = metrics.beginKvmAll.bind(metrics);
    const intend = metrics.intend.bind(metrics), end = metrics.end.bind(metrics);
    metrics.begin = (source: number): void => {
      this.intent(this.now(), source, 'set');
      this.suppressEnd = true;
      try { begin(source); } finally { this.suppressEnd = false; }
    };
    metrics.beginKvmAll = (source: number): void => {
      this.intent(this.now(), source, 'kvm-all');
      this.suppressEnd = true;
      try { all(source); } finally { this.suppressEnd = false; }
    };
    metrics.intend = (ctx: number): void => { this.intend(this.now(), ctx); intend(ctx); };
    metrics.end = (): void => {
      if (!this.suppressEnd) this.intentEnd(this.now());
      end();
    };
  }
}
