import { describe, expect, it } from 'vitest';
import { OP } from '../../src/arch/commands.js';
import { IDR0, setField } from '../../src/arch/registers.js';
import { tableBase } from '../../src/hw/memory.js';
import { defaultSmmuParams } from '../../src/hw/smmu/smmu.js';
import { STE_CONFIG, newCd } from '../../src/hw/smmu/structures.js';
import { HwSystem } from '../../src/hw/system.js';
import { ArmSmmuDriver } from '../../src/kernel/smmu-driver/device.js';
import { DriverError } from '../../src/kernel/smmu-driver/ids.js';
import { CommandRecorder } from '../../src/kernel/smmu-driver/trace.js';
import { VfioAssigner, VfioStat, type VmidScope } from '../../src/kernel/vfio/assign.js';

function setup(scope: VmidScope, smmusPerVm = 2, vmid16 = true) {
  const p = defaultSmmuParams();
  const params = { ...p, idr0: setField(p.idr0, IDR0.VMID16, vmid16 ? 1 : 0), atcEntries: 8 };
  const sys = new HwSystem({ cpus: 1, smmus: [params, params] });
  const driver = new ArmSmmuDriver();
  const devs = sys.smmus.map((s) => driver.probe(s));
  const vfio = new VfioAssigner({ smmus: devs, vmidScope: scope, smmusPerVm });
  const vmS2 = sys.memory.newTable(1000, 'VM 1 stage 2');
  return { sys, driver, devs, vfio, vmS2 };
}

describe('vmidScope: VMIDs for N devices of one VM', () => {
  it('device → N VMIDs, vm → 1, vsmmu → smmusPerVm', () => {
    const N = 4;
    const counts: Record<string, number> = {};
    for (const scope of ['device', 'vm', 'vsmmu'] as VmidScope[]) {
      const { vfio, vmS2 } = setup(scope, 2);
      for (let i = 0; i < N; i++) vfio.assignDevice(1, 0x100 + i, { s2Table: vmS2 });
      counts[scope] = vfio.vmidsOf(1).length;
    }
    expect(counts).toEqual({ device: 4, vm: 1, vsmmu: 2 });
  });

  it('device scope: distinct VMIDs per SMMU IDA, devices spread over the VM\'s SMMUs', () => {
    const { vfio, vmS2, devs } = setup('device', 2);
    const as = [0, 1, 2, 3].map((i) => vfio.assignDevice(1, 0x100 + i, { s2Table: vmS2 }));
    expect(as.map((a) => a.smmuIndex)).toEqual([0, 1, 0, 1]);
    expect(as.map((a) => a.vmid)).toEqual([1, 1, 2, 2]); // per-SMMU IDAs both start at 1
    expect(devs[0].vmidMap.used + devs[1].vmidMap.used).toBe(4);
  });

  it('vm scope: the same VMID number on both SMMUs, one domain per SMMU sharing the VM table', () => {
    const { vfio, vmS2, sys } = setup('vm', 2);
    const as = [0, 1, 2].map((i) => vfio.assignDevice(1, 0x100 + i, { s2Table: vmS2 }));
    expect(new Set(as.map((a) => a.vmid))).toEqual(new Set([1]));
    expect(as[0].domain).toBe(as[2].domain);
    expect(as[0].domain).not.toBe(as[1].domain);
    expect(as[1].domain.table).toBe(vmS2);
    vmS2.map(0x40000, 0x80000);
    expect(sys.smmus[0].translate(0x100, 0, 0x40000)).toBe(0x80000);
    expect(sys.smmus[1].translate(0x101, 0, 0x40000)).toBe(0x80000);
    expect(sys.smmus[1].tlb.vmid[sys.smmus[1].lastSlot]).toBe(1);
  });

  it('vm scope: the VM-wide VMID must be free on every SMMU (ENOSPC otherwise)', () => {
    const { vfio, vmS2, devs } = setup('vm', 2);
    devs[1].allocS2Domain(); // an unrelated domain holds VMID 1 on SMMU 1
    vfio.assignDevice(1, 0x100, { s2Table: vmS2 });
    expect(() => vfio.assignDevice(1, 0x101, { s2Table: vmS2 })).toThrow(/ENOSPC/);
    expect(vfio.stats[VfioStat.VMID_FAILURES]).toBe(1);
    expect(vfio.assignmentsOf(1).length).toBe(1);
  });

  it('vsmmu scope: one VMID per (VM, SMMU); the S2 domain is a nesting parent', () => {
    const { vfio, vmS2 } = setup('vsmmu', 2);
    const as = [0, 1, 2, 3].map((i) => vfio.assignDevice(1, 0x100 + i, { s2Table: vmS2 }));
    expect(vfio.parentsOf(1).map((p) => p.domains.size)).toEqual([1, 1]);
    expect(as.every((a) => a.domain.nestParent)).toBe(true);
    const b = vfio.assignDevice(2, 0x200, { s2Table: vmS2, smmu: 0 });
    expect(b.vmid).toBe(2); // VM 2's vSMMU on SMMU 0
  });
});

describe('detach and free', () => {
  it('the last device leaving frees the S2 domain: TLBI_S12_VMALL + SYNC, VMID released', () => {
    const { vfio, vmS2, sys, devs } = setup('vm', 1);
    const rec = new CommandRecorder(sys.smmus[0]);
    vfio.assignDevice(1, 0x10, { s2Table: vmS2 });
    vfio.assignDevice(1, 0x11, { s2Table: vmS2 });
    vmS2.map(5, 6);
    sys.smmus[0].translate(0x10, 0, 5);
    rec.clear();
    vfio.detachDevice(1, 0x10);
    expect(rec.texts()).toEqual(['CFGI_STE sid=16 leaf=1', 'SYNC', 'PREFETCH_CONFIG sid=16']);
    rec.clear();
    vfio.detachDevice(1, 0x11);
    expect(rec.texts()).toEqual(['CFGI_STE sid=17 leaf=1', 'SYNC', 'PREFETCH_CONFIG sid=17', 'TLBI_S12_VMALL vmid=1', 'SYNC']);
    expect(sys.smmus[0].tlb.size).toBe(0);
    expect(devs[0].vmidMap.used).toBe(0);
    expect(vfio.vmidsOf(1)).toEqual([]);
    expect(sys.smmus[0].commandsByOpcode[OP.CMD_TLBI_S12_VMALL]).toBe(1);
    expect(() => vfio.detachDevice(1, 0x11)).toThrow(DriverError);
  });

  it('destroyVm detaches everything', () => {
    const { vfio, vmS2, devs } = setup('device', 2);
    for (let i = 0; i < 5; i++) vfio.assignDevice(3, i, { s2Table: vmS2 });
    vfio.destroyVm(3);
    expect(vfio.assignments.length).toBe(0);
    expect(devs[0].vmidMap.used + devs[1].vmidMap.used).toBe(0);
  });
});

describe('exhaustion with 8-bit VMIDs (SR-IOV)', () => {
  it('device scope: the 256th assigned VF on one SMMU fails with ENOSPC; vm scope does not', () => {
    const d = setup('device', 1, false);
    for (let i = 0; i < 255; i++) d.vfio.assignDevice(1 + (i % 4), 0x1000 + i, { s2Table: d.vmS2 });
    let err: unknown;
    try { d.vfio.assignDevice(9, 0x2000, { s2Table: d.vmS2 }); } catch (e) { err = e; }
    expect((err as DriverError).code).toBe('ENOSPC');
    expect(d.vfio.stats[VfioStat.VMID_FAILURES]).toBe(1);
    expect(d.devs[0].smmu.streamTable.has(0x2000)).toBe(false); // nothing left behind

    const v = setup('vm', 1, false);
    for (let i = 0; i < 300; i++) v.vfio.assignDevice(1, 0x1000 + i, { s2Table: v.vmS2 });
    expect(v.vfio.vmidsOf(1)).toEqual([1]);
  });
});

describe('nested assignment (iommufd, v6.13)', () => {
  it('guest CD table under the S2 nesting parent; translation goes through both stages', () => {
    const { vfio, vmS2, sys } = setup('vm', 1);
    const guestS1 = sys.memory.newTable(2000, 'guest process');
    guestS1.map(0x10, 0x400); // guest VA → IPA
    vmS2.map(0x400, 0x9900); // IPA → PA
    const a = vfio.assignDevice(1, 0x30, {
      s2Table: vmS2, nested: { cds: [newCd({ ASID: 3, TTB0: tableBase(guestS1.id) })] },
    });
    expect(a.domain.nestParent).toBe(true);
    expect(a.nested?.kind).toBe('nested');
    const ste = sys.smmus[0].streamTable.get(0x30)!;
    expect(ste.Config).toBe(STE_CONFIG.NESTED);
    expect(ste.S2VMID).toBe(a.vmid);
    expect(sys.smmus[0].translate(0x30, 0, 0x10)).toBe(0x9900);
    // A non-nested VM domain cannot become a nesting parent afterwards.
    const b = setup('vm', 1);
    b.vfio.assignDevice(1, 1, { s2Table: b.vmS2 });
    expect(() => b.vfio.assignDevice(1, 2, { s2Table: b.vmS2, nested: { cds: [] } })).toThrow(/EINVAL/);
    vfio.detachDevice(1, 0x30);
    expect(vfio.vmidsOf(1)).toEqual([]);
  });
});
