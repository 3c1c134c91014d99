/**
 * The oracle's memory of invalidations: a ring of the last LOG_CAPACITY commands consumed,
 * broadcasts received (acted on or ignored, and why) and CPU TLBIs, each with its effective scope,
 * so that a violation report can list the invalidations that passed an entry by and say which
 * field did not match. Recording copies numbers into preallocated typed arrays (no allocation);
 * reading (reports only) allocates.
 */
import {
  OPCODE_NAMES, OP, cmdAddrPage, cmdAsid, cmdAtcSize, cmdIpaPage, cmdLeaf, cmdNum, cmdOpcode, cmdScale, cmdSid,
  cmdSsid, cmdSsv, cmdTg, cmdTtl, cmdVmid, rangeGranules,
} from '../arch/commands.js';
import type { TlbiOp } from '../arch/tlbi.js';
import { ASID_TAGGED_WORLDS, STAGE_NAMES, VMID_TAGGED_WORLDS, WORLD_NAMES } from '../arch/world.js';
import type { InvalScope, TlbEntry } from '../hw/tlb/scope.js';
import { resetScope } from '../hw/tlb/scope.js';
import { formatTlbi } from '../kernel/cpu-ops.js';
import { tlbiScope, type IssuerRegime, type TlbiArgs } from '../hw/tlbi-scope.js';

export const LOG_CAPACITY = 16384;

export const LogKind = {
  /** A command consumed by an SMMU (words kept; scope if it invalidated something). */
  CMD: 1,
  /** A broadcast TLBI as one SMMU saw it (acted on, or ignored with a reason). */
  BCAST: 2,
  /** A TLBI executed by a PE (broadcast or local). */
  CPU_TLBI: 3,
} as const;

/** Why an SMMU did not act on a broadcast. */
export const Ignored = {
  ACTED: 0,
  PTM: 1,
  NO_BTM: 2,
  DROPPED_FAULT: 3,
  NARROW_ID: 4,
  NO_EFFECT: 5,
  DISABLED: 6,
} as const;

const IGNORED_TEXT: Record<number, string> = {
  [Ignored.PTM]: 'ignored: CR2.PTM=1 (the SMMU does not take part in broadcast TLB maintenance)',
  [Ignored.NO_BTM]: 'ignored: SMMU_IDR0.BTM=0',
  [Ignored.DROPPED_FAULT]: 'DROPPED by the SMMU (fault drop-dvm: MMU-700 erratum 2812531 class) although BTM is on and CR2.PTM=0',
  [Ignored.NARROW_ID]: 'ignored: an 8-bit SMMU does not match IDs with a non-zero top byte',
  [Ignored.NO_EFFECT]: 'ignored: no SMMU equivalent',
  [Ignored.DISABLED]: 'ignored: SMMUEN=0',
};

const SCOPE_WORDS = 13;
const ARG_WORDS = 6;

/** Copy a scope into 13 numbers. */
function packScope(a: Float64Array, o: number, s: Readonly<InvalScope>): void {
  a[o] = s.worlds; a[o + 1] = s.vmid; a[o + 2] = s.vmidIgnoreBits; a[o + 3] = s.asid;
  a[o + 4] = s.includeGlobal ? 1 : 0; a[o + 5] = s.skipAset ? 1 : 0; a[o + 6] = s.skipVmidAset ? 1 : 0;
  a[o + 7] = s.stages; a[o + 8] = s.pageStart; a[o + 9] = s.pageCount; a[o + 10] = s.leafOnly ? 1 : 0;
  a[o + 11] = s.ttl; a[o + 12] = s.granuleLog2;
}

function unpackScope(a: Float64Array, o: number, s: InvalScope): InvalScope {
  s.worlds = a[o]; s.vmid = a[o + 1]; s.vmidIgnoreBits = a[o + 2]; s.asid = a[o + 3];
  s.includeGlobal = a[o + 4] === 1; s.skipAset = a[o + 5] === 1; s.skipVmidAset = a[o + 6] === 1;
  s.stages = a[o + 7]; s.pageStart = a[o + 8]; s.pageCount = a[o + 9]; s.leafOnly = a[o + 10] === 1;
  s.ttl = a[o + 11]; s.granuleLog2 = a[o + 12];
  return s;
}

/** One record, read back for a report. */
export interface LogRecord {
  index: number;
  timeNs: number;
  kind: number;
  /** SMMU id (CMD, BCAST) or PE id (CPU_TLBI). */
  unit: number;
  /** CMD: the ATC's StreamID for CMD_ATC_INV (else -1); BCAST: Ignored.*; CPU_TLBI: 1 broadcast, 0 local. */
  aux: number;
  /** Effective scope, when the record invalidated (or would have). */
  scope: InvalScope | null;
  /** One-line description of the command or TLBI. */
  text: string;
  /** CMD: the command's pages as encoded (range TLBIs), to compare with what the SMMU did; else 0. */
  encodedPages: number;
}

export class InvalLog {
  /** Records written so far (the ring holds the last LOG_CAPACITY). */
  count = 0;
  private readonly time = new Float64Array(LOG_CAPACITY);
  private readonly kind = new Uint8Array(LOG_CAPACITY);
  private readonly unit = new Int32Array(LOG_CAPACITY);
  private readonly aux = new Int32Array(LOG_CAPACITY);
  private readonly hasScope = new Uint8Array(LOG_CAPACITY);
  private readonly scope = new Float64Array(LOG_CAPACITY * SCOPE_WORDS);
  private readonly words = new Uint32Array(LOG_CAPACITY * 4);
  private readonly ops: (TlbiOp | null)[] = new Array<TlbiOp | null>(LOG_CAPACITY).fill(null);
  /** asid, page, pages, ttl, granuleLog2, issuer VMID. */
  private readonly args = new Float64Array(LOG_CAPACITY * ARG_WORDS);
  /** issuer regime: bit0 e2h, bit1 tge, bit2 el==2. */
  private readonly regime = new Uint8Array(LOG_CAPACITY);
  /** A scope staged by onInvalidate for the record that follows (command or broadcast). */
  private readonly staged: InvalScope = resetScope({} as InvalScope);
  private stagedValid = false;
  private stagedSid = -1;

  stage(s: Readonly<InvalScope>, sid: number): void {
    const t = this.staged;
    t.worlds = s.worlds; t.vmid = s.vmid; t.vmidIgnoreBits = s.vmidIgnoreBits; t.asid = s.asid;
    t.includeGlobal = s.includeGlobal; t.skipAset = s.skipAset; t.skipVmidAset = s.skipVmidAset;
    t.stages = s.stages; t.pageStart = s.pageStart; t.pageCount = s.pageCount; t.leafOnly = s.leafOnly;
    t.ttl = s.ttl; t.granuleLog2 = s.granuleLog2;
    this.stagedValid = true;
    this.stagedSid = sid;
  }

  private begin(timeNs: number, kind: number, unit: number, aux: number): number {
    const i = this.count++ % LOG_CAPACITY;
    this.time[i] = timeNs; this.kind[i] = kind; this.unit[i] = unit; this.aux[i] = aux;
    if (this.stagedValid) {
      packScope(this.scope, i * SCOPE_WORDS, this.staged);
      this.hasScope[i] = 1;
      this.stagedValid = false;
    } else {
      this.hasScope[i] = 0;
    }
    this.ops[i] = null;
    return i;
  }

  command(timeNs: number, smmu: number, ring: Uint32Array, off: number): void {
    const sid = this.stagedValid ? this.stagedSid : -1;
    const i = this.begin(timeNs, LogKind.CMD, smmu, sid);
    const w = this.words;
    w[i * 4] = ring[off]; w[i * 4 + 1] = ring[off + 1]; w[i * 4 + 2] = ring[off + 2]; w[i * 4 + 3] = ring[off + 3];
  }

  private tlbiArgs(i: number, a: TlbiArgs, who: IssuerRegime): void {
    const o = i * ARG_WORDS;
    const g = this.args;
    this.ops[i] = a.op;
    g[o] = a.asid; g[o + 1] = a.page; g[o + 2] = a.pages; g[o + 3] = a.ttl; g[o + 4] = a.granuleLog2; g[o + 5] = who.vmid;
    this.regime[i] = (who.e2h ? 1 : 0) | (who.tge ? 2 : 0) | (who.el === 2 ? 4 : 0);
  }

  /** A broadcast as SMMU `smmu` saw it; `ignored` = Ignored.* (ACTED when applied). */
  broadcast(timeNs: number, smmu: number, a: TlbiArgs, who: IssuerRegime, ignored: number, asetSpares: boolean): void {
    if (ignored !== Ignored.ACTED) {
      // Not applied: compute what it would have removed, for the explanation.
      const s = this.staged;
      if (tlbiScope(a, who, asetSpares, s)) { this.stagedValid = true; this.stagedSid = -1; }
    }
    const i = this.begin(timeNs, LogKind.BCAST, smmu, ignored);
    this.tlbiArgs(i, a, who);
  }

  cpuTlbi(timeNs: number, pe: number, a: TlbiArgs, who: IssuerRegime, broadcast: boolean): void {
    const s = this.staged;
    if (tlbiScope(a, who, false, s)) { this.stagedValid = true; this.stagedSid = -1; }
    const i = this.begin(timeNs, LogKind.CPU_TLBI, pe, broadcast ? 1 : 0);
    this.tlbiArgs(i, a, who);
  }

  /** Records with fromNs <= time <= toNs still in the ring, oldest first; `truncated` if some were lost. */
  between(fromNs: number, toNs: number): { records: LogRecord[]; truncated: boolean } {
    const out: LogRecord[] = [];
    const first = Math.max(0, this.count - LOG_CAPACITY);
    let truncated = false;
    for (let k = first; k < this.count; k++) {
      const i = k % LOG_CAPACITY;
      const t = this.time[i];
      if (k === first && first > 0 && t > fromNs) truncated = true;
      if (t < fromNs || t > toNs) continue;
      out.push(this.read(k));
    }
    return { records: out, truncated };
  }

  private read(k: number): LogRecord {
    const i = k % LOG_CAPACITY;
    const scope = this.hasScope[i] === 1 ? unpackScope(this.scope, i * SCOPE_WORDS, resetScope({} as InvalScope)) : null;
    let text: string;
    let encodedPages = 0;
    if (this.kind[i] === LogKind.CMD) {
      const w = this.words.subarray(i * 4, i * 4 + 4);
      text = formatCommand(w);
      const tg = cmdTg(w, 0);
      if (tg !== 0) encodedPages = rangeGranules(cmdNum(w, 0), cmdScale(w, 0)) * (tg === 1 ? 1 : tg === 2 ? 4 : 16);
    } else {
      const o = i * ARG_WORDS;
      const g = this.args;
      const op = this.ops[i]!;
      const r = this.regime[i];
      const a: TlbiArgs = { op, asid: g[o], page: g[o + 1], pages: g[o + 2], ttl: g[o + 3], granuleLog2: g[o + 4] };
      const regime = (r & 4) !== 0 ? ((r & 1) !== 0 ? ((r & 2) !== 0 ? 'EL2&0 (VHE host, TGE=1)' : 'EL2, E2H=1 TGE=0') : 'EL2 (nVHE)') : 'EL1';
      text = `${formatTlbi(a)} from ${regime}, VMID ${g[o + 5]}`;
    }
    return { index: k, timeNs: this.time[i], kind: this.kind[i], unit: this.unit[i], aux: this.aux[i], scope, text, encodedPages };
  }
}

/** Why a broadcast was not applied, as text (null when it was). */
export function ignoredText(code: number): string | null {
  return code === Ignored.ACTED ? null : IGNORED_TEXT[code] ?? 'ignored';
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/** One-line command text: name and the fields that select entries. */
export function formatCommand(w: Uint32Array): string {
  const op = cmdOpcode(w, 0);
  const name = OPCODE_NAMES[op] ?? `opcode ${hex(op)}`;
  const range = (): string => {
    const tg = cmdTg(w, 0);
    if (tg === 0) return '';
    return ` tg=${['', '4K', '16K', '64K'][tg]} num=${cmdNum(w, 0)} scale=${cmdScale(w, 0)} ttl=${cmdTtl(w, 0)}`;
  };
  switch (op) {
    case OP.CMD_TLBI_NH_ALL:
    case OP.CMD_TLBI_S12_VMALL:
      return `${name} vmid=${hex(cmdVmid(w, 0))}`;
    case OP.CMD_TLBI_NH_ASID:
      return `${name} vmid=${hex(cmdVmid(w, 0))} asid=${hex(cmdAsid(w, 0))}`;
    case OP.CMD_TLBI_NH_VA:
      return `${name} vmid=${hex(cmdVmid(w, 0))} asid=${hex(cmdAsid(w, 0))} va_page=${hex(cmdAddrPage(w, 0))} leaf=${cmdLeaf(w, 0)}${range()}`;
    case OP.CMD_TLBI_NH_VAA:
      return `${name} vmid=${hex(cmdVmid(w, 0))} va_page=${hex(cmdAddrPage(w, 0))} leaf=${cmdLeaf(w, 0)}${range()}`;
    case OP.CMD_TLBI_EL2_ASID:
      return `${name} asid=${hex(cmdAsid(w, 0))}`;
    case OP.CMD_TLBI_EL2_VA:
      return `${name} asid=${hex(cmdAsid(w, 0))} va_page=${hex(cmdAddrPage(w, 0))} leaf=${cmdLeaf(w, 0)}${range()}`;
    case OP.CMD_TLBI_EL2_VAA:
      return `${name} va_page=${hex(cmdAddrPage(w, 0))} leaf=${cmdLeaf(w, 0)}${range()}`;
    case OP.CMD_TLBI_S2_IPA:
      return `${name} vmid=${hex(cmdVmid(w, 0))} ipa_page=${hex(cmdIpaPage(w, 0))} leaf=${cmdLeaf(w, 0)}${range()}`;
    case OP.CMD_ATC_INV:
      return `${name} sid=${hex(cmdSid(w, 0))}${cmdSsv(w, 0) === 1 ? ` ssid=${cmdSsid(w, 0)}` : ''} page=${hex(cmdAddrPage(w, 0))} size=2^${cmdAtcSize(w, 0)}`;
    case OP.CMD_CFGI_STE:
    case OP.CMD_CFGI_CD_ALL:
    case OP.CMD_PREFETCH_CONFIG:
      return `${name} sid=${hex(cmdSid(w, 0))}`;
    case OP.CMD_CFGI_CD:
      return `${name} sid=${hex(cmdSid(w, 0))} ssid=${cmdSsid(w, 0)}`;
    default:
      return name;
  }
}

/** The tags and span of an entry, one line. */
export function formatEntry(e: TlbEntry): string {
  const tags: string[] = [WORLD_NAMES[e.world] ?? `world ${e.world}`];
  if ((e.world & VMID_TAGGED_WORLDS) !== 0) tags.push(`VMID ${hex(e.vmid)}`);
  if ((e.world & ASID_TAGGED_WORLDS) !== 0 && e.stage !== 2) tags.push(e.global ? 'global' : `ASID ${hex(e.asid)}`);
  if (e.aset !== 0) tags.push(`ASET ${e.aset & 1}${(e.aset & 2) !== 0 ? ' +S2ASET' : ''}`);
  const stage = STAGE_NAMES[e.stage] ?? `stage ${e.stage}`;
  const what = e.stage === 2 ? 'IPA' : 'VA';
  const span = e.sizeLog2 === 0 ? '4K' : `2^${e.sizeLog2} pages`;
  return `${tags.join(' ')} ${stage}, ${what} page ${hex(e.page)} -> PA page ${hex(e.out)} (${span})`;
}

/**
 * Why scope `s` does not remove entry `e` (the first condition of entryMatchesScope that fails),
 * or null when it does. Must agree with entryMatchesScope (a test checks).
 */
export function mismatchReason(e: TlbEntry, s: Readonly<InvalScope>): string | null {
  if ((e.world & s.worlds) === 0) {
    const names = Object.entries(WORLD_NAMES).filter(([b]) => (Number(b) & s.worlds) !== 0).map(([, n]) => n);
    return `StreamWorld: entry is ${WORLD_NAMES[e.world]}, the invalidation covers ${names.join('/') || 'none'}`;
  }
  if ((e.stage & s.stages) === 0) {
    const names = Object.entries(STAGE_NAMES).filter(([b]) => (Number(b) & s.stages) !== 0).map(([, n]) => n);
    return `stage: entry is ${STAGE_NAMES[e.stage]}, the invalidation covers ${names.join('/')} entries`;
  }
  if (s.vmid >= 0 && (e.world & VMID_TAGGED_WORLDS) !== 0) {
    if (e.vmid >>> s.vmidIgnoreBits !== s.vmid >>> s.vmidIgnoreBits) return `VMID: entry ${hex(e.vmid)}, invalidation ${hex(s.vmid)}`;
  }
  if (s.asid >= 0 && (e.world & ASID_TAGGED_WORLDS) !== 0) {
    if (e.global) {
      if (!s.includeGlobal) return 'global entry, invalidation by ASID spares global entries';
    } else if (e.asid !== s.asid) return `ASID: entry ${hex(e.asid)}, invalidation ${hex(s.asid)}`;
  }
  if (s.skipAset && (e.aset & 1) !== 0) return 'ASET=1 entry spared by an ASID-matching broadcast';
  if (s.skipVmidAset && (e.aset & 2) !== 0) return 'stage-2 ASET entry spared by a VMID-matching broadcast';
  if (s.leafOnly && e.leaf === 0) return 'leaf-only invalidation, table entry';
  if (s.ttl !== 0 && (e.leaf === 0 || e.level !== s.ttl)) return `TTL: entry level ${e.level}, invalidation level ${s.ttl}`;
  if (s.granuleLog2 !== 0 && e.granuleLog2 !== s.granuleLog2) return `TG: entry granule 2^${e.granuleLog2}, invalidation 2^${s.granuleLog2}`;
  if (s.pageCount !== 0) {
    const end = e.page + 2 ** e.sizeLog2;
    if (e.page >= s.pageStart + s.pageCount || end <= s.pageStart) {
      return `address: entry page ${hex(e.page)}, invalidation pages [${hex(s.pageStart)}, ${hex(s.pageStart + s.pageCount)})`;
    }
  }
  return null;
}
