/**
 * Command submission of the SMMUv3 driver: `arm_smmu_cmdq_build_cmd`, `arm_smmu_cmdq_issue_cmdlist`,
 * `arm_smmu_cmdq_batch_add` / `_submit`, `arm_smmu_cmdq_build_sync_cmd` and the CMDQ part of the
 * GERROR handler (`__arm_smmu_cmdq_skip_err`), against the hardware model's real command queue.
 *
 * Followed: arm-smmu-v3.c of v6.6 (read in full) — unchanged in substance up to v6.13:
 *  - batch_add: if num == CMDQ_BATCH_ENTRIES−1 and OPT_CMDQ_FORCE_SYNC → issue the 63 with a
 *    CMD_SYNC; if num == CMDQ_BATCH_ENTRIES → issue the 64 WITHOUT a sync; then append.
 *  - batch_submit: issue_cmdlist(cmds, num, sync=true) — a CMD_SYNC even when num == 0.
 *  - CMD_SYNC: CS=SIG_IRQ with MSIAddress = the queue slot of the SYNC itself ("MSI polling",
 *    OPT_MSIPOLL = IDR0.MSI && coherent && !disable_msipolling), else CS=SIG_SEV; MSH=ISH (3),
 *    MSIAttr=OIWB (0xF), MSIData 0.
 *  - skip_err: CERROR_ILL (and unknown codes) → the command at CONS is overwritten by a CMD_SYNC
 *    (built without msiaddr: CS=SEV); CERROR_ABT → retried as is; CERROR_ATC_INV_SYNC → retried.
 *    The GERROR handler then acknowledges by writing GERROR to GERRORN.
 *
 * The model has one producer and a queue that the SMMU drains synchronously on each CMDQ_PROD
 * write, so the owner/valid-map machinery of issue_cmdlist reduces to "copy, publish, wait".
 * Hot path allocation-free: batches and the single-command buffer are preallocated Uint32Arrays.
 *
 * No Node or DOM imports.
 */
import { OP, writeAtcInv, writeCfgi, writeSync, writeTlbi } from '../../arch/commands.js';
import { CERROR, CMDQ_CONS, REG, getField } from '../../arch/registers.js';
import type { Smmu } from '../../hw/smmu/smmu.js';

/** `CMDQ_BATCH_ENTRIES` = BITS_PER_LONG. */
export const CMDQ_BATCH_ENTRIES = 64;
/** 32-bit words per command (CMDQ_ENT_DWORDS = 2 × 64 bits). */
export const CMDQ_ENT_WORDS = 4;
/** `CMDQ_TLBI_RANGE_NUM_MAX` */
export const CMDQ_TLBI_RANGE_NUM_MAX = 31;
/** `ATC_INV_SIZE_ALL` */
export const ATC_INV_SIZE_ALL = 52;

/** CMD_SYNC CS values (`CMDQ_SYNC_0_CS_*`). */
export const SYNC_CS = { NONE: 0, IRQ: 1, SEV: 2 } as const;
/** `ARM_SMMU_SH_ISH` */
export const ARM_SMMU_SH_ISH = 3;
/** `ARM_SMMU_MEMATTR_OIWB` */
export const ARM_SMMU_MEMATTR_OIWB = 0xf;

/**
 * `struct arm_smmu_cmdq_ent`, reduced to the fields the driver model uses. Reused (mutable) so
 * building commands allocates nothing. Addresses are byte addresses (numbers; < 2^53).
 */
export interface CmdqEnt {
  opcode: number;
  substreamValid: number;
  sid: number;
  ssid: number;
  leaf: number;
  vmid: number;
  asid: number;
  addr: number;
  num: number;
  scale: number;
  ttl: number;
  tg: number;
  atcSize: number;
  atcGlobal: number;
  /** CMD_SYNC: MSI address (0 = none → CS=SEV). */
  msiaddr: number;
}

export function newCmdqEnt(): CmdqEnt {
  return {
    opcode: 0, substreamValid: 0, sid: 0, ssid: 0, leaf: 0, vmid: 0, asid: 0, addr: 0, num: 0,
    scale: 0, ttl: 0, tg: 0, atcSize: 0, atcGlobal: 0, msiaddr: 0,
  };
}

/** Zero every field but `opcode` (the kernel builds its `cmdq_ent`s with designated initialisers). */
export function resetCmdqEnt(e: CmdqEnt, opcode: number): CmdqEnt {
  e.opcode = opcode; e.substreamValid = 0; e.sid = 0; e.ssid = 0; e.leaf = 0; e.vmid = 0; e.asid = 0;
  e.addr = 0; e.num = 0; e.scale = 0; e.ttl = 0; e.tg = 0; e.atcSize = 0; e.atcGlobal = 0; e.msiaddr = 0;
  return e;
}

const PAGE = 4096;
/** CMDQ_TLBI_1_IPA_MASK = GENMASK_ULL(51, 12): 40 bits of page number. */
const IPA_PAGE_MASK = 2 ** 40;

/**
 * `arm_smmu_cmdq_build_cmd`: encode `ent` at w[off..off+3]. Returns false for an opcode the
 * driver does not build (-ENOENT in the kernel).
 */
export function buildCmd(w: Uint32Array, off: number, ent: CmdqEnt): boolean {
  const op = ent.opcode;
  switch (op) {
    case OP.CMD_TLBI_EL2_ALL:
    case OP.CMD_TLBI_NSNH_ALL:
      writeTlbi(w, off, op, 0, 0, 0, 0, 0, 0, 0, 0);
      return true;
    case OP.CMD_PREFETCH_CONFIG:
      writeCfgi(w, off, op, ent.sid, 0, 0);
      return true;
    case OP.CMD_CFGI_CD:
      writeCfgi(w, off, op, ent.sid, ent.ssid, ent.leaf);
      return true;
    case OP.CMD_CFGI_STE:
      writeCfgi(w, off, op, ent.sid, 0, ent.leaf);
      return true;
    case OP.CMD_CFGI_CD_ALL:
      writeCfgi(w, off, op, ent.sid, 0, 0);
      return true;
    case OP.CMD_CFGI_ALL: // = CFGI_STE_RANGE with Range 31: "Cover the entire SID range"
      writeCfgi(w, off, op, 0, 0, 31);
      return true;
    case OP.CMD_TLBI_NH_VA:
      writeTlbi(w, off, op, ent.vmid, ent.asid, Math.floor(ent.addr / PAGE), ent.leaf, ent.ttl, ent.tg, ent.num, ent.scale);
      return true;
    case OP.CMD_TLBI_EL2_VA:
      writeTlbi(w, off, op, 0, ent.asid, Math.floor(ent.addr / PAGE), ent.leaf, ent.ttl, ent.tg, ent.num, ent.scale);
      return true;
    case OP.CMD_TLBI_S2_IPA:
      writeTlbi(w, off, op, ent.vmid, 0, Math.floor(ent.addr / PAGE) % IPA_PAGE_MASK, ent.leaf, ent.ttl, ent.tg, ent.num, ent.scale);
      return true;
    case OP.CMD_TLBI_NH_ASID:
      writeTlbi(w, off, op, ent.vmid, ent.asid, 0, 0, 0, 0, 0, 0);
      return true;
    case OP.CMD_TLBI_NH_ALL: // v6.13 (nesting) added NH_ALL to the VMID-carrying cases
    case OP.CMD_TLBI_S12_VMALL:
      writeTlbi(w, off, op, ent.vmid, 0, 0, 0, 0, 0, 0, 0);
      return true;
    case OP.CMD_TLBI_EL2_ASID:
      writeTlbi(w, off, op, 0, ent.asid, 0, 0, 0, 0, 0, 0);
      return true;
    case OP.CMD_ATC_INV:
      writeAtcInv(w, off, ent.sid, ent.substreamValid, ent.ssid, ent.atcGlobal, ent.atcSize, Math.floor(ent.addr / PAGE));
      return true;
    case OP.CMD_SYNC:
      if (ent.msiaddr !== 0) writeSync(w, off, SYNC_CS.IRQ, ARM_SMMU_SH_ISH, ARM_SMMU_MEMATTR_OIWB, 0, ent.msiaddr);
      else writeSync(w, off, SYNC_CS.SEV, ARM_SMMU_SH_ISH, ARM_SMMU_MEMATTR_OIWB, 0, 0);
      return true;
    default:
      return false;
  }
}

/** `struct arm_smmu_cmdq_batch`: room for 64 commands plus the CMD_SYNC of the submission. */
export class CmdqBatch {
  readonly cmds = new Uint32Array((CMDQ_BATCH_ENTRIES + 1) * CMDQ_ENT_WORDS);
  num = 0;
}

/** Counter indexes of ArmSmmuCmdq.stats. */
export const CmdqStat = {
  /** arm_smmu_cmdq_issue_cmdlist calls (each is one CMDQ_PROD write). */
  SUBMISSIONS: 0,
  /** Commands written to the queue, CMD_SYNCs included. */
  COMMANDS: 1,
  /** CMD_SYNCs written (issue_cmdlist with sync=true). */
  SYNCS: 2,
  /** Batches flushed without a sync because they were full (64). */
  BATCH_FULL_FLUSHES: 3,
  /** Batches flushed with a sync at 63 entries (OPT_CMDQ_FORCE_SYNC). */
  BATCH_FORCE_SYNC_FLUSHES: 4,
  /** Command-queue errors seen by the GERROR handler. */
  CERRORS: 5,
  /** CERROR_ILL commands replaced by a CMD_SYNC (skip_err). */
  SKIPPED_ILLEGAL: 6,
  /** CERROR_ABT / CERROR_ATC_INV_SYNC: acknowledged and retried. */
  RETRIED: 7,
} as const;
const N_CMDQ_STATS = 8;

export interface CmdqConfig {
  /** ARM_SMMU_OPT_MSIPOLL: CMD_SYNC completion by MSI write-back into the SYNC slot. */
  msiPoll: boolean;
  /** ARM_SMMU_OPT_CMDQ_FORCE_SYNC (MMU-700 erratum 2812531). */
  forceSync: boolean;
  /** Pseudo DMA address of the queue memory (`q->base_dma`), for the MSI polling address. */
  baseDma: number;
}

/**
 * The driver's side of one SMMU's command queue. Also the driver's own command accounting:
 * `commandsByOpcode` counts what the driver issued (CMD_SYNC = 0x46), independently of the
 * SMMU's `commandsByOpcode` (what the hardware consumed).
 */
export class ArmSmmuCmdq {
  readonly commandsByOpcode = new Float64Array(256);
  readonly stats = new Float64Array(N_CMDQ_STATS);
  /** The reusable batch of the hot invalidation paths (never nested: each use ends in submit). */
  readonly batch = new CmdqBatch();
  /** Scratch entry for callers building one command. */
  readonly ent: CmdqEnt = newCmdqEnt();
  private readonly syncEnt: CmdqEnt = newCmdqEnt();
  private readonly single = new Uint32Array(2 * CMDQ_ENT_WORDS);
  /** Last CONS.ERR handled (CERROR_*), 0 if none yet. */
  lastError = 0;

  constructor(readonly smmu: Smmu, readonly cfg: CmdqConfig) {}

  private get qsize(): number { return 1 << this.smmu.cmdqLog2Size; }

  /** `arm_smmu_cmdq_build_sync_cmd` for a SYNC written at queue index `prod`. */
  buildSyncCmd(w: Uint32Array, off: number, prod: number): void {
    const e = resetCmdqEnt(this.syncEnt, OP.CMD_SYNC);
    if (this.cfg.msiPoll) e.msiaddr = this.cfg.baseDma + (prod & (this.qsize - 1)) * 16;
    buildCmd(w, off, e);
  }

  /**
   * `arm_smmu_cmdq_issue_cmdlist(smmu, cmds, n, sync)`: `cmds` must have room for n+1 commands
   * when `sync` (the CMD_SYNC is written at index n). Publishes with one CMDQ_PROD write and, like
   * the kernel waiting for CMD_SYNC completion, runs the GERROR handler if consumption stopped.
   */
  issueCmdlist(cmds: Uint32Array, n: number, sync: boolean): void {
    const smmu = this.smmu;
    const total = n + (sync ? 1 : 0);
    if (total > this.qsize) throw new RangeError(`command list of ${total} exceeds the queue (${this.qsize})`);
    // queue_has_space / poll_until_not_full: the model drains on every PROD write, so the queue
    // can only stay full while a command error blocks it — or while consumption is deferred
    // (fault skip-sync), where the SMMU makes progress while the driver polls.
    for (let guard = 0; smmu.cmdqSpace() < total; guard++) {
      smmu.consume();
      if (smmu.cmdqSpace() >= total) break;
      if (!this.handleGerror() || guard > this.qsize) throw new Error('CMDQ timeout: queue stuck');
    }
    if (sync) this.buildSyncCmd(cmds, n * CMDQ_ENT_WORDS, (smmu.cmdqProd + n) & ((2 << smmu.cmdqLog2Size) - 1));
    for (let i = 0; i < total; i++) this.commandsByOpcode[cmds[i * CMDQ_ENT_WORDS] & 0xff]++;
    this.stats[CmdqStat.SUBMISSIONS]++;
    this.stats[CmdqStat.COMMANDS] += total;
    if (sync) this.stats[CmdqStat.SYNCS]++;
    smmu.submit(cmds, 0, total);
    if (smmu.cmdqErrorActive) this.handleGerror();
  }

  /** `arm_smmu_cmdq_issue_cmd` / `_with_sync` for the command described by `ent`. */
  issueCmd(ent: CmdqEnt, sync: boolean): void {
    if (!buildCmd(this.single, 0, ent)) throw new RangeError(`ignoring unknown CMDQ opcode 0x${ent.opcode.toString(16)}`);
    this.issueCmdlist(this.single, 1, sync);
  }

  /** `arm_smmu_cmdq_batch_init` (the cmdq argument of 6.12+ is always the main queue here). */
  batchInit(b: CmdqBatch): CmdqBatch {
    b.num = 0;
    return b;
  }

  /** `arm_smmu_cmdq_batch_add` */
  batchAdd(b: CmdqBatch, ent: CmdqEnt): void {
    if (b.num === CMDQ_BATCH_ENTRIES - 1 && this.cfg.forceSync) {
      this.issueCmdlist(b.cmds, b.num, true);
      this.stats[CmdqStat.BATCH_FORCE_SYNC_FLUSHES]++;
      b.num = 0;
    }
    if (b.num === CMDQ_BATCH_ENTRIES) {
      this.issueCmdlist(b.cmds, b.num, false);
      this.stats[CmdqStat.BATCH_FULL_FLUSHES]++;
      b.num = 0;
    }
    if (!buildCmd(b.cmds, b.num * CMDQ_ENT_WORDS, ent)) return; // dev_warn("ignoring unknown CMDQ opcode")
    b.num++;
  }

  /** `arm_smmu_cmdq_batch_submit`: always ends with a CMD_SYNC. */
  batchSubmit(b: CmdqBatch): void {
    this.issueCmdlist(b.cmds, b.num, true);
    b.num = 0;
  }

  /**
   * `arm_smmu_gerror_handler` restricted to GERROR.CMDQ_ERR: `__arm_smmu_cmdq_skip_err` then
   * GERRORN := GERROR. Returns true if an error was handled.
   */
  handleGerror(): boolean {
    const smmu = this.smmu;
    let handled = false;
    for (let guard = 0; smmu.cmdqErrorActive && guard <= this.qsize; guard++) {
      handled = true;
      const cons = smmu.readReg(REG.CMDQ_CONS);
      const idx = getField(cons, CMDQ_CONS.ERR);
      this.lastError = idx;
      this.stats[CmdqStat.CERRORS]++;
      if (idx === CERROR.ABT || idx === CERROR.ATC_INV_SYNC || idx === CERROR.NONE) {
        this.stats[CmdqStat.RETRIED]++; // "retrying command fetch" / repeat the CMD_SYNC
      } else {
        // CERROR_ILL and unknown: convert the erroneous command into a CMD_SYNC.
        const off = (getField(cons, CMDQ_CONS.RD) & (this.qsize - 1)) * CMDQ_ENT_WORDS;
        buildCmd(smmu.ring, off, resetCmdqEnt(this.syncEnt, OP.CMD_SYNC));
        this.stats[CmdqStat.SKIPPED_ILLEGAL]++;
      }
      smmu.writeReg(REG.GERRORN, smmu.readReg(REG.GERROR));
    }
    return handled;
  }
}
