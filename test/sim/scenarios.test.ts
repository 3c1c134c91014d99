import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/sim/run.js';
import { BUILTIN_SCENARIO_YAML } from '../../src/workload/builtin.js';
import { loadScenarioText } from '../../src/workload/load.js';
import { POLICY_NAMES } from '../../src/workload/schema.js';
import { editorJsonSchemaText } from '../../src/cli/schema.js';

const root = resolve(import.meta.dirname, '../..');
const dir = join(root, 'scenarios');
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();

describe('shipped scenarios', () => {
  it('scenarios/thread-2020.yaml is the built-in scenario', () => {
    expect(readFileSync(join(dir, 'thread-2020.yaml'), 'utf8')).toBe(BUILTIN_SCENARIO_YAML);
  });

  it('scenario.schema.json is up to date (regenerate with `btmsim schema --out scenario.schema.json`)', () => {
    expect(readFileSync(join(root, 'scenario.schema.json'), 'utf8')).toBe(editorJsonSchemaText());
  });

  for (const f of files) {
    it(`${f} opens with the schema line and a comment saying what it shows, and is valid`, () => {
      const text = readFileSync(join(dir, f), 'utf8');
      const lines = text.split('\n');
      expect(lines[0]).toBe('# yaml-language-server: $schema=../scenario.schema.json');
      expect(lines[1].startsWith('# ')).toBe(true);
      const r = loadScenarioText(text, f);
      expect(r.ok).toBe(true);
    });

    it(`${f}: every policy runs a short slice with no DMA faults`, () => {
      const r = loadScenarioText(readFileSync(join(dir, f), 'utf8'), f);
      if (!r.ok) throw new Error('invalid');
      const sc = { ...r.scenario, duration: { ms: 0.5 } };
      const out = runScenario(sc, [...POLICY_NAMES]);
      for (const res of out.results) expect(res.metrics.translation.faults, res.policy).toBe(0);
    });
  }
});
