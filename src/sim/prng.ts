/**
 * Our own seeded PRNG: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator), state in
 * four int32 fields so it never allocates and can be snapshotted byte for byte.
 * Streams are derived with SplitMix32 from (masterSeed, streamId), so adding an entity (a new
 * device, a new VM) creates a new stream and leaves every other stream unchanged.
 */
export class Prng {
  // The four state words as int32 fields (one object, no typed-array indirection on a draw).
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  constructor(seed: number, stream = 0) {
    this.reseed(seed, stream);
  }

  reseed(seed: number, stream = 0): void {
    let x = (seed ^ Math.imul(stream + 0x632be5ab, 0x9e3779b9)) | 0;
    const s = new Int32Array(4);
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) | 0;
      s[i] = splitmix32(x);
    }
    this.restore(s);
    for (let i = 0; i < 12; i++) this.raw();
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    return this.raw() >>> 0;
  }

  /**
   * Advance the state and return the 32-bit output as a signed int32: the one draw every other
   * method transforms (next() === unitOf(raw()) for the same state). An int32 is never boxed,
   * whereas a double (or an unsigned value >= 2^31) returned from a call that V8 did not inline
   * costs an allocation: hot paths draw with raw() and transform with the leaf functions below,
   * which are small enough to be always inlined.
   */
  raw(): number {
    const b = this.b, c = this.c, d = this.d;
    const t = (((this.a + b) | 0) + d) | 0;
    this.d = (d + 1) | 0;
    this.a = b ^ (b >>> 9);
    this.b = (c + (c << 3)) | 0;
    this.c = (((c << 21) | (c >>> 11)) + t) | 0;
    return t;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return unitOf(this.raw());
  }

  /** Uniform integer in [0, n) for 1 <= n <= 2^32 (multiply-shift; bias < 2^-32 * n). */
  int(n: number): number {
    return Math.floor(unitOf(this.raw()) * n);
  }

  /** Exponentially distributed value with the given mean (for inter-arrival times). */
  exp(mean: number): number {
    return expOfUnit(unitOf(this.raw()), mean);
  }

  /** true with probability p. */
  chance(p: number): boolean {
    return unitOf(this.raw()) < p;
  }

  /** The state, four int32 words (a copy). */
  snapshot(): Int32Array {
    return Int32Array.of(this.a, this.b, this.c, this.d);
  }

  restore(state: Int32Array): void {
    this.a = state[0] | 0; this.b = state[1] | 0; this.c = state[2] | 0; this.d = state[3] | 0;
  }
}

const log = Math.log;

/** The uniform float in [0, 1) of a raw draw (Prng.raw()): what Prng.next() returns. */
export function unitOf(raw: number): number {
  return (raw >>> 0) / 4294967296;
}

/**
 * The exponential variate of mean `mean` for a uniform `u` in [0, 1): what Prng.exp(mean)
 * returns when u = next(). (Kept to 27 bytes of bytecode, V8's always-inline size.)
 */
export function expOfUnit(u: number, mean: number): number {
  return -log(1 - u) * mean;
}

export function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) | 0;
}
