/**
 * The btmsim JSONL format: write → read gives the same events, a QEMU trace converted to JSONL
 * replays to the same metrics, hand-written traces (named command fields) replay, and malformed
 * lines are reported with their line numbers (or skipped and counted).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayFile } from '../../src/cli/replay.js';
import { UserError } from '../../src/cli/errors.js';
import { TraceError } from '../../src/workload/trace/errors.js';
import { JsonlReader, TRACE_VERSION, eventToJson, parseTraceLine, type TraceEvent } from '../../src/workload/trace/jsonl.js';
import { runLines } from '../../src/workload/trace/pipeline.js';
import { QemuTraceBuilder } from './fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'btmsim-trace-'));

const HEADER = JSON.stringify({
  e: 'header', format: 'btmsim-trace', version: 1, source: 'hand-written',
  system: {
    cpus: 2, vhe: false, cpuTlb: { entries: 64, ways: 4, policy: 'lru' },
    smmus: [{ idr0: 0x0d44103b, idr1: 0x02730010, idr3: 0x1414, idr5: 0x74, aidr: 1, tlb: { entries: 64, ways: 4, policy: 'lru' } }],
  },
  driver: { btm: true, vhe: false },
});

/** A stage-2 device (VMID 1) and a KVM flush of VMID 1 broadcast with BTM on. */
const HAND: string[] = [
  HEADER,
  '{"e":"ctx","id":0,"kind":3,"vm":0,"name":"smmu s2"}',
  '{"e":"table","id":0,"ctx":0,"name":"s2"}',
  '{"e":"linear","table":0,"start":262144,"count":64,"out":1048576}',
  '{"e":"ste","smmu":0,"sid":16,"ste":{"Config":6,"S2VMID":1,"S2TTB":268435456}}',
  '{"e":"cmds","smmu":0,"w":[{"name":"CMD_CFGI_STE","fields":{"StreamID":16,"Leaf":1}},{"name":"CMD_SYNC"}]}',
  '{"e":"dma","t":1000,"smmu":0,"sid":16,"page":262145}',
  '{"e":"dma","t":2000,"smmu":0,"sid":16,"page":262145}',
  '{"e":"tlbi","t":3000,"cpu":1,"op":"VMALLS12E1IS","vmid":1,"el":2}',
  '{"e":"dsb","t":3001,"cpu":1}',
  '{"e":"dma","t":4000,"smmu":0,"sid":16,"page":262145}',
  '{"e":"cmds","smmu":0,"w":["0x0000000100000028 0x0","00000000000000000000000000000046"]}',
  '{"e":"dma","t":5000,"smmu":0,"sid":16,"page":262145}',
];

describe('btmsim JSONL traces', () => {
  it('write → read gives the same events (every kind), byte-stable', () => {
    const lines: string[] = [];
    const b = new QemuTraceBuilder();
    b.commands(1, [['CFGI_STE', ['smmuv3_cmdq_cfgi_ste streamid= 0x8']], ['SYNC', []]])
      .translate({ tid: 2, sid: 8, asid: 1, vmid: 0, stage: 1, configMiss: true, hit: false, iova: 0x1000, out: 0x81000, s1: { out: 0x81000 }, flush: true });
    runLines(b.lines, { runs: [], statsOnly: false, jsonlSink: (l) => lines.push(l) });
    const more: TraceEvent[] = [
      { e: 'reg', t: 5, smmu: 0, off: 0x2c, val: 6 },
      { e: 'tlbi', cpu: 1, op: 'IPAS2E1IS', vmid: 3, el: 2, e2h: true, tge: false, fb: false, asid: 0, page: 0x40001, pages: 1, ttl: 3, granule: 0 },
      { e: 'dsb', cpu: 1 },
      { e: 'access', cpu: 0, table: 0, page: 5, ctx: 0, vmid: 3, el: 1, e2h: false, tge: false, asid: 1 },
      { e: 'cfginv', smmu: 0, sid: 8, ssid: 1 },
      { e: 'unmap', table: 0, page: 1 }, { e: 'unmapRange', table: 0, page: 1, count: 4 }, { e: 'remap', table: 0, page: 1 },
      { e: 'linear', table: 0, start: 1, count: 2, out: 3 },
      { e: 'intent', source: 'kvmPage', mode: 'set' }, { e: 'intend', ctx: 0 }, { e: 'intent-end' },
      { e: 'vm', op: 'create', slot: 0, kvmId: 1 }, { e: 'vcpu', op: 'load', cpu: 0, slot: 0, vmid: 1 },
      { e: 'mm', op: 'switch', cpu: 0, mm: 3, asid: 7 }, { e: 'mark', text: 'phase 2' },
      { e: 'ste', smmu: 0, sid: 9, ste: null }, { e: 'cd', smmu: 0, ptr: 4096, index: 0, cd: null },
      { e: 'end', metrics: { translation: { hits: 1 } } },
    ];
    for (const ev of more) lines.push(eventToJson(ev));
    const kinds = new Set<string>();
    lines.forEach((l, i) => {
      const ev = parseTraceLine(l, i + 1, i === 0)!;
      kinds.add(ev.e);
      expect(eventToJson(ev)).toBe(l);
    });
    expect([...kinds].sort()).toEqual([
      'access', 'cd', 'cfginv', 'cmds', 'ctx', 'dma', 'dsb', 'end', 'flush', 'header', 'intend', 'intent', 'intent-end',
      'linear', 'map', 'mark', 'mm', 'reg', 'remap', 'ste', 'table', 'tlbi', 'unmap', 'unmapRange', 'vcpu', 'vm',
    ]);
    expect(JSON.parse(lines[0]).version).toBe(TRACE_VERSION);
  });

  it('a QEMU trace converted to JSONL replays to the same metrics as the QEMU trace', () => {
    const b = new QemuTraceBuilder();
    const X = { tid: 2, sid: 8, asid: 1, vmid: 0, stage: 1 as const };
    b.commands(1, [['CFGI_STE', ['smmuv3_cmdq_cfgi_ste streamid= 0x8']], ['SYNC', []]])
      .translate({ ...X, configMiss: true, hit: false, iova: 0x1000, out: 0x81000, s1: { out: 0x81000 } })
      .translate({ ...X, hit: true, iova: 0x1008, out: 0x81008 })
      .commands(1, [['TLBI_NH_VA', ['smmuv3_range_inval vmid=0 asid=1 addr=0x1000 tg=1 num_pages=0x1 ttl=3 leaf=1 stage=1']], ['SYNC', []]])
      .translate({ ...X, hit: false, iova: 0x1000, out: 0x81000, s1: { out: 0x81000 } });
    const jsonl: string[] = [];
    const q = runLines(b.lines, { jsonlSink: (l) => jsonl.push(l) });
    const j = runLines(jsonl);
    expect(j.format).toBe('jsonl');
    expect(j.runs[0].translation).toEqual(q.runs[0].translation);
    expect(j.runs[0].commands).toEqual(q.runs[0].commands);
    expect(j.runs[0].smmu).toEqual(q.runs[0].smmu);
  });

  it('a hand-written trace with named command fields replays: BTM broadcast and command both invalidate the S2 entry', () => {
    const r = runLines(HAND);
    const m = r.runs[0];
    expect(m.translation).toMatchObject({ hits: 1, misses: 3, faults: 0 });
    expect(m.commands.byOpcode).toEqual({ CMD_CFGI_STE: 1, CMD_TLBI_S12_VMALL: 1, CMD_SYNC: 2 });
    expect(m.dvm.receivedPerSmmu).toEqual([1]);
    expect(m.cpu).toEqual({ tlbiBroadcast: 1, tlbiLocal: 0, dsb: 1 });
  });

  it('errors name the line: not the header first, bad JSON, unknown event, missing or bad fields, newer version', () => {
    const bad = (lines: string[]): TraceError => {
      try { runLines(lines); } catch (e) { if (e instanceof TraceError) return e; throw e; }
      throw new Error('no error');
    };
    expect(bad(['', '{"e":"dma","smmu":0,"sid":1,"page":2}']).located('x.jsonl')).toMatch(/^x\.jsonl:2:2: the first line must be the header/);
    expect(bad([HEADER, '{"e":"dma",']).located('x')).toMatch(/^x:2:\d+: not valid JSON/);
    expect(bad([HEADER, '{"e":"teleport"}']).reason).toMatch(/unknown event "teleport"/);
    expect(bad([HEADER, '{"e":"dma","smmu":0,"page":2}']).reason).toBe('dma: missing "sid"');
    // The column points at the offending field.
    expect(bad([HEADER, '{"e":"dma","smmu":0,"sid":"x","page":2}']).located('x')).toBe('x:2:21: dma: "sid" must be an integer, got "x"');
    expect(bad([HEADER, '{"e":"dma", oops}']).located('x')).toMatch(/^x:2:13: not valid JSON/);
    expect(bad([HEADER, '{"e":"map","table":0,"page":1,"out":2,"size":5}']).reason).toMatch(/"size" must be 0/);
    expect(bad([HEADER, '{"e":"tlbi","cpu":0,"op":"TLBI ALL"}']).reason).toMatch(/unknown TLBI instruction/);
    expect(bad([HEADER, '{"e":"cmds","smmu":0,"w":["12"]}']).reason).toMatch(/w\[0\]: expected 32 hex digits/);
    expect(bad([HEADER, '{"e":"cmds","smmu":0,"w":[{"name":"CMD_TLBI_NH_VA","fields":{"Bogus":1}}]}']).reason).toMatch(/has no field Bogus/);
    expect(bad([HEADER, '{"e":"dma","smmu":0,"sid":1,"page":2}', '{"e":"map","table":7,"page":1,"out":2}']).located('t')).toBe('t:3: page table 7 used before its "table" event');
    expect(bad([HEADER.replace('"version":1', '"version":2')]).reason).toMatch(/version 2 is newer than this btmsim reads \(1\)/);
    expect(bad([HEADER, HEADER]).lineNo).toBe(2);
  });

  it('--skip-bad skips and counts malformed lines (never the header)', () => {
    const seen: number[] = [];
    const r = runLines([...HAND.slice(0, 6), '{"e":"dma"', 'garbage', ...HAND.slice(6)], { skipBad: true, onBad: (e) => seen.push(e.lineNo) });
    expect(r.badLines).toBe(2);
    expect(seen).toEqual([7, 8]);
    expect(r.runs[0].translation.hits).toBe(1);
    const rd = new JsonlReader(() => {}, { skipBad: true });
    expect(() => rd.push('{"e":"dma"}')).toThrow(TraceError);
  });

  it('replayFile: a malformed line is a one-line UserError "file:line:col: reason"; --skip-bad counts it', async () => {
    const f = join(tmp, 'bad.jsonl');
    writeFileSync(f, [...HAND.slice(0, 3), '{"e":"map","table":0}', ...HAND.slice(3)].join('\n') + '\n');
    await expect(replayFile(f, {})).rejects.toThrow(new UserError(`${f}:4:1: map: missing "page"`));
    const warned: string[] = [];
    const r = await replayFile(f, { skipBad: true, warn: (s) => warned.push(s) });
    expect(r.badLines).toBe(1);
    expect(warned).toEqual([`btmsim: skipped ${f}:4:1: map: missing "page"`]);
    const q = join(tmp, 'bad.log');
    writeFileSync(q, '1@1.0:smmu_reset_exit \n1@1.0:smmuv3_cmdq_opcode SMMU_CMD_SYNC\n');
    await expect(replayFile(q, { stats: true })).rejects.toThrow(/bad\.log:2:26: smmuv3_cmdq_opcode: "SMMU_CMD_SYNC" does not match its format "<--- %s"/);
  });

  it('replayFile --convert writes a JSONL trace that replays to the same metrics; format is detected', async () => {
    const b = new QemuTraceBuilder();
    b.commands(1, RESET_CMDS).translate({ tid: 2, sid: 8, asid: 1, vmid: 0, stage: 1, configMiss: true, hit: false, iova: 0x1000, out: 0x81000, s1: { out: 0x81000 } });
    const q = join(tmp, 'small.log');
    writeFileSync(q, b.lines.join('\n') + '\n');
    const out = join(tmp, 'small.jsonl');
    const a = await replayFile(q, { convert: out });
    const c = await replayFile(out, {});
    expect(a.format).toBe('qemu');
    expect(c.format).toBe('jsonl');
    expect(c.runs[0].translation).toEqual(a.runs[0].translation);
    expect(readFileSync(out, 'utf8').split('\n')[0]).toContain('"source":"qemu"');
    const s = await replayFile(out, { stats: true });
    expect(s.jsonlStats).toMatchObject({ translations: 1, commands: { CMD_CFGI_STE: 1, CMD_SYNC: 1 }, streams: { '0x8': 1 }, iotlb: null });
  });
});

const RESET_CMDS: [string, string[]][] = [['CFGI_STE', ['smmuv3_cmdq_cfgi_ste streamid= 0x8']], ['SYNC', []]];
