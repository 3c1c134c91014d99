/**
 * QEMU trace → btmsim trace events: rebuilds, from the lines of `-trace 'smmu*'`, the driver's
 * command stream (128-bit commands, submitted as QEMU consumed them), the stream-table and
 * context-descriptor configuration, the page-table mappings the walks saw, and the DMA stream.
 * The events go to a Replayer (or to a JSONL file); nothing is kept per line, so memory stays
 * bounded by the number of distinct mappings, not by the length of the trace.
 *
 * What QEMU prints and what is rebuilt (docs/traces.md has the full list):
 *  - commands: the opcode of each (`smmuv3_cmdq_opcode`) and the fields its handler prints:
 *    StreamID of CFGI_STE/CD (`smmuv3_cmdq_cfgi_*`, `smmu_config_cache_inv`), the CFGI_STE_RANGE
 *    span, ASID (`tlbi_nh_asid`) and VMID (`smmu_iotlb_inv_asid_vmid`) of NH_ASID, VMID of NH_ALL
 *    and S12_VMALL, and for NH_VA/NH_VAA/S2_IPA the `smmuv3_range_inval` lines — one per
 *    power-of-two piece QEMU split the range into, merged back into one command per opcode line
 *    (NUM/SCALE recomputed, TG, TTL, Leaf, VMID, ASID as printed). Not printed, so inferred:
 *    CMD_SYNC's CS/MSI fields (Linux without MSI: CS=SEV, MSH=ISH, MSIAttr=OIWB), the StreamID
 *    of PREFETCH_CONFIG (that of the CFGI_STE before it, as Linux issues them), the SubstreamID
 *    of CFGI_CD (0), Leaf of CFGI_* (1), the fields of commands QEMU does not handle.
 *    A command QEMU rejected (`smmuv3_cmdq_consume_error`) is not replayed.
 *  - configuration: per StreamID, from the config-decode lines and the IOTLB lookup that
 *    follows (ASID, VMID) and the translation's stage: an STE (S1, S2 or nested) and a CD.
 *    Emitted when it changes, with a configuration-cache invalidation so the model re-reads it.
 *  - page tables: one per context (ASID+VMID for stage 1, VMID for stage 2), mappings rebuilt
 *    from `smmuv3_translate_success` (iova → translated) with the leaf size of the walk
 *    (`smmu_ptw_page_pte` / `smmu_ptw_block_pte`, `smmu_iotlb_insert` level), emitted only when
 *    they change. The real descriptor layout, unmapped pages, permissions and the stage-2
 *    translations of stage-1 table walks are not recovered.
 *  - DMA: one translation per `smmuv3_translate_success` (StreamID, IOVA page). Bypassed,
 *    aborted and SMMU-disabled accesses are counted, not replayed.
 *  - QEMU's own IOTLB capacity flush (`smmu_iotlb_inv_all` with no command being consumed on
 *    that thread) becomes a `flush` event, applied only when replaying QEMU's IOTLB as recorded.
 *
 * No Node or DOM imports.
 */
import { OP, OPCODE_NAMES, writeCfgi, writeSync, writeTlbi } from '../../arch/commands.js';
import { CORTEX_A76_L2_TLB } from '../../hw/cpu/pe.js';
import { PageTable, tableBase } from '../../hw/memory.js';
import { STE_CONFIG, newCd, newSte } from '../../hw/smmu/structures.js';
import type { TlbGeometry } from '../../hw/tlb/tlb-api.js';
import { CtxKind } from '../../sim/contexts.js';
import { TRACE_FORMAT, TRACE_VERSION, type HeaderEvent, type TraceEvent } from './jsonl.js';
import { EV, QEMU_CMD_OPCODES, dec, hex, hexPage, lineTs, sidValue, type QemuLine } from './qemu.js';

/** QEMU's ID registers when the trace does not show the driver reading them (QEMU 10, S1+S2). */
export const QEMU_DEFAULT_IDR = { idr0: 0x0d44101b, idr1: 0x02730010, idr3: 0x1414, idr5: 0x74, aidr: 1 } as const;

export interface QemuImportOptions {
  /** SMMU TLB geometry written in the header (default: QEMU's IOTLB, 256 entries). */
  tlb?: TlbGeometry;
  /** PEs in the header (default 4). */
  cpus?: number;
}

export interface QemuImportStats {
  /** DMA translations emitted. */
  dma: number;
  untranslated: { bypass: number; abort: number; disabled: number };
  /** Commands emitted, by spec name. */
  commands: Record<string, number>;
  /** Commands QEMU reported an error for (not replayed). */
  qemuCommandErrors: number;
  /** Commands QEMU traced as unhandled (replayed with the opcode only). */
  unhandledCommands: number;
  /** Range TLBIs printed as several smmuv3_range_inval pieces, and the pieces merged. */
  rangeMerged: { commands: number; pieces: number };
  /** TG!=0 single-granule TLBIs with TTL=0 (Reserved encoding QEMU accepts) sent as TG=0. */
  reservedRangeAsSingle: number;
  /** Fields QEMU does not print, inferred (see the module comment). */
  inferred: { prefetchSid: number; cfgiCdSsid: number; cfgiStSid: number; cfgiAll: number; missingRange: number };
  /** Handler lines seen with no command open on their thread. */
  orphanHandlerLines: number;
  /** STE/CD (re)configurations emitted. */
  configs: number;
  /** Page tables (contexts) created. */
  tables: number;
  /** map/unmap events emitted. */
  maps: number;
  unmaps: number;
  capacityFlushes: number;
  /** Translations whose context had to be guessed (no IOTLB lookup line: ASID/VMID unknown). */
  guessedContext: number;
}

interface Piece { addrPage: number; tg: number; pages: number; ttl: number; leaf: number; vmid: number; asid: number; stage: number }

interface PendingCmd {
  op: number;
  name: string;
  lineNo: number;
  t: number | undefined;
  sid: number;
  rangeStart: number;
  rangeEnd: number;
  asid: number;
  vmid: number;
  pieces: Piece[];
  error: boolean;
  unhandled: boolean;
}

interface Walk { inPage: number; outPage: number; sizeLog2: number }

interface Unit {
  active: boolean;
  sid: number;
  asid: number;
  vmid: number;
  lookup: boolean;
  granule: number;
  s1: Walk | null;
  s2: Walk[];
  insertLevel: number;
}

interface ThreadState {
  cmd: PendingCmd | null;
  /** Completed commands of the current consumption, 4 words each. */
  batch: number[];
  batchT: number | undefined;
  lastCfgiSteSid: number;
  unit: Unit;
}

interface SidConfig { stage: number; asid: number; vmid: number; s1: number; s2: number; granule: number }

const STAGE_S1 = 1, STAGE_S2 = 2, STAGE_NESTED = 3;

export class QemuImporter {
  readonly stats: QemuImportStats = {
    dma: 0, untranslated: { bypass: 0, abort: 0, disabled: 0 }, commands: {}, qemuCommandErrors: 0,
    unhandledCommands: 0, rangeMerged: { commands: 0, pieces: 0 }, reservedRangeAsSingle: 0,
    inferred: { prefetchSid: 0, cfgiCdSsid: 0, cfgiStSid: 0, cfgiAll: 0, missingRange: 0 },
    orphanHandlerLines: 0, configs: 0, tables: 0, maps: 0, unmaps: 0, capacityFlushes: 0, guessedContext: 0,
  };
  private headerDone = false;
  private readonly idr: { idr0: number; idr1: number; idr3: number; idr5: number; aidr: number } = { ...QEMU_DEFAULT_IDR };
  private idrSeen = false;
  private t0 = NaN;
  private readonly threads = new Map<number, ThreadState>();
  private readonly sidCfg = new Map<number, SidConfig>();
  private readonly tableIds = new Map<string, number>();
  private readonly shadows: PageTable[] = [];
  private readonly scratch = new Uint32Array(4);
  private lastSidAsid = new Map<number, { asid: number; vmid: number }>();

  constructor(
    private readonly emit: (ev: TraceEvent, lineNo: number) => void,
    private readonly opts: QemuImportOptions = {},
  ) {}

  // ------------------------------------------------------------------ lines

  /** The QemuReader handler. */
  readonly onLine = (l: QemuLine, m: RegExpExecArray | undefined): void => {
    if (m === undefined) return; // unknown event: counted by the reader
    const code = l.code;
    const tid = l.tid;
    let ts = this.threads.get(tid);
    if (ts === undefined) { ts = newThread(); this.threads.set(tid, ts); }
    if (this.t0 !== this.t0 && (l.tsStart >= 0 || l.isoTs === l.isoTs)) this.t0 = lineTs(l);
    switch (code) {
      // ---- command queue
      case EV.smmuv3_cmdq_opcode: {
        this.closeCmd(ts);
        const op = QEMU_CMD_OPCODES[m[1]];
        ts.cmd = {
          op: op ?? -1, name: m[1], lineNo: l.lineNo, t: this.time(l), sid: -1, rangeStart: -1, rangeEnd: -1,
          asid: -1, vmid: -1, pieces: [], error: false, unhandled: false,
        };
        return;
      }
      case EV.smmuv3_cmdq_consume:
        this.closeCmd(ts);
        return;
      case EV.smmuv3_cmdq_consume_out:
        this.closeCmd(ts);
        this.flushBatch(ts, l);
        return;
      case EV.smmuv3_cmdq_consume_error:
        if (ts.cmd !== null) ts.cmd.error = true;
        this.closeCmd(ts);
        return;
      case EV.smmuv3_cmdq_cfgi_ste: this.handler(ts, (c) => { c.sid = sidValue(m[1]); ts!.lastCfgiSteSid = c.sid; }); return;
      case EV.smmuv3_cmdq_cfgi_cd: this.handler(ts, (c) => { c.sid = sidValue(m[1]); }); return;
      case EV.smmu_config_cache_inv:
      case EV.smmuv3_config_cache_inv:
        this.handler(ts, (c) => {
          if (c.sid < 0) c.sid = sidValue(m[1]);
          if (c.op === OP.CMD_CFGI_STE) ts!.lastCfgiSteSid = c.sid;
        });
        return;
      case EV.smmuv3_cmdq_cfgi_ste_range: this.handler(ts, (c) => { c.rangeStart = rangeBound(m[1]); c.rangeEnd = rangeBound(m[2]); }); return;
      case EV.smmu_configs_inv_sid_range:
        this.handler(ts, (c) => { if (c.rangeStart < 0) { c.rangeStart = hex(m[1]); c.rangeEnd = hex(m[2]); } });
        return;
      case EV.smmuv3_cmdq_tlbi_nh_asid: this.handler(ts, (c) => { c.asid = dec(m[1]); }); return;
      case EV.smmu_iotlb_inv_asid_vmid: this.handler(ts, (c) => { if (c.asid < 0) c.asid = dec(m[1]); c.vmid = dec(m[2]); }); return;
      case EV.smmu_iotlb_inv_asid: this.handler(ts, (c) => { if (c.asid < 0) c.asid = dec(m[1]); }); return;
      case EV.smmuv3_cmdq_tlbi_nh:
      case EV.smmuv3_cmdq_tlbi_s12_vmid:
        this.handler(ts, (c) => { if (m[1] !== undefined) c.vmid = dec(m[1]); });
        return;
      case EV.smmu_iotlb_inv_vmid:
      case EV.smmu_iotlb_inv_vmid_s1:
        this.handler(ts, (c) => { if (c.vmid < 0) c.vmid = dec(m[1]); });
        return;
      case EV.smmuv3_range_inval:
      case EV.smmuv3_s1_range_inval:
        this.handler(ts, (c) => {
          c.pieces.push({
            vmid: dec(m[1]), asid: dec(m[2]), addrPage: hexPage(m[3]), tg: m[4] !== undefined ? dec(m[4]) : 0,
            pages: m[5] !== undefined ? hex(m[5]) : 1, ttl: m[6] !== undefined ? dec(m[6]) : 0, leaf: dec(m[7]),
            stage: m[8] !== undefined ? dec(m[8]) : 1,
          });
        });
        return;
      case EV.smmuv3_cmdq_tlbi_nh_va:
        this.handler(ts, (c) => {
          c.pieces.push({ vmid: dec(m[1]), asid: dec(m[2]), addrPage: hexPage(m[3]), tg: 0, pages: 1, ttl: 0, leaf: dec(m[4]), stage: 1 });
        });
        return;
      case EV.smmuv3_cmdq_tlbi_nh_vaa:
        this.handler(ts, (c) => {
          c.pieces.push({ vmid: dec(m[1]), asid: -1, addrPage: hexPage(m[2]), tg: 0, pages: 1, ttl: 0, leaf: m[3] !== undefined ? dec(m[3]) : 0, stage: 1 });
        });
        return;
      case EV.smmuv3_unhandled_cmd: this.handler(ts, (c) => { c.unhandled = true; }); return;
      case EV.smmuv3_cmdq_tlbi_nsnh:
      case EV.smmu_iotlb_inv_iova:
      case EV.smmu_inv_notifiers_mr:
      case EV.smmuv3_inv_notifiers_iova:
        // Handler lines without fields we need (the opcode says it all).
        return;
      case EV.smmu_iotlb_inv_all:
        if (ts.cmd === null) {
          // Not inside a command: QEMU's IOTLB emptied itself (capacity) — not a driver invalidation.
          this.ensureHeader(l.lineNo);
          this.flushAllBatches();
          this.stats.capacityFlushes++;
          this.out({ e: 'flush', ...this.tOf(l), smmu: 0, why: 'capacity' }, l.lineNo);
        }
        return;
      // ---- registers
      case EV.smmuv3_read_mmio:
        this.closeCmd(ts);
        this.flushBatch(ts, l);
        if (!this.headerDone) this.idrRead(hex(m[1]), hex(m[2]));
        return;
      case EV.smmuv3_write_mmio:
      case EV.smmuv3_write_gerror:
      case EV.smmuv3_write_gerrorn:
        this.closeCmd(ts);
        this.flushBatch(ts, l);
        return;
      // ---- translation
      case EV.smmuv3_config_cache_hit:
      case EV.smmuv3_config_cache_miss:
        this.startUnit(ts, sidValue(m[1]));
        return;
      case EV.smmuv3_find_ste: if (!ts.unit.active) this.startUnit(ts, sidValue(m[1])); return;
      case EV.smmuv3_decode_cd_tt:
        if (dec(m[1]) === 0) ts.unit.granule = dec(m[4]);
        return;
      case EV.smmu_iotlb_lookup_hit:
      case EV.smmu_iotlb_lookup_miss: {
        const u = ts.unit;
        u.lookup = true;
        u.asid = dec(m[1]);
        u.vmid = m[2] !== undefined ? dec(m[2]) : -1;
        return;
      }
      case EV.smmu_iotlb_cache_hit:
      case EV.smmu_iotlb_cache_miss: {
        const u = ts.unit;
        u.lookup = true;
        u.asid = dec(m[1]);
        u.vmid = -1;
        return;
      }
      case EV.smmu_iotlb_insert:
        if (m[5] !== undefined) ts.unit.insertLevel = dec(m[5]);
        return;
      case EV.smmu_ptw_page_pte: {
        const stage = m[1] !== undefined ? dec(m[1]) : 1;
        this.walkResult(ts.unit, stage, hexPage(m[3]), hexPage(m[7]), 0);
        return;
      }
      case EV.smmu_ptw_block_pte: {
        const stage = m[1] !== undefined ? dec(m[1]) : 1;
        const level = dec(m[2]);
        this.walkResult(ts.unit, stage, hexPage(m[6]), hexPage(m[7]), level === 1 ? 18 : level === 2 ? 9 : 0);
        return;
      }
      case EV.smmuv3_translate_success: {
        const sid = sidValue(m[2]);
        const u = ts.unit;
        if (!u.active || u.sid !== sid) { this.startUnit(ts, sid); }
        this.translation(ts, l, sid, m[3], m[4], m[6] !== undefined ? dec(m[6]) : 0);
        return;
      }
      case EV.smmuv3_translate_bypass: this.stats.untranslated.bypass++; ts.unit.active = false; return;
      case EV.smmuv3_translate_abort: this.stats.untranslated.abort++; ts.unit.active = false; return;
      case EV.smmuv3_translate_disable: this.stats.untranslated.disabled++; ts.unit.active = false; return;
      default:
        return;
    }
  };

  /** End of input: close open commands and emit what is pending. */
  finish(): void {
    for (const ts of this.threads.values()) {
      this.closeCmd(ts);
      this.flushBatch(ts, null);
    }
  }

  // ------------------------------------------------------------------ header

  private idrRead(off: number, val: number): void {
    switch (off) {
      case 0x0: this.idr.idr0 = val; this.idrSeen = true; break;
      case 0x4: this.idr.idr1 = val; break;
      case 0xc: this.idr.idr3 = val; break;
      case 0x14: this.idr.idr5 = val; break;
      case 0x1c: this.idr.aidr = val; break;
      default: break;
    }
  }

  private ensureHeader(lineNo: number): void {
    if (this.headerDone) return;
    this.headerDone = true;
    const h: HeaderEvent = {
      e: 'header', format: TRACE_FORMAT, version: TRACE_VERSION, source: 'qemu',
      system: {
        cpus: this.opts.cpus ?? 4, vhe: false, cpuTlb: { ...CORTEX_A76_L2_TLB },
        smmus: [{
          idr0: this.idr.idr0, idr1: this.idr.idr1, idr3: this.idr.idr3, idr5: this.idr.idr5, aidr: this.idr.aidr,
          iidr: 0, tlb: this.opts.tlb ?? { entries: 256, ways: 256, policy: 'lru' },
          microTlbEntries: 0, walkCacheEntries: 0, atcEntries: 0,
        }],
      },
      driver: { btm: false, vhe: false },
      info: { idrFromTrace: this.idrSeen, attribution: 'auto' },
    };
    this.out(h, lineNo);
  }

  private out(ev: TraceEvent, lineNo: number): void {
    this.emit(ev, lineNo);
  }

  private time(l: QemuLine): number | undefined {
    if (l.tsStart < 0 && l.isoTs !== l.isoTs) return undefined;
    return Math.round((lineTs(l) - this.t0) * 1e9);
  }
  private tOf(l: QemuLine | null): { t?: number } {
    if (l === null) return {};
    const t = this.time(l);
    return t === undefined ? {} : { t };
  }

  // ------------------------------------------------------------------ commands

  private handler(ts: ThreadState, f: (c: PendingCmd) => void): void {
    if (ts.cmd === null) { this.stats.orphanHandlerLines++; return; }
    f(ts.cmd);
  }

  /** Encode the open command of a thread into its batch. */
  private closeCmd(ts: ThreadState): void {
    const c = ts.cmd;
    if (c === null) return;
    ts.cmd = null;
    if (c.error) { this.stats.qemuCommandErrors++; return; }
    if (c.op < 0) return; // a name QEMU printed that we cannot map ("UNKNOWN"): nothing to replay
    if (c.unhandled) this.stats.unhandledCommands++;
    if (ts.batch.length === 0) ts.batchT = c.t;
    const w = this.scratch;
    const push = (): void => {
      ts.batch.push(w[0], w[1], w[2], w[3]);
      const name = OPCODE_NAMES[w[0] & 0xff] ?? c.name;
      this.stats.commands[name] = (this.stats.commands[name] ?? 0) + 1;
    };
    const op = c.op;
    switch (op) {
      case OP.CMD_SYNC:
        // Linux without MSI polling (QEMU has no IDR0.MSI): CS=SEV, MSH=ISH, MSIAttr=OIWB.
        writeSync(w, 0, 2, 3, 0xf, 0, 0);
        break;
      case OP.CMD_PREFETCH_CONFIG:
      case OP.CMD_PREFETCH_ADDR:
        this.stats.inferred.prefetchSid++;
        writeCfgi(w, 0, op, ts.lastCfgiSteSid >= 0 ? ts.lastCfgiSteSid : 0, 0, 0);
        break;
      case OP.CMD_CFGI_STE:
      case OP.CMD_CFGI_CD:
      case OP.CMD_CFGI_CD_ALL: {
        if (c.sid < 0) this.stats.inferred.cfgiStSid++;
        if (op === OP.CMD_CFGI_CD) this.stats.inferred.cfgiCdSsid++;
        writeCfgi(w, 0, op, Math.max(0, c.sid), 0, op === OP.CMD_CFGI_CD_ALL ? 0 : 1);
        if (op === OP.CMD_CFGI_STE && c.sid >= 0) ts.lastCfgiSteSid = c.sid;
        break;
      }
      case OP.CMD_CFGI_STE_RANGE: {
        let range = 31, sid = 0;
        if (c.rangeStart >= 0 && c.rangeEnd >= c.rangeStart) {
          const span = c.rangeEnd - c.rangeStart + 1;
          if (span < 2 ** 32) {
            range = Math.max(0, Math.ceil(Math.log2(span)) - 1);
            sid = c.rangeStart;
          }
        } else {
          this.stats.inferred.cfgiAll++;
        }
        writeCfgi(w, 0, op, sid, 0, range);
        break;
      }
      case OP.CMD_TLBI_NH_ALL:
      case OP.CMD_TLBI_S12_VMALL:
        writeTlbi(w, 0, op, Math.max(0, c.vmid), 0, 0, 0, 0, 0, 0, 0);
        break;
      case OP.CMD_TLBI_NH_ASID:
        writeTlbi(w, 0, op, Math.max(0, c.vmid), Math.max(0, c.asid), 0, 0, 0, 0, 0, 0);
        break;
      case OP.CMD_TLBI_NH_VA:
      case OP.CMD_TLBI_NH_VAA:
      case OP.CMD_TLBI_S2_IPA:
        this.rangeCommand(c, push);
        return;
      default:
        // NSNH_ALL, EL2/EL3 TLBIs, ATC_INV, PRI_RESP, RESUME, STALL_TERM, 0x07: the opcode only.
        writeTlbi(w, 0, op, 0, 0, 0, 0, 0, 0, 0, 0);
        break;
    }
    push();
  }

  /** Merge the printed pieces of a range TLBI back into the command(s) the driver wrote. */
  private rangeCommand(c: PendingCmd, push: () => void): void {
    const w = this.scratch;
    const op = c.op;
    const p = c.pieces;
    if (p.length === 0) {
      this.stats.inferred.missingRange++;
      writeTlbi(w, 0, op, 0, 0, 0, 0, 0, 0, 0, 0);
      push();
      return;
    }
    const f = p[0];
    const vmid = Math.max(0, f.vmid);
    const asid = op === OP.CMD_TLBI_NH_VA ? Math.max(0, f.asid) : 0;
    if (p.length > 1) { this.stats.rangeMerged.commands++; this.stats.rangeMerged.pieces += p.length; }
    if (f.tg === 0) {
      // No range: one page (QEMU prints num_pages=1).
      writeTlbi(w, 0, op, vmid, asid, f.addrPage, f.leaf, f.ttl, 0, 0, 0);
      push();
      return;
    }
    const granPages = f.tg === 2 ? 4 : f.tg === 3 ? 16 : 1;
    let total = 0;
    for (const x of p) total += x.pages;
    // (NUM+1)·2^SCALE granules from the first piece's address; a count that no single command
    // can encode came from several commands with one opcode line (should not happen): split it.
    let left = total, addr = f.addrPage;
    while (left > 0) {
      const scale = Math.min(31, ctz(left));
      let num = left / 2 ** scale;
      if (num > 32) num = 32;
      const chunk = num * 2 ** scale;
      if (num === 1 && scale === 0 && f.ttl === 0) {
        // TG!=0, NUM=SCALE=TTL=0 is Reserved (CERROR_ILL in the model); QEMU takes it as one page.
        this.stats.reservedRangeAsSingle++;
        writeTlbi(w, 0, op, vmid, asid, addr, f.leaf, 0, 0, 0, 0);
      } else {
        writeTlbi(w, 0, op, vmid, asid, addr, f.leaf, f.ttl, f.tg, num - 1, scale);
      }
      push();
      addr += chunk * granPages;
      left -= chunk;
    }
  }

  private flushBatch(ts: ThreadState, l: QemuLine | null): void {
    if (ts.batch.length === 0) return;
    this.ensureHeader(l?.lineNo ?? 0);
    const w = Uint32Array.from(ts.batch);
    ts.batch.length = 0;
    const t = ts.batchT;
    ts.batchT = undefined;
    this.out(t === undefined ? { e: 'cmds', smmu: 0, w } : { e: 'cmds', t, smmu: 0, w }, l?.lineNo ?? 0);
  }

  /** Emit completed commands of every thread (before an event of another thread). */
  private flushAllBatches(): void {
    for (const ts of this.threads.values()) if (ts.batch.length > 0) this.flushBatch(ts, null);
  }

  // ------------------------------------------------------------------ translations

  private startUnit(ts: ThreadState, sid: number): void {
    const u = ts.unit;
    u.active = true; u.sid = sid; u.asid = -1; u.vmid = -1; u.lookup = false; u.granule = 0;
    u.s1 = null; u.s2.length = 0; u.insertLevel = -1;
  }

  private walkResult(u: Unit, stage: number, inPage: number, outPage: number, sizeLog2: number): void {
    if (stage === 2) u.s2.push({ inPage, outPage, sizeLog2 });
    else u.s1 = { inPage, outPage, sizeLog2 };
  }

  private translation(ts: ThreadState, l: QemuLine, sid: number, iovaHex: string, outHex: string, printedStage: number): void {
    this.ensureHeader(l.lineNo);
    this.flushAllBatches();
    const u = ts.unit;
    u.active = false;
    const inPage = hexPage(iovaHex);
    const outPage = hexPage(outHex);
    let asid = u.asid, vmid = u.vmid;
    if (!u.lookup) {
      const last = this.lastSidAsid.get(sid);
      if (last !== undefined) { asid = last.asid; vmid = last.vmid; } else { this.stats.guessedContext++; asid = 1 + (sid & 0xffff); vmid = -1; }
    } else {
      this.lastSidAsid.set(sid, { asid, vmid });
    }
    let stage = printedStage;
    if (stage < 1 || stage > 3) {
      if (asid < 0) stage = STAGE_S2;
      else if (u.s1 !== null && u.s2.length > 0) stage = STAGE_NESTED;
      else stage = STAGE_S1;
    }
    const v = Math.max(0, vmid);
    const a = Math.max(0, asid);
    const s1 = stage === STAGE_S2 ? -1 : this.tableFor(`s1:${a}:${v}`, stage === STAGE_NESTED ? CtxKind.NESTED_S1 : CtxKind.SMMU_S1, `qemu S1 asid ${a} vmid ${v}`, l);
    const s2 = stage === STAGE_S1 ? -1 : this.tableFor(`s2:${v}`, CtxKind.SMMU_S2, `qemu S2 vmid ${v}`, l);
    const granule = u.granule > 0 ? u.granule : (this.sidCfg.get(sid)?.granule ?? 12);
    this.configure(sid, { stage, asid: a, vmid: v, s1, s2, granule }, l);
    const size = this.leafSize(u);
    if (stage === STAGE_S1) {
      this.ensureMap(s1, inPage, outPage, u.s1 !== null ? u.s1.sizeLog2 : size, l);
    } else if (stage === STAGE_S2) {
      const w = u.s2.length > 0 ? u.s2[u.s2.length - 1] : null;
      this.ensureMap(s2, inPage, outPage, w !== null ? w.sizeLog2 : size, l);
    } else {
      // Nested: stage 1 IOVA → IPA from the stage-1 walk (or what we mapped before, or identity),
      // stage 2 IPA → PA from the stage-2 walk of that IPA, else from the final address.
      let ipaPage: number;
      let s1Size = 0;
      if (u.s1 !== null) { ipaPage = u.s1.outPage + (inPage - u.s1.inPage); s1Size = u.s1.sizeLog2; } else {
        const sh = this.shadows[s1];
        const known = sh.walk(inPage);
        ipaPage = known >= 0 ? known : inPage;
      }
      this.ensureMap(s1, inPage, ipaPage, s1Size, l);
      let s2Size = 0;
      for (let i = u.s2.length - 1; i >= 0; i--) {
        const w = u.s2[i];
        const span = 2 ** w.sizeLog2;
        if (ipaPage >= w.inPage - (w.inPage % span) && ipaPage < w.inPage - (w.inPage % span) + span) { s2Size = w.sizeLog2; break; }
      }
      this.ensureMap(s2, ipaPage, outPage, s2Size, l);
    }
    this.stats.dma++;
    this.out({ e: 'dma', ...this.tOf(l), smmu: 0, sid, ssid: 0, page: inPage }, l.lineNo);
  }

  /** Leaf size (log2 pages) from the IOTLB insert level when no walk line said it (4K granule). */
  private leafSize(u: Unit): number {
    if (u.insertLevel === 2) return 9;
    if (u.insertLevel === 1) return 18;
    return 0;
  }

  private tableFor(key: string, kind: number, name: string, l: QemuLine): number {
    let id = this.tableIds.get(key);
    if (id !== undefined) return id;
    id = this.shadows.length;
    this.tableIds.set(key, id);
    this.shadows.push(new PageTable(id, id, name));
    this.stats.tables++;
    this.out({ e: 'ctx', ...this.tOf(l), id, kind, vm: -1, name }, l.lineNo);
    this.out({ e: 'table', ...this.tOf(l), id, ctx: id, name }, l.lineNo);
    return id;
  }

  private configure(sid: number, c: SidConfig, l: QemuLine): void {
    const old = this.sidCfg.get(sid);
    if (old !== undefined && old.stage === c.stage && old.asid === c.asid && old.vmid === c.vmid && old.s1 === c.s1 && old.s2 === c.s2 && old.granule === c.granule) return;
    this.sidCfg.set(sid, c);
    this.stats.configs++;
    const t = this.tOf(l);
    const ptr = (sid + 1) * 0x1000;
    const tg = c.granule === 16 ? 1 : c.granule === 14 ? 2 : 0;
    if (c.stage !== STAGE_S2) {
      this.out({ e: 'cd', ...t, smmu: 0, ptr, index: 0, cd: newCd({ ASID: c.asid, ASET: 0, TTB0: tableBase(c.s1), TG0: tg }) }, l.lineNo);
    }
    const config = c.stage === STAGE_S1 ? STE_CONFIG.S1_TRANS : c.stage === STAGE_S2 ? STE_CONFIG.S2_TRANS : STE_CONFIG.NESTED;
    const s2tg = c.granule === 16 ? 1 : c.granule === 14 ? 2 : 0;
    this.out({
      e: 'ste', ...t, smmu: 0, sid,
      ste: newSte({
        Config: config, S1ContextPtr: c.stage === STAGE_S2 ? 0 : ptr, S2VMID: c.vmid,
        S2TTB: c.stage === STAGE_S1 ? 0 : tableBase(c.s2), S2TG: s2tg,
      }),
    }, l.lineNo);
    if (old !== undefined) this.out({ e: 'cfginv', ...t, smmu: 0, sid }, l.lineNo);
  }

  /** Make table `id` translate inPage → outPage with a leaf of 2^sizeLog2 pages. */
  private ensureMap(id: number, inPage: number, outPage: number, sizeLog2: number, l: QemuLine): void {
    const sh = this.shadows[id];
    if (sh.walk(inPage) === outPage && (sizeLog2 === 0 || sh.lastSizeLog2 === sizeLog2)) return;
    const t = this.tOf(l);
    if (sizeLog2 > 0) {
      const span = 2 ** sizeLog2;
      const base = inPage - (inPage % span);
      // 4 KiB mappings inside the block would shadow it (walks look at pages first).
      if (sh.pages.size > 0) {
        const drop: number[] = [];
        if (span <= sh.pages.size) { for (let p = base; p < base + span; p++) if (sh.pages.has(p)) drop.push(p); } else {
          for (const p of sh.pages.keys()) if (p >= base && p < base + span) drop.push(p);
        }
        for (const p of drop) {
          sh.unmap(p);
          this.stats.unmaps++;
          this.out({ e: 'unmap', ...t, table: id, page: p }, l.lineNo);
        }
      }
      const outBase = outPage - (inPage - base);
      sh.map(base, outBase, sizeLog2);
      this.stats.maps++;
      this.out({ e: 'map', ...t, table: id, page: base, out: outBase, size: sizeLog2 }, l.lineNo);
      return;
    }
    sh.map(inPage, outPage, 0);
    this.stats.maps++;
    this.out({ e: 'map', ...t, table: id, page: inPage, out: outPage, size: 0 }, l.lineNo);
  }
}

/** A CFGI_STE_RANGE bound: hex, or (before 6.0, "0x%d" of an int) a negative number = 2^32 + it. */
function rangeBound(s: string): number {
  return s.charCodeAt(0) === 45 /* - */ ? 2 ** 32 + Number(s) : hex(s);
}

function newThread(): ThreadState {
  return {
    cmd: null, batch: [], batchT: undefined, lastCfgiSteSid: -1,
    unit: { active: false, sid: -1, asid: -1, vmid: -1, lookup: false, granule: 0, s1: null, s2: [], insertLevel: -1 },
  };
}

function ctz(x: number): number {
  let n = 0;
  while (x > 0 && x % 2 === 0) { x /= 2; n++; }
  return n;
}
