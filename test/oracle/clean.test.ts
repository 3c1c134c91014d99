/**
 * Proof the other way: with no fault injected, every policy on every shipped scenario — and on
 * the small scenarios that enable what the faults need (VHE, ATS, 16-bit VMIDs, ASID rollovers) —
 * reports zero violations. Also: the oracle only watches (same metrics with and without it).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkScenario } from '../../src/oracle/check.js';
import { runScenario } from '../../src/sim/run.js';
import { POLICY_NAMES } from '../../src/workload/schema.js';
import { ASID_ROLLOVER, ATS, CHURN, CPU_TLB, SVA, VHE, WIDE_VMIDS, scenario } from './fixtures.js';

const dir = resolve(import.meta.dirname, '../../scenarios');
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();

function firstViolation(out: ReturnType<typeof checkScenario>): string {
  for (const r of out.results) if (r.oracle.list.length > 0) return JSON.stringify(r.oracle.list[0], null, 1);
  return '';
}

describe('no fault injected: zero violations', () => {
  for (const f of files) {
    it(`${f}: every policy is clean`, () => {
      const sc = scenario(readFileSync(join(dir, f), 'utf8'));
      const ms = 'ms' in sc.duration ? Math.min(sc.duration.ms, 4) : 4;
      const out = checkScenario({ ...sc, duration: { ms } }, [...POLICY_NAMES]);
      for (const r of out.results) {
        expect(r.oracle.violations, `${r.policy}: ${firstViolation(out)}`).toBe(0);
        expect(r.oracle.checked.smmuHits + r.oracle.checked.atcHits + r.oracle.checked.cpuHits + r.oracle.checked.fills, r.policy).toBeGreaterThan(0);
      }
    });
  }

  const extra: Record<string, string> = { SVA, CHURN, WIDE_VMIDS, ASID_ROLLOVER, VHE, ATS, CPU_TLB };
  for (const [name, yaml] of Object.entries(extra)) {
    it(`${name} (the fault tests' scenario): every policy is clean`, () => {
      const out = checkScenario(scenario(yaml), [...POLICY_NAMES]);
      for (const r of out.results) expect(r.oracle.violations, `${r.policy}: ${firstViolation(out)}`).toBe(0);
    });
  }
});

describe('the oracle only watches', () => {
  it('metrics are identical with and without the oracle (built-in workload, 2 ms)', () => {
    const sc = scenario(readFileSync(join(dir, 'thread-2020.yaml'), 'utf8'));
    const short = { ...sc, duration: { ms: 2 } };
    const plain = runScenario(short, [...POLICY_NAMES]);
    const checked = runScenario(short, [...POLICY_NAMES], { check: {} });
    expect(checked.results.map((r) => r.metrics)).toEqual(plain.results.map((r) => r.metrics));
    expect(checked.results.every((r) => r.oracle !== undefined && r.oracle.clean)).toBe(true);
    expect(plain.results.every((r) => r.oracle === undefined)).toBe(true);
  });
});
