/**
 * SVA (shared virtual addressing) of the SMMUv3 driver, in both eras (kernel.md §4.4, §4.8):
 *
 * 'shared' (v5.10 – v6.10, arm-smmu-v3-sva.c of v6.7–6.10 read in full):
 *   bind: `arm_smmu_alloc_shared_cd(mm)`: asid = arm64_mm_context_get(mm) (0 → -ESRCH; the CPU's
 *   ASID, |1 under KPTI, pinned); under arm_smmu_asid_lock `arm_smmu_share_asid(mm, asid)`:
 *     - no XArray entry → xa_insert the new shared CD;
 *     - a shared CD of the same mm → refcount_inc and reuse it (then context_put the extra pin —
 *       the kernel's out_free_cd/out_put_context path); another mm → WARN, -EINVAL;
 *     - a private S1 domain → "seize": xa_alloc a new ASID for that domain (-ENOSPC), rewrite
 *       its CDs (CFGI_CD + SYNC per master), TLBI by the OLD ASID + SYNC, xa_erase(old ASID).
 *   The CD: CPU ASID, ASET=0, TTB0 = the mm's page table. Last unbind (mmu_notifier_put): TLBI by
 *   ASID + SYNC and ATC invalidate-all (unless mm_release already did), xa_erase, context_put.
 *   Notifier: with FEAT_BTM (never set in mainline) the TLBI is skipped — the CPU's broadcast did
 *   it — but the ATC is always invalidated.
 * 'private' (v6.11+): `arm_smmu_sva_domain_alloc`: xa_alloc a fresh ASID; CD with ASET=1; the
 *   notifier always uses the command queue; free: TLBI by ASID + SYNC, then xa_erase.
 *
 * The notifier (`arm_smmu_mm_arch_invalidate_secondary_tlbs`, v6.6–v6.13): size = end − start;
 * without RIL a size ≥ CMDQ_MAX_TLBI_OPS (512) pages becomes 0 (soft-lockup fix, 2023); with RIL
 * only the full-mm flush (end − start = ULONG_MAX) does; size 0 → TLBI by ASID, else the range
 * with granule PAGE_SIZE, leaf=false; then the ATC range (size 0 = all).
 *
 * No Node or DOM imports.
 */
import type { PageTable } from '../../hw/memory.js';
import type { ArmSmmuDevice } from './device.js';
import {
  ArmSmmuDomain, DevStat, SharedCd, attachDomain, detachDomain, downgradeCdTableSte, getMaster, makeS1Cd,
  makeSvaCd, removePasid, writeCd, type AttachOptions, type SvaEra,
} from './domain.js';
import { FEAT } from './features.js';
import { DriverError } from './ids.js';
import { atcInvDomain, atcInvMaster, tlbInvAsid, tlbInvRangeAsid } from './invalidate.js';

/** `PAGE_SHIFT` of the host (4 KiB pages). */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
/** `CMDQ_MAX_TLBI_OPS` = 1 << (PAGE_SHIFT − 3): 512 with 4 KiB pages. */
export const CMDQ_MAX_TLBI_OPS = 1 << (PAGE_SHIFT - 3);
/**
 * `end` for a whole-mm flush (the kernel passes start 0, end −1UL, so size = ULONG_MAX). Any end
 * at or beyond 2^63 is treated as the full range (ULONG_MAX is not representable in a double).
 */
export const SVA_FLUSH_ALL_END = 2 ** 64;
const FULL_RANGE_SIZE = 2 ** 63;

/** The piece of the CPU ASID allocator the shared era needs (arm64_mm_context_get/put). */
export interface CpuAsidPinner {
  /** `arm64_mm_context_get`: pin and return the mm's ASID (|1 under KPTI), 0 on failure. */
  contextGet(mm: number): number;
  /** `arm64_mm_context_put` */
  contextPut(mm: number): void;
}

/**
 * Allocate an SVA domain for `mm` whose page table is `mmTable`. Era 'private' allocates the
 * domain's ASID now (v6.11+ arm_smmu_sva_domain_alloc; -EBUSY when the XArray limit is full);
 * era 'shared' takes the CPU ASID at the first bind (attach).
 */
export function allocSvaDomain(dev: ArmSmmuDevice, mm: number, mmTable: PageTable, era: SvaEra = dev.svaEra): ArmSmmuDomain {
  if (!dev.has(FEAT.SVA)) throw new DriverError('EOPNOTSUPP', `smmu${dev.smmu.id} does not support SVA`);
  const d = new ArmSmmuDomain(dev, { kind: 'sva', stage: 'S1', table: mmTable });
  d.mm = mm;
  d.era = era;
  d.pgsizeLog2 = PAGE_SHIFT; // domain.pgsize_bitmap = PAGE_SIZE (2025 fix); the RID S1 domain's before
  if (era === 'private') {
    const asid = dev.driver.asidXa.alloc(d, dev.asidBits);
    if (asid < 0) {
      dev.stats[DevStat.ASID_ALLOC_FAILURES]++;
      throw new DriverError('EBUSY', `no free ASID in [1, ${(1 << dev.asidBits) - 1}] for SVA (arm_smmu_asid_xa)`);
    }
    d.asid = asid;
  }
  dev.stats[DevStat.DOMAINS_ALLOCATED]++;
  return d;
}

/**
 * `arm_smmu_share_asid(mm, asid)` (lock held). Returns the existing shared CD of `mm` (reference
 * taken), or null when `asid` is now free for a new shared CD.
 */
export function shareAsid(dev: ArmSmmuDevice, mm: number, asid: number): SharedCd | null {
  const xa = dev.driver.asidXa;
  const owner = xa.load(asid);
  if (owner === undefined) return null;
  if (owner instanceof SharedCd) {
    if (owner.mm !== mm) throw new DriverError('EINVAL', `ASID ${asid} is shared with mm ${owner.mm}, not mm ${mm}`);
    owner.refs++;
    return owner;
  }
  // A private context descriptor uses the CPU's ASID: move it to a new ASID.
  const victim = owner;
  const vdev = victim.smmu;
  const newAsid = xa.alloc(victim, vdev.asidBits);
  if (newAsid < 0) {
    vdev.stats[DevStat.ASID_ALLOC_FAILURES]++;
    throw new DriverError('ENOSPC', `cannot seize ASID ${asid}: no free ASID for ${victim}`);
  }
  // Race with unmap: invalidations start targeting the new ASID; the old one is flushed below.
  victim.asid = newAsid;
  // arm_smmu_update_s1_domain_cd_entry: rewrite the CD of every master (both ASIDs may tag
  // traffic until the TLB invalidation).
  for (const md of victim.devices) {
    writeCd(vdev, md.master, md.ssid, victim.kind === 'sva' ? makeSvaCd(victim) : makeS1Cd(victim));
  }
  // Invalidate TLB entries previously associated with that context.
  tlbInvAsid(vdev, asid);
  xa.erase(asid);
  vdev.stats[DevStat.ASID_SEIZURES]++;
  return null;
}

/** `arm_smmu_alloc_shared_cd(mm)` */
function allocSharedCd(dev: ArmSmmuDevice, mm: number, table: PageTable): SharedCd {
  const pinner = dev.cpuAsidPinner;
  if (pinner === null) throw new DriverError('EINVAL', "SVA era 'shared' needs a CpuAsidPinner (arm64_mm_context_get)");
  const asid = pinner.contextGet(mm);
  if (asid === 0) {
    dev.stats[DevStat.PIN_FAILURES]++;
    throw new DriverError('ESRCH', `arm64_mm_context_get(mm ${mm}) failed (pinned-ASID limit)`);
  }
  let existing: SharedCd | null;
  try {
    existing = shareAsid(dev, mm, asid);
  } catch (e) {
    pinner.contextPut(mm);
    throw e;
  }
  if (existing !== null) {
    // kfree(cd); arm64_mm_context_put(mm): the existing CD keeps its own pin.
    pinner.contextPut(mm);
    return existing;
  }
  const cd = new SharedCd(asid, mm, table);
  if (!dev.driver.asidXa.insert(asid, cd)) {
    pinner.contextPut(mm);
    throw new DriverError('EBUSY', `xa_insert(${asid}) failed`);
  }
  return cd;
}

/** `arm_smmu_free_shared_cd`: drop a reference; the last one erases the ASID and unpins. */
function freeSharedCd(dev: ArmSmmuDevice, cd: SharedCd): void {
  if (--cd.refs > 0) return;
  dev.driver.asidXa.erase(cd.asid);
  dev.cpuAsidPinner?.contextPut(cd.mm);
}

/**
 * Bind: attach an SVA domain to (sid, pasid) — `set_dev_pasid`. Era 'shared' takes the shared
 * CPU-ASID CD at the domain's first bind.
 */
export function svaAttach(dev: ArmSmmuDevice, domain: ArmSmmuDomain, sid: number, opts: AttachOptions & { ssid: number }): void {
  if (domain.kind !== 'sva') throw new DriverError('EINVAL', `${domain} is not an SVA domain`);
  if (opts.ssid === 0) throw new DriverError('EINVAL', 'SVA binds at a PASID (SSID > 0)');
  const master = getMaster(dev, sid, opts);
  if (master.ssidBits === 0) throw new DriverError('EINVAL', `sid ${sid} has no PASID support (ssidBits 0)`);
  let took = false;
  if (domain.era === 'shared' && domain.sharedCd === null) {
    domain.sharedCd = allocSharedCd(dev, domain.mm, domain.table!);
    domain.cleared = false;
    took = true;
  }
  try {
    attachDomain(dev, domain, sid, opts);
  } catch (e) {
    if (took && domain.sharedCd !== null) { freeSharedCd(dev, domain.sharedCd); domain.sharedCd = null; }
    throw e;
  }
}

/**
 * Unbind (sid, pasid).
 * Era 'private' (v6.10+ `arm_smmu_remove_dev_pasid`): clear the CD (+CFGI_CD + SYNC), ATC
 * invalidation of the PASID for an ATS master, off the list; the TLBI comes with the domain free.
 * Era 'shared' (v6.6 `arm_smmu_sva_remove_dev_pasid`): clear the CD, then the notifier put — on
 * the domain's last bond TLBI by ASID + SYNC and ATC invalidate-all of the PASID (unless
 * mm_release already did both), else only the leaving master's ATC; then drop the shared-CD
 * reference (the last one: xa_erase + arm64_mm_context_put).
 * With the RID blocked, the STE goes back to abort once no PASID is left (v6.10).
 */
export function svaDetach(dev: ArmSmmuDevice, domain: ArmSmmuDomain, sid: number, ssid: number): void {
  const master = dev.masters.get(sid);
  if (master === undefined || master.pasids.get(ssid) !== domain) {
    throw new DriverError('ENOENT', `${domain} is not bound to sid ${sid} pasid ${ssid}`);
  }
  if (domain.era !== 'shared') {
    detachDomain(dev, sid, ssid);
    return;
  }
  const ats = master.atsEnabled && dev.has(FEAT.ATS);
  removePasid(dev, master, ssid, false);
  const cd = domain.sharedCd;
  if (domain.devices.length === 0 && cd !== null) {
    if (!domain.cleared) {
      tlbInvAsid(dev, cd.asid);
      if (ats) atcInvMaster(dev, master, ssid);
    }
    domain.sharedCd = null;
    freeSharedCd(dev, cd);
  } else if (ats) {
    atcInvMaster(dev, master, ssid);
  }
  downgradeCdTableSte(dev, master);
}

/**
 * Free an SVA domain with no bonds. Era 'private' (v6.11+ arm_smmu_sva_domain_free): TLBI by
 * ASID + SYNC, then xa_erase. Era 'shared': nothing left to do (released at the last unbind).
 */
export function svaDomainFree(dev: ArmSmmuDevice, domain: ArmSmmuDomain): void {
  if (domain.freed) return;
  if (domain.devices.length > 0) throw new DriverError('EBUSY', `${domain} still bound to ${domain.devices.length} PASID(s)`);
  if (domain.era === 'private' && domain.asid !== 0) {
    tlbInvAsid(dev, domain.asid);
    dev.driver.asidXa.erase(domain.asid);
  }
  domain.freed = true;
  dev.stats[DevStat.DOMAINS_FREED]++;
}

/**
 * `arm_smmu_mm_arch_invalidate_secondary_tlbs(mn, mm, start, end)`: called by the host mm model
 * for every CPU TLB flush of the mm (arch flush helpers since v6.6). `end` is exclusive; pass
 * SVA_FLUSH_ALL_END for a whole-mm flush.
 */
export function svaInvalidateSecondaryTlbs(dev: ArmSmmuDevice, domain: ArmSmmuDomain, start: number, end: number): void {
  if (domain.kind !== 'sva' || domain.freed) return;
  const asid = domain.effectiveAsid;
  if (asid === 0) return; // era 'shared' and not bound: no notifier registered
  let size = end - start;
  if (!dev.has(FEAT.RANGE_INV)) {
    if (size >= CMDQ_MAX_TLBI_OPS * PAGE_SIZE) size = 0;
  } else if (size >= FULL_RANGE_SIZE) {
    size = 0;
  }
  // v5.12–v6.10: only without FEAT_BTM (the broadcast already reached the ASET=0 entries).
  // v6.11+: always (the check is gone with the shared ASID).
  const skipTlbi = domain.era === 'shared' && dev.has(FEAT.BTM);
  if (!skipTlbi) {
    if (size === 0) tlbInvAsid(dev, asid);
    else tlbInvRangeAsid(dev, start, size, asid, PAGE_SIZE, false, domain);
  }
  atcInvDomain(dev, domain, start, size);
}

/**
 * `arm_smmu_mm_release`: the mm is exiting while DMA may still run — every CD of the domain is
 * rewritten to fault everything (EPD0; the kernel keeps V=1 to avoid C_BAD_CD), then TLBI by ASID
 * + SYNC and ATC invalidate-all.
 */
export function svaMmRelease(dev: ArmSmmuDevice, domain: ArmSmmuDomain): void {
  if (domain.kind !== 'sva' || domain.cleared || domain.freed) return;
  const asid = domain.effectiveAsid;
  if (asid === 0) return;
  for (const md of domain.devices) {
    const cds = md.master.cds;
    const cur = cds?.[md.ssid];
    if (cur !== undefined) writeCd(dev, md.master, md.ssid, { ...cur, EPD0: true });
  }
  tlbInvAsid(dev, asid);
  atcInvDomain(dev, domain, 0, 0);
  domain.cleared = true;
}
