/**
 * CPU TLB maintenance instructions (Arm ARM C5.5 "A64 TLB maintenance instructions"), as data.
 * Which entries each one removes, on a PE and on an SMMU taking part in broadcast TLB maintenance,
 * is derived from these attributes by `tlbiScope` (hw/tlbi-scope.ts) following arch.md §3.3.
 */

/** What the instruction selects. */
export const TlbiKind = {
  /** VMALLE1: all stage-1 entries of the current VMID (EL1&0), or of EL2&0 when {E2H,TGE}={1,1}. */
  VMALL: 1,
  /** VMALLS12E1: all stage-1 and stage-2 entries of the current VMID. */
  VMALLS12: 2,
  /** ALLE1: all EL1&0 entries, all VMIDs. */
  ALLE1: 3,
  /** ALLE2: all EL2 and EL2&0 entries. */
  ALLE2: 4,
  /** ASIDE1: non-global entries with the ASID. */
  ASID: 5,
  /** VAE1 / VALE1 / VAE2: by VA and ASID (plus global entries for that VA). */
  VA: 6,
  /** VAAE1 / VAALE1: by VA, all ASIDs. */
  VAA: 7,
  /** IPAS2E1 / IPAS2LE1: stage-2 entries by IPA. */
  IPA: 8,
  /** ALLE3 / VAE3: EL3 (never reaches the NS SMMU state we model, kept for completeness). */
  EL3: 9,
} as const;

export interface TlbiOp {
  readonly name: string;
  readonly kind: number;
  /** Target exception level encoded in the name: 1 for *E1, 2 for *E2, 3 for *E3. */
  readonly el: 1 | 2 | 3;
  /** Inner Shareable: broadcast to every PE and to BTM SMMUs (DVM). */
  readonly shareable: boolean;
  /** L forms: last level only (walk-cache entries may survive). */
  readonly leaf: boolean;
  /** R forms (FEAT_TLBIRANGE): operand carries TG/SCALE/NUM/TTL/BaseADDR. */
  readonly range: boolean;
}

const K = TlbiKind;
const ops: TlbiOp[] = [];
function def(name: string, kind: number, el: 1 | 2 | 3, leaf = false, range = false): void {
  ops.push({ name, kind, el, shareable: false, leaf, range });
  ops.push({ name: `${name}IS`, kind, el, shareable: true, leaf, range });
}
def('VMALLE1', K.VMALL, 1);
def('VMALLS12E1', K.VMALLS12, 1);
def('ALLE1', K.ALLE1, 1);
def('ALLE2', K.ALLE2, 2);
def('ASIDE1', K.ASID, 1);
def('VAE1', K.VA, 1);
def('VALE1', K.VA, 1, true);
def('VAAE1', K.VAA, 1);
def('VAALE1', K.VAA, 1, true);
def('RVAE1', K.VA, 1, false, true);
def('RVALE1', K.VA, 1, true, true);
def('RVAAE1', K.VAA, 1, false, true);
def('RVAALE1', K.VAA, 1, true, true);
def('IPAS2E1', K.IPA, 1);
def('IPAS2LE1', K.IPA, 1, true);
def('RIPAS2E1', K.IPA, 1, false, true);
def('RIPAS2LE1', K.IPA, 1, true, true);
def('VAE2', K.VA, 2);
def('VALE2', K.VA, 2, true);
def('RVAE2', K.VA, 2, false, true);
def('RVALE2', K.VA, 2, true, true);
def('ALLE3', K.EL3, 3);
def('VAE3', K.EL3, 3);

/** Every modelled TLBI instruction, local and IS forms. */
export const TLBI_OPS: readonly TlbiOp[] = ops;
export const TLBI: Readonly<Record<string, TlbiOp>> = Object.fromEntries(ops.map((o) => [o.name, o]));

/** Index of an op in TLBI_OPS (for counters kept in typed arrays). */
export const TLBI_INDEX: Readonly<Record<string, number>> = Object.fromEntries(ops.map((o, i) => [o.name, i]));

/**
 * Decode a FEAT_TLBIRANGE operand (kernel.md §3: ASID[63:48] TG[47:46] SCALE[45:44] NUM[43:39]
 * TTL[38:37] BaseADDR[36:0]) into a page range: (NUM+1) * 2^(5*SCALE+1) granules from BaseADDR.
 * Granules are converted to 4 KiB pages for the model.
 */
export function tlbiRangePages(tg: number, scale: number, num: number): number {
  const granulePages = tg === 1 ? 1 : tg === 2 ? 4 : tg === 3 ? 16 : 1;
  return (num + 1) * 2 ** (5 * scale + 1) * granulePages;
}

/** Largest range one range TLBI can cover, in pages (MAX_TLBI_RANGE_PAGES = 32 << 16 = 2^21). */
export const MAX_TLBI_RANGE_PAGES = 2 ** 21;

/** The Inner Shareable form of each local op (HCR_EL2.FB upgrades guest EL1 TLBIs to IS). */
export const IS_FORM: ReadonlyMap<TlbiOp, TlbiOp> = new Map(
  ops.filter((o) => !o.shareable).map((o) => [o, TLBI[`${o.name}IS`]] as const),
);
