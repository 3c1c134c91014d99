/**
 * `struct arm_smmu_domain` and its life cycle: allocation/finalise (ASID from the shared XArray,
 * VMID from the pluggable provider), attach/detach of masters (STE and CD writes followed by the
 * CFGI + CMD_SYNC the driver issues), nested attach under an iommufd nesting parent, and free
 * (with the TLBI the driver issues when a domain goes away).
 *
 * Structure followed: v6.8 – v6.13 (per-master CD tables, domain finalised at allocation by
 * `arm_smmu_domain_alloc_paging`, `arm_smmu_attach_prepare/commit`); command sequences are those
 * of v6.6, read in full, which v6.8+ keep except for the STE/CD "hitless" writer (see writeSte).
 *
 * No Node or DOM imports.
 */
import { OP } from '../../arch/commands.js';
import { tableBase, type PageTable } from '../../hw/memory.js';
import { EATS, STE_CONFIG, STRW, newCd, newSte, type Cd, type Ste } from '../../hw/smmu/structures.js';
import { resetCmdqEnt } from './cmdq-batch.js';
import type { ArmSmmuDevice } from './device.js';
import { FEAT, OPT } from './features.js';
import { DriverError } from './ids.js';
import { FaultHook } from '../../hw/fault-hooks.js';
import { atcInvMaster, tlbInvAsid, tlbInvContext } from './invalidate.js';

/** `ARM_SMMU_DOMAIN_S1` / `ARM_SMMU_DOMAIN_S2` (the stage selects the invalidation commands). */
export type DomainStage = 'S1' | 'S2';
/**
 * s1: DMA-API / UNMANAGED paging domain with a private ASID (CD.ASET=1).
 * s2: stage-2 paging domain (VFIO type1 / iommufd HWPT), optionally an iommufd nesting parent.
 * sva: IOMMU_DOMAIN_SVA, bound to an mm at a PASID.
 * nested: IOMMU_DOMAIN_NESTED (v6.13): the guest's CD table under an S2 nesting parent.
 */
export type DomainKind = 's1' | 's2' | 'sva' | 'nested';
/** v5.10–v6.10: SVA shares the CPU's pinned ASID; v6.11+: SVA gets a private ASID. */
export type SvaEra = 'shared' | 'private';

/** STE.S1DSS values (`STRTAB_STE_1_S1DSS_*`). */
export const S1DSS = { TERMINATE: 0, BYPASS: 1, SSID0: 2 } as const;
/** `IOMMU_NO_PASID` */
export const IOMMU_NO_PASID = 0;
/** Base of the default translation-context ids given to SMMU domain page tables. */
export const DOMAIN_CTX_BASE = 1 << 20;
/** Pseudo addresses of CD tables (STE.S1ContextPtr keys of Smmu.cdTables). */
export const CD_TABLE_BASE = 0x4000;

/**
 * v5.10–v6.10 `struct arm_smmu_ctx_desc` of an SVA bond: the CPU's ASID, shared by every device
 * bound to the mm (refcounted), held in arm_smmu_asid_xa.
 */
export class SharedCd {
  refs = 1;
  constructor(public asid: number, readonly mm: number, readonly table: PageTable) {}
}

/** What arm_smmu_asid_xa holds. */
export type AsidOwner = ArmSmmuDomain | SharedCd;

/** `struct arm_smmu_master` with one stream (the model's device = one StreamID). */
export interface ArmSmmuMaster {
  readonly sid: number;
  /** `master->ssid_bits` (PASID width; 0 = no PASID support). */
  ssidBits: number;
  /** The endpoint supports ATS (PCIe ATS capability and firmware ATS support). */
  atsSupported: boolean;
  /** `master->ats_enabled` */
  atsEnabled: boolean;
  /** The domain attached to the RID (SSID 0), or null (blocked: abort STE). */
  domain: ArmSmmuDomain | null;
  /** Domains attached at PASIDs. */
  readonly pasids: Map<number, ArmSmmuDomain>;
  /** CD table (`master->cd_table`): key in Smmu.cdTables, or -1 when not allocated. */
  cdKey: number;
  cds: Cd[] | null;
  /** The STE currently points at the CD table (`cd_table.in_ste`). */
  cdTableInSte: boolean;
}

/** `struct arm_smmu_master_domain`: one (master, SSID) on a domain's devices list. */
export interface MasterDomain {
  readonly master: ArmSmmuMaster;
  readonly ssid: number;
  /** v6.13: a nested master on its S2 parent — any S2 change flushes its whole ATC. */
  readonly nestedAtsFlush: boolean;
  /** The domain the master is attached to (the nested domain for entries on a nesting parent). */
  readonly via: ArmSmmuDomain;
}

export interface DomainInit {
  kind: DomainKind;
  stage: DomainStage;
  table: PageTable | null;
}

export class ArmSmmuDomain {
  readonly id: number;
  readonly kind: DomainKind;
  readonly stage: DomainStage;
  /** `smmu_domain->smmu` */
  readonly smmu: ArmSmmuDevice;
  /** `cd.asid` (S1, SVA); 0 when none. */
  asid = 0;
  /** `s2_cfg.vmid` (S2, nested: the parent's); 0 when none. */
  vmid = 0;
  /** TTB0 (S1: the domain's io-pgtable; SVA: the mm's page table) or S2TTB. */
  table: PageTable | null;
  /** iommufd IOMMU_HWPT_ALLOC_NEST_PARENT */
  nestParent = false;
  /** The VM this stage-2 domain serves, when known (VFIO / iommufd assignment). */
  vmId: number | undefined = undefined;
  /** log2 of the smallest page size of `domain->pgsize_bitmap` (the range-invalidation TG). */
  pgsizeLog2 = 12;
  /** `smmu_domain->devices` */
  readonly devices: MasterDomain[] = [];
  /** `nr_ats_masters` */
  nrAtsMasters = 0;
  /** SVA: the mm (CPU address space id of the process). */
  mm = -1;
  /** SVA: era the domain follows. */
  era: SvaEra = 'private';
  /** SVA, era 'shared': the shared CPU-ASID context descriptor, while bound. */
  sharedCd: SharedCd | null = null;
  /** SVA: arm_smmu_mm_release ran (CDs quiesced, TLB/ATC flushed). */
  cleared = false;
  /** nested: the S2 nesting parent, the guest CD table key and its S1CDMax/S1DSS. */
  parent: ArmSmmuDomain | null = null;
  guestCdKey = -1;
  guestCds: Cd[] | null = null;
  guestS1CdMax = 0;
  guestS1Dss = 0;
  /** guest vSTE kind: translate through the guest CD table, or stage-2 only (vSTE bypass). */
  guestConfig: 'translate' | 'bypass' = 'translate';
  freed = false;

  constructor(smmu: ArmSmmuDevice, init: DomainInit) {
    this.smmu = smmu;
    this.kind = init.kind;
    this.stage = init.stage;
    this.table = init.table;
    this.id = smmu.driver.nextDomainId();
  }

  /** The ASID used on the wire: the shared CD's while bound (era 'shared'), else the domain's. */
  get effectiveAsid(): number {
    return this.sharedCd !== null ? this.sharedCd.asid : this.asid;
  }

  /** The domain whose table and VMID TLB invalidation addresses: a nested domain's S2 parent, else itself. */
  get invalidationDomain(): ArmSmmuDomain {
    return this.kind === 'nested' && this.parent !== null ? this.parent : this;
  }

  toString(): string {
    const id = this.stage === 'S1' ? `asid ${this.effectiveAsid}` : `vmid ${this.vmid}`;
    return `${this.kind}#${this.id}(${id}${this.nestParent ? ', nest parent' : ''})`;
  }
}

/** Counter indexes of ArmSmmuDevice.stats. */
export const DevStat = {
  DOMAINS_ALLOCATED: 0,
  DOMAINS_FREED: 1,
  /** xa_alloc failed (S1/SVA ASID exhausted). */
  ASID_ALLOC_FAILURES: 2,
  /** The VMID provider returned -1 (-ENOSPC). */
  VMID_ALLOC_FAILURES: 3,
  /** arm_smmu_share_asid moved a private domain to a new ASID. */
  ASID_SEIZURES: 4,
  /** arm64_mm_context_get returned 0 (-ESRCH: pinned-ASID limit). */
  PIN_FAILURES: 5,
  STE_WRITES: 6,
  CD_WRITES: 7,
  ATTACHES: 8,
  DETACHES: 9,
} as const;
export const N_DEV_STATS = 10;

// ---------------------------------------------------------------------------------------------
// STE / CD writes

/**
 * `arm_smmu_write_ste` + `arm_smmu_install_ste_for_dev`: store the new STE, then
 * CMD_CFGI_STE(sid, leaf=1) + CMD_SYNC, then CMD_PREFETCH_CONFIG(sid) (no sync) unless
 * OPT_SKIP_PREFETCH. Simplification: v6.8+'s `arm_smmu_write_entry` issues one to three
 * CFGI_STE + SYNC rounds depending on which 64-bit words change (two for abort ↔ translate);
 * the model issues exactly one round (v6.6 issued two for attach, one for detach).
 */
export function writeSte(dev: ArmSmmuDevice, sid: number, ste: Ste): void {
  dev.smmu.streamTable.set(sid, ste);
  dev.stats[DevStat.STE_WRITES]++;
  const q = dev.cmdq;
  const e = resetCmdqEnt(q.ent, OP.CMD_CFGI_STE);
  e.sid = sid; e.leaf = 1;
  q.issueCmd(e, true);
  if ((dev.options & OPT.SKIP_PREFETCH) === 0) {
    const p = resetCmdqEnt(q.ent, OP.CMD_PREFETCH_CONFIG);
    p.sid = sid;
    q.issueCmd(p, false);
  }
}

/**
 * `arm_smmu_write_cd_entry` + `arm_smmu_sync_cd(master, ssid, leaf=true)`: store the CD (null =
 * clear), then a batch of CMD_CFGI_CD(sid, ssid, leaf) over the master's streams + CMD_SYNC.
 * Same simplification as writeSte (one round).
 */
export function writeCd(dev: ArmSmmuDevice, master: ArmSmmuMaster, ssid: number, cd: Cd | null): void {
  const cds = ensureCdTable(dev, master);
  if (cd === null) delete cds[ssid];
  else cds[ssid] = cd;
  dev.stats[DevStat.CD_WRITES]++;
  syncCd(dev, master, ssid);
}

/** `arm_smmu_sync_cd` */
export function syncCd(dev: ArmSmmuDevice, master: ArmSmmuMaster, ssid: number): void {
  const q = dev.cmdq;
  const b = q.batchInit(q.batch);
  const e = resetCmdqEnt(q.ent, OP.CMD_CFGI_CD);
  e.ssid = ssid; e.leaf = 1; e.sid = master.sid;
  q.batchAdd(b, e);
  q.batchSubmit(b);
}

/** `arm_smmu_alloc_cd_tables` (linear table; no commands). */
export function ensureCdTable(dev: ArmSmmuDevice, master: ArmSmmuMaster): Cd[] {
  if (master.cds === null) {
    master.cdKey = dev.allocCdKey();
    master.cds = [];
    dev.smmu.cdTables.set(master.cdKey, master.cds);
  }
  return master.cds;
}

/** `arm_smmu_make_s1_cd`: private ASID, ASET=1, TTB0 = the domain's table, 4K granule. */
export function makeS1Cd(domain: ArmSmmuDomain): Cd {
  return newCd({ V: true, ASID: domain.asid, ASET: 1, TTB0: tableBase(domain.table!.id), TG0: 0 });
}

/** `arm_smmu_make_cdtable_ste` */
export function makeCdTableSte(dev: ArmSmmuDevice, master: ArmSmmuMaster, s1dss: number, ats: boolean): Ste {
  // Fault vhe-strw-el1: on a VHE host the driver must use StreamWorld EL2 (CR2.E2H=1) so that
  // the host's EL2&0 broadcasts — and its own CMD_TLBI_EL2_* — match the SVA entries (arch.md
  // §3.3 "SVA with VHE host"; the v7 patch's `!vhe || IDR0.HYP` condition). With STRW=EL1 the
  // entries are tagged NS-EL1 and every invalidation of the mm misses them.
  const el2 = dev.has(FEAT.E2H) && !(dev.faults !== null && dev.faults.fire(FaultHook.VHE_STRW_EL1));
  return newSte({
    V: true, Config: STE_CONFIG.S1_TRANS, S1ContextPtr: master.cdKey, S1CDMax: master.ssidBits,
    S1DSS: master.ssidBits > 0 ? s1dss : 0,
    STRW: el2 ? STRW.EL2 : STRW.EL1,
    EATS: ats ? EATS.TRANS : EATS.ABT, S2VMID: 0,
  });
}

/** `arm_smmu_make_s2_domain_ste` */
export function makeS2DomainSte(domain: ArmSmmuDomain, ats: boolean): Ste {
  return newSte({
    V: true, Config: STE_CONFIG.S2_TRANS, S2VMID: domain.vmid, S2TTB: tableBase(domain.table!.id),
    S2TG: 0, EATS: ats ? EATS.TRANS : EATS.ABT,
  });
}

/** `arm_smmu_make_abort_ste` (disable_bypass, the default) */
export function makeAbortSte(): Ste {
  return newSte({ V: true, Config: STE_CONFIG.ABORT });
}

// ---------------------------------------------------------------------------------------------
// Allocation (arm_smmu_domain_alloc_paging → arm_smmu_domain_finalise)

export interface S1DomainOptions {
  /** Page table to use as TTB0 (default: a new table in the SMMU's Memory). */
  table?: PageTable;
  /** Translation context recorded in TLB entries (default DOMAIN_CTX_BASE + domain id). */
  ctx?: number;
}

/**
 * `arm_smmu_domain_finalise_s1`: xa_alloc a private ASID in [1, 2^asid_bits − 1] from the XArray
 * shared by all SMMUs. xa_alloc fails with -EBUSY when the limit is full (the SVA seize path maps
 * the same failure to -ENOSPC).
 */
export function allocS1Domain(dev: ArmSmmuDevice, opts: S1DomainOptions = {}): ArmSmmuDomain {
  if (!dev.has(FEAT.TRANS_S1)) throw new DriverError('EOPNOTSUPP', 'stage 1 not supported by this SMMU');
  const d = new ArmSmmuDomain(dev, { kind: 's1', stage: 'S1', table: null });
  const asid = dev.driver.asidXa.alloc(d, dev.asidBits);
  if (asid < 0) {
    dev.stats[DevStat.ASID_ALLOC_FAILURES]++;
    throw new DriverError('EBUSY', `no free ASID in [1, ${(1 << dev.asidBits) - 1}] (arm_smmu_asid_xa)`);
  }
  d.asid = asid;
  d.pgsizeLog2 = dev.pgsizeLog2;
  d.table = opts.table ?? dev.smmu.memory.newTable(opts.ctx ?? DOMAIN_CTX_BASE + d.id, `smmu${dev.smmu.id} S1 domain ${d.id}`);
  dev.stats[DevStat.DOMAINS_ALLOCATED]++;
  return d;
}

export interface S2DomainOptions {
  /** The stage-2 table: the VM's KVM table (shared) or a private one — the policy decides. */
  table?: PageTable;
  ctx?: number;
  /** iommufd IOMMU_HWPT_ALLOC_NEST_PARENT */
  nestParent?: boolean;
  /** The VM, passed to the VMID provider. */
  vmId?: number;
  /** Ask the provider for this exact VMID (same VMID for a VM on several SMMUs). */
  wantVmid?: number;
}

/**
 * `arm_smmu_domain_finalise_s2`: the VMID from the provider (default `ida_alloc_range(&vmid_map,
 * 1, 2^vmid_bits − 1)`); -1 → -ENOSPC, counted in VMID_ALLOC_FAILURES.
 */
export function allocS2Domain(dev: ArmSmmuDevice, opts: S2DomainOptions = {}): ArmSmmuDomain {
  if (!dev.has(FEAT.TRANS_S2)) throw new DriverError('EOPNOTSUPP', 'stage 2 not supported by this SMMU');
  if (opts.nestParent === true && !dev.has(FEAT.NESTING)) {
    throw new DriverError('EOPNOTSUPP', 'nesting not supported (FEAT_NESTING clear)');
  }
  const d = new ArmSmmuDomain(dev, { kind: 's2', stage: 'S2', table: null });
  d.nestParent = opts.nestParent === true;
  d.vmId = opts.vmId;
  const vmid = dev.vmidProvider.alloc(d, {
    device: dev, vmId: opts.vmId, nestParent: d.nestParent, want: opts.wantVmid, domain: d,
  });
  if (vmid < 0) {
    dev.stats[DevStat.VMID_ALLOC_FAILURES]++;
    throw new DriverError('ENOSPC', `no free VMID for a stage-2 domain on smmu${dev.smmu.id}` +
      (opts.wantVmid !== undefined ? ` (wanted ${opts.wantVmid})` : ''));
  }
  d.vmid = vmid;
  d.pgsizeLog2 = dev.pgsizeLog2;
  d.table = opts.table ?? dev.smmu.memory.newTable(opts.ctx ?? DOMAIN_CTX_BASE + d.id, `smmu${dev.smmu.id} S2 domain ${d.id}`);
  dev.stats[DevStat.DOMAINS_ALLOCATED]++;
  return d;
}

// ---------------------------------------------------------------------------------------------
// Masters and attach / detach

export interface AttachOptions {
  /** PASID to attach at (0 / undefined = the RID). */
  ssid?: number;
  /** The endpoint supports ATS (first attach of the master fixes it). */
  ats?: boolean;
  /** PASID width of the master (first attach fixes it; clamped to the SMMU's SSIDSIZE). */
  ssidBits?: number;
}

export function getMaster(dev: ArmSmmuDevice, sid: number, opts: AttachOptions = {}): ArmSmmuMaster {
  let m = dev.masters.get(sid);
  if (m === undefined) {
    m = {
      sid, ssidBits: Math.min(opts.ssidBits ?? 0, dev.ssidBits), atsSupported: opts.ats === true,
      atsEnabled: false, domain: null, pasids: new Map(), cdKey: -1, cds: null, cdTableInSte: false,
    };
    dev.masters.set(sid, m);
  } else {
    if (opts.ats !== undefined) m.atsSupported = opts.ats;
    if (opts.ssidBits !== undefined && m.cds === null) m.ssidBits = Math.min(opts.ssidBits, dev.ssidBits);
  }
  return m;
}

function removeMasterDomain(domain: ArmSmmuDomain, master: ArmSmmuMaster, ssid: number): void {
  const i = domain.devices.findIndex((md) => md.master === master && md.ssid === ssid);
  if (i >= 0) {
    const md = domain.devices[i];
    domain.devices.splice(i, 1);
    if (master.atsEnabled || md.nestedAtsFlush) domain.nrAtsMasters = Math.max(0, domain.nrAtsMasters - 1);
  }
}

/** The domain whose devices list carries the master's RID entry (the parent for nested). */
function listDomainOf(d: ArmSmmuDomain): ArmSmmuDomain {
  return d.kind === 'nested' ? d.parent! : d;
}

/**
 * v6.10 `arm_smmu_attach_commit` ATS handling, after the STE write: enabling → ATC invalidate-all
 * of the master; staying on → ATC invalidate of the master; switching off → ATC invalidate-all.
 */
function commitAts(dev: ArmSmmuDevice, master: ArmSmmuMaster, newAts: boolean): void {
  if (newAts || master.atsEnabled) atcInvMaster(dev, master, IOMMU_NO_PASID);
  master.atsEnabled = newAts;
}

/**
 * Attach `domain` to the RID of `sid` (arm_smmu_attach_dev) or, with `opts.ssid`, to a PASID
 * (arm_smmu_set_pasid / SVA set_dev_pasid). SVA domains go through sva.ts (svaAttach).
 */
export function attachDomain(dev: ArmSmmuDevice, domain: ArmSmmuDomain, sid: number, opts: AttachOptions = {}): void {
  if (domain.freed) throw new DriverError('EINVAL', `${domain} was freed`);
  if (domain.smmu !== dev) throw new DriverError('EINVAL', `${domain} belongs to smmu${domain.smmu.smmu.id}`);
  const master = getMaster(dev, sid, opts);
  const ssid = opts.ssid ?? IOMMU_NO_PASID;
  if (ssid !== IOMMU_NO_PASID) {
    attachPasid(dev, master, domain, ssid);
    return;
  }
  if (domain.kind === 'sva') throw new DriverError('EINVAL', 'an SVA domain attaches at a PASID');
  if (domain.kind === 'nested') throw new DriverError('EINVAL', 'use attachNested for nested domains');
  if (master.pasids.size > 0 && domain.stage !== 'S1') {
    throw new DriverError('EBUSY', `sid ${sid} has PASIDs attached; the RID must stay a CD-table STE`);
  }
  const old = master.domain;
  if (old === domain) return;
  const ats = dev.has(FEAT.ATS) && master.atsSupported;
  if (domain.kind === 's1') {
    // CD 0, then the CD-table STE (S1DSS=SSID0 when substreams are on).
    ensureCdTable(dev, master);
    writeCd(dev, master, IOMMU_NO_PASID, makeS1Cd(domain));
    writeSte(dev, sid, makeCdTableSte(dev, master, S1DSS.SSID0, ats));
    master.cdTableInSte = true;
  } else {
    writeSte(dev, sid, makeS2DomainSte(domain, ats));
    master.cdTableInSte = false;
  }
  if (old !== null) removeMasterDomain(listDomainOf(old), master, IOMMU_NO_PASID);
  master.domain = domain;
  commitAts(dev, master, ats);
  domain.devices.push({ master, ssid: IOMMU_NO_PASID, nestedAtsFlush: false, via: domain });
  if (ats) domain.nrAtsMasters++;
  dev.stats[DevStat.ATTACHES]++;
}

function attachPasid(dev: ArmSmmuDevice, master: ArmSmmuMaster, domain: ArmSmmuDomain, ssid: number): void {
  if (domain.stage !== 'S1') throw new DriverError('EINVAL', 'only stage-1 / SVA domains attach at a PASID');
  if (master.ssidBits === 0 || ssid >= 2 ** master.ssidBits) {
    throw new DriverError('EINVAL', `sid ${master.sid}: SSID ${ssid} outside the master's ${master.ssidBits} PASID bits`);
  }
  const rid = master.domain;
  if (rid !== null && rid.stage !== 'S1') {
    throw new DriverError('EINVAL', `sid ${master.sid}: RID attached to a ${rid.kind} domain (no CD table in the STE)`);
  }
  if (master.pasids.has(ssid)) throw new DriverError('EBUSY', `sid ${master.sid}: PASID ${ssid} in use`);
  const cd = domain.kind === 'sva' ? makeSvaCd(domain) : makeS1Cd(domain);
  writeCd(dev, master, ssid, cd);
  if (!master.cdTableInSte) {
    // v6.10 arm_smmu_set_pasid on a blocked RID: install the CD table with S1DSS=TERMINATE; the
    // PASID needs ATS, so attach_prepare enables it when the master supports it.
    const ats = dev.has(FEAT.ATS) && master.atsSupported;
    writeSte(dev, master.sid, makeCdTableSte(dev, master, S1DSS.TERMINATE, ats));
    master.cdTableInSte = true;
    commitAts(dev, master, ats);
  }
  master.pasids.set(ssid, domain);
  domain.devices.push({ master, ssid, nestedAtsFlush: false, via: domain });
  if (master.atsEnabled) domain.nrAtsMasters++;
  dev.stats[DevStat.ATTACHES]++;
}

/** CD of an SVA bond: era 'shared' → CPU ASID, ASET=0 (v5.10–6.10); 'private' → own ASID, ASET=1. */
export function makeSvaCd(domain: ArmSmmuDomain): Cd {
  const shared = domain.era === 'shared';
  return newCd({
    V: true, ASID: domain.effectiveAsid, ASET: shared ? 0 : 1, TTB0: tableBase(domain.table!.id), TG0: 0,
  });
}

export interface NestedAttachOptions {
  /** The guest's CD table (guest memory; its TTB0s are guest stage-1 tables producing IPAs). */
  cds: Cd[];
  /** vSTE S1CDMax (log2 entries). */
  s1CdMax?: number;
  /** vSTE S1DSS. */
  s1Dss?: number;
  /** vSTE Config: translate (S1 through the guest CDs) or bypass (stage 2 only). */
  guestConfig?: 'translate' | 'bypass';
  /** The endpoint supports ATS and the vSTE enables it. */
  ats?: boolean;
}

/**
 * v6.13 iommufd nesting: IOMMU_DOMAIN_NESTED allocated on the vIOMMU of `parent` (whose VMID the
 * vIOMMU copies), attached to `sid`: `arm_smmu_make_nested_domain_ste` — Config=NESTED (S1+S2)
 * with the guest's CD table pointer/S1CDMax/S1DSS and the parent's S2 fields and VMID; the
 * master is threaded on the parent's devices list with nested_ats_flush.
 */
export function attachNested(dev: ArmSmmuDevice, parent: ArmSmmuDomain, sid: number, opts: NestedAttachOptions): ArmSmmuDomain {
  if (parent.kind !== 's2' || !parent.nestParent) throw new DriverError('EINVAL', `${parent} is not a nesting parent`);
  if (parent.smmu !== dev || parent.freed) throw new DriverError('EINVAL', `${parent} not usable on smmu${dev.smmu.id}`);
  const master = getMaster(dev, sid, { ats: opts.ats });
  if (master.pasids.size > 0) throw new DriverError('EBUSY', `sid ${sid} has PASIDs attached`);
  const nd = new ArmSmmuDomain(dev, { kind: 'nested', stage: 'S2', table: parent.table });
  nd.parent = parent;
  nd.vmid = parent.vmid;
  nd.vmId = parent.vmId;
  nd.guestConfig = opts.guestConfig ?? 'translate';
  nd.guestCds = opts.cds;
  nd.guestS1CdMax = opts.s1CdMax ?? 0;
  nd.guestS1Dss = opts.s1Dss ?? 0;
  nd.guestCdKey = dev.allocCdKey();
  dev.smmu.cdTables.set(nd.guestCdKey, opts.cds);
  dev.stats[DevStat.DOMAINS_ALLOCATED]++;
  const ats = dev.has(FEAT.ATS) && master.atsSupported;
  const ste = makeS2DomainSte(parent, ats);
  if (nd.guestConfig === 'translate') {
    ste.Config = STE_CONFIG.NESTED;
    ste.S1ContextPtr = nd.guestCdKey;
    ste.S1CDMax = nd.guestS1CdMax;
    ste.S1DSS = nd.guestS1Dss;
  }
  writeSte(dev, sid, ste);
  master.cdTableInSte = false;
  const old = master.domain;
  if (old !== null) removeMasterDomain(listDomainOf(old), master, IOMMU_NO_PASID);
  master.domain = nd;
  commitAts(dev, master, ats);
  parent.devices.push({ master, ssid: IOMMU_NO_PASID, nestedAtsFlush: ats, via: nd });
  nd.devices.push({ master, ssid: IOMMU_NO_PASID, nestedAtsFlush: ats, via: nd });
  if (ats) parent.nrAtsMasters++;
  dev.stats[DevStat.ATTACHES]++;
  return nd;
}

/**
 * Detach the RID of `sid` (attach the blocking domain: abort STE, then ATS off → ATC
 * invalidate-all) or, with `ssid`, a PASID (clear the CD + CFGI_CD, ATC invalidate of that PASID
 * for ATS masters — v6.10 arm_smmu_remove_dev_pasid). SVA PASIDs go through sva.ts (svaDetach).
 * Returns the domain that was attached.
 */
export function detachDomain(dev: ArmSmmuDevice, sid: number, ssid: number = IOMMU_NO_PASID): ArmSmmuDomain | null {
  const master = dev.masters.get(sid);
  if (master === undefined) return null;
  if (ssid !== IOMMU_NO_PASID) {
    const d = master.pasids.get(ssid);
    if (d === undefined) return null;
    removePasid(dev, master, ssid, true);
    downgradeCdTableSte(dev, master);
    return d;
  }
  const d = master.domain;
  if (d === null) return null;
  if (master.pasids.size > 0) throw new DriverError('EBUSY', `sid ${sid}: detach its PASIDs first`);
  writeSte(dev, sid, makeAbortSte());
  master.cdTableInSte = false;
  removeMasterDomain(listDomainOf(d), master, IOMMU_NO_PASID);
  if (d.kind === 'nested') removeMasterDomain(d, master, IOMMU_NO_PASID);
  master.domain = null;
  commitAts(dev, master, false);
  dev.stats[DevStat.DETACHES]++;
  return d;
}

/**
 * v6.10 `arm_smmu_remove_dev_pasid` body: clear the CD (+CFGI_CD + SYNC), with `atc` an ATC
 * invalidation of that PASID for an ATS master, and take the master off the domain's list.
 */
export function removePasid(dev: ArmSmmuDevice, master: ArmSmmuMaster, ssid: number, atc: boolean): ArmSmmuDomain | null {
  const d = master.pasids.get(ssid);
  if (d === undefined) return null;
  writeCd(dev, master, ssid, null);
  if (atc && master.atsEnabled) atcInvMaster(dev, master, ssid);
  master.pasids.delete(ssid);
  removeMasterDomain(d, master, ssid);
  dev.stats[DevStat.DETACHES]++;
  return d;
}

/**
 * v6.10: "When the last user of the CD table goes away downgrade the STE back to a non-cd_table
 * one" — with the RID blocked, re-attach the blocking domain (abort STE, ATS off).
 */
export function downgradeCdTableSte(dev: ArmSmmuDevice, master: ArmSmmuMaster): void {
  if (master.pasids.size > 0 || master.domain !== null || !master.cdTableInSte) return;
  writeSte(dev, master.sid, makeAbortSte());
  master.cdTableInSte = false;
  commitAts(dev, master, false);
}

/**
 * Free a domain with no devices attached (-EBUSY otherwise), issuing what the driver issues:
 *  - s1 (`arm_smmu_domain_free[_paging]`): free_io_pgtable_ops → tlb_flush_all =
 *    arm_smmu_tlb_inv_context → TLBI_NH_ASID / TLBI_EL2_ASID + SYNC (ATC: no ATS master left),
 *    then xa_erase(asid);
 *  - s2: the same flush → TLBI_S12_VMALL(vmid) + SYNC, then the VMID back to the provider
 *    (ida_free), also for nesting parents (mainline v6.13);
 *  - nested: nothing to invalidate (kfree);
 *  - sva: see sva.ts (svaDomainFree).
 */
export function freeDomain(dev: ArmSmmuDevice, d: ArmSmmuDomain): void {
  if (d.freed) return;
  if (d.devices.length > 0) throw new DriverError('EBUSY', `${d} still has ${d.devices.length} device(s) attached`);
  switch (d.kind) {
    case 's1':
      tlbInvContext(dev, d);
      dev.driver.asidXa.erase(d.asid);
      break;
    case 's2':
      // Fault vmid-reuse-no-inval: the VMID goes back to the IDA without CMD_TLBI_S12_VMALL, so
      // the next domain given the VMID hits this one's entries (cross-VM aliasing).
      if (!(dev.faults !== null && dev.faults.fire(FaultHook.VMID_REUSE_NO_INVAL))) tlbInvContext(dev, d);
      if (d.vmid !== 0) dev.vmidProvider.free(d, d.vmid);
      break;
    case 'nested':
      if (d.guestCdKey >= 0) dev.smmu.cdTables.delete(d.guestCdKey);
      break;
    case 'sva':
      throw new DriverError('EINVAL', 'free SVA domains through svaDomainFree');
  }
  d.freed = true;
  dev.stats[DevStat.DOMAINS_FREED]++;
}

/** `arm_smmu_tlb_inv_asid` re-exported for the SVA seize path. */
export { tlbInvAsid };
