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

  it('a malformed line: exit 2, one line "file:line: reason"; --skip-bad goes on and says how many', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'btmsim-replay-'));
    const f = join(tmp, 'bad.log');
    writeFileSync(f, '1@1.000001:smmu_reset_exit \n1@1.000002:smmuv3_cmdq_opcode SMMU_CMD_SYNC\n1@1.000003:smmuv3_cmdq_opcode <--- SMMU_CMD_SYNC\n');
    const r = cli('replay', f);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toEqual([`btmsim: ${f}:2: smmuv3_cmdq_opcode: "SMMU_CMD_SYNC" does not match its format "<--- %s"`]);
    const s = cli('replay', f, '--stats', '--skip-bad', '--json');
    expect(s.code).toBe(0);
    expect(JSON.parse(s.out).badLines).toBe(1);
    expect(s.err).toContain('1 malformed lines skipped');
    expect(cli('replay', join(tmp, 'missing.log')).code).toBe(2);
  });
});
