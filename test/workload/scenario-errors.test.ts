import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIssue, loadScenarioText, type ScenarioIssue } from '../../src/workload/load.js';
import { ScenarioSchema } from '../../src/workload/schema.js';
import { UserError } from '../../src/cli/errors.js';
import { ScenarioFileError, formatScenarioIssues, readScenarioFile } from '../../src/cli/scenario-file.js';

function issues(text: string, file = 's.yaml'): ScenarioIssue[] {
  const r = loadScenarioText(text, file);
  if (r.ok) throw new Error(`expected the scenario to be rejected:\n${text}`);
  return r.issues;
}

/** The first issue is at line:col with this path, and its message contains every fragment. */
function expectFirst(text: string, line: number, col: number, path: string, ...fragments: string[]): ScenarioIssue {
  const first = issues(text)[0];
  expect({ line: first.line, col: first.col, path: first.path }, formatIssue(first)).toEqual({ line, col, path });
  for (const f of fragments) expect(first.message).toContain(f);
  expect(first.message).not.toContain('\n');
  return first;
}

describe('scenario validation errors: located, one line each', () => {
  it('string where a number is required: points at the value and quotes it', () => {
    expectFirst('cpu:\n  count: four\n', 2, 10, 'cpu.count', 'expected a number, got the string "four"');
  });

  it('unknown top-level field: points at the key, suggests the near miss', () => {
    const i = expectFirst('seed: 3\nnmae: x\n', 2, 1, 'nmae', 'unknown field "nmae"', 'did you mean "name"?');
    expect(i.message).toContain('expected one of: $schema, name, description, seed, duration');
  });

  it('unknown nested field: lists the expected keys of that mapping', () => {
    expectFirst('cpu:\n  count: 4\n  cuont: 4\n', 3, 3, 'cpu.cuont',
      'unknown field "cuont"', 'expected one of: count, asidBits, vmidBits, vhe, kpti, tlbiRange, tlb');
  });

  it('ID width outside the literal union (cpu.vmidBits: 12)', () => {
    expectFirst('cpu:\n  vmidBits: 12\n', 2, 13, 'cpu.vmidBits', 'expected 8 or 16, got 12');
  });

  it('unknown policy name: lists the policies', () => {
    expectFirst('policy: btm-foo\n', 1, 9, 'policy',
      'expected one of "ptm", "btm-2020", "btm-split", "btm-kvm-pinned", "btm-s2aset"', 'got "btm-foo"');
  });

  it('misspelt policy name: suggests the closest', () => {
    expectFirst('policy: btm-202\n', 1, 9, 'policy', 'did you mean "btm-2020"?');
  });

  it('unknown policy inside the compare list: path carries the index', () => {
    expectFirst('compare: [ptm, btm-bogus]\n', 1, 16, 'compare.1', 'got "btm-bogus"');
  });

  it('unknown policy in a block list', () => {
    expectFirst('compare:\n  - ptm\n  - btm-2020\n  - nope\n', 4, 5, 'compare.2', 'got "nope"');
  });

  it('YAML syntax error: unclosed flow sequence points at the "["', () => {
    expectFirst('compare: [ptm, btm-2020\nseed: 3\n', 1, 10, '', 'unclosed "["', 'no matching "]"');
  });

  it('YAML syntax error: unclosed quoted string points at the opening quote', () => {
    expectFirst("name: 'abc\nseed: 1\n", 1, 7, '', 'unclosed quoted string');
  });

  it('duplicate key: points at the second one and names the first line', () => {
    expectFirst('seed: 1\nname: x\nseed: 2\n', 3, 1, '', 'duplicate key "seed" (first given on line 1)');
  });

  it('duplicate key inside a nested mapping', () => {
    expectFirst('cpu:\n  count: 1\n  count: 2\n', 3, 3, '', 'duplicate key "count" (first given on line 2)');
  });

  it('negative number where the minimum is 0', () => {
    expectFirst('workload:\n  vms: -1\n', 2, 8, 'workload.vms', 'must be at least 0, got -1');
  });

  it('zero or negative where a positive number is required', () => {
    expectFirst('workload:\n  timesliceUs: 0\n', 2, 16, 'workload.timesliceUs', 'must be positive (greater than 0), got 0');
  });

  it('non-integer where an integer is required', () => {
    expectFirst('seed: 1.5\n', 1, 7, 'seed', 'expected an integer, got the number 1.5');
  });

  it('TLB set count not a power of two: names the nearest entry counts', () => {
    expectFirst('smmu:\n  tlb:\n    entries: 1000\n', 3, 14, 'smmu.tlb.entries',
      '1000 entries / 4 ways = 250 sets, not a power of two (nearest: 512 or 1024 entries)');
  });

  it('a 1280-entry 5-way TLB (Cortex-A76 L2) is accepted: 256 sets', () => {
    expect(loadScenarioText('cpu:\n  tlb: { entries: 1280, ways: 5 }\n', 'f.yaml').ok).toBe(true);
  });

  it('ways not dividing entries: points at ways', () => {
    expectFirst('smmu:\n  tlb:\n    entries: 1024\n    ways: 3\n', 4, 11, 'smmu.tlb.ways', 'must divide entries', '1024 entries / 3 ways');
  });

  it('ways not dividing the default entries: falls back to the tlb mapping', () => {
    expectFirst('cpu:\n  tlb:\n    policy: rr\n    entries: 2\n', 3, 5, 'cpu.tlb.ways', 'must divide entries (2 entries / 5 ways');
  });

  it('guest SVA without nested devices: points at guestSva.munmapPerMsPerVm (it would do nothing)', () => {
    expectFirst('workload:\n  vms: 2\n  guestSva: { munmapPerMsPerVm: 2 }\n', 3, 33, 'workload.guestSva.munmapPerMsPerVm', 'needs workload.nested: true');
    expect(loadScenarioText('workload:\n  nested: true\n  guestSva: { munmapPerMsPerVm: 2 }\n', 'f.yaml').ok).toBe(true);
  });

  it('duration with both ms and events: points at the second key', () => {
    expectFirst('duration:\n  ms: 5\n  events: 100\n', 3, 3, 'duration.events', 'give either ms or events, not both');
  });

  it('empty duration mapping', () => {
    expectFirst('duration: {}\n', 1, 11, 'duration', 'empty: expected { ms: <number> } or { events: <integer> }');
  });

  it('duration given as a string', () => {
    expectFirst('duration: 5ms\n', 1, 11, 'duration', 'expected a mapping { ms: <number> } or { events: <integer> }, got the string "5ms"');
  });

  it('unknown key in duration: lists ms and events', () => {
    expectFirst('duration:\n  ms: 5\n  foo: 1\n', 3, 3, 'duration.foo', 'unknown field "foo"; expected one of: ms, events');
  });

  it('bad value inside the chosen duration form', () => {
    expectFirst('duration: { events: 2.5 }\n', 1, 21, 'duration.events', 'expected an integer, got the number 2.5');
  });

  it('huge event count: the field maximum, not the safe-integer one', () => {
    expectFirst('duration:\n  events: 1e20\n', 2, 11, 'duration.events', 'must be at most 10000000000, got 1e20');
  });

  it('probability above 1 (workload.dma.locality)', () => {
    expectFirst('workload:\n  dma:\n    locality: 1.5\n', 3, 15, 'workload.dma.locality', 'must be at most 1, got 1.5');
  });

  it('"yes" is a string in YAML 1.2, so a boolean field rejects it with a hint', () => {
    expectFirst('cpu:\n  vhe: yes\n', 2, 8, 'cpu.vhe',
      'expected a boolean (true or false), got the string "yes"', 'write true or false');
  });

  it('quoted number: suggests removing the quotes', () => {
    expectFirst('cpu:\n  vmidBits: "16"\n', 2, 13, 'cpu.vmidBits', 'expected 8 or 16, got "16" (remove the quotes)');
  });

  it('top-level list instead of a mapping', () => {
    expectFirst('# a list\n- seed: 1\n- seed: 2\n', 2, 1, '', 'expected a mapping of scenario fields', 'got a list');
  });

  it('top-level plain string (forgotten colon)', () => {
    expectFirst('seed 1\n', 1, 1, '', 'got the string "seed 1"');
  });

  it('JSON file with a wrong type: line and column inside the JSON', () => {
    const json = '{\n  "seed": 1,\n  "cpu": { "count": "8" }\n}\n';
    const [i] = issues(json, 'x.json');
    expect(formatIssue(i)).toBe('x.json:3:21: cpu.count: expected a number, got the string "8" (remove the quotes)');
  });

  it('JSON file with an unknown field points at the quoted key', () => {
    const json = '{\n  "seed": 1,\n  "smmu": {\n    "btm": true,\n    "bmt": false\n  }\n}\n';
    const [i] = issues(json, 'x.json');
    expect([i.line, i.col, i.path]).toEqual([5, 5, 'smmu.bmt']);
    expect(i.message).toContain('did you mean "btm"?');
  });

  it('JSON file with an unclosed brace points at the "{"', () => {
    expectFirst('{\n  "seed": 1\n', 1, 1, '', 'unclosed "{"');
  });

  it('missing value (`seed:` is null)', () => {
    expectFirst('seed:\nname: x\n', 1, 6, 'seed', 'expected a number, got an empty value');
  });

  it('empty mapping value (`cpu:` with nothing under it)', () => {
    expectFirst('cpu:\nseed: 2\n', 1, 5, 'cpu', 'expected a mapping, got an empty value');
  });

  it('huge number: reports the field maximum, not the safe-integer one', () => {
    const i = expectFirst('seed: 99999999999999999999\n', 1, 7, 'seed', 'must be at most 4294967295', 'got 99999999999999999999');
    expect(i.message).not.toContain('9007199254740991');
    expect(issues('seed: 99999999999999999999\n')).toHaveLength(1);
  });

  it('number written in hex is shown as written', () => {
    expectFirst('seed: 0x1FFFFFFFF\n', 1, 7, 'seed', 'got 0x1FFFFFFFF');
  });

  it('infinity where a finite number is required', () => {
    expectFirst('workload:\n  timesliceUs: .inf\n', 2, 16, 'workload.timesliceUs', 'expected a finite number, got .inf');
  });

  it('tab indentation', () => {
    expectFirst('cpu:\n\tcount: 4\n', 2, 1, '', 'tab character used for indentation');
  });

  it('over-indented line (mapping inside a plain value)', () => {
    expectFirst('cpu:\n  count: 4\n   vhe: true\n', 2, 10, '', 'check the indentation of the next line');
  });

  it('under-indented line (mapping items not aligned)', () => {
    expectFirst('cpu:\n    count: 4\n  vhe: true\n', 3, 1, '', 'bad indentation', 'same column');
  });

  it('two YAML documents in one file', () => {
    expectFirst('seed: 1\n---\nseed: 2\n', 2, 1, '', 'single YAML document');
  });

  it('empty compare list', () => {
    expectFirst('compare: []\n', 1, 10, 'compare', 'must not be empty');
  });

  it('list where a mapping is expected', () => {
    expectFirst('cpu: [1, 2]\n', 1, 6, 'cpu', 'expected a mapping, got a list');
  });

  it('number where a string is expected', () => {
    expectFirst('name: 5\n', 1, 7, 'name', 'expected a string, got the number 5');
  });

  it('reports every mistake, sorted by position, one per field', () => {
    const all = issues('workload:\n  vms: -1\nseed: x\nfoo: 1\nbar: 2\ncpu:\n  vmidBits: 12\n');
    expect(all.map((i) => [i.line, i.col, i.path])).toEqual([
      [2, 8, 'workload.vms'],
      [3, 7, 'seed'],
      [4, 1, 'foo'],
      [5, 1, 'bar'],
      [7, 13, 'cpu.vmidBits'],
    ]);
    expect(all.every((i) => i.file === 's.yaml' && !i.message.includes('\n'))).toBe(true);
  });

  it('zod\'s own wording never leaks through for the common mistakes', () => {
    const texts = ['seed: x\n', 'seed: 1.5\n', 'seed: -1\n', 'cpu: {vmidBits: 12}\n', 'duration: {}\n', 'compare: []\n'];
    for (const t of texts) {
      for (const i of issues(t)) expect(i.message).not.toMatch(/Invalid input|Too (big|small)|received/);
    }
  });
});

describe('valid scenarios', () => {
  it('a file with comments and the yaml-language-server modeline loads', () => {
    const text = [
      '# yaml-language-server: $schema=./btmsim-scenario.schema.json',
      '# The thread\'s hard case: 8-bit VMIDs on both sides.',
      'name: vmid8   # trailing comment',
      'seed: 7',
      'duration: { events: 100000 }',
      'cpu:',
      '  vmidBits: 8',
      '  tlb: { entries: 2048, ways: 8 }',
      'compare: [ptm, btm-2020, btm-split]',
      'workload:',
      '  dma:',
      '    locality: 0.5',
      '',
    ].join('\n');
    const r = loadScenarioText(text, 'ok.yaml');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.scenario.name).toBe('vmid8');
    expect(r.scenario.seed).toBe(7);
    expect(r.scenario.duration).toEqual({ events: 100000 });
    expect(r.scenario.cpu.tlb).toEqual({ entries: 2048, ways: 8, policy: 'lru' });
    expect(r.scenario.compare).toEqual(['ptm', 'btm-2020', 'btm-split']);
    expect(r.scenario.workload.dma).toEqual({ ratePerUs: 1, workingSetPages: 256, locality: 0.5 });
  });

  it('the $schema key (JSON style) is accepted', () => {
    const r = loadScenarioText('{ "$schema": "./s.json", "seed": 2 }', 'ok.json');
    expect(r.ok).toBe(true);
  });

  it('an empty file gives all the defaults', () => {
    for (const text of ['', '\n', '# nothing here\n', '---\n']) {
      const r = loadScenarioText(text, 'empty.yaml');
      expect(r.ok, JSON.stringify(text)).toBe(true);
      if (r.ok) expect(r.scenario).toEqual(ScenarioSchema.parse({}));
    }
  });

  it('a UTF-8 byte order mark is ignored', () => {
    const r = loadScenarioText('\uFEFFseed: 2\n', 'bom.yaml');
    expect(r.ok && r.scenario.seed).toBe(2);
  });
});

describe('readScenarioFile', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'btmsim-scenario-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const write = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const thrown = (f: () => unknown): UserError => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      return e as UserError;
    }
    throw new Error('expected a UserError');
  };

  it('reads a valid YAML file', () => {
    const p = write('ok.yaml', 'seed: 5\npolicy: ptm\n');
    const s = readScenarioFile(p);
    expect(s.seed).toBe(5);
    expect(s.policy).toBe('ptm');
  });

  it('reads a valid JSON file', () => {
    const p = write('ok.json', '{ "seed": 6, "cpu": { "vmidBits": 16 } }\n');
    expect(readScenarioFile(p).cpu.vmidBits).toBe(16);
  });

  it('an empty file is the default scenario', () => {
    expect(readScenarioFile(write('empty.yaml', ''))).toEqual(ScenarioSchema.parse({}));
  });

  it('missing file: UserError "<path>: cannot read scenario: no such file", exit 2', () => {
    const p = join(dir, 'nope.yaml');
    const e = thrown(() => readScenarioFile(p));
    expect(e.message).toBe(`${p}: cannot read scenario: no such file`);
    expect(e.exitCode).toBe(2);
  });

  it('a directory: UserError "is a directory"', () => {
    const p = join(dir, 'sub');
    mkdirSync(p);
    expect(thrown(() => readScenarioFile(p)).message).toBe(`${p}: cannot read scenario: is a directory`);
  });

  it('invalid file: the message starts with the first issue as file:line:col: path: message', () => {
    const p = write('bad.yaml', 'seed: 1\ncpu:\n  count: four\n');
    const e = thrown(() => readScenarioFile(p));
    expect(e).toBeInstanceOf(ScenarioFileError);
    expect(e.message).toBe(`${p}:3:10: cpu.count: expected a number, got the string "four"`);
    expect(e.exitCode).toBe(2);
    expect((e as ScenarioFileError).issues).toHaveLength(1);
  });

  it('several issues: one line each, in file order', () => {
    const p = write('bad2.yaml', 'seed: -1\npolicy: nope\n');
    const lines = thrown(() => readScenarioFile(p)).message.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^${escapeRe(p)}:1:7: seed: must be at least 0`));
    expect(lines[1]).toMatch(new RegExp(`^${escapeRe(p)}:2:9: policy: expected one of`));
  });

  it('more than 10 issues: 10 lines then "... and N more"', () => {
    const text = Array.from({ length: 13 }, (_, i) => `bogus${i}: 1`).join('\n') + '\n';
    const p = write('many.yaml', text);
    const e = thrown(() => readScenarioFile(p)) as ScenarioFileError;
    const lines = e.message.split('\n');
    expect(lines).toHaveLength(11);
    expect(lines[0]).toContain(`${p}:1:1: bogus0: unknown field "bogus0"`);
    expect(lines[9]).toContain(`${p}:10:1: bogus9:`);
    expect(lines[10]).toBe('... and 3 more');
    expect(e.issues).toHaveLength(13);
  });

  it('a YAML syntax error is a UserError too (no stack trace for the user)', () => {
    const p = write('syntax.yaml', 'compare: [ptm\n');
    const e = thrown(() => readScenarioFile(p));
    expect(e.message).toBe(`${p}:1:10: unclosed "[": no matching "]" before line 2`);
  });

  it('formatScenarioIssues with no cap hit lists everything', () => {
    const iss: ScenarioIssue[] = [{ file: 'f', line: 1, col: 2, path: '', message: 'm' }];
    expect(formatScenarioIssues(iss)).toBe('f:1:2: m');
  });
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
