/**
 * A set of numbers (SameValueZero, as Set<number>) on typed arrays: open addressing with linear
 * probing and backward-shift deletion. add/has/delete allocate nothing (a Set<number> boxes every
 * key that is not a small integer, and reallocates its table as it fills and empties); the table
 * doubles when it is half full. No iteration order.
 */
export class NumberSet {
  private keys: Float64Array;
  private used: Uint8Array;
  private mask: number;
  private n = 0;
  /**
   * The key of addKey/hasKey/deleteKey, and scratch for hashing its bit pattern. Hot callers
   * write it and call those: a double passed to a call V8 does not inline is boxed.
   */
  readonly key = new Float64Array(1);
  private readonly i32 = new Int32Array(this.key.buffer);

  constructor(capacity = 64) {
    let cap = 16;
    while (cap < capacity * 2) cap *= 2;
    // Stored twice: these fields are replaced when the table grows, and V8 must not treat them
    // as constant (growing mid-run would then deoptimise every function that read them).
    this.keys = new Float64Array(0);
    this.used = new Uint8Array(0);
    this.mask = 0;
    this.keys = new Float64Array(cap);
    this.used = new Uint8Array(cap);
    this.mask = cap - 1;
  }

  get size(): number { return this.n; }

  /** Home slot of the key in key[0]. */
  private home(): number {
    const h = Math.imul(this.i32[0] ^ Math.imul(this.i32[1], 0x9e3779b9), 0x85ebca6b);
    return (h ^ (h >>> 15)) & this.mask;
  }

  /** Slot holding the key in key[0], or -1. */
  private find(): number {
    const keys = this.keys, used = this.used, mask = this.mask;
    const key = this.key[0];
    for (let i = this.home(); used[i] === 1; i = (i + 1) & mask) {
      const k = keys[i];
      if (k === key || (k !== k && key !== key)) return i; // (NaN is one key, as in Set)
    }
    return -1;
  }

  has(key: number): boolean { this.key[0] = key; return this.hasKey(); }
  add(key: number): this { this.key[0] = key; this.addKey(); return this; }
  delete(key: number): boolean { this.key[0] = key; return this.deleteKey(); }

  hasKey(): boolean {
    this.key[0] += 0; // -0 and +0 are one key
    return this.find() >= 0;
  }

  /** Add key[0]; false if it was there already. */
  addKey(): boolean {
    this.key[0] += 0;
    if (this.find() >= 0) return false;
    if ((this.n + 1) * 2 > this.keys.length) {
      const k = this.key[0];
      this.rehash(this.keys.length * 2);
      this.key[0] = k;
    }
    const keys = this.keys, used = this.used, mask = this.mask;
    let i = this.home();
    while (used[i] === 1) i = (i + 1) & mask;
    keys[i] = this.key[0];
    used[i] = 1;
    this.n++;
    return true;
  }

  /** Remove key[0]; false if it was not there. */
  deleteKey(): boolean {
    this.key[0] += 0;
    let i = this.find();
    if (i < 0) return false;
    // Backward-shift deletion: move later members of the probe run into the hole when their
    // home position is not strictly between the hole and them (cyclically).
    const keys = this.keys, used = this.used, mask = this.mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (used[j] === 0) break;
      this.key[0] = keys[j];
      const h = this.home();
      const between = i <= j ? (h > i && h <= j) : (h > i || h <= j);
      if (between) continue;
      keys[i] = keys[j];
      i = j;
    }
    used[i] = 0;
    this.n--;
    return true;
  }

  clear(): void {
    this.used.fill(0);
    this.n = 0;
  }

  private rehash(cap: number): void {
    const oldKeys = this.keys, oldUsed = this.used;
    this.keys = new Float64Array(cap);
    this.used = new Uint8Array(cap);
    this.mask = cap - 1;
    this.n = 0;
    for (let i = 0; i < oldKeys.length; i++) if (oldUsed[i] === 1) { this.key[0] = oldKeys[i]; this.addKey(); }
  }
}
