/**
 * `btmsim check` and `run --check` end to end, as a user runs them (the built CLI; `npm test`
 * builds first). On the built-in scenario every fault either exits 1 with a readable report or
 * says it is not exercised by this scenario and what it needs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAULT_NAMES } from '../../src/oracle/faults.js';

const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'dist/cli/main.js');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const tmp = mkdtempSync(join(tmpdir(), 'btmsim-check-'));
const small = join(tmp, 'small.yaml');
writeFileSync(small, `seed: 9
duration: { ms: 1 }
compare: [ptm, btm-2020]
workload: { vms: 2, devicesPerVm: 1, dma: { workingSetPages: 16 }, sva: { processes: 2, munmapPerMs: 4, munmapPages: 16, hostProcesses: 2 } }
`);

/** What the built-in scenario does with each fault (policies ptm and btm-2020 keep the test short). */
const BUILTIN: Record<string, { code: number; text: RegExp }> = {
  'drop-dvm': { code: 1, text: /stale-tlb[\s\S]*DROPPED by the SMMU \(fault drop-dvm/ },
  'skip-sync': { code: 1, text: /still in smmu0's command queue/ },
  'vmid-reuse-no-inval': { code: 1, text: /vmid-aliasing/ },
  'vmid-truncate-8': { code: 0, text: /fault vmid-truncate-8: not exercised by this scenario: needs smmu\.vmidBits: 16/ },
  'range-first-page-only': { code: 1, text: /the command encodes 16 pages; the SMMU acted on 1/ },
  'sva-asid-unpinned': { code: 0, text: /fault sva-asid-unpinned: not exercised by this scenario: needs the shared SVA ASID era/ },
  'vhe-strw-el1': { code: 0, text: /fault vhe-strw-el1: not exercised by this scenario: needs cpu\.vhe: true/ },
  'no-atc-inv': { code: 0, text: /fault no-atc-inv: not exercised by this scenario: needs devices with ATCs/ },
  'tlbi-non-shareable': { code: 1, text: /stale-tlb/ },
  'vsmmu-btm-unpinned': { code: 0, text: /fault vsmmu-btm-unpinned: not exercised by this scenario: needs guest SVA through nesting/ },
};

describe.runIf(existsSync(bin))('btmsim check', () => {
  it('--list-faults names every fault with the bug it models', () => {
    const r = cli('check', '--list-faults');
    expect(r.code).toBe(0);
    for (const f of FAULT_NAMES) expect(r.out).toContain(`${f}\n`);
    expect(r.out).toContain('MMU-700 erratum 2812531');
    expect(r.out).toContain('FreeBSD review D55860');
  });

  it('a clean scenario exits 0 and says so', () => {
    const r = cli('check', small);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/ptm\s+clean/);
    expect(r.out).toMatch(/btm-2020\s+clean/);
    expect(r.out).toContain('clean: no TLB, ATC or CPU TLB hit');
  });

  it('--json: every verdict and every violation', () => {
    const r = cli('check', small, '--inject', 'drop-dvm', '--json');
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out);
    expect(Object.keys(j)).toEqual(['version', 'scenario', 'seed', 'faults', 'clean', 'results']);
    expect(j.faults).toEqual(['drop-dvm']);
    const b = j.results.find((x: { policy: string }) => x.policy === 'btm-2020');
    expect(b.oracle.violations).toBeGreaterThan(0);
    expect(b.oracle.list).toHaveLength(b.oracle.violations);
    expect(b.oracle.list[0].reproduce).toBe(`btmsim check ${small} --policy btm-2020 --seed 9 --inject drop-dvm`);
    expect(j.results[0].oracle.faults[0].exercised).toBe(false); // ptm does not rely on broadcasts
  });

  it('bad --inject and --max are one-line errors, exit 2', () => {
    const r = cli('check', small, '--inject', 'drop-dvm,bogus');
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain('unknown fault "bogus"');
    expect(cli('check', small, '--max', 'x').code).toBe(2);
  });

  it('run --check prints the table and the verdict; exit 1 with violations; --inject needs --check', () => {
    const clean = cli('run', small, '--check');
    expect(clean.code).toBe(0);
    expect(clean.out).toContain('collateral invalidations');
    expect(clean.out).toContain('btmsim check: scenario');
    const bad = cli('run', small, '--check', '--inject', 'range-first-page-only', '--json');
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.out).results[0].oracle.byRule['stale-tlb']).toBeGreaterThan(0);
    expect(cli('run', small, '--inject', 'drop-dvm').code).toBe(2);
  });

  for (const f of FAULT_NAMES) {
    const want = BUILTIN[f];
    it(`built-in scenario --inject ${f}: exit ${want.code}`, () => {
      const r = cli('check', '--inject', f, '--policy', 'ptm,btm-2020', '--max', '1');
      expect(r.code, r.err).toBe(want.code);
      expect(r.out).toMatch(want.text);
      if (want.code === 1) {
        expect(r.out).toMatch(/reproduce: btmsim check --policy (ptm|btm-2020) --seed 1 --inject /);
        expect(r.out).toMatch(/^\[1\] /m);
      }
    });
  }
});
