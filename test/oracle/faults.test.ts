/**
 * Proof the oracle can fail: every fault, injected into a small scenario that gives it an
 * occasion, is caught with the rule it breaks; the same scenario without the fault is clean.
 */
import { describe, expect, it } from 'vitest';
import { FAULT_NAMES, FAULTS, faultHooksFor, parseFaultList, type FaultName } from '../../src/oracle/faults.js';
import { Rule, type RuleId } from '../../src/oracle/rules.js';
import type { PolicyName } from '../../src/workload/schema.js';
import { ASID_ROLLOVER, ATS, CHURN, CPU_TLB, NESTED_SVA, SVA, VHE, WIDE_VMIDS, check } from './fixtures.js';

interface Case {
  fault: FaultName;
  why: string;
  yaml: string;
  policy: PolicyName;
  rule: RuleId;
}

const CASES: Case[] = [
  { fault: 'drop-dvm', why: 'shared-ASID SVA under BTM relies on the munmap broadcast', yaml: SVA, policy: 'btm-2020', rule: Rule.STALE_TLB },
  { fault: 'skip-sync', why: 'SVA munmap by commands: DMA before the queued TLBI runs', yaml: SVA, policy: 'ptm', rule: Rule.STALE_TLB },
  { fault: 'skip-sync', why: 'VM churn: the new owner of a StreamID walks with the old STE', yaml: CHURN, policy: 'ptm', rule: Rule.STALE_CONFIG },
  { fault: 'vmid-reuse-no-inval', why: 'the next domain given the VMID hits the old domain\'s entries', yaml: CHURN, policy: 'ptm', rule: Rule.VMID_ALIASING },
  { fault: 'vmid-truncate-8', why: 'VMIDs 0x001 and 0x101 share entries', yaml: WIDE_VMIDS, policy: 'ptm', rule: Rule.VMID_ALIASING },
  { fault: 'range-first-page-only', why: 'the 16-page NH_VA range command invalidates one page', yaml: SVA, policy: 'ptm', rule: Rule.STALE_TLB },
  { fault: 'sva-asid-unpinned', why: 'after a CPU ASID rollover the mm\'s TLBIs carry another ASID than its CD', yaml: ASID_ROLLOVER, policy: 'btm-2020', rule: Rule.STALE_TLB },
  { fault: 'vhe-strw-el1', why: 'EL2&0 broadcasts and EL2 commands miss NS-EL1 entries', yaml: VHE, policy: 'btm-2020', rule: Rule.STALE_TLB },
  { fault: 'vhe-strw-el1', why: 'the same with commands only (PTM)', yaml: VHE, policy: 'ptm', rule: Rule.STALE_TLB },
  { fault: 'no-atc-inv', why: 'the ATC keeps entries of unmapped pages', yaml: ATS, policy: 'ptm', rule: Rule.STALE_ATC },
  { fault: 'no-atc-inv', why: 'the ATC of a reassigned StreamID keeps the previous VM\'s entries', yaml: ATS, policy: 'ptm', rule: Rule.VMID_ALIASING },
  { fault: 'tlbi-non-shareable', why: 'the SMMU never sees the local munmap TLBI', yaml: SVA, policy: 'btm-2020', rule: Rule.STALE_TLB },
  { fault: 'tlbi-non-shareable', why: 'another CPU keeps the guest page KVM unmapped', yaml: CPU_TLB, policy: 'ptm', rule: Rule.STALE_CPU_TLB },
  { fault: 'vsmmu-btm-unpinned', why: 'the guest\'s munmap broadcasts carry the KVM VMID, its device\'s nested entries the SMMU\'s own', yaml: NESTED_SVA, policy: 'btm-2020', rule: Rule.STALE_TLB },
];

describe('each fault is caught, with the rule it breaks', () => {
  it('every fault has at least one case', () => {
    for (const f of FAULT_NAMES) expect(CASES.some((c) => c.fault === f), f).toBe(true);
  });

  for (const c of CASES) {
    it(`${c.fault} (${c.policy}): ${c.why} -> ${c.rule}`, () => {
      const out = check(c.yaml, c.policy, [c.fault]);
      const o = out.results[0].oracle;
      expect(out.clean).toBe(false);
      expect(o.faults[0].exercised).toBe(true);
      expect(o.byRule[c.rule] ?? 0, JSON.stringify(o.byRule)).toBeGreaterThan(0);
      const v = o.list.find((x) => x.rule === c.rule)!;
      expect(v.faults).toEqual([c.fault]);
      expect(v.reproduce).toContain(`--inject ${c.fault}`);
      expect(v.reproduce).toContain(`--policy ${c.policy}`);
      expect(FAULTS.find((f) => f.name === c.fault)!.rules).toContain(c.rule);
    });

    it(`control: the ${c.fault} scenario without the fault is clean (${c.policy})`, () => {
      const out = check(c.yaml, c.policy);
      expect(out.results[0].oracle.violations, JSON.stringify(out.results[0].oracle.list[0] ?? null, null, 1)).toBe(0);
    });
  }
});

describe('fault definitions', () => {
  it('parseFaultList accepts known names and dedupes; rejects unknown ones naming the known', () => {
    expect(parseFaultList('drop-dvm, skip-sync,drop-dvm')).toEqual(['drop-dvm', 'skip-sync']);
    expect(() => parseFaultList('drop-dvm,nope')).toThrow(/unknown fault "nope".*drop-dvm/);
  });

  it('faultHooksFor turns on exactly the named hooks', () => {
    expect(faultHooksFor([])).toBeNull();
    const h = faultHooksFor(['no-atc-inv', 'skip-sync'])!;
    for (const f of FAULTS) expect(h.has(f.hook), f.name).toBe(f.name === 'no-atc-inv' || f.name === 'skip-sync');
  });

  it('a fault the scenario cannot exercise says so (activations 0, the need named)', () => {
    const out = check(SVA, 'ptm', ['vmid-truncate-8']);
    const f = out.results[0].oracle.faults[0];
    expect(out.clean).toBe(true);
    expect(f.exercised).toBe(false);
    expect(f.note).toMatch(/^not exercised by this scenario: needs smmu\.vmidBits: 16/);
    expect(f.blocker).toMatch(/vmidBits is 8/);
  });

  it('several faults at once are each counted', () => {
    const out = check(SVA, 'btm-2020', ['drop-dvm', 'range-first-page-only']);
    const [a, b] = out.results[0].oracle.faults;
    expect(a.name).toBe('drop-dvm');
    expect(a.exercised).toBe(true);
    expect(b.exercised).toBe(false); // btm-2020 SVA (shared era) sends no range commands
  });
});
