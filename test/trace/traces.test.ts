/**
 * The real QEMU traces in ../shared/traces: statistics equal the independent summaries, the
 * importer rebuilds every command, and the replay of QEMU's IOTLB as recorded reproduces the
 * hits and misses QEMU observed. The full s1-strict trace (2.1 M lines) is read once, through
 * the WebAssembly xz decoder, statistics and replay in the same pass.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayFile } from '../../src/cli/replay.js';
import { UserError } from '../../src/cli/errors.js';
import type { PipelineResult } from '../../src/workload/trace/pipeline.js';
import type { QemuStats } from '../../src/workload/trace/stats.js';

const TRACES = resolve(import.meta.dirname, '../../../shared/traces');
const have = existsSync(`${TRACES}/s1-strict.trace.log.xz`);

interface Summary {
  lines: number;
  events: Record<string, number>;
  cmdq: Record<string, number>;
  streams: Record<string, number>;
  stages: Record<string, number>;
  range: Record<string, number>;
}

/** The *.summary.txt layout: `## section` then `<count> <key>` lines. */
function parseSummary(text: string): Summary {
  const s: Summary = { lines: 0, events: {}, cmdq: {}, streams: {}, stages: {}, range: {} };
  let sec: keyof Summary | null = null;
  for (const line of text.split('\n')) {
    const m = /^lines: (\d+)/.exec(line);
    if (m) { s.lines = Number(m[1]); continue; }
    if (line.startsWith('## ')) {
      sec = line.includes('events') ? 'events' : line.includes('per guest phase') ? null : line.includes('CMDQ opcodes') ? 'cmdq'
        : line.includes('per StreamID') ? 'streams' : line.includes('per stage') ? 'stages' : line.includes('range_inval') ? 'range' : null;
      continue;
    }
    const r = /^\s+(\d+) (.+)$/.exec(line);
    if (r && sec !== null) (s[sec] as Record<string, number>)[r[2].trim()] = Number(r[1]);
  }
  return s;
}

/** SMMU_CMD_X as QEMU prints it → the spec name (0x07 "CFGI_ALL" is CMD_CFGI_VMS_PIDM, arch.md §1.3). */
function specName(qemu: string): string {
  return qemu === 'SMMU_CMD_CFGI_ALL' ? 'CMD_CFGI_VMS_PIDM' : qemu.replace(/^SMMU_/, '');
}

function expectStatsEqualSummary(st: QemuStats, sum: Summary, full: boolean): void {
  expect(st.lines).toBe(sum.lines);
  expect(st.badLines).toBe(0);
  if (full) {
    expect(st.events).toEqual(sum.events);
    expect(st.streams).toEqual(sum.streams);
    expect(st.stages).toEqual(sum.stages);
    expect(st.translations).toBe(sum.events.smmuv3_translate_success);
    expect(st.iotlb.hits).toBe(sum.events.smmu_iotlb_lookup_hit);
    expect(st.iotlb.misses).toBe(sum.events.smmu_iotlb_lookup_miss);
  }
  expect(st.commands).toEqual(Object.fromEntries(Object.entries(sum.cmdq).map(([k, v]) => [specName(k), v])));
  const hist: Record<string, number> = {};
  for (const [stage, h] of Object.entries(st.rangeInval.byStage)) for (const [p, n] of Object.entries(h)) hist[`(${p}, '${stage}')`] = n;
  expect(hist).toEqual(sum.range);
}

describe.runIf(have)('real QEMU traces (../shared/traces)', () => {
  it('s1-strict full trace: --stats equals s1-strict.summary.txt, and the replay of QEMU\'s IOTLB reproduces its hits and misses', { timeout: 60_000 }, async () => {
    const sum = parseSummary(readFileSync(`${TRACES}/s1-strict.summary.txt`, 'utf8'));
    const t0 = Date.now();
    const r = await replayFile(`${TRACES}/s1-strict.trace.log.xz`, { xz: 'wasm' });
    const ms = Date.now() - t0;
    expectStatsEqualSummary(r.stats!, sum, true);
    // QEMU's own capacity flushes: 53 smmu_iotlb_inv_all, one of them by TLBI_NSNH_ALL at reset.
    expect(r.stats!.capacityFlushes).toBe(52);
    expect(r.stats!.driverInvalidateAll).toBe(1);
    expect(r.stats!.rangeInval.commands).toBe(sum.cmdq.SMMU_CMD_TLBI_NH_VA);
    expect(r.stats!.asids).toEqual([1, 2, 3]);
    expect(r.stats!.vmids).toEqual([0]);
    const im = r.import!;
    expect(im.dma).toBe(sum.events.smmuv3_translate_success);
    expect(im.untranslated.disabled).toBe(1);
    expect(im.commands).toEqual(r.stats!.commands);
    expect(im.rangeMerged.pieces - im.rangeMerged.commands).toBe(sum.events.smmuv3_range_inval - sum.cmdq.SMMU_CMD_TLBI_NH_VA);
    const m = r.runs[0];
    expect(m.translation.hits).toBe(r.stats!.iotlb.hits);
    expect(m.translation.misses).toBe(r.stats!.iotlb.misses);
    expect(m.translation.walkAccesses).toBe(r.stats!.walkReads);
    expect(m.translation.faults).toBe(0);
    expect(m.smmu.commandErrors).toBe(0);
    expect(m.smmu.capacityFlushesApplied).toBe(52);
    expect(m.commands.byOpcode).toEqual(r.stats!.commands);
    process.stdout.write(`s1-strict: ${r.lines} lines in ${ms} ms (${Math.round(r.lines / (ms / 1000))} lines/s, stats + import + replay, wasm xz)\n`);
  });

  it('s1-strict command log: commands by opcode and range pieces equal the summary', async () => {
    const sum = parseSummary(readFileSync(`${TRACES}/s1-strict.summary.txt`, 'utf8'));
    const r = await replayFile(`${TRACES}/s1-strict.cmds.log.xz`, { stats: true });
    sum.lines = r.lines; // the command log is a subset of the lines
    expectStatsEqualSummary(r.stats!, sum, false);
  });

  it('pilot trace: statistics equal its summary; it imports and replays to QEMU\'s hits and misses', async () => {
    const sum = parseSummary(readFileSync(`${TRACES}/pilot-noiommuplatform.summary.txt`, 'utf8'));
    const r = await replayFile(`${TRACES}/pilot-noiommuplatform.trace.log.xz`, {});
    expectStatsEqualSummary(r.stats!, sum, true);
    const m = r.runs[0];
    expect(r.import!.dma).toBe(sum.events.smmuv3_translate_success);
    expect(m.dmaTranslations).toBe(sum.events.smmuv3_translate_success);
    expect(m.translation.hits).toBe(sum.events.smmu_iotlb_lookup_hit);
    expect(m.translation.misses).toBe(sum.events.smmu_iotlb_lookup_miss);
    expect(m.translation.faults).toBe(0);
    expect(m.commands.byOpcode).toEqual(r.stats!.commands);
    expect(r.stats!.capacityFlushes).toBe(0);
  });

  it('replay is deterministic: the same trace gives the same metrics twice, what-if included', async () => {
    const opts = { btm: 'on', kvmVms: '3', kvmRate: '2', smmuTlb: '64,4' };
    const a: PipelineResult = await replayFile(`${TRACES}/pilot-noiommuplatform.trace.log.xz`, opts);
    const b: PipelineResult = await replayFile(`${TRACES}/pilot-noiommuplatform.trace.log.xz`, opts);
    expect(a.runs).toHaveLength(2);
    expect(JSON.stringify(b.runs)).toBe(JSON.stringify(a.runs));
    expect(a.runs[1].kvm!.unmaps).toBeGreaterThan(0);
  });

  it('a file that does not exist is a one-line UserError', async () => {
    await expect(replayFile(`${TRACES}/no-such-trace.log`, {})).rejects.toThrow(UserError);
  });
});
