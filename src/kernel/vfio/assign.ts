/**
 * Device assignment (VFIO type1 / iommufd) onto the SMMUv3 driver model: which stage-2 domain —
 * and so which SMMU VMID — an assigned device gets, by `vmidScope` (DESIGN.md §4):
 *
 *  - 'device': one S2 domain + VMID per assigned device (QEMU VFIO as discussed in 2020: "one
 *    VMID per domain/assigned device");
 *  - 'vm':     one S2 domain per VM (the shared iommufd S2 parent HWPT): one VMID for the whole VM.
 *              When the VM's devices sit behind several SMMUs the same VMID number is requested on
 *              each of them (a mainline S2 domain is tied to one SMMU, so this is one domain per
 *              SMMU sharing the VM's table and VMID — the model's reading of "per VM");
 *  - 'vsmmu':  one VMID per vSMMU, i.e. per (VM, physical SMMU) — the 2026 series moving the VMID
 *              to the vSMMU object (a VM with `smmusPerVm` SMMUs has that many vSMMUs).
 *
 * Optionally nested (v6.13 iommufd): the S2 domain is a nesting parent and the device gets a
 * nested STE carrying the guest's CD table and the parent's VMID.
 *
 * The stage-2 PageTable is a parameter: the VM's KVM table (shared) or a private copy — the policy
 * decides. A device leaving frees its S2 domain when no other device uses it (the driver issues
 * TLBI_S12_VMALL + SYNC and releases the VMID). Allocation failures propagate as DriverError
 * (ENOSPC for VMIDs) and are counted.
 *
 * No Node or DOM imports.
 */
import type { PageTable } from '../../hw/memory.js';
import type { ArmSmmuDevice } from '../smmu-driver/device.js';
import type { ArmSmmuDomain, NestedAttachOptions } from '../smmu-driver/domain.js';
import { DriverError, isDriverError } from '../smmu-driver/ids.js';

export type VmidScope = 'device' | 'vm' | 'vsmmu';

export interface VfioAssignerOptions {
  /** The host's SMMUs (probed devices, all from one ArmSmmuDriver). */
  smmus: ArmSmmuDevice[];
  vmidScope: VmidScope;
  /**
   * Physical SMMUs (= vSMMUs) a VM's devices are spread over: the VM's k-th assigned device goes
   * behind smmus[k mod smmusPerVm] unless the caller names the SMMU. Default 1.
   */
  smmusPerVm?: number;
}

export interface AssignOptions {
  /** The stage-2 table the VM's device domains use (KVM's, shared, or a private one). */
  s2Table: PageTable;
  /** Index in `smmus` of the SMMU the device is behind (default: the placement rule). */
  smmu?: number;
  /** The device supports ATS. */
  ats?: boolean;
  /** Nested translation: the guest's CD table etc. (the S2 domain becomes a nesting parent). */
  nested?: NestedAttachOptions;
}

/** One VMID owner: an S2 domain (per SMMU) shared by the devices of its scope. */
export interface S2Parent {
  readonly key: string;
  readonly vmId: number;
  readonly scope: VmidScope;
  /** The VMID (the same number on every SMMU of the parent). */
  readonly vmid: number;
  readonly nestParent: boolean;
  readonly table: PageTable;
  /** Domain per SMMU index. */
  readonly domains: Map<number, ArmSmmuDomain>;
  /** Devices using each SMMU's domain. */
  readonly users: Map<number, number>;
}

export interface Assignment {
  readonly vmId: number;
  readonly sid: number;
  readonly smmuIndex: number;
  readonly device: ArmSmmuDevice;
  /** The stage-2 domain (nesting parent when nested). */
  readonly domain: ArmSmmuDomain;
  /** The nested domain, when nested. */
  readonly nested: ArmSmmuDomain | null;
  readonly vmid: number;
  readonly parent: S2Parent;
}

/** Counter indexes of VfioAssigner.stats. */
export const VfioStat = {
  ASSIGNED: 0,
  DETACHED: 1,
  DOMAINS_CREATED: 2,
  DOMAINS_FREED: 3,
  /** Assignment failed with ENOSPC (no VMID). */
  VMID_FAILURES: 4,
  /** Assignment failed with another DriverError. */
  OTHER_FAILURES: 5,
} as const;

export class VfioAssigner {
  readonly smmus: ArmSmmuDevice[];
  readonly vmidScope: VmidScope;
  readonly smmusPerVm: number;
  readonly stats = new Float64Array(6);
  private readonly parents = new Map<string, S2Parent>();
  private readonly byDevice = new Map<string, Assignment>();
  private readonly placed = new Map<number, number>();
  private deviceSeq = 0;

  constructor(opts: VfioAssignerOptions) {
    if (opts.smmus.length === 0) throw new RangeError('VfioAssigner needs at least one SMMU');
    this.smmus = opts.smmus;
    this.vmidScope = opts.vmidScope;
    this.smmusPerVm = Math.max(1, Math.min(opts.smmusPerVm ?? 1, opts.smmus.length));
  }

  private static devKey(smmuIndex: number, sid: number): string { return `${smmuIndex}:${sid}`; }

  /**
   * Assign StreamID `sid` to VM `vmId`: find or create the S2 domain of the scope, attach the
   * device (S2 STE, or a nested STE under the nesting parent). Throws DriverError (ENOSPC when no
   * VMID is left; the attempt leaves nothing allocated).
   */
  assignDevice(vmId: number, sid: number, opts: AssignOptions): Assignment {
    const k = this.placed.get(vmId) ?? 0;
    const smmuIndex = opts.smmu ?? k % this.smmusPerVm;
    const device = this.smmus[smmuIndex];
    if (device === undefined) throw new RangeError(`no SMMU ${smmuIndex}`);
    const dkey = VfioAssigner.devKey(smmuIndex, sid);
    if (this.byDevice.has(dkey)) throw new DriverError('EBUSY', `sid ${sid} on smmu ${smmuIndex} is already assigned`);
    const nested = opts.nested !== undefined;
    const key = this.vmidScope === 'device' ? `dev:${vmId}:${++this.deviceSeq}`
      : this.vmidScope === 'vm' ? `vm:${vmId}` : `vsmmu:${vmId}:${smmuIndex}`;

    let parent = this.parents.get(key);
    let createdParent = false;
    let createdDomain = false;
    let domain: ArmSmmuDomain | undefined;
    try {
      if (parent !== undefined && nested && !parent.nestParent) {
        throw new DriverError('EINVAL', `VM ${vmId}: its S2 domain was created without NEST_PARENT`);
      }
      domain = parent?.domains.get(smmuIndex);
      if (domain === undefined) {
        const nestParent = parent?.nestParent ?? (nested || this.vmidScope === 'vsmmu');
        domain = device.allocS2Domain({
          table: parent?.table ?? opts.s2Table, nestParent, vmId,
          wantVmid: parent?.vmid,
        });
        createdDomain = true;
        this.stats[VfioStat.DOMAINS_CREATED]++;
        if (parent === undefined) {
          parent = {
            key, vmId, scope: this.vmidScope, vmid: domain.vmid, nestParent, table: opts.s2Table,
            domains: new Map(), users: new Map(),
          };
          createdParent = true;
        }
        parent.domains.set(smmuIndex, domain);
        parent.users.set(smmuIndex, 0);
        if (createdParent) this.parents.set(key, parent);
      }
      let nd: ArmSmmuDomain | null = null;
      if (opts.nested !== undefined) {
        nd = device.attachNested(domain, sid, { ...opts.nested, ats: opts.nested.ats ?? opts.ats });
      } else {
        device.attach(domain, sid, { ats: opts.ats });
      }
      parent!.users.set(smmuIndex, (parent!.users.get(smmuIndex) ?? 0) + 1);
      const a: Assignment = { vmId, sid, smmuIndex, device, domain, nested: nd, vmid: domain.vmid, parent: parent! };
      this.byDevice.set(dkey, a);
      this.placed.set(vmId, k + 1);
      this.stats[VfioStat.ASSIGNED]++;
      return a;
    } catch (e) {
      if (createdDomain && domain !== undefined && domain.devices.length === 0) {
        device.freeDomain(domain);
        this.stats[VfioStat.DOMAINS_FREED]++;
        parent?.domains.delete(smmuIndex);
        parent?.users.delete(smmuIndex);
        if (createdParent || (parent !== undefined && parent.domains.size === 0)) this.parents.delete(key);
      }
      if (isDriverError(e, 'ENOSPC')) this.stats[VfioStat.VMID_FAILURES]++;
      else if (isDriverError(e)) this.stats[VfioStat.OTHER_FAILURES]++;
      throw e;
    }
  }

  /**
   * Detach the device (abort STE, ATS off), free its nested domain, and free the S2 domain when
   * its last device left (TLBI_S12_VMALL + SYNC, VMID released).
   */
  detachDevice(vmId: number, sid: number, smmuIndex?: number): void {
    const a = this.find(vmId, sid, smmuIndex);
    if (a === undefined) throw new DriverError('ENOENT', `sid ${sid} is not assigned to VM ${vmId}`);
    a.device.detach(sid);
    if (a.nested !== null) a.device.freeDomain(a.nested);
    this.byDevice.delete(VfioAssigner.devKey(a.smmuIndex, sid));
    const p = a.parent;
    const users = (p.users.get(a.smmuIndex) ?? 1) - 1;
    p.users.set(a.smmuIndex, users);
    if (users === 0) {
      a.device.freeDomain(a.domain);
      this.stats[VfioStat.DOMAINS_FREED]++;
      p.domains.delete(a.smmuIndex);
      p.users.delete(a.smmuIndex);
      if (p.domains.size === 0) this.parents.delete(p.key);
    }
    this.stats[VfioStat.DETACHED]++;
  }

  /** Detach every device of the VM. */
  destroyVm(vmId: number): void {
    for (const a of [...this.byDevice.values()]) if (a.vmId === vmId) this.detachDevice(vmId, a.sid, a.smmuIndex);
    this.placed.delete(vmId);
  }

  find(vmId: number, sid: number, smmuIndex?: number): Assignment | undefined {
    if (smmuIndex !== undefined) {
      const a = this.byDevice.get(VfioAssigner.devKey(smmuIndex, sid));
      return a !== undefined && a.vmId === vmId ? a : undefined;
    }
    for (const a of this.byDevice.values()) if (a.vmId === vmId && a.sid === sid) return a;
    return undefined;
  }

  /** The VM's VMID owners (one per S2 parent: N / 1 / smmusPerVm for device / vm / vsmmu). */
  parentsOf(vmId: number): S2Parent[] {
    return [...this.parents.values()].filter((p) => p.vmId === vmId);
  }

  /** The VMIDs the VM's devices use, one per VMID owner (numbers may repeat across SMMUs). */
  vmidsOf(vmId: number): number[] {
    return this.parentsOf(vmId).map((p) => p.vmid);
  }

  assignmentsOf(vmId: number): Assignment[] {
    return [...this.byDevice.values()].filter((a) => a.vmId === vmId);
  }

  get assignments(): Assignment[] { return [...this.byDevice.values()]; }
}
