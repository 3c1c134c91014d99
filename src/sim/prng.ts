/**
 * Our own seeded PRNG: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator), state in a
 * 4-word Int32Array so it never allocates and can be snapshotted byte for byte.
 * Streams are derived with SplitMix32 from (masterSeed, streamId), so adding an entity (a new
 * device, a new VM) creates a new stream and leaves every other stream unchanged.
 */
export class Prng {
  readonly s = new Int32Array(4);

  constructor(seed: number, stream = 0) {
    this.reseed(seed, stream);
  }

  reseed(seed: number, stream = 0): void {
    let x = (seed ^ Math.imul(stream + 0x632be5ab, 0x9e3779b9)) | 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) | 0;
      this.s[i] = splitmix32(x);
    }
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.s;
    let a = s[0], b = s[1], c = s[2], d = s[3];
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    s[0] = a; s[1] = b; s[2] = c; s[3] = d;
    return t >>> 0;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n) for 1 <= n <= 2^32 (multiply-shift; bias < 2^-32 * n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Exponentially distributed value with the given mean (for inter-arrival times). */
  exp(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /** true with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  snapshot(): Int32Array {
    return this.s.slice();
  }

  restore(state: Int32Array): void {
    this.s.set(state);
  }
}

export function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) | 0;
}
