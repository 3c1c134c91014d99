/**
 * The rules the oracle checks (DESIGN.md §6). Two classes, as the issue states them:
 *  - stale: a TLB hit (SMMU TLB or micro-TLB, ATC, CPU TLB) returning a translation whose
 *    page-table change software already considers invalidated — DMA (or CPU access) after free;
 *  - aliasing: a hit on (or a walk through) an entry or configuration of another context than the
 *    one software attached the requester to — VMID or ASID aliasing, cross-VM / cross-process.
 */
export const Rule = {
  STALE_TLB: 'stale-tlb',
  STALE_ATC: 'stale-atc',
  STALE_CPU_TLB: 'stale-cpu-tlb',
  VMID_ALIASING: 'vmid-aliasing',
  ASID_ALIASING: 'asid-aliasing',
  STALE_CONFIG: 'stale-config',
} as const;
export type RuleId = (typeof Rule)[keyof typeof Rule];

export type RuleClass = 'stale' | 'aliasing';

export interface RuleDef {
  id: RuleId;
  class: RuleClass;
  /** One line: what must hold. */
  text: string;
  /** The invalidation that should have discharged the obligation. */
  discharge: string;
}

export const RULES: Readonly<Record<RuleId, RuleDef>> = {
  'stale-tlb': {
    id: 'stale-tlb', class: 'stale',
    text: 'an SMMU TLB (or micro-TLB) hit must not return a translation whose page-table change software considers invalidated (DMA after free)',
    discharge: 'an SMMU TLBI command completed by CMD_SYNC, or a broadcast TLBI acted on by a BTM SMMU and completed by the DVM Sync of the issuer\'s DSB',
  },
  'stale-atc': {
    id: 'stale-atc', class: 'stale',
    text: 'an ATC (ATS) hit must not return a translation whose page-table change software considers invalidated (DMA after free)',
    discharge: 'CMD_ATC_INV (+ CMD_SYNC), issued after the SMMU TLB invalidation completed: broadcasts never reach an ATC',
  },
  'stale-cpu-tlb': {
    id: 'stale-cpu-tlb', class: 'stale',
    text: 'a CPU TLB hit must not return a translation whose page-table change software considers invalidated',
    discharge: 'a TLBI (Inner Shareable for other CPUs) completed by DSB ISH',
  },
  'vmid-aliasing': {
    id: 'vmid-aliasing', class: 'aliasing',
    text: 'a hit must return an entry filled for the requester\'s own context: another VM\'s entry with the same VMID tag (in an ATC: the same endpoint and SSID) is a cross-VM access',
    discharge: 'CMD_TLBI_S12_VMALL (or a KVM VMID-generation ALLE1IS) before a VMID is given to another context; VMIDs wide enough to be distinct',
  },
  'asid-aliasing': {
    id: 'asid-aliasing', class: 'aliasing',
    text: 'a hit must return an entry filled for the requester\'s own context: another address space\'s entry with the same VMID and ASID tags is a cross-process access',
    discharge: 'a TLBI by ASID before an ASID is given to another address space (or a pinned ASID)',
  },
  'stale-config': {
    id: 'stale-config', class: 'aliasing',
    text: 'a translation must use the configuration (STE/CD) software installed for the requester: a cached configuration of the previous owner is a cross-context walk',
    discharge: 'CMD_CFGI_STE / CMD_CFGI_CD completed by CMD_SYNC before the stream is used',
  },
};
