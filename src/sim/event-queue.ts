/**
 * Discrete-event queue: a binary min-heap on typed arrays (time in simulated ns, event kind,
 * one integer argument). No allocation per event; ties are broken by insertion order so a run
 * is deterministic whatever the heap's internal layout.
 *
 * Events are ordered by the key (time, seq), seq being the insertion counter: a total order,
 * so the sequence of pops is fully determined by the pushes whatever the heap's shape. That
 * lets the heap use the cheapest correct moves:
 *
 * - The heap holds (time, slot) pairs; seq, kind and arg stay in per-slot arrays, so a sift moves
 *   two words per level and reads seq only when two times are equal.
 * - A pop leaves the popped root in place (`pending`). The handler of an event almost always
 *   schedules the next event of the same entity: that push then *replaces* the root (one sift)
 *   instead of a remove (one sift) and an insert (another). Any other operation completes the
 *   removal first.
 * - Root replacement is Floyd's bottom-up variant: the hole goes down to a leaf along the
 *   smaller child (a comparison whose outcome is random, done without a branch), then the new
 *   element climbs back up — usually a step or two, as a new event lies far in the future.
 *
 * Doubles and calls: V8 boxes a double passed to, or returned from, a call it did not inline
 * (an allocation). Whether it inlines depends on budgets, so the hot paths do not rely on it:
 * `at[0] = t; pushAt(kind, arg)` is push() without a double argument, and popDue() pops up to
 * `horizon` without returning a time.
 */
export class EventQueue {
  /** Heap order: time, and the slot holding the event's seq/kind/arg. hTime[0] is Infinity when empty. */
  private hTime: Float64Array;
  private hSlot: Int32Array;
  /** Per slot. */
  private seq: Float64Array;
  private kind: Int32Array;
  private arg: Int32Array;
  /** Free slots (a stack); slots never handed out yet start at `slotsUsed`. */
  private free: Int32Array;
  private nFree = 0;
  private slotsUsed = 0;
  private n = 0;
  private nextSeq = 0;
  /** The root was popped but is still in the heap (see the class comment). */
  private pending = false;
  /** Time of the event pushAt() inserts (and of the element being placed, inside the heap code). */
  readonly at = new Float64Array(1);
  /** popDue() does not pop events later than this. */
  horizon = Infinity;

  constructor(capacity = 1024) {
    const cap = Math.max(1, capacity);
    this.hTime = new Float64Array(cap);
    this.hSlot = new Int32Array(cap);
    this.seq = new Float64Array(cap);
    this.kind = new Int32Array(cap);
    this.arg = new Int32Array(cap);
    this.free = new Int32Array(cap);
    this.hTime[0] = Infinity;
  }

  get size(): number { return this.pending ? this.n - 1 : this.n; }

  /** Schedule `kind(arg)` at time `t`. */
  push(t: number, kind: number, arg: number): void {
    this.at[0] = t;
    this.pushAt(kind, arg);
  }

  /** Schedule `kind(arg)` at time `at[0]`. */
  pushAt(kind: number, arg: number): void {
    const s = this.nextSeq++;
    if (this.pending) {
      // Reuse the popped root's slot and position.
      this.pending = false;
      const slot = this.hSlot[0];
      this.seq[slot] = s; this.kind[slot] = kind; this.arg[slot] = arg;
      this.replaceRoot(slot, this.n);
      return;
    }
    if (this.n === this.hTime.length) this.grow();
    const slot = this.nFree > 0 ? this.free[--this.nFree] : this.slotsUsed++;
    this.seq[slot] = s; this.kind[slot] = kind; this.arg[slot] = arg;
    this.siftUp(this.n++, slot);
  }

  /** Place (at[0], slot) at hole `i` or above it. */
  private siftUp(i: number, slot: number): void {
    const hTime = this.hTime, hSlot = this.hSlot, seq = this.seq;
    const t = this.at[0];
    const s = seq[slot];
    while (i > 0) {
      const p = (i - 1) >> 1;
      const tp = hTime[p];
      if (tp < t || (tp === t && seq[hSlot[p]] < s)) break;
      hTime[i] = tp; hSlot[i] = hSlot[p];
      i = p;
    }
    hTime[i] = t; hSlot[i] = slot;
  }

  /** The root is gone: fill the heap of `n` positions with (at[0], slot) (Floyd's bottom-up sift). */
  private replaceRoot(slot: number, n: number): void {
    const hTime = this.hTime, hSlot = this.hSlot;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n) {
        const a = hTime[c], b = hTime[c + 1];
        if (a === b) { if (this.seq[hSlot[c + 1]] < this.seq[hSlot[c]]) c++; }
        else c += Number(b < a);
      }
      hTime[i] = hTime[c]; hSlot[i] = hSlot[c];
      i = c;
    }
    this.siftUp(i, slot);
  }

  /** Complete a pending pop: remove the root for good. */
  private settle(): void {
    this.pending = false;
    this.free[this.nFree++] = this.hSlot[0];
    const last = --this.n;
    if (last > 0) {
      // (at[0] is free: a push writes it immediately before using it.)
      this.at[0] = this.hTime[last];
      this.replaceRoot(this.hSlot[last], last);
    } else {
      this.hTime[0] = Infinity;
    }
  }

  /** Time of the earliest event (Infinity if empty). */
  peekTime(): number {
    if (this.pending) this.settle();
    return this.hTime[0];
  }

  /** Pop the earliest event into popped*. Returns false if empty. */
  poppedTime = 0;
  poppedKind = 0;
  poppedArg = 0;

  pop(): boolean {
    if (this.pending) this.settle();
    if (this.n === 0) return false;
    this.take();
    return true;
  }

  /**
   * Pop the earliest event into popped* if there is one no later than `horizon`. Returns false
   * (popping nothing) otherwise.
   */
  popDue(): boolean {
    if (this.pending) this.settle();
    if (this.n === 0 || this.hTime[0] > this.horizon) return false;
    this.take();
    return true;
  }

  private take(): void {
    const slot = this.hSlot[0];
    this.poppedTime = this.hTime[0]; this.poppedKind = this.kind[slot]; this.poppedArg = this.arg[slot];
    this.pending = true;
  }

  clear(): void {
    this.n = 0; this.nextSeq = 0; this.pending = false; this.nFree = 0; this.slotsUsed = 0;
    this.hTime[0] = Infinity;
  }

  private grow(): void {
    const cap = this.hTime.length * 2;
    const t = new Float64Array(cap); t.set(this.hTime); this.hTime = t;
    const h = new Int32Array(cap); h.set(this.hSlot); this.hSlot = h;
    const s = new Float64Array(cap); s.set(this.seq); this.seq = s;
    const k = new Int32Array(cap); k.set(this.kind); this.kind = k;
    const a = new Int32Array(cap); a.set(this.arg); this.arg = a;
    const f = new Int32Array(cap); f.set(this.free); this.free = f;
  }
}
