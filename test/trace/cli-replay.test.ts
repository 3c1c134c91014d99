/**
 * `btmsim replay` as a user runs it: the built CLI (npm test builds first), where .xz is
 * decompressed in a worker thread; exit codes and one-line errors.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'dist/cli/main.js');
const TRACES = resolve(root, '../shared/traces');
const pilot = join(TRACES, 'pilot-noiommuplatform.trace.log.xz');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe.runIf(existsSync(join(root, 'dist/cli/replay.js')))('btmsim run --record → btmsim replay (built CLI)', () => {
  const SMALL = 'seed: 3\nduration: { ms: 2 }\ncompare: [ptm, btm-2020]\nworkload: { vms: 4, devicesPerVm: 2 }\n';

  it('records one trace per policy, and each replays to the metrics of its run', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'btmsim-record-'));
    const sc = join(tmp, 'small.yaml');
    writeFileSync(sc, SMALL);
    const run = cli('run', sc, '--json', '--record', join(tmp, 'trace.jsonl'));
    expect(run.code).toBe(0);
    const results = JSON.parse(run.out).results as { policy: string; metrics: { dmaTranslations: number; collateral: { total: number } } }[];
    for (const r of results) {
      const f = join(tmp, `trace.${r.policy}.jsonl`);
      expect(existsSync(f)).toBe(true);
      const rep = cli('replay', f, '--json');
      expect(rep.code).toBe(0);
      const j = JSON.parse(rep.out);
      expect(j.matchesRecording).toBe(true);
      expect(j.asRecorded.dmaTranslations).toBe(r.metrics.dmaTranslations);
      expect(j.asRecorded.collateral.total).toBe(r.metrics.collateral.total);
    }
    expect(results.find((r) => r.policy === 'btm-2020')!.metrics.collateral.total).toBeGreaterThan(0);
  });

  it('one policy: the trace is written to the path as given; an unwritable path is a one-line error', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'btmsim-record-'));
    const sc = join(tmp, 'small.yaml');
    writeFileSync(sc, SMALL);
    expect(cli('run', sc, '--policy', 'ptm', '--record', join(tmp, 'one.jsonl')).code).toBe(0);
    expect(existsSync(join(tmp, 'one.jsonl'))).toBe(true);
    const bad = cli('run', sc, '--policy', 'ptm', '--record', join(tmp, 'no/such/dir/x.jsonl'));
    expect(bad.code).toBe(2);
    expect(bad.err.trim().split('\n')).toEqual([`btmsim: --record: cannot write ${join(tmp, 'no/such/dir/x.jsonl')}: ENOENT`]);
  });
});

describe.runIf(existsSync(join(root, 'dist/cli/replay.js')) && existsSync(pilot))('btmsim replay (built CLI)', () => {
  it('--stats --json on an .xz trace (decoder in a worker thread) gives the {lines, events, commands, translations, iotlb, streams} document', () => {
    const r = cli('replay', pilot, '--stats', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ lines: 107296, translations: 21892, iotlb: { hits: 18274, misses: 3618 }, streams: { '0x8': 1956, '0x10': 8115, '0x18': 11821 } });
    expect(j.commands).toMatchObject({ CMD_SYNC: 669, CMD_TLBI_NH_VA: 652 });
    expect(j.events.smmuv3_translate_success).toBe(21892);
  });

  it('replay prints QEMU, as recorded and the what-if side by side; --json has asRecorded/whatIf/delta', () => {
    const t = cli('replay', pilot, '--btm', 'on', '--kvm-vms', '2');
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/QEMU\s+as recorded\s+what-if: btm on, kvm 2 VMs\s+delta/);
    const j = JSON.parse(cli('replay', pilot, '--json', '--ril', 'off').out);
    expect(j.asRecorded.translation).toMatchObject({ hits: 18274, misses: 3618 });
    expect(j.whatIf.commands.byOpcode.CMD_TLBI_NH_VA).toBeGreaterThan(j.asRecorded.commands.byOpcode.CMD_TLBI_NH_VA);
    expect(j.delta.length).toBeGreaterThan(0);
  });

  it('a malformed line: exit 2, one line "file:line:col: reason"; --skip-bad goes on and says how many', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'btmsim-replay-'));
    const f = join(tmp, 'bad.log');
    writeFileSync(f, '1@1.000001:smmu_reset_exit \n1@1.000002:smmuv3_cmdq_opcode SMMU_CMD_SYNC\n1@1.000003:smmuv3_cmdq_opcode <--- SMMU_CMD_SYNC\n');
    const r = cli('replay', f);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toEqual([`btmsim: ${f}:2:31: smmuv3_cmdq_opcode: "SMMU_CMD_SYNC" does not match its format "<--- %s"`]);
    const s = cli('replay', f, '--stats', '--skip-bad', '--json');
    expect(s.code).toBe(0);
    expect(JSON.parse(s.out).badLines).toBe(1);
    expect(s.err).toContain('1 malformed lines skipped');
    expect(cli('replay', join(tmp, 'missing.log')).code).toBe(2);
  });
});
