import { ASID_TAGGED_WORLDS, VMID_TAGGED_WORLDS } from '../../arch/world.js';

/**
 * One cached translation, as the reference TLB stores it. The fast TLB keeps the same
 * fields in typed arrays, one array per field.
 */
export interface TlbEntry {
  /** World bit (World.*). */
  world: number;
  /** VMID tag; meaningful only for VMID-tagged worlds (arch.md §3.2), else 0. */
  vmid: number;
  /** ASID tag for non-global entries of ASID-tagged worlds; -1 when the entry has none. */
  asid: number;
  /** nG=0: matches any ASID (but only the same ASET; SMMUv3 §3.17). */
  global: boolean;
  /** CD.ASET of the context that filled it (0 for CPU entries). */
  aset: number;
  /** Stage.S1 | Stage.S2 | Stage.NESTED. */
  stage: number;
  /** First 4 KiB page covered (VA page for S1/NESTED, IPA page for S2). Aligned to the size. */
  page: number;
  /** log2 of the number of 4 KiB pages covered: 0 for 4K, 9 for 2M, 18 for 1G, 2 for 16K... */
  sizeLog2: number;
  /** Translation granule the entry was inserted with: 12 (4K), 14 (16K), 16 (64K). */
  granuleLog2: number;
  /** Walk level the leaf came from (0..3). */
  level: number;
  /** 1 = last-level translation; 0 = intermediate (walk-cache) entry. */
  leaf: number;
  /** Output page (PA page for S1/NESTED/S2 leaves). */
  out: number;
  /** Translation context the entry was filled for (metrics and oracle; never used to match). */
  ctx: number;
}

/**
 * An invalidation, from a command or a broadcast TLBI, reduced to what it matches.
 * Both SMMU commands (arch.md §1.5) and DVM broadcasts (§3.3) are translated into one of
 * these; the TLB only ever sees scopes. Field semantics are exactly `entryMatchesScope`.
 */
export interface InvalScope {
  /** Bitmask of World bits affected. */
  worlds: number;
  /** VMID to match for VMID-tagged worlds; -1 = all VMIDs. */
  vmid: number;
  /** CR0.VMW: number of low VMID bits ignored on invalidation (0..4, SMMUv3 §6.3.9). */
  vmidIgnoreBits: number;
  /** ASID to match; -1 = all ASIDs. */
  asid: number;
  /** With asid >= 0: also remove global entries (VA ops do; ASID ops do not). */
  includeGlobal: boolean;
  /** Skip entries with ASET=1 (ASID-matching broadcasts may spare them; never commands). */
  skipAset: boolean;
  /** Skip entries with the hypothetical stage-2 ASET (aset bit 1; policy btm-s2aset). */
  skipVmidAset: boolean;
  /** Bitmask of Stage bits affected. */
  stages: number;
  /** Address range in 4 KiB pages: [pageStart, pageStart + pageCount). pageCount 0 = all addresses. */
  pageStart: number;
  pageCount: number;
  /** Only last-level entries (Leaf=1 / TLBI VAL*). */
  leafOnly: boolean;
  /** TTL level hint: 0 = any, 1..3 = only leaf entries from that level (SMMUv3 §4.4.1.1). */
  ttl: number;
  /** TG: 0 = any granule, else only entries inserted with this granule log2 (12/14/16). */
  granuleLog2: number;
}

export function scopeAll(): InvalScope {
  return {
    worlds: 0x1f, vmid: -1, vmidIgnoreBits: 0, asid: -1, includeGlobal: true, skipAset: false, skipVmidAset: false,
    stages: 7, pageStart: 0, pageCount: 0, leafOnly: false, ttl: 0, granuleLog2: 0,
  };
}

/** Reset a scope object in place (scopes are reused on the hot path, never allocated per event). */
export function resetScope(s: InvalScope): InvalScope {
  s.worlds = 0x1f; s.vmid = -1; s.vmidIgnoreBits = 0; s.asid = -1; s.includeGlobal = true;
  s.skipAset = false; s.skipVmidAset = false; s.stages = 7; s.pageStart = 0; s.pageCount = 0; s.leafOnly = false;
  s.ttl = 0; s.granuleLog2 = 0;
  return s;
}

/**
 * The matching rule, the one definition every TLB implementation must agree with.
 * - world must be in scope.worlds;
 * - VMID compared only for VMID-tagged worlds, with the low vmidIgnoreBits ignored;
 * - ASID: scope.asid < 0 matches everything; else a non-global entry matches when its ASID is
 *   equal (for ASID-tagged worlds; entries of untagged worlds ignore the ASID), a global entry
 *   only if includeGlobal;
 * - skipAset spares ASET=1 entries;
 * - stage in scope.stages; leaf/TTL/TG filters; address overlap with the entry's span.
 */
export function entryMatchesScope(e: TlbEntry, s: InvalScope): boolean {
  if ((e.world & s.worlds) === 0) return false;
  if ((e.stage & s.stages) === 0) return false;
  if (s.vmid >= 0 && (e.world & VMID_TAGGED_WORLDS) !== 0) {
    if (e.vmid >>> s.vmidIgnoreBits !== s.vmid >>> s.vmidIgnoreBits) return false;
  }
  if (s.asid >= 0 && (e.world & ASID_TAGGED_WORLDS) !== 0) {
    if (e.global) {
      if (!s.includeGlobal) return false;
    } else if (e.asid !== s.asid) return false;
  }
  if (s.skipAset && (e.aset & 1) !== 0) return false;
  if (s.skipVmidAset && (e.aset & 2) !== 0) return false;
  if (s.leafOnly && e.leaf === 0) return false;
  if (s.ttl !== 0 && (e.leaf === 0 || e.level !== s.ttl)) return false;
  if (s.granuleLog2 !== 0 && e.granuleLog2 !== s.granuleLog2) return false;
  if (s.pageCount !== 0) {
    const end = e.page + 2 ** e.sizeLog2;
    if (e.page >= s.pageStart + s.pageCount || end <= s.pageStart) return false;
  }
  return true;
}

/**
 * Lookup rule: does entry e translate `page` for a context with these tags?
 * VA lookups (S1/NESTED contexts) hit S1 or NESTED entries alike (they alias, §3.17);
 * IPA lookups hit S2 entries only. A global entry hits any ASID of the same world, VMID and ASET.
 */
export function entryMatchesLookup(
  e: TlbEntry, world: number, vmid: number, asid: number, aset: number, ipa: boolean, page: number,
): boolean {
  if (e.world !== world) return false;
  if (ipa ? e.stage !== 2 : e.stage === 2) return false;
  if (e.leaf === 0) return false;
  if ((world & VMID_TAGGED_WORLDS) !== 0 && e.vmid !== vmid) return false;
  if (!ipa && (world & ASID_TAGGED_WORLDS) !== 0) {
    if (e.global) { if (e.aset !== aset) return false; }
    else if (e.asid !== asid) return false;
  }
  return page >= e.page && page < e.page + 2 ** e.sizeLog2;
}
