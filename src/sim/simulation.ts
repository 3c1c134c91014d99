import { IDR0, IDR3, setField } from '../arch/registers.js';
import { TLBI } from '../arch/tlbi.js';
import { PeCpuOps } from '../kernel/cpu-ops.js';
import { Arm64AsidAllocator } from '../kernel/mm/asid.js';
import { KvmVmidAllocator, type KvmVmidAllocatorLike } from '../kernel/kvm/vmid.js';
import { KvmLegacyVmidAllocator } from '../kernel/kvm/vmid-legacy.js';
import {
  defaultKvmTlbOptions, kvmFlushRemoteTlbs, kvmFlushRemoteTlbsMemslot, kvmFlushVmContext, kvmUnmapRange,
  type KvmTlbOptions, type S2Removed,
} from '../kernel/kvm/tlb.js';
import { defaultTlbFlushOptions, flushTlbRange, type TlbFlushOptions } from '../kernel/mm/tlbflush.js';
import type { PageTable } from '../hw/memory.js';
import { FaultHook, type FaultHooks } from '../hw/fault-hooks.js';
import { defaultSmmuParams, type SmmuParams } from '../hw/smmu/smmu.js';
import { defaultSmmuKnobs } from '../hw/knobs.js';
import { HwSystem } from '../hw/system.js';
import { newTlbiArgs } from '../hw/tlbi-scope.js';
import type { Pe } from '../hw/cpu/pe.js';
import { policyConfig, type PolicyConfig } from '../policy/policies.js';
import type { PolicyName, Scenario } from '../workload/schema.js';
import { ContextRegistry, CtxKind } from './contexts.js';
import { EventQueue } from './event-queue.js';
import { Metrics, Source } from './metrics.js';
import { Prng, expOfUnit, unitOf } from './prng.js';
import { SmmuSide, type DeviceHandle } from './smmu-side.js';

/** Event kinds. */
const E = {
  DMA: 1, SCHED: 2, KVM_UNMAP: 3, KVM_RANGE: 4, KVM_FLUSH_VM: 5, DIRTY: 6, GUEST_TLBI: 7,
  VM_CHURN: 8, SVA_MUNMAP: 9, SVA_DMA: 10, CMDQ_DRAIN: 11, GUEST_SVA_MUNMAP: 12,
} as const;

/** PRNG stream ids: one stream per entity (entity index added), so adding one leaves others unchanged. */
const STREAM = { DEVICE: 0x1000_0000, VM: 0x2000_0000, CPU: 0x3000_0000, SVA: 0x4000_0000, GUEST_SVA: 0x5000_0000 } as const;

/** IPA where guest memory starts (1 GiB), and the PA stride between VMs. */
const GUEST_IPA_BASE = 0x40000;
const HOST_VA_BASE = 0x400000;

interface Vm {
  slot: number;
  /** KVM's VM id (allocator object id); a recreated VM in the same slot gets a new one. */
  kvmId: number;
  alive: boolean;
  s2: PageTable;
  ctx: number;
  rng: Prng;
  devices: number[];
  /** CPU each vCPU of this VM is placed on. */
  vcpuCpu: number[];
  /** Pinned KVM VMID (btm-kvm-pinned), 0 if none. */
  pinnedVmid: number;
  /** Contexts whose translations depend on this VM's KVM stage 2 (shared tables, nesting). */
  dependents: number[];
  migrating: boolean;
  /** Draws of the guest's SVA process (guest munmaps), its own stream. */
  gsvaRng: Prng;
}

interface Device {
  index: number;
  vmSlot: number;
  smmu: number;
  sid: number;
  handle: DeviceHandle | null;
  rng: Prng;
  base: number;
  cursor: number;
  active: boolean;
  /** A DMA event of this device is in the queue (its chain continues across VM churn). */
  scheduled: boolean;
}

interface SvaProc {
  index: number;
  mm: number;
  table: PageTable;
  ctx: number;
  rng: Prng;
  handle: DeviceHandle | null;
  base: number;
  cursor: number;
}

/** A runnable entity on a CPU: vCPU (vm slot, >= 0) or host process (-(mm+1)). */
type Runnable = number;

export interface RunOptions {
  /** Called now and then with the fraction done (0..1). */
  onProgress?: (fraction: number) => void;
  /** Samples the state at boundaries of simulated time or event count (src/sim/timeline.ts). */
  sampler?: RunSampler;
}

/**
 * A sampler sees the state between events: before the first event that lies beyond its
 * boundary is processed, `sample(boundary)` is called (repeatedly, while boundaries are passed)
 * and returns the next boundary (Infinity: no more). One comparison per event when installed.
 */
export interface RunSampler {
  /** The boundaries are event counts (events processed so far, sampled when it reaches one) instead of ns. */
  byEvents: boolean;
  /** First boundary. */
  first: number;
  sample(boundary: number): number;
}

export interface SimOptions {
  /** Fault-injection hooks to wire into the hardware and driver models (src/oracle/faults.ts). */
  faults?: FaultHooks;
  /**
   * Called once the hardware and kernel models exist, before the workload is built (VMs,
   * devices, SVA binds): observers such as the oracle attach here.
   */
  attach?: (sim: Simulation) => void;
  /**
   * Called once the HwSystem, the Metrics and the policy exist and before anything uses them
   * (no table, no driver probe, no DMA yet): a trace recorder (`run --record`) attaches here so
   * that the trace starts from reset.
   */
  onHardware?: (sim: Simulation) => void;
}

/**
 * What software believes, for an observer that checks the hardware against it (the oracle,
 * src/oracle/oracle.ts). Called only when `Simulation.observer` is set.
 */
export interface SimObserver {
  /**
   * Software considers every change made so far to `table` invalidated wherever it may be cached:
   * its TLBIs and DSBs, commands and CMD_SYNCs, ATC invalidations have returned, and it will now
   * reuse what the old mappings pointed at. `what` names the path (a constant string).
   */
  maintenanceDone(table: PageTable, what: string): void;
  /** Device `h` is about to translate `page` (the context software attached it to is h.ctx). */
  beforeDma(h: DeviceHandle, page: number): void;
}

/** Software paths that end with maintenanceDone (labels of oracle reports). */
export const MAINTENANCE = {
  KVM_UNMAP: 'KVM stage-2 unmap (kvm_unmap_gfn_range: __kvm_tlb_flush_vmid_ipa/_range + DSB, SMMU driver if it shares the table)',
  DIRTY_LOG: 'dirty logging (write-protect + kvm_flush_remote_tlbs_memslot)',
  SVA_MUNMAP: 'munmap (flush_tlb_range: TLBI + DSB, SVA mmu-notifier: commands + CMD_SYNC, ATC)',
  GUEST_SVA_MUNMAP: 'guest munmap (guest flush_tlb_range: TLBI + DSB with the VM\'s VMID; without vSMMU BTM also trapped CMD_TLBI_NH_VA + CMD_SYNC)',
  VM_DESTROY: 'VM destroyed (devices detached, domains freed: CMD_TLBI_S12_VMALL + CMD_SYNC, ATC; KVM relies on VMID generations)',
} as const;

/**
 * One run of a scenario under one policy: builds the hardware (PEs, SMMUs, DVM), the kernel model
 * (ASID allocator, KVM VMID allocator, SMMU driver) configured by the policy, and drives them with
 * the workload's events in simulated nanoseconds.
 */
export class Simulation {
  readonly hw: HwSystem;
  readonly policy: PolicyConfig;
  readonly ctxs = new ContextRegistry();
  readonly metrics: Metrics;
  readonly asids: Arm64AsidAllocator;
  readonly kvm: KvmVmidAllocatorLike;
  readonly smmuSide: SmmuSide;
  readonly q = new EventQueue(4096);
  now = 0;
  events = 0;
  dmaEvents = 0;
  /** KVM stage-2 and other software events, for reporting. */
  readonly counters = {
    vcpuLoads: 0, kvmUnmaps: 0, kvmRangeUnmaps: 0, kvmVmFlushes: 0, dirtyPasses: 0, guestTlbis: 0,
    vmsCreated: 0, vmsDestroyed: 0, svaMunmaps: 0, guestSvaMunmaps: 0, vsmmuTraps: 0, hostSwitches: 0, localAsidFlushes: 0,
    kvmRolloverFlushes: 0, dmaFaults: 0, devicesUnattached: 0,
  };
  firstExhaustionNs = -1;
  /** The oracle (or another observer of software's view), when attached. */
  observer: SimObserver | null = null;
  /** Injected faults (null: none). */
  readonly faults: FaultHooks | null;

  private readonly vms: Vm[] = [];
  private readonly devices: Device[] = [];
  private readonly sva: SvaProc[] = [];
  private readonly runq: Runnable[][] = [];
  private readonly runIdx: Int32Array;
  private readonly running: Int32Array;
  private readonly cpuOps: PeCpuOps[];
  private readonly kvmOpts: KvmTlbOptions;
  private readonly hostOpts: TlbFlushOptions;
  /** A guest kernel's flush_tlb_range (no KPTI, no secondary-TLB notifier: the vSMMU is separate). */
  private readonly guestOpts: TlbFlushOptions;
  private readonly removedByLength = new Map<number, S2Removed[]>();
  private readonly cpuRng: Prng[] = [];
  private nextKvmId = 1;
  /** CPU a KVM VMID rollover flush is issued from (the vCPU-loading CPU, else CPU 0). */
  private kvmFlushCpu = 0;
  private nextMm = 1;
  /** Per SMMU: a CMDQ_DRAIN event is queued (fault skip-sync). */
  private readonly drainQueued: Uint8Array;
  private readonly endNs: number;
  private readonly endEvents: number;
  private readonly dmaMeanNs: number;
  /** Working set of a device's DMA (pages, at most the VM's memory) and of an SVA process's, and the locality. */
  private readonly dmaWsPages: number;
  private readonly svaWsPages: number;
  private readonly dmaLocality: number;

  constructor(readonly sc: Scenario, policyName: PolicyName, opts: SimOptions = {}) {
    this.policy = policyConfig(policyName, sc);
    const cpu = sc.cpu;
    const smmuParams: SmmuParams[] = [];
    for (let i = 0; i < sc.smmu.count; i++) smmuParams.push(smmuParamsFor(sc));
    this.hw = new HwSystem({ cpus: cpu.count, vhe: cpu.vhe, cpuTlb: cpu.tlb, smmus: smmuParams });
    this.metrics = new Metrics(this.ctxs);
    opts.onHardware?.(this);
    for (const s of this.hw.smmus) s.listener = this.metrics;
    for (const pe of this.hw.pes) {
      const t = pe.tlb;
      t.onRemove = (slot, cause) => this.metrics.onCpuRemove(t, slot, cause);
    }
    this.cpuOps = this.hw.pes.map((pe) => new PeCpuOps(pe));
    this.asids = new Arm64AsidAllocator({
      bits: cpu.asidBits, cpus: cpu.count, kpti: cpu.kpti,
      hooks: { onLocalFlush: (c) => this.localAsidFlush(c) },
    });
    const pinning = this.policy.smmuVmid === 'kvm-pinned';
    const limit = this.policy.kvmVmidLimit > 0 ? this.policy.kvmVmidLimit : undefined;
    // flush_context() issues __kvm_flush_vm_context (ALLE1IS) from whichever path rolled over:
    // a vCPU load, or (pinned-VMID RFC) a pin taken at device assignment.
    const hooks = { onVmFlush: () => this.kvmRollover(this.kvmFlushCpu) };
    this.kvm = sc.kernel.kvmVmidAllocator === 'legacy'
      ? new KvmLegacyVmidAllocator({ bits: cpu.vmidBits, cpus: cpu.count, limit, hooks })
      : new KvmVmidAllocator({ bits: cpu.vmidBits, cpus: cpu.count, pinning, pinnedWriteback: true, limit, hooks });
    this.kvmOpts = defaultKvmTlbOptions({ tlbiRange: cpu.tlbiRange, fwb: true, kernel: sc.kernel.kvmRangeFlush ? 'v6.6+' : 'pre-6.6' });
    this.guestOpts = defaultTlbFlushOptions({ kpti: false, tlbiRange: cpu.tlbiRange });
    this.hostOpts = defaultTlbFlushOptions({
      kpti: cpu.kpti, tlbiRange: cpu.tlbiRange,
      notifier: (asid, start, end) => this.secondaryTlbNotifier(asid, start, end),
    });
    this.smmuSide = new SmmuSide(this, sc, this.policy);
    this.runIdx = new Int32Array(cpu.count);
    this.running = new Int32Array(cpu.count).fill(NONE);
    for (let c = 0; c < cpu.count; c++) {
      this.runq.push([]);
      this.cpuRng.push(new Prng(sc.seed, STREAM.CPU + c));
    }
    this.endNs = 'ms' in sc.duration ? sc.duration.ms * 1e6 : Infinity;
    this.q.horizon = this.endNs;
    this.endEvents = 'events' in sc.duration ? sc.duration.events : Infinity;
    this.dmaMeanNs = 1000 / sc.workload.dma.ratePerUs;
    this.dmaWsPages = Math.min(sc.workload.dma.workingSetPages, sc.workload.vmPages);
    this.svaWsPages = sc.workload.dma.workingSetPages;
    this.dmaLocality = sc.workload.dma.locality;
    this.drainQueued = new Uint8Array(this.hw.smmus.length);
    this.faults = opts.faults ?? null;
    if (this.faults !== null) this.wireFaults(this.faults);
    opts.attach?.(this);
    this.initHandlers();
    this.build();
  }

  /** Give every hooked model object the fault hooks (src/hw/fault-hooks.ts). */
  private wireFaults(f: FaultHooks): void {
    for (const s of this.hw.smmus) {
      s.faults = f;
      if (f.has(FaultHook.DROP_DVM)) s.dropBroadcasts = true;
      if (f.has(FaultHook.SKIP_SYNC)) s.onCommandsPending = (x) => this.scheduleCmdqDrain(x.id);
    }
    for (const pe of this.hw.pes) pe.faults = f;
    for (const d of this.smmuSide.devices) d.faults = f;
    this.smmuSide.faults = f;
  }

  /**
   * Commands were left in SMMU `i`'s queue (fault skip-sync): the SMMU consumes them a CMD_SYNC
   * round trip (cost.cmdSyncNs) later, at an event of its own.
   */
  scheduleCmdqDrain(i: number): void {
    if (this.drainQueued[i] === 1) return;
    this.drainQueued[i] = 1;
    this.q.push(this.now + Math.max(1, this.sc.cost.cmdSyncNs), E.CMDQ_DRAIN, i);
  }

  private cmdqDrain(i: number): void {
    this.drainQueued[i] = 0;
    this.hw.smmus[i].consume();
  }

  // ------------------------------------------------------------------ construction

  private build(): void {
    const w = this.sc.workload;
    for (let i = 0; i < w.vms; i++) this.createVm(i);
    // Host processes (ASID pressure) and SVA processes run on the CPUs beside the vCPUs.
    for (let h = 0; h < w.sva.hostProcesses; h++) {
      const mm = this.nextMm++;
      this.runq[h % this.hw.pes.length].push(-(mm + 1));
    }
    for (let p = 0; p < w.sva.processes; p++) this.createSva(p);
    for (let c = 0; c < this.hw.pes.length; c++) this.q.push(this.cpuRng[c].exp(w.timesliceUs * 1000) * 0.5, E.SCHED, c);
    for (const vm of this.vms) this.scheduleVmEvents(vm);
  }

  private createVm(slot: number): void {
    const w = this.sc.workload;
    const kvmId = this.nextKvmId++;
    const ctx = this.ctxs.add(CtxKind.VM_S2, slot, `vm${slot}#${kvmId} S2`);
    const s2 = this.hw.memory.newTable(ctx, `vm${slot}#${kvmId} stage 2`);
    s2.mapLinear(GUEST_IPA_BASE, w.vmPages, 0x100000 + slot * w.vmPages);
    const rng = new Prng(this.sc.seed, STREAM.VM + slot * 4096 + (kvmId & 4095));
    const vm: Vm = {
      slot, kvmId, alive: true, s2, ctx, rng, devices: [], vcpuCpu: [], pinnedVmid: 0, dependents: [],
      migrating: slot < w.kvm.dirtyLogging.vms,
      gsvaRng: new Prng(this.sc.seed, STREAM.GUEST_SVA + slot * 4096 + (kvmId & 4095)),
    };
    if (this.vms[slot] === undefined) this.vms.push(vm); else this.vms[slot] = vm;
    this.counters.vmsCreated++;
    // Place vCPUs round-robin over CPUs (once per slot, so a recreated VM takes its slot's places).
    const cpus = this.hw.pes.length;
    for (let v = 0; v < w.vcpusPerVm; v++) {
      const c = (slot * w.vcpusPerVm + v) % cpus;
      vm.vcpuCpu.push(c);
      if (!this.runq[c].includes(slot)) this.runq[c].push(slot);
    }
    for (let d = 0; d < w.devicesPerVm; d++) this.createDevice(vm, d);
  }

  private createDevice(vm: Vm, d: number): void {
    const w = this.sc.workload;
    const index = vm.slot * w.devicesPerVm + d;
    const existing = this.devices[index];
    const nSmmu = this.hw.smmus.length;
    const smmu = index % nSmmu;
    // StreamIDs: one per VF, 8 apart as PCIe functions on a bus would be spread; stable per slot.
    const sid = 0x100 + index;
    const ws = Math.min(w.dma.workingSetPages, w.vmPages);
    // Each device's DMA buffers sit somewhere in its guest's memory, drawn from its own stream.
    const rng = existing?.rng ?? new Prng(this.sc.seed, STREAM.DEVICE + index);
    const base = GUEST_IPA_BASE + rng.int(Math.max(1, w.vmPages - ws + 1));
    const dev: Device = existing ?? {
      index, vmSlot: vm.slot, smmu, sid, handle: null, rng, base, cursor: base, active: false, scheduled: false,
    };
    dev.base = base;
    dev.cursor = base;
    dev.vmSlot = vm.slot;
    dev.handle = this.smmuSide.assign(vm.slot, vm.kvmId, vm.s2, dev.smmu, sid, vm.ctx);
    dev.active = dev.handle !== null;
    if (!dev.active) {
      this.counters.devicesUnattached++;
      if (this.firstExhaustionNs < 0) this.firstExhaustionNs = this.now;
    } else if (dev.handle!.dependsOnVmS2) {
      vm.dependents.push(dev.handle!.ctx);
    }
    vm.devices.push(index);
    if (existing === undefined) this.devices[index] = dev;
    if (dev.active && !dev.scheduled) {
      dev.scheduled = true;
      this.q.push(this.now + dev.rng.exp(this.dmaMeanNs), E.DMA, index);
    }
  }

  private createSva(p: number): void {
    const w = this.sc.workload;
    const mm = this.nextMm++;
    const ctx = this.ctxs.add(CtxKind.MM, -1, `sva mm${mm}`);
    const table = this.hw.memory.newTable(ctx, `mm${mm}`);
    const ws = w.dma.workingSetPages;
    table.mapLinear(HOST_VA_BASE, ws, 0x4000000 + p * ws);
    const proc: SvaProc = {
      index: p, mm, table, ctx, rng: new Prng(this.sc.seed, STREAM.SVA + p), handle: null,
      base: HOST_VA_BASE, cursor: HOST_VA_BASE,
    };
    this.sva.push(proc);
    this.runq[p % this.hw.pes.length].push(-(mm + 1));
    // Give the mm an ASID (first switch-in) before the bind, as a process runs before binding.
    this.asids.checkAndSwitchContext(p % this.hw.pes.length, mm);
    proc.handle = this.smmuSide.bindSva(p % this.hw.smmus.length, 0x8000 + p, mm, table, ctx, this.asids);
    if (proc.handle !== null) {
      this.q.push(proc.rng.exp(this.dmaMeanNs), E.SVA_DMA, p);
      if (w.sva.munmapPerMs > 0) this.q.push(proc.rng.exp(1e6 / w.sva.munmapPerMs), E.SVA_MUNMAP, p);
    }
  }

  private scheduleVmEvents(vm: Vm): void {
    const k = this.sc.workload.kvm;
    const slot = vm.slot;
    if (k.unmapPerMsPerVm > 0) this.q.push(this.now + vm.rng.exp(1e6 / k.unmapPerMsPerVm), E.KVM_UNMAP, slot);
    if (k.rangeUnmapPerMsPerVm > 0) this.q.push(this.now + vm.rng.exp(1e6 / k.rangeUnmapPerMsPerVm), E.KVM_RANGE, slot);
    if (k.flushVmPerMsPerVm > 0) this.q.push(this.now + vm.rng.exp(1e6 / k.flushVmPerMsPerVm), E.KVM_FLUSH_VM, slot);
    if (vm.migrating && k.dirtyLogging.passesPerMs > 0) this.q.push(this.now + vm.rng.exp(1e6 / k.dirtyLogging.passesPerMs), E.DIRTY, slot);
    const g = this.sc.workload.guestTlbiPerMsPerVm;
    if (g > 0) this.q.push(this.now + vm.rng.exp(1e6 / g), E.GUEST_TLBI, slot);
    const gs = this.sc.workload.guestSva.munmapPerMsPerVm;
    if (gs > 0 && this.sc.workload.nested) this.q.push(this.now + vm.gsvaRng.exp(1e6 / gs), E.GUEST_SVA_MUNMAP, slot);
    this.scheduleChurn(vm);
  }

  private scheduleChurn(vm: Vm): void {
    const life = this.sc.workload.churn.vmLifetimeMs;
    if (life !== undefined) this.q.push(this.now + vm.rng.exp(life * 1e6), E.VM_CHURN, vm.slot);
  }

  // ------------------------------------------------------------------ main loop

  run(opts: RunOptions = {}): void {
    const q = this.q;
    const sampler = opts.sampler ?? null;
    const onProgress = opts.onProgress;
    const endEvents = this.endEvents;
    if (sampler === null && onProgress === undefined) {
      // The common loop. The work is in next() and handle(), ordinary hot functions compiled
      // once and reused by every later run: this loop starts each run in the interpreter until
      // on-stack replacement, and must not touch a double there (each read would allocate).
      while (this.events < endEvents && this.next()) this.handle();
    } else {
      let nextSample = sampler !== null ? sampler.first : Infinity;
      let nextProgress = PROGRESS_EVERY;
      while (this.events < endEvents && this.next()) {
        if (sampler !== null) {
          // State now holds every event before this one: sample the boundaries it passes.
          if (sampler.byEvents) { while (this.events >= nextSample) nextSample = sampler.sample(nextSample); }
          else { while (q.poppedTime > nextSample) nextSample = sampler.sample(nextSample); }
        }
        this.handle();
        if (onProgress !== undefined && this.events >= nextProgress) {
          nextProgress += PROGRESS_EVERY;
          onProgress(this.endNs !== Infinity ? this.now / this.endNs : this.events / this.endEvents);
        }
      }
    }
    this.metrics.end();
  }

  /** Pop the next event, unless the run is over (no event left, or it lies beyond the end time). */
  private next(): boolean {
    return this.q.popDue();
  }

  /** Handle the event next() popped. */
  private handle(): void {
    const q = this.q;
    this.now = q.poppedTime;
    this.events++;
    // DMA translations are nearly every event: dispatched here, the rest through dispatch().
    if (q.poppedKind === E.DMA) this.dma(q.poppedArg);
    else this.dispatch(q.poppedKind, q.poppedArg);
  }

  /**
   * Handlers of the events other than E.DMA, by kind. Called through this table on purpose: a
   * call site with this many targets is never inlined, so the compiler keeps its inlining budget
   * (which, once spent, stops even the smallest callee from being inlined) for the DMA path of
   * handle(), where a call left out of line would box the event's time (one allocation per
   * event).
   */
  private readonly handlers: ((arg: number) => void)[] = [];

  private initHandlers(): void {
    const h = this.handlers;
    const nop = (_arg: number): void => {};
    for (let k = 0; k <= E.GUEST_SVA_MUNMAP; k++) h.push(nop);
    h[E.DMA] = (a) => this.dma(a);
    h[E.SCHED] = (a) => this.sched(a);
    h[E.KVM_UNMAP] = (a) => this.kvmUnmap(a, false);
    h[E.KVM_RANGE] = (a) => this.kvmUnmap(a, true);
    h[E.KVM_FLUSH_VM] = (a) => this.kvmFlushVm(a);
    h[E.DIRTY] = (a) => this.dirtyPass(a);
    h[E.GUEST_TLBI] = (a) => this.guestTlbi(a);
    h[E.VM_CHURN] = (a) => this.churn(a);
    h[E.SVA_MUNMAP] = (a) => this.svaMunmap(a);
    h[E.SVA_DMA] = (a) => this.svaDma(a);
    h[E.CMDQ_DRAIN] = (a) => this.cmdqDrain(a);
    h[E.GUEST_SVA_MUNMAP] = (a) => this.guestSvaMunmap(a);
  }

  private dispatch(kind: number, arg: number): void {
    if (kind > 0 && kind < this.handlers.length) this.handlers[kind](arg);
  }

  // ------------------------------------------------------------------ DMA

  // The DMA paths are nearly every event. Their random draws go through Prng.raw() and the leaf
  // transforms (see prng.ts), and the next event's time through q.at: no double crosses a call
  // that the compiler might not inline, so nothing is boxed whatever it decides. The draws and
  // their order are those of rng.chance(), rng.int() and rng.exp().

  private dma(i: number): void {
    const d = this.devices[i];
    if (!d.active) { d.scheduled = false; return; }
    const rng = d.rng;
    const wsPages = this.dmaWsPages;
    // Next page: sequential with probability `locality`, else uniform in the working set.
    let p = d.cursor + 1;
    if (p >= d.base + wsPages || !(unitOf(rng.raw()) < this.dmaLocality)) p = d.base + Math.floor(unitOf(rng.raw()) * wsPages);
    d.cursor = p;
    this.dmaEvents++;
    const out = this.smmuSide.translate(d.handle!, p);
    if (out < 0) this.counters.dmaFaults++;
    const q = this.q;
    q.at[0] = this.now + expOfUnit(unitOf(rng.raw()), this.dmaMeanNs);
    q.pushAt(E.DMA, i);
  }

  private svaDma(i: number): void {
    const s = this.sva[i];
    const rng = s.rng;
    const wsPages = this.svaWsPages;
    let p = s.cursor + 1;
    if (p >= s.base + wsPages || !(unitOf(rng.raw()) < this.dmaLocality)) p = s.base + Math.floor(unitOf(rng.raw()) * wsPages);
    s.cursor = p;
    this.dmaEvents++;
    const out = this.smmuSide.translate(s.handle!, p);
    if (out < 0) this.counters.dmaFaults++;
    const q = this.q;
    q.at[0] = this.now + expOfUnit(unitOf(rng.raw()), this.dmaMeanNs);
    q.pushAt(E.SVA_DMA, i);
  }

  // ------------------------------------------------------------------ scheduling

  /** A timeslice ends on `cpu`: vCPU put, next runnable in, vCPU load / context switch. */
  private sched(cpu: number): void {
    const pe = this.hw.pes[cpu];
    const cur = this.running[cpu];
    if (cur >= 0) this.vcpuPut(cpu, pe);
    const rq = this.runq[cpu];
    if (rq.length > 0) {
      let pick = NONE;
      for (let tries = 0; tries < rq.length; tries++) {
        const r = rq[this.runIdx[cpu]++ % rq.length];
        if (r < 0 || this.vms[r].alive) { pick = r; break; }
      }
      if (pick >= 0) this.vcpuLoad(cpu, pe, pick);
      else if (pick !== NONE) this.hostSwitch(cpu, pe, -pick - 1);
    }
    this.q.push(this.now + this.cpuRng[cpu].exp(this.sc.workload.timesliceUs * 1000), E.SCHED, cpu);
  }

  private vcpuLoad(cpu: number, pe: Pe, slot: number): void {
    const vm = this.vms[slot];
    this.counters.vcpuLoads++;
    this.kvmFlushCpu = cpu;
    const r = this.kvm.kvmArmVmidUpdate(cpu, vm.kvmId);
    this.kvmFlushCpu = 0;
    if (r.exitAllCpus) {
      // Legacy scheme: every CPU leaves the guest and reloads its VMID at the next entry.
      for (let c = 0; c < this.running.length; c++) {
        const s = this.running[c];
        if (c !== cpu && s >= 0) { this.kvm.kvmArmVmidUpdate(c, this.vms[s].kvmId); this.hw.pes[c].regime.vmid = this.kvm.hwVmid(this.vms[s].kvmId); }
      }
    }
    // Guest context: VTTBR_EL2.VMID, HCR_EL2.FB (KVM runs guests with FB=1), EL1.
    pe.regime.vmid = r.hw;
    pe.regime.el = 1;
    pe.regime.tge = false;
    pe.hcrFb = true;
    pe.asid = 1;
    this.running[cpu] = slot;
    // The vCPU touches a few guest pages: CPU TLB entries tagged with its VMID.
    const rng = this.cpuRng[cpu];
    for (let i = 0; i < 4; i++) pe.access(vm.s2, GUEST_IPA_BASE + rng.int(this.sc.workload.vmPages), vm.ctx);
  }

  private vcpuPut(cpu: number, pe: Pe): void {
    this.kvm.kvmArmVmidClearActive(cpu);
    this.running[cpu] = NONE;
    this.hostRegime(pe);
  }

  private hostRegime(pe: Pe): void {
    const vhe = this.sc.cpu.vhe;
    pe.regime.vmid = 0;
    pe.regime.el = vhe ? 2 : 1;
    pe.regime.e2h = vhe;
    pe.regime.tge = vhe;
    pe.hcrFb = false;
  }

  private hostSwitch(cpu: number, pe: Pe, mm: number): void {
    this.counters.hostSwitches++;
    this.hostRegime(pe);
    const r = this.asids.checkAndSwitchContext(cpu, mm);
    pe.asid = r.asid;
  }

  /** The ASID allocator's deferred local TLBI VMALLE1 (non-shareable: never reaches an SMMU). */
  private localAsidFlush(cpu: number): void {
    this.counters.localAsidFlushes++;
    const pe = this.hw.pes[cpu];
    this.metrics.beginKvmAll(Source.ASID_ROLLOVER);
    this.hostRegime(pe);
    const a = LOCAL_VMALLE1;
    pe.tlbi(a);
    this.metrics.end();
  }

  /** KVM VMID rollover: __kvm_flush_vm_context (DSB ISHST; TLBI ALLE1IS; DSB ISH) from `cpu`. */
  private kvmRollover(cpu: number): void {
    this.counters.kvmRolloverFlushes++;
    this.metrics.beginKvmAll(Source.KVM_ROLLOVER);
    kvmFlushVmContext(this.cpuOps[cpu]);
    this.metrics.end();
  }

  // ------------------------------------------------------------------ KVM stage-2 events

  /** Intend the VM's own contexts (its KVM stage 2, and SMMU contexts sharing or nesting on it). */
  private intendVm(vm: Vm): void {
    this.metrics.intend(vm.ctx);
    for (let i = 0; i < vm.dependents.length; i++) this.metrics.intend(vm.dependents[i]);
  }

  /** The CPU KVM runs its maintenance on: one running the VM if any, else CPU 0. */
  private kvmCpu(vm: Vm): number {
    for (let c = 0; c < this.running.length; c++) if (this.running[c] === vm.slot) return c;
    return vm.vcpuCpu[0] ?? 0;
  }

  private kvmUnmap(slot: number, range: boolean): void {
    const vm = this.vms[slot];
    if (!vm.alive) return;
    const w = this.sc.workload;
    const k = w.kvm;
    const pages = range ? Math.min(k.rangePages, w.vmPages) : 1;
    const start = GUEST_IPA_BASE + vm.rng.int(w.vmPages - pages + 1);
    if (range) this.counters.kvmRangeUnmaps++; else this.counters.kvmUnmaps++;
    const cpu = this.kvmCpu(vm);
    const vmid = this.kvm.hwVmid(vm.kvmId);
    vm.s2.unmapRange(start, pages);
    this.metrics.begin(range ? Source.KVM_RANGE : Source.KVM_PAGE);
    this.intendVm(vm);
    if (vmid !== 0) {
      // kvm_unmap_gfn_range: one leaf per page removed (4K mappings in this model).
      const removed = this.removedList(start, pages);
      kvmUnmapRange(this.cpuOps[cpu], this.hw.pes[cpu], vmid, start, pages, removed, this.kvmOpts);
    }
    this.metrics.end();
    // If the SMMU uses KVM's tables it saw the change through the broadcast (BTM); a private
    // SMMU table is not touched by KVM. The page faults back in at once (no flush needed).
    this.smmuSide.kvmStage2Changed(vm.slot, start, pages);
    this.observer?.maintenanceDone(vm.s2, MAINTENANCE.KVM_UNMAP);
    for (let p = start; p < start + pages; p++) vm.s2.remapLinear(p);
    this.q.push(this.now + vm.rng.exp(1e6 / (range ? k.rangeUnmapPerMsPerVm : k.unmapPerMsPerVm)), range ? E.KVM_RANGE : E.KVM_UNMAP, slot);
  }

  private removedList(start: number, pages: number): S2Removed[] {
    // One list per length, reused: a run unmaps a page or a range of one size, and a list whose
    // length changes (or objects that gain a property) would be reallocated on every unmap.
    let r = this.removedByLength.get(pages);
    if (r === undefined) {
      r = [];
      for (let i = 0; i < pages; i++) r.push({ ipaPage: 0, level: 3, table: false });
      this.removedByLength.set(pages, r);
    }
    for (let i = 0; i < pages; i++) { const e = r[i]; e.ipaPage = start + i; e.level = 3; e.table = false; }
    return r;
  }


  private kvmFlushVm(slot: number): void {
    const vm = this.vms[slot];
    if (!vm.alive) return;
    this.counters.kvmVmFlushes++;
    const cpu = this.kvmCpu(vm);
    const vmid = this.kvm.hwVmid(vm.kvmId);
    this.metrics.begin(Source.KVM_VM);
    this.intendVm(vm);
    if (vmid !== 0) kvmFlushRemoteTlbs(this.cpuOps[cpu], this.hw.pes[cpu], vmid);
    this.metrics.end();
    this.q.push(this.now + vm.rng.exp(1e6 / this.sc.workload.kvm.flushVmPerMsPerVm), E.KVM_FLUSH_VM, slot);
  }

  /** Dirty logging: write-protect the memslot, then kvm_flush_remote_tlbs_memslot. */
  private dirtyPass(slot: number): void {
    const vm = this.vms[slot];
    if (!vm.alive) return;
    this.counters.dirtyPasses++;
    const cpu = this.kvmCpu(vm);
    const vmid = this.kvm.hwVmid(vm.kvmId);
    vm.s2.writeProtect();
    this.metrics.begin(Source.KVM_RANGE);
    this.intendVm(vm);
    if (vmid !== 0) kvmFlushRemoteTlbsMemslot(this.cpuOps[cpu], this.hw.pes[cpu], vmid, GUEST_IPA_BASE, this.sc.workload.vmPages, this.kvmOpts);
    this.metrics.end();
    // An SMMU sharing KVM's table (btm-kvm-pinned, shared) must drop its writable entries too.
    this.smmuSide.kvmStage2Changed(vm.slot, GUEST_IPA_BASE, this.sc.workload.vmPages);
    this.observer?.maintenanceDone(vm.s2, MAINTENANCE.DIRTY_LOG);
    this.q.push(this.now + vm.rng.exp(1e6 / this.sc.workload.kvm.dirtyLogging.passesPerMs), E.DIRTY, slot);
  }

  /**
   * A guest changes one of its stage-1 mappings and invalidates it: TLBI VAE1 (upgraded to IS by
   * HCR_EL2.FB) carrying the guest's VMID — only while one of its vCPUs runs.
   */
  private guestTlbi(slot: number): void {
    const vm = this.vms[slot];
    if (!vm.alive) return;
    let cpu = -1;
    for (let c = 0; c < this.running.length; c++) if (this.running[c] === slot) { cpu = c; break; }
    if (cpu >= 0) {
      this.counters.guestTlbis++;
      const pe = this.hw.pes[cpu];
      const a = GUEST_VAE1;
      a.asid = 1;
      a.page = GUEST_IPA_BASE + vm.rng.int(this.sc.workload.vmPages);
      this.metrics.begin(Source.GUEST);
      this.intendVm(vm);
      pe.tlbi(a);
      pe.dsb();
      this.metrics.end();
    }
    this.q.push(this.now + vm.rng.exp(1e6 / this.sc.workload.guestTlbiPerMsPerVm), E.GUEST_TLBI, slot);
  }

  /**
   * Guest SVA through nesting: a process in the guest, whose mm a nested device uses through the
   * guest's stage-1 context (CD ASID), munmaps part of the device's buffer. The guest kernel
   * unmaps and runs flush_tlb_range with that ASID on the vCPU (TLBI VAE1IS/RVAE1IS + DSB, with
   * the VM's VMID: a broadcast). What reaches the SMMU's nested entries depends on the vSMMU:
   * if it advertised BTM (SmmuSide.guestSeesBtm: the device's SMMU VMID is its VM's pinned KVM
   * VMID), the broadcast alone invalidates them; otherwise the guest's SMMU driver also writes
   * CMD_TLBI_NH_VA + CMD_SYNC to its vSMMU, which the VMM traps and replays on the physical SMMU.
   * Only while a vCPU of the VM runs (the process runs on one).
   */
  private guestSvaMunmap(slot: number): void {
    const vm = this.vms[slot];
    const w = this.sc.workload;
    if (vm.alive) {
      let cpu = -1;
      for (let c = 0; c < this.running.length; c++) if (this.running[c] === slot) { cpu = c; break; }
      let dev: Device | null = null;
      if (vm.devices.length > 0) {
        const d = this.devices[vm.devices[vm.gsvaRng.int(vm.devices.length)]];
        if (d.active && d.handle !== null && d.handle.guestAsid !== undefined) dev = d;
      }
      if (cpu >= 0 && dev !== null) {
        const h = dev.handle!;
        const g = h.tables[0];
        const ws = Math.min(w.dma.workingSetPages, w.vmPages);
        const pages = Math.min(w.guestSva.munmapPages, ws);
        const start = dev.base + vm.gsvaRng.int(ws - pages + 1);
        this.counters.guestSvaMunmaps++;
        g.unmapRange(start, pages);
        this.metrics.begin(Source.GUEST);
        this.intendVm(vm);
        this.metrics.intend(h.ctx);
        flushTlbRange(this.cpuOps[cpu], h.guestAsid!, start * 4096, (start + pages) * 4096, 4096, false, undefined, this.guestOpts);
        this.metrics.end();
        if (!this.smmuSide.guestSeesBtm(h)) this.counters.vsmmuTraps += this.smmuSide.guestVsmmuInvalidate(h, start, pages);
        this.observer?.maintenanceDone(g, MAINTENANCE.GUEST_SVA_MUNMAP);
        for (let p = start; p < start + pages; p++) g.remapLinear(p);
      }
    }
    this.q.push(this.now + vm.gsvaRng.exp(1e6 / w.guestSva.munmapPerMsPerVm), E.GUEST_SVA_MUNMAP, slot);
  }

  /** VM destruction and replacement: devices detached (domains and VMIDs freed), a new VM created. */
  private churn(slot: number): void {
    const vm = this.vms[slot];
    if (!vm.alive) return;
    this.counters.vmsDestroyed++;
    vm.alive = false;
    for (let c = 0; c < this.running.length; c++) {
      if (this.running[c] === slot) this.vcpuPut(c, this.hw.pes[c]);
    }
    // The VM's memory and the devices' I/O page tables go away with it (VFIO unmaps the IOVA
    // space, the domains are freed with CMD_TLBI_S12_VMALL); KVM frees the stage 2.
    const tables = this.smmuSide.tablesOfVm(vm.kvmId);
    if (!tables.includes(vm.s2)) tables.push(vm.s2);
    for (const t of tables) t.unmapAll();
    this.smmuSide.destroyVm(vm.kvmId);
    if (this.observer !== null) for (const t of tables) this.observer.maintenanceDone(t, MAINTENANCE.VM_DESTROY);
    for (const t of tables) this.hw.memory.release(t);
    for (const di of vm.devices) {
      const d = this.devices[di];
      d.handle = null;
      d.active = false;
    }
    // KVM frees no VMID: stale entries go at the next rollover's ALLE1IS (kernel.md §2.4).
    // The slot's event chains (KVM, guest) carry on with the new VM.
    this.createVm(slot);
    this.scheduleChurn(this.vms[slot]);
  }

  // ------------------------------------------------------------------ host SVA

  private svaMunmap(i: number): void {
    const s = this.sva[i];
    const w = this.sc.workload.sva;
    this.counters.svaMunmaps++;
    const pages = Math.min(w.munmapPages, this.sc.workload.dma.workingSetPages);
    const start = s.base + s.rng.int(this.sc.workload.dma.workingSetPages - pages + 1);
    s.table.unmapRange(start, pages);
    const cpu = i % this.hw.pes.length;
    const pe = this.hw.pes[cpu];
    if (this.running[cpu] >= 0) this.vcpuPut(cpu, pe);
    // The process runs on this CPU: switch to it, then munmap's flush_tlb_range with its ASID.
    const r = this.asids.checkAndSwitchContext(cpu, s.mm);
    pe.asid = r.asid;
    this.metrics.begin(Source.HOST_MM);
    this.metrics.intend(s.ctx);
    this.svaCurrent = s;
    flushTlbRange(this.cpuOps[cpu], r.asid, start * 4096, (start + pages) * 4096, 4096, false, undefined, this.hostOpts);
    this.svaCurrent = null;
    this.metrics.end();
    this.observer?.maintenanceDone(s.table, MAINTENANCE.SVA_MUNMAP);
    for (let p = start; p < start + pages; p++) s.table.remapLinear(p);
    this.q.push(this.now + s.rng.exp(1e6 / w.munmapPerMs), E.SVA_MUNMAP, i);
  }

  private svaCurrent: SvaProc | null = null;

  /** mmu_notifier_arch_invalidate_secondary_tlbs: the SMMU driver's SVA invalidation. */
  private secondaryTlbNotifier(asid: number, start: number, end: number): void {
    const s = this.svaCurrent;
    if (s === null || s.handle === null) return;
    this.metrics.begin(Source.DRIVER);
    this.metrics.intend(s.ctx);
    this.smmuSide.svaInvalidate(s.handle, start, end, asid);
    this.metrics.end();
  }

  vmSlots(): readonly Vm[] { return this.vms; }
}

const NONE = -0x7fffffff;
/** Events between progress reports. */
const PROGRESS_EVERY = 1 << 18;
const LOCAL_VMALLE1 = newTlbiArgs(TLBI.VMALLE1);
const GUEST_VAE1 = newTlbiArgs(TLBI.VAE1);

/** Hardware parameters of one SMMU for this scenario and policy. */
function smmuParamsFor(sc: Scenario): SmmuParams {
  const s = sc.smmu;
  const d = defaultSmmuParams();
  let idr0 = d.idr0;
  idr0 = setField(idr0, IDR0.BTM, s.btm ? 1 : 0);
  idr0 = setField(idr0, IDR0.S1P, s.s1p ? 1 : 0);
  idr0 = setField(idr0, IDR0.S2P, s.s2p ? 1 : 0);
  idr0 = setField(idr0, IDR0.HYP, s.hyp && s.s1p && s.s2p ? 1 : 0);
  idr0 = setField(idr0, IDR0.ATS, s.ats ? 1 : 0);
  idr0 = setField(idr0, IDR0.ASID16, s.asidBits === 16 ? 1 : 0);
  idr0 = setField(idr0, IDR0.VMID16, s.vmidBits === 16 ? 1 : 0);
  const idr3 = setField(d.idr3, IDR3.RIL, s.ril ? 1 : 0);
  return {
    ...d, idr0, idr3,
    iidr: s.mmu700Erratum2812531 ? (0x487 << 20) | 0x43b : d.iidr,
    tlb: { ...s.tlb },
    microTlbEntries: s.microTlbEntries, walkCacheEntries: s.walkCacheEntries, atcEntries: s.atcEntries,
    knobs: defaultSmmuKnobs(),
  };
}
