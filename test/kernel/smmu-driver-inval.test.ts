import { describe, expect, it } from 'vitest';
import { OP } from '../../src/arch/commands.js';
import { IDR0, IDR3, setField } from '../../src/arch/registers.js';
import { SmmuStat, defaultSmmuParams, type SmmuParams } from '../../src/hw/smmu/smmu.js';
import { STE_CONFIG, newCd } from '../../src/hw/smmu/structures.js';
import { tableBase } from '../../src/hw/memory.js';
import { HwSystem } from '../../src/hw/system.js';
import { ArmSmmuDriver, type ArmSmmuDeviceOptions } from '../../src/kernel/smmu-driver/device.js';
import { DevStat, SharedCd } from '../../src/kernel/smmu-driver/domain.js';
import { FEAT } from '../../src/kernel/smmu-driver/features.js';
import { DriverError } from '../../src/kernel/smmu-driver/ids.js';
import { atcInvToCmd, ctz, flsXor } from '../../src/kernel/smmu-driver/invalidate.js';
import { newCmdqEnt } from '../../src/kernel/smmu-driver/cmdq-batch.js';
import { SVA_FLUSH_ALL_END, type CpuAsidPinner } from '../../src/kernel/smmu-driver/sva.js';
import { CommandRecorder } from '../../src/kernel/smmu-driver/trace.js';

interface HwOpts { ril?: boolean; hyp?: boolean; ats?: boolean; atcEntries?: number }

function smmuParams(o: HwOpts = {}): SmmuParams {
  const p = defaultSmmuParams();
  let idr0 = p.idr0;
  if (o.hyp !== undefined) idr0 = setField(idr0, IDR0.HYP, o.hyp ? 1 : 0);
  if (o.ats !== undefined) idr0 = setField(idr0, IDR0.ATS, o.ats ? 1 : 0);
  const idr3 = o.ril === undefined ? p.idr3 : setField(p.idr3, IDR3.RIL, o.ril ? 1 : 0);
  return { ...p, idr0, idr3, atcEntries: o.atcEntries ?? 16 };
}

function boot(hw: HwOpts = {}, opts: ArmSmmuDeviceOptions = {}) {
  const sys = new HwSystem({ cpus: 1, smmus: [smmuParams(hw)] });
  const driver = new ArmSmmuDriver();
  const smmu = sys.smmus[0];
  const dev = driver.probe(smmu, opts);
  const rec = new CommandRecorder(smmu);
  return { sys, driver, dev, smmu, rec };
}

const K4 = 4096;

describe('helpers', () => {
  it('__ffs and fls(a ^ b) on 52-bit values', () => {
    expect(ctz(1)).toBe(0);
    expect(ctz(64)).toBe(6);
    expect(ctz(2 ** 40)).toBe(40);
    expect(ctz(3 * 2 ** 35)).toBe(35);
    expect(flsXor(8, 11)).toBe(2); // the kernel comment: [8;11] → span 4
    expect(flsXor(7, 10)).toBe(4); // [7;10] → span 16
    expect(flsXor(5, 5)).toBe(0);
    expect(flsXor(2 ** 40, 2 ** 40 + 1)).toBe(1);
    expect(flsXor(0, 2 ** 45)).toBe(46);
  });

  it('arm_smmu_atc_inv_to_cmd: size 0 → 52; else power-of-two span, start aligned down', () => {
    const e = newCmdqEnt();
    atcInvToCmd(e, 0, 0, 0);
    expect([e.atcSize, e.substreamValid]).toEqual([52, 0]);
    atcInvToCmd(e, 5, 7 * K4, 4 * K4); // pages 7..10
    expect([e.addr, e.atcSize, e.substreamValid, e.ssid]).toEqual([0, 4, 1, 5]);
    atcInvToCmd(e, 0, 8 * K4, 4 * K4); // pages 8..11
    expect([e.addr / K4, e.atcSize]).toEqual([8, 2]);
    atcInvToCmd(e, 0, 0x123000, K4); // one page
    expect([e.addr, e.atcSize]).toEqual([0x123000, 0]);
  });
});

describe('arm_smmu_tlb_inv_context', () => {
  it('S1: TLBI_NH_ASID (VMID 0) + SYNC; FEAT_E2H: TLBI_EL2_ASID; S2: TLBI_S12_VMALL(vmid)', () => {
    const { dev, rec } = boot();
    const s1 = dev.allocS1Domain();
    const s2 = dev.allocS2Domain();
    rec.clear();
    dev.tlbInvContext(s1);
    dev.tlbInvContext(s2);
    expect(rec.texts()).toEqual([
      `TLBI_NH_ASID vmid=0 asid=${s1.asid}`, 'SYNC', `TLBI_S12_VMALL vmid=${s2.vmid}`, 'SYNC',
    ]);
    const v = boot({}, { vhe: true });
    const e = v.dev.allocS1Domain();
    v.rec.clear();
    v.dev.tlbInvContext(e);
    expect(v.rec.texts()).toEqual([`TLBI_EL2_ASID asid=${e.asid}`, 'SYNC']);
  });

  it('then ATC invalidate-all for ATS masters (after the TLBI SYNC)', () => {
    const { dev, rec, smmu } = boot();
    const s2 = dev.allocS2Domain();
    dev.attach(s2, 0x21, { ats: true });
    dev.attach(s2, 0x22); // no ATS: skipped
    s2.table!.map(0x10, 0x20);
    smmu.translate(0x21, 0, 0x10); // fills TLB and the endpoint's ATC
    expect(smmu.atcFor(0x21).size).toBe(1);
    rec.clear();
    dev.tlbInvContext(s2);
    expect(rec.texts()).toEqual([
      `TLBI_S12_VMALL vmid=${s2.vmid}`, 'SYNC', 'ATC_INV sid=33 page=0x0 size=52', 'SYNC',
    ]);
    expect(smmu.atcFor(0x21).size).toBe(0);
    expect(smmu.tlb.size).toBe(0);
  });
});

describe('arm_smmu_tlb_inv_range_domain with FEAT_RANGE_INV (TG/TTL/NUM/SCALE)', () => {
  function rangeCmds(pages: number, leaf: boolean, granule = K4, iova = 0x200000) {
    const { dev, rec, smmu } = boot();
    const d = dev.allocS1Domain();
    rec.clear();
    dev.tlbInvRangeDomain(d, iova, pages * K4, granule, leaf);
    expect(smmu.stats[SmmuStat.CERRORS]).toBe(0); // every encoding is legal
    const log = rec.log;
    expect(log[log.length - 1].name).toBe('SYNC');
    return log.slice(0, -1).map((c) => ({ page: c.page, num: c.num, scale: c.scale, ttl: c.ttl, tg: c.tg, leaf: c.leaf, asid: c.asid, name: c.name }));
  }

  it('1 page leaf: NUM=0 SCALE=0 TTL=3 TG=4K', () => {
    expect(rangeCmds(1, true)).toEqual([{ page: 0x200, num: 0, scale: 0, ttl: 3, tg: 1, leaf: 1, asid: 1, name: 'TLBI_NH_VA' }]);
  });

  it('3 pages: one command, NUM=2 SCALE=0', () => {
    expect(rangeCmds(3, true).map((c) => [c.page, c.num, c.scale])).toEqual([[0x200, 2, 0]]);
  });

  it('64 pages: NUM=0 SCALE=6', () => {
    expect(rangeCmds(64, true).map((c) => [c.page, c.num, c.scale])).toEqual([[0x200, 0, 6]]);
  });

  it('513 pages: 1 page (NUM=0,SCALE=0) then 512 pages (NUM=0,SCALE=9) at +4K', () => {
    expect(rangeCmds(513, true).map((c) => [c.page, c.num, c.scale])).toEqual([[0x200, 0, 0], [0x201, 0, 9]]);
  });

  it('35 pages: 3 pages (NUM=2) then 32 pages (SCALE=5)', () => {
    expect(rangeCmds(35, true).map((c) => [c.page, c.num, c.scale])).toEqual([[0x200, 2, 0], [0x203, 0, 5]]);
  });

  it('non-leaf 1 page: TTL=0 and num_pages bumped to 2 (NUM=0, SCALE=1), never the reserved 0/0/0', () => {
    expect(rangeCmds(1, false)).toEqual([{ page: 0x200, num: 0, scale: 1, ttl: 0, tg: 1, leaf: 0, asid: 1, name: 'TLBI_NH_VA' }]);
    // 33 pages non-leaf: 33 & 31 == 1 → 34 = 17 × 2^1
    expect(rangeCmds(33, false).map((c) => [c.num, c.scale])).toEqual([[16, 1]]);
  });

  it('leaf 2M granule: TTL=2; 1G granule: TTL=1', () => {
    expect(rangeCmds(512, true, 2 * 1024 * 1024).map((c) => [c.ttl, c.num, c.scale])).toEqual([[2, 0, 9]]);
    expect(rangeCmds(262144, true, 1024 * 1024 * 1024)[0].ttl).toBe(1);
  });

  it('the range commands remove exactly the range from the SMMU TLB', () => {
    const { dev, smmu } = boot();
    const d = dev.allocS1Domain();
    dev.attach(d, 1);
    for (let p = 0; p < 40; p++) { d.table!.map(0x300 + p, 0x9000 + p); smmu.translate(1, 0, 0x300 + p); }
    expect(smmu.tlb.size).toBe(40);
    d.table!.unmapRange(0x305, 35);
    dev.tlbInvRangeDomain(d, 0x305 * K4, 35 * K4, K4, true);
    expect(smmu.tlb.size).toBe(5);
    expect(smmu.translate(1, 0, 0x304)).toBe(0x9004);
    expect(smmu.translate(1, 0, 0x305)).toBeLessThan(0);
  });

  it('S2 domain: TLBI_S2_IPA with the VMID', () => {
    const { dev, rec } = boot();
    const d = dev.allocS2Domain();
    rec.clear();
    dev.tlbInvRangeDomain(d, 0x40000000, 2 * K4, K4, true);
    expect(rec.texts()).toEqual([`TLBI_S2_IPA vmid=${d.vmid} page=0x40000 num=0 scale=1 ttl=3 tg=1 leaf=1`, 'SYNC']); // 2 = 1 × 2^1
  });

  it('FEAT_E2H: TLBI_EL2_VA', () => {
    const { dev, rec } = boot({}, { vhe: true });
    const d = dev.allocS1Domain();
    rec.clear();
    dev.tlbInvRangeDomain(d, 0x1000, K4, K4, true);
    expect(rec.texts()).toEqual([`TLBI_EL2_VA asid=${d.asid} page=0x1 num=0 scale=0 ttl=3 tg=1 leaf=1`, 'SYNC']);
  });
});

describe('range invalidation without RIL', () => {
  it('one command per granule, no range fields', () => {
    const { dev, rec } = boot({ ril: false });
    const d = dev.allocS1Domain();
    rec.clear();
    dev.tlbInvRangeDomain(d, 0x5000, 3 * K4, K4, true);
    expect(rec.texts()).toEqual([
      `TLBI_NH_VA vmid=0 asid=${d.asid} page=0x5 leaf=1`,
      `TLBI_NH_VA vmid=0 asid=${d.asid} page=0x6 leaf=1`,
      `TLBI_NH_VA vmid=0 asid=${d.asid} page=0x7 leaf=1`,
      'SYNC',
    ]);
    rec.clear();
    dev.tlbInvRangeDomain(d, 0, 4 * 1024 * 1024, 2 * 1024 * 1024, false); // granule 2M: 2 commands
    expect(rec.names()).toEqual(['TLBI_NH_VA', 'TLBI_NH_VA', 'SYNC']);
    expect(rec.log[1].page).toBe(0x200);
  });
});

describe('ATC invalidation ordering', () => {
  it('ATC_INV only after the TLBIs and their CMD_SYNC; span rule applied', () => {
    const { dev, rec } = boot();
    const d = dev.allocS1Domain();
    dev.attach(d, 0x30, { ats: true });
    rec.clear();
    dev.tlbInvRangeDomain(d, 7 * K4, 3 * K4, K4, true); // pages 7..9
    expect(rec.texts()).toEqual([
      `TLBI_NH_VA vmid=0 asid=${d.asid} page=0x7 num=2 scale=0 ttl=3 tg=1 leaf=1`,
      'SYNC',
      'ATC_INV sid=48 page=0x0 size=4', // 7 ^ 9 = 0b1110 → 16 pages from 0
      'SYNC',
    ]);
  });
});

describe('nesting parent (v6.13)', () => {
  it('range on the S2 parent: S2_IPA + SYNC, TLBI_NH_ALL(vmid) + SYNC, full ATC flush of nested masters', () => {
    const { dev, rec, smmu, sys } = boot();
    const parent = dev.allocS2Domain({ nestParent: true });
    const guestS1 = sys.memory.newTable(77, 'guest S1');
    guestS1.map(0x10, 0x400); // VA page → IPA page
    parent.table!.map(0x400, 0x7700); // IPA page → PA page
    const nd = dev.attachNested(parent, 0x50, { cds: [newCd({ ASID: 9, TTB0: tableBase(guestS1.id) })], ats: true });
    const ste = smmu.streamTable.get(0x50)!;
    expect(ste.Config).toBe(STE_CONFIG.NESTED);
    expect(ste.S2VMID).toBe(parent.vmid);
    expect(nd.vmid).toBe(parent.vmid);
    expect(smmu.translate(0x50, 0, 0x10)).toBe(0x7700);
    expect(smmu.tlb.vmid[smmu.lastSlot]).toBe(parent.vmid);
    expect(smmu.tlb.asid[smmu.lastSlot]).toBe(9);
    rec.clear();
    dev.tlbInvRangeDomain(parent, 0x400 * K4, K4, K4, true);
    expect(rec.texts()).toEqual([
      `TLBI_S2_IPA vmid=${parent.vmid} page=0x400 num=0 scale=0 ttl=3 tg=1 leaf=1`, 'SYNC',
      `TLBI_NH_ALL vmid=${parent.vmid}`, 'SYNC',
      'ATC_INV sid=80 page=0x0 size=52', 'SYNC',
    ]);
    expect(smmu.tlb.size).toBe(0); // the combined entry went with NH_ALL
    dev.detach(0x50);
    dev.freeDomain(nd);
    rec.clear();
    dev.freeDomain(parent);
    expect(rec.texts()).toEqual([`TLBI_S12_VMALL vmid=${parent.vmid}`, 'SYNC']);
  });
});

// ---------------------------------------------------------------------------------------------
// SVA

class FakePinner implements CpuAsidPinner {
  readonly pins = new Map<number, number>();
  gets = 0;
  puts = 0;
  constructor(readonly asidOf: (mm: number) => number, readonly kpti = false) {}
  contextGet(mm: number): number {
    this.gets++;
    const a = this.asidOf(mm);
    if (a === 0) return 0;
    this.pins.set(mm, (this.pins.get(mm) ?? 0) + 1);
    return this.kpti ? a | 1 : a;
  }
  contextPut(mm: number): void {
    this.puts++;
    const n = (this.pins.get(mm) ?? 0) - 1;
    if (n <= 0) this.pins.delete(mm); else this.pins.set(mm, n);
  }
}

describe('SVA notifier (arm_smmu_mm_arch_invalidate_secondary_tlbs)', () => {
  function svaSetup(hw: HwOpts, opts: ArmSmmuDeviceOptions) {
    const b = boot(hw, opts);
    const mmTable = b.sys.memory.newTable(500, 'mm 500');
    const rid = b.dev.allocS1Domain();
    b.dev.attach(rid, 0x60, { ssidBits: 8, ats: true });
    const sva = b.dev.allocSvaDomain(500, mmTable);
    b.dev.attach(sva, 0x60, { ssid: 1 });
    b.rec.clear();
    return { ...b, sva, mmTable };
  }

  it('without RIL: 511 pages → 511 TLBI_NH_VA; 512 pages (CMDQ_MAX_TLBI_OPS) → one TLBI by ASID', () => {
    const { dev, rec, sva } = svaSetup({ ril: false }, {});
    dev.svaInvalidateSecondaryTlbs(sva, 0x10000000, 0x10000000 + 511 * K4);
    const names = rec.names();
    expect(names.filter((n) => n === 'TLBI_NH_VA').length).toBe(511);
    expect(rec.log.filter((c) => c.name === 'TLBI_NH_VA').every((c) => c.leaf === 0 && c.asid === sva.asid)).toBe(true);
    expect(names.filter((n) => n === 'SYNC').length).toBe(2); // TLBI batch + ATC batch
    expect(names.slice(-2)).toEqual(['ATC_INV', 'SYNC']);
    rec.clear();
    dev.svaInvalidateSecondaryTlbs(sva, 0x10000000, 0x10000000 + 512 * K4);
    expect(rec.texts()).toEqual([
      `TLBI_NH_ASID vmid=0 asid=${sva.asid}`, 'SYNC', 'ATC_INV sid=96 ssid=1 page=0x0 size=52', 'SYNC',
    ]);
  });

  it('with RIL: large ranges stay ranges, only the whole-mm flush becomes TLBI by ASID', () => {
    const { dev, rec, sva } = svaSetup({}, {});
    dev.svaInvalidateSecondaryTlbs(sva, 0, 1024 * K4);
    expect(rec.names()).toEqual(['TLBI_NH_VA', 'SYNC', 'ATC_INV', 'SYNC']);
    expect(rec.log[0]).toMatchObject({ num: 0, scale: 10, ttl: 0, tg: 1, leaf: 0 });
    expect(rec.log[2]).toMatchObject({ ssid: 1, ssv: 1, size: 10 });
    rec.clear();
    dev.svaInvalidateSecondaryTlbs(sva, 0, SVA_FLUSH_ALL_END);
    expect(rec.names()).toEqual(['TLBI_NH_ASID', 'SYNC', 'ATC_INV', 'SYNC']);
  });

  it('FEAT_E2H: EL2 forms', () => {
    const { dev, rec, sva } = svaSetup({ ril: false }, { vhe: true });
    dev.svaInvalidateSecondaryTlbs(sva, 0, K4);
    expect(rec.names()).toEqual(['TLBI_EL2_VA', 'SYNC', 'ATC_INV', 'SYNC']);
    rec.clear();
    dev.svaInvalidateSecondaryTlbs(sva, 0, SVA_FLUSH_ALL_END);
    expect(rec.names()).toEqual(['TLBI_EL2_ASID', 'SYNC', 'ATC_INV', 'SYNC']);
  });

  it('private era (v6.11+): fresh ASID, ASET=1, no pinning; BTM does not skip the TLBI', () => {
    const pinner = new FakePinner(() => 5);
    const { dev, rec, sva, smmu } = svaSetup({}, { svaEra: 'private', btm: true, cpuAsidPinner: pinner });
    expect(dev.has(FEAT.BTM)).toBe(true);
    expect(pinner.gets).toBe(0);
    expect(sva.asid).toBe(2); // the RID S1 domain has 1
    const ste = smmu.streamTable.get(0x60)!;
    expect(smmu.cdTables.get(ste.S1ContextPtr)![1]).toMatchObject({ ASID: 2, ASET: 1 });
    dev.svaInvalidateSecondaryTlbs(sva, 0, K4);
    expect(rec.names()).toEqual(['TLBI_NH_VA', 'SYNC', 'ATC_INV', 'SYNC']);
    rec.clear();
    dev.detach(0x60, 1);
    dev.freeDomain(sva);
    expect(rec.texts()).toEqual([
      'CFGI_CD sid=96 ssid=1 leaf=1', 'SYNC', 'ATC_INV sid=96 ssid=1 page=0x0 size=52', 'SYNC',
      'TLBI_NH_ASID vmid=0 asid=2', 'SYNC',
    ]);
  });
});

describe('SVA on a blocked RID (v6.10 arm_smmu_set_pasid / remove_dev_pasid)', () => {
  it('installs a CD-table STE (S1DSS=TERMINATE, ATS on) and downgrades it to abort after the last PASID', () => {
    const { dev, sys, smmu, rec } = boot();
    const sva = dev.allocSvaDomain(4, sys.memory.newTable(4, 'mm'));
    rec.clear();
    dev.attach(sva, 0x12, { ssid: 1, ssidBits: 3, ats: true });
    expect(rec.texts()).toEqual([
      'CFGI_CD sid=18 ssid=1 leaf=1', 'SYNC', 'CFGI_STE sid=18 leaf=1', 'SYNC', 'PREFETCH_CONFIG sid=18',
      'ATC_INV sid=18 page=0x0 size=52', 'SYNC',
    ]);
    const ste = smmu.streamTable.get(0x12)!;
    expect(ste).toMatchObject({ Config: STE_CONFIG.S1_TRANS, S1DSS: 0, S1CDMax: 3 });
    expect(sva.nrAtsMasters).toBe(1);
    rec.clear();
    dev.detach(0x12, 1);
    expect(rec.texts()).toEqual([
      'CFGI_CD sid=18 ssid=1 leaf=1', 'SYNC', 'ATC_INV sid=18 ssid=1 page=0x0 size=52', 'SYNC',
      'CFGI_STE sid=18 leaf=1', 'SYNC', 'PREFETCH_CONFIG sid=18', 'ATC_INV sid=18 page=0x0 size=52', 'SYNC',
    ]);
    expect(smmu.streamTable.get(0x12)!.Config).toBe(STE_CONFIG.ABORT);
    expect(sva.nrAtsMasters).toBe(0);
  });
});

describe('SVA shared era (v5.10–v6.10): the CPU ASID, ASET=0, seize', () => {
  it('uses the pinned CPU ASID with ASET=0 and seizes a colliding private ASID', () => {
    const pinner = new FakePinner((mm) => (mm === 500 ? 4 : 0), true); // KPTI: 4 | 1 = 5
    const { dev, sys, smmu, rec, driver } = boot({}, { svaEra: 'shared', cpuAsidPinner: pinner });
    // Private S1 domains take ASIDs 1..5; the one with ASID 5 is attached and in use.
    const privs = Array.from({ length: 5 }, () => dev.allocS1Domain());
    const victim = privs[4];
    expect(victim.asid).toBe(5);
    dev.attach(victim, 0x70, { ssidBits: 4 });
    victim.table!.map(0x33, 0x3300);
    expect(smmu.translate(0x70, 0, 0x33)).toBe(0x3300);
    const mmTable = sys.memory.newTable(500, 'mm 500');
    mmTable.map(0x44, 0x4400);
    const sva = dev.allocSvaDomain(500, mmTable);
    expect(sva.asid).toBe(0); // the CPU ASID is taken at bind
    rec.clear();
    dev.attach(sva, 0x70, { ssid: 2 });
    // Seize: the victim moves to ASID 6 (lowest free), CD rewritten, TLBI by the old ASID.
    expect(victim.asid).toBe(6);
    expect(dev.stats[DevStat.ASID_SEIZURES]).toBe(1);
    expect(rec.texts()).toEqual([
      'CFGI_CD sid=112 ssid=0 leaf=1', 'SYNC', // victim's CD 0 with ASID 6
      'TLBI_NH_ASID vmid=0 asid=5', 'SYNC', // invalidate the old ASID
      'CFGI_CD sid=112 ssid=2 leaf=1', 'SYNC', // the SVA CD
    ]);
    expect(driver.asidXa.load(5)).toBeInstanceOf(SharedCd);
    expect(driver.asidXa.load(6)).toBe(victim);
    const ste = smmu.streamTable.get(0x70)!;
    const cds = smmu.cdTables.get(ste.S1ContextPtr)!;
    expect(cds[0]).toMatchObject({ ASID: 6, ASET: 1 });
    expect(cds[2]).toMatchObject({ ASID: 5, ASET: 0, TTB0: tableBase(mmTable.id) });
    expect(sva.effectiveAsid).toBe(5);
    // Both contexts translate, tagged with their ASIDs.
    expect(smmu.translate(0x70, 0, 0x33)).toBe(0x3300);
    expect(smmu.tlb.asid[smmu.lastSlot]).toBe(6);
    expect(smmu.translate(0x70, 2, 0x44)).toBe(0x4400);
    expect(smmu.tlb.asid[smmu.lastSlot]).toBe(5);
    expect(smmu.tlb.aset[smmu.lastSlot]).toBe(0);
    expect(pinner.pins.get(500)).toBe(1);

    // Unbind (last bond): CD cleared, TLBI by ASID, XArray slot freed, ASID unpinned.
    rec.clear();
    dev.detach(0x70, 2);
    expect(rec.texts()).toEqual(['CFGI_CD sid=112 ssid=2 leaf=1', 'SYNC', 'TLBI_NH_ASID vmid=0 asid=5', 'SYNC']);
    expect(driver.asidXa.load(5)).toBeUndefined();
    expect(pinner.pins.has(500)).toBe(false);
    dev.freeDomain(sva);
  });

  it('a second bond of the same mm reuses the shared CD (get + put: one pin kept)', () => {
    const pinner = new FakePinner(() => 9);
    const { dev, sys, driver } = boot({}, { svaEra: 'shared', cpuAsidPinner: pinner });
    const mmTable = sys.memory.newTable(1, 'mm');
    const a = dev.allocSvaDomain(1, mmTable);
    const b = dev.allocSvaDomain(1, mmTable);
    dev.attach(a, 1, { ssid: 1, ssidBits: 2 });
    dev.attach(b, 2, { ssid: 1, ssidBits: 2 });
    const cd = driver.asidXa.load(9) as SharedCd;
    expect(cd.refs).toBe(2);
    expect(pinner.gets).toBe(2);
    expect(pinner.puts).toBe(1);
    expect(pinner.pins.get(1)).toBe(1);
    dev.detach(1, 1);
    expect(driver.asidXa.load(9)).toBe(cd);
    dev.detach(2, 1);
    expect(driver.asidXa.load(9)).toBeUndefined();
    expect(pinner.pins.has(1)).toBe(false);
  });

  it('pin failure (arm64_mm_context_get returns 0) → ESRCH', () => {
    const pinner = new FakePinner(() => 0);
    const { dev, sys } = boot({}, { svaEra: 'shared', cpuAsidPinner: pinner });
    const sva = dev.allocSvaDomain(3, sys.memory.newTable(3, 'mm'));
    let err: unknown;
    try { dev.attach(sva, 1, { ssid: 1, ssidBits: 2 }); } catch (e) { err = e; }
    expect((err as DriverError).code).toBe('ESRCH');
    expect(dev.stats[DevStat.PIN_FAILURES]).toBe(1);
  });

  it('FEAT_BTM (shared era): the notifier skips the TLBI but still invalidates the ATC', () => {
    const pinner = new FakePinner(() => 7);
    const { dev, sys, rec } = boot({}, { svaEra: 'shared', btm: true, cpuAsidPinner: pinner });
    const sva = dev.allocSvaDomain(2, sys.memory.newTable(2, 'mm'));
    dev.attach(sva, 0x11, { ssid: 3, ssidBits: 4, ats: true });
    rec.clear();
    dev.svaInvalidateSecondaryTlbs(sva, 0x1000, 0x3000);
    expect(rec.texts()).toEqual(['ATC_INV sid=17 ssid=3 page=0x0 size=2', 'SYNC']);
    // Without BTM the same call issues the TLBI first.
    const p2 = new FakePinner(() => 7);
    const nb = boot({}, { svaEra: 'shared', btm: false, cpuAsidPinner: p2 });
    const s2 = nb.dev.allocSvaDomain(2, nb.sys.memory.newTable(2, 'mm'));
    nb.dev.attach(s2, 0x11, { ssid: 3, ssidBits: 4, ats: true });
    nb.rec.clear();
    nb.dev.svaInvalidateSecondaryTlbs(s2, 0x1000, 0x3000);
    expect(nb.rec.names()).toEqual(['TLBI_NH_VA', 'SYNC', 'ATC_INV', 'SYNC']);
    expect(nb.rec.log[0]).toMatchObject({ asid: 7, num: 0, scale: 1, ttl: 0 });
  });

  it('mm release quiesces the CD (EPD0) and flushes TLB and ATC once', () => {
    const { dev, sys, smmu, rec } = boot({}, { svaEra: 'private' });
    const mm = sys.memory.newTable(8, 'mm');
    mm.map(1, 2);
    const sva = dev.allocSvaDomain(8, mm);
    dev.attach(sva, 5, { ssid: 1, ssidBits: 2 });
    expect(smmu.translate(5, 1, 1)).toBe(2);
    rec.clear();
    dev.svaMmRelease(sva);
    expect(rec.names()).toEqual(['CFGI_CD', 'SYNC', 'TLBI_NH_ASID', 'SYNC']);
    expect(smmu.translate(5, 1, 1)).toBeLessThan(0);
    rec.clear();
    dev.svaMmRelease(sva);
    expect(rec.names()).toEqual([]);
    expect(smmu.commandsByOpcode[OP.CMD_SYNC]).toBeGreaterThan(0);
  });
});
