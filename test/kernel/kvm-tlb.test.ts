import { describe, expect, it } from 'vitest';
import { CR0, CR2, REG, setField } from '../../src/arch/registers.js';
import { World } from '../../src/arch/world.js';
import { CORTEX_A76_L2_TLB, Pe } from '../../src/hw/cpu/pe.js';
import { tableBase } from '../../src/hw/memory.js';
import { newCd, newSte, STE_CONFIG } from '../../src/hw/smmu/structures.js';
import { HwSystem } from '../../src/hw/system.js';
import { PeCpuOps, RecordingCpuOps } from '../../src/kernel/cpu-ops.js';
import {
  defaultKvmTlbOptions, enterVmidContext, exitVmidContext, kvmFlushCpuContext, kvmFlushRemoteTlbs,
  kvmFlushRemoteTlbsMemslot, kvmFlushShadowMemslot, kvmFlushVmContext, kvmHypTlbFlushVmidRange, kvmRelaxPerms,
  kvmTlbFlushVmid, kvmTlbFlushVmidIpa, kvmTlbFlushVmidIpaNsh, kvmTlbFlushVmidRange, kvmUnmapRange,
  type KvmTlbOptions,
} from '../../src/kernel/kvm/tlb.js';
import { defaultTlbFlushOptions, flushTlbPage, flushTlbRange } from '../../src/kernel/mm/tlbflush.js';

const V = 5;
/** A standalone PE (power-of-two TLB geometry) of a VHE or nVHE host. */
const mkPe = (vhe = false): Pe => new Pe(0, CORTEX_A76_L2_TLB, vhe);
const IPA = 0x40003000;
const o = (over: Partial<KvmTlbOptions> = {}): KvmTlbOptions => defaultKvmTlbOptions(over);
const insns = (r: RecordingCpuOps): string[] => r.lines.filter((l) => !l.startsWith('#'));

/** The flush of one IPA: __kvm_tlb_flush_vmid_ipa. */
const ipaSeq = (ipa: string, ttl: string): string[] => [
  'DSB ISHST', `TLBI IPAS2E1IS ipa=${ipa}${ttl}`, 'DSB ISH', 'TLBI VMALLE1IS', 'DSB ISH', 'ISB',
];
const vmidSeq = ['DSB ISHST', 'TLBI VMALLS12E1IS', 'DSB ISH', 'ISB'];

describe('VMID context', () => {
  it('nVHE: runs at EL2 (E2H=0) with the VM VMID, then restores the host regime', () => {
    const pe = mkPe();
    const cxt = enterVmidContext(pe, V, false);
    expect(pe.regime).toEqual({ vmid: V, e2h: false, tge: false, el: 2 });
    exitVmidContext(pe, cxt);
    expect(pe.regime).toEqual({ vmid: 0, e2h: false, tge: false, el: 1 });
  });
  it('VHE: clears TGE so EL1 TLBIs target EL1&0 of the VMID, then sets it again', () => {
    const pe = mkPe(true);
    const cxt = enterVmidContext(pe, V);
    expect(pe.regime).toEqual({ vmid: V, e2h: true, tge: false, el: 2 });
    exitVmidContext(pe, cxt);
    expect(pe.regime).toEqual({ vmid: 0, e2h: true, tge: true, el: 2 });
  });
  it('every hyp function issues its TLBIs with the VMID loaded (markers)', () => {
    for (const vhe of [false, true]) {
      const pe = mkPe(vhe);
      const r = new RecordingCpuOps(null, { markers: true });
      kvmTlbFlushVmid(r, pe, V);
      expect(r.lines).toEqual([
        'DSB ISHST', `# enter_vmid_context vmid=${V} ${vhe ? 'vhe tge=0' : 'nvhe el2'}`, 'TLBI VMALLS12E1IS',
        'DSB ISH', 'ISB', '# exit_vmid_context',
      ]);
      expect(pe.regime.vmid).toBe(0);
    }
  });
});

describe('hyp functions (vhe/tlb.c, nvhe/tlb.c)', () => {
  for (const vhe of [false, true]) {
    const mode = vhe ? 'VHE' : 'nVHE';
    it(`${mode} __kvm_tlb_flush_vmid_ipa: DSB ISHST; IPAS2E1IS+TTL; DSB ISH; VMALLE1IS; DSB ISH; ISB`, () => {
      const r = new RecordingCpuOps();
      kvmTlbFlushVmidIpa(r, mkPe(vhe), V, IPA, 3);
      expect(r.lines).toEqual(ipaSeq('0x40003000', ' ttl=3'));
      // Xt = IPA>>12 | TTL(3 | 4K<<2)<<44
      expect(r.operands[0].xt).toBe(0x7000_0000_0000n | 0x40003n);
    });
    it(`${mode} __kvm_tlb_flush_vmid_ipa_nsh: local forms and NSH barriers`, () => {
      const r = new RecordingCpuOps();
      kvmTlbFlushVmidIpaNsh(r, mkPe(vhe), V, IPA, 2);
      expect(r.lines).toEqual(['DSB NSHST', 'TLBI IPAS2E1 ipa=0x40003000 ttl=2', 'DSB NSH', 'TLBI VMALLE1', 'DSB NSH', 'ISB']);
    });
    it(`${mode} __kvm_tlb_flush_vmid: DSB ISHST; VMALLS12E1IS; DSB ISH; ISB`, () => {
      const r = new RecordingCpuOps();
      kvmTlbFlushVmid(r, mkPe(vhe), V);
      expect(r.lines).toEqual(vmidSeq);
    });
    it(`${mode} __kvm_flush_cpu_context: VMALLE1; IC IALLU; DSB NSH; ISB`, () => {
      const r = new RecordingCpuOps();
      kvmFlushCpuContext(r, mkPe(vhe), V);
      expect(r.lines).toEqual(['TLBI VMALLE1', 'IC IALLU', 'DSB NSH', 'ISB']);
    });
  }
  it('no TTL hint without FEAT_TTL or with TLBI_TTL_UNKNOWN', () => {
    const r = new RecordingCpuOps();
    kvmTlbFlushVmidIpa(r, mkPe(), V, IPA, 3, o({ featTtl: false }));
    kvmTlbFlushVmidIpa(r, mkPe(), V, IPA, 0x7fffffff);
    expect(r.lines).toEqual([...ipaSeq('0x40003000', ''), ...ipaSeq('0x40003000', '')]);
  });
  it('nVHE with a VPIPT I-cache (<= v6.7): IC IALLUIS; DSB ISH after the ISB; not on VHE', () => {
    const r = new RecordingCpuOps();
    kvmTlbFlushVmidIpa(r, mkPe(), V, IPA, 3, o({ vpiptIcache: true }));
    expect(r.lines).toEqual([...ipaSeq('0x40003000', ' ttl=3'), 'IC IALLUIS', 'DSB ISH']);
    const v = new RecordingCpuOps();
    kvmTlbFlushVmidIpa(v, mkPe(true), V, IPA, 3, o({ vpiptIcache: true }));
    expect(v.lines).toEqual(ipaSeq('0x40003000', ' ttl=3'));
  });
  it('__kvm_flush_vm_context: DSB ISHST; ALLE1IS; [IC IALLUIS]; DSB ISH', () => {
    const r = new RecordingCpuOps();
    kvmFlushVmContext(r);
    expect(r.lines).toEqual(['DSB ISHST', 'TLBI ALLE1IS', 'DSB ISH']);
    const i = new RecordingCpuOps();
    kvmFlushVmContext(i, true);
    expect(i.lines).toEqual(['DSB ISHST', 'TLBI ALLE1IS', 'IC IALLUIS', 'DSB ISH']);
  });
  it('__kvm_tlb_flush_vmid_range: RIPAS2E1IS (no TTL), the odd page last, then VMALLE1IS', () => {
    const r = new RecordingCpuOps();
    kvmHypTlbFlushVmidRange(r, mkPe(), V, 0x40000000 + 0x10, 3, o({ tlbiRange: true }));
    expect(r.lines).toEqual([
      'DSB ISHST', 'TLBI RIPAS2E1IS ipa=0x40000000 scale=0 num=0 pages=2', 'TLBI IPAS2E1IS ipa=0x40002000',
      'DSB ISH', 'TLBI VMALLE1IS', 'DSB ISH', 'ISB',
    ]);
    // RIPAS2E1IS has no ASID field: TG 1<<46 | BaseADDR 0x40000
    expect(r.operands[0].xt).toBe((1n << 46n) | 0x40000n);
  });
});

describe('kvm_tlb_flush_vmid_range (host wrapper)', () => {
  it('without FEAT_TLBIRANGE: one VMALLS12E1IS', () => {
    const r = new RecordingCpuOps();
    kvmTlbFlushVmidRange(r, mkPe(), V, 0x40000000, 1000, o());
    expect(r.lines).toEqual(vmidSeq);
  });
  it('chunks by MAX_TLBI_RANGE_PAGES: 2^21 + 2 pages = two hyp calls', () => {
    const r = new RecordingCpuOps();
    kvmTlbFlushVmidRange(r, mkPe(), V, 0, 2 ** 21 + 2, o({ tlbiRange: true }));
    expect(r.lines).toEqual([
      'DSB ISHST', `TLBI RIPAS2E1IS ipa=0x0 scale=3 num=31 pages=${2 ** 21}`, 'DSB ISH', 'TLBI VMALLE1IS', 'DSB ISH', 'ISB',
      'DSB ISHST', 'TLBI RIPAS2E1IS ipa=0x200000000 scale=0 num=0 pages=2', 'DSB ISH', 'TLBI VMALLE1IS', 'DSB ISH', 'ISB',
    ]);
  });
  it("v6.6–v6.8 without Gavin Shan's fix: a 2^21-page chunk gets SCALE=4, which spills into TG (2 pages)", () => {
    const r = new RecordingCpuOps();
    kvmHypTlbFlushVmidRange(r, mkPe(), V, 0, 2 ** 21, o({ tlbiRange: true, rangeLoop: 'v5.10', maxPagesCompare: '>=' }));
    expect(r.lines[1]).toBe('TLBI RIPAS2E1IS ipa=0x0 scale=0 num=0 pages=2');
    // 4<<44 = 1<<46 lands on TG (already 0b01): the CPU sees SCALE=0 NUM=0 = 2 pages.
    expect(r.operands[0].xt).toBe(1n << 46n);
    // The decreasing loop of v6.9-rc without the NUM fix would not terminate.
    expect(() => kvmHypTlbFlushVmidRange(new RecordingCpuOps(), mkPe(), V, 0, 2 ** 21,
      o({ tlbiRange: true, maxPagesCompare: '>=' }))).toThrow(/would not terminate/);
  });
});

describe('triggers', () => {
  const leaves = [
    { ipaPage: 0x40000, level: 3 }, { ipaPage: 0x40001, level: 3 }, { ipaPage: 0x40200, level: 2 },
  ];
  const leafFlushes = [
    ...ipaSeq('0x40000000', ' ttl=3'), ...ipaSeq('0x40001000', ' ttl=3'), ...ipaSeq('0x40200000', ' ttl=2'),
  ];

  it('pre-6.6 unmap: one __kvm_tlb_flush_vmid_ipa per valid leaf', () => {
    const r = new RecordingCpuOps();
    kvmUnmapRange(r, mkPe(), V, 0x40000, 1024, leaves, o({ kernel: 'pre-6.6', tlbiRange: true }));
    expect(r.lines).toEqual(leafFlushes);
  });
  it('v6.6+ unmap without FEAT_TLBIRANGE, or without FWB: still per leaf', () => {
    for (const opt of [o({ tlbiRange: false }), o({ tlbiRange: true, fwb: false })]) {
      const r = new RecordingCpuOps();
      kvmUnmapRange(r, mkPe(), V, 0x40000, 1024, leaves, opt);
      expect(r.lines).toEqual(leafFlushes);
    }
  });
  it('v6.6+ unmap with FEAT_TLBIRANGE and FWB: deferred, one range flush of the walked range', () => {
    const r = new RecordingCpuOps();
    kvmUnmapRange(r, mkPe(), V, 0x40000, 1024, leaves, o({ tlbiRange: true }));
    expect(r.lines).toEqual([
      'DSB ISHST', 'TLBI RIPAS2E1IS ipa=0x40000000 scale=1 num=15 pages=1024', 'DSB ISH', 'TLBI VMALLE1IS', 'DSB ISH', 'ISB',
    ]);
  });
  it('v6.6+ deferred: a zapped table entry is still invalidated at once, without a level hint', () => {
    const r = new RecordingCpuOps();
    kvmUnmapRange(r, mkPe(), V, 0x40000, 512, [{ ipaPage: 0x40000, level: 3 }, { ipaPage: 0x40000, level: 2, table: true }],
      o({ tlbiRange: true }));
    expect(r.lines).toEqual([
      ...ipaSeq('0x40000000', ''),
      'DSB ISHST', 'TLBI RIPAS2E1IS ipa=0x40000000 scale=1 num=7 pages=512', 'DSB ISH', 'TLBI VMALLE1IS', 'DSB ISH', 'ISB',
    ]);
    const p = new RecordingCpuOps();
    kvmUnmapRange(p, mkPe(), V, 0x40000, 512, [{ ipaPage: 0x40000, level: 3 }, { ipaPage: 0x40000, level: 2, table: true }],
      o({ kernel: 'pre-6.6' }));
    expect(p.lines).toEqual([...ipaSeq('0x40000000', ' ttl=3'), ...ipaSeq('0x40000000', ' ttl=2')]);
  });
  it('v6.6+ deferred: one range flush per 1 GiB chunk of stage2_apply_range', () => {
    const r = new RecordingCpuOps();
    // [1 GiB - 2 pages, 1 GiB + 2 pages)
    kvmFlushShadowMemslot(r, mkPe(), V, 2 ** 18 - 2, 4, [], o({ tlbiRange: true }));
    expect(insns(r).filter((l) => l.startsWith('TLBI RIPAS2E1IS'))).toEqual([
      'TLBI RIPAS2E1IS ipa=0x3fffe000 scale=0 num=0 pages=2', 'TLBI RIPAS2E1IS ipa=0x40000000 scale=0 num=0 pages=2',
    ]);
  });
  it('rejects entries outside the range', () => {
    expect(() => kvmUnmapRange(new RecordingCpuOps(), mkPe(), V, 0x40000, 4, [{ ipaPage: 0x50000, level: 3 }])).toThrow(RangeError);
  });
  it('dirty logging: kvm_flush_remote_tlbs_memslot → range flush (v6.6+ with range), else VMALLS12E1IS', () => {
    const r = new RecordingCpuOps();
    kvmFlushRemoteTlbsMemslot(r, mkPe(), V, 0x40000, 0x40000, o({ tlbiRange: true }));
    expect(r.lines).toEqual([
      'DSB ISHST', 'TLBI RIPAS2E1IS ipa=0x40000000 scale=3 num=3 pages=262144', 'DSB ISH', 'TLBI VMALLE1IS', 'DSB ISH', 'ISB',
    ]);
    for (const opt of [o(), o({ kernel: 'pre-6.6', tlbiRange: true })]) {
      const v = new RecordingCpuOps();
      kvmFlushRemoteTlbsMemslot(v, mkPe(), V, 0x40000, 0x40000, opt);
      expect(v.lines).toEqual(vmidSeq);
    }
  });
  it('permission relaxation: local nsh flush (v6.6+), broadcast before', () => {
    const r = new RecordingCpuOps();
    kvmRelaxPerms(r, mkPe(), V, 0x40003, 3);
    expect(r.lines).toEqual(['DSB NSHST', 'TLBI IPAS2E1 ipa=0x40003000 ttl=3', 'DSB NSH', 'TLBI VMALLE1', 'DSB NSH', 'ISB']);
    const p = new RecordingCpuOps();
    kvmRelaxPerms(p, mkPe(), V, 0x40003, 3, o({ kernel: 'pre-6.6' }));
    expect(p.lines).toEqual(ipaSeq('0x40003000', ' ttl=3'));
  });
  it('kvm_flush_remote_tlbs: VMALLS12E1IS', () => {
    const r = new RecordingCpuOps();
    kvmFlushRemoteTlbs(r, mkPe(), V);
    expect(r.lines).toEqual(vmidSeq);
  });
});

describe('on the hardware model: a 2-PE system with a BTM SMMU (CR2.PTM=0)', () => {
  function system(vhe = false) {
    const sys = new HwSystem({ cpus: 2, vhe });
    const smmu = sys.smmus[0];
    smmu.writeReg(REG.CR2, setField(setField(0, CR2.PTM, 0), CR2.RECINVSID, 1));
    smmu.writeReg(REG.CR0, setField(setField(0, CR0.CMDQEN, 1), CR0.SMMUEN, 1));
    return { sys, smmu };
  }
  const has = (smmu: HwSystem['smmus'][0], vmid: number, asid: number, aset: number, ipa: boolean, page: number): boolean =>
    smmu.tlb.lookup(World.NS_EL1, vmid, asid, aset, ipa, page) >= 0;

  it('__kvm_tlb_flush_vmid_ipa for VMID v hits the SMMU S2 entry of VMID v (collateral) and, via VMALLE1IS, S1 entries of VMID v', () => {
    const { sys, smmu } = system();
    const pe = sys.pes[0];
    // A device's S2 domain that the SMMU driver gave VMID 5, the VM's own KVM VMID being 5 too.
    const dom = sys.memory.newTable(1, 'S2 domain');
    for (let p = 0; p < 8; p++) dom.map(0x40000 + p, 0x90000 + p);
    smmu.streamTable.set(0x10, newSte({ Config: STE_CONFIG.S2_TRANS, S2VMID: V, S2TTB: tableBase(dom.id) }));
    // S1-only streams (CD ASID 7) tagged with S2VMID 5 and 6.
    const s1 = sys.memory.newTable(2, 'S1');
    for (let p = 0; p < 4; p++) s1.map(0x100 + p, 0xa0000 + p);
    smmu.cdTables.set(1, [newCd({ ASID: 7, TTB0: tableBase(s1.id) })]);
    smmu.streamTable.set(0x20, newSte({ Config: STE_CONFIG.S1_TRANS, S1ContextPtr: 1, S2VMID: V }));
    smmu.streamTable.set(0x21, newSte({ Config: STE_CONFIG.S1_TRANS, S1ContextPtr: 1, S2VMID: 6 }));
    for (let p = 0; p < 8; p++) smmu.translate(0x10, 0, 0x40000 + p);
    for (let p = 0; p < 4; p++) { smmu.translate(0x20, 0, 0x100 + p); smmu.translate(0x21, 0, 0x100 + p); }
    expect(has(smmu, V, -1, 0, true, 0x40003)).toBe(true);
    expect(has(smmu, V, 7, 0, false, 0x100)).toBe(true);

    kvmTlbFlushVmidIpa(new PeCpuOps(pe), pe, V, 0x40003 * 4096, 3);
    expect(has(smmu, V, -1, 0, true, 0x40003)).toBe(false); // IPAS2E1IS: the S2 entry at that IPA
    expect(has(smmu, V, -1, 0, true, 0x40002)).toBe(true); // other S2 pages stay (VMALLE1IS spares S2-only entries)
    for (let p = 0; p < 4; p++) {
      expect(has(smmu, V, 7, 0, false, 0x100 + p)).toBe(false); // VMALLE1IS: all S1 of VMID 5
      expect(has(smmu, 6, 7, 0, false, 0x100 + p)).toBe(true); // another VMID untouched
    }
    expect(pe.regime).toEqual({ vmid: 0, e2h: false, tge: false, el: 1 });
    expect(pe.pendingBroadcasts).toBe(0); // completed by the DSBs
  });

  it('the same flush from a VHE host (TGE cleared) carries VMID v as well', () => {
    const { sys, smmu } = system(true);
    const pe = sys.pes[1];
    const dom = sys.memory.newTable(1, 'S2 domain');
    dom.map(0x40003, 0x90003);
    smmu.streamTable.set(0x10, newSte({ Config: STE_CONFIG.S2_TRANS, S2VMID: V, S2TTB: tableBase(dom.id) }));
    smmu.translate(0x10, 0, 0x40003);
    kvmTlbFlushVmidIpa(new PeCpuOps(pe), pe, V, 0x40003 * 4096, 3);
    expect(has(smmu, V, -1, 0, true, 0x40003)).toBe(false);
    expect(pe.regime).toEqual({ vmid: 0, e2h: true, tge: true, el: 2 });
  });

  it('flush_tlb_page on an nVHE host (VMID 0) removes the SVA entry with ASID a, ASET=0, S2VMID=0 but not ASET=1', () => {
    const a = 0x22;
    // The model's TLB does not tag non-global lookups with ASET, so each ASET gets its own system.
    for (const aset of [0, 1]) {
      const { sys, smmu } = system();
      const pe = sys.pes[1];
      const mm = sys.memory.newTable(3, 'mm');
      for (let p = 0; p < 4; p++) mm.map(0x7f0 + p, 0xb0000 + p);
      smmu.cdTables.set(1, [newCd({ ASID: a, ASET: aset, TTB0: tableBase(mm.id) })]);
      smmu.streamTable.set(0x30, newSte({ Config: STE_CONFIG.S1_TRANS, S1ContextPtr: 1, S2VMID: 0 }));
      smmu.streamTable.set(0x32, newSte({ Config: STE_CONFIG.S1_TRANS, S1ContextPtr: 1, S2VMID: 1 }));
      for (const sid of [0x30, 0x32]) for (let p = 0; p < 4; p++) smmu.translate(sid, 0, 0x7f0 + p);
      expect(has(smmu, 0, a, aset, false, 0x7f0)).toBe(true);

      flushTlbPage(new PeCpuOps(pe), a, 0x7f0000);
      // ASET=0: removed; ASET=1: spared by a VA+ASID broadcast (SMMUv3 §3.17.1, knob default).
      expect(has(smmu, 0, a, aset, false, 0x7f0)).toBe(aset === 1);
      expect(has(smmu, 1, a, aset, false, 0x7f0)).toBe(true); // S2VMID 1: not the host's VMID 0
      expect(has(smmu, 0, a, aset, false, 0x7f1)).toBe(true); // other pages

      // A 4-page range with FEAT_TLBIRANGE: one RVAE1IS removes the other three (ASET=0 only).
      flushTlbRange(new PeCpuOps(pe), a, 0x7f0000, 0x7f4000, 4096, false, undefined, defaultTlbFlushOptions({ tlbiRange: true }));
      for (let p = 1; p < 4; p++) expect(has(smmu, 0, a, aset, false, 0x7f0 + p)).toBe(aset === 1);
      expect(pe.regime).toEqual({ vmid: 0, e2h: false, tge: false, el: 1 });
    }
  });

  it('flush_tlb_page on a VHE host (EL2&0) does not reach NS-EL1 SVA entries', () => {
    const { sys, smmu } = system(true);
    const pe = sys.pes[0];
    const mm = sys.memory.newTable(3, 'mm');
    mm.map(0x7f0, 0xb0000);
    smmu.cdTables.set(1, [newCd({ ASID: 0x22, TTB0: tableBase(mm.id) })]);
    smmu.streamTable.set(0x30, newSte({ Config: STE_CONFIG.S1_TRANS, S1ContextPtr: 1, S2VMID: 0 }));
    smmu.translate(0x30, 0, 0x7f0);
    flushTlbPage(new PeCpuOps(pe), 0x22, 0x7f0000);
    expect(has(smmu, 0, 0x22, 0, false, 0x7f0)).toBe(true);
  });
});
