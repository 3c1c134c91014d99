/**
 * The IMPLEMENTATION DEFINED / "not required" points of arch.md §3.4, as configuration.
 * Defaults are the precise behaviour the architecture describes as recommended or minimal;
 * setting a knob models an implementation that over-invalidates where the spec permits it.
 */
export interface SmmuKnobs {
  /** CR2.PTM=1: "permitted but not required" to ignore broadcasts; Arm recommends ignoring (§6.3.12). */
  ptmIgnoresBroadcasts: boolean;
  /** ASET=1 entries are spared by ASID-matching broadcasts (ASIDE1IS, VA{L}E1IS...) (§3.17.1). */
  asetSparesAsidBroadcasts: boolean;
  /** VMALLE1IS / CMD_TLBI_NH_ALL also remove stage-2-only entries of the VMID (not required). */
  nhAllHitsS2: boolean;
  /** IPAS2E1IS / CMD_TLBI_S2_IPA also remove combined S1+S2 entries (not required, §4.4). */
  s2IpaHitsCombined: boolean;
  /** Broadcasts from E2H PEs also hit NS-EL2 entries and vice versa (not required, §3.17.5). */
  el2WorldsCrossMatch: boolean;
  /** An 8-bit SMMU matches broadcast VMIDs/ASIDs on their low 8 bits even if the top byte is set ("may", §3.17.4). */
  narrowIdsMatchLowBits: boolean;
  /** Leaf (L) invalidations also drop walk-cache entries (over-invalidation is permitted). */
  leafDropsWalkCache: boolean;
}

export function defaultSmmuKnobs(over: Partial<SmmuKnobs> = {}): SmmuKnobs {
  return {
    ptmIgnoresBroadcasts: true,
    asetSparesAsidBroadcasts: true,
    nhAllHitsS2: false,
    s2IpaHitsCombined: false,
    el2WorldsCrossMatch: false,
    narrowIdsMatchLowBits: false,
    leafDropsWalkCache: false,
    ...over,
  };
}
