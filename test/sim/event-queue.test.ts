/**
 * The calendar event queue and the typed-array NumberSet against simple references driven by the
 * same random operations (fast-check): the simulation's determinism rests on the queue popping
 * by (time, insertion order) exactly, whatever its buckets, width adaptation and overflow heap do.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventQueue } from '../../src/sim/event-queue.js';
import { NumberSet } from '../../src/sim/number-set.js';

/** The reference: a plain array, earliest (time, seq) found by scanning. */
class RefQueue {
  private items: { t: number; seq: number; kind: number; arg: number }[] = [];
  private seq = 0;
  push(t: number, kind: number, arg: number): void { this.items.push({ t, seq: this.seq++, kind, arg }); }
  get size(): number { return this.items.length; }
  private minIndex(): number {
    let best = -1;
    this.items.forEach((e, i) => {
      const b = best < 0 ? null : this.items[best];
      if (b === null || e.t < b.t || (e.t === b.t && e.seq < b.seq)) best = i;
    });
    return best;
  }
  peekTime(): number { const i = this.minIndex(); return i < 0 ? Infinity : this.items[i].t; }
  pop(): { t: number; kind: number; arg: number } | null {
    const i = this.minIndex();
    if (i < 0) return null;
    const [e] = this.items.splice(i, 1);
    return e;
  }
}

// Times as the simulation makes them (now + a draw), plus ties, far-future and infinite times.
type Op = { op: 'push'; dt: number; kind: number; arg: number } | { op: 'pop' } | { op: 'popDue'; horizonDt: number };
const dtArb = fc.oneof(
  fc.constant(0),
  fc.double({ min: 0, max: 10, noNaN: true }),
  fc.double({ min: 0, max: 1e5, noNaN: true }),
  fc.double({ min: 0, max: 1e12, noNaN: true }),
  fc.integer({ min: 0, max: 50 }).map((x) => x * 1000),
  fc.constant(Infinity),
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('push' as const), dt: dtArb, kind: fc.integer({ min: 1, max: 12 }), arg: fc.integer({ min: 0, max: 1 << 20 }) }) },
  { weight: 4, arbitrary: fc.constant({ op: 'pop' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('popDue' as const), horizonDt: dtArb }) },
);

describe('EventQueue (calendar queue + overflow heap) against a scanning reference', () => {
  it('pops the same events in the same (time, insertion) order, with the same peekTime and size', () => {
    fc.assert(fc.property(fc.array(opArb, { maxLength: 3000 }), fc.integer({ min: 1, max: 64 }), (ops, cap) => {
      const q = new EventQueue(cap);
      const r = new RefQueue();
      let now = 0; // events are pushed at or after the last popped time, as in the simulation
      for (const o of ops) {
        if (o.op === 'push') {
          q.push(now + o.dt, o.kind, o.arg);
          r.push(now + o.dt, o.kind, o.arg);
        } else {
          let got: boolean;
          if (o.op === 'pop') got = q.pop();
          else { q.horizon = now + o.horizonDt; got = q.popDue(); }
          const due = o.op === 'pop' || r.peekTime() <= now + o.horizonDt;
          const e = due ? r.pop() : null;
          expect(got).toBe(e !== null);
          if (e !== null) {
            expect([q.poppedTime, q.poppedKind, q.poppedArg]).toEqual([e.t, e.kind, e.arg]);
            if (e.t !== Infinity) now = e.t;
          }
        }
        expect(q.size).toBe(r.size);
        expect(q.peekTime()).toBe(r.peekTime());
      }
    }), { numRuns: 200 });
  });

  it('a long run with the simulation\'s pattern (pop one, push its successor) keeps exact order across width changes', () => {
    const q = new EventQueue(4);
    const r = new RefQueue();
    let x = 12345;
    const rnd = (): number => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return x / 4294967296; };
    for (let i = 0; i < 200; i++) { const t = rnd() * 1e6; q.push(t, 1, i); r.push(t, 1, i); }
    for (let n = 0; n < 20000; n++) {
      expect(q.pop()).toBe(true);
      const e = r.pop()!;
      expect([q.poppedTime, q.poppedArg]).toEqual([e.t, e.arg]);
      // Mostly near-future successors, sometimes a far one (a VM's churn), sometimes a tie.
      const u = rnd();
      const dt = u < 0.05 ? 1e9 * rnd() : u < 0.1 ? 0 : -Math.log(1 - rnd()) * (n < 10000 ? 1000 : 50);
      q.push(e.t + dt, 1, e.arg);
      r.push(e.t + dt, 1, e.arg);
    }
  });
});

describe('NumberSet against Set<number> (SameValueZero)', () => {
  const keyArb = fc.oneof(
    fc.integer({ min: -50, max: 50 }),
    fc.integer({ min: 0, max: 1e6 }).map((k) => k * 4294967296),
    fc.double({ noNaN: false }),
    fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 40 + 7),
  );
  it('add, delete and has answer as Set does; size follows', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.constantFrom('add', 'delete', 'has'), keyArb), { maxLength: 2000 }), fc.integer({ min: 0, max: 8 }),
      (ops, cap) => {
        const a = new NumberSet(cap);
        const b = new Set<number>();
        for (const [op, k] of ops) {
          if (op === 'add') { a.add(k); b.add(k); }
          else if (op === 'delete') expect(a.delete(k)).toBe(b.delete(k));
          else expect(a.has(k)).toBe(b.has(k));
          expect(a.size).toBe(b.size);
        }
        for (const [, k] of ops) expect(a.has(k)).toBe(b.has(k));
      },
    ), { numRuns: 300 });
  });
});
