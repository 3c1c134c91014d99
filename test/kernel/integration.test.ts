/**
 * Integration: the kernel model (SMMU driver, VFIO, KVM VMID allocator and stage-2 TLB
 * maintenance, CPU ASID allocator, host flush_tlb_*) driving the hardware model (PEs, DVM, SMMUs)
 * together, without the Simulation class.
 *
 * Property checked on every SMMU TLB / micro-TLB / ATC hit (StaleHitChecker, installed as the
 * SMMU listener): NO TLB HIT EVER RETURNS A TRANSLATION THAT A COMPLETED INVALIDATION SHOULD HAVE
 * REMOVED — the page must still be mapped by the configuration's current tables to the cached
 * output, and the entry must have been filled for the configuration's context (no aliasing).
 * Correct flows must report zero violations; the NEGATIVE CONTROL tests inject the faults the
 * checker must catch.
 */
import { describe, expect, it } from 'vitest';
import { OP } from '../../src/arch/commands.js';
import { TLBI } from '../../src/arch/tlbi.js';
import { tableBase } from '../../src/hw/memory.js';
import { SmmuStat, XlateFault, defaultSmmuParams } from '../../src/hw/smmu/smmu.js';
import { newCd } from '../../src/hw/smmu/structures.js';
import { newTlbiArgs } from '../../src/hw/tlbi-scope.js';
import { HwSystem } from '../../src/hw/system.js';
import { PeCpuOps } from '../../src/kernel/cpu-ops.js';
import { Arm64AsidAllocator } from '../../src/kernel/mm/asid.js';
import { flushTlbRange } from '../../src/kernel/mm/tlbflush.js';
import { KvmVmidAllocator } from '../../src/kernel/kvm/vmid.js';
import { kvmFlushRemoteTlbs, kvmFlushVmContext, kvmUnmapRange } from '../../src/kernel/kvm/tlb.js';
import { DevStat } from '../../src/kernel/smmu-driver/domain.js';
import { FEAT, IIDR_PRODUCTID_ARM_MMU_700, makeIidr } from '../../src/kernel/smmu-driver/features.js';
import type { Assignment } from '../../src/kernel/vfio/assign.js';
import { policyConfig } from '../../src/policy/policies.js';
import { ContextRegistry } from '../../src/sim/contexts.js';
import { Prng } from '../../src/sim/prng.js';
import type { Simulation } from '../../src/sim/simulation.js';
import { SmmuSide } from '../../src/sim/smmu-side.js';
import { loadScenarioText } from '../../src/workload/load.js';
import { GUEST_IPA, HOST_VA, PAGE, Rig, StaleHitChecker, type SvaProc } from './integration-fixture.js';

const cmds = (rig: Rig, smmu: number, op: number): number => rig.devs[smmu].commandsByOpcode[op];
const stat = (rig: Rig, smmu: number, s: number): number => rig.sys.smmus[smmu].stats[s];

/** DMA pages [start, start+n) of (sid, ssid) on `smmu`; returns the outputs. */
function dmaRun(rig: Rig, smmu: number, sid: number, ssid: number, start: number, n: number): number[] {
  const out: number[] = [];
  for (let p = start; p < start + n; p++) out.push(rig.dma(smmu, sid, ssid, p));
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('boot: ArmSmmuDriver.probe of each SMMU', () => {
  it('btm on: FEAT_BTM set, CR2.PTM cleared, every SMMU acts on broadcast TLBIs', () => {
    const rig = new Rig({ btm: true });
    for (const [i, d] of rig.devs.entries()) {
      const s = rig.sys.smmus[i];
      expect(d.has(FEAT.BTM)).toBe(true);
      expect(s.smmuEnabled).toBe(true);
      expect(s.ptm).toBe(false);
      expect(s.takesBroadcasts).toBe(true);
    }
    kvmFlushVmContext(rig.ops[0]);
    expect(rig.sys.smmus.map((s) => s.stats[SmmuStat.DVM_TLBI])).toEqual([1, 1]);
    expect(rig.checker.report).toEqual([]);
  });

  it('btm off (mainline): CR2.PTM=1, FEAT_BTM clear, broadcasts are ignored', () => {
    const rig = new Rig({ btm: false });
    for (const [i, d] of rig.devs.entries()) {
      const s = rig.sys.smmus[i];
      expect(d.has(FEAT.BTM)).toBe(false);
      expect(s.ptm).toBe(true);
      expect(s.takesBroadcasts).toBe(false);
    }
    kvmFlushVmContext(rig.ops[0]);
    expect(rig.sys.smmus.map((s) => s.stats[SmmuStat.DVM_IGNORED])).toEqual([1, 1]);
    expect(rig.sys.smmus.map((s) => s.stats[SmmuStat.DVM_TLBI])).toEqual([0, 0]);
  });

  it('MMU-700 (erratum 2812531): the driver keeps CR2.PTM=1 even when asked for BTM', () => {
    const rig = new Rig({ btm: true, smmuParams: { iidr: makeIidr(IIDR_PRODUCTID_ARM_MMU_700) } });
    expect(rig.devs[0].has(FEAT.BTM)).toBe(false);
    expect(rig.sys.smmus[0].ptm).toBe(true);
    expect(rig.sys.smmus[0].takesBroadcasts).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------

describe.each([{ btm: true }, { btm: false }])('assigned device on a private SMMU stage 2 (btm=$btm)', ({ btm }) => {
  function setup() {
    const rig = new Rig({ btm });
    rig.newVm(1);
    const kvmVmid = rig.vcpuLoad(0, 1);
    const a = rig.vfio.assignDevice(1, 0x10, { s2Table: rig.privateS2(1), smmu: 0 });
    return { rig, kvmVmid, a, t: a.domain.table! };
  }

  it('KVM stage-2 unmaps leave no stale SMMU entry; with BTM they also drop the colliding SMMU VMID\'s entries', () => {
    const { rig, kvmVmid, a, t } = setup();
    // The 2020 thread's collision: KVM and the SMMU IDA both start at VMID 1.
    expect(kvmVmid).toBe(1);
    expect(a.vmid).toBe(1);
    const first = dmaRun(rig, 0, 0x10, 0, GUEST_IPA, 8);
    expect(first).toEqual(Array.from({ length: 8 }, (_, i) => t.walk(GUEST_IPA + i)));
    dmaRun(rig, 0, 0x10, 0, GUEST_IPA, 8);
    expect(stat(rig, 0, SmmuStat.HITS)).toBe(8);
    const misses = stat(rig, 0, SmmuStat.MISSES);
    rig.kvmUnmapPage(1, GUEST_IPA + 2); // __kvm_tlb_flush_vmid_ipa
    rig.kvmUnmap(1, GUEST_IPA + 4, 3); // kvm_unmap_gfn_range
    // The SMMU's table did not change: every page still translates, to the same output.
    expect(dmaRun(rig, 0, 0x10, 0, GUEST_IPA, 8)).toEqual(first);
    // IPAS2E1IS with VMID 1 removed the SMMU's entries of pages 2, 4, 5, 6 (collateral) with BTM.
    expect(stat(rig, 0, SmmuStat.MISSES) - misses).toBe(btm ? 4 : 0);
    expect(rig.pes[0].regime.vmid).toBe(1); // exit_vmid_context restored the vCPU's VMID
    expect(rig.checker.hits).toBe(btm ? 12 : 16);
    expect(rig.checker.report).toEqual([]);
  });

  it('the driver\'s tlbInvRangeDomain after unmapping its own stage-2 pages: DMA faults, no stale hit', () => {
    const { rig, a, t } = setup();
    dmaRun(rig, 0, 0x10, 0, GUEST_IPA, 8);
    const before = cmds(rig, 0, OP.CMD_TLBI_S2_IPA);
    rig.driverUnmap(a.domain, GUEST_IPA + 3, 2);
    expect(cmds(rig, 0, OP.CMD_TLBI_S2_IPA)).toBeGreaterThan(before);
    const out = dmaRun(rig, 0, 0x10, 0, GUEST_IPA, 8);
    expect(out[3]).toBe(XlateFault.TRANSLATION);
    expect(out[4]).toBe(XlateFault.TRANSLATION);
    expect(out[5]).toBe(t.walk(GUEST_IPA + 5));
    expect(rig.checker.hits).toBe(6);
    expect(rig.checker.report).toEqual([]);
  });

  it('NEGATIVE CONTROL: unmapping a private stage-2 page without the driver\'s invalidation is reported on the next DMA hit', () => {
    const { rig, t } = setup();
    dmaRun(rig, 0, 0x10, 0, GUEST_IPA, 8);
    t.unmap(GUEST_IPA + 3); // io-pgtable unmap with the iotlb_sync skipped
    const out = rig.dma(0, 0x10, 0, GUEST_IPA + 3);
    expect(out).toBeGreaterThanOrEqual(0); // the TLB still answers
    expect(rig.checker.violations).toHaveLength(1);
    expect(rig.checker.violations[0]).toMatchObject({ kind: 'stale', sid: 0x10, page: GUEST_IPA + 3, expected: -1, cached: out });
  });
});

// ---------------------------------------------------------------------------------------------

describe('stage 2 shared with KVM under the VM\'s pinned KVM VMID (btm-kvm-pinned, s2Tables shared)', () => {
  function setup(btm: boolean, atcEntries = 0) {
    const rig = new Rig({ btm, smmuVmid: 'kvm-pinned', vmidScope: 'vm', smmuParams: { atcEntries } });
    const s2 = rig.newVm(1);
    rig.newVm(2);
    rig.vcpuLoad(1, 2); // another VM holds KVM VMID 1
    const vmid = rig.vcpuLoad(0, 1);
    const a = rig.vfio.assignDevice(1, 0x20, { s2Table: s2, smmu: 0, ats: atcEntries > 0 });
    return { rig, s2, vmid, a };
  }

  it('BTM: KVM\'s own unmap broadcasts invalidate the SMMU, the driver sends no TLBI', () => {
    const { rig, vmid, a } = setup(true);
    expect(vmid).toBe(2);
    expect(a.vmid).toBe(2);
    expect(rig.kvm.pinnedRefcount(1)).toBe(1);
    dmaRun(rig, 0, 0x20, 0, GUEST_IPA, 8);
    const before = cmds(rig, 0, OP.CMD_TLBI_S2_IPA) + cmds(rig, 0, OP.CMD_TLBI_S12_VMALL);
    rig.kvmUnmapPage(1, GUEST_IPA + 1);
    rig.kvmUnmap(1, GUEST_IPA + 5, 2);
    expect(cmds(rig, 0, OP.CMD_TLBI_S2_IPA) + cmds(rig, 0, OP.CMD_TLBI_S12_VMALL)).toBe(before);
    const out = dmaRun(rig, 0, 0x20, 0, GUEST_IPA, 8);
    expect([1, 5, 6].map((i) => out[i])).toEqual([XlateFault.TRANSLATION, XlateFault.TRANSLATION, XlateFault.TRANSLATION]);
    expect(rig.checker.hits).toBe(5);
    // VM 2's unmaps (KVM VMID 1) never touch the SMMU's VMID-2 entries.
    const inv = stat(rig, 0, SmmuStat.ENTRIES_INVALIDATED);
    rig.kvmUnmap(2, GUEST_IPA, 8);
    expect(stat(rig, 0, SmmuStat.ENTRIES_INVALIDATED)).toBe(inv);
    expect(rig.checker.report).toEqual([]);
  });

  it('PTM: the same shared table needs the driver\'s tlbInvRangeDomain after each KVM unmap', () => {
    const { rig, a } = setup(false);
    dmaRun(rig, 0, 0x20, 0, GUEST_IPA, 8);
    rig.kvmUnmap(1, GUEST_IPA + 2, 3);
    a.device.tlbInvRangeDomain(a.domain, (GUEST_IPA + 2) * PAGE, 3 * PAGE, PAGE, true);
    const out = dmaRun(rig, 0, 0x20, 0, GUEST_IPA, 8);
    expect(out.slice(2, 5)).toEqual([XlateFault.TRANSLATION, XlateFault.TRANSLATION, XlateFault.TRANSLATION]);
    expect(rig.checker.hits).toBe(5);
    expect(rig.checker.report).toEqual([]);
  });

  it('NEGATIVE CONTROL: PTM without the driver\'s invalidation — KVM\'s broadcast is ignored and the stale hit is reported', () => {
    const { rig } = setup(false);
    dmaRun(rig, 0, 0x20, 0, GUEST_IPA, 8);
    rig.kvmUnmap(1, GUEST_IPA + 2, 1);
    expect(stat(rig, 0, SmmuStat.DVM_IGNORED)).toBeGreaterThan(0);
    rig.dma(0, 0x20, 0, GUEST_IPA + 2);
    expect(rig.checker.count('stale')).toBe(1);
    expect(rig.checker.count('alias')).toBe(0);
  });

  it('NEGATIVE CONTROL: an ATS endpoint keeps the translation in its ATC — broadcasts never reach it', () => {
    const { rig } = setup(true, 16);
    dmaRun(rig, 0, 0x20, 0, GUEST_IPA, 4);
    dmaRun(rig, 0, 0x20, 0, GUEST_IPA, 4);
    expect(rig.checker.hitsByCache.get('ATC')).toBe(4);
    rig.kvmUnmap(1, GUEST_IPA + 2, 1);
    rig.dma(0, 0x20, 0, GUEST_IPA + 2);
    expect(rig.checker.violations.map((v) => [v.kind, v.cache])).toEqual([['stale', 'ATC']]);
  });

  it('ATS endpoint: KVM unmap plus the driver\'s range invalidation (CMD_ATC_INV) leaves nothing stale', () => {
    const { rig, a } = setup(true, 16);
    dmaRun(rig, 0, 0x20, 0, GUEST_IPA, 4);
    rig.kvmUnmap(1, GUEST_IPA + 2, 1);
    a.device.tlbInvRangeDomain(a.domain, (GUEST_IPA + 2) * PAGE, PAGE, PAGE, true);
    expect(cmds(rig, 0, OP.CMD_ATC_INV)).toBeGreaterThan(0);
    const out = dmaRun(rig, 0, 0x20, 0, GUEST_IPA, 4);
    expect(out[2]).toBe(XlateFault.TRANSLATION);
    expect(rig.checker.hitsByCache.get('ATC')).toBe(3);
    expect(rig.checker.report).toEqual([]);
  });

  it('NEGATIVE CONTROL: BTM with an SMMU VMID that is not the VM\'s KVM VMID — the broadcast misses, stale hit reported', () => {
    const rig = new Rig({ btm: true });
    const s2 = rig.newVm(1);
    rig.newVm(2);
    rig.vcpuLoad(1, 2);
    expect(rig.vcpuLoad(0, 1)).toBe(2);
    const a = rig.vfio.assignDevice(1, 0x20, { s2Table: s2, smmu: 0 }); // the SMMU's own IDA
    expect(a.vmid).toBe(1);
    dmaRun(rig, 0, 0x20, 0, GUEST_IPA, 4);
    rig.kvmUnmap(1, GUEST_IPA + 1, 1); // carries VMID 2
    rig.dma(0, 0x20, 0, GUEST_IPA + 1);
    expect(rig.checker.count('stale')).toBe(1);
  });

  it.each([{ btm: true }, { btm: false }])('nested device over the shared stage 2 (btm=$btm): KVM unmap of the backing IPA removes the combined S1+S2 entry', ({ btm }) => {
    const rig = new Rig({ btm, smmuVmid: 'kvm-pinned', vmidScope: 'vm' });
    const s2 = rig.newVm(1);
    rig.vcpuLoad(0, 1);
    const g = rig.guestS1(1, 8); // IOVA GUEST_IPA+i -> IPA GUEST_IPA+8+i
    const a = rig.vfio.assignDevice(1, 0x21, {
      s2Table: s2, smmu: 0, nested: { cds: [newCd({ ASID: 3, ASET: 1, TTB0: tableBase(g.id) })] },
    });
    expect(a.domain.nestParent).toBe(true);
    const first = dmaRun(rig, 0, 0x21, 0, GUEST_IPA, 4);
    expect(first[0]).toBe(s2.walk(GUEST_IPA + 8));
    dmaRun(rig, 0, 0x21, 0, GUEST_IPA, 4);
    rig.kvmUnmap(1, GUEST_IPA + 9, 1); // backs IOVA GUEST_IPA+1
    // BTM: VMALLE1IS of __kvm_tlb_flush_vmid_ipa removes the VMID's combined entries.
    // PTM: the driver does it (TLBI_S2_IPA + TLBI_NH_ALL for a nesting parent).
    if (!btm) a.device.tlbInvRangeDomain(a.domain, (GUEST_IPA + 9) * PAGE, PAGE, PAGE, true);
    const out = dmaRun(rig, 0, 0x21, 0, GUEST_IPA, 4);
    expect(out[1]).toBe(XlateFault.TRANSLATION);
    expect(out[2]).toBe(first[2]);
    expect(rig.checker.hits).toBe(4);
    expect(rig.checker.report).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('nested device with a private stage-2 nesting parent', () => {
  function setup() {
    const rig = new Rig({ btm: true });
    rig.newVm(1);
    rig.vcpuLoad(0, 1);
    const g = rig.guestS1(1, 8);
    const a = rig.vfio.assignDevice(1, 0x30, {
      s2Table: rig.privateS2(1), smmu: 1, nested: { cds: [newCd({ ASID: 3, ASET: 1, TTB0: tableBase(g.id) })] },
    });
    return { rig, a };
  }

  it('the driver\'s unmap of a parent page (TLBI_S2_IPA + TLBI_NH_ALL) removes the combined entries', () => {
    const { rig, a } = setup();
    dmaRun(rig, 1, 0x30, 0, GUEST_IPA, 4);
    const nhAll = cmds(rig, 1, OP.CMD_TLBI_NH_ALL);
    rig.driverUnmap(a.nested!, GUEST_IPA + 10, 1); // backs IOVA GUEST_IPA+2
    expect(cmds(rig, 1, OP.CMD_TLBI_NH_ALL)).toBe(nhAll + 1);
    expect(rig.dma(1, 0x30, 0, GUEST_IPA + 2)).toBe(XlateFault.TRANSLATION);
    expect(rig.checker.report).toEqual([]);
  });

  it('NEGATIVE CONTROL: a stage-2 IPA invalidation alone leaves the combined entry (why nesting parents add TLBI_NH_ALL)', () => {
    const { rig, a } = setup();
    dmaRun(rig, 1, 0x30, 0, GUEST_IPA, 4);
    a.domain.nestParent = false; // fault injection: the pre-v6.13 invalidation of a plain S2 domain
    rig.driverUnmap(a.domain, GUEST_IPA + 10, 1);
    rig.dma(1, 0x30, 0, GUEST_IPA + 2);
    expect(rig.checker.count('stale')).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------

describe.each([{ vhe: false }, { vhe: true }])('SVA munmap (vhe=$vhe)', ({ vhe }) => {
  const tlbiOps = vhe ? [OP.CMD_TLBI_EL2_VA, OP.CMD_TLBI_EL2_ASID] : [OP.CMD_TLBI_NH_VA, OP.CMD_TLBI_NH_ASID];
  const s1Tlbis = (rig: Rig): number => tlbiOps.reduce((n, op) => n + cmds(rig, 0, op), 0);

  it('era shared + BTM: the pinned CPU ASID lets the CPU\'s broadcast invalidate the SMMU; the notifier sends no TLBI', () => {
    const rig = new Rig({ btm: true, vhe, svaEra: 'shared' });
    const p = rig.bindSva(0, 0x40, 1, { pages: 1024 });
    expect(p.domain.effectiveAsid).toBe(rig.asids.asidOf(p.mm));
    expect(rig.asids.pinnedRefcount(p.mm)).toBe(1);
    dmaRun(rig, 0, 0x40, 1, HOST_VA, 16);
    const before = s1Tlbis(rig);
    rig.munmap(p, HOST_VA + 4, 4); // flush_tlb_range: VAE1IS per page + notifier
    let out = dmaRun(rig, 0, 0x40, 1, HOST_VA, 16);
    expect(out.slice(4, 8)).toEqual(Array(4).fill(XlateFault.TRANSLATION));
    expect(rig.checker.hits).toBe(12);
    // A 600-page munmap falls back to flush_tlb_mm (ASIDE1IS; notifier 0..ULONG_MAX).
    rig.munmap(p, HOST_VA + 8, 600);
    out = dmaRun(rig, 0, 0x40, 1, HOST_VA, 16);
    expect(out.slice(8)).toEqual(Array(8).fill(XlateFault.TRANSLATION));
    expect(s1Tlbis(rig)).toBe(before);
    expect(stat(rig, 0, SmmuStat.DVM_TLBI)).toBeGreaterThan(0);
    expect(rig.checker.report).toEqual([]);
  });

  it.each(['private', 'shared'] as const)('era %s + PTM: the notifier\'s command-queue TLBI invalidates the SMMU', (era) => {
    const rig = new Rig({ btm: false, vhe, svaEra: era });
    const p = rig.bindSva(0, 0x40, 1, { pages: 1024 });
    expect(rig.asids.pinnedRefcount(p.mm)).toBe(era === 'shared' ? 1 : 0);
    dmaRun(rig, 0, 0x40, 1, HOST_VA, 16);
    const before = s1Tlbis(rig);
    rig.munmap(p, HOST_VA + 4, 4); // notifier → TLBI_NH_VA / EL2_VA range + SYNC
    expect(s1Tlbis(rig)).toBeGreaterThan(before);
    let out = dmaRun(rig, 0, 0x40, 1, HOST_VA, 16);
    expect(out.slice(4, 8)).toEqual(Array(4).fill(XlateFault.TRANSLATION));
    expect(rig.checker.hits).toBe(12);
    // flush_tlb_mm fallback: notifier 0..ULONG_MAX → TLBI by ASID: every entry of the ASID goes.
    const asidTlbis = cmds(rig, 0, tlbiOps[1]);
    rig.munmap(p, HOST_VA + 12, 600);
    expect(cmds(rig, 0, tlbiOps[1])).toBe(asidTlbis + 1);
    out = dmaRun(rig, 0, 0x40, 1, HOST_VA, 16);
    expect(out.filter((o) => o === XlateFault.TRANSLATION)).toHaveLength(8);
    expect(rig.checker.hits).toBe(12);
    expect(stat(rig, 0, SmmuStat.DVM_TLBI)).toBe(0);
    expect(rig.checker.report).toEqual([]);
  });

  it('NEGATIVE CONTROL: dropBroadcasts (MMU-700 erratum 2812531 class) with era shared relying on BTM — munmap then DMA is stale', () => {
    const rig = new Rig({ btm: true, vhe, svaEra: 'shared' });
    rig.sys.smmus[0].dropBroadcasts = true;
    const p = rig.bindSva(0, 0x40, 1);
    dmaRun(rig, 0, 0x40, 1, HOST_VA, 8);
    rig.munmap(p, HOST_VA + 2, 2);
    dmaRun(rig, 0, 0x40, 1, HOST_VA, 8);
    expect(rig.checker.count('stale')).toBe(2);
    expect(rig.checker.violations.map((v) => v.page)).toEqual([HOST_VA + 2, HOST_VA + 3]);
  });
});

describe('SVA shared ASID across CPU ASID rollovers (4-bit CPU ASIDs)', () => {
  /** Bind mm A on CPU 0, DMA, leave A, then churn host mms on CPU 1 until another mm holds A's old ASID. */
  function churn(rig: Rig, p: SvaProc): { a0: number; taken: boolean } {
    const a0 = rig.asids.asidOf(p.mm);
    dmaRun(rig, 0, 0x40, 1, HOST_VA, 8);
    rig.switchTo(0, rig.newMm()); // A is not running anywhere: its ASID is not reserved
    const gen0 = rig.asids.generation;
    let taken = false;
    for (let i = 0; i < 200 && !taken; i++) {
      const asid = rig.switchTo(1, rig.newMm());
      taken = rig.asids.generation > gen0 && asid === a0;
    }
    expect(rig.asids.rollovers).toBeGreaterThan(0);
    return { a0, taken };
  }

  it('the pinned ASID is never handed to another mm, and munmap keeps invalidating the SMMU', () => {
    const rig = new Rig({ btm: true, svaEra: 'shared', cpuAsidBits: 4, cpus: 2 });
    const p = rig.bindSva(0, 0x40, 0);
    const { a0, taken } = churn(rig, p);
    expect(taken).toBe(false);
    expect(rig.switchTo(0, p.mm)).toBe(a0);
    dmaRun(rig, 0, 0x40, 1, HOST_VA, 8);
    rig.munmap(p, HOST_VA + 3, 2);
    const out = dmaRun(rig, 0, 0x40, 1, HOST_VA, 8);
    expect(out.slice(3, 5)).toEqual([XlateFault.TRANSLATION, XlateFault.TRANSLATION]);
    expect(rig.checker.hits).toBeGreaterThan(0);
    expect(rig.checker.report).toEqual([]);
  });

  it('NEGATIVE CONTROL: the CPU ASID shared without pinning — after a rollover munmap uses a new ASID and misses the SMMU', () => {
    const rig = new Rig({
      btm: true, svaEra: 'shared', cpuAsidBits: 4, cpus: 2,
      pinner: (r) => ({ contextGet: (mm) => r.asids.asidOf(mm), contextPut: () => {} }),
    });
    const p = rig.bindSva(0, 0x40, 0);
    const { a0, taken } = churn(rig, p);
    expect(taken).toBe(true);
    const a1 = rig.munmap(p, HOST_VA + 3, 2);
    expect(a1).not.toBe(a0);
    dmaRun(rig, 0, 0x40, 1, HOST_VA, 8);
    expect(rig.checker.count('stale')).toBe(2);
  });
});

describe('SVA era shared: KPTI and ASID seizure', () => {
  it('KPTI: the SMMU shares the user ASID (ASID|1) and the doubled TLBIs of flush_tlb_range reach it', () => {
    const rig = new Rig({ btm: true, svaEra: 'shared', kpti: true });
    const p = rig.bindSva(0, 0x40, 1);
    expect(p.domain.effectiveAsid).toBe(rig.asids.asidOf(p.mm) | 1);
    dmaRun(rig, 0, 0x40, 1, HOST_VA, 8);
    rig.munmap(p, HOST_VA + 2, 3);
    const out = dmaRun(rig, 0, 0x40, 1, HOST_VA, 8);
    expect(out.slice(2, 5)).toEqual(Array(3).fill(XlateFault.TRANSLATION));
    expect(rig.checker.hits).toBe(5);
    expect(rig.checker.report).toEqual([]);
  });

  it('NEGATIVE CONTROL: KPTI without the user-ASID TLBIs (flush options kpti=false) misses the SMMU\'s ASID|1 entries', () => {
    const rig = new Rig({ btm: true, svaEra: 'shared', kpti: true });
    const p = rig.bindSva(0, 0x40, 1);
    p.flushOpts.kpti = false;
    dmaRun(rig, 0, 0x40, 1, HOST_VA, 8);
    rig.munmap(p, HOST_VA + 2, 3);
    dmaRun(rig, 0, 0x40, 1, HOST_VA, 8);
    expect(rig.checker.count('stale')).toBe(3);
  });

  it('binding an mm whose CPU ASID a private S1 domain holds seizes it: new ASID, CDs rewritten, old ASID flushed, no aliasing', () => {
    const rig = new Rig({ btm: true, svaEra: 'shared' });
    const mm = rig.newMm();
    const cpuAsid = rig.switchTo(1, mm);
    const dev = rig.devs[0];
    let victim = dev.allocS1Domain();
    for (let i = 0; i < 16 && victim.asid !== cpuAsid; i++) victim = dev.allocS1Domain();
    expect(victim.asid).toBe(cpuAsid);
    victim.table!.mapLinear(HOST_VA, 8, 0x9000000); // the DMA domain uses the same IOVAs as the process
    dev.attach(victim, 0x70);
    dmaRun(rig, 0, 0x70, 0, HOST_VA, 8);
    const p = rig.bindSva(0, 0x40, 1, { mm });
    expect(dev.stats[DevStat.ASID_SEIZURES]).toBe(1);
    expect(p.domain.effectiveAsid).toBe(cpuAsid);
    expect(victim.asid).not.toBe(cpuAsid);
    // SVA traffic with the seized ASID must not find the DMA domain's entries, and vice versa.
    expect(dmaRun(rig, 0, 0x40, 1, HOST_VA, 8)).toEqual([...Array(8).keys()].map((i) => p.table.walk(HOST_VA + i)));
    expect(dmaRun(rig, 0, 0x70, 0, HOST_VA, 8)).toEqual([...Array(8).keys()].map((i) => 0x9000000 + i));
    dmaRun(rig, 0, 0x40, 1, HOST_VA, 8);
    dmaRun(rig, 0, 0x70, 0, HOST_VA, 8);
    expect(rig.checker.hits).toBe(16);
    expect(rig.checker.report).toEqual([]);
  });
});

describe('2 MiB block mappings', () => {
  const B = 0x80000; // a 512-page-aligned IPA / VA page number outside the linear regions
  const OUT = 0x200000;

  it('KVM unmap of a stage-2 block (level-2 TTL hint) reaches the shared-table SMMU entry with BTM', () => {
    const rig = new Rig({ btm: true, smmuVmid: 'kvm-pinned', vmidScope: 'vm' });
    const s2 = rig.newVm(1);
    s2.map(B, OUT, 9);
    const vmid = rig.vcpuLoad(0, 1);
    rig.vfio.assignDevice(1, 0x20, { s2Table: s2, smmu: 0 });
    expect(rig.dma(0, 0x20, 0, B + 3)).toBe(OUT + 3);
    expect(rig.dma(0, 0x20, 0, B + 300)).toBe(OUT + 300); // hit on the block entry
    expect(s2.unmap(B)).toBe(9);
    kvmUnmapRange(rig.ops[0], rig.pes[0], vmid, B, 512, [{ ipaPage: B, level: 2 }], rig.kvmOpts);
    expect(rig.dma(0, 0x20, 0, B + 300)).toBe(XlateFault.TRANSLATION);
    expect(rig.checker.hits).toBe(1);
    expect(rig.checker.report).toEqual([]);
  });

  it('the driver\'s invalidation of a private stage-2 block (granule = block size, TTL 2)', () => {
    const rig = new Rig({ btm: false });
    rig.newVm(1);
    const a = rig.vfio.assignDevice(1, 0x10, { s2Table: rig.privateS2(1), smmu: 0 });
    const t = a.domain.table!;
    t.map(B, OUT, 9);
    dmaRun(rig, 0, 0x10, 0, B, 4);
    t.unmap(B);
    a.device.tlbInvRangeDomain(a.domain, B * PAGE, 512 * PAGE, 512 * PAGE, true);
    expect(dmaRun(rig, 0, 0x10, 0, B, 4)).toEqual(Array(4).fill(XlateFault.TRANSLATION));
    expect(rig.checker.hits).toBe(3);
    expect(rig.checker.report).toEqual([]);
  });

  it.each([{ btm: true }, { btm: false }])('munmap of a THP mapped by an SVA process (stride 2 MiB, level 2; btm=$btm)', ({ btm }) => {
    const rig = new Rig({ btm, svaEra: btm ? 'shared' : 'private' });
    const p = rig.bindSva(0, 0x40, 1);
    p.table.map(B, OUT, 9);
    dmaRun(rig, 0, 0x40, 1, B, 4);
    p.table.unmap(B);
    const asid = rig.switchTo(p.cpu, p.mm);
    // tlb_flush of a PMD: __flush_tlb_range(start, end, PMD_SIZE, last_level, 2)
    flushTlbRange(rig.ops[p.cpu], asid, B * PAGE, (B + 512) * PAGE, 512 * PAGE, true, 2, p.flushOpts);
    expect(dmaRun(rig, 0, 0x40, 1, B, 4)).toEqual(Array(4).fill(XlateFault.TRANSLATION));
    expect(rig.checker.hits).toBe(3);
    expect(rig.checker.report).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('KVM VMID rollover (3-bit VMIDs)', () => {
  it.each([{ btm: true }, { btm: false }])('ALLE1IS of kvmFlushVmContext (btm=$btm): SMMU entries wiped only with BTM, none stale', ({ btm }) => {
    const rig = new Rig({ btm, kvmVmidBits: 3, cpus: 2 });
    for (let vm = 1; vm <= 9; vm++) rig.newVm(vm);
    rig.vcpuLoad(0, 1);
    const a = rig.vfio.assignDevice(1, 0x10, { s2Table: rig.privateS2(1), smmu: 0 });
    const first = dmaRun(rig, 0, 0x10, 0, GUEST_IPA, 8);
    const inv = stat(rig, 0, SmmuStat.ENTRIES_INVALIDATED);
    for (let vm = 2; vm <= 9; vm++) rig.vcpuLoad(1, vm);
    expect(rig.kvm.rollovers).toBe(1);
    expect(rig.kvmVmFlushes).toBe(1);
    expect(stat(rig, 0, SmmuStat.ENTRIES_INVALIDATED) - inv).toBe(btm ? 8 : 0);
    expect(dmaRun(rig, 0, 0x10, 0, GUEST_IPA, 8)).toEqual(first);
    expect(rig.checker.hits).toBe(btm ? 0 : 8);
    expect(a.vmid).toBe(1);
    expect(rig.checker.report).toEqual([]);
  });

  it('a KVM VMID pinned for the SMMU survives rollovers: KVM\'s unmaps keep reaching the shared-table SMMU entries', () => {
    const rig = new Rig({ btm: true, kvmVmidBits: 3, cpus: 2, smmuVmid: 'kvm-pinned', vmidScope: 'vm' });
    for (let vm = 1; vm <= 20; vm++) rig.newVm(vm);
    const vmid = rig.vcpuLoad(0, 1);
    const a = rig.vfio.assignDevice(1, 0x20, { s2Table: rig.vmS2.get(1)!, smmu: 0 });
    expect(a.vmid).toBe(vmid);
    rig.vcpuPut(0);
    let vm = 2;
    for (let round = 0; round < 6; round++) {
      for (let k = 0; k < 5; k++, vm = vm === 20 ? 2 : vm + 1) rig.vcpuLoad(1, vm);
      // No VM of the current generation holds the pinned VMID.
      for (let o = 2; o <= 20; o++) {
        if (rig.kvm.vmidGenMatch(rig.kvm.vmidOf(o))) expect(rig.kvm.hwVmid(o)).not.toBe(vmid);
      }
      dmaRun(rig, 0, 0x20, 0, GUEST_IPA, 8);
      dmaRun(rig, 0, 0x20, 0, GUEST_IPA, 8);
      const page = GUEST_IPA + (round % 8);
      expect(rig.kvmUnmap(1, page, 1, 1)).toBe(vmid);
      expect(rig.dma(0, 0x20, 0, page)).toBe(XlateFault.TRANSLATION);
      rig.vmS2.get(1)!.remapLinear(page);
    }
    expect(rig.kvm.rollovers).toBeGreaterThanOrEqual(3);
    expect(rig.vcpuLoad(0, 1)).toBe(vmid);
    expect(rig.checker.hits).toBeGreaterThan(0);
    expect(rig.checker.report).toEqual([]);
  });

  it('NEGATIVE CONTROL: the KVM VMID shared without pinning — after rollover the VM\'s unmap carries a new VMID, stale hit reported', () => {
    const rig = new Rig({ btm: true, kvmVmidBits: 3, cpus: 2 });
    rig.devs[0].vmidProvider = { alloc: (_d, ctx) => rig.kvm.hwVmid(ctx.vmId!), free: () => {} };
    for (let vm = 1; vm <= 9; vm++) rig.newVm(vm);
    const v0 = rig.vcpuLoad(0, 1);
    const a = rig.vfio.assignDevice(1, 0x20, { s2Table: rig.vmS2.get(1)!, smmu: 0 });
    expect(a.vmid).toBe(v0);
    rig.vcpuPut(0);
    for (let vm = 2; vm <= 8; vm++) rig.vcpuLoad(1, vm);
    expect(rig.kvm.rollovers).toBe(1);
    expect(rig.vcpuLoad(0, 1)).not.toBe(v0);
    dmaRun(rig, 0, 0x20, 0, GUEST_IPA, 4);
    rig.kvmUnmap(1, GUEST_IPA + 1, 1);
    rig.dma(0, 0x20, 0, GUEST_IPA + 1);
    expect(rig.checker.count('stale')).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------

describe('VMID aliasing between SMMU stage-2 domains', () => {
  function twoTables() {
    const rig = new Rig({ btm: true });
    rig.newVm(1);
    rig.newVm(2);
    return { rig, t1: rig.privateS2(1), t2: rig.privateS2(2), dev: rig.devs[0] };
  }

  it('NEGATIVE CONTROL: a VmidProvider that honours wantVmid for a VMID in use makes two domains alias', () => {
    const { rig, t1, t2, dev } = twoTables();
    dev.vmidProvider = Rig.dupVmidProvider(dev);
    const d1 = dev.allocS2Domain({ table: t1 });
    const d2 = dev.allocS2Domain({ table: t2, wantVmid: d1.vmid });
    expect(d2.vmid).toBe(d1.vmid);
    dev.attach(d1, 0x50);
    dev.attach(d2, 0x51);
    rig.dma(0, 0x50, 0, GUEST_IPA);
    const out = rig.dma(0, 0x51, 0, GUEST_IPA);
    expect(out).toBe(t1.walk(GUEST_IPA)); // device 0x51 reads VM 1's memory
    expect(rig.checker.count('alias')).toBe(1);
    expect(rig.checker.count('stale')).toBe(1);
  });

  it('NEGATIVE CONTROL: an STE rewritten with another domain\'s VMID aliases', () => {
    const { rig, t1, t2, dev } = twoTables();
    const d1 = dev.allocS2Domain({ table: t1 });
    const d2 = dev.allocS2Domain({ table: t2 });
    expect(d2.vmid).not.toBe(d1.vmid);
    dev.attach(d1, 0x50);
    dev.attach(d2, 0x51);
    rig.dma(0, 0x50, 0, GUEST_IPA);
    rig.sys.smmus[0].streamTable.get(0x51)!.S2VMID = d1.vmid;
    rig.sys.smmus[0].invalidateConfigSid(0x51); // CMD_CFGI_STE
    rig.dma(0, 0x51, 0, GUEST_IPA);
    expect(rig.checker.count('alias')).toBe(1);
  });

  function reuse(freeProperly: boolean) {
    const { rig, t1, t2, dev } = twoTables();
    const d1 = dev.allocS2Domain({ table: t1 });
    dev.attach(d1, 0x50);
    dmaRun(rig, 0, 0x50, 0, GUEST_IPA, 4);
    dev.detach(0x50);
    if (freeProperly) dev.freeDomain(d1); // TLBI_S12_VMALL + SYNC, then ida_free
    else dev.vmidProvider.free(d1, d1.vmid); // fault injection: VMID released without the TLBI
    const d3 = dev.allocS2Domain({ table: t2 });
    expect(d3.vmid).toBe(d1.vmid);
    dev.attach(d3, 0x52);
    return { rig, out: dmaRun(rig, 0, 0x52, 0, GUEST_IPA, 4), t2 };
  }

  it('VMID reuse after detach + freeDomain (TLBI_S12_VMALL) does not alias', () => {
    const { rig, out, t2 } = reuse(true);
    expect(out).toEqual([0, 1, 2, 3].map((i) => t2.walk(GUEST_IPA + i)));
    expect(rig.checker.report).toEqual([]);
  });

  it('NEGATIVE CONTROL: VMID reused without CMD_TLBI_S12_VMALL aliases', () => {
    const { rig } = reuse(false);
    expect(rig.checker.count('alias')).toBe(4);
  });
});

// ---------------------------------------------------------------------------------------------

describe('device detach', () => {
  it('DMA aborts after detachDevice (stage-2 and nested devices) and after the SVA unbind; VMIDs and the ASID pin are released', () => {
    const rig = new Rig({ btm: true, svaEra: 'shared' });
    rig.newVm(1);
    rig.vcpuLoad(0, 1);
    rig.vfio.assignDevice(1, 0x60, { s2Table: rig.privateS2(1), smmu: 0 });
    const g = rig.guestS1(1, 4);
    rig.vfio.assignDevice(1, 0x61, {
      s2Table: rig.privateS2(1), smmu: 0, nested: { cds: [newCd({ ASID: 7, ASET: 1, TTB0: tableBase(g.id) })] },
    });
    const p = rig.bindSva(0, 0x62, 1);
    for (let r = 0; r < 2; r++) {
      expect(dmaRun(rig, 0, 0x60, 0, GUEST_IPA, 4).every((o) => o >= 0)).toBe(true);
      expect(dmaRun(rig, 0, 0x61, 0, GUEST_IPA, 4).every((o) => o >= 0)).toBe(true);
      expect(dmaRun(rig, 0, 0x62, 1, HOST_VA, 4).every((o) => o >= 0)).toBe(true);
    }
    expect(rig.devs[0].vmidMap.used).toBe(2);
    rig.vfio.detachDevice(1, 0x60);
    expect(dmaRun(rig, 0, 0x60, 0, GUEST_IPA, 4)).toEqual(Array(4).fill(XlateFault.ABORT));
    rig.vfio.detachDevice(1, 0x61);
    expect(dmaRun(rig, 0, 0x61, 0, GUEST_IPA, 4)).toEqual(Array(4).fill(XlateFault.ABORT));
    expect(rig.devs[0].vmidMap.used).toBe(0);
    p.dev.detach(p.sid, p.ssid);
    p.dev.freeDomain(p.domain);
    expect(dmaRun(rig, 0, 0x62, 1, HOST_VA, 4)).toEqual(Array(4).fill(XlateFault.ABORT));
    expect(rig.asids.pinnedRefcount(p.mm)).toBe(0);
    expect(rig.checker.hits).toBe(12);
    expect(rig.checker.report).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

/**
 * btm-kvm-pinned with s2Tables: shared as src/sim/smmu-side.ts implements it (SmmuSide driven
 * directly with a stub in place of the Simulation). When the KVM pin fails (cap 2^bits − CPUs − 2)
 * the provider falls back to `new IdaVmidProvider(dev.vmidMap, ...)`, but the VMIDs handed out
 * from pins are never recorded in dev.vmidMap, so the fallback returns a VMID that another VM's
 * domain holds as its pinned KVM VMID on the same SMMU (aliasing: cross-VM DMA). And
 * kvmStage2Changed skips the driver's invalidation whenever the SMMU takes broadcasts, although
 * the fallback domain's VMID is not the one KVM's broadcasts carry (stale entries after unmaps).
 */
// Regression: smmu-side.ts once gave the VM past the pin cap IDA VMID 1 (VM 1's pinned KVM VMID)
// and skipped its SMMU invalidation on KVM unmaps under BTM.
describe('btm-kvm-pinned, shared tables, after a pin failure', () => {
  const CPUS = 2;
  const PIN_CAP = 256 - CPUS - 2; // max_pinned_vmids with 8-bit KVM VMIDs

  function pinFailureRig() {
    const lr = loadScenarioText('cpu: { count: 2, vmidBits: 8 }\nsmmu: { count: 1 }\npolicyOptions: { s2Tables: shared }\n', 'inline');
    if (!lr.ok) throw new Error(JSON.stringify(lr.issues));
    const sc = lr.scenario;
    const sys = new HwSystem({ cpus: CPUS, smmus: [defaultSmmuParams()] });
    const ops = sys.pes.map((pe) => new PeCpuOps(pe));
    const kvm = new KvmVmidAllocator({
      bits: 8, cpus: CPUS, pinning: true, pinnedWriteback: true,
      hooks: { onVmFlush: () => kvmFlushVmContext(ops[0]) },
    });
    const noop = (): void => {};
    const stub = {
      hw: sys, kvm, asids: new Arm64AsidAllocator({ bits: 16, cpus: CPUS }), ctxs: new ContextRegistry(),
      metrics: { begin: noop, end: noop, intend: noop, beginKvmAll: noop }, firstExhaustionNs: -1, now: 0,
    };
    const side = new SmmuSide(stub as unknown as Simulation, sc, policyConfig('btm-kvm-pinned', sc));
    const checker = new StaleHitChecker().install(sys.smmus);
    const tables = new Map<number, ReturnType<typeof sys.memory.newTable>>();
    const handles = [];
    for (let vm = 1; vm <= PIN_CAP + 1; vm++) {
      const t = sys.memory.newTable(vm, `vm${vm} KVM stage 2`);
      t.mapLinear(GUEST_IPA, 16, 0x100000 + vm * 0x100);
      tables.set(vm, t);
      handles.push(side.assign(vm, vm, t, 0, 0x1000 + vm, vm)!);
    }
    return { sys, ops, kvm, side, checker, tables, handles, last: PIN_CAP + 1 };
  }

  it('the VM past the pin cap falls back to an SMMU VMID that no pinned KVM VMID uses', () => {
    const { side, kvm, handles, last } = pinFailureRig();
    expect(side.pinStats()).toMatchObject({ pinned: PIN_CAP, pinFailures: 1 });
    expect(handles[0].assignment!.vmid).toBe(kvm.hwVmid(1));
    const fallback = handles[last - 1].assignment!.vmid;
    for (let vm = 1; vm < last; vm++) expect(kvm.hwVmid(vm)).not.toBe(fallback);
  });

  it('the fallback VMID does not alias another VM\'s pinned VMID (no cross-VM DMA)', () => {
    const { sys, checker, last } = pinFailureRig();
    sys.smmus[0].translate(0x1001, 0, GUEST_IPA + 3); // VM 1's device fills VMID 1
    sys.smmus[0].translate(0x1000 + last, 0, GUEST_IPA + 3); // VM 253's device hits it
    expect(checker.report).toEqual([]);
  });

  it('KVM unmaps of the fallback VM reach its SMMU entries (kvmStage2Changed does not skip them under BTM)', () => {
    const { sys, ops, kvm, side, checker, tables, last } = pinFailureRig();
    const r = kvm.kvmArmVmidUpdate(0, last);
    sys.smmus[0].translate(0x1000 + last, 0, GUEST_IPA + 3);
    // Simulation.kvmUnmap: unmap, kvm_unmap_gfn_range with the VM's VMID, then kvmStage2Changed.
    tables.get(last)!.unmapRange(GUEST_IPA + 3, 1);
    kvmUnmapRange(ops[1], sys.pes[1], r.hw, GUEST_IPA + 3, 1, [{ ipaPage: GUEST_IPA + 3, level: 3 }]);
    side.kvmStage2Changed(last, GUEST_IPA + 3, 1);
    sys.smmus[0].translate(0x1000 + last, 0, GUEST_IPA + 3);
    expect(checker.report).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

interface Endpoint {
  smmu: number;
  sid: number;
  ssid: number;
  base: number;
  vm: number;
  nested: boolean;
  a: Assignment | null;
  sva: SvaProc | null;
}

const POLICIES = [
  { name: 'ptm (mainline, private SVA ASIDs)', btm: false, pinned: false },
  { name: 'btm-2020 (shared SVA ASIDs, SMMU VMIDs from the IDA)', btm: true, pinned: false },
  { name: 'btm-kvm-pinned (stage 2 shared with KVM)', btm: true, pinned: true },
];

const VARIANTS = [
  { variant: 'plain', caches: false, cpuFeatures: false },
  { variant: 'micro-TLBs + ATS', caches: true, cpuFeatures: false },
  { variant: 'VHE + KPTI + FEAT_TLBIRANGE', caches: false, cpuFeatures: true },
];

describe.each(POLICIES.flatMap((p) => VARIANTS.map((v) => ({ ...p, ...v }))))(
  'random interleaving of every flow under $name, $variant', ({ btm, pinned, caches, cpuFeatures }) => {
  it('zero violations across DMA, KVM unmaps and flushes, driver unmaps, SVA munmaps, vCPU/ASID churn with rollovers, guest TLBIs, detach/reassign', () => {
    const rig = new Rig({
      btm, cpus: 2, smmus: 2, kvmVmidBits: 3, cpuAsidBits: 4, svaEra: btm ? 'shared' : 'private',
      vhe: cpuFeatures, kpti: cpuFeatures, tlbiRange: cpuFeatures,
      smmuVmid: pinned ? 'kvm-pinned' : 'ida', vmidScope: pinned ? 'vm' : 'device',
      smmuParams: caches ? { microTlbEntries: 8, atcEntries: 16 } : {},
    });
    // ATS on the SVA endpoints, and on the assigned devices where the driver owns the stage 2
    // (with a stage 2 shared with KVM nothing would invalidate a device ATC on KVM's unmaps).
    const devAts = caches && !pinned;
    const rng = new Prng(0x5eed, btm ? (pinned ? 3 : 2) : 1);
    const VMS = 10;
    for (let vm = 1; vm <= VMS; vm++) rig.newVm(vm);
    const s2For = (vm: number) => (pinned ? rig.vmS2.get(vm)! : rig.privateS2(vm));
    const guestCds = (vm: number) => [newCd({ ASID: 5, ASET: 1, TTB0: tableBase(rig.guestS1(vm, 8).id) })];
    const eps: Endpoint[] = [];
    const assign = (e: Endpoint): void => {
      e.a = rig.vfio.assignDevice(e.vm, e.sid, {
        s2Table: s2For(e.vm), smmu: e.smmu, ats: devAts, ...(e.nested ? { nested: { cds: guestCds(e.vm) } } : {}),
      });
    };
    for (const [vm, smmu, nested] of [[1, 0, false], [2, 1, true], [3, 1, false]] as const) {
      const e: Endpoint = { smmu, sid: 0x100 + vm, ssid: 0, base: GUEST_IPA, vm, nested, a: null, sva: null };
      assign(e);
      eps.push(e);
    }
    for (const [smmu, cpu] of [[0, 0], [1, 1]] as const) {
      const p = rig.bindSva(smmu, 0x200 + smmu, cpu, { pages: 1024, ats: caches });
      eps.push({ smmu, sid: p.sid, ssid: p.ssid, base: HOST_VA, vm: 0, nested: false, a: null, sva: p });
    }
    const hostMms = Array.from({ length: 24 }, () => rig.newMm());
    const tables = new Set([...rig.vmS2.values(), ...eps.map((e) => (e.a !== null ? e.a.domain.table! : e.sva!.table))]);
    const guestVae1 = newTlbiArgs(TLBI.VAE1);
    let dmas = 0, faults = 0;

    for (let step = 0; step < 4000; step++) {
      const r = rng.int(100);
      if (r < 45) {
        const e = eps[rng.int(eps.length)];
        const out = rig.dma(e.smmu, e.sid, e.ssid, e.base + rng.int(16));
        dmas++;
        if (out < 0) { faults++; expect(out).toBe(XlateFault.TRANSLATION); }
      } else if (r < 55) {
        rig.vcpuLoad(rng.int(2), 1 + rng.int(VMS));
      } else if (r < 58) {
        rig.vcpuPut(rng.int(2));
      } else if (r < 64) {
        const vm = 1 + rng.int(VMS);
        rig.kvmUnmap(vm, GUEST_IPA + rng.int(24), 1 + rng.int(3));
      } else if (r < 67) {
        const vm = 1 + rng.int(VMS);
        const vmid = rig.kvm.hwVmid(vm);
        const cpu = rig.kvmCpu(vm);
        if (vmid !== 0) kvmFlushRemoteTlbs(rig.ops[cpu], rig.pes[cpu], vmid);
      } else if (r < 72) {
        // The SMMU driver unmaps from its own stage 2 (private tables only: KVM owns a shared one).
        const e = eps[rng.int(3)];
        if (!pinned && e.a !== null) rig.driverUnmap(e.a.nested ?? e.a.domain, GUEST_IPA + rng.int(24), 1 + rng.int(3));
      } else if (r < 78) {
        const e = eps[3 + rng.int(2)];
        if (rng.chance(0.1)) rig.munmap(e.sva!, HOST_VA, 600);
        else rig.munmap(e.sva!, HOST_VA + rng.int(16), 1 + rng.int(4));
      } else if (r < 86) {
        rig.switchTo(rng.int(2), hostMms[rng.int(hostMms.length)]);
      } else if (r < 90) {
        // A guest TLBI (VAE1, upgraded to IS by HCR_EL2.FB) on a CPU running a vCPU.
        const cpu = rng.int(2);
        if (rig.running[cpu] !== 0) {
          guestVae1.asid = rng.int(8);
          guestVae1.page = GUEST_IPA + rng.int(16);
          rig.pes[cpu].tlbi(guestVae1);
          rig.pes[cpu].dsb();
        }
      } else if (r < 97) {
        // Pages fault back in (same output: no invalidation needed when mapping).
        for (const t of tables) for (const h of [...t.holes]) t.remapLinear(h);
      } else {
        const e = eps[rng.int(3)];
        rig.vfio.detachDevice(e.vm, e.sid, e.smmu);
        expect(rig.dma(e.smmu, e.sid, 0, GUEST_IPA)).toBe(XlateFault.ABORT);
        assign(e);
        tables.add(e.a!.domain.table!);
      }
    }
    expect(rig.checker.report).toEqual([]);
    expect(rig.checker.hits).toBeGreaterThan(150);
    if (caches) {
      expect(rig.checker.hitsByCache.get('ATC')).toBeGreaterThan(50);
      expect(rig.checker.hitsByCache.get('micro-TLB')).toBeGreaterThan(20);
    } else {
      expect(rig.checker.hitsByCache.get('TLB')).toBeGreaterThan(150);
    }
    expect(faults).toBeGreaterThan(0);
    expect(dmas - faults).toBeGreaterThan(rig.checker.hits / 2);
    expect(rig.kvm.rollovers).toBeGreaterThan(0);
    expect(rig.kvmVmFlushes).toBe(rig.kvm.rollovers);
    expect(rig.asids.rollovers).toBeGreaterThan(0);
    expect(rig.kvm.warnings).toEqual([]);
    expect(rig.asids.warnings).toEqual([]);
  });
});
