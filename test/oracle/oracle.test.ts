/** The oracle's rules on hand-driven events: the legitimate window, completion, refills, aliasing. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Stage, World } from '../../src/arch/world.js';
import { entryMatchesScope, resetScope, type InvalScope, type TlbEntry } from '../../src/hw/tlb/scope.js';
import { SmmuCache, teeSmmuListeners, type SmmuListener } from '../../src/hw/smmu/smmu.js';
import { mismatchReason } from '../../src/oracle/history.js';
import { Oracle } from '../../src/oracle/oracle.js';
import { Rule } from '../../src/oracle/rules.js';
import { CtxKind } from '../../src/sim/contexts.js';
import { Simulation } from '../../src/sim/simulation.js';
import type { DeviceHandle } from '../../src/sim/smmu-side.js';
import { scenario } from './fixtures.js';

const BASE = 0x400000;

/** A quiet system (no workload) with one SVA bond driven by hand. */
function rig() {
  let o!: Oracle;
  const sim = new Simulation(scenario('workload: { vms: 0, devicesPerVm: 0, sva: { processes: 0, hostProcesses: 0 } }'), 'ptm',
    { attach: (s) => { o = Oracle.attach(s); } });
  const ctx = sim.ctxs.add(CtxKind.MM, -1, 'test mm');
  const t = sim.hw.memory.newTable(ctx, 'test mm table');
  t.mapLinear(BASE, 16, 0x4000000);
  const h = sim.smmuSide.bindSva(0, 0x8000, 99, t, ctx, null)!;
  const dma = (p: number): number => sim.smmuSide.translate(h, p);
  return { sim, o, t, h, ctx, dma };
}

describe('stale translations', () => {
  it('a hit between a change and its maintenanceDone is the legitimate window; after it, a violation', () => {
    const { o, t, dma } = rig();
    expect(dma(BASE + 1)).toBe(0x4000001); // fill
    dma(BASE + 1); // fresh hit
    t.unmapRange(BASE + 1, 1);
    dma(BASE + 1); // the change is not yet invalidated: allowed
    expect(o.result().violations).toBe(0);
    o.maintenanceDone(t, 'test munmap');
    dma(BASE + 1); // software considers it gone; the entry is still there
    const r = o.result();
    expect(r.violations).toBe(1);
    const v = r.list[0];
    expect(v.rule).toBe(Rule.STALE_TLB);
    expect(v.cache).toBe('TLB');
    expect(v.obligation!.change).toBe('pages [0x400001, 0x400002) unmapped');
    expect(v.obligation!.doneBy).toBe('test munmap');
    expect(v.entry!.context).toBe('test mm');
    dma(BASE + 1);
    expect(o.result().violatingAccesses).toBe(2); // one distinct violation, used twice
    expect(o.result().list[0].hits).toBe(2);
  });

  it('an invalidated change, then a remap and refill, is clean', () => {
    const { sim, o, t, h, dma } = rig();
    dma(BASE + 2);
    t.unmapRange(BASE + 2, 1);
    sim.smmuSide.svaInvalidate(h, (BASE + 2) * 4096, (BASE + 3) * 4096);
    o.maintenanceDone(t, 'munmap');
    t.remapLinear(BASE + 2);
    dma(BASE + 2); // refilled after the remap
    dma(BASE + 2);
    expect(o.result().violations).toBe(0);
  });

  it('other pages of a changed table stay fresh', () => {
    const { o, t, dma } = rig();
    dma(BASE + 3);
    dma(BASE + 4);
    t.unmapRange(BASE + 4, 1);
    o.maintenanceDone(t, 'munmap');
    dma(BASE + 3);
    expect(o.result().violations).toBe(0);
    dma(BASE + 4);
    expect(o.result().violations).toBe(1);
  });

  it('a whole-table change (write-protect, teardown) obliges every entry of the table', () => {
    const { o, t, dma } = rig();
    dma(BASE + 5);
    t.writeProtect();
    dma(BASE + 5);
    expect(o.result().violations).toBe(0);
    o.maintenanceDone(t, 'dirty logging');
    dma(BASE + 5);
    expect(o.result().list[0].obligation!.change).toBe('the whole table write-protected (dirty logging)');
  });
});

describe('aliasing', () => {
  it('a hit on an entry filled for another context is a violation', () => {
    const { sim, o, h, dma } = rig();
    dma(BASE + 6);
    const other = sim.ctxs.add(CtxKind.MM, -1, 'other mm');
    const intruder: DeviceHandle = { ...h, ctx: other };
    o.beforeDma(intruder, BASE + 6);
    sim.hw.smmus[0].translate(h.sid, h.ssid, BASE + 6);
    const v = o.result().list[0];
    expect(v.rule).toBe(Rule.ASID_ALIASING);
    expect(v.requester.context).toBe('other mm');
    expect(v.entry!.context).toBe('test mm');
  });

  it('a walk through another context\'s configuration is a stale-config violation', () => {
    const { sim, o, h } = rig();
    const other = sim.ctxs.add(CtxKind.MM, -1, 'new owner');
    o.beforeDma({ ...h, ctx: other }, BASE + 7);
    sim.hw.smmus[0].translate(h.sid, h.ssid, BASE + 7); // miss: walk + fill with the bond's config
    expect(o.result().list[0].rule).toBe(Rule.STALE_CONFIG);
  });
});

describe('listeners', () => {
  it('teeSmmuListeners calls both, and passes a method only one has straight through', () => {
    const calls: string[] = [];
    const a: SmmuListener = { onSync: () => calls.push('a.sync'), onDvmSync: () => calls.push('a.dvm') };
    const b: SmmuListener = { onSync: () => calls.push('b.sync') };
    const t = teeSmmuListeners(a, b)!;
    t.onSync!(null as never);
    t.onDvmSync!(null as never);
    expect(calls).toEqual(['a.sync', 'b.sync', 'a.dvm']);
    expect(t.onHit).toBeUndefined();
    expect(teeSmmuListeners(null, b)).toBe(b);
    expect(teeSmmuListeners(a, null)).toBe(a);
    expect(SmmuCache.ATC).toBe(4);
  });
});

describe('mismatchReason agrees with entryMatchesScope', () => {
  const worlds = [World.NS_EL1, World.NS_EL2, World.NS_EL2_E2H];
  const entry = fc.record({
    world: fc.constantFrom(...worlds), vmid: fc.integer({ min: 0, max: 3 }), asid: fc.integer({ min: -1, max: 3 }),
    global: fc.boolean(), aset: fc.integer({ min: 0, max: 3 }), stage: fc.constantFrom(Stage.S1, Stage.S2, Stage.NESTED),
    page: fc.integer({ min: 0, max: 40 }), sizeLog2: fc.constantFrom(0, 2, 4), granuleLog2: fc.constantFrom(12, 14),
    level: fc.integer({ min: 1, max: 3 }), leaf: fc.integer({ min: 0, max: 1 }), out: fc.constant(7), ctx: fc.constant(0),
  }).map((e): TlbEntry => ({ ...e, page: e.page - (e.page % 2 ** e.sizeLog2) }));
  const scope = fc.record({
    worlds: fc.integer({ min: 1, max: 7 }), vmid: fc.integer({ min: -1, max: 3 }), vmidIgnoreBits: fc.integer({ min: 0, max: 1 }),
    asid: fc.integer({ min: -1, max: 3 }), includeGlobal: fc.boolean(), skipAset: fc.boolean(), skipVmidAset: fc.boolean(),
    stages: fc.integer({ min: 1, max: 7 }), pageStart: fc.integer({ min: 0, max: 40 }), pageCount: fc.integer({ min: 0, max: 8 }),
    leafOnly: fc.boolean(), ttl: fc.integer({ min: 0, max: 3 }), granuleLog2: fc.constantFrom(0, 12, 14),
  }).map((s): InvalScope => Object.assign(resetScope({} as InvalScope), s));

  it('null exactly when the scope removes the entry', () => {
    fc.assert(fc.property(entry, scope, (e, s) => (mismatchReason(e, s) === null) === entryMatchesScope(e, s)), { numRuns: 5000 });
  });
});
