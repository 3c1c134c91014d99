/**
 * Fixture for test/kernel/integration.test.ts: the kernel model and the hardware model wired
 * together by hand (no Simulation class), the way src/sim/simulation.ts and src/sim/smmu-side.ts
 * wire them, plus the property checker.
 *
 * The property: NO TLB HIT EVER RETURNS A TRANSLATION THAT A COMPLETED INVALIDATION SHOULD HAVE
 * REMOVED. The checker is installed as every SMMU's listener; on each hit (TLB, micro-TLB or ATC)
 * it walks the configuration's current page tables in software (stage 1, stage 2, or stage 1 then
 * stage 2 for nested) and requires the page to be mapped to the cached output, and the entry to
 * have been filled for the configuration's context (no VMID/ASID aliasing).
 *
 * Comparing against the *current* tables is stricter than the property: between a page-table
 * change and the completion of its invalidation, a hit on the old translation is legal. The
 * tests therefore only issue DMA once the flow under test has completed its invalidation (DSB /
 * CMD_SYNC), so any reported hit is one a completed invalidation should have removed.
 */
import { Stage } from '../../src/arch/world.js';
import type { PageTable } from '../../src/hw/memory.js';
import { SmmuCache, defaultSmmuParams, type Smmu, type SmmuListener, type SmmuParams, type StreamConfig } from '../../src/hw/smmu/smmu.js';
import { HwSystem } from '../../src/hw/system.js';
import type { Tlb } from '../../src/hw/tlb/tlb.js';
import type { Pe } from '../../src/hw/cpu/pe.js';
import { PeCpuOps } from '../../src/kernel/cpu-ops.js';
import { Arm64AsidAllocator } from '../../src/kernel/mm/asid.js';
import { defaultTlbFlushOptions, flushTlbRange, type TlbFlushOptions } from '../../src/kernel/mm/tlbflush.js';
import { KvmVmidAllocator } from '../../src/kernel/kvm/vmid.js';
import {
  defaultKvmTlbOptions, kvmFlushVmContext, kvmTlbFlushVmidIpa, kvmUnmapRange, type KvmTlbOptions, type S2Removed,
} from '../../src/kernel/kvm/tlb.js';
import { ArmSmmuDriver, type ArmSmmuDevice, type CpuAsidPinner } from '../../src/kernel/smmu-driver/device.js';
import type { ArmSmmuDomain, SvaEra } from '../../src/kernel/smmu-driver/domain.js';
import { IdaVmidProvider, type VmidProvider } from '../../src/kernel/smmu-driver/ids.js';
import { VfioAssigner, type VmidScope } from '../../src/kernel/vfio/assign.js';

export const PAGE = 4096;
/** Guest memory starts at IPA 1 GiB (as in the simulator). */
export const GUEST_IPA = 0x40000;
/** Host SVA buffers start at VA 16 GiB. */
export const HOST_VA = 0x400000;

// ---------------------------------------------------------------------------------------------
// The checker

export type ViolationKind = 'stale' | 'alias';

export interface Violation {
  kind: ViolationKind;
  smmu: number;
  sid: number;
  ssid: number;
  page: number;
  cache: string;
  /** Output the hit returned. */
  cached: number;
  /** Output of the software walk now (-1: unmapped). */
  expected: number;
  entryCtx: number;
  cfgCtx: number;
  text: string;
}

const CACHE_NAMES: Record<number, string> = {
  [SmmuCache.TLB]: 'TLB', [SmmuCache.MICRO_TLB]: 'micro-TLB', [SmmuCache.WALK]: 'walk cache', [SmmuCache.ATC]: 'ATC',
};

/** Software walk of a resolved stream configuration: stage 1, stage 2, or stage 1 then stage 2. */
export function softwareWalk(cfg: StreamConfig, page: number): number {
  if (cfg.stage === Stage.S2) return cfg.s2 !== null ? cfg.s2.walk(page) : -1;
  const ipaOrPa = cfg.s1 !== null ? cfg.s1.walk(page) : -1;
  if (ipaOrPa < 0 || cfg.stage !== Stage.NESTED) return ipaOrPa;
  return cfg.s2 !== null ? cfg.s2.walk(ipaOrPa) : -1;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

export class StaleHitChecker implements SmmuListener {
  readonly violations: Violation[] = [];
  /** Hits checked, by cache. */
  hits = 0;
  readonly hitsByCache = new Map<string, number>();

  install(smmus: readonly Smmu[]): this {
    for (const s of smmus) s.listener = this;
    return this;
  }

  onHit(smmu: Smmu, cfg: StreamConfig, cache: number, tlb: Tlb, slot: number, page: number): void {
    this.hits++;
    const name = CACHE_NAMES[cache] ?? String(cache);
    this.hitsByCache.set(name, (this.hitsByCache.get(name) ?? 0) + 1);
    const cached = tlb.out[slot] + (page - tlb.page[slot]);
    const entryCtx = tlb.ctx[slot];
    const expected = softwareWalk(cfg, page);
    const base = {
      smmu: smmu.id, sid: cfg.sid, ssid: cfg.ssid, page, cache: name, cached, expected, entryCtx, cfgCtx: cfg.ctx,
    };
    const where = `smmu${smmu.id} sid ${hex(cfg.sid)} ssid ${cfg.ssid} page ${hex(page)} (${name} slot ${slot}, ` +
      `vmid ${tlb.vmid[slot]} asid ${tlb.asid[slot]})`;
    if (entryCtx !== cfg.ctx) {
      this.violations.push({
        ...base, kind: 'alias',
        text: `${where}: entry filled for context ${entryCtx} hit by a stream of context ${cfg.ctx}`,
      });
    }
    if (expected < 0) {
      this.violations.push({ ...base, kind: 'stale', text: `${where}: returned ${hex(cached)} but the page is unmapped` });
    } else if (expected !== cached) {
      this.violations.push({ ...base, kind: 'stale', text: `${where}: returned ${hex(cached)} but the tables now give ${hex(expected)}` });
    }
  }

  count(kind: ViolationKind): number {
    return this.violations.filter((v) => v.kind === kind).length;
  }

  /** Violation texts (what a failing expectation prints). */
  get report(): string[] { return this.violations.map((v) => `${v.kind}: ${v.text}`); }

  clear(): void {
    this.violations.length = 0;
    this.hits = 0;
    this.hitsByCache.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// The rig

export interface RigOptions {
  /** Driver option `btm` (the v7 13/24 patch): CR2.PTM cleared when IDR0.BTM. false = mainline. */
  btm: boolean;
  cpus?: number;
  vhe?: boolean;
  smmus?: number;
  svaEra?: SvaEra;
  /** KVM VMID width (small widths force rollovers). */
  kvmVmidBits?: number;
  /** Pinned-VMID RFC extension of the KVM allocator (pinnedWriteback on). */
  kvmPinning?: boolean;
  cpuAsidBits?: number;
  /** KPTI: ASID pairs, every user TLBI doubled for ASID|1, SVA shares the user ASID. */
  kpti?: boolean;
  /** FEAT_TLBIRANGE on the CPUs: range TLBIs for host flushes and KVM (deferred unmap flushes). */
  tlbiRange?: boolean;
  smmuParams?: Partial<SmmuParams>;
  vmidScope?: VmidScope;
  /** SMMU stage-2 VMIDs: the SMMU's IDA (default) or the VM's pinned KVM VMID. */
  smmuVmid?: 'ida' | 'kvm-pinned';
  /** Override arm64_mm_context_get/put (fault injection: sharing without pinning). */
  pinner?: (rig: Rig) => CpuAsidPinner;
}

export interface SvaProc {
  mm: number;
  table: PageTable;
  ctx: number;
  cpu: number;
  smmu: number;
  sid: number;
  ssid: number;
  dev: ArmSmmuDevice;
  domain: ArmSmmuDomain;
  flushOpts: TlbFlushOptions;
}

/**
 * One system booted by the SMMU driver, with KVM (VMID allocator + stage-2 TLB maintenance), the
 * CPU ASID allocator and VFIO, driven through PeCpuOps on the PEs.
 */
export class Rig {
  readonly sys: HwSystem;
  readonly driver = new ArmSmmuDriver();
  readonly devs: ArmSmmuDevice[];
  readonly kvm: KvmVmidAllocator;
  readonly asids: Arm64AsidAllocator;
  readonly ops: PeCpuOps[];
  readonly checker = new StaleHitChecker();
  readonly vfio: VfioAssigner;
  readonly kvmOpts: KvmTlbOptions;
  readonly vhe: boolean;
  /** __kvm_flush_vm_context calls (ALLE1IS) issued at KVM VMID rollovers. */
  kvmVmFlushes = 0;
  /** CPU the next KVM rollover flush is issued from (the vCPU-loading CPU). */
  private kvmFlushCpu = 0;
  /** VM running on each CPU (0 = host). */
  readonly running: number[];
  private nextCtx = 1;
  private nextMm = 1;
  readonly vmS2 = new Map<number, PageTable>();

  constructor(readonly o: RigOptions) {
    const cpus = o.cpus ?? 4;
    this.vhe = o.vhe ?? false;
    const params = defaultSmmuParams(o.smmuParams ?? {});
    this.sys = new HwSystem({ cpus, vhe: this.vhe, smmus: Array.from({ length: o.smmus ?? 2 }, () => ({ ...params })) });
    this.ops = this.sys.pes.map((pe) => new PeCpuOps(pe));
    this.running = new Array<number>(cpus).fill(0);
    this.kvm = new KvmVmidAllocator({
      bits: o.kvmVmidBits ?? 8, cpus, pinning: o.kvmPinning ?? o.smmuVmid === 'kvm-pinned', pinnedWriteback: true,
      hooks: {
        // flush_context() → __kvm_flush_vm_context: DSB ISHST; TLBI ALLE1IS; DSB ISH.
        onVmFlush: () => { this.kvmVmFlushes++; kvmFlushVmContext(this.ops[this.kvmFlushCpu]); },
      },
    });
    this.asids = new Arm64AsidAllocator({ bits: o.cpuAsidBits ?? 16, cpus, kpti: o.kpti ?? false });
    this.kvmOpts = defaultKvmTlbOptions({ tlbiRange: o.tlbiRange ?? false });
    const pinner = o.pinner?.(this) ?? this.asids;
    this.devs = this.sys.smmus.map((s) => this.driver.probe(s, {
      vhe: this.vhe, btm: o.btm, svaEra: o.svaEra ?? (o.btm ? 'shared' : 'private'), cpuAsidPinner: pinner,
      cpuAsidBits: o.cpuAsidBits ?? 16,
    }));
    if (o.smmuVmid === 'kvm-pinned') for (const d of this.devs) d.vmidProvider = this.pinnedVmidProvider(d);
    this.vfio = new VfioAssigner({ smmus: this.devs, vmidScope: o.vmidScope ?? 'device' });
    this.checker.install(this.sys.smmus);
  }

  /** The VM's pinned KVM VMID (pinned-VMID RFC), as the btm-kvm-pinned policy provides it. */
  private pinnedVmidProvider(dev: ArmSmmuDevice): VmidProvider<ArmSmmuDomain, ArmSmmuDevice> {
    return {
      alloc: (_d, ctx) => {
        if (ctx.vmId === undefined) return -1;
        const v = this.kvm.pinnedVmidGet(ctx.vmId);
        if (v <= 0 || v >= 2 ** dev.vmidBits || (ctx.want !== undefined && ctx.want !== v)) {
          if (v > 0) this.kvm.pinnedVmidPut(ctx.vmId);
          return -1;
        }
        return v;
      },
      free: (d) => { if (d.vmId !== undefined) this.kvm.pinnedVmidPut(d.vmId); },
    };
  }

  newCtx(): number { return this.nextCtx++; }

  get pes(): Pe[] { return this.sys.pes; }

  // ------------------------------------------------------------------ VMs and vCPUs

  /** A VM's KVM stage-2 table: [GUEST_IPA, +pages) → a PA window per VM. */
  newVm(vm: number, pages = 64): PageTable {
    const t = this.sys.memory.newTable(this.newCtx(), `vm${vm} KVM stage 2`);
    t.mapLinear(GUEST_IPA, pages, 0x100000 + vm * 0x1000);
    this.vmS2.set(vm, t);
    return t;
  }

  /** A private SMMU stage-2 table for the VM (the btm-2020 / ptm policies): a copy of KVM's map. */
  privateS2(vm: number): PageTable {
    const k = this.vmS2.get(vm)!;
    const t = this.sys.memory.newTable(this.newCtx(), `vm${vm} SMMU stage 2`);
    t.mapLinear(k.linearStart, k.linearCount, k.linearOut);
    return t;
  }

  /** A guest stage-1 I/O table for a nested device: IOVA [GUEST_IPA, +pages) → IPA, offset by `shift`. */
  guestS1(vm: number, shift = 0): PageTable {
    const k = this.vmS2.get(vm)!;
    const t = this.sys.memory.newTable(this.newCtx(), `vm${vm} guest S1`);
    t.mapLinear(k.linearStart, k.linearCount - shift, k.linearStart + shift);
    return t;
  }

  /** vcpu_load: kvm_arm_vmid_update, then the guest regime KVM programs (VTTBR.VMID, FB, EL1). */
  vcpuLoad(cpu: number, vm: number): number {
    if (this.running[cpu] !== 0) this.vcpuPut(cpu);
    this.kvmFlushCpu = cpu;
    const r = this.kvm.kvmArmVmidUpdate(cpu, vm);
    this.kvmFlushCpu = 0;
    const pe = this.pes[cpu];
    pe.regime.vmid = r.hw;
    pe.regime.el = 1;
    pe.regime.tge = false;
    pe.hcrFb = true;
    this.running[cpu] = vm;
    return r.hw;
  }

  /** vcpu_put: kvm_arm_vmid_clear_active, back to the host regime. */
  vcpuPut(cpu: number): void {
    if (this.running[cpu] === 0) return;
    this.kvm.kvmArmVmidClearActive(cpu);
    this.running[cpu] = 0;
    this.hostRegime(cpu);
  }

  hostRegime(cpu: number): void {
    const r = this.pes[cpu].regime;
    r.vmid = 0;
    r.el = this.vhe ? 2 : 1;
    r.e2h = this.vhe;
    r.tge = this.vhe;
    this.pes[cpu].hcrFb = false;
  }

  /** The CPU KVM runs its maintenance on: one running the VM, else `fallback`. */
  kvmCpu(vm: number, fallback = 0): number {
    const c = this.running.indexOf(vm);
    return c >= 0 ? c : fallback;
  }

  /**
   * KVM stage-2 unmap (MMU notifier, kvm_unmap_gfn_range): clear the VM's KVM stage-2 entries,
   * then the hyp TLB maintenance with the VM's VMID (`kvmUnmapRange`: one
   * __kvm_tlb_flush_vmid_ipa per 4K leaf). Returns the VMID used (0: never ran, nothing issued).
   */
  kvmUnmap(vm: number, startPage: number, pages: number, cpu = this.kvmCpu(vm)): number {
    const t = this.vmS2.get(vm)!;
    t.unmapRange(startPage, pages);
    const vmid = this.kvm.hwVmid(vm);
    if (vmid === 0) return 0;
    const removed: S2Removed[] = [];
    for (let p = startPage; p < startPage + pages; p++) removed.push({ ipaPage: p, level: 3 });
    kvmUnmapRange(this.ops[cpu], this.pes[cpu], vmid, startPage, pages, removed, this.kvmOpts);
    return vmid;
  }

  /** One stage-2 page: unmap + __kvm_tlb_flush_vmid_ipa (IPAS2E1IS; VMALLE1IS) directly. */
  kvmUnmapPage(vm: number, page: number, cpu = this.kvmCpu(vm)): number {
    const t = this.vmS2.get(vm)!;
    t.unmap(page);
    const vmid = this.kvm.hwVmid(vm);
    if (vmid !== 0) kvmTlbFlushVmidIpa(this.ops[cpu], this.pes[cpu], vmid, page * PAGE, 3, this.kvmOpts);
    return vmid;
  }

  /** The SMMU driver changes its own stage-2 table: unmap, then tlbInvRangeDomain (iotlb_sync). */
  driverUnmap(domain: ArmSmmuDomain, startPage: number, pages: number): void {
    const s2 = domain.kind === 'nested' ? domain.parent! : domain;
    s2.table!.unmapRange(startPage, pages);
    s2.smmu.tlbInvRangeDomain(s2, startPage * PAGE, pages * PAGE, PAGE, true);
  }

  // ------------------------------------------------------------------ host processes and SVA

  newMm(): number { return this.nextMm++; }

  /** Context switch to `mm` on `cpu` (vCPU put first): check_and_switch_context. Returns the ASID. */
  switchTo(cpu: number, mm: number): number {
    this.vcpuPut(cpu);
    this.hostRegime(cpu);
    const r = this.asids.checkAndSwitchContext(cpu, mm);
    this.pes[cpu].asid = r.asid;
    return r.asid;
  }

  /**
   * A host process on `cpu`, its buffers [HOST_VA, +pages) bound to (sid, ssid) of SMMU `smmu`
   * (allocSvaDomain + attach: era 'shared' pins the CPU ASID through the cpuAsidPinner).
   */
  bindSva(smmu: number, sid: number, cpu: number, o: { pages?: number; ssid?: number; ats?: boolean; mm?: number } = {}): SvaProc {
    const { pages = 64, ssid = 1, ats = false } = o;
    const mm = o.mm ?? this.newMm();
    const ctx = this.newCtx();
    const table = this.sys.memory.newTable(ctx, `mm${mm}`);
    table.mapLinear(HOST_VA, pages, 0x4000000 + mm * 0x1000);
    this.switchTo(cpu, mm); // the process runs before it binds
    const dev = this.devs[smmu];
    const domain = dev.allocSvaDomain(mm, table);
    dev.attach(domain, sid, { ssid, ssidBits: 4, ats });
    const p: SvaProc = {
      mm, table, ctx, cpu, smmu, sid, ssid, dev, domain,
      flushOpts: defaultTlbFlushOptions({
        kpti: this.o.kpti ?? false, tlbiRange: this.o.tlbiRange ?? false,
        // mmu_notifier_arch_invalidate_secondary_tlbs → arm_smmu_mm_arch_invalidate_secondary_tlbs
        notifier: (_asid, start, end) => dev.svaInvalidateSecondaryTlbs(domain, start, end),
      }),
    };
    return p;
  }

  /** munmap of [start, start+pages) by the process on its CPU: PTEs cleared, then flush_tlb_range. */
  munmap(p: SvaProc, startPage: number, pages: number): number {
    p.table.unmapRange(startPage, pages);
    const asid = this.switchTo(p.cpu, p.mm);
    flushTlbRange(this.ops[p.cpu], asid, startPage * PAGE, (startPage + pages) * PAGE, PAGE, false, undefined, p.flushOpts);
    return asid;
  }

  // ------------------------------------------------------------------ DMA

  dma(smmu: number, sid: number, ssid: number, page: number): number {
    return this.sys.smmus[smmu].translate(sid, ssid, page);
  }

  /** An IDA provider that honours `want` even when that VMID is taken (fault injection). */
  static dupVmidProvider(dev: ArmSmmuDevice): VmidProvider<ArmSmmuDomain, ArmSmmuDevice> {
    const ida = new IdaVmidProvider<ArmSmmuDomain, ArmSmmuDevice>(dev.vmidMap, dev.vmidBits);
    return {
      alloc: (d, ctx) => (ctx.want !== undefined ? ctx.want : ida.alloc(d, ctx)),
      free: (d, vmid) => ida.free(d, vmid),
    };
  }
}
