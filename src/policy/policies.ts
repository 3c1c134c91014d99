import type { PolicyName, Scenario } from '../workload/schema.js';

/**
 * The coordination policies of DESIGN.md §4, as data: each one configures the SMMU driver,
 * KVM and (for btm-s2aset) hypothetical hardware. The simulation reads only these fields.
 */
export interface PolicyConfig {
  name: PolicyName;
  /** One line for tables and reports. */
  summary: string;
  /** The driver enables BTM (CR2.PTM=0) when the SMMU has IDR0.BTM. false = mainline PTM=1. */
  btm: boolean;
  /** Where SMMU stage-2 VMIDs come from. */
  smmuVmid: 'ida' | 'split' | 'kvm-pinned';
  /** SVA ASID era the policy implies ('scenario' = kernel.svaEra). */
  svaEra: 'shared' | 'private' | 'scenario';
  /** SMMU stage-2 tables: the SMMU's own, or KVM's (only btm-kvm-pinned may share). */
  s2Tables: 'private' | 'shared';
  /** Hypothetical STE-level opt-out of VMID-matching broadcasts ("ASET for VMIDs"). */
  s2Aset: boolean;
  /** KVM allocates VMIDs from [1, kvmVmidLimit) (btm-split); 0 = all. */
  kvmVmidLimit: number;
  /** SMMU VMIDs from [smmuVmidMin, 2^bits). */
  smmuVmidMin: number;
}

export const POLICY_SUMMARIES: Record<PolicyName, string> = {
  ptm: 'mainline Linux: CR2.PTM=1, every SMMU invalidation by command + CMD_SYNC',
  'btm-2020': 'v7 patch: BTM on, SMMU VMIDs from its own IDA from 1 (collide with KVM)',
  'btm-split': "Deacon's split: KVM gets [1,split), the SMMU [split,2^bits)",
  'btm-kvm-pinned': "Brucker 2020 / Kolothum RFC: the SMMU uses the VM's pinned KVM VMID",
  'btm-s2aset': 'hypothetical STE opt-out of VMID broadcasts (an ASET for VMIDs)',
};

export function policyConfig(name: PolicyName, sc: Scenario): PolicyConfig {
  const vmidSpace = 2 ** Math.min(sc.cpu.vmidBits, sc.smmu.vmidBits);
  const split = sc.policyOptions.split ?? vmidSpace / 2;
  const base: PolicyConfig = {
    name, summary: POLICY_SUMMARIES[name], btm: true, smmuVmid: 'ida', svaEra: 'shared',
    s2Tables: 'private', s2Aset: false, kvmVmidLimit: 0, smmuVmidMin: 1,
  };
  switch (name) {
    case 'ptm':
      return { ...base, btm: false, svaEra: 'scenario' };
    case 'btm-2020':
      return base;
    case 'btm-split':
      return { ...base, smmuVmid: 'split', kvmVmidLimit: split, smmuVmidMin: split };
    case 'btm-kvm-pinned':
      return { ...base, smmuVmid: 'kvm-pinned', s2Tables: sc.policyOptions.s2Tables };
    case 'btm-s2aset':
      return { ...base, s2Aset: true };
  }
}
