import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// The built CLI, as a user runs it (`npm test` builds first).
const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'dist/cli/main.js');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const tmp = mkdtempSync(join(tmpdir(), 'btmsim-cli-'));
const small = join(tmp, 'small.yaml');
writeFileSync(small, `seed: 9
duration: { ms: 1 }
compare: [ptm, btm-2020]
workload: { vms: 2, devicesPerVm: 1, sva: { processes: 0, hostProcesses: 2 } }
`);

describe.runIf(existsSync(bin))('btmsim CLI', () => {
  it('run --json prints {version, scenario, seed, results[{policy, metrics}]}', () => {
    const r = cli('run', small, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(Object.keys(j)).toEqual(['version', 'scenario', 'seed', 'results']);
    expect(j.results.map((x: { policy: string }) => x.policy)).toEqual(['ptm', 'btm-2020']);
    expect(j.results[0].metrics.collateral.total).toBe(0);
  });

  it('run --policy and --seed override the scenario; --out writes the same JSON', () => {
    const out = join(tmp, 'out.json');
    const r = cli('run', small, '--policy', 'btm-split', '--seed', '3', '--json', '--out', out);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).seed).toBe(3);
    expect(readFileSync(out, 'utf8')).toBe(r.out);
  });

  it('run prints a comparison table with one column per policy', () => {
    const r = cli('run', small);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/ptm\s+btm-2020/);
    expect(r.out).toContain('collateral invalidations');
  });

  it('an unknown policy is a one-line error, exit 2, no stack trace', () => {
    const r = cli('run', small, '--policy', 'btm-2021');
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain('unknown policy "btm-2021"');
  });

  it('a bad scenario file is reported as file:line:col: field: message', () => {
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(bad, 'seed: 1\ncpu:\n  vmidBits: 12\n');
    const r = cli('run', bad);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${bad}:3:13: cpu.vmidBits:`);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('a missing scenario file is a one-line error', () => {
    const r = cli('run', join(tmp, 'nope.yaml'));
    expect(r.code).toBe(2);
    expect(r.err).toContain('cannot read scenario');
  });

  it('a bad --seed is refused', () => {
    expect(cli('run', small, '--seed', 'x1').code).toBe(2);
  });

  it('explain decodes a command and --encode reverses it', () => {
    const e = cli('explain', '--encode', 'CMD_TLBI_NH_VA vmid=5 asid=0x1234 addr=0xffff6000 leaf=1 tg=4k ttl=3');
    expect(e.code).toBe(0);
    expect(e.out).toContain('0x00000000ffff67011234000500000012');
    const d = cli('explain', '0x1234000500000012', '0x00000000ffff6701', '--json');
    expect(JSON.parse(d.out).name).toBe('CMD_TLBI_NH_VA');
  });

  it('vectors replays the shared kernel vectors and ends with "N passed, 0 failed"', () => {
    const r = cli('vectors', resolve(root, '../shared/kernel-vectors'));
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n').pop()).toMatch(/^\d+ passed, 0 failed$/);
  });

  it('schema prints a JSON Schema', () => {
    const r = cli('schema');
    expect(JSON.parse(r.out).title).toBe('btmsim scenario');
  });

  it('demo shows the over-invalidation step by step', () => {
    const r = cli('demo');
    expect(r.out).toContain('collateral invalidation');
  });
});
