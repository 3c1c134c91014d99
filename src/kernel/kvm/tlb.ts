/**
 * KVM/arm64 TLB maintenance: the hyp functions of `arch/arm64/kvm/hyp/{vhe,nvhe}/tlb.c`
 * (`__kvm_tlb_flush_vmid_ipa` → `kvmTlbFlushVmidIpa`, ...) and the host-side helpers and
 * triggers of `arch/arm64/kvm/{mmu.c,hyp/pgtable.c}` that decide which of them a stage-2 event
 * issues. Every hyp function runs between `enterVmidContext` and `exitVmidContext`, so its
 * broadcasts carry the target VM's VMID (VTTBR_EL2.VMID) — which is what an SMMU taking part in
 * broadcast TLB maintenance compares against its own stage-2 VMIDs.
 *
 * Default: v6.6+ mainline with the March 2024 fixes (Will Deacon, 20240327124853.11206-*: no
 * deferral of table-entry invalidation, granule-aligned range starts) and Gavin Shan's range
 * operand fix. docs/flush-paths.md lists the sources and version differences.
 *
 * The triggers do not model page tables: the caller says what was unmapped (leaf and table
 * entries, in walk order) or which IPA range a memslot covers.
 */
import { MAX_TLBI_RANGE_PAGES, TLBI } from '../../arch/tlbi.js';
import type { Pe } from '../../hw/cpu/pe.js';
import type { CpuOps } from '../cpu-ops.js';
import {
  PAGE_SIZE, TLBI_TTL_UNKNOWN, emitTlbiLevel, emitTlbiNoArg, flushTlbRangeOp, type RangeOpOptions,
} from '../mm/tlbflush.js';

export interface KvmTlbOptions extends RangeOpOptions {
  /**
   * 'v6.6+': FEAT_TLBIRANGE stage-2 support (Raghavendra Rao Ananta, 117940aa6e5f and series):
   * `__kvm_tlb_flush_vmid_range`, range flushes for memslots / dirty logging, deferred unmap
   * invalidation. 'pre-6.6': one `__kvm_tlb_flush_vmid_ipa` per entry, VMALLS12E1IS otherwise.
   */
  kernel: 'v6.6+' | 'pre-6.6';
  /** Stage-2 FWB (`stage2_has_fwb`): required, with FEAT_TLBIRANGE, to defer unmap invalidation. */
  fwb: boolean;
  /**
   * nVHE with a VPIPT I-cache (v4.13–v6.7; VPIPT support removed in v6.8): `__kvm_tlb_flush_vmid_ipa`
   * ends with `icache_inval_all_pou()` (IC IALLUIS; DSB ISH).
   */
  vpiptIcache: boolean;
}

export function defaultKvmTlbOptions(over: Partial<KvmTlbOptions> = {}): KvmTlbOptions {
  return {
    kernel: 'v6.6+', tlbiRange: false, fwb: true, vpiptIcache: false, featTtl: true,
    rangeLoop: 'v6.9+', maxPagesCompare: '>',
    ...over,
  };
}

const DEFAULTS = defaultKvmTlbOptions();

// ---------------------------------------------------------------------------------------------
// VMID context

/** `struct tlb_inv_context`: the issuing PE's regime before the switch. */
export interface TlbInvContext {
  vmid: number;
  e2h: boolean;
  tge: boolean;
  el: 1 | 2;
}

export function newTlbInvContext(): TlbInvContext {
  return { vmid: 0, e2h: false, tge: false, el: 1 };
}

/**
 * `enter_vmid_context(mmu, cxt)`: load the target VM's VMID into VTTBR_EL2 (`__load_stage2`).
 * VHE (host at EL2 with HCR_EL2.{E2H,TGE} = {1,1}): also clear TGE so that the EL1 TLBIs that
 * follow target EL1&0 with that VMID instead of the host's EL2&0 regime. nVHE: the code runs at
 * EL2 with E2H=0, where EL1 TLBIs target EL1&0 of the current VMID. The context-synchronising ISB
 * of the kernel has no TLB effect and is not emitted. Returns `cxt` filled with the old regime.
 */
export function enterVmidContext(pe: Pe, vmid: number, vhe: boolean = pe.regime.e2h, cxt: TlbInvContext = newTlbInvContext()): TlbInvContext {
  const r = pe.regime;
  cxt.vmid = r.vmid; cxt.e2h = r.e2h; cxt.tge = r.tge; cxt.el = r.el;
  r.vmid = vmid;
  r.el = 2;
  if (vhe) {
    r.e2h = true;
    r.tge = false;
  } else {
    r.e2h = false;
    r.tge = false;
  }
  return cxt;
}

/**
 * `exit_vmid_context(cxt)`: VHE restores HCR_EL2 (TGE=1) and the stage-2 context of a loaded
 * vCPU if it was another VM; nVHE restores the host (or vCPU) stage 2 (host VTTBR = VMID 0 unless
 * pKVM). Modelled as restoring the saved regime. (On VHE without a loaded vCPU the kernel leaves
 * VTTBR_EL2 holding the flushed VM's VMID; that is invisible, host TLBIs under TGE=1 carry none.)
 */
export function exitVmidContext(pe: Pe, cxt: TlbInvContext): void {
  const r = pe.regime;
  r.vmid = cxt.vmid; r.e2h = cxt.e2h; r.tge = cxt.tge; r.el = cxt.el;
}

const CXT = newTlbInvContext();

function enter(ops: CpuOps, pe: Pe, vmid: number): void {
  enterVmidContext(pe, vmid, pe.regime.e2h, CXT);
  ops.marker?.(`enter_vmid_context vmid=${vmid} ${CXT.e2h ? 'vhe tge=0' : 'nvhe el2'}`);
}

function exit(ops: CpuOps, pe: Pe): void {
  exitVmidContext(pe, CXT);
  ops.marker?.('exit_vmid_context');
}

const pageOf = (ipa: number): number => Math.floor(ipa / PAGE_SIZE);

// ---------------------------------------------------------------------------------------------
// Hyp functions (vhe/tlb.c, nvhe/tlb.c)

/**
 * `__kvm_tlb_flush_vmid_ipa(mmu, ipa, level)`: DSB ISHST; [enter]; TLBI IPAS2E1IS(ipa, level);
 * DSB ISH; TLBI VMALLE1IS; DSB ISH; ISB; [nVHE VPIPT: IC IALLUIS; DSB ISH]; [exit].
 * The whole stage 1 of the VMID goes because combined S1+S2 entries may hold the old IPA.
 */
export function kvmTlbFlushVmidIpa(ops: CpuOps, pe: Pe, vmid: number, ipa: number, level: number, o: KvmTlbOptions = DEFAULTS): void {
  const vhe = pe.regime.e2h;
  ops.dsb('ishst');
  enter(ops, pe, vmid);
  emitTlbiLevel(ops, TLBI.IPAS2E1IS, pageOf(ipa), 0, level, o.featTtl);
  ops.dsb('ish');
  emitTlbiNoArg(ops, TLBI.VMALLE1IS);
  ops.dsb('ish');
  ops.isb();
  if (!vhe && o.vpiptIcache) {
    ops.icIalluis?.();
    ops.dsb('ish');
  }
  exit(ops, pe);
}

/**
 * `__kvm_tlb_flush_vmid_ipa_nsh(mmu, ipa, level)`: the local variant — DSB NSHST; [enter];
 * TLBI IPAS2E1(ipa, level); DSB NSH; TLBI VMALLE1; DSB NSH; ISB; [exit]. Nothing is broadcast
 * (used on permission relaxation, where other CPUs may keep the stricter entry).
 */
export function kvmTlbFlushVmidIpaNsh(ops: CpuOps, pe: Pe, vmid: number, ipa: number, level: number, o: KvmTlbOptions = DEFAULTS): void {
  ops.dsb('nshst');
  enter(ops, pe, vmid);
  emitTlbiLevel(ops, TLBI.IPAS2E1, pageOf(ipa), 0, level, o.featTtl);
  ops.dsb('nsh');
  emitTlbiNoArg(ops, TLBI.VMALLE1);
  ops.dsb('nsh');
  ops.isb();
  exit(ops, pe);
}

/**
 * `__kvm_tlb_flush_vmid_range(mmu, start, pages)` (v6.6+): start rounded down to PAGE_SIZE;
 * DSB ISHST; [enter]; `__flush_s2_tlb_range_op(ipas2e1is, start, pages, PAGE_SIZE,
 * TLBI_TTL_UNKNOWN)` (RIPAS2E1IS range ops, IPAS2E1IS for a single page); DSB ISH;
 * TLBI VMALLE1IS; DSB ISH; ISB; [exit]. One hyp call: `pages` must not exceed MAX_TLBI_RANGE_PAGES
 * (the host wrapper `kvmTlbFlushVmidRange` chunks).
 */
export function kvmHypTlbFlushVmidRange(ops: CpuOps, pe: Pe, vmid: number, start: number, pages: number, o: KvmTlbOptions = DEFAULTS): void {
  const startPage = pageOf(start);
  ops.dsb('ishst');
  enter(ops, pe, vmid);
  flushTlbRangeOp(ops, TLBI.IPAS2E1IS, startPage, pages, 1, 0, TLBI_TTL_UNKNOWN, false, o);
  ops.dsb('ish');
  emitTlbiNoArg(ops, TLBI.VMALLE1IS);
  ops.dsb('ish');
  ops.isb();
  exit(ops, pe);
}

/** `__kvm_tlb_flush_vmid(mmu)`: DSB ISHST; [enter]; TLBI VMALLS12E1IS; DSB ISH; ISB; [exit]. */
export function kvmTlbFlushVmid(ops: CpuOps, pe: Pe, vmid: number): void {
  ops.dsb('ishst');
  enter(ops, pe, vmid);
  emitTlbiNoArg(ops, TLBI.VMALLS12E1IS);
  ops.dsb('ish');
  ops.isb();
  exit(ops, pe);
}

/**
 * `__kvm_flush_cpu_context(mmu)`: [enter]; TLBI VMALLE1 (local); IC IALLU; DSB NSH; ISB; [exit].
 * Issued at vcpu_load when another vCPU of the VM last ran on this CPU; invisible to an SMMU.
 */
export function kvmFlushCpuContext(ops: CpuOps, pe: Pe, vmid: number): void {
  enter(ops, pe, vmid);
  emitTlbiNoArg(ops, TLBI.VMALLE1);
  ops.icIallu?.();
  ops.dsb('nsh');
  ops.isb();
  exit(ops, pe);
}

/**
 * `__kvm_flush_vm_context()` (VMID rollover): DSB ISHST; TLBI ALLE1IS; [IC IALLUIS]; DSB ISH.
 * `icache`: v4.x issued IC IALLUIS unconditionally; ~v4.13–v6.7 only with a VPIPT I-cache; none
 * since. ALLE1IS covers every VMID, so no VMID context is entered.
 */
export function kvmFlushVmContext(ops: CpuOps, icache = false): void {
  ops.dsb('ishst');
  emitTlbiNoArg(ops, TLBI.ALLE1IS);
  if (icache) ops.icIalluis?.();
  ops.dsb('ish');
}

// ---------------------------------------------------------------------------------------------
// Host-side helpers (hyp/pgtable.c, mmu.c)

/**
 * `kvm_tlb_flush_vmid_range(mmu, addr, size)` (v6.6+), with size = pages * PAGE_SIZE: without
 * FEAT_TLBIRANGE one `__kvm_tlb_flush_vmid` (VMALLS12E1IS); else one `__kvm_tlb_flush_vmid_range`
 * per chunk of at most MAX_TLBI_RANGE_PAGES pages.
 */
export function kvmTlbFlushVmidRange(ops: CpuOps, pe: Pe, vmid: number, start: number, pages: number, o: KvmTlbOptions = DEFAULTS): void {
  if (!o.tlbiRange) {
    kvmTlbFlushVmid(ops, pe, vmid);
    return;
  }
  let addr = start;
  let left = pages;
  while (left > 0) {
    const inval = Math.min(left, MAX_TLBI_RANGE_PAGES);
    kvmHypTlbFlushVmidRange(ops, pe, vmid, addr, inval, o);
    addr += inval * PAGE_SIZE;
    left -= inval;
  }
}

/** `kvm_arch_flush_remote_tlbs(kvm)` / pre-6.6 `kvm_flush_remote_tlbs()`: `__kvm_tlb_flush_vmid`. */
export function kvmFlushRemoteTlbs(ops: CpuOps, pe: Pe, vmid: number): void {
  kvmTlbFlushVmid(ops, pe, vmid);
}

/**
 * `kvm_flush_remote_tlbs_range(kvm, gfn, nr_pages)`: v6.6+ `kvm_arch_flush_remote_tlbs_range` →
 * `kvm_tlb_flush_vmid_range` (range TLBIs, or VMALLS12E1IS without FEAT_TLBIRANGE); pre-6.6
 * `kvm_flush_remote_tlbs` (VMALLS12E1IS).
 */
export function kvmFlushRemoteTlbsRange(ops: CpuOps, pe: Pe, vmid: number, startPage: number, pages: number, o: KvmTlbOptions = DEFAULTS): void {
  if (o.kernel === 'pre-6.6') kvmFlushRemoteTlbs(ops, pe, vmid);
  else kvmTlbFlushVmidRange(ops, pe, vmid, startPage * PAGE_SIZE, pages, o);
}

/**
 * Dirty logging (`kvm_mmu_wp_memory_region`, `kvm_arch_mmu_enable_log_dirty_pt_masked` + the
 * generic `kvm_get/clear_dirty_log_protect`): the stage-2 entries are write-protected without
 * TLBI, then `kvm_flush_remote_tlbs_memslot(kvm, memslot)` flushes the whole memslot once:
 * `kvmFlushRemoteTlbsRange(base_gfn, npages)`.
 */
export function kvmFlushRemoteTlbsMemslot(ops: CpuOps, pe: Pe, vmid: number, baseGfn: number, npages: number, o: KvmTlbOptions = DEFAULTS): void {
  kvmFlushRemoteTlbsRange(ops, pe, vmid, baseGfn, npages, o);
}

/** One stage-2 entry removed by the unmap walker. */
export interface S2Removed {
  /** IPA page number (IPA >> 12) of the entry (its first page for a block or table). */
  ipaPage: number;
  /** Level of the entry: 3 = 4 KiB page, 2 = 2 MiB block, 1 = 1 GiB block (or a table at that level). */
  level: number;
  /** A table entry (the unmap walker zaps tables in its TABLE_POST visit, after their leaves). */
  table?: boolean;
}

/** `stage2_range_addr_end`: the unmap walk is applied in chunks of kvm_granule_size(1) = 1 GiB. */
export const S2_APPLY_CHUNK_PAGES = 2 ** 18;

/** `stage2_unmap_defer_tlb_flush(pgt)`: v6.6+, FEAT_TLBIRANGE and stage-2 FWB. */
export function stage2UnmapDeferTlbFlush(o: KvmTlbOptions): boolean {
  return o.kernel === 'v6.6+' && o.tlbiRange && o.fwb;
}

/**
 * Stage-2 unmap of [startPage, startPage + pages) (`kvm_unmap_gfn_range` from the MMU notifier,
 * and memslot delete/move via `kvm_arch_flush_shadow_memslot`): `stage2_apply_range` walks 1 GiB
 * chunks with `kvm_pgtable_stage2_unmap`, whose `stage2_unmap_put_pte` invalidates per valid entry:
 * - leaf: `__kvm_tlb_flush_vmid_ipa(ipa, level)`, unless deferred (v6.6+ with FEAT_TLBIRANGE and
 *   FWB), in which case the chunk ends with one `kvm_tlb_flush_vmid_range(chunk)`;
 * - table: always at once; v6.6+ (as fixed for v6.9 and 6.6.y) with no level hint, pre-6.6 with
 *   the table's own level as hint (the source passes ctx->level).
 * `removed` lists the valid entries the walk cleared, in walk order; entries outside the range
 * throw. `kvm_unmap_gfn_range` returns false, so the generic code adds no flush.
 */
export function kvmUnmapRange(
  ops: CpuOps, pe: Pe, vmid: number, startPage: number, pages: number,
  removed: readonly S2Removed[], o: KvmTlbOptions = DEFAULTS,
): void {
  const end = startPage + pages;
  for (const r of removed) {
    if (r.ipaPage < startPage || r.ipaPage >= end) throw new RangeError(`entry at IPA page 0x${r.ipaPage.toString(16)} outside the unmapped range`);
  }
  const defer = stage2UnmapDeferTlbFlush(o);
  let addr = startPage;
  while (addr < end) {
    const boundary = addr - (addr % S2_APPLY_CHUNK_PAGES) + S2_APPLY_CHUNK_PAGES;
    const next = boundary < end ? boundary : end;
    for (const r of removed) {
      if (r.ipaPage < addr || r.ipaPage >= next) continue;
      const ipa = r.ipaPage * PAGE_SIZE;
      if (r.table) kvmTlbFlushVmidIpa(ops, pe, vmid, ipa, o.kernel === 'v6.6+' ? TLBI_TTL_UNKNOWN : r.level, o);
      else if (!defer) kvmTlbFlushVmidIpa(ops, pe, vmid, ipa, r.level, o);
    }
    if (defer) kvmTlbFlushVmidRange(ops, pe, vmid, addr * PAGE_SIZE, next - addr, o);
    addr = next;
  }
}

/**
 * Stage-2 permission relaxation on a permission fault (`kvm_pgtable_stage2_relax_perms`): the
 * local `__kvm_tlb_flush_vmid_ipa_nsh` since Marc Zyngier's "Use local TLBI on permission
 * relaxation" (v6.5 series; 'v6.6+' here), the broadcast `__kvm_tlb_flush_vmid_ipa` before.
 */
export function kvmRelaxPerms(ops: CpuOps, pe: Pe, vmid: number, ipaPage: number, level: number, o: KvmTlbOptions = DEFAULTS): void {
  if (o.kernel === 'v6.6+') kvmTlbFlushVmidIpaNsh(ops, pe, vmid, ipaPage * PAGE_SIZE, level, o);
  else kvmTlbFlushVmidIpa(ops, pe, vmid, ipaPage * PAGE_SIZE, level, o);
}

/** Memslot delete/move (`kvm_arch_flush_shadow_memslot` → `kvm_stage2_unmap_range`): as unmap. */
export const kvmFlushShadowMemslot = kvmUnmapRange;
