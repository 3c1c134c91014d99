/**
 * `smmu->features` and `smmu->options` bits of arm-smmu-v3.h. The bit positions are those of the
 * 6.x header (they moved while the BTM/SVA series was being rebased, 2020-21); they only matter
 * for display — the model tests the names.
 *
 * No Node or DOM imports.
 */

export const FEAT = {
  TWO_LVL_STRTAB: 1 << 0,
  TWO_LVL_CDTAB: 1 << 1,
  TT_LE: 1 << 2,
  TT_BE: 1 << 3,
  PRI: 1 << 4,
  ATS: 1 << 5,
  SEV: 1 << 6,
  MSI: 1 << 7,
  COHERENCY: 1 << 8,
  TRANS_S1: 1 << 9,
  TRANS_S2: 1 << 10,
  STALLS: 1 << 11,
  HYP: 1 << 12,
  STALL_FORCE: 1 << 13,
  VAX: 1 << 14,
  RANGE_INV: 1 << 15,
  /** Never set by mainline hw_probe; set here only with the `btm` option (v7 13/24 rule). */
  BTM: 1 << 16,
  SVA: 1 << 17,
  E2H: 1 << 18,
  NESTING: 1 << 19,
} as const;
export type FeatName = keyof typeof FEAT;

export const OPT = {
  SKIP_PREFETCH: 1 << 0,
  PAGE0_REGS_ONLY: 1 << 1,
  MSIPOLL: 1 << 2,
  /** MMU-700 erratum 2812531: batches are flushed with a CMD_SYNC at 63 entries. */
  CMDQ_FORCE_SYNC: 1 << 3,
} as const;
export type OptName = keyof typeof OPT;

/** Names of the set bits, for reports. */
export function featureNames(features: number): FeatName[] {
  return (Object.keys(FEAT) as FeatName[]).filter((k) => (features & FEAT[k]) !== 0);
}
export function optionNames(options: number): OptName[] {
  return (Object.keys(OPT) as OptName[]).filter((k) => (options & OPT[k]) !== 0);
}

/** SMMU_IIDR fields and the values arm_smmu_device_iidr_probe() knows. */
export const IIDR_IMPLEMENTER_ARM = 0x43b;
export const IIDR_PRODUCTID_ARM_MMU_600 = 0x483;
export const IIDR_PRODUCTID_ARM_MMU_700 = 0x487;

export function iidrFields(iidr: number): { implementer: number; revision: number; variant: number; productId: number } {
  return {
    implementer: iidr & 0xfff,
    revision: (iidr >>> 12) & 0xf,
    variant: (iidr >>> 16) & 0xf,
    productId: (iidr >>> 20) & 0xfff,
  };
}

/** Build an IIDR value (tests, scenarios). */
export function makeIidr(productId: number, variant = 0, revision = 0, implementer = IIDR_IMPLEMENTER_ARM): number {
  return (((productId & 0xfff) << 20) | ((variant & 0xf) << 16) | ((revision & 0xf) << 12) | (implementer & 0xfff)) >>> 0;
}
