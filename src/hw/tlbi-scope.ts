import { TlbiKind, type TlbiOp } from '../arch/tlbi.js';
import { Stage, STAGE_ALL, STAGE_VA, World } from '../arch/world.js';
import type { InvalScope } from './tlb/scope.js';
import { resetScope } from './tlb/scope.js';

/**
 * One executed TLBI: the instruction plus its operand, decoded. Reused by callers (no allocation
 * per instruction). Addresses are 4 KiB page numbers; `pages` is 1 for non-range forms and the
 * decoded range for R forms.
 */
export interface TlbiArgs {
  op: TlbiOp;
  asid: number;
  page: number;
  pages: number;
  /** TTL level hint (0 = none). */
  ttl: number;
  /** Range forms: granule of the TG field (12/14/16); 0 otherwise. */
  granuleLog2: number;
}

export function newTlbiArgs(op: TlbiOp): TlbiArgs {
  return { op, asid: 0, page: 0, pages: 1, ttl: 0, granuleLog2: 0 };
}

/** The issuing PE's state that selects the regime: VTTBR_EL2.VMID, HCR_EL2.{E2H,TGE}, current EL. */
export interface IssuerRegime {
  vmid: number;
  e2h: boolean;
  tge: boolean;
  el: 1 | 2;
}

/**
 * Which entries a TLBI removes, as a scope (arch.md §3.3, SMMUv3 §4.4 equivalences).
 * For a PE target `aset` handling is moot (CPU entries have ASET 0). For an SMMU target,
 * `asetSpares` says whether ASID-matching ops spare ASET=1 entries.
 * Returns false when the op affects nothing (an unknown kind). EL3 ops return an EL3-world scope.
 */
export function tlbiScope(a: TlbiArgs, who: IssuerRegime, asetSpares: boolean, out: InvalScope): boolean {
  const op = a.op;
  resetScope(out);
  // E1 ops issued from EL2 with {E2H,TGE}={1,1} act on the EL2&0 regime (no VMID).
  const el20 = op.el === 1 && who.el === 2 && who.e2h && who.tge;
  if (op.el === 1 && !el20) {
    out.worlds = World.NS_EL1;
    out.vmid = who.vmid;
  } else if (el20) {
    out.worlds = World.NS_EL2_E2H;
  } else if (op.el === 2) {
    // *E2 ops: EL2&0 with ASID when HCR_EL2.E2H=1, else the ASID-less EL2 regime.
    out.worlds = who.e2h ? World.NS_EL2_E2H : World.NS_EL2;
  } else {
    // ALLE3IS / VAE3IS act on the EL3 StreamWorld (arch.md §3.3 last row, SMMUv3 §4.4.2.5-6:
    // CMD_TLBI_EL3_ALL / EL3_VA equivalents). Fix: this used to return false ("no effect"), so an
    // EL3 entry survived ALLE3IS. The EL3 world has no VMID or ASID tag (arch.md §3.2). Nothing in
    // the model creates EL3 entries (no Secure stream table), so this only matters for direct fills.
    out.worlds = World.EL3;
    out.stages = STAGE_VA;
    if (op.name.startsWith('VAE3')) {
      // VA{L}E3IS: by VA; ASET=1 EL3 entries are "not required" (§3.17.1), we invalidate them.
      out.pageStart = a.page;
      out.pageCount = a.pages > 0 ? a.pages : 1;
      out.leafOnly = op.leaf;
      out.ttl = a.ttl;
    }
    return true;
  }
  switch (op.kind) {
    case TlbiKind.VMALL:
      out.stages = STAGE_VA;
      out.skipAset = false;
      break;
    case TlbiKind.VMALLS12:
      out.worlds = World.NS_EL1;
      out.vmid = who.vmid;
      out.stages = STAGE_ALL;
      break;
    case TlbiKind.ALLE1:
      out.worlds = World.NS_EL1;
      out.vmid = -1;
      out.stages = STAGE_ALL;
      break;
    case TlbiKind.ALLE2:
      out.worlds = World.NS_EL2 | World.NS_EL2_E2H;
      out.vmid = -1;
      out.stages = STAGE_ALL;
      break;
    case TlbiKind.ASID:
      out.stages = STAGE_VA;
      out.asid = a.asid;
      out.includeGlobal = false;
      out.skipAset = asetSpares;
      break;
    case TlbiKind.VA:
    case TlbiKind.VAA:
      out.stages = STAGE_VA;
      out.pageStart = a.page;
      out.pageCount = a.pages > 0 ? a.pages : 1;
      out.leafOnly = op.leaf;
      out.ttl = a.ttl;
      out.granuleLog2 = op.range ? a.granuleLog2 : 0;
      if (op.kind === TlbiKind.VA && out.worlds !== World.NS_EL2) {
        out.asid = a.asid;
        out.includeGlobal = true;
        out.skipAset = asetSpares;
      }
      break;
    case TlbiKind.IPA:
      out.worlds = World.NS_EL1;
      out.vmid = who.vmid;
      out.stages = Stage.S2;
      out.pageStart = a.page;
      out.pageCount = a.pages > 0 ? a.pages : 1;
      out.leafOnly = op.leaf;
      out.ttl = a.ttl;
      out.granuleLog2 = op.range ? a.granuleLog2 : 0;
      break;
    default:
      return false;
  }
  return true;
}
