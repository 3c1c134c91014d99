/**
 * Time series of one run: VMID pressure (VMIDs in use on the KVM and SMMU side), KVM VMID
 * rollovers, devices left unattached, collateral invalidations and refills, sampled at regular
 * simulated times while the Simulation runs. Sampling only reads counters: the run, and its
 * metrics, are exactly those of `runScenario`.
 * Sampling uses Simulation.run's sampler hook (RunOptions.sampler).
 */
import { KvmVmidAllocator } from '../kernel/kvm/vmid.js';
import { KvmLegacyVmidAllocator } from '../kernel/kvm/vmid-legacy.js';
import { IdaVmidProvider } from '../kernel/smmu-driver/ids.js';
import type { RunOptions, Simulation } from './simulation.js';

export interface Timeline {
  /** Simulated time of each sample (ns); the first sample is at 0, after the VMs are built. */
  tNs: number[];
  /** KVM VMIDs allocated in the current generation. */
  kvmVmids: number[];
  /** SMMU stage-2 VMIDs in use (the fullest SMMU; pinned KVM VMIDs for btm-kvm-pinned). */
  smmuVmids: number[];
  /** Cumulative KVM VMID rollovers. */
  kvmRollovers: number[];
  /** Cumulative devices left without a domain (VMID allocation or pin failures). */
  devicesUnattached: number[];
  /** Cumulative collateral invalidations (all sources and victims). */
  collateral: number[];
  /** Cumulative collateral refills. */
  collateralRefills: number[];
  /** VMIDs KVM can hand out in a generation (2^bits − 1, or the policy's limit). */
  kvmVmidCapacity: number;
  /** VMIDs the SMMU side can hold at once (its IDA range, or the pin cap). */
  smmuVmidCapacity: number;
}

/** The series of a Timeline, in display order. */
export const TIMELINE_SERIES = ['kvmVmids', 'smmuVmids', 'kvmRollovers', 'devicesUnattached', 'collateral', 'collateralRefills'] as const;
export type TimelineSeries = (typeof TIMELINE_SERIES)[number];

export interface TimelineOptions {
  /** Samples after t = 0 (default 100). 0: only the final state is sampled. */
  samples?: number;
  onProgress?: (fraction: number) => void;
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

function kvmVmidsInUse(sim: Simulation): number {
  const k = sim.kvm;
  if (k instanceof KvmVmidAllocator) {
    let n = 0;
    for (let i = 0; i < k.vmidMap.length; i++) n += popcount32(k.vmidMap[i]);
    return Math.max(0, n - (k.vmidMap[0] & 1)); // VMID 0 is reserved, never a VM's
  }
  if (k instanceof KvmLegacyVmidAllocator) return Math.max(0, k.kvmNextVmid - 1);
  return 0;
}

function kvmVmidCapacity(sim: Simulation): number {
  const k = sim.kvm;
  if (k instanceof KvmVmidAllocator) return k.numUserVmids - 1;
  if (k instanceof KvmLegacyVmidAllocator) return k.limit - 1;
  return 2 ** sim.sc.cpu.vmidBits - 1;
}

function pinned(sim: Simulation): boolean {
  return sim.policy.smmuVmid === 'kvm-pinned';
}

function smmuVmidsInUse(sim: Simulation): number {
  if (pinned(sim)) return sim.smmuSide.pinStats().pinned;
  let max = 0;
  for (const d of sim.smmuSide.devices) max = Math.max(max, d.vmidMap.used);
  return max;
}

function smmuVmidCapacity(sim: Simulation): number {
  const k = sim.kvm;
  if (pinned(sim) && k instanceof KvmVmidAllocator) return k.maxPinnedVmids;
  let cap = 0;
  for (const d of sim.smmuSide.devices) {
    const p = d.vmidProvider;
    cap = Math.max(cap, p instanceof IdaVmidProvider ? Math.max(0, p.max - p.min + 1) : 2 ** d.vmidBits - 1);
  }
  return cap;
}

/** Run `sim` to its end, sampling a Timeline. Returns the timeline; metrics are read from `sim` as usual. */
export function runWithTimeline(sim: Simulation, opts: TimelineOptions = {}): Timeline {
  const samples = Math.max(0, Math.floor(opts.samples ?? 100));
  const tl: Timeline = {
    tNs: [], kvmVmids: [], smmuVmids: [], kvmRollovers: [], devicesUnattached: [], collateral: [], collateralRefills: [],
    kvmVmidCapacity: kvmVmidCapacity(sim), smmuVmidCapacity: smmuVmidCapacity(sim),
  };
  const m = sim.metrics;
  const sample = (t: number): void => {
    tl.tNs.push(t);
    tl.kvmVmids.push(kvmVmidsInUse(sim));
    tl.smmuVmids.push(smmuVmidsInUse(sim));
    tl.kvmRollovers.push(sim.kvm.rollovers);
    tl.devicesUnattached.push(sim.counters.devicesUnattached);
    tl.collateral.push(m.total(m.collateral));
    tl.collateralRefills.push(m.collateralRefills);
  };
  sample(0);
  const d = sim.sc.duration;
  const ro: RunOptions = opts.onProgress ? { onProgress: opts.onProgress } : {};
  let k = 1;
  if (samples > 0) {
    if ('ms' in d) {
      // Boundary k·end/samples is sampled when the first event later than it is reached: the
      // state then holds every event at or before it.
      const endNs = d.ms * 1e6;
      const step = endNs / samples;
      ro.sampler = {
        byEvents: false, first: step,
        sample: (b) => { sample(b); k++; return k > samples ? Infinity : k === samples ? endNs : k * step; },
      };
      sim.run(ro);
      while (k <= samples) { sample(k === samples ? endNs : k * step); k++; }
      return tl;
    }
    // Duration in events: boundaries every ceil(events / samples) events, at the time reached.
    const every = Math.max(1, Math.ceil(d.events / samples));
    ro.sampler = {
      byEvents: true, first: every,
      sample: (b) => { sample(sim.now); k++; return k > samples ? Infinity : b + every; },
    };
    sim.run(ro);
    if (k <= samples) sample(sim.now);
    return tl;
  }
  sim.run(ro);
  sample(sim.now);
  return tl;
}
