// Tests of the KVM/arm64 VMID allocators: v5.18+ arch/arm64/kvm/vmid.c (+ the pinned-VMID RFC
// extension) and the pre-5.18 update_vmid() scheme.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KvmVmidAllocator, type KvmVmidAllocatorLike, type KvmVmidOptions } from '../../src/kernel/kvm/vmid.js';
import { KvmLegacyVmidAllocator } from '../../src/kernel/kvm/vmid-legacy.js';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** BigInt transliteration of vmid.c (v5.18+, with the RFC's pinned branch when `pinning`). */
class RefVmid {
  gen: bigint;
  map: boolean[];
  pinnedMap: boolean[] | null;
  active: bigint[];
  reserved: bigint[];
  curIdx = 1;
  nrPinned = 0;
  maxPinned: number;
  id = new Map<number, bigint>();
  pinned = new Map<number, number>();
  rolled = false;
  readonly num: number;
  readonly step: bigint;
  constructor(readonly bits: number, readonly cpus: number, pinning: boolean) {
    this.num = 1 << bits;
    this.step = 1n << BigInt(bits);
    this.gen = this.step;
    this.map = new Array<boolean>(this.num).fill(false);
    this.pinnedMap = pinning ? new Array<boolean>(this.num).fill(false) : null;
    this.active = new Array<bigint>(cpus).fill(0n);
    this.reserved = new Array<bigint>(cpus).fill(0n);
    this.maxPinned = this.num - cpus - 2;
  }
  low(x: bigint): number {
    return Number(x & (this.step - 1n));
  }
  match(x: bigint): boolean {
    return (x ^ this.gen) >> BigInt(this.bits) === 0n;
  }
  flush(): void {
    this.map = this.pinnedMap ? [...this.pinnedMap] : this.map.map(() => false);
    for (let c = 0; c < this.cpus; c++) {
      let v = this.active[c];
      this.active[c] = 0n;
      if (v === 0n) v = this.reserved[c];
      this.map[this.low(v)] = true;
      this.reserved[c] = v;
    }
    this.rolled = true;
  }
  newVmid(vm: number): bigint {
    let v = this.id.get(vm) ?? 0n;
    let gen = this.gen;
    if (v !== 0n) {
      const n = gen | BigInt(this.low(v));
      let hit = false;
      for (let c = 0; c < this.cpus; c++) {
        if (this.reserved[c] === v) {
          hit = true;
          this.reserved[c] = n;
        }
      }
      if (hit) {
        this.id.set(vm, n);
        return n;
      }
      if ((this.pinned.get(vm) ?? 0) !== 0) return n; // RFC: no write-back
      if (!this.map[this.low(v)]) {
        this.map[this.low(v)] = true;
        this.id.set(vm, n);
        return n;
      }
    }
    let i = this.map.indexOf(false, this.curIdx);
    if (i < 0) {
      this.gen += this.step;
      gen = this.gen;
      this.flush();
      i = this.map.indexOf(false, 1);
    }
    this.map[i] = true;
    this.curIdx = i;
    v = gen | BigInt(i);
    this.id.set(vm, v);
    return v;
  }
  load(cpu: number, vm: number) {
    this.rolled = false;
    const v = this.id.get(vm) ?? 0n;
    if (this.active[cpu] !== 0n && this.match(v)) {
      this.active[cpu] = v;
      return { path: 'fast', rollover: false };
    }
    let w = v;
    if (!this.match(w)) w = this.newVmid(vm);
    this.active[cpu] = w;
    return { path: 'slow', rollover: this.rolled };
  }
  put(cpu: number): void {
    this.active[cpu] = this.step;
  }
  pinGet(vm: number): number {
    if (!this.pinnedMap) return 0;
    let v = this.id.get(vm) ?? 0n;
    const refs = this.pinned.get(vm) ?? 0;
    if (refs !== 0) this.pinned.set(vm, refs + 1);
    else if (this.nrPinned >= this.maxPinned) v = 0n;
    else {
      if (!this.match(v)) v = this.newVmid(vm);
      this.nrPinned++;
      this.pinnedMap[this.low(v)] = true;
      this.pinned.set(vm, 1);
    }
    return this.low(v);
  }
  pinPut(vm: number): boolean {
    if (!this.pinnedMap) return false;
    const refs = this.pinned.get(vm) ?? 0;
    this.pinned.set(vm, refs - 1);
    if (refs === 1) {
      this.pinnedMap[this.low(this.id.get(vm) ?? 0n)] = false;
      this.nrPinned--;
      return true;
    }
    return false;
  }
}

/**
 * Safety checker for either KVM scheme: within one "flush epoch" (between two broadcast
 * __kvm_flush_vm_context) a hardware VMID value belongs to one VM only — otherwise TLB entries of
 * one guest could be hit by another. Also: VMID 0 is never used, two CPUs running different VMs
 * never share a VMID, a pinned VM keeps its VMID.
 */
class VmidInvariantChecker {
  owner: Int32Array;
  readonly running: Int32Array;
  readonly runningHw: Int32Array;
  readonly pinnedHw = new Map<number, number>();
  constructor(readonly a: KvmVmidAllocatorLike) {
    this.owner = new Int32Array(1 << a.bits).fill(-1);
    this.running = new Int32Array(a.cpus).fill(-1);
    this.runningHw = new Int32Array(a.cpus).fill(-1);
  }
  check(cpu: number, vm: number, hw: number, vmFlush: boolean, exitAllCpus = false): void {
    if (vmFlush) this.owner.fill(-1);
    if (exitAllCpus) this.running.fill(-1); // force_vm_exit: every guest re-enters via update_vmid
    if (hw === 0) throw new Error(`VMID 0 used by VM ${vm}`);
    const prev = this.owner[hw];
    if (prev !== -1 && prev !== vm) throw new Error(`VMID ${hw} used by VM ${vm} and VM ${prev} in one flush epoch`);
    this.owner[hw] = vm;
    this.running[cpu] = vm;
    this.runningHw[cpu] = hw;
    for (let c = 0; c < this.a.cpus; c++) {
      if (c !== cpu && this.running[c] !== -1 && this.running[c] !== vm && this.runningHw[c] === hw) {
        throw new Error(`CPU${cpu} (VM ${vm}) and CPU${c} (VM ${this.running[c]}) share VMID ${hw}`);
      }
    }
    const pin = this.pinnedHw.get(vm);
    if (pin !== undefined && pin !== hw) throw new Error(`pinned VM ${vm} changed VMID ${pin} -> ${hw}`);
  }
  put(cpu: number): void {
    this.running[cpu] = -1;
  }
}

describe('KvmVmidAllocator (v5.18+)', () => {
  it('generation step is 2^bits, not 2^16: the first VMID of an 8-bit allocator is 1<<8 | 1', () => {
    const v = new KvmVmidAllocator({ bits: 8, cpus: 4 });
    const r = v.kvmArmVmidUpdate(0, 1);
    expect(r.vmid).toBe(257);
    expect(r.hw).toBe(1);
    expect(r.gen).toBe(1);
    expect(v.vmidActiveInvalid).toBe(256);
  });

  it('VMID put writes VMID_ACTIVE_INVALID, so a put VM is not reserved at rollover', () => {
    const v = new KvmVmidAllocator({ bits: 3, cpus: 2 });
    expect(v.kvmArmVmidUpdate(0, 1).hw).toBe(1);
    v.kvmArmVmidClearActive(0);
    expect(v.activeVmids[0]).toBe(8);
    // CPU1 runs through VMs 2..8: the 8th distinct VM rolls over.
    for (let vm = 2; vm <= 7; vm++) v.kvmArmVmidUpdate(1, vm);
    const r = v.kvmArmVmidUpdate(1, 8);
    expect(r.rollover).toBe(true);
    expect(Array.from(v.reservedVmids)).toEqual([8, 7 + 8]); // INVALID stored as "reserved"; VM7 reserved
    expect(r.hw).toBe(1); // VM1's VMID was not reserved: handed to VM8
    const r1 = v.kvmArmVmidUpdate(0, 1);
    expect(r1.changed).toBe(true);
    expect(r1.hw).not.toBe(1);
  });

  it('a VM running at rollover keeps its VMID (reserved), with the new generation', () => {
    const v = new KvmVmidAllocator({ bits: 3, cpus: 2 });
    const mine = v.kvmArmVmidUpdate(1, 100).hw;
    let vm = 1;
    while (v.rollovers < 2) v.kvmArmVmidUpdate(0, vm++);
    const r = v.kvmArmVmidUpdate(1, 100);
    expect(r.hw).toBe(mine);
    expect(r.gen).toBe(v.generation);
  });

  it('a re-load after put takes the fast path (VMID_ACTIVE_INVALID is non-zero)', () => {
    const v = new KvmVmidAllocator({ bits: 4, cpus: 1 });
    expect(v.kvmArmVmidUpdate(0, 1).path).toBe('slow');
    v.kvmArmVmidClearActive(0);
    const r = v.kvmArmVmidUpdate(0, 1);
    expect(r.path).toBe('fast');
    expect(r).toBe(v.result);
  });

  it('VMID rollover reports vmFlush (TLBI ALLE1IS) exactly when the generation changes', () => {
    const flushes: number[] = [];
    const v = new KvmVmidAllocator({ bits: 3, cpus: 1, hooks: { onVmFlush: (g) => flushes.push(g) } });
    const seen: boolean[] = [];
    for (let vm = 1; vm <= 20; vm++) {
      const r = v.kvmArmVmidUpdate(0, vm);
      expect(r.vmFlush).toBe(r.rollover);
      seen.push(r.vmFlush);
    }
    expect(seen.indexOf(true)).toBe(7); // 7 usable VMIDs (1..7), the 8th VM rolls over
    expect(flushes.length).toBe(v.rollovers);
    expect(flushes[0]).toBe(2);
  });

  it('VMID limit (policy extension) allocates from [1, limit) and keeps the 2^bits generation step', () => {
    const v = new KvmVmidAllocator({ bits: 4, cpus: 1, limit: 6 });
    // The result object is reused: copy the fields before the next call.
    const hws = [1, 2, 3, 4, 5, 6].map((vm) => ({ ...v.kvmArmVmidUpdate(0, vm) }));
    expect(hws.map((r) => r.hw)).toEqual([1, 2, 3, 4, 5, 1]);
    expect(hws[5].rollover).toBe(true);
    expect(hws[5].vmid).toBe(2 * 16 + 1);
  });

  describe('pinned VMIDs (RFC extension)', () => {
    it('pinned VMID cap = 2^bits - cpus - 2; get returns 0 past it', () => {
      const v = new KvmVmidAllocator({ bits: 4, cpus: 3, pinning: true });
      expect(v.maxPinnedVmids).toBe(16 - 3 - 2);
      for (let vm = 1; vm <= 11; vm++) expect(v.pinnedVmidGet(vm)).toBe(vm);
      expect(v.pinnedVmidGet(12)).toBe(0);
      expect(v.pinResult.refcount).toBe(0);
      expect(v.pinnedVmidGet(3)).toBe(3); // already pinned: refcount 2
      expect(v.pinnedRefcount(3)).toBe(2);
      expect(v.pinnedVmidPut(5)).toBe(true);
      expect(v.pinnedVmidGet(12)).not.toBe(0);
      expect(new KvmVmidAllocator({ bits: 8, cpus: 8, pinning: true }).maxPinnedVmids).toBe(246);
    });

    it('pinning disabled (mainline): get returns 0', () => {
      const v = new KvmVmidAllocator({ bits: 4, cpus: 1 });
      expect(v.pinnedVmidGet(1)).toBe(0);
      expect(v.pinnedVmidPut(1)).toBe(false);
      expect(v.snapshot().nr_pinned).toBeUndefined();
    });

    it('a pinned VMID survives rollovers; the RFC leaves the VM id stale (slow path) unless write-back', () => {
      for (const pinnedWriteback of [false, true]) {
        const v = new KvmVmidAllocator({ bits: 3, cpus: 1, pinning: true, pinnedWriteback });
        const hw = v.pinnedVmidGet(50);
        for (let vm = 1; vm < 30; vm++) expect(v.kvmArmVmidUpdate(0, vm).hw).not.toBe(hw);
        expect(v.rollovers).toBeGreaterThan(2);
        const r1 = v.kvmArmVmidUpdate(0, 50);
        expect(r1.hw).toBe(hw);
        expect(v.activeVmids[0]).toBe(v.vmidGeneration + hw);
        const r2 = v.kvmArmVmidUpdate(0, 50);
        expect(r2.path).toBe(pinnedWriteback ? 'fast' : 'slow');
        expect(r2.gen === v.generation).toBe(pinnedWriteback);
      }
    });
  });

  it('matches a BigInt reference model and keeps the safety invariants (random sequences)', () => {
    fc.assert(
      fc.property(
        fc.record({ bits: fc.integer({ min: 3, max: 6 }), cpus: fc.integer({ min: 1, max: 4 }), pinning: fc.boolean() }).filter(
          (c) => 2 ** c.bits - 1 > c.cpus + 1,
        ),
        fc.array(
          fc.oneof(
            { weight: 6, arbitrary: fc.tuple(fc.constant('load' as const), fc.nat(3), fc.integer({ min: 1, max: 50 })) },
            { weight: 3, arbitrary: fc.tuple(fc.constant('put' as const), fc.nat(3), fc.constant(0)) },
            { weight: 1, arbitrary: fc.tuple(fc.constant('pin' as const), fc.constant(0), fc.integer({ min: 1, max: 50 })) },
            { weight: 1, arbitrary: fc.tuple(fc.constant('unpin' as const), fc.constant(0), fc.integer({ min: 1, max: 50 })) },
          ),
          { maxLength: 300, size: 'max' },
        ),
        (c, ops) => {
          const v = new KvmVmidAllocator({ bits: c.bits, cpus: c.cpus, pinning: c.pinning });
          const ref = new RefVmid(c.bits, c.cpus, c.pinning);
          const chk = new VmidInvariantChecker(v);
          for (const [k, cpuRaw, vm] of ops) {
            const cpu = cpuRaw % c.cpus;
            if (k === 'load') {
              const r = v.kvmArmVmidUpdate(cpu, vm);
              const e = ref.load(cpu, vm);
              expect([r.path, r.rollover]).toEqual([e.path, e.rollover]);
              expect(BigInt(r.vmid)).toBe(ref.id.get(vm) ?? 0n);
              chk.check(cpu, vm, v.activeVmids[cpu] % v.vmidFirstVersion, r.vmFlush);
            } else if (k === 'put') {
              v.kvmArmVmidClearActive(cpu);
              ref.put(cpu);
              chk.put(cpu);
            } else if (k === 'pin') {
              const ret = v.pinnedVmidGet(vm);
              expect(ret).toBe(ref.pinGet(vm));
              if (v.pinResult.rollover) chk.owner.fill(-1);
              if (ret !== 0) chk.pinnedHw.set(vm, ret);
            } else {
              if (v.pinnedRefcount(vm) <= 0) continue;
              const freed = v.pinnedVmidPut(vm);
              expect(freed).toBe(ref.pinPut(vm));
              if (freed) chk.pinnedHw.delete(vm);
            }
            expect(Array.from(v.activeVmids)).toEqual(ref.active.map(Number));
            expect(Array.from(v.reservedVmids)).toEqual(ref.reserved.map(Number));
            expect(v.curIdx).toBe(ref.curIdx);
          }
          expect(v.snapshot().map).toBe(ref.map.map((b) => (b ? '1' : '0')).join(''));
          expect(v.warnings).toEqual([]);
        },
      ),
      { seed: 0x7e1d, numRuns: 200 },
    );
  });

  const long: Array<[string, KvmVmidOptions, number, number]> = [
    ['8-bit, 8 CPUs', { bits: 8, cpus: 8 }, 400, 300_000],
    ['8-bit, 8 CPUs, pinning', { bits: 8, cpus: 8, pinning: true }, 400, 300_000],
    ['16-bit, 16 CPUs', { bits: 16, cpus: 16 }, 250_000, 1_000_000],
  ];
  for (const [name, opts, pool, n] of long) {
    it(`long random run (${name}): invariants hold, rollovers happen`, () => {
      const next = rng(pool + n);
      const v = new KvmVmidAllocator(opts);
      const chk = new VmidInvariantChecker(v);
      const pins: number[] = [];
      const loaded = new Int32Array(v.cpus).fill(-1);
      for (let i = 0; i < n; i++) {
        const cpu = Math.floor(next() * v.cpus);
        if (opts.pinning && i % 211 === 0) {
          if (pins.length > 20 || (pins.length > 0 && next() < 0.5)) {
            const vm = pins.splice(Math.floor(next() * pins.length), 1)[0];
            if (v.pinnedVmidPut(vm)) chk.pinnedHw.delete(vm);
          } else {
            const vm = 1 + Math.floor(next() * pool);
            const ret = v.pinnedVmidGet(vm);
            if (v.pinResult.rollover) chk.owner.fill(-1);
            if (ret !== 0) {
              pins.push(vm);
              chk.pinnedHw.set(vm, ret);
            }
          }
          continue;
        }
        if (loaded[cpu] !== -1 && next() < 0.5) {
          v.kvmArmVmidClearActive(cpu); // vcpu_put
          chk.put(cpu);
          loaded[cpu] = -1;
          continue;
        }
        const vm = next() < 0.5 ? 1 + Math.floor(next() * 8) : 1 + Math.floor(next() * pool);
        const r = v.kvmArmVmidUpdate(cpu, vm);
        chk.check(cpu, vm, v.activeVmids[cpu] % v.vmidFirstVersion, r.vmFlush);
        loaded[cpu] = vm;
      }
      expect(v.rollovers).toBeGreaterThan(2);
      expect(v.warnings).toEqual([]);
    });
  }
});

describe('KvmLegacyVmidAllocator (pre-5.18 update_vmid)', () => {
  it('the very first allocation starts generation 2 with force_vm_exit + ALLE1IS', () => {
    const l = new KvmLegacyVmidAllocator({ bits: 8, cpus: 4 });
    expect(l.snapshot()).toEqual({ gen: 1, next: 0 });
    const r = l.updateVmid(0, 1);
    expect([r.hw, r.gen, r.rollover, r.vmFlush, r.exitAllCpus]).toEqual([1, 2, true, true, true]);
    expect(l.updateVmid(3, 1).path).toBe('fast');
  });

  it('legacy scheme rolls over after 2^bits-1 allocations and forces every VM to reallocate', () => {
    const bits = 4;
    const l = new KvmLegacyVmidAllocator({ bits, cpus: 2 });
    l.updateVmid(0, 1); // boot rollover (gen 2)
    for (let vm = 2; vm < 2 ** bits; vm++) {
      const r = l.updateVmid(vm % 2, vm);
      expect(r.hw).toBe(vm); // linear: 1, 2, ..., 2^bits - 1
      expect(r.rollover).toBe(false);
    }
    expect(l.kvmNextVmid).toBe(0);
    const r = l.updateVmid(0, 2 ** bits); // allocation number 2^bits: new generation
    expect([r.hw, r.gen, r.rollover, r.exitAllCpus]).toEqual([1, 3, true, true]);
    // Every VM of the old generation reallocates at its next entry, even one that was running.
    for (let vm = 1; vm < 2 ** bits - 1; vm++) {
      const x = l.updateVmid(1, vm);
      expect(x.path).toBe('slow');
      expect(x.changed).toBe(true);
      expect(x.hw).toBe(vm + 1);
    }
    expect(l.rollovers).toBe(2);
    // ... and the VM that re-enters last needs allocation number 2^bits of generation 3: rollover.
    expect(l.updateVmid(0, 2 ** bits - 1).rollover).toBe(true);
  });

  it('implements KvmVmidAllocatorLike so policies can swap schemes', () => {
    const schemes: KvmVmidAllocatorLike[] = [
      new KvmVmidAllocator({ bits: 8, cpus: 2 }),
      new KvmLegacyVmidAllocator({ bits: 8, cpus: 2 }),
    ];
    for (const s of schemes) {
      const r = s.kvmArmVmidUpdate(1, 7);
      s.kvmArmVmidClearActive(1);
      expect(r.hw).toBe(1);
      expect(s.hwVmid(7)).toBe(1);
    }
  });

  for (const bits of [8, 16]) {
    it(`long random run (${bits}-bit): one VM per VMID per flush epoch, VMID 0 never used`, () => {
      const next = rng(bits * 7);
      const l = new KvmLegacyVmidAllocator({ bits, cpus: 8 });
      const chk = new VmidInvariantChecker(l);
      const pool = bits === 8 ? 700 : 150_000;
      for (let i = 0; i < 400_000; i++) {
        const cpu = Math.floor(next() * 8);
        const vm = next() < 0.5 ? 1 + Math.floor(next() * 8) : 1 + Math.floor(next() * pool);
        const r = l.updateVmid(cpu, vm);
        chk.check(cpu, vm, r.hw, r.vmFlush, r.exitAllCpus);
      }
      expect(l.rollovers).toBeGreaterThan(1);
    });
  }
});
