/**
 * `struct arm_smmu_device`: probe (`arm_smmu_device_hw_probe` + `arm_smmu_device_iidr_probe`) and
 * reset (`arm_smmu_device_reset`) of one hardware Smmu, through its registers and its real command
 * queue; plus the entry points of the domain, invalidation and SVA code.
 *
 * Versions followed: v6.6 probe/reset (read in full); FEAT_BTM as in the unmerged v7 13/24 patch
 * (read: `if (reg & IDR0_BTM && (!vhe || reg & IDR0_HYP))`, `CR2 = RECINVSID | E2H | PTM if
 * !BTM`), enabled only by the `btm` option — mainline never sets FEAT_BTM and always writes PTM.
 *
 * One ArmSmmuDriver per simulated system holds the module-global state (`arm_smmu_asid_xa`), so
 * every SMMU of the system shares the ASID space, as in Linux, while separate simulations stay
 * independent.
 *
 * No Node or DOM imports.
 */
import { CR0, CR2, IDR0, IDR1, IDR3, IDR5, REG, getField, setField } from '../../arch/registers.js';
import type { PageTable } from '../../hw/memory.js';
import type { Smmu } from '../../hw/smmu/smmu.js';
import type { FaultHooks } from '../../hw/fault-hooks.js';
import { OP } from '../../arch/commands.js';
import { ArmSmmuCmdq, resetCmdqEnt, type CmdqConfig } from './cmdq-batch.js';
import {
  ArmSmmuDomain, CD_TABLE_BASE, N_DEV_STATS, allocS1Domain, allocS2Domain, attachDomain, attachNested,
  detachDomain, freeDomain, type ArmSmmuMaster, type AsidOwner, type AttachOptions,
  type NestedAttachOptions, type S1DomainOptions, type S2DomainOptions, type SvaEra,
} from './domain.js';
import {
  FEAT, IIDR_IMPLEMENTER_ARM, IIDR_PRODUCTID_ARM_MMU_600, IIDR_PRODUCTID_ARM_MMU_700, OPT, iidrFields,
} from './features.js';
import { AsidXArray, DriverError, IdaVmidProvider, VmidIda, type VmidProvider } from './ids.js';
import { tlbInvAsid, tlbInvContext, tlbInvRangeDomain } from './invalidate.js';
import {
  allocSvaDomain, svaAttach, svaDetach, svaDomainFree, svaInvalidateSecondaryTlbs, svaMmRelease,
  type CpuAsidPinner,
} from './sva.js';

export type { CpuAsidPinner } from './sva.js';

/** `CMDQ_MAX_SZ_SHIFT` for 4 KiB pages (the hardware model's ring is at most 256 entries too). */
export const CMDQ_MAX_SZ_SHIFT = 8;
/** `STRTAB_SPLIT` */
export const STRTAB_SPLIT = 8;

export interface ArmSmmuDeviceOptions {
  /** The host CPUs run VHE (`cpus_have_cap(ARM64_HAS_VIRT_HOST_EXTN)`): FEAT_E2H with IDR0.HYP. */
  vhe?: boolean;
  /**
   * Model the v7 13/24 patch: FEAT_BTM when IDR0.BTM && (!vhe || IDR0.HYP), and CR2.PTM cleared.
   * Default false = mainline (FEAT_BTM never set, PTM always written).
   */
  btm?: boolean;
  /** SVA ASID era: 'shared' (v5.10–v6.10, CPU ASID, ASET=0) or 'private' (v6.11+). Default 'private'. */
  svaEra?: SvaEra;
  /** arm64_mm_context_get/put, needed by era 'shared'. */
  cpuAsidPinner?: CpuAsidPinner | null;
  /** Where stage-2 VMIDs come from (default: this SMMU's IDA over vmidRange). */
  vmidProvider?: VmidProvider<ArmSmmuDomain, ArmSmmuDevice>;
  /** Range of the default IDA provider (default [1, 2^vmid_bits − 1]). */
  vmidRange?: readonly [number, number];
  /** Firmware coherency (`of_dma_is_coherent` / IORT COHACC override). Default IDR0.COHACC. */
  coherent?: boolean;
  /** Module parameter `disable_msipolling`. */
  disableMsipolling?: boolean;
  /** OPT_SKIP_PREFETCH (hisilicon,broken-prefetch-cmd). */
  skipPrefetch?: boolean;
  /** Module parameter `disable_bypass` (default true: unattached streams abort). */
  disableBypass?: boolean;
  /** CPU ASID width (ID_AA64MMFR0_EL1.ASIDBits) for arm_smmu_sva_supported. Default 16. */
  cpuAsidBits?: number;
  /** Pseudo DMA address of the command queue (MSI polling address of CMD_SYNCs). */
  cmdqBaseDma?: number;
}

/**
 * The module-level state of drivers/iommu/arm/arm-smmu-v3: `arm_smmu_asid_xa` (shared by every
 * SMMU instance) and the domain id counter. Probe each SMMU of a system with the same driver.
 */
export class ArmSmmuDriver {
  readonly asidXa = new AsidXArray<AsidOwner>();
  readonly devices: ArmSmmuDevice[] = [];
  private lastDomainId = 0;

  nextDomainId(): number { return ++this.lastDomainId; }

  /** `arm_smmu_device_probe`: hw_probe then reset. */
  probe(smmu: Smmu, opts: ArmSmmuDeviceOptions = {}): ArmSmmuDevice {
    const dev = new ArmSmmuDevice(this, smmu, opts);
    dev.reset();
    return dev;
  }
}

export class ArmSmmuDevice {
  /** `smmu->features` (FEAT bits). */
  features = 0;
  /** `smmu->options` (OPT bits). */
  options = 0;
  asidBits = 8;
  vmidBits = 8;
  ssidBits = 0;
  sidBits = 0;
  /** `pgsize_bitmap` and log2 of its smallest page (the leaf size range invalidations use). */
  pgsizeBitmap = 0;
  pgsizeLog2 = 12;
  /** IIDR decode, for reports. */
  readonly iidr: ReturnType<typeof iidrFields>;
  /** `smmu->vmid_map` */
  readonly vmidMap = new VmidIda();
  vmidProvider: VmidProvider<ArmSmmuDomain, ArmSmmuDevice>;
  readonly svaEra: SvaEra;
  readonly cpuAsidPinner: CpuAsidPinner | null;
  readonly vhe: boolean;
  /** The driver's command queue (batches, CMD_SYNC building, error handling, counters). */
  readonly cmdq: ArmSmmuCmdq;
  /** `smmu->streams`: masters by StreamID. */
  readonly masters = new Map<number, ArmSmmuMaster>();
  /** Counters, indexed by DevStat. */
  readonly stats = new Float64Array(N_DEV_STATS);
  /** CR2 value the last reset wrote. */
  cr2Written = 0;
  /** Fault-injection hooks (src/hw/fault-hooks.ts); null in normal runs. */
  faults: FaultHooks | null = null;
  private lastCdKey: number;
  private readonly opts: ArmSmmuDeviceOptions;

  constructor(readonly driver: ArmSmmuDriver, readonly smmu: Smmu, opts: ArmSmmuDeviceOptions = {}) {
    this.opts = opts;
    this.vhe = opts.vhe ?? false;
    this.svaEra = opts.svaEra ?? 'private';
    this.cpuAsidPinner = opts.cpuAsidPinner ?? null;
    this.iidr = iidrFields(smmu.readReg(REG.IIDR));
    this.lastCdKey = CD_TABLE_BASE + smmu.id * 0x100000;
    this.hwProbe();
    this.vmidProvider = opts.vmidProvider ?? new IdaVmidProvider(this.vmidMap, this.vmidBits, opts.vmidRange);
    const cfg: CmdqConfig = {
      msiPoll: (this.options & OPT.MSIPOLL) !== 0,
      forceSync: (this.options & OPT.CMDQ_FORCE_SYNC) !== 0,
      baseDma: opts.cmdqBaseDma ?? 0x7000_0000 + smmu.id * 0x10_0000,
    };
    this.cmdq = new ArmSmmuCmdq(smmu, cfg);
    driver.devices.push(this);
  }

  has(feat: number): boolean { return (this.features & feat) === feat; }
  hasOption(opt: number): boolean { return (this.options & opt) === opt; }

  /** Commands the driver issued, by opcode (CMD_SYNC = 0x46). */
  get commandsByOpcode(): Float64Array { return this.cmdq.commandsByOpcode; }

  /** A fresh CD-table address (key of Smmu.cdTables). */
  allocCdKey(): number { return ++this.lastCdKey; }

  // ------------------------------------------------------------------ probe

  /** `arm_smmu_device_hw_probe` (+ `arm_smmu_device_iidr_probe`, `arm_smmu_sva_supported`). */
  private hwProbe(): void {
    const o = this.opts;
    const s = this.smmu;
    const idr0 = s.readReg(REG.IDR0);
    // Coherency as set by firmware, in preference to IDR0.COHACC.
    const coherent = o.coherent ?? getField(idr0, IDR0.COHACC) === 1;
    let f = coherent ? FEAT.COHERENCY : 0;
    let opt = o.skipPrefetch === true ? OPT.SKIP_PREFETCH : 0;

    if (getField(idr0, IDR0.ST_LEVEL) === 1) f |= FEAT.TWO_LVL_STRTAB;
    if (getField(idr0, IDR0.CD2L) === 1) f |= FEAT.TWO_LVL_CDTAB;
    switch (getField(idr0, IDR0.TTENDIAN)) {
      case 0: f |= FEAT.TT_LE | FEAT.TT_BE; break;
      case 2: f |= FEAT.TT_LE; break;
      default: throw new DriverError('ENXIO', 'unknown/unsupported TT endianness');
    }
    if (getField(idr0, IDR0.PRI) === 1) f |= FEAT.PRI;
    if (getField(idr0, IDR0.ATS) === 1) f |= FEAT.ATS;
    if (getField(idr0, IDR0.SEV) === 1) f |= FEAT.SEV;
    if (getField(idr0, IDR0.MSI) === 1) {
      f |= FEAT.MSI;
      if (coherent && o.disableMsipolling !== true) opt |= OPT.MSIPOLL;
    }
    const hyp = getField(idr0, IDR0.HYP) === 1;
    if (hyp) {
      f |= FEAT.HYP;
      if (this.vhe) f |= FEAT.E2H;
    }
    // v7 13/24 (never merged): an SMMU without HYP would tag entries NS-EL1 and miss the EL2-E2H
    // broadcasts of a VHE host, so BTM only if !vhe || HYP.
    if (o.btm === true && getField(idr0, IDR0.BTM) === 1 && (!this.vhe || hyp)) f |= FEAT.BTM;
    switch (getField(idr0, IDR0.STALL_MODEL)) {
      case 2: f |= FEAT.STALL_FORCE | FEAT.STALLS; break;
      case 0: f |= FEAT.STALLS; break;
      default: break;
    }
    if (getField(idr0, IDR0.S1P) === 1) f |= FEAT.TRANS_S1;
    if (getField(idr0, IDR0.S2P) === 1) f |= FEAT.TRANS_S2;
    if ((f & (FEAT.TRANS_S1 | FEAT.TRANS_S2)) === 0) throw new DriverError('ENXIO', 'no translation support!');
    const ttf = getField(idr0, IDR0.TTF);
    if (ttf !== 2 && ttf !== 3) throw new DriverError('ENXIO', 'AArch64 table format not supported!');
    this.asidBits = getField(idr0, IDR0.ASID16) === 1 ? 16 : 8;
    this.vmidBits = getField(idr0, IDR0.VMID16) === 1 ? 16 : 8;

    const idr1 = s.readReg(REG.IDR1);
    if (getField(idr1, IDR1.TABLES_PRESET) === 1 || getField(idr1, IDR1.QUEUES_PRESET) === 1 || getField(idr1, IDR1.REL) === 1) {
      throw new DriverError('ENXIO', 'embedded implementation not supported');
    }
    const cmdqShift = Math.min(CMDQ_MAX_SZ_SHIFT, getField(idr1, IDR1.CMDQS));
    if (cmdqShift <= 6) throw new DriverError('ENXIO', 'command queue size <= 64 entries not supported');
    this.ssidBits = getField(idr1, IDR1.SSIDSIZE);
    this.sidBits = getField(idr1, IDR1.SIDSIZE);
    if (this.sidBits <= STRTAB_SPLIT) f &= ~FEAT.TWO_LVL_STRTAB;

    const idr3 = s.readReg(REG.IDR3);
    if (getField(idr3, IDR3.RIL) === 1) f |= FEAT.RANGE_INV;

    const idr5 = s.readReg(REG.IDR5);
    let pg = 0;
    if (getField(idr5, IDR5.GRAN64K) === 1) pg += 2 ** 16 + 2 ** 29;
    if (getField(idr5, IDR5.GRAN16K) === 1) pg += 2 ** 14 + 2 ** 25;
    if (getField(idr5, IDR5.GRAN4K) === 1) pg += 2 ** 12 + 2 ** 21 + 2 ** 30;
    this.pgsizeBitmap = pg;
    this.pgsizeLog2 = getField(idr5, IDR5.GRAN4K) === 1 ? 12 : getField(idr5, IDR5.GRAN16K) === 1 ? 14 : 16;
    if (getField(idr5, IDR5.VAX) === 1) f |= FEAT.VAX;

    if ((f & FEAT.TRANS_S1) !== 0 && (f & FEAT.TRANS_S2) !== 0) f |= FEAT.NESTING;

    // arm_smmu_device_iidr_probe
    const id = this.iidr;
    if (id.implementer === IIDR_IMPLEMENTER_ARM) {
      if (id.productId === IIDR_PRODUCTID_ARM_MMU_600) {
        if (id.variant === 0 && id.revision <= 2) f &= ~FEAT.SEV; // erratum 1076982
        if (id.variant < 2) f &= ~FEAT.NESTING; // erratum 1209401
      } else if (id.productId === IIDR_PRODUCTID_ARM_MMU_700) {
        f &= ~FEAT.BTM; // erratum 2812531
        opt |= OPT.CMDQ_FORCE_SYNC;
        f &= ~FEAT.NESTING; // errata 2268618, 2812531
      }
    }

    // arm_smmu_sva_supported: coherent walks, PAGE_SIZE supported, asid_bits ≥ the CPU's.
    const cpuAsidBits = o.cpuAsidBits ?? 16;
    if ((f & FEAT.COHERENCY) !== 0 && getField(idr5, IDR5.GRAN4K) === 1 && this.asidBits >= cpuAsidBits) f |= FEAT.SVA;

    this.features = f;
    this.options = opt;
  }

  // ------------------------------------------------------------------ reset

  /**
   * `arm_smmu_device_reset`: disable (CR0 := 0), CR1, CR2 = RECINVSID | E2H (FEAT_E2H) | PTM
   * (unless FEAT_BTM), queue registers, CR0 := CMDQEN, then through the command queue
   * CMD_CFGI_ALL + SYNC, CMD_TLBI_EL2_ALL + SYNC (FEAT_HYP), CMD_TLBI_NSNH_ALL + SYNC; then
   * EVTQEN, PRIQEN (PRI), ATSCHK (ATS) and SMMUEN.
   */
  reset(): void {
    const s = this.smmu;
    // Clear CR0 and sync (disables SMMU and queue processing). (GBPA abort when it was enabled:
    // not modelled — the model's GBPA is not implemented.)
    s.writeReg(REG.CR0, 0);
    // CR1 (table and queue memory attributes): inner-shareable, write-back. Not modelled by Smmu.
    const CR1 = (3 << 10) | (1 << 8) | (1 << 6) | (3 << 4) | (1 << 2) | 1;
    s.writeReg(REG.CR1, CR1);
    // CR2 (random crap)
    let cr2 = setField(0, CR2.RECINVSID, 1);
    if (this.has(FEAT.E2H)) cr2 = setField(cr2, CR2.E2H, 1);
    if (!this.has(FEAT.BTM)) cr2 = setField(cr2, CR2.PTM, 1);
    s.writeReg(REG.CR2, cr2);
    this.cr2Written = cr2;
    // Stream table and command queue base registers: the model's tables are maps; PROD/CONS
    // keep their values (llq.prod/cons, 0 at first probe).
    s.writeReg(REG.CMDQ_PROD, s.cmdqProd);
    let enables = setField(0, CR0.CMDQEN, 1);
    s.writeReg(REG.CR0, enables);

    const q = this.cmdq;
    // Invalidate any cached configuration
    q.issueCmd(resetCmdqEnt(q.ent, OP.CMD_CFGI_ALL), true);
    // Invalidate any stale TLB entries
    if (this.has(FEAT.HYP)) q.issueCmd(resetCmdqEnt(q.ent, OP.CMD_TLBI_EL2_ALL), true);
    q.issueCmd(resetCmdqEnt(q.ent, OP.CMD_TLBI_NSNH_ALL), true);

    enables = setField(enables, CR0.EVENTQEN, 1);
    s.writeReg(REG.CR0, enables);
    if (this.has(FEAT.PRI)) {
      enables = setField(enables, CR0.PRIQEN, 1);
      s.writeReg(REG.CR0, enables);
    }
    if (this.has(FEAT.ATS)) {
      enables = setField(enables, CR0.ATSCHK, 1);
      s.writeReg(REG.CR0, enables);
    }
    // Enable the SMMU interface (disable_bypass, or firmware did not ask for bypass).
    enables = setField(enables, CR0.SMMUEN, 1);
    s.writeReg(REG.CR0, enables);
  }

  // ------------------------------------------------------------------ domains

  /** Stage-1 DMA/UNMANAGED domain with a private ASID (throws DriverError EBUSY when exhausted). */
  allocS1Domain(opts: S1DomainOptions = {}): ArmSmmuDomain { return allocS1Domain(this, opts); }

  /** Stage-2 domain; VMID from the provider (throws DriverError ENOSPC when none). */
  allocS2Domain(opts: S2DomainOptions = {}): ArmSmmuDomain { return allocS2Domain(this, opts); }

  /** SVA domain for `mm` (page table `mmTable`), in this device's era unless given. */
  allocSvaDomain(mm: number, mmTable: PageTable, era?: SvaEra): ArmSmmuDomain {
    return allocSvaDomain(this, mm, mmTable, era ?? this.svaEra);
  }

  /** Attach to the RID of `sid`, or to `opts.ssid` (SVA domains: a PASID, required). */
  attach(domain: ArmSmmuDomain, sid: number, opts: AttachOptions = {}): void {
    if (domain.kind === 'sva') {
      svaAttach(this, domain, sid, { ...opts, ssid: opts.ssid ?? 0 });
      return;
    }
    attachDomain(this, domain, sid, opts);
  }

  /** Nested domain (guest CD table) under the nesting parent `parent`, attached to `sid`. */
  attachNested(parent: ArmSmmuDomain, sid: number, opts: NestedAttachOptions): ArmSmmuDomain {
    return attachNested(this, parent, sid, opts);
  }

  /** Detach the RID of `sid` (abort STE) or one of its PASIDs. Returns the detached domain. */
  detach(sid: number, ssid = 0): ArmSmmuDomain | null {
    const m = this.masters.get(sid);
    if (m !== undefined && ssid !== 0) {
      const d = m.pasids.get(ssid);
      if (d !== undefined && d.kind === 'sva') {
        svaDetach(this, d, sid, ssid);
        return d;
      }
    }
    return detachDomain(this, sid, ssid);
  }

  /** Free a domain with nothing attached (TLBI + SYNC as the driver does; IDs released). */
  freeDomain(domain: ArmSmmuDomain): void {
    if (domain.smmu !== this) throw new DriverError('EINVAL', `${domain} belongs to another SMMU`);
    if (domain.kind === 'sva') svaDomainFree(this, domain);
    else freeDomain(this, domain);
  }

  // ------------------------------------------------------------------ invalidation

  /** `arm_smmu_tlb_inv_context` (flush_iotlb_all). */
  tlbInvContext(domain: ArmSmmuDomain): void { tlbInvContext(this, domain); }

  /** `arm_smmu_tlb_inv_range_domain(iova, size, granule, leaf)` (bytes). */
  tlbInvRangeDomain(domain: ArmSmmuDomain, iova: number, size: number, granule: number, leaf: boolean): void {
    tlbInvRangeDomain(this, domain, iova, size, granule, leaf);
  }

  /** `arm_smmu_tlb_inv_asid` */
  tlbInvAsid(asid: number): void { tlbInvAsid(this, asid); }

  /** `arm_smmu_mm_arch_invalidate_secondary_tlbs` for an SVA domain ([start, end) bytes). */
  svaInvalidateSecondaryTlbs(domain: ArmSmmuDomain, start: number, end: number): void {
    svaInvalidateSecondaryTlbs(this, domain, start, end);
  }

  /** `arm_smmu_mm_release` */
  svaMmRelease(domain: ArmSmmuDomain): void { svaMmRelease(this, domain); }
}
