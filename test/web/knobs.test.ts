import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyKnob, applyKnobs, effectiveEdits, KNOB_DEFAULTS, readKnobs, SCALES, withValue } from '../../web/src/knobs.js';
import { POLICIES } from '../../web/src/policies.js';
import { POLICY_NAMES, ScenarioSchema } from '../../src/workload/schema.js';
import { loadScenarioText } from '../../src/workload/load.js';

const dir = resolve(import.meta.dirname, '../../scenarios');
const shipped = readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => ({ f, text: readFileSync(join(dir, f), 'utf8') }));

describe('web explorer controls (web/src/knobs.ts)', () => {
  it('know the schema defaults and the policy names', () => {
    const d = ScenarioSchema.parse({});
    expect(KNOB_DEFAULTS).toEqual({
      cpuVmidBits: d.cpu.vmidBits, smmuVmidBits: d.smmu.vmidBits, vfs: d.workload.devicesPerVm, policy: d.policy,
      tlbEntries: d.smmu.tlb.entries, tlbWays: d.smmu.tlb.ways, kvmUnmap: d.workload.kvm.unmapPerMsPerVm,
      durationMs: 'ms' in d.duration ? d.duration.ms : -1,
    });
    expect([...POLICIES]).toEqual([...POLICY_NAMES]);
  });

  it('read what the loader reads, for every shipped scenario', () => {
    for (const { f, text } of shipped) {
      const r = loadScenarioText(text, f);
      if (!r.ok) throw new Error(f);
      const k = readKnobs(text)!;
      expect(k.vfs, f).toBe(r.scenario.workload.devicesPerVm);
      expect(k.tlbEntries, f).toBe(r.scenario.smmu.tlb.entries);
      expect(k.kvmUnmap, f).toBe(r.scenario.workload.kvm.unmapPerMsPerVm);
      expect(k.policies, f).toEqual(r.scenario.compare ?? [r.scenario.policy]);
      expect(k.durationMs, f).toBe('ms' in r.scenario.duration ? r.scenario.duration.ms : null);
      expect(k.vmidBits, f).toBe(r.scenario.cpu.vmidBits === r.scenario.smmu.vmidBits ? r.scenario.cpu.vmidBits : null);
    }
  });

  it('write valid scenarios, changing only the value itself, for every shipped scenario', () => {
    const edits = { vmidBits: 16, vfs: 7, policies: ['btm-split', 'ptm'], tlbEntries: SCALES.tlbEntries(4)[3], kvmUnmap: 0.5, durationMs: 3 } as const;
    for (const { f, text } of shipped) {
      const out = applyKnobs(text, { ...edits, policies: [...edits.policies] });
      expect(out, f).not.toBeNull();
      const r = loadScenarioText(out!, f);
      if (!r.ok) throw new Error(`${f}: ${r.issues.map((i) => i.message).join('; ')}`);
      expect(r.scenario.cpu.vmidBits).toBe(16);
      expect(r.scenario.smmu.vmidBits).toBe(16);
      expect(r.scenario.workload.devicesPerVm).toBe(7);
      expect(r.scenario.compare).toEqual(['btm-split', 'ptm']);
      expect(r.scenario.smmu.tlb.entries).toBe(512);
      expect(r.scenario.workload.kvm.unmapPerMsPerVm).toBe(0.5);
      expect(r.scenario.duration).toEqual({ ms: 3 });
      // comments survive
      expect(out!.split('\n').filter((l) => l.startsWith('#'))).toEqual(text.split('\n').filter((l) => l.startsWith('#')));
    }
  });

  it('edit a present field in place, keeping layout and comments', () => {
    const t = 'seed: 1  # keep\nworkload:\n  devicesPerVm: 4 # VFs\n  vms: 2\n';
    expect(applyKnob(t, 'vfs', 9)).toBe('seed: 1  # keep\nworkload:\n  devicesPerVm: 9 # VFs\n  vms: 2\n');
    expect(applyKnob('compare: [ptm, btm-2020]\n', 'policies', ['ptm'])).toBe('compare: [ptm]\n');
    expect(applyKnob('duration: { ms: 20 }\n', 'durationMs', 50)).toBe('duration: { ms: 50 }\n');
  });

  it('add missing fields, replace an events duration, and refuse what cannot take a value', () => {
    const a = applyKnob('', 'tlbEntries', 4096)!;
    expect(readKnobs(a)!.tlbEntries).toBe(4096);
    const b = applyKnob('duration: { events: 1000 }\n', 'durationMs', 5)!;
    expect(b).toBe('duration: { ms: 5 }\n');
    expect(readKnobs('duration: { events: 1000 }\n')).toMatchObject({ durationMs: null, durationEvents: 1000 });
    expect(applyKnob('cpu: [\n', 'vmidBits', 16)).toBeNull(); // syntax error
    expect(applyKnob('- a\n- b\n', 'vfs', 1)).toBeNull(); // not a mapping
    expect(applyKnob('workload: 3\n', 'vfs', 1)).toBeNull(); // parent is a scalar
    expect(readKnobs('cpu: [\n')).toBeNull();
    expect(readKnobs('cpu: { vmidBits: 16 }\n')!.vmidBits).toBeNull(); // SMMU stays 8: mixed
  });

  it('keep only the edits that differ from the base scenario; scales include the current value', () => {
    const base = readKnobs('workload: { devicesPerVm: 4 }\n');
    expect(effectiveEdits(base, { vfs: 4, durationMs: 50 })).toEqual({ durationMs: 50 });
    expect(withValue([1, 5, 10], 7)).toEqual([1, 5, 7, 10]);
    expect(withValue([1, 5, 10], 5)).toEqual([1, 5, 10]);
    expect(SCALES.tlbEntries(5).every((e) => Number.isInteger(Math.log2(e / 5)))).toBe(true);
  });
});
