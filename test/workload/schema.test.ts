import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { ScenarioSchema, scenarioJsonSchema } from '../../src/workload/schema.js';
import { JSON_SCHEMA_DIALECT, JSON_SCHEMA_DRAFT_07, editorJsonSchema, editorJsonSchemaText, registerSchema } from '../../src/cli/schema.js';
import { UserError } from '../../src/cli/errors.js';

type J = Record<string, unknown>;

/** The documented defaults: what an empty scenario file means. Change deliberately. */
const DEFAULTS = {
  name: 'unnamed',
  description: '',
  seed: 1,
  duration: { ms: 20 },
  cpu: {
    count: 8, asidBits: 16, vmidBits: 8, vhe: false, kpti: false, tlbiRange: true,
    tlb: { entries: 1280, ways: 5, policy: 'lru' },
  },
  smmu: {
    count: 1, btm: true, s1p: true, s2p: true, hyp: true, ats: false, asidBits: 16, vmidBits: 8, ril: true,
    tlb: { entries: 2048, ways: 4, policy: 'rr' },
    microTlbEntries: 0, walkCacheEntries: 0, atcEntries: 0, mmu700Erratum2812531: false,
  },
  kernel: { kvmVmidAllocator: 'v5.18', svaEra: 'private', kvmRangeFlush: true },
  policy: 'btm-2020',
  policyOptions: { vmidScope: 'device', s2Tables: 'private' },
  workload: {
    vms: 8, vcpusPerVm: 2, vmPages: 4096, timesliceUs: 1000, devicesPerVm: 2, nested: false,
    dma: { ratePerUs: 1, workingSetPages: 256, locality: 0.9 },
    kvm: {
      unmapPerMsPerVm: 1, rangeUnmapPerMsPerVm: 0.1, rangePages: 512, flushVmPerMsPerVm: 0.05,
      dirtyLogging: { vms: 0, passesPerMs: 0.5 },
    },
    guestTlbiPerMsPerVm: 2,
    guestSva: { munmapPerMsPerVm: 0, munmapPages: 16 },
    churn: {},
    sva: { processes: 0, munmapPerMs: 1, munmapPages: 16, hostProcesses: 16 },
  },
  cost: { tlbHitNs: 3, walkAccessNs: 90, commandNs: 50, cmdSyncNs: 2000, dvmMessageNs: 100, vsmmuTrapNs: 10000 },
};

/** Every (sub)schema in the tree with its JSON pointer-ish location. */
function* schemas(node: unknown, at = '#'): Generator<[string, J]> {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return;
  const s = node as J;
  yield [at, s];
  for (const [k, v] of Object.entries(s)) {
    if (k === 'default' || k === 'enum' || k === 'const') continue;
    if (k === 'properties' && v && typeof v === 'object') {
      for (const [name, sub] of Object.entries(v)) yield* schemas(sub, `${at}/properties/${name}`);
    } else if (Array.isArray(v)) {
      for (const [i, sub] of v.entries()) yield* schemas(sub, `${at}/${k}/${i}`);
    } else {
      yield* schemas(v, `${at}/${k}`);
    }
  }
}

const prop = (s: J, ...names: string[]): J =>
  names.reduce<J>((cur, n) => (cur.properties as Record<string, J>)[n], s);

describe('zod schema defaults', () => {
  it('an empty scenario parses and equals the documented defaults', () => {
    expect(ScenarioSchema.parse({})).toEqual(DEFAULTS);
  });

  it('the defaults validate against the schema itself (round trip)', () => {
    const d = ScenarioSchema.parse({});
    expect(ScenarioSchema.parse(JSON.parse(JSON.stringify(d)))).toEqual(d);
  });

  it('each section default parses on its own', () => {
    const shape = ScenarioSchema.shape as Record<string, { parse(v: unknown): unknown }>;
    for (const [k, v] of Object.entries(DEFAULTS)) expect(shape[k].parse(v), k).toEqual(v);
  });
});

describe('editor JSON Schema (btmsim schema)', () => {
  const s = editorJsonSchema();

  it('declares draft 2020-12 and has a title and description', () => {
    expect(s.$schema).toBe(JSON_SCHEMA_DIALECT);
    expect(JSON_SCHEMA_DIALECT).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(s.title).toBe('btmsim scenario');
    expect(typeof s.description).toBe('string');
    expect(s.type).toBe('object');
  });

  it('has every top-level scenario field as a property and requires none', () => {
    expect(Object.keys(s.properties as J).sort()).toEqual(Object.keys(ScenarioSchema.shape).sort());
    expect(s.required).toBeUndefined();
  });

  it('every object is closed (additionalProperties: false)', () => {
    let objects = 0;
    for (const [at, sub] of schemas(s)) {
      if (sub.type === 'object') {
        objects++;
        expect(sub.additionalProperties, at).toBe(false);
      }
    }
    expect(objects).toBeGreaterThan(15);
  });

  it('every property has a description', () => {
    for (const [at, sub] of schemas(s)) {
      if (!at.includes('/properties/') || at.endsWith('/properties')) continue;
      if (/\/properties\/[^/]+$/.test(at)) expect(typeof sub.description, at).toBe('string');
    }
  });

  it('TLB geometry defaults name their sources', () => {
    const cpuTlb = prop(s, 'cpu', 'tlb');
    const smmuTlb = prop(s, 'smmu', 'tlb');
    for (const k of ['entries', 'ways', 'policy']) {
      expect(prop(cpuTlb, k).description).toContain('Cortex-A76');
      expect(prop(smmuTlb, k).description).toContain('gem5');
    }
    expect(prop(cpuTlb, 'entries').default).toBe(1280);
    expect(prop(smmuTlb, 'entries').default).toBe(2048);
    expect(prop(smmuTlb, 'policy').default).toBe('rr');
  });

  it('defaults in the JSON Schema are exactly the zod defaults, at every level', () => {
    const defaults = ScenarioSchema.parse({}) as unknown as J;
    let checked = 0;
    const walk = (sub: J, value: unknown, at: string): void => {
      if ('default' in sub) {
        expect(sub.default, at).toEqual(value);
        checked++;
      }
      const props = sub.properties as Record<string, J> | undefined;
      if (props && value && typeof value === 'object') {
        for (const [k, p] of Object.entries(props)) walk(p, (value as J)[k], `${at}.${k}`);
      }
    };
    walk(s, defaults, '');
    expect(checked).toBeGreaterThan(60);
    expect(prop(s, 'seed').default).toBe(1);
    expect(prop(s, 'duration').default).toEqual({ ms: 20 });
    expect(prop(s, 'workload', 'dma', 'locality').default).toBe(0.9);
  });

  it('keeps ranges and enums, drops the ±2^53-1 noise', () => {
    expect(prop(s, 'cpu', 'vmidBits')).toMatchObject({ type: 'integer', enum: [8, 16] });
    expect(prop(s, 'workload', 'dma', 'locality')).toMatchObject({ minimum: 0, maximum: 1 });
    expect(prop(s, 'seed')).toMatchObject({ type: 'integer', minimum: 0, maximum: 2 ** 32 - 1 });
    expect(prop(s, 'policy').enum).toEqual(['ptm', 'btm-2020', 'btm-split', 'btm-kvm-pinned', 'btm-s2aset']);
    expect(JSON.stringify(s)).not.toContain(String(Number.MAX_SAFE_INTEGER));
    const dur = prop(s, 'duration').anyOf as J[];
    expect(dur.map((o) => o.required)).toEqual([['ms'], ['events']]);
  });

  it('uses only keywords that mean the same in draft-07, so --draft 7 is honest', () => {
    const common = new Set([
      '$schema', 'title', 'description', 'type', 'properties', 'additionalProperties', 'required', 'default',
      'enum', 'const', 'anyOf', 'items', 'minItems', 'maxItems', 'minimum', 'maximum', 'exclusiveMinimum',
      'exclusiveMaximum', 'minLength', 'maxLength',
    ]);
    for (const [at, sub] of schemas(s)) {
      for (const k of Object.keys(sub)) expect(common.has(k), `${at}: ${k}`).toBe(true);
      if (Array.isArray(sub.items)) throw new Error(`${at}: tuple items differ between drafts`);
    }
    const d7 = editorJsonSchema('7');
    expect(d7.$schema).toBe(JSON_SCHEMA_DRAFT_07);
    expect({ ...d7, $schema: s.$schema }).toEqual(s);
  });

  it('is derived from scenarioJsonSchema() (same property tree)', () => {
    const raw = scenarioJsonSchema() as J;
    expect(Object.keys(raw.properties as J)).toEqual(Object.keys(s.properties as J));
  });

  it('prints as 2-space JSON with a trailing newline', () => {
    const text = editorJsonSchemaText();
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.split('\n')[1]).toBe(`  "$schema": "${JSON_SCHEMA_DIALECT}",`);
    expect(JSON.parse(text)).toEqual(s);
  });
});

describe('btmsim schema command', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'btmsim-schema-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const program = (): Command => {
    const p = new Command('btmsim').exitOverride();
    registerSchema(p);
    return p;
  };

  it('prints the schema to stdout', async () => {
    const chunks: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => {
      chunks.push(String(c));
      return true;
    });
    try {
      await program().parseAsync(['schema'], { from: 'user' });
    } finally {
      spy.mockRestore();
    }
    expect(chunks.join('')).toBe(editorJsonSchemaText());
  });

  it('--out writes the file', async () => {
    const out = join(dir, 'scenario.schema.json');
    await program().parseAsync(['schema', '--out', out], { from: 'user' });
    expect(readFileSync(out, 'utf8')).toBe(editorJsonSchemaText());
  });

  it('--draft 7 declares draft-07', async () => {
    const out = join(dir, 'd7.schema.json');
    await program().parseAsync(['schema', '--draft', '7', '--out', out], { from: 'user' });
    expect(JSON.parse(readFileSync(out, 'utf8')).$schema).toBe(JSON_SCHEMA_DRAFT_07);
    await program().parseAsync(['schema', '--draft', 'draft-07', '--out', out], { from: 'user' });
    expect(readFileSync(out, 'utf8')).toBe(editorJsonSchemaText('7'));
  });

  it('an unknown --draft is a UserError', async () => {
    await expect(program().parseAsync(['schema', '--draft', '4'], { from: 'user' }))
      .rejects.toThrow('schema: --draft: expected 2020-12 or 7, got "4"');
  });

  it('--out into a missing directory is a UserError', async () => {
    const out = join(dir, 'no', 'such', 'dir.json');
    await expect(program().parseAsync(['schema', '--out', out], { from: 'user' })).rejects.toThrow(UserError);
    await expect(program().parseAsync(['schema', '--out', out], { from: 'user' }))
      .rejects.toThrow(`schema: cannot write ${out}: no such directory`);
  });
});
