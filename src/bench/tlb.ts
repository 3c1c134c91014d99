import { Stage, World } from '../arch/world.js';
import { scopeAll, type TlbEntry } from '../hw/tlb/scope.js';
import { Tlb } from '../hw/tlb/tlb.js';
import { Prng } from '../sim/prng.js';

export interface TlbBenchResult {
  /** Raw lookups per second on a 2048-entry 4-way TLB (mix of hits and misses). */
  tlbLookupsPerSec: number;
  /** ns to invalidate one VMID holding 4 entries in a 1024-entry TLB full of other VMIDs. */
  invalidateVmidNsSmall: number;
  /** Same in a 65536-entry TLB: should be about the same (indexed, not a scan). */
  invalidateVmidNsLarge: number;
}

function entry(vmid: number, asid: number, page: number, sizeLog2: number, global: boolean): TlbEntry {
  return {
    world: World.NS_EL1, vmid, asid: global ? -1 : asid, global, aset: 0, stage: Stage.S1, page, sizeLog2,
    granuleLog2: 12, level: sizeLog2 === 9 ? 2 : 3, leaf: 1, out: page + 0x80000, ctx: vmid,
  };
}

/** Run `body(iterations)` in growing batches until `ms` have elapsed; returns iterations/ms. */
function rate(body: (n: number) => void, ms: number): number {
  let n = 1 << 14;
  let done = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    body(n);
    done += n;
    t = performance.now();
    if (t - t0 < ms / 8) n *= 2;
  }
  return done / (t - t0);
}

function benchLookups(ms: number): number {
  const tlb = new Tlb({ entries: 2048, ways: 4, policy: 'rr' });
  const rng = new Prng(1, 1);
  // Realistic mix: 8 VMs x 16 processes, mostly 4K pages, some 2M blocks, a few global entries.
  for (let i = 0; i < 4096; i++) {
    const block = rng.chance(0.1);
    const k = block ? 9 : 0;
    const page = Math.floor(rng.int(1 << 22) / 2 ** k) * 2 ** k;
    tlb.fill(entry(1 + rng.int(8), 1 + rng.int(16), page, k, rng.chance(0.05)));
  }
  const live = tlb.entries();
  // Precomputed key arrays (power-of-two length) so the timed loop allocates nothing.
  const N = 1 << 16;
  const vmid = new Int32Array(N);
  const asid = new Int32Array(N);
  const page = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    if (rng.chance(0.8)) { // hit: a page inside a live entry
      const e = live[rng.int(live.length)];
      vmid[i] = e.vmid;
      asid[i] = e.global ? 1 + rng.int(16) : e.asid;
      page[i] = e.page + rng.int(2 ** e.sizeLog2);
    } else { // miss (mostly): random page and tags
      vmid[i] = 1 + rng.int(8);
      asid[i] = 1 + rng.int(16);
      page[i] = rng.int(1 << 22);
    }
  }
  const mask = N - 1;
  let sink = 0;
  const body = (n: number): void => {
    // Local accumulator: a captured, non-Smi `sink` updated per iteration would box a number
    // on every lookup and measure the allocator instead of the TLB.
    let s = 0;
    for (let i = 0; i < n; i++) {
      const j = i & mask;
      s += tlb.lookup(World.NS_EL1, vmid[j], asid[j], 0, false, page[j]);
    }
    sink += s;
  };
  rate(body, ms / 4); // warm-up (JIT)
  const perMs = rate(body, ms);
  if (sink === 0.5) throw new Error('unreachable'); // keep the loop observable
  return perMs * 1000;
}

/**
 * Time invalidating one VMID (4 entries) in a TLB of `entries` full of other VMIDs. TARGETS
 * such VMIDs are invalidated back to back inside one timed region (timer overhead amortised),
 * then refilled outside it.
 */
function benchInvalidateVmid(entries: number, ms: number): number {
  const TARGETS = 64;
  const tlb = new Tlb({ entries, ways: 4, policy: 'rr' });
  const rng = new Prng(2, entries);
  for (let i = 0; i < entries * 2; i++) tlb.fill(entry(1000 + rng.int(500), 1 + rng.int(256), rng.int(1 << 24), 0, false));
  const targets: TlbEntry[] = [];
  for (let v = 0; v < TARGETS; v++) {
    for (let j = 0; j < 4; j++) targets.push(entry(10 + v, 1, (1 << 25) + v * 4 + j, 0, false)); // distinct sets: no self-eviction
  }
  const scope = scopeAll();
  scope.worlds = World.NS_EL1;
  scope.stages = Stage.S1 | Stage.NESTED;
  let total = 0;
  let ops = 0;
  let removed = 0;
  const round = (): void => {
    for (const e of targets) tlb.fill(e);
    const t0 = performance.now();
    for (let v = 0; v < TARGETS; v++) {
      scope.vmid = 10 + v;
      removed += tlb.invalidate(scope);
    }
    total += performance.now() - t0;
    ops += TARGETS;
  };
  const warm = performance.now();
  while (performance.now() - warm < ms / 4) round();
  total = 0; ops = 0; removed = 0;
  const start = performance.now();
  while (performance.now() - start < ms) round();
  if (removed !== ops * 4) throw new Error(`bench: expected ${ops * 4} removals, got ${removed}`);
  return (total / ops) * 1e6;
}

export function benchTlb(): TlbBenchResult {
  return {
    tlbLookupsPerSec: benchLookups(1000),
    invalidateVmidNsSmall: benchInvalidateVmid(1024, 700),
    invalidateVmidNsLarge: benchInvalidateVmid(65536, 700),
  };
}
