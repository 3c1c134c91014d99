import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  applyPoint, checkAxes, gridSize, parseScalar, parseVary, pointIndices, pointLabel, pointParams, SweepSpecError,
} from '../../src/sweep/grid.js';
import { planSweep, workerFile } from '../../src/cli/sweep.js';
import { UserError } from '../../src/cli/errors.js';

const values = (flag: string) => parseVary(flag).values;
const bad = (flag: string) => () => parseVary(flag);

describe('--vary: lists and ranges', () => {
  it('lists of scalars read as YAML would (numbers, booleans, strings; quotes force a string)', () => {
    expect(values('workload.devicesPerVm=1,2,4')).toEqual([1, 2, 4]);
    expect(values('cpu.vhe=true,false')).toEqual([true, false]);
    expect(values('smmu.tlb.policy=lru,rr,random')).toEqual(['lru', 'rr', 'random']);
    expect(values('name="8",x')).toEqual(['8', 'x']);
    expect(values('workload.dma.locality=0.5, 0.9')).toEqual([0.5, 0.9]);
    expect(parseScalar('0x10')).toBe(16);
  });

  it('a..b is step 1, a..b:step arithmetic, a..b:x2 (or :*2) geometric; ends included', () => {
    expect(values('cpu.count=1..4')).toEqual([1, 2, 3, 4]);
    expect(values('cpu.count=2..9:3')).toEqual([2, 5, 8]);
    expect(values('workload.devicesPerVm=1..64:x2')).toEqual([1, 2, 4, 8, 16, 32, 64]);
    expect(values('workload.devicesPerVm=1..64:*2')).toEqual([1, 2, 4, 8, 16, 32, 64]);
    expect(values('workload.devicesPerVm=3..100:x3')).toEqual([3, 9, 27, 81]);
    expect(values('workload.dma.locality=0.1..0.5:0.1')).toEqual([0.1, 0.2, 0.3, 0.4, 0.5]);
    expect(values('workload.dma.ratePerUs=0.5..2:0.5')).toEqual([0.5, 1, 1.5, 2]);
    expect(values('cpu.count=5..5')).toEqual([5]);
  });

  it('ranges and single values mix in one list', () => {
    expect(values('cpu.count=1,4..8:2,16')).toEqual([1, 4, 6, 8, 16]);
  });

  it('a + b key sets the same value on several paths', () => {
    const a = parseVary('cpu.vmidBits+smmu.vmidBits=8,16');
    expect(a.key).toBe('cpu.vmidBits+smmu.vmidBits');
    expect(a.paths).toEqual([['cpu', 'vmidBits'], ['smmu', 'vmidBits']]);
  });

  it.each([
    ['workload.devicesPerVm', /expected key=values/],
    ['=1,2', /missing the field path/],
    ['cpu.count=', /no values/],
    ['cpu.count=1,,2', /empty value/],
    ['cpu.count=1,2,', /empty value/],
    ['cpu..count=1', /not a dotted field path/],
    ['cpu.count=4..1', /start 4 is greater than the end 1/],
    ['cpu.count=1..4:0', /step must be greater than 0/],
    ['cpu.count=1..4:-1', /step must be greater than 0/],
    ['cpu.count=1..4:x1', /factor must be greater than 1/],
    ['cpu.count=0..4:x2', /must start above 0/],
    ['cpu.count=a..4', /both ends must be numbers/],
    ['cpu.count=1..4:two', /not a number/],
    ['cpu.count=1..100000', /more than/],
    ['cpu.count=1,2,1', /given twice/],
    ['policy=ptm,btm-2020', /use --policy/],
    ['compare.0=ptm', /use --policy/],
  ])('--vary %s is refused', (flag, msg) => {
    expect(bad(flag)).toThrow(SweepSpecError);
    expect(bad(flag)).toThrow(msg);
    try { parseVary(flag); } catch (e) { expect((e as Error).message).toMatch(/^--vary /); expect((e as Error).message).not.toContain('\n'); }
  });

  it('the same path varied twice (or a path inside another) is refused', () => {
    expect(() => checkAxes([parseVary('cpu.count=1,2'), parseVary('cpu.count=4')])).toThrow(/already varied/);
    expect(() => checkAxes([parseVary('cpu.tlb=1'), parseVary('cpu.tlb.ways=4')])).toThrow(/already varied/);
    expect(() => checkAxes([parseVary('cpu.vmidBits+smmu.vmidBits=8'), parseVary('smmu.vmidBits=16')])).toThrow(/already varied/);
  });
});

describe('grid expansion', () => {
  const axes = [parseVary('cpu.vmidBits+smmu.vmidBits=8,16'), parseVary('workload.devicesPerVm=1,2,4')];

  it('is row-major, the first --vary outermost', () => {
    expect(gridSize(axes)).toBe(6);
    expect([0, 1, 2, 3, 4, 5].map((p) => pointIndices(axes, p))).toEqual([[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]);
    expect(pointParams(axes, 4)).toEqual({ 'cpu.vmidBits+smmu.vmidBits': 16, 'workload.devicesPerVm': 2 });
    expect(pointLabel(axes, 4)).toBe('vmidBits=16, devicesPerVm=2');
    expect(gridSize([])).toBe(1);
  });

  it('applies a point to a copy of the raw scenario, creating missing mappings', () => {
    const base = { name: 'x', cpu: { count: 4 } };
    const raw = applyPoint(base, axes, 5);
    expect(raw).toEqual({ name: 'x', cpu: { count: 4, vmidBits: 16 }, smmu: { vmidBits: 16 }, workload: { devicesPerVm: 4 } });
    expect(base).toEqual({ name: 'x', cpu: { count: 4 } });
  });

  it('a path through a scalar is refused', () => {
    expect(() => applyPoint({ seed: 1 }, [parseVary('seed.x=1')], 0)).toThrow(/seed is 1, not a mapping/);
  });
});

describe('--vary values are validated against the scenario schema before anything runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'btmsim-grid-'));
  const file = join(dir, 's.yaml');
  writeFileSync(file, 'name: t\nduration: { ms: 1 }\ncompare: [ptm, btm-2020]\nworkload: { vms: 2 }\n');
  const plan = (...vary: string[]) => planSweep(file, { vary });
  const err = (...vary: string[]): string => {
    try { plan(...vary); } catch (e) { expect(e).toBeInstanceOf(UserError); return (e as Error).message; }
    throw new Error('expected a UserError');
  };

  it('a valid grid gives one validated scenario per point and the scenario\'s policies', () => {
    const p = plan('cpu.vmidBits+smmu.vmidBits=8,16', 'workload.devicesPerVm=1..4:x2');
    expect(p.points).toHaveLength(6);
    expect(p.points[5].cpu.vmidBits).toBe(16);
    expect(p.points[5].smmu.vmidBits).toBe(16);
    expect(p.points[5].workload.devicesPerVm).toBe(4);
    expect(p.points[5].workload.vms).toBe(2);
    expect(p.def.policies).toEqual(['ptm', 'btm-2020']);
    expect(p.def.jobs).toBe(12);
  });

  it('an unknown field names the flag', () => {
    const m = err('workload.devicesPerVM=1,2');
    expect(m).toMatch(/^--vary workload\.devicesPerVM=1,2: value 1: /);
    expect(m).toContain('devicesPerVM');
    expect(m).not.toContain('\n');
  });

  it('a value out of range names the flag and the value', () => {
    const m = err('cpu.vmidBits=8,12');
    expect(m).toMatch(/^--vary cpu\.vmidBits=8,12: value 12: cpu\.vmidBits: /);
    expect(err('workload.dma.locality=0.5..1.5:0.5')).toMatch(/value 1\.5: workload\.dma\.locality/);
    expect(err('cpu.count=0,1')).toMatch(/value 0: cpu\.count/);
  });

  it('a wrongly typed value names the flag', () => {
    expect(err('cpu.vhe=yes')).toMatch(/^--vary cpu\.vhe=yes: value "yes": cpu\.vhe/);
  });

  it('a grid point that is invalid only in combination names the point', () => {
    // Alone, 16 entries (with the default 4 ways) and 32 ways (with the default 2048 entries) are
    // fine; together 16 entries cannot hold 32 ways.
    const m = err('smmu.tlb.entries=16,64', 'smmu.tlb.ways=4,32');
    expect(m).toMatch(/^--vary: grid point entries=16, ways=32 is not a valid scenario: smmu\.tlb\.ways: must divide entries/);
  });

  it('bad syntax is a UserError too (exit 2, one line)', () => {
    expect(err('cpu.count=4..1')).toMatch(/^--vary cpu\.count=4\.\.1: bad range/);
  });
});

describe('workers run built JavaScript', () => {
  it('sweep refuses clearly when dist/cli/sweep-worker.js is missing', () => {
    expect(() => workerFile('file:///nonexistent/btmsim/dist/cli/sweep.js')).toThrow(UserError);
    expect(() => workerFile('file:///nonexistent/btmsim/dist/cli/sweep.js')).toThrow(/sweep-worker\.js is missing: run `npm run build` first/);
    // From the TypeScript sources (tests, tsx), the worker is still the built one.
    expect(() => workerFile('file:///nonexistent/btmsim/src/cli/sweep.ts')).toThrow(/\/nonexistent\/btmsim\/dist\/cli\/sweep-worker\.js is missing/);
  });
});
