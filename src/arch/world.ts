/**
 * Translation regimes / StreamWorlds (SMMUv3 §3.17 table "TLB tagging"; arch.md §3.2).
 * One bit each so that an invalidation scope can name several worlds at once.
 * The CPU side uses the same tags for its own TLB: an nVHE host and guests run in
 * EL1&0 (NS_EL1, tagged with VTTBR_EL2.VMID), a VHE host runs in EL2&0 (NS_EL2_E2H).
 */
export const World = {
  NS_EL1: 1,
  NS_EL2: 2,
  NS_EL2_E2H: 4,
  SECURE: 8,
  EL3: 16,
} as const;
export type WorldBit = (typeof World)[keyof typeof World];

export const WORLD_NAMES: Record<number, string> = {
  [World.NS_EL1]: 'NS-EL1',
  [World.NS_EL2]: 'NS-EL2',
  [World.NS_EL2_E2H]: 'NS-EL2-E2H',
  [World.SECURE]: 'Secure',
  [World.EL3]: 'EL3',
};

/** Worlds whose entries carry a VMID tag (only NS-EL1 and Secure with S2; arch.md §3.2). */
export const VMID_TAGGED_WORLDS = World.NS_EL1 | World.SECURE;
/** Worlds whose non-global entries carry an ASID tag. */
export const ASID_TAGGED_WORLDS = World.NS_EL1 | World.NS_EL2_E2H | World.SECURE;

/**
 * Kind of cached translation. STAGE1 = VA->PA of a stage-1-only context; STAGE2 = IPA->PA
 * of a stage-2-only context (or the S2 leg of a nested walk); NESTED = combined S1+S2 VA->PA.
 * STAGE1 and NESTED entries are both looked up by VA and alias each other when the VMID is
 * equal (SMMUv3 §3.17: S1-only and S1+S2 configs sharing a VMID must use different VMIDs).
 */
export const Stage = {
  S1: 1,
  S2: 2,
  NESTED: 4,
} as const;
export const STAGE_ALL = Stage.S1 | Stage.S2 | Stage.NESTED;
/** Entries looked up by VA (stage 1 and combined). */
export const STAGE_VA = Stage.S1 | Stage.NESTED;

export const STAGE_NAMES: Record<number, string> = {
  [Stage.S1]: 'S1',
  [Stage.S2]: 'S2',
  [Stage.NESTED]: 'S1+S2',
};

/** Page numbers are in 4 KiB units (address >> 12) throughout the model: exact in a double. */
export const PAGE_SHIFT = 12;
