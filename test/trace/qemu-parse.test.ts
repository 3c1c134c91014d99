/**
 * Every smmu/smmuv3 trace event of arch.md §4.4 (format strings, master) and the older names and
 * formats, in the three line styles QEMU's log backend writes.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EV, QEMU_EVENTS, QEMU_EVENT_SPECS, QemuReader, lineTs, newQemuLine, splitQemuLine, type QemuLine,
} from '../../src/workload/trace/qemu.js';
import { TraceError } from '../../src/workload/trace/errors.js';

/** One sample per format (new, then older variants), text after the event name. */
const SAMPLES: [string, string][] = [
  ['smmu_add_mr', 'smmuv3-iommu-memory-region-0-0'],
  ['smmu_ptw_level', 'stage=1 level=0 iova=0xffff9402 subpage_sz=0x8000000000 baseaddr=0x48031000 offset=0 => pte=0x43a94003'],
  ['smmu_ptw_level', 'level=0 iova=0xffff9402 subpage_sz=0x8000000000 baseaddr=0x48031000 offset=0 => pte=0x43a94003'],
  ['smmu_ptw_invalid_pte', 'stage=1 level=2 base@=0x43a96000 pte@=0x43a96ff8 offset=511 pte=0x0'],
  ['smmu_ptw_page_pte', 'stage=1 level=3 iova=0xffff9402 base@=0x43a93000 pte@=0x43a93fc8 pte=0x45206f47 page address = 0x45206000'],
  ['smmu_ptw_page_pte', 'level=3 iova=0xffff9402 base@=0x43a93000 pte@=0x43a93fc8 pte=0x45206f47 page address = 0x45206000'],
  ['smmu_ptw_block_pte', 'stage=2 level=2 base@=0x7000 pte@=0x7008 pte=0x40200701 iova=0x40200000 block address = 0x40200000 block size = 2 MiB'],
  ['smmu_get_pte', 'baseaddr=0x48031000 index=0x0, pteaddr=0x48031000, pte=0x43a94003'],
  ['smmu_iotlb_inv_all', 'IOTLB invalidate all'],
  ['smmu_iotlb_inv_asid_vmid', 'IOTLB invalidate asid=1 vmid=0'],
  ['smmu_iotlb_inv_asid_vmid', 'IOTLB invalidate asid=-1 vmid=3'],
  ['smmu_iotlb_inv_asid', 'IOTLB invalidate asid=1'],
  ['smmu_iotlb_inv_vmid', 'IOTLB invalidate vmid=3'],
  ['smmu_iotlb_inv_vmid_s1', 'IOTLB invalidate vmid=3'],
  ['smmu_iotlb_inv_iova', 'IOTLB invalidate asid=1 addr=0xffff6000'],
  ['smmu_configs_inv_sid_range', 'Config cache INV SID range from 0x0 to 0xffffffff'],
  ['smmu_config_cache_inv', 'Config cache INV for sid=0x8'],
  ['smmuv3_config_cache_inv', 'Config cache INV for sid 8'],
  ['smmu_inv_notifiers_mr', 'iommu mr=smmuv3-iommu-memory-region-8-1'],
  ['smmu_iotlb_lookup_hit', 'IOTLB cache HIT asid=2 vmid=0 addr=0xffffb002 hit=1 miss=2 hit rate=33'],
  ['smmu_iotlb_lookup_hit', 'IOTLB cache HIT asid=2 addr=0xffffb002 hit=1 miss=2 hit rate=33'],
  ['smmu_iotlb_lookup_miss', 'IOTLB cache MISS asid=-1 vmid=1 addr=0x40001000 hit=0 miss=1 hit rate=0'],
  ['smmu_iotlb_cache_hit', 'IOTLB cache HIT asid=2 addr=0xffffb002 hit=1 miss=2 hit rate=33'],
  ['smmu_iotlb_cache_miss', 'IOTLB cache MISS asid=2 addr=0xffffb002 hit=1 miss=3 hit rate=25'],
  ['smmu_iotlb_insert', 'IOTLB ++ asid=2 vmid=0 addr=0xffff9000 tg=1 level=3'],
  ['smmu_iotlb_insert', 'IOTLB ++ asid=2 addr=0xffff9000 tg=1 level=3'],
  ['smmu_iotlb_insert', 'IOTLB ++ asid=2 addr=0xffff9000'],
  ['smmu_reset_exit', ''],
  ['smmuv3_read_mmio', 'addr: 0x0 val:0xd44101b size: 0x4(0)'],
  ['smmuv3_write_mmio', 'addr: 0x98 val:0x2 size: 0x4(0)'],
  ['smmuv3_trigger_irq', 'irq=3'],
  ['smmuv3_write_gerror', 'toggled=0x1, new GERROR=0x1'],
  ['smmuv3_write_gerrorn', 'acked=0x1, new GERRORN=0x1'],
  ['smmuv3_unhandled_cmd', 'Unhandled command type=32'],
  ['smmuv3_cmdq_consume', 'prod=2 cons=0 prod.wrap=0 cons.wrap=0'],
  ['smmuv3_cmdq_opcode', '<--- SMMU_CMD_CFGI_STE_RANGE'],
  ['smmuv3_cmdq_consume_out', 'prod:2, cons:2, prod_wrap:0, cons_wrap:0 '],
  ['smmuv3_cmdq_consume_error', 'Error on SMMU_CMD_CFGI_ALL command execution: 1'],
  ['smmuv3_record_event', 'SMMU_EVT_F_TRANSLATION sid=0x8'],
  ['smmuv3_record_event', 'SMMU_EVT_F_TRANSLATION sid=8'],
  ['smmuv3_find_ste', 'sid=0x10 features:0x1, sid_split:0x8'],
  ['smmuv3_find_ste_2lvl', 'strtab_base:0x4000000044347000 l1ptr:0x44347000 l1_off:0x0, l2ptr:0x7aa60000 l2_off:0x10 max_l2_ste:511'],
  ['smmuv3_get_ste', 'STE addr: 0x7aa60400'],
  ['smmuv3_translate_disable', 'smmuv3-iommu-memory-region-16-2 sid=0x10 bypass (smmu disabled) iova:0xfffff040 is_write=1'],
  ['smmuv3_translate_bypass', 'smmuv3-iommu-memory-region-16-2 sid=0x10 STE bypass iova:0xfffff040 is_write=0'],
  ['smmuv3_translate_abort', 'smmuv3-iommu-memory-region-16-2 sid=0x10 abort on iova:0xfffff040 is_write=0'],
  ['smmuv3_translate_success', 'smmuv3-iommu-memory-region-16-2 sid=0x10 iova=0xffff9402 translated=0x45206402 perm=0x3 stage=1'],
  ['smmuv3_translate_success', 'smmuv3-iommu-memory-region-16-2 sid=16 iova=0xffff9402 translated=0x45206402 perm=0x3'],
  ['smmuv3_get_cd', 'CD addr: 0x48032000'],
  ['smmuv3_decode_cd', 'oas=44'],
  ['smmuv3_decode_cd_tt', 'TT[0]:tsz:16 ttb:0x48031000 granule_sz:12 had:0'],
  ['smmuv3_decode_cd_tt', 'TT[1]:tsz:16 ttb:0x0 granule_sz:12'],
  ['smmuv3_cmdq_cfgi_ste', 'streamid= 0x8'],
  ['smmuv3_cmdq_cfgi_ste', 'streamid =8'],
  ['smmuv3_cmdq_cfgi_ste_range', 'start=0x0 - end=0xffffffff'],
  ['smmuv3_cmdq_cfgi_cd', 'sid=0x8'],
  ['smmuv3_cmdq_cfgi_cd', 'streamid = 8'],
  ['smmuv3_config_cache_hit', 'Config cache HIT for sid=0x10 (hits=1, misses=1, hit rate=50)'],
  ['smmuv3_config_cache_hit', 'Config cache HIT for sid 16 (hits=1, misses=1, hit rate=50)'],
  ['smmuv3_config_cache_miss', 'Config cache MISS for sid=0x10 (hits=0, misses=1, hit rate=0)'],
  ['smmuv3_range_inval', 'vmid=0 asid=1 addr=0xffff6000 tg=1 num_pages=0x1 ttl=3 leaf=1 stage=1'],
  ['smmuv3_range_inval', 'vmid=0 asid=1 addr=0xffff6000 tg=1 num_pages=0x1 ttl=3 leaf=1'],
  ['smmuv3_s1_range_inval', 'vmid=0 asid=1 addr=0xffff6000 tg=1 num_pages=0x10 ttl=3 leaf=1'],
  ['smmuv3_s1_range_inval', 'vmid =0 asid =1 addr=0xffff6000 leaf=1'],
  ['smmuv3_cmdq_tlbi_nh_va', 'vmid =0 asid =1 addr=0xffff6000 leaf=1'],
  ['smmuv3_cmdq_tlbi_nh_vaa', 'vmid =0 addr=0xffff6000'],
  ['smmuv3_cmdq_tlbi_nh_vaa', 'vmid =0 addr=0xffff6000 leaf=0'],
  ['smmuv3_cmdq_tlbi_nh', 'vmid=3'],
  ['smmuv3_cmdq_tlbi_nh', ''],
  ['smmuv3_cmdq_tlbi_nsnh', ''],
  ['smmuv3_cmdq_tlbi_nh_asid', 'asid=1'],
  ['smmuv3_cmdq_tlbi_s12_vmid', 'vmid=3'],
  ['smmuv3_notify_flag_add', 'ADD SMMUNotifier node for iommu mr=smmuv3-iommu-memory-region-8-1'],
  ['smmuv3_notify_flag_del', 'DEL SMMUNotifier node for iommu mr=smmuv3-iommu-memory-region-8-1'],
  ['smmuv3_inv_notifiers_iova', 'iommu mr=smmuv3-iommu-memory-region-8-1 asid=1 vmid=0 iova=0xffff6000 tg=1 num_pages=0x1 stage=1'],
  ['smmuv3_inv_notifiers_iova', 'iommu mr=smmuv3-iommu-memory-region-8-1 asid=1 vmid=0 iova=0xffff6000 tg=1 num_pages=0x1'],
  ['smmuv3_inv_notifiers_iova', 'iommu mr=smmuv3-iommu-memory-region-8-1 asid=1 iova=0xffff6000 tg=1 num_pages=0x1'],
  ['smmuv3_inv_notifiers_iova', 'iommu mr=smmuv3-iommu-memory-region-8-1 asid=1 iova=0xffff6000'],
  ['smmuv3_accel_set_iommu_device', 'devfn=0x8 (idev devid=0x1)'],
  ['smmuv3_accel_unset_iommu_device', 'devfn=0x8 (idev devid=0x1)'],
  ['smmuv3_accel_translate_ste', 'vSID=0x8 hwpt_id=0x2 ste=1:2000000000000001'],
  ['smmuv3_accel_install_ste', 'vSID=0x8 ste type=abort hwpt_id=0x0'],
  ['smmu_page_walk', 'stage=1 baseaddr=0x1000 indexmask=0x1ff granule=0x1000 start=0x0 end=0x1000'],
  ['smmu_lookup_table', 'baseaddr=0x1000 granule=0x1000 ...'],
  ['smmuv3_update', 'sid=0x8 ...'],
  ['smmuv3_update_check_cmd', 'error=1'],
  ['smmuv3_write_mmio_idr', 'write to RO/Unimpl reg 0x0 val64:0x0'],
  ['smmuv3_write_mmio_evtq_cons_bef_clear', 'prod:0 cons:0 prod.w:0 cons.w:0'],
  ['smmuv3_write_mmio_evtq_cons_after_clear', 'prod:0 cons:0 prod.w:0 cons.w:0'],
];

function parse(text: string): { l: QemuLine; m: RegExpExecArray | undefined } {
  let got: { l: QemuLine; m: RegExpExecArray | undefined } | null = null;
  const r = new QemuReader((l, m) => { got = { l: { ...l }, m }; });
  r.push(text);
  if (got === null) throw new Error(`no event from "${text}"`);
  return got;
}

describe('QEMU trace line parser', () => {
  it('has a sample for every event it knows (arch.md §4.4 plus older names)', () => {
    const sampled = new Set(SAMPLES.map(([n]) => n));
    expect(QEMU_EVENT_SPECS.filter((s) => !sampled.has(s.name)).map((s) => s.name)).toEqual([]);
    for (const n of ['smmu_iotlb_cache_hit', 'smmu_iotlb_cache_miss', 'smmuv3_cmdq_tlbi_nh_va', 'smmuv3_cmdq_tlbi_nh_vaa',
      'smmu_iotlb_inv_asid', 'smmuv3_config_cache_inv', 'smmuv3_s1_range_inval']) expect(QEMU_EVENTS.get(n)?.old).toBe(true);
  });

  const prefixes: [string, (s: string) => string, number, number][] = [
    ['<tid>@<sec>.<usec>:', (s) => `12321@1795459905.361949:${s}`, 12321, 1795459905.361949],
    ['ISO-8601 (QEMU >= 10.1)', (s) => `2026-11-23T19:09:02.123456Z ${s}`, -1, Date.UTC(2026, 10, 23, 19, 9, 2) / 1000 + 0.123456],
    ['none', (s) => s, -1, NaN],
  ];
  for (const [style, wrap, tid, ts] of prefixes) {
    it(`parses every sample with prefix: ${style}`, () => {
      for (const [name, rest] of SAMPLES) {
        const text = wrap(rest === '' ? `${name} ` : `${name} ${rest}`);
        const { l, m } = parse(text);
        expect(l.name, text).toBe(name);
        expect(l.code, text).toBe(EV[name]);
        expect(m, text).not.toBeUndefined();
        expect(l.tid).toBe(tid);
        if (Number.isNaN(ts)) expect(lineTs(l)).toBeNaN(); else expect(lineTs(l)).toBeCloseTo(ts, 5);
      }
    });
  }

  it('reads the fields of the formats (new and old)', () => {
    let m = parse('12324@1.5:smmuv3_range_inval vmid=0 asid=3 addr=0xffffc000 tg=1 num_pages=0x20 ttl=3 leaf=1 stage=1').m!;
    expect([m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]]).toEqual(['0', '3', 'ffffc000', '1', '20', '3', '1', '1']);
    m = parse('smmuv3_s1_range_inval vmid =2 asid =3 addr=0xffffc000 leaf=0').m!;
    expect([m[1], m[2], m[3], m[4], m[5], m[7], m[8]]).toEqual(['2', '3', 'ffffc000', undefined, undefined, '0', undefined]);
    m = parse('smmuv3_translate_success mr sid=0x10 iova=0xffff9402 translated=0x45206402 perm=0x3 stage=3').m!;
    expect([m[2], m[3], m[4], m[6]]).toEqual(['0x10', 'ffff9402', '45206402', '3']);
    m = parse('smmu_iotlb_lookup_miss IOTLB cache MISS asid=-1 vmid=7 addr=0x40001000 hit=0 miss=1 hit rate=0').m!;
    expect([m[1], m[2]]).toEqual(['-1', '7']);
    // Trailing blanks and CRLF are tolerated.
    expect(parse('smmuv3_cmdq_opcode <--- SMMU_CMD_SYNC  \r').m![1]).toBe('SMMU_CMD_SYNC');
  });

  it('an unknown event is passed on (counted), not an error', () => {
    const r = new QemuReader(() => {});
    r.push('12321@1.0:smmuv3_new_event_of_2027 foo=1');
    r.push('smmuv3_new_event_of_2027 foo=2');
    expect(r.unknown.get('smmuv3_new_event_of_2027')).toBe(2);
    expect(r.badLines).toBe(0);
  });

  it('a malformed line is an error with its line number; --skip-bad counts it', () => {
    const lines = [
      '12321@1.0:smmu_reset_exit ',
      '12321@1.0:smmuv3_cmdq_opcode <--- SMMU_CMD_SYNC',
      '12321@1.0:smmuv3_range_inval vmid=zero asid=1 addr=0x1000',
      'this is not a trace line',
      '12321@x.y:smmu_reset_exit',
    ];
    const r = new QemuReader(() => {});
    let err: unknown = null;
    try { for (const l of lines) r.push(l); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(TraceError);
    expect((err as TraceError).lineNo).toBe(3);
    expect((err as TraceError).located('t.log')).toMatch(/^t\.log:3:\d+: smmuv3_range_inval: "vmid=zero asid=1 addr=0x1000" does not match its format /);
    const seen: number[] = [];
    const r2 = new QemuReader(() => {}, { skipBad: true, onBad: (e) => seen.push(e.lineNo) });
    for (const l of lines) r2.push(l);
    expect(r2.badLines).toBe(3);
    expect(seen).toEqual([3, 4, 5]);
    expect(r2.lines).toBe(5);
  });

  it('blank lines are counted as lines and skipped', () => {
    const out = newQemuLine();
    expect(splitQemuLine('', 1, out)).toBeNull();
    expect(splitQemuLine('   \r', 2, out)).toBeNull();
  });

  it('every EV.<name> used in the sources names a known event', () => {
    const dir = resolve(import.meta.dirname, '../../src/workload/trace');
    const used = new Set<string>();
    for (const f of readdirSync(dir)) {
      for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/\bEV\.([a-z0-9_]+)/g)) used.add(m[1]);
    }
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((n) => EV[n] === undefined)).toEqual([]);
  });
});
