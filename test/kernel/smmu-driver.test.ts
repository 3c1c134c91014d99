import { describe, expect, it } from 'vitest';
import { OP } from '../../src/arch/commands.js';
import { CR2, IDR0, IDR3, REG, getField, setField } from '../../src/arch/registers.js';
import { tableBase } from '../../src/hw/memory.js';
import { SmmuStat, defaultSmmuParams, type SmmuParams } from '../../src/hw/smmu/smmu.js';
import { EATS, STE_CONFIG, STRW } from '../../src/hw/smmu/structures.js';
import { HwSystem } from '../../src/hw/system.js';
import { CMDQ_BATCH_ENTRIES, CmdqStat, SYNC_CS, resetCmdqEnt } from '../../src/kernel/smmu-driver/cmdq-batch.js';
import { ArmSmmuDriver, type ArmSmmuDeviceOptions } from '../../src/kernel/smmu-driver/device.js';
import { DevStat } from '../../src/kernel/smmu-driver/domain.js';
import { FEAT, IIDR_PRODUCTID_ARM_MMU_700, OPT, makeIidr } from '../../src/kernel/smmu-driver/features.js';
import { DriverError, type VmidProvider } from '../../src/kernel/smmu-driver/ids.js';
import { CommandRecorder } from '../../src/kernel/smmu-driver/trace.js';

interface HwOpts {
  ril?: boolean; hyp?: boolean; vmid16?: boolean; asid16?: boolean; msi?: boolean; cohacc?: boolean;
  ats?: boolean; btm?: boolean; iidr?: number; atcEntries?: number;
}

function smmuParams(o: HwOpts = {}): SmmuParams {
  const p = defaultSmmuParams();
  let idr0 = p.idr0;
  const set = (f: typeof IDR0.HYP, v: boolean | undefined): void => {
    if (v !== undefined) idr0 = setField(idr0, f, v ? 1 : 0);
  };
  set(IDR0.HYP, o.hyp); set(IDR0.VMID16, o.vmid16); set(IDR0.ASID16, o.asid16); set(IDR0.MSI, o.msi);
  set(IDR0.COHACC, o.cohacc); set(IDR0.ATS, o.ats); set(IDR0.BTM, o.btm);
  const idr3 = o.ril === undefined ? p.idr3 : setField(p.idr3, IDR3.RIL, o.ril ? 1 : 0);
  return { ...p, idr0, idr3, iidr: o.iidr ?? p.iidr, atcEntries: o.atcEntries ?? p.atcEntries };
}

function boot(hw: HwOpts = {}, opts: ArmSmmuDeviceOptions = {}, n = 1) {
  const sys = new HwSystem({ cpus: 1, smmus: Array.from({ length: n }, () => smmuParams(hw)) });
  const driver = new ArmSmmuDriver();
  const rec = new CommandRecorder(sys.smmus[0]);
  const devs = sys.smmus.map((s) => driver.probe(s, opts));
  return { sys, driver, devs, dev: devs[0], smmu: sys.smmus[0], rec };
}

describe('probe and reset (arm_smmu_device_hw_probe / arm_smmu_device_reset)', () => {
  it('mainline: CR2 = PTM | RECINVSID, reset sequence through the command queue', () => {
    const { dev, smmu, rec } = boot();
    expect(dev.has(FEAT.HYP)).toBe(true);
    expect(dev.has(FEAT.E2H)).toBe(false);
    expect(dev.has(FEAT.BTM)).toBe(false); // IDR0.BTM=1, but mainline never sets FEAT_BTM
    expect(dev.has(FEAT.RANGE_INV)).toBe(true);
    expect(dev.asidBits).toBe(16);
    expect(dev.vmidBits).toBe(16);
    expect(smmu.readReg(REG.CR2)).toBe(0b110);
    expect(smmu.ptm).toBe(true);
    expect(rec.texts()).toEqual([
      'CFGI_ALL', 'SYNC', 'TLBI_EL2_ALL', 'SYNC', 'TLBI_NSNH_ALL', 'SYNC',
    ]);
    expect(smmu.commandsByOpcode[OP.CMD_CFGI_ALL]).toBe(1);
    expect(smmu.commandsByOpcode[OP.CMD_TLBI_EL2_ALL]).toBe(1);
    expect(smmu.commandsByOpcode[OP.CMD_TLBI_NSNH_ALL]).toBe(1);
    expect(smmu.commandsByOpcode[OP.CMD_SYNC]).toBe(3);
    expect(dev.commandsByOpcode[OP.CMD_SYNC]).toBe(3);
    expect(dev.cmdq.stats[CmdqStat.SUBMISSIONS]).toBe(3);
    expect(smmu.smmuEnabled).toBe(true);
    // Coherent + MSI: MSI polling — CS=SIG_IRQ, MSIAddress = the SYNC's own slot, MSH=ISH, OIWB.
    const syncs = rec.log.filter((c) => c.op === OP.CMD_SYNC);
    expect(dev.hasOption(OPT.MSIPOLL)).toBe(true);
    expect(syncs.map((c) => c.cs)).toEqual([SYNC_CS.IRQ, SYNC_CS.IRQ, SYNC_CS.IRQ]);
    expect(syncs.map((c) => c.msiAddr - dev.cmdq.cfg.baseDma)).toEqual([16, 48, 80]); // slots 1, 3, 5
    expect(syncs.every((c) => c.msh === 3 && c.msiAttr === 0xf)).toBe(true);
  });

  it('VHE host: FEAT_E2H and CR2.E2H; btm option (v7 patch): FEAT_BTM and PTM cleared', () => {
    const { dev, smmu } = boot({}, { vhe: true, btm: true });
    expect(dev.has(FEAT.E2H)).toBe(true);
    expect(dev.has(FEAT.BTM)).toBe(true);
    expect(getField(smmu.readReg(REG.CR2), CR2.E2H)).toBe(1);
    expect(smmu.ptm).toBe(false);
    expect(smmu.readReg(REG.CR2)).toBe(0b011);
    expect(smmu.takesBroadcasts).toBe(true);
  });

  it('BTM only when IDR0.BTM && (!vhe || IDR0.HYP)', () => {
    expect(boot({ hyp: false }, { vhe: true, btm: true }).dev.has(FEAT.BTM)).toBe(false);
    expect(boot({ hyp: false }, { vhe: false, btm: true }).dev.has(FEAT.BTM)).toBe(true);
    expect(boot({ btm: false }, { btm: true }).dev.has(FEAT.BTM)).toBe(false);
  });

  it('no HYP: no TLBI_EL2_ALL at reset and no E2H even with VHE', () => {
    const { dev, rec } = boot({ hyp: false }, { vhe: true });
    expect(dev.has(FEAT.E2H)).toBe(false);
    expect(rec.texts()).toEqual(['CFGI_ALL', 'SYNC', 'TLBI_NSNH_ALL', 'SYNC']);
  });

  it('MMU-700 (IIDR 0x487): erratum 2812531 clears BTM and NESTING, sets CMDQ_FORCE_SYNC', () => {
    const { dev, smmu } = boot({ iidr: makeIidr(IIDR_PRODUCTID_ARM_MMU_700, 1, 0) }, { btm: true });
    expect(dev.has(FEAT.BTM)).toBe(false);
    expect(dev.has(FEAT.NESTING)).toBe(false);
    expect(dev.hasOption(OPT.CMDQ_FORCE_SYNC)).toBe(true);
    expect(smmu.ptm).toBe(true);
  });

  it('without MSI polling (non-coherent or no MSI) CMD_SYNC uses CS=SIG_SEV', () => {
    for (const hw of [{ msi: false }, { cohacc: false }]) {
      const { dev, rec } = boot(hw);
      expect(dev.hasOption(OPT.MSIPOLL)).toBe(false);
      const syncs = rec.log.filter((c) => c.op === OP.CMD_SYNC);
      expect(syncs.every((c) => c.cs === SYNC_CS.SEV && c.msiAddr === 0)).toBe(true);
    }
    expect(boot({}, { disableMsipolling: true }).dev.hasOption(OPT.MSIPOLL)).toBe(false);
  });

  it('8-bit ASIDs and VMIDs', () => {
    const { dev } = boot({ asid16: false, vmid16: false });
    expect(dev.asidBits).toBe(8);
    expect(dev.vmidBits).toBe(8);
  });
});

describe('command batching (arm_smmu_cmdq_batch_add / _submit)', () => {
  it('130 invalidations: 3 submissions, the only CMD_SYNC at the end', () => {
    const { dev, smmu, rec } = boot({ ril: false });
    const d = dev.allocS1Domain();
    rec.clear();
    const subs0 = dev.cmdq.stats[CmdqStat.SUBMISSIONS];
    dev.tlbInvRangeDomain(d, 0x100000, 130 * 4096, 4096, true);
    expect(dev.cmdq.stats[CmdqStat.SUBMISSIONS] - subs0).toBe(3);
    expect(dev.cmdq.stats[CmdqStat.BATCH_FULL_FLUSHES]).toBe(2);
    const names = rec.names();
    expect(names.length).toBe(131);
    expect(names.filter((n) => n === 'SYNC').length).toBe(1);
    expect(names[130]).toBe('SYNC');
    expect(smmu.commandsByOpcode[OP.CMD_TLBI_NH_VA]).toBe(130);
    expect(dev.commandsByOpcode[OP.CMD_TLBI_NH_VA]).toBe(130);
    // Consecutive pages, one per command.
    expect(rec.log.slice(0, 130).map((c) => c.page)).toEqual(Array.from({ length: 130 }, (_, i) => 0x100 + i));
  });

  it('OPT_CMDQ_FORCE_SYNC: a CMD_SYNC after every 63 commands', () => {
    const { dev, rec } = boot({ ril: false, iidr: makeIidr(IIDR_PRODUCTID_ARM_MMU_700) });
    const d = dev.allocS1Domain();
    rec.clear();
    const subs0 = dev.cmdq.stats[CmdqStat.SUBMISSIONS];
    dev.tlbInvRangeDomain(d, 0, 130 * 4096, 4096, true);
    expect(dev.cmdq.stats[CmdqStat.SUBMISSIONS] - subs0).toBe(3);
    const names = rec.names();
    const syncAt = names.map((n, i) => (n === 'SYNC' ? i : -1)).filter((i) => i >= 0);
    expect(syncAt).toEqual([63, 127, 132]); // 63 + S, 63 + S, 4 + S
    expect(dev.cmdq.stats[CmdqStat.BATCH_FORCE_SYNC_FLUSHES]).toBe(2);
    expect(CMDQ_BATCH_ENTRIES).toBe(64);
  });

  it('an empty batch_submit still issues a CMD_SYNC', () => {
    const { dev, rec } = boot();
    rec.clear();
    const b = dev.cmdq.batchInit(dev.cmdq.batch);
    dev.cmdq.batchSubmit(b);
    expect(rec.names()).toEqual(['SYNC']);
  });
});

describe('CERROR_ILL handling (__arm_smmu_cmdq_skip_err)', () => {
  it('replaces the illegal command by a CMD_SYNC, acknowledges GERRORN and goes on', () => {
    const { dev, smmu, rec } = boot({ ats: false });
    rec.clear();
    const q = dev.cmdq;
    // CMD_ATC_INV on an SMMU without ATS is CERROR_ILL.
    const b = q.batchInit(q.batch);
    const e = resetCmdqEnt(q.ent, OP.CMD_ATC_INV);
    e.sid = 3; e.atcSize = 52;
    q.batchAdd(b, e);
    const t = resetCmdqEnt(q.ent, OP.CMD_TLBI_NH_ASID);
    t.asid = 9;
    q.batchAdd(b, t);
    q.batchSubmit(b);
    expect(q.stats[CmdqStat.CERRORS]).toBe(1);
    expect(q.stats[CmdqStat.SKIPPED_ILLEGAL]).toBe(1);
    expect(q.lastError).toBe(1);
    expect(smmu.stats[SmmuStat.CERRORS]).toBe(1);
    expect(smmu.cmdqErrorActive).toBe(false);
    expect(smmu.cmdqSpace()).toBe(1 << smmu.cmdqLog2Size); // drained
    // The ATC_INV became a SYNC; the TLBI and the batch's SYNC ran after it.
    expect(rec.texts()).toEqual(['SYNC', 'TLBI_NH_ASID vmid=0 asid=9', 'SYNC']);
    expect(smmu.commandsByOpcode[OP.CMD_ATC_INV]).toBe(0);
    expect(dev.commandsByOpcode[OP.CMD_ATC_INV]).toBe(1); // the driver did issue it
  });
});

describe('ASID XArray and VMID IDA', () => {
  it('one ASID space for all SMMUs, lowest free first', () => {
    const { devs, driver } = boot({}, {}, 2);
    const a = devs[0].allocS1Domain();
    const b = devs[1].allocS1Domain();
    const c = devs[0].allocS1Domain();
    expect([a.asid, b.asid, c.asid]).toEqual([1, 2, 3]);
    devs[0].freeDomain(a);
    expect(driver.asidXa.load(1)).toBeUndefined();
    expect(devs[1].allocS1Domain().asid).toBe(1);
  });

  it('per-SMMU VMID IDA from 1, lowest free, freed with the domain', () => {
    const { devs } = boot({}, {}, 2);
    const a = devs[0].allocS2Domain();
    const b = devs[1].allocS2Domain();
    const c = devs[0].allocS2Domain();
    expect([a.vmid, b.vmid, c.vmid]).toEqual([1, 1, 2]);
    devs[0].freeDomain(a);
    expect(devs[0].vmidMap.isAllocated(1)).toBe(false);
    expect(devs[0].allocS2Domain().vmid).toBe(1);
  });

  it('8-bit VMIDs: 255 stage-2 domains, the 256th fails with ENOSPC and is counted', () => {
    const { dev } = boot({ vmid16: false });
    const doms = Array.from({ length: 255 }, () => dev.allocS2Domain());
    expect(doms[0].vmid).toBe(1);
    expect(doms[254].vmid).toBe(255);
    let err: unknown;
    try { dev.allocS2Domain(); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(DriverError);
    expect((err as DriverError).code).toBe('ENOSPC');
    expect((err as DriverError).errno).toBe(28);
    expect(dev.stats[DevStat.VMID_ALLOC_FAILURES]).toBe(1);
    dev.freeDomain(doms[6]);
    expect(dev.allocS2Domain().vmid).toBe(7);
  });

  it('8-bit ASIDs: the 256th S1 domain fails (xa_alloc -EBUSY)', () => {
    const { dev } = boot({ asid16: false });
    for (let i = 0; i < 255; i++) dev.allocS1Domain();
    expect(() => dev.allocS1Domain()).toThrow(DriverError);
    expect(dev.stats[DevStat.ASID_ALLOC_FAILURES]).toBe(1);
  });

  it('vmidRange restricts the IDA (reserved SMMU range [split, 2^bits))', () => {
    const { dev } = boot({ vmid16: false }, { vmidRange: [200, 255] });
    expect(dev.allocS2Domain().vmid).toBe(200);
    for (let i = 0; i < 55; i++) dev.allocS2Domain();
    expect(() => dev.allocS2Domain()).toThrow(/ENOSPC/);
  });

  it('a pluggable provider (e.g. the VM\'s pinned KVM VMID)', () => {
    const freed: number[] = [];
    const pinned: VmidProvider = {
      alloc: (_d, ctx) => (ctx.vmId === 7 ? 42 : -1),
      free: (_d, v) => { freed.push(v); },
    };
    const { dev } = boot({}, { vmidProvider: pinned });
    const d = dev.allocS2Domain({ vmId: 7 });
    expect(d.vmid).toBe(42);
    expect(() => dev.allocS2Domain({ vmId: 8 })).toThrow(/ENOSPC/);
    dev.freeDomain(d);
    expect(freed).toEqual([42]);
  });
});

describe('domains: attach, translate, detach, free', () => {
  it('S1 domain: CD (private ASID, ASET=1) + CFGI_CD, STE Config=S1/S2VMID=0 + CFGI_STE, translation works', () => {
    const { dev, smmu, rec } = boot();
    const d = dev.allocS1Domain();
    rec.clear();
    dev.attach(d, 0x10);
    expect(rec.texts()).toEqual([
      'CFGI_CD sid=16 ssid=0 leaf=1', 'SYNC', 'CFGI_STE sid=16 leaf=1', 'SYNC', 'PREFETCH_CONFIG sid=16',
    ]);
    const ste = smmu.streamTable.get(0x10)!;
    expect(ste.Config).toBe(STE_CONFIG.S1_TRANS);
    expect(ste.S2VMID).toBe(0);
    expect(ste.STRW).toBe(STRW.EL1);
    const cd = smmu.cdTables.get(ste.S1ContextPtr)![0];
    expect(cd).toMatchObject({ V: true, ASID: d.asid, ASET: 1, TTB0: tableBase(d.table!.id) });
    d.table!.map(0x100, 0x9000);
    expect(smmu.translate(0x10, 0, 0x100)).toBe(0x9000);
    expect(smmu.tlb.asid[smmu.lastSlot]).toBe(d.asid);
    expect(smmu.tlb.aset[smmu.lastSlot]).toBe(1);
    expect(smmu.translate(0x10, 0, 0x100)).toBe(0x9000);
    expect(smmu.lastWalk).toBe(0); // hit
  });

  it('S1 domain under VHE: STRW=EL2 (EL2-E2H world)', () => {
    const { dev, smmu } = boot({}, { vhe: true });
    const d = dev.allocS1Domain();
    dev.attach(d, 1);
    expect(smmu.streamTable.get(1)!.STRW).toBe(STRW.EL2);
    d.table!.map(5, 50);
    expect(smmu.translate(1, 0, 5)).toBe(50);
  });

  it('S2 domain: STE Config=S2 with S2VMID and S2TTB; translation tagged with the VMID', () => {
    const { dev, smmu } = boot();
    const d = dev.allocS2Domain();
    dev.attach(d, 7);
    const ste = smmu.streamTable.get(7)!;
    expect(ste).toMatchObject({ Config: STE_CONFIG.S2_TRANS, S2VMID: d.vmid, S2TTB: tableBase(d.table!.id), EATS: EATS.ABT });
    d.table!.map(0x40000, 0x80000);
    expect(smmu.translate(7, 0, 0x40000)).toBe(0x80000);
    expect(smmu.tlb.vmid[smmu.lastSlot]).toBe(d.vmid);
  });

  it('detach writes an abort STE; free issues TLBI by ASID + SYNC and releases the ASID', () => {
    const { dev, smmu, rec, driver } = boot();
    const d = dev.allocS1Domain();
    dev.attach(d, 3);
    d.table!.map(1, 2);
    smmu.translate(3, 0, 1);
    expect(smmu.tlb.size).toBe(1);
    expect(() => dev.freeDomain(d)).toThrow(/EBUSY/);
    rec.clear();
    dev.detach(3);
    expect(rec.texts()).toEqual(['CFGI_STE sid=3 leaf=1', 'SYNC', 'PREFETCH_CONFIG sid=3']);
    expect(smmu.streamTable.get(3)!.Config).toBe(STE_CONFIG.ABORT);
    expect(smmu.translate(3, 0, 1)).toBeLessThan(0);
    rec.clear();
    dev.freeDomain(d);
    expect(rec.texts()).toEqual([`TLBI_NH_ASID vmid=0 asid=${d.asid}`, 'SYNC']);
    expect(smmu.tlb.size).toBe(0);
    expect(driver.asidXa.load(d.asid)).toBeUndefined();
  });

  it('free under FEAT_E2H uses TLBI_EL2_ASID; S2 free uses TLBI_S12_VMALL(vmid)', () => {
    const v = boot({}, { vhe: true });
    const d1 = v.dev.allocS1Domain();
    v.rec.clear();
    v.dev.freeDomain(d1);
    expect(v.rec.texts()).toEqual([`TLBI_EL2_ASID asid=${d1.asid}`, 'SYNC']);

    const { dev, smmu, rec } = boot();
    const d = dev.allocS2Domain();
    dev.attach(d, 4);
    d.table!.map(10, 20);
    smmu.translate(4, 0, 10);
    dev.detach(4);
    rec.clear();
    dev.freeDomain(d);
    expect(rec.texts()).toEqual([`TLBI_S12_VMALL vmid=${d.vmid}`, 'SYNC']);
    expect(smmu.tlb.size).toBe(0);
    expect(dev.vmidMap.isAllocated(d.vmid)).toBe(false);
    expect(smmu.commandsByOpcode[OP.CMD_TLBI_S12_VMALL]).toBe(1);
  });

  it('ATS master: EATS=TRANS and an ATC invalidate-all after the STE; detach flushes the ATC', () => {
    const { dev, smmu, rec } = boot({ atcEntries: 8 });
    const d = dev.allocS2Domain();
    rec.clear();
    dev.attach(d, 9, { ats: true });
    expect(smmu.streamTable.get(9)!.EATS).toBe(EATS.TRANS);
    expect(rec.texts()).toEqual([
      'CFGI_STE sid=9 leaf=1', 'SYNC', 'PREFETCH_CONFIG sid=9', 'ATC_INV sid=9 page=0x0 size=52', 'SYNC',
    ]);
    expect(d.nrAtsMasters).toBe(1);
    rec.clear();
    dev.detach(9);
    expect(rec.texts().slice(3)).toEqual(['ATC_INV sid=9 page=0x0 size=52', 'SYNC']);
    expect(d.nrAtsMasters).toBe(0);
  });

  it('re-attaching a master moves it between domains', () => {
    const { dev, smmu } = boot();
    const a = dev.allocS1Domain();
    const b = dev.allocS2Domain();
    dev.attach(a, 2);
    dev.attach(b, 2);
    expect(a.devices.length).toBe(0);
    expect(b.devices.length).toBe(1);
    expect(smmu.streamTable.get(2)!.Config).toBe(STE_CONFIG.S2_TRANS);
    dev.freeDomain(a);
    expect(() => dev.attach(a, 2)).toThrow(/freed/);
  });

  it('stage-1 domains at a PASID share the master CD table', () => {
    const { dev, smmu } = boot();
    const rid = dev.allocS1Domain();
    const p = dev.allocS1Domain();
    dev.attach(rid, 6, { ssidBits: 4 });
    dev.attach(p, 6, { ssid: 3 });
    const ste = smmu.streamTable.get(6)!;
    expect(ste.S1CDMax).toBe(4);
    expect(ste.S1DSS).toBe(2);
    const cds = smmu.cdTables.get(ste.S1ContextPtr)!;
    expect(cds[3].ASID).toBe(p.asid);
    p.table!.map(7, 70);
    expect(smmu.translate(6, 3, 7)).toBe(70);
    expect(() => dev.attach(p, 6, { ssid: 16 })).toThrow(/EINVAL/);
    dev.detach(6, 3);
    expect(smmu.cdTables.get(ste.S1ContextPtr)![3]).toBeUndefined();
  });
});
