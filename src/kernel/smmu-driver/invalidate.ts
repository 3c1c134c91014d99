/**
 * SMMU TLB and ATC invalidation as the driver issues it (kernel.md §4.7; arm-smmu-v3.c v6.6 read
 * in full, nesting additions of v6.13, the non-leaf range fix eb6c97647be2):
 *
 *  - arm_smmu_tlb_inv_asid: TLBI_NH_ASID (VMID 0) or, under FEAT_E2H, TLBI_EL2_ASID; + CMD_SYNC.
 *  - arm_smmu_tlb_inv_context: S1 → tlb_inv_asid; S2 → TLBI_S12_VMALL(vmid) + SYNC; then
 *    ATC invalidate-all of the domain's ATS masters.
 *  - __arm_smmu_tlb_inv_range: one batch; with FEAT_RANGE_INV the TG/TTL/NUM/SCALE loop, without
 *    it one command per `granule`; submitted with a CMD_SYNC.
 *  - arm_smmu_tlb_inv_range_domain: S1 → TLBI_NH_VA / TLBI_EL2_VA (ASID), S2 → TLBI_S2_IPA (VMID);
 *    nesting parent → then TLBI_NH_ALL(vmid) + SYNC; then the ATC range (only after the SYNC).
 *  - arm_smmu_atc_inv_to_cmd / arm_smmu_atc_inv_domain / arm_smmu_atc_inv_master.
 *
 * All addresses and sizes are byte values held in doubles (exact below 2^53). Allocation-free.
 * No Node or DOM imports.
 */
import { OP } from '../../arch/commands.js';
import { ATC_INV_SIZE_ALL, CMDQ_TLBI_RANGE_NUM_MAX, resetCmdqEnt, type CmdqEnt } from './cmdq-batch.js';
import type { ArmSmmuDevice } from './device.js';
import type { ArmSmmuDomain, ArmSmmuMaster } from './domain.js';
import { FEAT } from './features.js';
import { FaultHook } from '../../hw/fault-hooks.js';

const TWO32 = 4294967296;
const INVAL_GRAIN_SHIFT = 12;
const INVAL_GRAIN = 4096;

/** `__ffs` for 0 < n < 2^53 (count of trailing zero bits). */
export function ctz(n: number): number {
  const lo = n % TWO32;
  if (lo !== 0) return 31 - Math.clz32(lo & -lo);
  const hi = Math.floor(n / TWO32);
  return hi === 0 ? 0 : 32 + 31 - Math.clz32(hi & -hi);
}

/** `fls_long(a ^ b)` for 0 ≤ a, b < 2^53: 1-based index of the highest differing bit, 0 if equal. */
export function flsXor(a: number, b: number): number {
  const hi = (Math.floor(a / TWO32) ^ Math.floor(b / TWO32)) >>> 0;
  if (hi !== 0) return 64 - Math.clz32(hi);
  const lo = ((a % TWO32) ^ (b % TWO32)) >>> 0;
  return 32 - Math.clz32(lo);
}

/** `ilog2` of a power of two ≥ 1. */
function ilog2(x: number): number {
  return Math.round(Math.log2(x));
}

/** `arm_smmu_tlb_inv_asid` */
export function tlbInvAsid(dev: ArmSmmuDevice, asid: number): void {
  const e = resetCmdqEnt(dev.cmdq.ent, dev.has(FEAT.E2H) ? OP.CMD_TLBI_EL2_ASID : OP.CMD_TLBI_NH_ASID);
  e.asid = asid;
  dev.cmdq.issueCmd(e, true);
}

/** `arm_smmu_tlb_inv_context` (io-pgtable tlb_flush_all; also what freeing a domain issues). */
export function tlbInvContext(dev: ArmSmmuDevice, domain: ArmSmmuDomain): void {
  const d = domain.invalidationDomain;
  if (d.stage === 'S1') {
    tlbInvAsid(dev, d.effectiveAsid);
  } else {
    const e = resetCmdqEnt(dev.cmdq.ent, OP.CMD_TLBI_S12_VMALL);
    e.vmid = d.vmid;
    dev.cmdq.issueCmd(e, true);
  }
  atcInvDomain(dev, d, 0, 0);
}

/**
 * `__arm_smmu_tlb_inv_range(cmd, iova, size, granule, domain)`: `ent` carries opcode, ASID/VMID
 * and leaf; the domain gives the leaf page size (TG). One batch, then batch_submit (CMD_SYNC).
 */
export function tlbInvRange(
  dev: ArmSmmuDevice, ent: CmdqEnt, iova: number, size: number, granule: number, domain: ArmSmmuDomain,
): void {
  if (size <= 0) return;
  const q = dev.cmdq;
  const ril = dev.has(FEAT.RANGE_INV);
  const end = iova + size;
  let numPages = 0;
  let tg = 0;
  let invRange = granule;
  if (ril) {
    // Get the leaf page size
    tg = domain.pgsizeLog2;
    numPages = Math.floor(size / 2 ** tg);
    // Convert page size of 12,14,16 (log2) to 1,2,3
    ent.tg = (tg - 10) / 2;
    // Leaf: the level of the granule. Non-leaf: TTL=0, and avoid SCALE=NUM=TTL=0 (eb6c97647be2).
    if (ent.leaf !== 0) ent.ttl = 4 - Math.floor((ilog2(granule) - 3) / (tg - 3));
    else if ((numPages & CMDQ_TLBI_RANGE_NUM_MAX) === 1) numPages++;
  } else if (!(granule > 0)) {
    return;
  }
  const b = q.batchInit(q.batch);
  while (iova < end) {
    if (ril) {
      if (numPages <= 0) break; // size not a multiple of the page size: the kernel never does this
      // Determine the power of 2 multiple number of pages
      const scale = ctz(numPages);
      ent.scale = scale;
      // Determine how many chunks of 2^scale size we have
      const num = Math.floor(numPages / 2 ** scale) & CMDQ_TLBI_RANGE_NUM_MAX;
      ent.num = num - 1;
      // range is num * 2^scale * pgsize
      invRange = num * 2 ** (scale + tg);
      // Clear out the lower order bits for the next iteration
      numPages -= num * 2 ** scale;
    }
    ent.addr = iova;
    q.batchAdd(b, ent);
    iova += invRange;
  }
  q.batchSubmit(b);
}

/**
 * `arm_smmu_tlb_inv_range_domain(iova, size, granule, leaf, domain)` — io-pgtable's
 * tlb_flush_walk (leaf=false) and iotlb_sync (leaf=true).
 */
export function tlbInvRangeDomain(
  dev: ArmSmmuDevice, domain: ArmSmmuDomain, iova: number, size: number, granule: number, leaf: boolean,
): void {
  const d = domain.invalidationDomain;
  const e = resetCmdqEnt(dev.cmdq.ent, 0);
  e.leaf = leaf ? 1 : 0;
  if (d.stage === 'S1') {
    e.opcode = dev.has(FEAT.E2H) ? OP.CMD_TLBI_EL2_VA : OP.CMD_TLBI_NH_VA;
    e.asid = d.effectiveAsid;
  } else {
    e.opcode = OP.CMD_TLBI_S2_IPA;
    e.vmid = d.vmid;
  }
  tlbInvRange(dev, e, iova, size, granule, d);
  if (d.nestParent) {
    // When the S2 domain changes all the nested S1 ASIDs have to be flushed too (v6.13).
    e.opcode = OP.CMD_TLBI_NH_ALL;
    dev.cmdq.issueCmd(e, true);
  }
  // Unfortunately, this can't be leaf-only since we may have zapped an entire table.
  atcInvDomain(dev, d, iova, size);
}

/**
 * `arm_smmu_tlb_inv_range_asid(iova, size, asid, granule, leaf, domain)`: the SVA notifier's
 * range form (NH_VA / EL2_VA with the given ASID, no ATC).
 */
export function tlbInvRangeAsid(
  dev: ArmSmmuDevice, iova: number, size: number, asid: number, granule: number, leaf: boolean, domain: ArmSmmuDomain,
): void {
  const e = resetCmdqEnt(dev.cmdq.ent, dev.has(FEAT.E2H) ? OP.CMD_TLBI_EL2_VA : OP.CMD_TLBI_NH_VA);
  e.asid = asid;
  e.leaf = leaf ? 1 : 0;
  tlbInvRange(dev, e, iova, size, granule, domain);
}

/**
 * `arm_smmu_atc_inv_to_cmd(ssid, iova, size, cmd)`: size 0 → everything (Size=52); else the
 * smallest power-of-two span of 4 KiB pages covering [iova, iova+size−1], start aligned down.
 */
export function atcInvToCmd(e: CmdqEnt, ssid: number, iova: number, size: number): CmdqEnt {
  resetCmdqEnt(e, OP.CMD_ATC_INV);
  e.substreamValid = ssid !== 0 ? 1 : 0;
  e.ssid = ssid;
  if (size === 0) {
    e.atcSize = ATC_INV_SIZE_ALL;
    return e;
  }
  let pageStart = Math.floor(iova / INVAL_GRAIN);
  const pageEnd = Math.floor((iova + size - 1) / INVAL_GRAIN);
  const log2Span = flsXor(pageStart, pageEnd);
  pageStart -= pageStart % 2 ** log2Span;
  e.addr = pageStart * 2 ** INVAL_GRAIN_SHIFT;
  e.atcSize = log2Span;
  return e;
}

/**
 * `arm_smmu_atc_inv_domain(domain, iova, size)` (v6.8+ form: each master_domain's SSID; nested
 * masters on a nesting parent get a full flush). Nothing without FEAT_ATS or ATS masters — the
 * kernel reads nr_ats_masters only after the preceding TLBI's CMD_SYNC completed.
 */
export function atcInvDomain(dev: ArmSmmuDevice, domain: ArmSmmuDomain, iova: number, size: number): void {
  if (!dev.has(FEAT.ATS)) return;
  if (domain.nrAtsMasters === 0) return;
  // Fault no-atc-inv: broadcasts never reach an ATC (arch.md §1.5 CMD_ATC_INV); a driver that
  // forgets CMD_ATC_INV leaves the endpoint translating with the old entry.
  if (dev.faults !== null && dev.faults.fire(FaultHook.NO_ATC_INV)) return;
  const q = dev.cmdq;
  const b = q.batchInit(q.batch);
  const e = q.ent;
  for (let i = 0; i < domain.devices.length; i++) {
    const md = domain.devices[i];
    if (!md.master.atsEnabled) continue;
    if (md.nestedAtsFlush) atcInvToCmd(e, 0, 0, 0);
    else atcInvToCmd(e, md.ssid, iova, size);
    e.sid = md.master.sid;
    q.batchAdd(b, e);
  }
  q.batchSubmit(b);
}

/** `arm_smmu_atc_inv_master(master, ssid)`: invalidate the whole ATC (for that SSID) + SYNC. */
export function atcInvMaster(dev: ArmSmmuDevice, master: ArmSmmuMaster, ssid: number): void {
  if (!dev.has(FEAT.ATS)) return;
  if (dev.faults !== null && dev.faults.fire(FaultHook.NO_ATC_INV)) return; // fault no-atc-inv (see atcInvDomain)
  const q = dev.cmdq;
  const b = q.batchInit(q.batch);
  const e = atcInvToCmd(q.ent, ssid, 0, 0);
  e.sid = master.sid;
  q.batchAdd(b, e);
  q.batchSubmit(b);
}
