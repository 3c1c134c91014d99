/**
 * Discrete-event queue: a binary min-heap on typed arrays (time in simulated ns, event kind,
 * one integer argument). No allocation per event; ties are broken by insertion order so a run
 * is deterministic whatever the heap's internal layout.
 */
export class EventQueue {
  private time: Float64Array;
  private seq: Float64Array;
  private kind: Int32Array;
  private arg: Int32Array;
  private n = 0;
  private nextSeq = 0;

  constructor(capacity = 1024) {
    this.time = new Float64Array(capacity);
    this.seq = new Float64Array(capacity);
    this.kind = new Int32Array(capacity);
    this.arg = new Int32Array(capacity);
  }

  get size(): number { return this.n; }

  push(t: number, kind: number, arg: number): void {
    if (this.n === this.time.length) this.grow();
    let i = this.n++;
    const s = this.nextSeq++;
    // Sift up.
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.time[p] < t || (this.time[p] === t && this.seq[p] < s)) break;
      this.time[i] = this.time[p]; this.seq[i] = this.seq[p]; this.kind[i] = this.kind[p]; this.arg[i] = this.arg[p];
      i = p;
    }
    this.time[i] = t; this.seq[i] = s; this.kind[i] = kind; this.arg[i] = arg;
  }

  /** Time of the earliest event (Infinity if empty). */
  peekTime(): number { return this.n === 0 ? Infinity : this.time[0]; }

  /** Pop the earliest event into popped*. Returns false if empty. */
  poppedTime = 0;
  poppedKind = 0;
  poppedArg = 0;

  pop(): boolean {
    if (this.n === 0) return false;
    this.poppedTime = this.time[0]; this.poppedKind = this.kind[0]; this.poppedArg = this.arg[0];
    const last = --this.n;
    if (last === 0) return true;
    const t = this.time[last], s = this.seq[last], k = this.kind[last], a = this.arg[last];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= last) break;
      const r = c + 1;
      if (r < last && (this.time[r] < this.time[c] || (this.time[r] === this.time[c] && this.seq[r] < this.seq[c]))) c = r;
      if (t < this.time[c] || (t === this.time[c] && s < this.seq[c])) break;
      this.time[i] = this.time[c]; this.seq[i] = this.seq[c]; this.kind[i] = this.kind[c]; this.arg[i] = this.arg[c];
      i = c;
    }
    this.time[i] = t; this.seq[i] = s; this.kind[i] = k; this.arg[i] = a;
    return true;
  }

  clear(): void { this.n = 0; this.nextSeq = 0; }

  private grow(): void {
    const cap = this.time.length * 2;
    const t = new Float64Array(cap); t.set(this.time); this.time = t;
    const s = new Float64Array(cap); s.set(this.seq); this.seq = s;
    const k = new Int32Array(cap); k.set(this.kind); this.kind = k;
    const a = new Int32Array(cap); a.set(this.arg); this.arg = a;
  }
}
