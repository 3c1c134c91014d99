import {
  OP, cmdAddrPage, cmdAsid, cmdAtcSize, cmdGlobal, cmdIpaPage, cmdLeaf, cmdNum, cmdOpcode, cmdRange,
  cmdScale, cmdSid, cmdSsid, cmdSsv, cmdTg, cmdTtl, cmdVmid, rangeGranules,
} from '../../arch/commands.js';
import { Stage, STAGE_ALL, STAGE_VA, World } from '../../arch/world.js';
import type { InvalScope } from '../tlb/scope.js';
import { FaultHook } from '../fault-hooks.js';
import type { Smmu } from './smmu.js';
import { atcSsidHi, atcSsidLo } from './structures.js';

/**
 * Execute one legal command (SMMUv3 §4.2-4.7; arch.md §1.5), named after the commands as gem5's
 * smmu_v3_cmdexec.cc is. Each TLBI becomes an invalidation scope applied to every TLB structure of
 * the SMMU. Commands ignore CD.ASET entirely (§3.17.1), so no scope here sets skipAset.
 */
export function executeCommand(smmu: Smmu, w: Uint32Array, off: number): void {
  const op = cmdOpcode(w, off);
  const f = smmu.features;
  switch (op) {
    case OP.CMD_PREFETCH_CONFIG:
    case OP.CMD_PREFETCH_ADDR:
    case OP.CMD_PRI_RESP:
    case OP.CMD_RESUME:
    case OP.CMD_STALL_TERM:
    case OP.CMD_CFGI_VMS_PIDM:
    case OP.CMD_TLBI_EL3_ALL:
    case OP.CMD_TLBI_EL3_VA:
    case OP.CMD_DPTI_ALL:
    case OP.CMD_DPTI_PA:
      // Hints, stall/PRI responses and state we do not model: consumed, no cache effect.
      return;
    case OP.CMD_CFGI_STE:
      smmu.invalidateConfigSid(cmdSid(w, off));
      return;
    case OP.CMD_CFGI_STE_RANGE: {
      const range = cmdRange(w, off);
      if (range === 31) { smmu.invalidateConfigAll(); return; } // CMD_CFGI_ALL
      const span = 2 ** (range + 1);
      const first = cmdSid(w, off) - (cmdSid(w, off) % span);
      smmu.invalidateConfigRange(first, span);
      return;
    }
    case OP.CMD_CFGI_CD:
      smmu.invalidateConfigCd(cmdSid(w, off), cmdSsid(w, off));
      return;
    case OP.CMD_CFGI_CD_ALL:
      smmu.invalidateConfigSid(cmdSid(w, off));
      return;
    case OP.CMD_SYNC:
      // Consumption is in order and every earlier command took effect when consumed, so the
      // SYNC completes now (§4.7.3). It does not wait for broadcast TLBIs (DVM Sync does).
      smmu.syncCompleted();
      return;
    case OP.CMD_ATC_INV: {
      const s = smmu.scope();
      // ATC entries are keyed by SubstreamID: SSID[15:0] in the asid tag, SSID[19:16] in the vmid
      // tag (atcSsidLo/Hi; the 20-bit SSID does not fit a 16-bit tag, §6.3.2 SSIDSIZE ≤ 20).
      // SSV=0 addresses traffic without a SubstreamID (SSID 0 in the model); Global=1 all SSIDs.
      const global = cmdGlobal(w, off) === 1;
      if (global) {
        s.asid = -1; s.vmid = -1;
      } else {
        const ssid = cmdSsv(w, off) === 1 ? cmdSsid(w, off) : 0;
        s.asid = atcSsidLo(ssid); s.vmid = atcSsidHi(ssid);
      }
      s.includeGlobal = true;
      const size = cmdAtcSize(w, off);
      if (size < 52) {
        const span = 2 ** size;
        const page = cmdAddrPage(w, off);
        s.pageStart = page - (page % span);
        s.pageCount = span;
      }
      smmu.invalidateAtc(cmdSid(w, off), s);
      return;
    }
    default:
      break;
  }
  // TLB invalidations.
  const s = smmu.scope();
  s.skipAset = false;
  s.vmidIgnoreBits = smmu.vmwBits();
  // VMID fields are only meaningful when stage 2 is implemented (NH_* VMID is RES0 otherwise).
  // (Fault vmid-truncate-8: an SMMU advertising VMID16 that honours VMID[7:0] only.)
  const vmid = f.s2p ? cmdVmid(w, off) & smmu.vmidTagMask() : -1;
  switch (op) {
    case OP.CMD_TLBI_NH_ALL:
      s.worlds = World.NS_EL1; s.vmid = vmid; s.stages = STAGE_VA;
      if (smmu.knobs.nhAllHitsS2) s.stages |= Stage.S2;
      break;
    case OP.CMD_TLBI_NH_ASID:
      s.worlds = World.NS_EL1; s.vmid = vmid; s.stages = STAGE_VA;
      s.asid = maskId(cmdAsid(w, off), f.asid16); s.includeGlobal = false;
      break;
    case OP.CMD_TLBI_NH_VA:
    case OP.CMD_TLBI_NH_VAA:
      s.worlds = World.NS_EL1; s.vmid = vmid; s.stages = STAGE_VA;
      if (op === OP.CMD_TLBI_NH_VA) { s.asid = maskId(cmdAsid(w, off), f.asid16); s.includeGlobal = true; }
      addressRange(smmu, s, w, off, cmdAddrPage(w, off));
      break;
    case OP.CMD_TLBI_EL2_ALL:
      s.worlds = World.NS_EL2 | World.NS_EL2_E2H; s.stages = STAGE_ALL;
      break;
    case OP.CMD_TLBI_EL2_ASID:
      s.worlds = World.NS_EL2_E2H; s.stages = STAGE_VA;
      s.asid = maskId(cmdAsid(w, off), f.asid16); s.includeGlobal = false;
      break;
    case OP.CMD_TLBI_EL2_VA:
    case OP.CMD_TLBI_EL2_VAA:
      // CR2.E2H selects which EL2 world the command addresses (§4.4.2.8).
      s.worlds = smmu.e2h ? World.NS_EL2_E2H : World.NS_EL2; s.stages = STAGE_VA;
      if (op === OP.CMD_TLBI_EL2_VA && smmu.e2h) { s.asid = maskId(cmdAsid(w, off), f.asid16); s.includeGlobal = true; }
      addressRange(smmu, s, w, off, cmdAddrPage(w, off));
      break;
    case OP.CMD_TLBI_S12_VMALL:
      s.worlds = World.NS_EL1; s.vmid = vmid; s.stages = STAGE_ALL;
      break;
    case OP.CMD_TLBI_S2_IPA:
      // Stage-2-only entries; combined S1+S2 entries are not required to go (§4.4.2.11).
      s.worlds = World.NS_EL1; s.vmid = vmid; s.stages = Stage.S2;
      addressRange(smmu, s, w, off, cmdIpaPage(w, off));
      smmu.invalidate(s);
      // Fix (§4.4.2.11; arch.md §1.5): combined entries are tagged by VA, not IPA, so the knob
      // removes all of the VMID's combined entries instead of those whose VA equals the IPA.
      if (smmu.knobs.s2IpaHitsCombined) smmu.invalidateCombined(vmid, cmdLeaf(w, off) === 1);
      return;
    case OP.CMD_TLBI_NSNH_ALL:
      s.worlds = World.NS_EL1; s.stages = STAGE_ALL;
      break;
    default:
      // Secure-queue commands never reach here on the NS queue (CERROR_ILL first).
      return;
  }
  smmu.invalidate(s);
}

function maskId(v: number, wide: boolean): number {
  return wide ? v : v & 0xff;
}

/** Address, Leaf, TTL, TG/NUM/SCALE of a TLBI command into the scope (§4.4.1.1). */
function addressRange(smmu: Smmu, s: InvalScope, w: Uint32Array, off: number, page: number): void {
  s.leafOnly = cmdLeaf(w, off) === 1;
  const tg = cmdTg(w, off);
  if (tg === 0) {
    // Not a range: one address, low bits ignored according to each entry's size.
    s.pageStart = page;
    s.pageCount = 1;
    return;
  }
  const granulePages = tg === 1 ? 1 : tg === 2 ? 4 : 16;
  s.granuleLog2 = tg === 1 ? 12 : tg === 2 ? 14 : 16;
  s.ttl = cmdTtl(w, off);
  s.pageStart = page;
  s.pageCount = rangeGranules(cmdNum(w, off), cmdScale(w, off)) * granulePages;
  // Fault range-first-page-only: the Qualcomm SMMU-500 erratum (TLBIVA/TLBIVAL by range
  // invalidated only the first base page; qualcomm-linux/kernel-topics PR #1550): the range
  // command acts as if it named its first page only, the rest of the range keeps its entries.
  if (s.pageCount > granulePages && smmu.faults !== null && smmu.faults.fire(FaultHook.RANGE_FIRST_PAGE_ONLY)) {
    s.pageCount = granulePages;
  }
}
