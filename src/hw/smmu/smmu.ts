import {
  CERROR, CMDQ_CONS, CR0, CR2, GERROR, IDR0, IDR1, IDR3, IDR5, REG, featuresFromIdr, getField, setField,
  type SmmuFeatures,
} from '../../arch/registers.js';
import { Stage, STAGE_VA, World } from '../../arch/world.js';
import { checkCommand, cmdOpcode } from '../../arch/commands.js';
import type { Memory, PageTable } from '../memory.js';
import { defaultSmmuKnobs, type SmmuKnobs } from '../knobs.js';
import { Tlb } from '../tlb/tlb.js';
import type { TlbGeometry } from '../tlb/tlb-api.js';
import { resetScope, type InvalScope, type TlbEntry } from '../tlb/scope.js';
import { tlbiScope, type IssuerRegime, type TlbiArgs } from '../tlbi-scope.js';
import { TlbiKind } from '../../arch/tlbi.js';
import { STE_CONFIG, STRW, EATS, atcSsidHi, atcSsidLo, tg0GranuleLog2, type Cd, type Ste } from './structures.js';
export { atcSsidHi, atcSsidLo } from './structures.js';
import { executeCommand } from './cmdexec.js';
import { FaultHook, type FaultHooks } from '../fault-hooks.js';

/** Which cache of the SMMU an entry lives in (for listeners). */
/** Bit of TlbEntry.aset set by the hypothetical STE.S2ASET_HYP (bit 0 is CD.ASET). */
export const ASET_S2_HYP = 2;

export const SmmuCache = { TLB: 1, MICRO_TLB: 2, WALK: 3, ATC: 4 } as const;

/** Why the last translation did not produce an address (negative return values of translate()). */
export const XlateFault = {
  /** F_TRANSLATION: no mapping. */
  TRANSLATION: -1,
  /** STE.Config = abort, or STE.V=0 (C_BAD_STE). */
  ABORT: -2,
  /** C_BAD_CD / illegal configuration. */
  BAD_CONFIG: -3,
} as const;

/** Resolved configuration of one (StreamID, SubstreamID): what the configuration cache holds. */
export interface StreamConfig {
  sid: number;
  ssid: number;
  /** 0 abort, 1 bypass, 2 translate, 3 bad configuration. */
  kind: number;
  world: number;
  vmid: number;
  asid: number;
  aset: number;
  /** Stage.S1, Stage.S2 or Stage.NESTED. */
  stage: number;
  s1: PageTable | null;
  s2: PageTable | null;
  /** Context recorded in filled entries: the stage-1 table's context, else the stage-2 one's. */
  ctx: number;
  granuleLog2: number;
  /** STE.EATS=01: the endpoint may cache translations in its ATC. */
  ats: boolean;
}

export interface SmmuParams {
  /** Raw ID register values. */
  idr0: number;
  idr1: number;
  idr3: number;
  idr5: number;
  aidr: number;
  iidr: number;
  tlb: TlbGeometry;
  /** Per-stream micro-TLB (0 = none). gem5: 32 entries fully associative. */
  microTlbEntries: number;
  /** Walk cache entries (0 = none); 4-way. */
  walkCacheEntries: number;
  /** Per-endpoint ATC entries for streams with STE.EATS=01 (0 = no ATCs). */
  atcEntries: number;
  knobs: SmmuKnobs;
}

/** A v3.2-like SMMU with S1, S2, Hyp, BTM, ATS, 16-bit ASID/VMID, RIL; 2048x4 TLB (gem5 default). */
export function defaultSmmuParams(over: Partial<SmmuParams> = {}): SmmuParams {
  let idr0 = 0;
  idr0 = setField(idr0, IDR0.S2P, 1);
  idr0 = setField(idr0, IDR0.S1P, 1);
  idr0 = setField(idr0, IDR0.TTF, 2);
  idr0 = setField(idr0, IDR0.COHACC, 1);
  idr0 = setField(idr0, IDR0.BTM, 1);
  idr0 = setField(idr0, IDR0.HYP, 1);
  idr0 = setField(idr0, IDR0.ATS, 1);
  idr0 = setField(idr0, IDR0.ASID16, 1);
  idr0 = setField(idr0, IDR0.MSI, 1);
  idr0 = setField(idr0, IDR0.VMID16, 1);
  idr0 = setField(idr0, IDR0.STALL_MODEL, 1);
  idr0 = setField(idr0, IDR0.ST_LEVEL, 1);
  let idr1 = setField(0, IDR1.CMDQS, 8);
  idr1 = setField(idr1, IDR1.SIDSIZE, 16);
  idr1 = setField(idr1, IDR1.SSIDSIZE, 20);
  const idr3 = setField(0, IDR3.RIL, 1);
  let idr5 = setField(0, IDR5.OAS, 5);
  idr5 = setField(idr5, IDR5.GRAN4K, 1);
  return {
    idr0, idr1, idr3, idr5, aidr: 2, iidr: 0x43b,
    tlb: { entries: 2048, ways: 4, policy: 'rr' },
    microTlbEntries: 0, walkCacheEntries: 0, atcEntries: 0,
    knobs: defaultSmmuKnobs(),
    ...over,
  };
}

/**
 * Observers of the SMMU (metrics, oracle, traces). Every method is optional and only called
 * when a listener is installed.
 */
export interface SmmuListener {
  /** An entry is about to leave a cache; it is still readable in `tlb` at `slot`. */
  onRemove?(smmu: Smmu, cache: number, tlb: Tlb, slot: number, cause: number): void;
  /** A translation hit in a cache. */
  onHit?(smmu: Smmu, cfg: StreamConfig, cache: number, tlb: Tlb, slot: number, page: number): void;
  /** An entry was filled after a walk. */
  onFill?(smmu: Smmu, cfg: StreamConfig, cache: number, tlb: Tlb, slot: number): void;
  /** A command was consumed (executed) at queue index `index`; words at ring[off..off+3]. */
  onCommand?(smmu: Smmu, op: number, ring: Uint32Array, off: number): void;
  /** CMD_SYNC completed: every earlier command of the queue has completed. */
  onSync?(smmu: Smmu): void;
  /** A command was rejected; consumption stopped. */
  onCommandError?(smmu: Smmu, err: number, reason: string, ring: Uint32Array, off: number): void;
  /** A broadcast TLBI was received and applied (accepted) or ignored. */
  onBroadcast?(smmu: Smmu, a: TlbiArgs, who: IssuerRegime, accepted: boolean): void;
  /** The DVM Sync of a DSB reached this SMMU: every earlier broadcast has completed. */
  onDvmSync?(smmu: Smmu): void;
  /**
   * An invalidation is about to be applied (command or accepted broadcast), with its effective
   * scope (after knobs and faults): to the TLB structures (cache TLB, sid -1) or to the ATC of
   * `sid` (cache ATC). Read `s`, never keep it.
   */
  onInvalidate?(smmu: Smmu, cache: number, sid: number, s: Readonly<InvalScope>): void;
  /** An entry was copied from another cache (micro-TLB from the TLB, ATC from either). */
  onCopy?(smmu: Smmu, cache: number, tlb: Tlb, slot: number, from: Tlb, fromSlot: number): void;
  /** A walk found no mapping (F_TRANSLATION) for `page` under configuration `cfg`. */
  onFault?(smmu: Smmu, cfg: StreamConfig, page: number): void;
}

const LISTENER_METHODS = [
  'onRemove', 'onHit', 'onFill', 'onCommand', 'onSync', 'onCommandError', 'onBroadcast', 'onDvmSync',
  'onInvalidate', 'onCopy', 'onFault',
] as const;

/**
 * One listener calling `a` then `b` (either may be null). A method only one of them has is that
 * one's own method, bound, so a hot callback (onHit) costs no more than with a single listener.
 */
export function teeSmmuListeners(a: SmmuListener | null, b: SmmuListener | null): SmmuListener | null {
  if (a === null) return b;
  if (b === null) return a;
  const out: Record<string, unknown> = {};
  for (const m of LISTENER_METHODS) {
    const fa = a[m] as ((...args: unknown[]) => void) | undefined;
    const fb = b[m] as ((...args: unknown[]) => void) | undefined;
    if (fa !== undefined && fb !== undefined) {
      out[m] = (...args: unknown[]) => { fa.apply(a, args); fb.apply(b, args); };
    } else if (fa !== undefined) {
      out[m] = fa.bind(a);
    } else if (fb !== undefined) {
      out[m] = fb.bind(b);
    }
  }
  return out as SmmuListener;
}

/** Counter indexes of Smmu.stats. */
export const SmmuStat = {
  HITS: 0, MISSES: 1, WALK_ACCESSES: 2, FAULTS: 3, CONFIG_HITS: 4, CONFIG_MISSES: 5,
  COMMANDS: 6, SYNCS: 7, DVM_TLBI: 8, DVM_IGNORED: 9, DVM_SYNC: 10, CERRORS: 11, BYPASS: 12,
  MICRO_HITS: 13, WALK_CACHE_HITS: 14, ATC_HITS: 15, ATC_MISSES: 16, ENTRIES_INVALIDATED: 17,
  CR2_WRITES_IGNORED: 18,
} as const;
const N_STATS = 19;
/** CR0(ACK).SMMUEN as a mask (read on every translation). */
const SMMUEN_MASK = 1 << CR0.SMMUEN.lsb;
/** StreamIDs below this have their SubstreamID-0 configuration-cache entry in an array (Smmu.config). */
const CONFIG_SSID0_LIMIT = 1 << 16;

/**
 * An SMMUv3 (IHI 0070): registers, stream table, CD tables, command queue, configuration cache,
 * TLB (with optional micro-TLBs and walk cache), per-endpoint ATCs, and its side of DVM.
 * Translation and invalidation do not allocate.
 */
export class Smmu {
  readonly features: SmmuFeatures;
  readonly knobs: SmmuKnobs;
  // ---- registers (§6.3) ----
  readonly idr0: number;
  readonly idr1: number;
  readonly idr3: number;
  readonly idr5: number;
  readonly aidr: number;
  readonly iidr: number;
  cr0 = 0;
  cr0ack = 0;
  /** CR2 reset value: PTM's reset value is not architecturally fixed; Arm recommends 1. */
  cr2 = setField(0, CR2.PTM, 1);
  gerror = 0;
  gerrorn = 0;
  /** CMDQ_BASE.LOG2SIZE. */
  cmdqLog2Size: number;
  cmdqProd = 0;
  cmdqCons = 0;
  /** The command queue in memory: 4 x 32-bit words per entry. */
  ring: Uint32Array;
  // ---- structures in memory ----
  readonly streamTable = new Map<number, Ste>();
  /** CD tables by S1ContextPtr. */
  readonly cdTables = new Map<number, Cd[]>();
  // ---- caches ----
  /** Configuration cache: sid -> (ssid -> resolved config). Only CFGI_* invalidates it. */
  readonly configCache = new Map<number, StreamConfig[]>();
  /** configCache.get(sid)[0] indexed by StreamID, for StreamIDs below CONFIG_SSID0_LIMIT. */
  private readonly configSsid0: (StreamConfig | undefined)[] = [];
  readonly tlb: Tlb;
  readonly microTlbs = new Map<number, Tlb>();
  readonly walkCache: Tlb | null;
  readonly atcs = new Map<number, Tlb>();
  readonly stats = new Float64Array(N_STATS);
  /** Commands consumed, by opcode. */
  readonly commandsByOpcode = new Float64Array(256);
  listener: SmmuListener | null = null;
  /** Fault injection: the SMMU advertises BTM but drops broadcasts (MMU-700 erratum 2812531 class). */
  dropBroadcasts = false;
  /** Fault-injection hooks (src/hw/fault-hooks.ts); null in normal runs. */
  faults: FaultHooks | null = null;
  /**
   * Called when commands were published but left in the queue (fault skip-sync only): whoever
   * drives time must call consume() later.
   */
  onCommandsPending: ((smmu: Smmu) => void) | null = null;
  /** Result of the last translate(): the slot that hit or was filled, the cache, walk accesses. */
  lastSlot = -1;
  lastCache = 0;
  lastWalk = 0;
  lastConfig: StreamConfig | null = null;

  private readonly scratch: InvalScope = resetScope({} as InvalScope);
  private readonly scratch2: InvalScope = resetScope({} as InvalScope);
  private readonly wcScope: InvalScope = resetScope({} as InvalScope);
  private readonly fillEntry: TlbEntry = {
    world: 0, vmid: 0, asid: -1, global: false, aset: 0, stage: 1, page: 0, sizeLog2: 0,
    granuleLog2: 12, level: 3, leaf: 1, out: 0, ctx: 0,
  };

  constructor(readonly id: number, readonly memory: Memory, readonly params: SmmuParams = defaultSmmuParams()) {
    let idr0 = params.idr0 >>> 0;
    // Fix: IDR0.Hyp is RES0 unless both S1P and S2P are 1 (SMMUv3 §6.3.1; arch.md §2.1). A
    // stage-1-only or stage-2-only SMMU built from defaultSmmuParams (Hyp=1) used to accept
    // CMD_TLBI_EL2_* and honour STE.STRW=EL2.
    if (getField(idr0, IDR0.S1P) === 0 || getField(idr0, IDR0.S2P) === 0) idr0 = setField(idr0, IDR0.HYP, 0);
    this.idr0 = idr0;
    this.idr1 = params.idr1 >>> 0;
    this.idr3 = params.idr3 >>> 0;
    this.idr5 = params.idr5 >>> 0;
    this.aidr = params.aidr;
    this.iidr = params.iidr;
    this.features = featuresFromIdr({ idr0: this.idr0, idr3: this.idr3, idr5: this.idr5, aidr: this.aidr });
    this.knobs = params.knobs;
    // Fix: CR2.PTM is RES0 when IDR0.BTM=0 (§6.3.12; arch.md §2.6), so its reset value must read 0.
    if (!this.features.btm) this.cr2 = 0;
    this.tlb = new Tlb(params.tlb);
    this.tlb.onRemove = (slot, cause) => this.listener?.onRemove?.(this, SmmuCache.TLB, this.tlb, slot, cause);
    if (params.walkCacheEntries > 0) {
      const wc = new Tlb({ entries: params.walkCacheEntries, ways: Math.min(4, params.walkCacheEntries), policy: 'rr' });
      wc.onRemove = (slot, cause) => this.listener?.onRemove?.(this, SmmuCache.WALK, wc, slot, cause);
      this.walkCache = wc;
    } else {
      this.walkCache = null;
    }
    this.cmdqLog2Size = Math.min(getField(this.idr1, IDR1.CMDQS), 8);
    this.ring = new Uint32Array(4 << this.cmdqLog2Size);
  }

  // ------------------------------------------------------------------ registers

  get smmuEnabled(): boolean { return (this.cr0ack & SMMUEN_MASK) !== 0; }
  get ptm(): boolean { return getField(this.cr2, CR2.PTM) === 1; }
  get e2h(): boolean { return getField(this.cr2, CR2.E2H) === 1; }
  /** Command-queue error active: GERROR.CMDQ_ERR differs from GERRORN.CMDQ_ERR (§6.3.19). */
  get cmdqErrorActive(): boolean { return ((this.gerror ^ this.gerrorn) >>> GERROR.CMDQ_ERR & 1) === 1; }
  get cmdqConsErr(): number { return getField(this.cmdqCons, CMDQ_CONS.ERR); }

  /**
   * Does this SMMU act on broadcast TLB maintenance now? IDR0.BTM=1 (SMMU and interconnect) and
   * CR2.PTM=0; with PTM=1 it is permitted to ignore them (knob, ignoring by default) (§3.17, §6.3.12).
   */
  get takesBroadcasts(): boolean {
    if (!this.features.btm || !this.smmuEnabled) return false;
    return !this.ptm || !this.knobs.ptmIgnoresBroadcasts;
  }

  readReg(offset: number): number {
    switch (offset) {
      case REG.IDR0: return this.idr0;
      case REG.IDR1: return this.idr1;
      case REG.IDR3: return this.idr3;
      case REG.IDR5: return this.idr5;
      case REG.AIDR: return this.aidr;
      case REG.IIDR: return this.iidr;
      case REG.CR0: return this.cr0;
      case REG.CR0ACK: return this.cr0ack;
      case REG.CR2: return this.cr2;
      case REG.GERROR: return this.gerror;
      case REG.GERRORN: return this.gerrorn;
      case REG.CMDQ_PROD: return this.cmdqProd;
      case REG.CMDQ_CONS: return this.cmdqCons;
      default: return 0;
    }
  }

  writeReg(offset: number, value: number): void {
    value >>>= 0;
    switch (offset) {
      case REG.CR0:
        // Updates are acknowledged at once (the model has no update latency).
        this.cr0 = value;
        this.cr0ack = value;
        this.consume();
        break;
      case REG.CR2:
        // CR2 is writable only while SMMUEN=0 and CR0ACK.SMMUEN=0 (§6.3.12.1).
        if (getField(this.cr0, CR0.SMMUEN) === 0 && !this.smmuEnabled) {
          // Fix: keep only the defined fields (§6.3.12; arch.md §2.6): bits [31:4] are RES0 and
          // REC_CFG_ATS exists only with IDR0.ATSRECERR; they used to be stored as written.
          let v = value & 0b0111;
          if (getField(this.idr0, IDR0.ATSRECERR) === 1) v |= value & 0b1000;
          if (!this.features.btm) v = setField(v, CR2.PTM, 0); // RES0 without BTM
          if (!this.features.hyp) v = setField(v, CR2.E2H, 0);
          this.cr2 = v;
        } else {
          this.stats[SmmuStat.CR2_WRITES_IGNORED]++;
        }
        break;
      case REG.GERRORN:
        // Acknowledging CMDQ_ERR resumes consumption by re-fetching the command at CONS (§4.1.3).
        this.gerrorn = value;
        if (!this.cmdqErrorActive) {
          this.cmdqCons = setField(this.cmdqCons, CMDQ_CONS.ERR, 0);
          this.consume();
        }
        break;
      case REG.CMDQ_PROD:
        this.cmdqProd = value & this.indexMask();
        // Fault skip-sync: Linux returns from arm_smmu_cmdq_issue_cmdlist only once its CMD_SYNC
        // completed (arm_smmu_cmdq_poll_until_sync), which the model collapses into consuming at
        // the PROD write. A driver that frees a page or a domain before the SYNC completes is
        // modelled by leaving the commands in the queue until a later event consumes them: the
        // driver has returned (software considers the invalidation done) while the TLBI has not
        // executed yet — DMA in between uses the stale entry.
        if (this.faults !== null && this.faults.has(FaultHook.SKIP_SYNC) && this.smmuEnabled) {
          if (this.cmdqProd !== (this.cmdqCons & this.indexMask())) {
            this.faults.fire(FaultHook.SKIP_SYNC);
            this.onCommandsPending?.(this);
          }
          break;
        }
        this.consume();
        break;
      default:
        break;
    }
  }

  /** Mask of PROD/CONS: index bits plus the wrap bit. */
  private indexMask(): number { return (2 << this.cmdqLog2Size) - 1; }

  // ------------------------------------------------------------------ command queue

  /** Entries free in the queue (driver side). */
  cmdqSpace(): number {
    const size = 1 << this.cmdqLog2Size;
    const used = (this.cmdqProd - (this.cmdqCons & this.indexMask()) + (2 << this.cmdqLog2Size)) & this.indexMask();
    return size - used;
  }

  /**
   * Driver helper: copy `n` commands (4 words each) from `words` at word offset `off` into the ring
   * at PROD and publish them with one CMDQ_PROD write. Returns false if they do not fit.
   */
  submit(words: Uint32Array, off: number, n: number): boolean {
    if (n > this.cmdqSpace()) return false;
    const size = 1 << this.cmdqLog2Size;
    let prod = this.cmdqProd;
    for (let i = 0; i < n; i++) {
      const idx = prod & (size - 1);
      const d = idx * 4, s = off + i * 4;
      this.ring[d] = words[s]; this.ring[d + 1] = words[s + 1];
      this.ring[d + 2] = words[s + 2]; this.ring[d + 3] = words[s + 3];
      prod = (prod + 1) & this.indexMask();
    }
    this.writeReg(REG.CMDQ_PROD, prod);
    return true;
  }

  /**
   * Consume commands while the queue is enabled, non-empty and error-free (§4.1.2). Commands take
   * effect when consumed; CMD_SYNC completes at once because every earlier command already has.
   * An illegal command stops consumption with CONS pointing at it (§4.1.3, §7.1).
   */
  consume(): void {
    if (getField(this.cr0ack, CR0.CMDQEN) !== 1) return;
    const size = 1 << this.cmdqLog2Size;
    const mask = this.indexMask();
    while (!this.cmdqErrorActive) {
      const cons = this.cmdqCons & this.indexMask();
      if (cons === this.cmdqProd) break;
      const off = (cons & (size - 1)) * 4;
      const chk = checkCommand(this.ring, off, this.features, { secureQueue: false });
      if (chk.err !== 0) {
        this.cmdqCons = setField(cons, CMDQ_CONS.ERR, chk.err);
        this.gerror ^= 1 << GERROR.CMDQ_ERR;
        this.stats[SmmuStat.CERRORS]++;
        this.listener?.onCommandError?.(this, chk.err, 'reason' in chk ? chk.reason : '', this.ring, off);
        break;
      }
      const op = cmdOpcode(this.ring, off);
      this.stats[SmmuStat.COMMANDS]++;
      this.commandsByOpcode[op]++;
      executeCommand(this, this.ring, off);
      this.listener?.onCommand?.(this, op, this.ring, off);
      this.cmdqCons = (cons + 1) & mask;
    }
  }

  /** Record a CMD_SYNC completion (called by the executor). */
  syncCompleted(): void {
    this.stats[SmmuStat.SYNCS]++;
    this.listener?.onSync?.(this);
  }

  // ------------------------------------------------------------------ invalidation

  /** Remove matching entries from the TLB, micro-TLBs and walk cache. Returns entries removed. */
  invalidate(s: InvalScope): number {
    this.listener?.onInvalidate?.(this, SmmuCache.TLB, -1, s);
    let n = this.tlb.invalidate(s);
    if (this.microTlbs.size > 0) for (const u of this.microTlbs.values()) n += u.invalidate(s);
    const wc = this.walkCache;
    if (wc !== null && (!s.leafOnly || this.knobs.leafDropsWalkCache)) {
      // Walk-cache entries are intermediate: leaf/TTL filters do not select them.
      const leafOnly = s.leafOnly, ttl = s.ttl;
      s.leafOnly = false; s.ttl = 0;
      n += wc.invalidate(s);
      s.leafOnly = leafOnly; s.ttl = ttl;
    }
    this.stats[SmmuStat.ENTRIES_INVALIDATED] += n;
    return n;
  }

  /**
   * Remove every combined S1+S2 (NESTED) NS-EL1 entry of `vmid`, whatever its address: what an
   * implementation that over-invalidates on IPAS2E1IS / CMD_TLBI_S2_IPA must do (knob
   * s2IpaHitsCombined). Combined entries are tagged by VA and carry no IPA (SMMUv3 §4.4.2.11;
   * arch.md §1.5 S2_IPA, §3.3), so an IPA cannot select them by address.
   * Fix: the knob used to add NESTED to the IPA-addressed scope, which compared the IPA with the
   * entries' VA and removed unrelated combined entries while keeping the ones for that IPA.
   */
  invalidateCombined(vmid: number, leafOnly: boolean): number {
    const s = resetScope(this.scratch2);
    s.worlds = World.NS_EL1;
    s.vmid = vmid;
    s.vmidIgnoreBits = this.vmwBits();
    s.stages = Stage.NESTED;
    s.leafOnly = leafOnly;
    return this.invalidate(s);
  }

  /** Invalidate ATC entries of endpoint `sid` (CMD_ATC_INV). */
  invalidateAtc(sid: number, s: InvalScope): number {
    this.listener?.onInvalidate?.(this, SmmuCache.ATC, sid, s);
    const atc = this.atcs.get(sid);
    return atc === undefined ? 0 : atc.invalidate(s);
  }

  /** Scratch scope for executors (reused; never retained). */
  scope(): InvalScope { return resetScope(this.scratch); }

  /**
   * A broadcast TLBI from the DVM domain (arch.md §3.1, §3.3). Applied on receipt; it completes
   * at the issuer's DSB (receiveDvmSync). Ignored unless the SMMU takes broadcasts.
   */
  receiveBroadcast(a: TlbiArgs, who: IssuerRegime): void {
    if (!this.takesBroadcasts || this.dropBroadcasts) {
      // Fault drop-dvm (MMU-700 erratum 2812531: the SMMU may miss broadcast invalidations; Linux
      // clears FEAT_BTM for it): it acts when a broadcast the SMMU should take is dropped.
      if (this.dropBroadcasts && this.faults !== null && this.takesBroadcasts) this.faults.fire(FaultHook.DROP_DVM);
      this.stats[SmmuStat.DVM_IGNORED]++;
      this.listener?.onBroadcast?.(this, a, who, false);
      return;
    }
    this.stats[SmmuStat.DVM_TLBI]++;
    const s = this.scratch;
    if (!tlbiScope(a, who, this.knobs.asetSparesAsidBroadcasts, s)) {
      this.listener?.onBroadcast?.(this, a, who, false);
      return;
    }
    // Mixed widths (§3.17.4): an 8-bit SMMU must match IDs whose top byte is zero, may match others.
    if (!this.features.vmid16 && s.vmid > 0xff) {
      if (!this.knobs.narrowIdsMatchLowBits) { this.listener?.onBroadcast?.(this, a, who, false); return; }
      s.vmid &= 0xff;
    } else if (s.vmid > 0xff && this.vmidTagMask() === 0xff) {
      s.vmid &= 0xff; // fault vmid-truncate-8: the SMMU honours VMID[7:0] only
    }
    if (!this.features.asid16 && s.asid > 0xff) {
      if (!this.knobs.narrowIdsMatchLowBits) { this.listener?.onBroadcast?.(this, a, who, false); return; }
      s.asid &= 0xff;
    }
    if (this.knobs.el2WorldsCrossMatch && (s.worlds & (World.NS_EL2 | World.NS_EL2_E2H)) !== 0) {
      s.worlds |= World.NS_EL2 | World.NS_EL2_E2H;
    }
    if (this.knobs.nhAllHitsS2 && a.op.kind === TlbiKind.VMALL) s.stages |= Stage.S2;
    s.vmidIgnoreBits = this.vmwBits();
    // The hypothetical stage-2 ASET spares entries from every broadcast that matches on a VMID.
    if (s.vmid >= 0) s.skipVmidAset = true;
    const vmid = s.vmid, leafOnly = s.leafOnly;
    this.invalidate(s);
    if (this.knobs.s2IpaHitsCombined && a.op.kind === TlbiKind.IPA) this.invalidateCombined(vmid, leafOnly);
    this.listener?.onBroadcast?.(this, a, who, true);
  }

  receiveDvmSync(): void {
    this.stats[SmmuStat.DVM_SYNC]++;
    this.listener?.onDvmSync?.(this);
  }

  /**
   * VMID bits the SMMU honours: 16 with IDR0.VMID16, else 8. Fault vmid-truncate-8 (FreeBSD
   * review D55860: 16-bit VMIDs silently truncated to 8) makes an SMMU that advertises VMID16 tag
   * entries and match invalidations on VMID[7:0] only, so domains 0x001 and 0x101 alias.
   */
  vmidTagMask(): number {
    if (!this.features.vmid16) return 0xff;
    return this.faults !== null && this.faults.has(FaultHook.VMID_TRUNCATE_8) ? 0xff : 0xffff;
  }

  /** CR0.VMW: low VMID bits ignored by invalidations (commands and broadcasts), if IDR0.VMW. */
  vmwBits(): number {
    if (!this.features.vmw) return 0;
    const v = getField(this.cr0ack, CR0.VMW);
    return v > 4 ? 0 : v;
  }

  // ------------------------------------------------------------------ configuration

  /** Drop cached configuration of `sid` (all substreams) — CMD_CFGI_STE / CFGI_CD_ALL. */
  invalidateConfigSid(sid: number): void {
    this.configCache.delete(sid);
    if (sid >= 0 && sid < this.configSsid0.length) this.configSsid0[sid] = undefined;
  }

  invalidateConfigCd(sid: number, ssid: number): void {
    const a = this.configCache.get(sid);
    if (a !== undefined && ssid < a.length) a[ssid] = undefined as unknown as StreamConfig;
    if (ssid === 0 && sid >= 0 && sid < this.configSsid0.length) this.configSsid0[sid] = undefined;
  }

  invalidateConfigRange(first: number, count: number): void {
    if (count >= this.configCache.size) {
      for (const sid of [...this.configCache.keys()]) if (sid >= first && sid < first + count) this.invalidateConfigSid(sid);
    } else {
      for (let s = first; s < first + count; s++) this.invalidateConfigSid(s);
    }
  }

  invalidateConfigAll(): void {
    this.configCache.clear();
    this.configSsid0.length = 0;
  }

  /** The configuration cache entry for (sid, ssid), fetching and resolving it on a miss. */
  config(sid: number, ssid: number): StreamConfig {
    // configSsid0 mirrors configCache's entries of SubstreamID 0 for small StreamIDs: one
    // indexed load instead of a Map lookup and an array on every translation.
    if (ssid === 0 && (sid >>> 0) === sid && sid < this.configSsid0.length) {
      const c0 = this.configSsid0[sid];
      if (c0 !== undefined) { this.stats[SmmuStat.CONFIG_HITS]++; return c0; }
    }
    let a = this.configCache.get(sid);
    const c = a !== undefined ? a[ssid] : undefined;
    if (c !== undefined) { this.stats[SmmuStat.CONFIG_HITS]++; return c; }
    this.stats[SmmuStat.CONFIG_MISSES]++;
    const r = this.resolve(sid, ssid);
    if (a === undefined) { a = []; this.configCache.set(sid, a); }
    a[ssid] = r;
    if (ssid === 0 && (sid >>> 0) === sid && sid < CONFIG_SSID0_LIMIT) {
      const c0 = this.configSsid0;
      while (c0.length <= sid) c0.push(undefined);
      c0[sid] = r;
    }
    return r;
  }

  /** Read STE (and CD) from memory and work out tags and tables (§5.2, §5.4, §3.17 tagging). */
  private resolve(sid: number, ssid: number): StreamConfig {
    const c: StreamConfig = {
      sid, ssid, kind: 3, world: World.NS_EL1, vmid: 0, asid: -1, aset: 0, stage: Stage.S1,
      s1: null, s2: null, ctx: -1, granuleLog2: 12, ats: false,
    };
    const ste = this.streamTable.get(sid);
    if (ste === undefined || !ste.V) { c.kind = 0; return c; }
    const cfg = ste.Config;
    if ((cfg & 0b100) === 0) { c.kind = 0; return c; }
    if (cfg === STE_CONFIG.BYPASS) { c.kind = 1; return c; }
    const s1 = (cfg & 0b001) !== 0, s2 = (cfg & 0b010) !== 0;
    if ((s1 && !this.features.s1p) || (s2 && !this.features.s2p)) return c; // ILLEGAL STE
    c.ats = ste.EATS === EATS.TRANS;
    // Fix: on the Non-secure stream table STRW=0bx1 is ILLEGAL (C_BAD_STE) where STRW is not
    // ignored, i.e. stage 2 disabled and Hyp/S1P implemented (§5.2 STRW; arch.md §2.8). It used to
    // be read as EL1.
    if (!s2 && this.features.hyp && (ste.STRW & 1) !== 0) return c;
    // StreamWorld: forced to NS-EL1 when stage 2 is enabled; else STRW (§5.2 STRW).
    if (!s2 && ste.STRW === STRW.EL2 && this.features.hyp) c.world = this.e2h ? World.NS_EL2_E2H : World.NS_EL2;
    // S2VMID tags NS-EL1 entries whenever S2 is implemented, even for stage-1-only STEs (§3.17).
    if (c.world === World.NS_EL1 && this.features.s2p) {
      c.vmid = ste.S2VMID & this.vmidTagMask();
      if (c.vmid !== (ste.S2VMID & 0xffff) && this.features.vmid16) this.faults?.fire(FaultHook.VMID_TRUNCATE_8);
    }
    if (s2) {
      c.s2 = this.memory.tableAt(ste.S2TTB) ?? null;
      if (c.s2 === null) return c;
      c.granuleLog2 = ste.S2TG === 1 ? 16 : ste.S2TG === 2 ? 14 : 12;
    }
    if (s1) {
      const cds = this.cdTables.get(ste.S1ContextPtr);
      const idx = ste.S1CDMax === 0 ? 0 : ssid;
      if (cds === undefined || (ste.S1CDMax === 0 && ssid !== 0) || idx >= 2 ** ste.S1CDMax) return c;
      const cd = cds[idx];
      if (cd === undefined || !cd.V || cd.EPD0) return c;
      c.s1 = this.memory.tableAt(cd.TTB0) ?? null;
      if (c.s1 === null) return c;
      if (c.world !== World.NS_EL2) {
        c.asid = this.features.asid16 ? cd.ASID & 0xffff : cd.ASID & 0xff;
      }
      c.aset = cd.ASET;
      c.granuleLog2 = tg0GranuleLog2(cd.TG0);
    }
    c.stage = s1 && s2 ? Stage.NESTED : s1 ? Stage.S1 : Stage.S2;
    // Hypothetical stage-2 ASET (policy btm-s2aset): bit 1 of the entry's ASET tag.
    if (s2 && ste.S2ASET_HYP === true) c.aset |= ASET_S2_HYP;
    c.ctx = c.s1 !== null ? c.s1.ctx : c.s2!.ctx;
    c.kind = 2;
    return c;
  }

  // ------------------------------------------------------------------ translation

  /**
   * Translate one DMA access of (sid, ssid) to input page `page` (IOVA or IPA page number).
   * Returns the output page, or a negative XlateFault. On success `lastSlot`/`lastCache` name the
   * entry used and `lastWalk` the memory accesses of the walk (0 on a hit).
   */
  translate(sid: number, ssid: number, page: number): number {
    this.lastWalk = 0;
    this.lastSlot = -1;
    this.lastCache = 0;
    if (!this.smmuEnabled) { this.stats[SmmuStat.BYPASS]++; return page; }
    const cfg = this.config(sid, ssid);
    this.lastConfig = cfg;
    if (cfg.kind !== 2) {
      if (cfg.kind === 1) { this.stats[SmmuStat.BYPASS]++; return page; }
      this.stats[SmmuStat.FAULTS]++;
      return cfg.kind === 0 ? XlateFault.ABORT : XlateFault.BAD_CONFIG;
    }
    const ipa = cfg.stage === Stage.S2;
    // Per-endpoint ATC first (ATS): broadcasts never reach it, only CMD_ATC_INV does (§4.5.1).
    if (this.params.atcEntries > 0 && cfg.ats) {
      const atc = this.atcFor(sid);
      const s = atc.lookup(World.NS_EL1, atcSsidHi(ssid), atcSsidLo(ssid), 0, false, page);
      if (s >= 0) {
        this.stats[SmmuStat.ATC_HITS]++;
        this.lastSlot = s; this.lastCache = SmmuCache.ATC;
        this.listener?.onHit?.(this, cfg, SmmuCache.ATC, atc, s, page);
        return atc.out[s] + (page - atc.page[s]);
      }
      this.stats[SmmuStat.ATC_MISSES]++;
    }
    let utlb: Tlb | null = null;
    if (this.params.microTlbEntries > 0) {
      utlb = this.microTlbFor(sid);
      const s = utlb.lookup(cfg.world, cfg.vmid, cfg.asid, cfg.aset, ipa, page);
      if (s >= 0) {
        this.stats[SmmuStat.MICRO_HITS]++;
        this.stats[SmmuStat.HITS]++;
        this.lastSlot = s; this.lastCache = SmmuCache.MICRO_TLB;
        this.listener?.onHit?.(this, cfg, SmmuCache.MICRO_TLB, utlb, s, page);
        return this.afterHit(cfg, sid, utlb, s, page);
      }
    }
    const tlb = this.tlb;
    const slot = tlb.lookup(cfg.world, cfg.vmid, cfg.asid, cfg.aset, ipa, page);
    if (slot >= 0) {
      this.stats[SmmuStat.HITS]++;
      this.lastSlot = slot; this.lastCache = SmmuCache.TLB;
      this.listener?.onHit?.(this, cfg, SmmuCache.TLB, tlb, slot, page);
      if (utlb !== null) {
        const u = this.copyInto(utlb, tlb, slot);
        this.listener?.onCopy?.(this, SmmuCache.MICRO_TLB, utlb, u, tlb, slot);
      }
      return this.afterHit(cfg, sid, tlb, slot, page);
    }
    this.stats[SmmuStat.MISSES]++;
    return this.walkAndFill(cfg, sid, page, utlb);
  }

  private afterHit(cfg: StreamConfig, sid: number, t: Tlb, slot: number, page: number): number {
    const out = t.out[slot] + (page - t.page[slot]);
    if (this.params.atcEntries > 0 && cfg.ats) this.fillAtc(sid, cfg, t, slot);
    return out;
  }

  /**
   * Page-table walk with walk-memory-access accounting: stage 1 or stage 2 alone = leaf level + 1
   * reads (4 for a 4K page, 3 for a 2 MiB block); nested = n(m+1) + m = (n+1)(m+1) - 1 (24 for
   * 4 + 4 levels), n = stage-1 reads, m = reads of one stage-2 walk. Fewer with the walk cache.
   */
  private walkAndFill(cfg: StreamConfig, sid: number, page: number, utlb: Tlb | null): number {
    const e = this.fillEntry;
    let out: number, level: number, sizeLog2: number, accesses: number;
    if (cfg.stage === Stage.S2) {
      out = cfg.s2!.walk(page);
      // A failed walk leaves lastLevel from the previous walk: account it as reaching level 3.
      level = out >= 0 ? cfg.s2!.lastLevel : 3; sizeLog2 = cfg.s2!.lastSizeLog2;
      accesses = this.s1Accesses(cfg, page, level, out >= 0);
    } else {
      const ipaOrPa = cfg.s1!.walk(page);
      const found = ipaOrPa >= 0;
      level = found ? cfg.s1!.lastLevel : 3; sizeLog2 = cfg.s1!.lastSizeLog2;
      const n = this.s1Accesses(cfg, page, level, found);
      if (cfg.stage === Stage.NESTED) {
        // Each stage-1 descriptor read is at an IPA (the CD's TTB0 and table pointers are IPAs
        // when stage 2 is enabled, §5.2 S1ContextPtr, §3.17), so it needs a stage-2 walk of m reads;
        // then the output IPA needs one more: n(m+1) + m (Bhargava et al. 2008: 24 for 4+4).
        // Fix: m was always 4, so stage-2 2 MiB blocks still cost 24 instead of 4*4+3 = 19. m is
        // now the depth of the stage-2 walk of the output IPA; the model does not place stage-1
        // tables in IPA space, so their stage-2 walks are assumed to be as deep (same S2 mapping size).
        let m = 4;
        if (found) {
          out = cfg.s2!.walk(ipaOrPa);
          if (out >= 0) {
            m = cfg.s2!.lastLevel + 1;
            if (cfg.s2!.lastSizeLog2 < sizeLog2) sizeLog2 = cfg.s2!.lastSizeLog2;
          }
        } else out = -1;
        accesses = n * (m + 1) + (found ? m : 0);
      } else {
        accesses = n;
        out = ipaOrPa;
      }
    }
    this.lastWalk = accesses;
    this.stats[SmmuStat.WALK_ACCESSES] += accesses;
    if (out < 0) {
      this.stats[SmmuStat.FAULTS]++;
      this.listener?.onFault?.(this, cfg, page);
      return XlateFault.TRANSLATION;
    }
    const span = 2 ** sizeLog2;
    e.world = cfg.world; e.vmid = cfg.vmid; e.asid = cfg.stage === Stage.S2 ? -1 : cfg.asid;
    e.global = false; e.aset = cfg.aset; e.stage = cfg.stage;
    e.page = page - (page % span); e.sizeLog2 = sizeLog2; e.granuleLog2 = cfg.granuleLog2;
    e.level = level; e.leaf = 1; e.out = out - (page - e.page); e.ctx = cfg.ctx;
    const slot = this.tlb.fill(e);
    this.lastSlot = slot; this.lastCache = SmmuCache.TLB;
    this.listener?.onFill?.(this, cfg, SmmuCache.TLB, this.tlb, slot);
    if (utlb !== null) {
      const u = utlb.fill(e);
      this.listener?.onCopy?.(this, SmmuCache.MICRO_TLB, utlb, u, this.tlb, slot);
    }
    if (this.params.atcEntries > 0 && cfg.ats) this.fillAtc(sid, cfg, this.tlb, slot);
    return out;
  }

  /**
   * Memory reads of a stage-1 (or stage-2-only) walk ending at `leafLevel`, after walk-cache hits.
   * The walk cache holds table descriptors of levels 0..2, each spanning 2^(9*(3-L)) pages; a hit
   * at level L resumes the walk at level L+1. The descriptors read are cached.
   */
  private s1Accesses(cfg: StreamConfig, page: number, leafLevel: number, found: boolean): number {
    const full = found ? leafLevel + 1 : 4;
    const wc = this.walkCache;
    if (wc === null) return full;
    const ipa = cfg.stage === Stage.S2;
    const asid = ipa ? -1 : cfg.asid;
    // Deepest cached descriptor on the path. Fix: this used wc.lookup() and checked the level of
    // the slot it returned, but lookup returns the first matching way of the probed set whatever
    // its size, and descriptors of different levels often share a set (every level-0 descriptor of
    // the first 512 GiB has block index 0, as does the level-1/2 descriptor of the first 1 GiB/2 MiB),
    // so the level-0 entry (filled first) answered the level-2 probe: a walk-cache hit saved 1 read
    // instead of 3. We now ask for an entry of exactly level L (scope.ttl = L selects leaf=1 entries of
    // level L; walk-cache entries are stored with leaf=1). Level 0 is probed last with ttl=0
    // ("any level"), which can only find level 0 once levels 1-2 were absent.
    const q = resetScope(this.wcScope);
    q.worlds = cfg.world; q.vmid = cfg.vmid; q.asid = asid; q.includeGlobal = false;
    q.stages = ipa ? Stage.S2 : STAGE_VA; q.pageStart = page; q.pageCount = 1;
    let hit = -1;
    for (let l = Math.min(2, leafLevel - 1); l >= 0; l--) {
      q.ttl = l;
      if (wc.countMatching(q) > 0) {
        this.stats[SmmuStat.WALK_CACHE_HITS]++;
        hit = l;
        break;
      }
    }
    // Fill the descriptors read on the way down. Fix: after a hit at level L the descriptors of
    // levels L+1.. were read but not cached, so a walk-cache hit at level 0 kept costing 3 reads.
    const e = this.fillEntry;
    for (let l = hit + 1; l < Math.min(3, leafLevel); l++) {
      const sizeLog2 = 9 * (3 - l);
      const span = 2 ** sizeLog2;
      e.world = cfg.world; e.vmid = cfg.vmid; e.asid = asid; e.global = false;
      e.aset = cfg.aset; e.stage = ipa ? Stage.S2 : cfg.stage; e.page = page - (page % span);
      e.sizeLog2 = sizeLog2; e.granuleLog2 = cfg.granuleLog2; e.level = l; e.leaf = 1; e.out = 0; e.ctx = cfg.ctx;
      wc.fill(e);
    }
    return full - (hit + 1);
  }

  private copyInto(dst: Tlb, src: Tlb, slot: number): number {
    const e = this.fillEntry;
    e.world = src.world[slot]; e.vmid = src.vmid[slot]; e.asid = src.asid[slot]; e.global = src.global[slot] === 1;
    e.aset = src.aset[slot]; e.stage = src.stage[slot]; e.page = src.page[slot]; e.sizeLog2 = src.sizeLog2[slot];
    e.granuleLog2 = src.granuleLog2[slot]; e.level = src.level[slot]; e.leaf = src.leaf[slot];
    e.out = src.out[slot]; e.ctx = src.ctx[slot];
    return dst.fill(e);
  }

  /** ATS: the endpoint caches the translation (keyed by SSID, untranslated address). */
  private fillAtc(sid: number, cfg: StreamConfig, src: Tlb, slot: number): void {
    const atc = this.atcFor(sid);
    const e = this.fillEntry;
    e.world = World.NS_EL1; e.vmid = atcSsidHi(cfg.ssid); e.asid = atcSsidLo(cfg.ssid);
    e.global = false; e.aset = 0; e.stage = Stage.S1;
    e.page = src.page[slot]; e.sizeLog2 = src.sizeLog2[slot]; e.granuleLog2 = src.granuleLog2[slot];
    e.level = src.level[slot]; e.leaf = 1; e.out = src.out[slot]; e.ctx = src.ctx[slot];
    const a = atc.fill(e);
    this.listener?.onCopy?.(this, SmmuCache.ATC, atc, a, src, slot);
  }

  microTlbFor(sid: number): Tlb {
    let u = this.microTlbs.get(sid);
    if (u === undefined) {
      const n = this.params.microTlbEntries;
      const t = new Tlb({ entries: n, ways: n, policy: 'rr' });
      t.onRemove = (slot, cause) => this.listener?.onRemove?.(this, SmmuCache.MICRO_TLB, t, slot, cause);
      this.microTlbs.set(sid, t);
      u = t;
    }
    return u;
  }

  atcFor(sid: number): Tlb {
    let a = this.atcs.get(sid);
    if (a === undefined) {
      const n = this.params.atcEntries;
      const t = new Tlb({ entries: n, ways: n, policy: 'rr' });
      t.onRemove = (slot, cause) => this.listener?.onRemove?.(this, SmmuCache.ATC, t, slot, cause);
      this.atcs.set(sid, t);
      a = t;
    }
    return a;
  }
}
