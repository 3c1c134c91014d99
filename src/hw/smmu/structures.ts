/**
 * Stream table entries and context descriptors (SMMUv3 §5.2, §5.4; arch.md §2.8-2.9).
 * Kept as objects with the spec's field names rather than 64-byte bit images: the driver model
 * writes fields, the SMMU reads them only when it (re)fetches configuration, so a change is seen
 * by the SMMU only after the matching CMD_CFGI_* — exactly the property that matters here.
 */

/** STE.Config [3:1] (§5.2). */
export const STE_CONFIG = {
  ABORT: 0b000,
  BYPASS: 0b100,
  S1_TRANS: 0b101,
  S2_TRANS: 0b110,
  NESTED: 0b111,
} as const;
export const STE_CONFIG_NAMES: Record<number, string> = {
  0b000: 'abort', 0b100: 'bypass', 0b101: 'S1', 0b110: 'S2', 0b111: 'nested',
};

/** STE.STRW [95:94] for the Non-secure stream table. */
export const STRW = { EL1: 0b00, EL2: 0b10 } as const;

/** STE.EATS [93:92]. */
export const EATS = { ABT: 0b00, TRANS: 0b01, S1CHK: 0b10, DPT: 0b11 } as const;

export interface Ste {
  V: boolean;
  Config: number;
  /** Pseudo PA of the CD table (IPA when stage 2 is enabled). In the model: an index into cdTables. */
  S1ContextPtr: number;
  /** log2(number of CDs); 0 = substreams off. */
  S1CDMax: number;
  /** 00 terminate, 01 bypass stage 1, 10 use CD 0 — for non-substream traffic when S1CDMax != 0. */
  S1DSS: number;
  EATS: number;
  STRW: number;
  S2VMID: number;
  /** Pseudo PA of the stage-2 table (Memory.tableAt). */
  S2TTB: number;
  /** S2TG: 0 = 4K, 1 = 64K, 2 = 16K. */
  S2TG: number;
  /**
   * NOT ARCHITECTURAL: the "ASET for VMIDs" the 2020 thread lacked (policy btm-s2aset). Entries
   * built through this STE are spared by broadcasts that match on a VMID, as CD.ASET=1 entries
   * are spared by broadcasts that match on an ASID; ALL-type broadcasts still hit them.
   */
  S2ASET_HYP?: boolean;
}

export interface Cd {
  V: boolean;
  ASID: number;
  ASET: number;
  /** Pseudo PA of the stage-1 table (Memory.tableAt). */
  TTB0: number;
  /** TG0: 0 = 4K, 1 = 64K, 2 = 16K. */
  TG0: number;
  EPD0: boolean;
}

export function newSte(over: Partial<Ste> = {}): Ste {
  return {
    V: true, Config: STE_CONFIG.ABORT, S1ContextPtr: 0, S1CDMax: 0, S1DSS: 0, EATS: EATS.ABT,
    STRW: STRW.EL1, S2VMID: 0, S2TTB: 0, S2TG: 0, ...over,
  };
}

export function newCd(over: Partial<Cd> = {}): Cd {
  return { V: true, ASID: 0, ASET: 0, TTB0: 0, TG0: 0, EPD0: false, ...over };
}

export const tg0GranuleLog2 = (tg: number): number => (tg === 1 ? 16 : tg === 2 ? 14 : 12);

/**
 * ATC entries are keyed by SubstreamID (PASID), up to 20 bits (IDR1.SSIDSIZE ≤ 20, §6.3.2), but a
 * Tlb tag is 16 bits: SSID[15:0] goes in the ASID tag and SSID[19:16] in the VMID tag.
 * Fix: the whole SSID used to go in the ASID tag, so translating SSID ≥ 0x10000 with ATS threw.
 */
export const atcSsidLo = (ssid: number): number => ssid & 0xffff;
export const atcSsidHi = (ssid: number): number => (ssid >>> 16) & 0xf;
