/**
 * Discrete-event queue on typed arrays (time in simulated ns, event kind, one integer argument).
 * No allocation per event. Events leave in the order of the key (time, seq), seq being the
 * insertion counter: ties are broken by insertion order, and as the key is a total order the
 * sequence of pops is fully determined by the pushes, whatever the internal layout.
 *
 * Layout: a calendar queue (Brown 1988) in front of a binary heap.
 *
 * - Time is cut into buckets of `width` ns, bucket b(t) = floor(t / width). A ring of NB
 *   buckets holds the events of buckets [cur, cur + NB), each bucket an unsorted linked list of
 *   event slots, with a bitmap of the non-empty ones. `cur` is the bucket of the last event
 *   popped; it never decreases. An event pushed into an earlier bucket (before `cur`) is kept in
 *   bucket `cur`.
 * - Events beyond the ring go to the overflow heap, ordered by (time, seq).
 * - A pop takes the smaller, by (time, seq), of the ring's earliest event — the minimum of its
 *   first non-empty bucket, as b() is non-decreasing in t — and the heap's root.
 *
 * Every bucket then holds a few events, a push is O(1) and a pop finds its bucket through the
 * bitmap; only events far in the future (a VM's next unmap, its churn) pay for the heap. The
 * width follows the mean time between pops (re-bucketing now and then), which changes where
 * events are kept, never their order.
 *
 * Doubles and calls: V8 boxes a double passed to, or returned from, a call it did not inline
 * (an allocation). Whether it inlines depends on budgets, so the hot paths do not rely on it:
 * `at[0] = t; pushAt(kind, arg)` is push() without a double argument, and popDue() pops up to
 * `horizon` without returning a time.
 */
export class EventQueue {
  // ---- per event slot
  private time: Float64Array;
  private seq: Float64Array;
  private kind: Int32Array;
  private arg: Int32Array;
  /** Next slot in the slot's bucket list, or the next free slot. */
  private next: Int32Array;
  private freeHead = NIL;
  private slotsUsed = 0;
  // ---- ring of buckets
  private readonly head = new Int32Array(NB).fill(NIL);
  /** Bit (b & 31) of word (b >>> 5): bucket position b is non-empty. */
  private readonly bits = new Int32Array(NB >>> 5);
  private inRing = 0;
  /** Bucket of the last event popped (an integer, possibly above 2^31), and its ring position. */
  private cur = 0;
  private curPos = 0;
  private width = INITIAL_WIDTH;
  private invWidth = 1 / INITIAL_WIDTH;
  // ---- overflow heap of slots, by (time, seq)
  private heap: Int32Array;
  private inHeap = 0;
  // ---- width adaptation
  private pops = 0;
  private windowStart = 0;
  private nextSeq = 0;
  /** Time of the event pushAt() inserts. */
  readonly at = new Float64Array(1);
  /** popDue() does not pop events later than this. */
  horizon = Infinity;

  constructor(capacity = 1024) {
    const cap = Math.max(1, capacity);
    this.time = new Float64Array(cap);
    this.seq = new Float64Array(cap);
    this.kind = new Int32Array(cap);
    this.arg = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.heap = new Int32Array(cap);
  }

  get size(): number { return this.inRing + this.inHeap; }

  /** Schedule `kind(arg)` at time `t`. */
  push(t: number, kind: number, arg: number): void {
    this.at[0] = t;
    this.pushAt(kind, arg);
  }

  /** Schedule `kind(arg)` at time `at[0]`. */
  pushAt(kind: number, arg: number): void {
    let slot = this.freeHead;
    if (slot !== NIL) this.freeHead = this.next[slot];
    else {
      if (this.slotsUsed === this.time.length) this.grow();
      slot = this.slotsUsed++;
    }
    this.time[slot] = this.at[0]; this.seq[slot] = this.nextSeq++; this.kind[slot] = kind; this.arg[slot] = arg;
    this.place(slot);
  }

  /**
   * Put an event slot in its bucket, or in the heap when beyond the ring. (Internal functions
   * take slots, never times: a double argument would be boxed if the call is not inlined.)
   */
  private place(slot: number): void {
    const d = Math.floor(this.time[slot] * this.invWidth) - this.cur;
    if (d < NB) {
      // (A bucket before cur's goes in cur's: it is the earliest non-empty one.)
      const pos = d > 0 ? (this.curPos + d) & (NB - 1) : this.curPos;
      this.next[slot] = this.head[pos];
      this.head[pos] = slot;
      this.bits[pos >>> 5] |= 1 << (pos & 31);
      this.inRing++;
    } else {
      this.heapPush(slot); // also Infinity (and NaN)
    }
  }

  /** Time of the earliest event (Infinity if empty). */
  peekTime(): number {
    const s = this.earliest();
    return s === NIL ? Infinity : this.time[s];
  }

  /** Pop the earliest event into popped*. Returns false if empty. */
  poppedTime = 0;
  poppedKind = 0;
  poppedArg = 0;

  pop(): boolean {
    const s = this.earliest();
    if (s === NIL) return false;
    this.take(s);
    return true;
  }

  /**
   * Pop the earliest event into popped* if there is one no later than `horizon`. Returns false
   * (popping nothing) otherwise.
   */
  popDue(): boolean {
    const s = this.earliest();
    if (s === NIL || this.time[s] > this.horizon) return false;
    this.take(s);
    return true;
  }

  // earliest() leaves where it found the event for take(): its ring bucket position (-1: the
  // heap) and its predecessor in the bucket's list.
  private foundPos = -1;
  private foundPrev = NIL;

  /** Slot of the earliest event (NIL if none); sets foundPos/foundPrev. */
  private earliest(): number {
    let best = NIL;
    let pos = -1;
    if (this.inRing > 0) {
      // First non-empty bucket from cur's position on (cyclically: the ring holds [cur, cur+NB)).
      const start = this.curPos;
      const bits = this.bits;
      let w = start >>> 5;
      let word = bits[w] & (-1 << (start & 31));
      while (word === 0) {
        w = (w + 1) & (NB / 32 - 1);
        word = bits[w];
      }
      pos = (w << 5) | (31 - Math.clz32(word & -word));
      best = this.head[pos];
      const nx = this.next[best];
      let prev = NIL;
      if (nx !== NIL) {
        // Several events in the bucket: the minimum by (time, seq).
        const time = this.time, seq = this.seq, next = this.next;
        let bt = time[best];
        for (let p = best, s = nx; s !== NIL; p = s, s = next[s]) {
          const ts = time[s];
          if (ts < bt || (ts === bt && seq[s] < seq[best])) { best = s; bt = ts; prev = p; }
        }
      }
      this.foundPrev = prev;
    }
    if (this.inHeap > 0) {
      const h = this.heap[0];
      if (best === NIL || this.time[h] < this.time[best] || (this.time[h] === this.time[best] && this.seq[h] < this.seq[best])) {
        best = h;
        pos = -1;
      }
    }
    this.foundPos = pos;
    return best;
  }

  /** Remove slot `s` found by earliest() and report it in popped*. */
  private take(s: number): void {
    const t = this.time[s];
    this.poppedTime = t; this.poppedKind = this.kind[s]; this.poppedArg = this.arg[s];
    const pos = this.foundPos;
    if (pos >= 0) {
      const prev = this.foundPrev;
      const nx = this.next[s];
      if (prev === NIL) {
        this.head[pos] = nx;
        if (nx === NIL) this.bits[pos >>> 5] &= ~(1 << (pos & 31));
      } else {
        this.next[prev] = nx;
      }
      this.inRing--;
      // The bucket's absolute index: cur + (distance from cur's position).
      const d = (pos - this.curPos) & (NB - 1);
      if (d !== 0) { this.cur += d; this.curPos = pos; }
    } else {
      this.heapPop();
      const b = Math.floor(t * this.invWidth);
      // (The event was the earliest: nothing in the ring lies before bucket b.)
      if (b > this.cur) { this.cur = b; this.curPos = b & (NB - 1); }
    }
    this.next[s] = this.freeHead;
    this.freeHead = s;
    if (++this.pops === ADAPT_EVERY) this.adapt();
  }

  /**
   * Every ADAPT_EVERY pops: aim the width at WIDTH_PER_POP times the mean time between pops;
   * re-bucket when it is off by more than 4x. Events keep their (time, seq).
   */
  private adapt(): void {
    const t = this.poppedTime;
    const span = t - this.windowStart;
    this.windowStart = t;
    this.pops = 0;
    const want = (span / ADAPT_EVERY) * WIDTH_PER_POP;
    if (!(want > 0) || !Number.isFinite(want)) return;
    const ratio = want / this.width;
    if (ratio > 0.25 && ratio < 4) return;
    this.width = want;
    this.invWidth = 1 / want;
    // cur becomes the bucket of the last pop under the new width; every queued event is placed
    // again (all are at or after that pop in (time, seq), so the ring invariant holds).
    this.cur = Math.floor(t * this.invWidth);
    this.curPos = this.cur & (NB - 1);
    const moving: number[] = [];
    for (let pos = 0; pos < NB; pos++) {
      for (let s = this.head[pos]; s !== NIL; s = this.next[s]) moving.push(s);
      this.head[pos] = NIL;
    }
    this.bits.fill(0);
    this.inRing = 0;
    for (let i = 0; i < this.inHeap; i++) moving.push(this.heap[i]);
    this.inHeap = 0;
    for (const s of moving) this.place(s);
  }

  // ------------------------------------------------------------------ overflow heap

  private heapLess(a: number, b: number): boolean {
    const ta = this.time[a], tb = this.time[b];
    return ta < tb || (ta === tb && this.seq[a] < this.seq[b]);
  }

  private heapPush(slot: number): void {
    const heap = this.heap;
    let i = this.inHeap++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.heapLess(heap[p], slot)) break;
      heap[i] = heap[p];
      i = p;
    }
    heap[i] = slot;
  }

  private heapPop(): void {
    const heap = this.heap;
    const n = --this.inHeap;
    if (n === 0) return;
    const last = heap[n];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.heapLess(heap[c + 1], heap[c])) c++;
      if (this.heapLess(last, heap[c])) break;
      heap[i] = heap[c];
      i = c;
    }
    heap[i] = last;
  }

  clear(): void {
    this.head.fill(NIL);
    this.bits.fill(0);
    this.inRing = 0;
    this.inHeap = 0;
    this.freeHead = NIL;
    this.slotsUsed = 0;
    this.cur = 0;
    this.curPos = 0;
    this.nextSeq = 0;
    this.pops = 0;
    this.windowStart = 0;
  }

  private grow(): void {
    const cap = this.time.length * 2;
    const t = new Float64Array(cap); t.set(this.time); this.time = t;
    const s = new Float64Array(cap); s.set(this.seq); this.seq = s;
    const k = new Int32Array(cap); k.set(this.kind); this.kind = k;
    const a = new Int32Array(cap); a.set(this.arg); this.arg = a;
    const n = new Int32Array(cap); n.set(this.next); this.next = n;
    const h = new Int32Array(cap); h.set(this.heap); this.heap = h;
  }
}

const NIL = -1;
/** Buckets in the ring (a power of two, a multiple of 32). */
const NB = 1024;
const INITIAL_WIDTH = 16;
/** Target bucket width in mean times between pops: most buckets then hold at most one event. */
const WIDTH_PER_POP = 0.5;
/** Pops between width adjustments. */
const ADAPT_EVERY = 8192;
