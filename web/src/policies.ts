/**
 * The policies as the page shows them. The names mirror POLICY_NAMES in src/workload/schema.ts
 * (kept here so the page's main bundle does not pull in zod; test/web/knobs.test.ts checks they
 * agree).
 */
export const POLICIES = ['ptm', 'btm-2020', 'btm-split', 'btm-kvm-pinned', 'btm-s2aset'] as const;
export type Policy = (typeof POLICIES)[number];

export const POLICY_HELP: Record<Policy, string> = {
  ptm: 'mainline Linux today: BTM off (CR2.PTM=1), every SMMU invalidation by command + CMD_SYNC',
  'btm-2020': 'the 2020 v7 patch: BTM on, SMMU VMIDs allocated from 1 independently of KVM (they collide)',
  'btm-split': 'BTM on, VMID space split: SMMU gets the top half, KVM the bottom half',
  'btm-kvm-pinned': 'BTM on, the SMMU uses the VM\'s own KVM VMID, pinned',
  'btm-s2aset': 'hypothetical hardware: an STE opt-out of VMID-matching broadcasts',
};

export function isPolicy(s: unknown): s is Policy {
  return typeof s === 'string' && (POLICIES as readonly string[]).includes(s);
}
