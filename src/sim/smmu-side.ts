import { tableBase, type PageTable } from '../hw/memory.js';
import { FaultHook, type FaultHooks } from '../hw/fault-hooks.js';
import { atcInvDomain, tlbInvRange } from '../kernel/smmu-driver/invalidate.js';
import { resetCmdqEnt } from '../kernel/smmu-driver/cmdq-batch.js';
import { OP } from '../arch/commands.js';
import { newCd, type Cd } from '../hw/smmu/structures.js';
import { ArmSmmuDriver, type ArmSmmuDevice } from '../kernel/smmu-driver/device.js';
import type { ArmSmmuDomain } from '../kernel/smmu-driver/domain.js';
import { FEAT } from '../kernel/smmu-driver/features.js';
import { IdaVmidProvider, isDriverError, type VmidProvider, type VmidAllocContext } from '../kernel/smmu-driver/ids.js';
import type { CpuAsidPinner } from '../kernel/smmu-driver/sva.js';
import { VfioAssigner, type Assignment } from '../kernel/vfio/assign.js';
import type { KvmVmidAllocatorLike, KvmVmidAllocator } from '../kernel/kvm/vmid.js';
import type { PolicyConfig } from '../policy/policies.js';
import type { Scenario } from '../workload/schema.js';
import { CtxKind } from './contexts.js';
import { Source } from './metrics.js';
import type { Simulation } from './simulation.js';

/** An attached endpoint as the workload sees it: where its DMA goes and what it is filled for. */
export interface DeviceHandle {
  smmu: number;
  sid: number;
  ssid: number;
  /** Context its TLB entries are filled for. */
  ctx: number;
  /** Its translations depend on KVM's stage 2 of its VM (shared tables): KVM flushes intend it. */
  dependsOnVmS2: boolean;
  vmSlot: number;
  kvmId: number;
  assignment: Assignment | null;
  sva: ArmSmmuDomain | null;
  /** The page tables its translations read: stage 1 (guest or mm) first, then stage 2. */
  tables: PageTable[];
  /** Nested: the ASID of the guest's context descriptor (the guest's SVA/DMA context); else -1. */
  guestAsid?: number;
}

/**
 * The SMMU side of the kernel model for one run: the Linux driver (one ArmSmmuDevice per SMMU),
 * VFIO/iommufd assignment, SVA binding, configured by the policy (BTM on/off, VMID source, SVA
 * era, stage-2 tables, the hypothetical stage-2 ASET).
 */
export class SmmuSide {
  readonly driver = new ArmSmmuDriver();
  readonly devices: ArmSmmuDevice[] = [];
  readonly assigner: VfioAssigner;
  vmidAllocFailures = 0;
  /** Fault-injection hooks (Simulation wires them); null in normal runs. */
  faults: FaultHooks | null = null;
  asidPins = 0;
  asidPinFailures = 0;
  private pinned = 0;
  private pinnedPeak = 0;
  private pinFailures = 0;
  /** Private stage-2 table per (vm slot, kvm id) for vmidScope vm/vsmmu. */
  private readonly privateTables = new Map<number, PageTable>();
  private readonly handlesByVm = new Map<number, DeviceHandle[]>();
  private readonly pinnedDomains = new Set<ArmSmmuDomain>();

  constructor(private readonly sim: Simulation, private readonly sc: Scenario, private readonly policy: PolicyConfig) {
    const era = policy.svaEra === 'scenario' ? sc.kernel.svaEra : policy.svaEra;
    const pinner = this.countingPinner();
    for (const smmu of sim.hw.smmus) {
      const bits = sc.smmu.vmidBits;
      const max = 2 ** bits - 1;
      const dev = this.driver.probe(smmu, {
        vhe: sc.cpu.vhe, btm: policy.btm, svaEra: era, cpuAsidPinner: pinner,
        cpuAsidBits: sc.cpu.asidBits,
        vmidRange: [Math.min(policy.smmuVmidMin, max), max],
      });
      if (policy.smmuVmid === 'kvm-pinned') dev.vmidProvider = this.pinnedProvider(dev);
      this.devices.push(dev);
    }
    this.assigner = new VfioAssigner({
      smmus: this.devices,
      // A pinned KVM VMID belongs to the VM: one SMMU VMID per VM whatever the scope asks, else
      // two S2 domains with different private tables would alias under one VMID.
      vmidScope: policy.smmuVmid === 'kvm-pinned' ? 'vm' : sc.policyOptions.vmidScope,
      smmusPerVm: sc.smmu.count,
    });
  }

  /** The CPU ASID allocator behind arm64_mm_context_get/put, counting pins and failures. */
  private countingPinner(): CpuAsidPinner {
    return {
      contextGet: (mm: number) => {
        // Fault sva-asid-unpinned: the SMMU takes the mm's current CPU ASID without
        // arm64_mm_context_get's pin (the pinning that v5.10 added for SVA), so a CPU ASID
        // rollover moves the mm to another ASID — and may hand this one to another mm — while the
        // CD keeps it. Activations are counted where the ASIDs diverge (svaInvalidate).
        if (this.faults !== null && this.faults.has(FaultHook.SVA_ASID_UNPINNED)) {
          const cur = this.sim.asids.asidOf(mm);
          if (cur !== 0) { this.asidPins++; return this.sc.cpu.kpti ? cur | 1 : cur; }
        }
        const a = this.sim.asids.contextGet(mm);
        if (a === 0) this.asidPinFailures++; else this.asidPins++;
        return a;
      },
      contextPut: (mm: number) => {
        if (this.faults !== null && this.faults.has(FaultHook.SVA_ASID_UNPINNED)) return; // never pinned
        this.sim.asids.contextPut(mm);
      },
    };
  }

  /**
   * btm-kvm-pinned: the stage-2 domain takes its VM's KVM VMID, pinned so rollover does not
   * recycle it (pinned-VMID RFC). When the pin fails (cap 2^bits - CPUs - 2) or the VMID does not
   * fit the SMMU, the domain falls back to the SMMU's own IDA — and may collide again.
   */
  private pinnedProvider(dev: ArmSmmuDevice): VmidProvider<ArmSmmuDomain, ArmSmmuDevice> {
    const ida = new IdaVmidProvider<ArmSmmuDomain, ArmSmmuDevice>(dev.vmidMap, dev.vmidBits);
    const kvm = this.sim.kvm as KvmVmidAllocator;
    return {
      alloc: (domain: ArmSmmuDomain, ctx: VmidAllocContext<ArmSmmuDomain, ArmSmmuDevice>) => {
        const vm = ctx.vmId;
        if (vm !== undefined && typeof kvm.pinnedVmidGet === 'function') {
          const v = kvm.pinnedVmidGet(vm);
          // Both sources share this SMMU's VMID space: a pinned VMID is marked in the IDA so that a
          // fallback allocation cannot hand it to another domain, and a pin whose VMID a fallback
          // domain already holds cannot be used. Fix (found by the oracle, vmid-aliasing): the
          // fallback IDA ignored pinned VMIDs, so a VM whose pin was refused at the cap could get
          // another VM's pinned VMID — two stage-2 domains with different tables under one VMID.
          if (v > 0 && v < 2 ** dev.vmidBits && (ctx.want === undefined || ctx.want === v) && dev.vmidMap.allocRange(v, v) === v) {
            this.pinnedDomains.add(domain);
            this.pinned++;
            if (this.pinned > this.pinnedPeak) this.pinnedPeak = this.pinned;
            return v;
          }
          if (v > 0) kvm.pinnedVmidPut(vm);
          this.pinFailures++;
          if (this.sim.firstExhaustionNs < 0) this.sim.firstExhaustionNs = this.sim.now;
        }
        return ida.alloc(domain, { ...ctx, want: undefined });
      },
      free: (domain: ArmSmmuDomain, vmid: number) => {
        if (this.pinnedDomains.delete(domain)) {
          this.pinned--;
          dev.vmidMap.free(vmid);
          if (domain.vmId !== undefined) kvm.pinnedVmidPut(domain.vmId);
        } else {
          ida.free(domain, vmid);
        }
      },
    };
  }

  pinStats(): { pinned: number; pinnedPeak: number; pinFailures: number } {
    return { pinned: this.pinned, pinnedPeak: this.pinnedPeak, pinFailures: this.pinFailures };
  }

  /** Commands and CMD_SYNCs the driver issued, summed over SMMUs. */
  commandCounters(): { total: number; syncs: number; byOpcode: Float64Array } {
    const by = new Float64Array(256);
    for (const d of this.devices) {
      const c = d.cmdq.commandsByOpcode;
      for (let i = 0; i < 256; i++) by[i] += c[i];
    }
    let total = 0;
    for (let i = 0; i < 256; i++) total += by[i];
    return { total, syncs: by[0x46], byOpcode: by };
  }

  /** A stage-2 table for the VM's assigned devices: KVM's own (shared) or a private copy. */
  private s2TableFor(vmSlot: number, kvmId: number, vmS2: PageTable, sid: number): { table: PageTable; shared: boolean } {
    if (this.policy.s2Tables === 'shared') return { table: vmS2, shared: true };
    const scope = this.assigner.vmidScope;
    if (scope !== 'device') {
      const t = this.privateTables.get(kvmId);
      if (t !== undefined) return { table: t, shared: false };
    }
    const who = `vm${vmSlot}#${kvmId}${scope === 'device' ? ` sid ${hexId(sid)}` : ''}`;
    const ctx = this.sim.ctxs.add(CtxKind.SMMU_S2, vmSlot, `${who} SMMU S2`);
    const t = this.sim.hw.memory.newTable(ctx, `${who} SMMU stage 2`);
    t.mapLinear(vmS2.linearStart, vmS2.linearCount, vmS2.linearOut);
    if (scope !== 'device') this.privateTables.set(kvmId, t);
    return { table: t, shared: false };
  }

  /**
   * Assign a VF to the VM (VFIO / iommufd): an S2 domain per the scope, nested under a guest CD
   * table if the workload is nested. Returns null when no VMID could be had (counted).
   */
  assign(vmSlot: number, kvmId: number, vmS2: PageTable, smmu: number, sid: number, _vmCtx: number): DeviceHandle | null {
    const { table, shared } = this.s2TableFor(vmSlot, kvmId, vmS2, sid);
    const nested = this.sc.workload.nested;
    let guestCds: Cd[] | undefined;
    let guestCtx = -1;
    let guestTable: PageTable | null = null;
    let guestAsid = -1;
    if (nested) {
      // The guest's own DMA domain for this device: a stage-1 table IOVA -> IPA (linear into its
      // memory), ASID from the guest driver's allocator, ASET=1 as Linux writes private CDs.
      guestCtx = this.sim.ctxs.add(CtxKind.NESTED_S1, vmSlot, `vm${vmSlot}#${kvmId} guest S1 sid ${hexId(sid)}`);
      const g = this.sim.hw.memory.newTable(guestCtx, `vm${vmSlot}#${kvmId} guest stage 1 for sid ${hexId(sid)}`);
      g.mapLinear(vmS2.linearStart, vmS2.linearCount, vmS2.linearStart);
      // With guest SVA the CD is the guest process's (its mm's ASID); a guest relying on its
      // vSMMU's BTM (shared-ASID era, vSMMU BTM only with pinned KVM VMIDs) writes ASET=0 so
      // that its broadcasts match. A guest DMA domain's CD has ASET=1, as Linux writes CDs
      // without an mm.
      guestAsid = 1 + (sid & 0xff);
      const aset = this.sc.workload.guestSva.munmapPerMsPerVm > 0 && this.guestBtmPossible() ? 0 : 1;
      guestCds = [newCd({ ASID: guestAsid, ASET: aset, TTB0: tableBase(g.id) })];
      guestTable = g;
    }
    this.sim.metrics.begin(Source.DRIVER);
    let a: Assignment;
    try {
      a = this.assigner.assignDevice(kvmId, sid, {
        s2Table: table, smmu, ats: this.ats,
        ...(guestCds !== undefined ? { nested: { cds: guestCds } } : {}),
      });
    } catch (e) {
      this.sim.metrics.end();
      if (isDriverError(e, 'ENOSPC')) { this.vmidAllocFailures++; return null; }
      if (isDriverError(e)) return null;
      throw e;
    }
    this.sim.metrics.end();
    if (this.policy.s2Aset) this.setS2Aset(smmu, sid);
    const h: DeviceHandle = {
      smmu, sid, ssid: 0, ctx: nested ? guestCtx : table.ctx, dependsOnVmS2: shared && nested,
      vmSlot, kvmId, assignment: a, sva: null,
      tables: guestTable !== null ? [guestTable, a.domain.table ?? table] : [a.domain.table ?? table],
      ...(guestAsid >= 0 ? { guestAsid } : {}),
    };
    let list = this.handlesByVm.get(kvmId);
    if (list === undefined) { list = []; this.handlesByVm.set(kvmId, list); }
    list.push(h);
    return h;
  }

  /** Hypothetical hardware: the STE opts out of VMID-matching broadcasts; CFGI_STE to apply. */
  private setS2Aset(smmu: number, sid: number): void {
    const s = this.sim.hw.smmus[smmu];
    const ste = s.streamTable.get(sid);
    if (ste === undefined) return;
    ste.S2ASET_HYP = true;
    s.invalidateConfigSid(sid);
  }

  /** Detach a device: the driver frees its domain when the last user leaves (TLBI + SYNC). */
  detach(h: DeviceHandle): void {
    if (h.assignment === null) return;
    this.sim.metrics.begin(Source.DRIVER);
    for (const o of this.handlesByVm.get(h.kvmId) ?? []) this.sim.metrics.intend(o.ctx);
    this.assigner.detachDevice(h.kvmId, h.sid, h.smmu);
    this.sim.metrics.end();
    const list = this.handlesByVm.get(h.kvmId);
    if (list !== undefined) {
      const i = list.indexOf(h);
      if (i >= 0) list.splice(i, 1);
    }
  }

  /** Every page table the VM's devices translate through (deduplicated). */
  tablesOfVm(kvmId: number): PageTable[] {
    const out: PageTable[] = [];
    for (const h of this.handlesByVm.get(kvmId) ?? []) for (const t of h.tables) if (!out.includes(t)) out.push(t);
    return out;
  }

  /**
   * VM teardown: every assigned device detached (the driver frees each S2 domain with
   * TLBI_S12_VMALL + SYNC when its last device leaves). All the VM's contexts are intended.
   */
  destroyVm(kvmId: number): void {
    const list = this.handlesByVm.get(kvmId) ?? [];
    this.sim.metrics.begin(Source.DRIVER);
    for (const h of list) this.sim.metrics.intend(h.ctx);
    for (const h of list) if (h.assignment !== null) this.assigner.detachDevice(h.kvmId, h.sid, h.smmu);
    this.sim.metrics.end();
    this.handlesByVm.delete(kvmId);
    this.privateTables.delete(kvmId);
  }

  /**
   * KVM changed the VM's stage 2. With shared tables and an SMMU that does not take broadcasts,
   * the driver must invalidate the SMMU by command; otherwise nothing: private SMMU tables did not
   * change, and a BTM SMMU already saw the broadcast.
   */
  kvmStage2Changed(vmSlot: number, start: number, pages: number): void {
    if (this.policy.s2Tables !== 'shared') return;
    const list = [...this.handlesByVm.entries()].find(([, hs]) => hs.length > 0 && hs[0].vmSlot === vmSlot)?.[1];
    if (list === undefined) return;
    for (const h of list) {
      const dev = this.devices[h.smmu];
      const d = h.assignment!.domain;
      // KVM's broadcasts carry the VM's KVM VMID: they reach the domain's entries only if the
      // domain uses that VMID (a pinned one). Fix: a domain that fell back to an SMMU-private
      // VMID (pin refused at the cap) used to be skipped too, keeping stale entries of KVM's table.
      const kvmVmid = this.sim.kvm.hwVmid(h.kvmId);
      const viaBroadcast = dev.has(FEAT.BTM) && this.sim.hw.smmus[h.smmu].takesBroadcasts && !this.policy.s2Aset &&
        kvmVmid !== 0 && d.vmid === kvmVmid;
      this.sim.metrics.begin(Source.DRIVER);
      this.sim.metrics.intend(h.ctx);
      // Broadcasts never reach an ATC (arch.md §1.5): the driver still sends CMD_ATC_INV, as the
      // SVA notifier does under BTM. Fix: it used to send nothing at all.
      if (viaBroadcast) atcInvDomain(dev, d, start * 4096, pages * 4096);
      else dev.tlbInvRangeDomain(d, start * 4096, pages * 4096, 4096, true);
      this.sim.metrics.end();
    }
  }

  /**
   * Can a guest rely on broadcasts for its SVA contexts at all? The policy enables BTM and gives
   * the SMMU its VMs' pinned KVM VMIDs, and the guest kernel is of the shared-ASID SVA era
   * (v5.10-v6.10, which every btm-* policy assumes; from v6.11 arm-smmu-v3-sva always issues
   * commands, whatever BTM says).
   */
  private guestBtmPossible(): boolean {
    // Fault vsmmu-btm-unpinned: the VMM advertises BTM whatever VMID the SMMU uses.
    const unpinnedOk = this.faults !== null && this.faults.has(FaultHook.VSMMU_BTM_UNPINNED);
    return this.policy.btm && (this.policy.smmuVmid === 'kvm-pinned' || unpinnedOk) && !this.policy.s2Aset && this.policy.svaEra === 'shared';
  }

  /**
   * Does the guest's vSMMU advertise BTM for nested device `h`, and the guest rely on it? Only when the guest's broadcast
   * TLBIs, which carry the VM's KVM VMID, match the device's nested entries, which carry its
   * SMMU stage-2 VMID: BTM on and the domain using its VM's pinned KVM VMID (the vSMMU BTM series
   * pins the KVM VMID for this reason; with an SMMU-private VMID the VMM must not advertise BTM).
   */
  guestSeesBtm(h: DeviceHandle): boolean {
    if (h.assignment === null || !this.guestBtmPossible()) return false;
    const dev = this.devices[h.smmu];
    if (!dev.has(FEAT.BTM) || !this.sim.hw.smmus[h.smmu].takesBroadcasts) return false;
    if (this.pinnedDomains.has(h.assignment.domain.invalidationDomain)) return true;
    return this.faults !== null && this.faults.fire(FaultHook.VSMMU_BTM_UNPINNED);
  }

  /**
   * The guest's arm-smmu-v3 driver invalidates its stage-1 context of nested device `h` after a
   * guest munmap of [start, start+pages) (its SVA notifier, arm_smmu_tlb_inv_range_asid): the
   * guest writes CMD_TLBI_NH_VA (ASID = the CD's) + CMD_SYNC into its vSMMU's queue; the VMM
   * traps the CMDQ_PROD write and replays the batch on the physical SMMU with the stage-2
   * parent's VMID (iommufd IOMMU_HWPT_INVALIDATE, arm_vsmmu_cache_invalidate). Returns the
   * trapped batches (1).
   */
  guestVsmmuInvalidate(h: DeviceHandle, start: number, pages: number): number {
    if (h.assignment === null || h.guestAsid === undefined) return 0;
    const dev = this.devices[h.smmu];
    const parent = h.assignment.domain.invalidationDomain;
    this.sim.metrics.begin(Source.GUEST);
    this.sim.metrics.intend(h.ctx);
    const e = resetCmdqEnt(dev.cmdq.ent, OP.CMD_TLBI_NH_VA);
    e.asid = h.guestAsid;
    e.vmid = parent.vmid;
    e.leaf = 1;
    tlbInvRange(dev, e, start * 4096, pages * 4096, 4096, parent);
    this.sim.metrics.end();
    return 1;
  }

  /** Bind an mm to a device PASID (SVA). */
  bindSva(smmu: number, sid: number, mm: number, table: PageTable, ctx: number, _asids: unknown): DeviceHandle | null {
    const dev = this.devices[smmu];
    this.sim.metrics.begin(Source.DRIVER);
    try {
      const d = dev.allocSvaDomain(mm, table);
      dev.attach(d, sid, { ssid: 1, ssidBits: 4, ats: this.ats });
      this.sim.metrics.end();
      return { smmu, sid, ssid: 1, ctx, dependsOnVmS2: false, vmSlot: -1, kvmId: -1, assignment: null, sva: d, tables: [table] };
    } catch (e) {
      this.sim.metrics.end();
      if (isDriverError(e)) return null;
      throw e;
    }
  }

  /** The SVA mmu-notifier path (arch_invalidate_secondary_tlbs). */
  svaInvalidate(h: DeviceHandle, start: number, end: number, cpuAsid = -1): void {
    if (h.sva === null) return;
    // Fault sva-asid-unpinned acts here: the mm's CPU ASID is no longer the one its CD carries.
    const f = this.faults;
    if (f !== null && f.has(FaultHook.SVA_ASID_UNPINNED) && h.sva.sharedCd !== null && cpuAsid >= 0 &&
      (h.sva.effectiveAsid & ~1) !== (cpuAsid & ~1)) f.fire(FaultHook.SVA_ASID_UNPINNED);
    this.devices[h.smmu].svaInvalidateSecondaryTlbs(h.sva, start, end);
  }

  translate(h: DeviceHandle, page: number): number {
    this.sim.observer?.beforeDma(h, page);
    return this.sim.hw.smmus[h.smmu].translate(h.sid, h.ssid, page);
  }

  /** Devices attach with ATS when the SMMU has it and endpoints have ATCs (smmu.ats, atcEntries). */
  private get ats(): boolean {
    return this.sc.smmu.ats && this.sc.smmu.atcEntries > 0;
  }
}

export type { KvmVmidAllocatorLike };

const hexId = (n: number): string => `0x${n.toString(16)}`;
