/**
 * The QEMU importer on small synthetic traces: stage-2-only and nested SMMUs, lazy invalidation,
 * QEMU's capacity flushes, range splitting merged back into one command, commands QEMU
 * rejected; each replays with the model seeing exactly QEMU's hits and misses.
 */
import { describe, expect, it } from 'vitest';
import { decodeCommand, fromHex32 } from '../../src/arch/commands.js';
import { parseTraceLine, type CmdsEvent } from '../../src/workload/trace/jsonl.js';
import { runLines, type PipelineResult } from '../../src/workload/trace/pipeline.js';
import { QemuTraceBuilder } from './fixtures.js';

const RESET: [string, string[]][] = [
  ['CFGI_STE_RANGE', ['smmuv3_cmdq_cfgi_ste_range start=0x0 - end=0xffffffff', 'smmu_configs_inv_sid_range Config cache INV SID range from 0x0 to 0xffffffff']],
  ['SYNC', []],
];
const RESET2: [string, string[]][] = [['TLBI_NSNH_ALL', ['smmuv3_cmdq_tlbi_nsnh ', 'smmu_iotlb_inv_all IOTLB invalidate all']], ['SYNC', []]];

/** Replay `lines` (as recorded) and collect the commands rebuilt, decoded. */
function replay(lines: string[], runs = [{}]): { r: PipelineResult; cmds: ReturnType<typeof decodeCommand>[] } {
  const cmds: ReturnType<typeof decodeCommand>[] = [];
  const r = runLines(lines, {
    runs,
    jsonlSink: (l) => {
      const ev = parseTraceLine(l, 1, l.includes('"e":"header"'));
      if (ev?.e === 'cmds') for (let off = 0; off < (ev as CmdsEvent).w.length; off += 4) cmds.push(decodeCommand((ev as CmdsEvent).w, off));
    },
  });
  return { r, cmds };
}

function expectQemuHitsMisses(r: PipelineResult, b: QemuTraceBuilder): void {
  const m = r.runs[0];
  expect(r.badLines).toBe(0);
  expect(m.translation.faults).toBe(0);
  expect(m.smmu.commandErrors).toBe(0);
  expect(m.translation.hits).toBe(b.lookupHits);
  expect(m.translation.misses).toBe(b.lookupMisses);
  expect(m.commands.byOpcode).toEqual(r.import!.commands);
}

function stage2Trace(timestamps: boolean): QemuTraceBuilder {
  const b = new QemuTraceBuilder(timestamps);
  const X = { tid: 7, sid: 8, asid: -1, vmid: 1, stage: 2 as const };
  b.idr0(5, 0xd441019).commands(5, RESET).commands(5, RESET2)
    .commands(5, [['CFGI_STE', ['smmuv3_cmdq_cfgi_ste streamid= 0x8', 'smmu_config_cache_inv Config cache INV for sid=0x8']], ['SYNC', []]])
    .commands(5, [['PREFETCH_CONFIG', []]])
    .translate({ ...X, configMiss: true, hit: false, iova: 0x40001000, out: 0x60001000, s2: { in: 0x40001000, out: 0x60001000 } })
    .translate({ ...X, hit: true, iova: 0x40001010, out: 0x60001010 })
    .translate({ ...X, hit: false, iova: 0x40200123, out: 0x80200123, s2: { in: 0x40200123, out: 0x80200123, sizeMiB: 2 } })
    .translate({ ...X, hit: true, iova: 0x40300000, out: 0x80300000 })
    .commands(5, [['TLBI_S2_IPA', ['smmuv3_range_inval vmid=1 asid=-1 addr=0x40001000 tg=1 num_pages=0x1 ttl=3 leaf=1 stage=2']], ['SYNC', []]])
    .translate({ ...X, hit: false, iova: 0x40001000, out: 0x60001000, s2: { in: 0x40001000, out: 0x60001000 } })
    .translate({ ...X, hit: true, iova: 0x40300004, out: 0x80300004 })
    .commands(5, [['TLBI_S12_VMALL', ['smmuv3_cmdq_tlbi_s12_vmid vmid=1', 'smmu_iotlb_inv_vmid IOTLB invalidate vmid=1']], ['SYNC', []]])
    .translate({ ...X, hit: false, iova: 0x40300008, out: 0x80300008, s2: { in: 0x40300008, out: 0x80300008, sizeMiB: 2 } })
    .translate({ ...X, hit: true, iova: 0x40300010, out: 0x80300010 });
  return b;
}

describe('QEMU importer', () => {
  it('stage-2-only SMMU: S2 STE with the VMID, IPA mappings with 2 MiB blocks, S2_IPA / S12_VMALL rebuilt; replay = QEMU', () => {
    const b = stage2Trace(true);
    const { r, cmds } = replay(b.lines);
    expectQemuHitsMisses(r, b);
    expect(r.runs[0].translation.hits).toBe(4);
    const ipa = cmds.find((c) => c.name === 'CMD_TLBI_S2_IPA')!;
    expect(ipa.fields).toMatchObject({ VMID: 1, Address: 0x40001000n, TG: 1, TTL: 3, NUM: 0, SCALE: 0, Leaf: 1 });
    expect(cmds.find((c) => c.name === 'CMD_TLBI_S12_VMALL')!.fields.VMID).toBe(1);
    expect(cmds.find((c) => c.name === 'CMD_CFGI_ALL')).toBeDefined();
    expect(cmds.find((c) => c.name === 'CMD_PREFETCH_CONFIG')!.fields.StreamID).toBe(8); // inferred from the CFGI_STE before it
    expect(r.header!.system.smmus[0].idr0).toBe(0xd441019);
    expect(r.stats!.stages).toEqual({ 2: 8 });
    expect(r.stats!.vmids).toEqual([1]);
  });

  it('the same trace without timestamps imports to the same replay', () => {
    const a = replay(stage2Trace(true).lines).r.runs[0];
    const b = replay(stage2Trace(false).lines).r.runs[0];
    expect(b.translation).toEqual(a.translation);
    expect(b.commands).toEqual(a.commands);
  });

  it('nested SMMU: stage 1 IOVA→IPA and stage 2 IPA→PA rebuilt from the walk; NH_VA, S2_IPA + NH_ALL by VMID; replay = QEMU', () => {
    const b = new QemuTraceBuilder();
    const X = { tid: 3, sid: 0x10, asid: 5, vmid: 2, stage: 3 as const };
    b.idr0(4, 0xd44101b).commands(4, RESET).commands(4, RESET2)
      .translate({ ...X, configMiss: true, hit: false, iova: 0x10000, out: 0x90005000, s1: { out: 0x40005000 }, s2: { in: 0x40005000, out: 0x90005000 } })
      .translate({ ...X, hit: true, iova: 0x10010, out: 0x90005010 })
      .translate({ ...X, hit: false, iova: 0x11000, out: 0x90206000, s1: { out: 0x40206000 }, s2: { in: 0x40206000, out: 0x90206000, sizeMiB: 2 } })
      .commands(4, [['TLBI_NH_VA', ['smmuv3_range_inval vmid=2 asid=5 addr=0x10000 tg=1 num_pages=0x1 ttl=3 leaf=1 stage=1']], ['SYNC', []]])
      .translate({ ...X, hit: false, iova: 0x10000, out: 0x90005000, s1: { out: 0x40005000 }, s2: { in: 0x40005000, out: 0x90005000 } })
      .translate({ ...X, hit: true, iova: 0x11008, out: 0x90206008 })
      .commands(4, [
        ['TLBI_S2_IPA', ['smmuv3_range_inval vmid=2 asid=-1 addr=0x40005000 tg=1 num_pages=0x1 ttl=3 leaf=1 stage=2']],
        ['TLBI_NH_ALL', ['smmuv3_cmdq_tlbi_nh vmid=2', 'smmu_iotlb_inv_vmid_s1 IOTLB invalidate vmid=2']],
        ['SYNC', []],
      ])
      .translate({ ...X, hit: false, iova: 0x10000, out: 0x90005000, s1: { out: 0x40005000 }, s2: { in: 0x40005000, out: 0x90005000 } })
      .translate({ ...X, hit: true, iova: 0x10ff0, out: 0x90005ff0 });
    const { r, cmds } = replay(b.lines);
    expectQemuHitsMisses(r, b);
    expect(cmds.find((c) => c.name === 'CMD_TLBI_NH_VA')!.fields).toMatchObject({ VMID: 2, ASID: 5, Address: 0x10000n });
    expect(cmds.find((c) => c.name === 'CMD_TLBI_NH_ALL')!.fields.VMID).toBe(2);
    expect(r.import!.tables).toBe(2); // guest stage 1 (ASID 5, VMID 2) and stage 2 (VMID 2)
    // A nested walk: (n+1)(m+1)-1 = 24 reads for 4+4 levels per miss in the model.
    expect(r.runs[0].translation.walkAccesses).toBeGreaterThan(4 * b.lookupMisses);
  });

  it('stage 1, lazy invalidation (flush queue: TLBI_NH_ASID instead of per-page TLBIs)', () => {
    const b = new QemuTraceBuilder();
    const X = { tid: 9, sid: 0x18, asid: 3, vmid: 0, stage: 1 as const };
    b.commands(2, RESET).commands(2, RESET2)
      .translate({ ...X, configMiss: true, hit: false, iova: 0xfff00000, out: 0x41000000, s1: { out: 0x41000000 } })
      .translate({ ...X, hit: false, iova: 0xfff01000, out: 0x41001000, s1: { out: 0x41001000 } })
      .translate({ ...X, hit: true, iova: 0xfff00800, out: 0x41000800 })
      .commands(2, [['TLBI_NH_ASID', ['smmuv3_cmdq_tlbi_nh_asid asid=3', 'smmu_iotlb_inv_asid_vmid IOTLB invalidate asid=3 vmid=0']], ['SYNC', []]])
      .translate({ ...X, hit: false, iova: 0xfff01000, out: 0x52001000, s1: { out: 0x52001000 } })
      .translate({ ...X, hit: false, iova: 0xfff00000, out: 0x41000000, s1: { out: 0x41000000 } });
    const { r, cmds } = replay(b.lines);
    expectQemuHitsMisses(r, b);
    expect(cmds.find((c) => c.name === 'CMD_TLBI_NH_ASID')!.fields).toMatchObject({ ASID: 3, VMID: 0 });
    // The remapped IOVA was rebuilt as a new mapping, the replay translated it to the new page.
    expect(r.import!.maps).toBe(3);
    expect(r.header!.system.smmus[0].idr0).toBe(0xd44101b); // default when the trace has no IDR0 read
  });

  it('range splitting: the smmuv3_range_inval pieces of one TLBI become one command again', () => {
    const b = new QemuTraceBuilder();
    b.commands(1, [
      ['TLBI_NH_VA', [
        'smmuv3_range_inval vmid=0 asid=1 addr=0x3000 tg=1 num_pages=0x1 ttl=3 leaf=1 stage=1',
        'smmuv3_range_inval vmid=0 asid=1 addr=0x4000 tg=1 num_pages=0x4 ttl=3 leaf=1 stage=1',
        'smmuv3_range_inval vmid=0 asid=1 addr=0x8000 tg=1 num_pages=0x8 ttl=3 leaf=1 stage=1',
      ]],
      ['TLBI_NH_VA', ['smmuv3_range_inval vmid=0 asid=1 addr=0x20000 tg=1 num_pages=0x40 ttl=3 leaf=1 stage=1']],
      ['TLBI_NH_VA', ['smmuv3_range_inval vmid=0 asid=1 addr=0x90000 tg=1 num_pages=0x1 ttl=0 leaf=0 stage=1']],
      ['SYNC', []],
    ]);
    const { r, cmds } = replay(b.lines);
    const va = cmds.filter((c) => c.name === 'CMD_TLBI_NH_VA');
    expect(va).toHaveLength(3);
    expect(va[0].fields).toMatchObject({ Address: 0x3000n, NUM: 12, SCALE: 0, TG: 1, TTL: 3, ASID: 1, Leaf: 1 });
    expect(va[1].fields).toMatchObject({ Address: 0x20000n, NUM: 0, SCALE: 6, TG: 1 });
    // TG!=0 with NUM=SCALE=TTL=0 is Reserved: QEMU takes it as one page, the rebuilt command says so with TG=0.
    expect(va[2].fields).toMatchObject({ Address: 0x90000n, TG: 0, NUM: 0, SCALE: 0 });
    expect(r.import!.rangeMerged).toEqual({ commands: 1, pieces: 3 });
    expect(r.import!.reservedRangeAsSingle).toBe(1);
    expect(r.stats!.rangeInval).toMatchObject({ pieces: 5, commands: 3 });
    expect(r.runs[0].smmu.commandErrors).toBe(0);
  });

  it('QEMU\'s capacity flush (inv_all with no command) is told from a driver NSNH_ALL and applied only as recorded', () => {
    const b = new QemuTraceBuilder();
    const X = { tid: 1, sid: 8, asid: 1, vmid: 0, stage: 1 as const };
    b.commands(2, RESET).commands(2, RESET2)
      .translate({ ...X, configMiss: true, hit: false, iova: 0x1000, out: 0x81000, s1: { out: 0x81000 } })
      .translate({ ...X, hit: false, iova: 0x2000, out: 0x82000, s1: { out: 0x82000 }, flush: true })
      .translate({ ...X, hit: false, iova: 0x1000, out: 0x81000, s1: { out: 0x81000 } })
      .translate({ ...X, hit: true, iova: 0x2000, out: 0x82000 });
    const { r } = replay(b.lines, [{}, { tlb: { entries: 64, ways: 4, policy: 'lru' } }]);
    expect(r.stats!.capacityFlushes).toBe(1);
    expect(r.stats!.driverInvalidateAll).toBe(1);
    expect(r.import!.capacityFlushes).toBe(1);
    expectQemuHitsMisses(r, b);
    expect(r.runs[0].smmu.capacityFlushesApplied).toBe(1);
    // Another TLB does not inherit QEMU's capacity behaviour: the flush is not applied, 0x1000 hits.
    expect(r.runs[1].smmu).toMatchObject({ capacityFlushesApplied: 0, capacityFlushesIgnored: 1 });
    expect(r.runs[1].translation.hits).toBe(r.runs[0].translation.hits + 1);
  });

  it('a command QEMU rejected is not replayed; unknown events are counted', () => {
    const b = new QemuTraceBuilder();
    b.commands(1, [['CFGI_ALL', []]]);
    b.lines.splice(b.lines.length - 2, 0, '1@1795459900.000100:smmuv3_cmdq_consume_error Error on SMMU_CMD_CFGI_ALL command execution: 1');
    b.line(1, 'smmuv3_brand_new_event x=1');
    b.commands(1, [['SYNC', []]]);
    const { r, cmds } = replay(b.lines);
    expect(r.stats!.commands).toEqual({ CMD_CFGI_VMS_PIDM: 1, CMD_SYNC: 1 });
    expect(r.import!.qemuCommandErrors).toBe(1);
    expect(cmds.map((c) => c.name)).toEqual(['CMD_SYNC']);
    expect(r.unknownEvents).toEqual({ smmuv3_brand_new_event: 1 });
  });

  it('CMD_SYNC is rebuilt as Linux writes it without MSIs (CS=SEV, MSH=ISH, MSIAttr=OIWB)', () => {
    const b = new QemuTraceBuilder();
    b.commands(1, [['SYNC', []]]);
    const { cmds } = replay(b.lines);
    expect(cmds[0].fields).toMatchObject({ CS: 2, MSH: 3, MSIAttr: 0xf });
    expect(fromHex32('00000000000000000000000000000046')[0]).toBe(0x46);
  });
});
