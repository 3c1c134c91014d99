/**
 * SMMUv3 command queue entries: opcodes, field layout, encode/decode and CERROR_ILL legality.
 * Facts from IHI 0070 G.b §4.1-4.7 as collected in arch.md §1.3-1.5 (field positions the spec
 * copy only shows as diagrams were taken from Linux arm-smmu-v3.h, QEMU and gem5).
 *
 * Representation: a command is 128 bits held as four little-endian 32-bit words in a
 * Uint32Array: w[off+0] = bits [31:0], w[off+1] = [63:32], w[off+2] = [95:64],
 * w[off+3] = [127:96]. "dw0"/"dw1" are the two 64-bit halves as a driver writes them
 * (dw0 = bits [63:0] = w1:w0, dw1 = bits [127:64] = w3:w2). The command queue ring stores
 * entries back to back, so every hot-path accessor takes the ring and a word offset and
 * allocates nothing.
 *
 * No Node or DOM imports: this file runs in the browser worker too.
 */
import { CERROR, type SmmuFeatures } from './registers.js';

// ---------------------------------------------------------------------------------------------
// Opcodes (§4.1.1; arch.md §1.3)

export const OP = {
  CMD_PREFETCH_CONFIG: 0x01,
  CMD_PREFETCH_ADDR: 0x02,
  CMD_CFGI_STE: 0x03,
  CMD_CFGI_STE_RANGE: 0x04,
  /** Same opcode as CMD_CFGI_STE_RANGE: CMD_CFGI_ALL is CFGI_STE_RANGE with Range=31 (§4.3.6). */
  CMD_CFGI_ALL: 0x04,
  CMD_CFGI_CD: 0x05,
  CMD_CFGI_CD_ALL: 0x06,
  /** v3.2+ with MPAM and VMS only. QEMU's enum calls 0x07 "CFGI_ALL": that label is wrong. */
  CMD_CFGI_VMS_PIDM: 0x07,
  CMD_TLBI_NH_ALL: 0x10,
  CMD_TLBI_NH_ASID: 0x11,
  CMD_TLBI_NH_VA: 0x12,
  CMD_TLBI_NH_VAA: 0x13,
  CMD_TLBI_EL3_ALL: 0x18,
  CMD_TLBI_EL3_VA: 0x1a,
  CMD_TLBI_EL2_ALL: 0x20,
  CMD_TLBI_EL2_ASID: 0x21,
  CMD_TLBI_EL2_VA: 0x22,
  CMD_TLBI_EL2_VAA: 0x23,
  CMD_TLBI_S12_VMALL: 0x28,
  CMD_TLBI_S2_IPA: 0x2a,
  CMD_TLBI_NSNH_ALL: 0x30,
  CMD_ATC_INV: 0x40,
  CMD_PRI_RESP: 0x41,
  CMD_RESUME: 0x44,
  CMD_STALL_TERM: 0x45,
  CMD_SYNC: 0x46,
  CMD_TLBI_S_EL2_ALL: 0x50,
  CMD_TLBI_S_EL2_ASID: 0x51,
  CMD_TLBI_S_EL2_VA: 0x52,
  CMD_TLBI_S_EL2_VAA: 0x53,
  CMD_TLBI_S_S12_VMALL: 0x58,
  CMD_TLBI_S_S2_IPA: 0x5a,
  CMD_TLBI_SNH_ALL: 0x60,
  CMD_DPTI_ALL: 0x70,
  CMD_DPTI_PA: 0x73,
} as const;
export type CommandName = keyof typeof OP;

/** Canonical name per architected opcode (0x04 → CMD_CFGI_STE_RANGE; decode names CFGI_ALL). */
export const OPCODE_NAMES: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(
    Object.entries(OP).filter(([n]) => n !== 'CMD_CFGI_ALL').map(([n, v]) => [v, n]),
  ),
);

/** §4.1.1: 0x80-0x8F are IMPLEMENTATION DEFINED. This model implements none (→ CERROR_ILL). */
export function isImpDefOpcode(op: number): boolean {
  return op >= 0x80 && op <= 0x8f;
}

// ---------------------------------------------------------------------------------------------
// Field layout (§4.1.6 and the per-command sections; arch.md §1.4)

/** A command field at absolute bits [msb:lsb] of the 128-bit command. */
export interface FieldDef {
  readonly name: string;
  readonly msb: number;
  readonly lsb: number;
  /**
   * Address fields hold an address shifted right: Address [127:76] = VA[63:12] (shift 12),
   * MSIAddress [119:66] = PA[55:2] (shift 2). decode returns the byte address (a bigint,
   * low `shift` bits zero); encode takes a byte address and rejects unaligned ones.
   */
  readonly shift?: number;
}
const fd = (name: string, msb: number, lsb: number, shift?: number): FieldDef =>
  shift === undefined ? { name, msb, lsb } : { name, msb, lsb, shift };

export const FIELD = {
  Global: fd('Global', 9, 9),
  SSec: fd('SSec', 10, 10),
  SSV: fd('SSV', 11, 11),
  SubstreamID: fd('SubstreamID', 31, 12),
  NUM: fd('NUM', 16, 12),
  /**
   * SCALE: G.b's diagrams and §4.4.1.1 show SCALE as [25:20]; Linux (CMDQ_TLBI_0_SCALE =
   * GENMASK(24,20)) and QEMU (CMD_SCALE, 5 bits at 20) decode [24:20]. We decode [24:20]; bit 25
   * is treated as a reserved bit (CERROR_ILL only with strictReserved). arch.md §7.
   */
  SCALE: fd('SCALE', 24, 20),
  CS: fd('CS', 13, 12),
  Ac: fd('Ac', 12, 12),
  Ab: fd('Ab', 13, 13),
  MSH: fd('MSH', 23, 22),
  MSIAttr: fd('MSIAttr', 27, 24),
  StreamID: fd('StreamID', 63, 32),
  VMID: fd('VMID', 47, 32),
  ASID: fd('ASID', 63, 48),
  MSIData: fd('MSIData', 63, 32),
  Leaf: fd('Leaf', 64, 64),
  Range: fd('Range', 68, 64),
  PrefetchSize: fd('Size', 68, 64),
  AtcSize: fd('Size', 69, 64),
  PRGIndex: fd('PRGIndex', 72, 64),
  STAG: fd('STAG', 79, 64),
  TTL128: fd('TTL128', 71, 71),
  TTL: fd('TTL', 73, 72),
  TG: fd('TG', 75, 74),
  Resp: fd('Resp', 77, 76),
  /** VA[63:12] at [127:76]. */
  AddressVA: fd('Address', 127, 76, 12),
  /** IPA/PA[55:12] at [119:76] (TLBI_S2_IPA; [55:52] RES0 before v3.4, [55:48] in v3.0). */
  AddressPA: fd('Address', 119, 76, 12),
  /** PA[55:2] at [119:66]. */
  MSIAddress: fd('MSIAddress', 119, 66, 2),
} as const;

/** What kind of command: drives legality and the explanation. */
export type CommandKind =
  | 'prefetch' | 'cfgi' | 'tlbi-nh' | 'tlbi-el3' | 'tlbi-el2' | 'tlbi-s2' | 'tlbi-nsnh'
  | 'atc' | 'pri' | 'stall' | 'sync' | 'dpti';

export interface CommandDef {
  readonly op: number;
  readonly name: string;
  readonly kind: CommandKind;
  readonly fields: readonly FieldDef[];
  /** Has an SSec bit (must be 0 on the Non-secure queue). */
  readonly hasSSec: boolean;
  /** Has the range/level-hint fields NUM/SCALE/TTL/TG (§4.4.1.1). */
  readonly rangeTlbi: boolean;
  /** Only legal on the Secure Command queue (opcodes 0x50-0x60). */
  readonly secureOnly: boolean;
  /** What the command does, in one sentence (§4.2-4.7; arch.md §1.5). */
  readonly effect: string;
}

const F = FIELD;
const RANGE_FIELDS = [F.NUM, F.SCALE, F.Leaf, F.TTL128, F.TTL, F.TG] as const;

function def(
  op: number, kind: CommandKind, fields: readonly FieldDef[], effect: string,
  extra: { secureOnly?: boolean } = {},
): CommandDef {
  const name = OPCODE_NAMES[op];
  return {
    op, name, kind, fields: [...fields].sort((a, b) => a.lsb - b.lsb),
    hasSSec: fields.includes(F.SSec),
    rangeTlbi: fields.includes(F.TG),
    secureOnly: extra.secureOnly ?? false,
    effect,
  };
}

const DEF_LIST: readonly CommandDef[] = [
  def(OP.CMD_PREFETCH_CONFIG, 'prefetch', [F.SSec, F.SSV, F.SubstreamID, F.StreamID],
    'Hint: the SMMU may prefetch the STE and CD for StreamID/SubstreamID; never records faults (§4.2.1).'),
  // Stride and NS also exist (v3.1+) but their positions are only in a diagram we could not read
  // (arch.md §7): bits [75:69] are treated as reserved here.
  def(OP.CMD_PREFETCH_ADDR, 'prefetch',
    [F.SSec, F.SSV, F.SubstreamID, F.StreamID, F.PrefetchSize, F.AddressVA],
    'Hint: the SMMU may prefetch configuration and the 2^Size translations from Address (§4.2).'),
  def(OP.CMD_CFGI_STE, 'cfgi', [F.SSec, F.StreamID, F.Leaf],
    'Invalidates the cached STE for StreamID, all CDs/L1CDs cached through it and its VMS info; Leaf=0 also the L1STD. TLB contents need not be touched (§4.3.1).'),
  def(OP.CMD_CFGI_STE_RANGE, 'cfgi', [F.SSec, F.StreamID, F.Range],
    'Invalidates cached STEs (and CDs cached through them, and L1STDs) for the 2^(Range+1) aligned StreamIDs containing StreamID (§4.3.2).'),
  def(OP.CMD_CFGI_CD, 'cfgi', [F.SSec, F.SubstreamID, F.StreamID, F.Leaf],
    'Invalidates the CD at index SubstreamID reached through StreamID; Leaf=0 also its L1CD (§4.3).'),
  def(OP.CMD_CFGI_CD_ALL, 'cfgi', [F.SSec, F.StreamID],
    'Invalidates all CDs and L1CDs cached through StreamID (§4.3).'),
  // VMID position for CFGI_VMS_PIDM is unconfirmed (diagram only, arch.md §7): [47:32] like TLBIs.
  def(OP.CMD_CFGI_VMS_PIDM, 'cfgi', [F.SSec, F.VMID],
    'Invalidates the cached VMS PARTID map for VMID (v3.2+, MPAM) (§4.3).'),
  def(OP.CMD_TLBI_NH_ALL, 'tlbi-nh', [F.VMID],
    'Invalidates all stage-1 NS-EL1 entries (incl. global and combined S1+S2) for VMID; not EL2/EL2-E2H (§4.4.2.1, like TLBI VMALLE1).'),
  def(OP.CMD_TLBI_NH_ASID, 'tlbi-nh', [F.VMID, F.ASID],
    'Invalidates non-global stage-1 NS-EL1 entries with ASID in VMID (§4.4.2, like TLBI ASIDE1).'),
  def(OP.CMD_TLBI_NH_VA, 'tlbi-nh', [...RANGE_FIELDS, F.VMID, F.ASID, F.AddressVA],
    'Invalidates stage-1 NS-EL1 entries for Address with ASID, plus global entries for Address whatever their ASID, in VMID (§4.4.2.4, like TLBI VA{L}E1).'),
  def(OP.CMD_TLBI_NH_VAA, 'tlbi-nh', [...RANGE_FIELDS, F.VMID, F.AddressVA],
    'Invalidates stage-1 NS-EL1 entries for Address for all ASIDs (incl. global) in VMID (§4.4.2.3, like TLBI VAA{L}E1).'),
  def(OP.CMD_TLBI_EL3_ALL, 'tlbi-el3', [],
    'Invalidates all EL3 StreamWorld entries (§4.4.2, like TLBI ALLE3).'),
  // Whether EL3_VA carries NUM/SCALE/TG/TTL is unconfirmed (arch.md §7); modelled like other VA ops.
  def(OP.CMD_TLBI_EL3_VA, 'tlbi-el3', [...RANGE_FIELDS, F.AddressVA],
    'Invalidates EL3 StreamWorld entries for Address (§4.4.2.6, like TLBI VA{L}E3).'),
  def(OP.CMD_TLBI_EL2_ALL, 'tlbi-el2', [],
    'Invalidates all NS-EL2 and NS-EL2-E2H entries, ASID-tagged or not (§4.4.2, like TLBI ALLE2).'),
  def(OP.CMD_TLBI_EL2_ASID, 'tlbi-el2', [F.ASID],
    'Invalidates non-global NS-EL2-E2H entries with ASID (§4.4.2, like TLBI ASIDE1 with HCR_EL2.{E2H,TGE}={1,1}).'),
  def(OP.CMD_TLBI_EL2_VA, 'tlbi-el2', [...RANGE_FIELDS, F.ASID, F.AddressVA],
    'Invalidates NS-EL2-E2H entries for Address with ASID (or global) when SMMU_CR2.E2H=1, NS-EL2 entries for Address when E2H=0 (§4.4.2, like TLBI VA{L}E2).'),
  def(OP.CMD_TLBI_EL2_VAA, 'tlbi-el2', [...RANGE_FIELDS, F.AddressVA],
    'Invalidates NS-EL2(-E2H) entries for Address for all ASIDs (§4.4.2.9, like TLBI VAA{L}E1 with {E2H,TGE}={1,1}).'),
  def(OP.CMD_TLBI_S12_VMALL, 'tlbi-s2', [F.VMID],
    'Invalidates all NS-EL1 entries of all stages (stage 1, stage 2 and combined) for VMID (§4.4.2, like TLBI VMALLS12E1).'),
  def(OP.CMD_TLBI_S2_IPA, 'tlbi-s2', [...RANGE_FIELDS, F.VMID, F.AddressPA],
    'Invalidates stage-2 entries for the IPA Address in VMID; combined S1+S2 entries need not be invalidated, so nesting needs a following NH_ALL/NH_VAA (§4.4.2, like TLBI IPAS2{L}E1).'),
  def(OP.CMD_TLBI_NSNH_ALL, 'tlbi-nsnh', [],
    'Invalidates all Non-secure non-EL2 entries of all stages and all VMIDs (§4.4.2, like TLBI ALLE1).'),
  def(OP.CMD_ATC_INV, 'atc', [F.Global, F.SSV, F.SubstreamID, F.StreamID, F.AtcSize, F.AddressVA],
    'Sends a PCIe ATS Invalidate Request for 4KiB*2^Size bytes at Address to the endpoint StreamID; completion is only known at a later CMD_SYNC (§4.5.1).'),
  def(OP.CMD_PRI_RESP, 'pri', [F.SSV, F.SubstreamID, F.StreamID, F.PRGIndex, F.Resp],
    'Sends a PCIe PRI Page Group Response for PRGIndex to StreamID/SubstreamID (§4.5.2).'),
  def(OP.CMD_RESUME, 'stall', [F.SSec, F.Ac, F.Ab, F.StreamID, F.STAG],
    'Retries or terminates the stalled transaction STAG of StreamID (§4.7).'),
  def(OP.CMD_STALL_TERM, 'stall', [F.SSec, F.StreamID],
    'Terminates all stalled transactions of StreamID (§4.7.2).'),
  def(OP.CMD_SYNC, 'sync', [F.CS, F.MSH, F.MSIAttr, F.MSIData, F.MSIAddress],
    'Completes when all earlier commands on this queue have completed (TLBI, CFGI, ATC_INV incl. transactions using removed entries), then signals per CS. Does not wait for broadcast TLBIs (§4.7.3).'),
  def(OP.CMD_TLBI_S_EL2_ALL, 'tlbi-el2', [],
    'Invalidates all Secure EL2 and EL2-E2H entries (Secure queue only).', { secureOnly: true }),
  def(OP.CMD_TLBI_S_EL2_ASID, 'tlbi-el2', [F.ASID],
    'Invalidates non-global Secure EL2-E2H entries with ASID (Secure queue only).', { secureOnly: true }),
  def(OP.CMD_TLBI_S_EL2_VA, 'tlbi-el2', [...RANGE_FIELDS, F.ASID, F.AddressVA],
    'Invalidates Secure EL2(-E2H) entries for Address with ASID (Secure queue only).', { secureOnly: true }),
  def(OP.CMD_TLBI_S_EL2_VAA, 'tlbi-el2', [...RANGE_FIELDS, F.AddressVA],
    'Invalidates Secure EL2(-E2H) entries for Address for all ASIDs (Secure queue only).', { secureOnly: true }),
  def(OP.CMD_TLBI_S_S12_VMALL, 'tlbi-s2', [F.VMID],
    'Invalidates all Secure EL1 entries of all stages for VMID (Secure queue only).', { secureOnly: true }),
  def(OP.CMD_TLBI_S_S2_IPA, 'tlbi-s2', [...RANGE_FIELDS, F.VMID, F.AddressPA],
    'Invalidates Secure stage-2 entries for the IPA Address in VMID (Secure queue only).', { secureOnly: true }),
  def(OP.CMD_TLBI_SNH_ALL, 'tlbi-nsnh', [],
    'Invalidates all Secure non-EL2 entries of all stages and all VMIDs (Secure queue only).', { secureOnly: true }),
  def(OP.CMD_DPTI_ALL, 'dpti', [],
    'Invalidates all cached Device Permission Table information (v3.3+ DPT).'),
  // DPTI_PA layout unconfirmed: PA[55:12] at [119:76] like TLBI_S2_IPA.
  def(OP.CMD_DPTI_PA, 'dpti', [F.AddressPA],
    'Invalidates cached Device Permission Table information for the physical address Address (v3.3+ DPT).'),
];

/** Command definitions indexed by opcode (undefined for reserved / IMPLEMENTATION DEFINED). */
export const COMMAND_DEFS: readonly (CommandDef | undefined)[] = (() => {
  const a: (CommandDef | undefined)[] = new Array(256).fill(undefined);
  for (const d of DEF_LIST) a[d.op] = d;
  return a;
})();
export const ALL_COMMAND_DEFS: readonly CommandDef[] = DEF_LIST;

export function commandDef(op: number): CommandDef | undefined {
  return COMMAND_DEFS[op & 0xff];
}

/**
 * Defined bits per opcode, as 4 words (Opcode included). Everything else is reserved (RES0):
 * non-zero reserved bits are CERROR_ILL only when the implementation detects them (§4.1.5),
 * which we model with `strictReserved`.
 */
const DEFINED_MASK = (() => {
  const m = new Uint32Array(256 * 4);
  for (const d of DEF_LIST) {
    m[d.op * 4] = 0xff;
    for (const f of d.fields) {
      for (let b = f.lsb; b <= f.msb; b++) m[d.op * 4 + (b >>> 5)] |= 1 << (b & 31);
    }
  }
  return m;
})();

/** Reserved bits of the command at w[off] that are non-zero, as 4 words (all 0 = none). */
export function reservedBitsSet(w: Uint32Array, off = 0): Uint32Array {
  const op = w[off] & 0xff;
  const r = new Uint32Array(4);
  if (COMMAND_DEFS[op] === undefined) return r;
  for (let i = 0; i < 4; i++) r[i] = (w[off + i] & ~DEFINED_MASK[op * 4 + i]) >>> 0;
  return r;
}

function hasReservedBits(w: Uint32Array, off: number, op: number): boolean {
  const b = op * 4;
  return ((w[off] & ~DEFINED_MASK[b]) | (w[off + 1] & ~DEFINED_MASK[b + 1])
    | (w[off + 2] & ~DEFINED_MASK[b + 2]) | (w[off + 3] & ~DEFINED_MASK[b + 3])) !== 0;
}

/** Absolute bit numbers of set bits in a 4-word mask, highest first. */
export function bitList(mask: Uint32Array): number[] {
  const out: number[] = [];
  for (let b = 127; b >= 0; b--) if ((mask[b >>> 5] >>> (b & 31)) & 1) out.push(b);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Hot-path accessors: read one field from ring storage w at word offset off. No allocation.

const TWO20 = 1048576;

export const cmdOpcode = (w: Uint32Array, off: number): number => w[off] & 0xff;
export const cmdGlobal = (w: Uint32Array, off: number): number => (w[off] >>> 9) & 1;
export const cmdSsec = (w: Uint32Array, off: number): number => (w[off] >>> 10) & 1;
export const cmdSsv = (w: Uint32Array, off: number): number => (w[off] >>> 11) & 1;
export const cmdSsid = (w: Uint32Array, off: number): number => w[off] >>> 12;
export const cmdNum = (w: Uint32Array, off: number): number => (w[off] >>> 12) & 0x1f;
/** SCALE [24:20] (Linux/QEMU width; see FIELD.SCALE). */
export const cmdScale = (w: Uint32Array, off: number): number => (w[off] >>> 20) & 0x1f;
/** CMD_SYNC CS [13:12]: 0 SIG_NONE, 1 SIG_IRQ, 2 SIG_SEV, 3 reserved. */
export const cmdCs = (w: Uint32Array, off: number): number => (w[off] >>> 12) & 3;
export const cmdMsh = (w: Uint32Array, off: number): number => (w[off] >>> 22) & 3;
export const cmdMsiAttr = (w: Uint32Array, off: number): number => (w[off] >>> 24) & 0xf;
/** CMD_RESUME Ac [12] (1 = retry) and Ab [13] (abort on terminate). */
export const cmdResumeAc = (w: Uint32Array, off: number): number => (w[off] >>> 12) & 1;
export const cmdResumeAb = (w: Uint32Array, off: number): number => (w[off] >>> 13) & 1;
export const cmdSid = (w: Uint32Array, off: number): number => w[off + 1] >>> 0;
export const cmdVmid = (w: Uint32Array, off: number): number => w[off + 1] & 0xffff;
export const cmdAsid = (w: Uint32Array, off: number): number => w[off + 1] >>> 16;
export const cmdMsiData = (w: Uint32Array, off: number): number => w[off + 1] >>> 0;
export const cmdLeaf = (w: Uint32Array, off: number): number => w[off + 2] & 1;
/** CMD_CFGI_STE_RANGE Range [68:64]: 2^(Range+1) StreamIDs; 31 = CMD_CFGI_ALL. */
export const cmdRange = (w: Uint32Array, off: number): number => w[off + 2] & 0x1f;
/** CMD_ATC_INV Size [69:64]: 4 KiB * 2^Size; 52 = everything. */
export const cmdAtcSize = (w: Uint32Array, off: number): number => w[off + 2] & 0x3f;
/** CMD_PREFETCH_ADDR Size [68:64]: 2^Size translations. */
export const cmdPrefetchSize = (w: Uint32Array, off: number): number => w[off + 2] & 0x1f;
export const cmdPrgIndex = (w: Uint32Array, off: number): number => w[off + 2] & 0x1ff;
export const cmdStag = (w: Uint32Array, off: number): number => w[off + 2] & 0xffff;
export const cmdTtl128 = (w: Uint32Array, off: number): number => (w[off + 2] >>> 7) & 1;
export const cmdTtl = (w: Uint32Array, off: number): number => (w[off + 2] >>> 8) & 3;
/** TG [75:74]: 0 no range, 1 4K, 2 16K, 3 64K. */
export const cmdTg = (w: Uint32Array, off: number): number => (w[off + 2] >>> 10) & 3;
export const cmdResp = (w: Uint32Array, off: number): number => (w[off + 2] >>> 12) & 3;
/** Address [127:76] = VA[63:12] as a page number (52 bits: exact in a double). */
export const cmdAddrPage = (w: Uint32Array, off: number): number =>
  (w[off + 3] >>> 0) * TWO20 + (w[off + 2] >>> 12);
/** Address [119:76] = IPA/PA[55:12] as a page number (TLBI_S2_IPA, DPTI_PA). */
export const cmdIpaPage = (w: Uint32Array, off: number): number =>
  (w[off + 3] & 0xffffff) * TWO20 + (w[off + 2] >>> 12);
/** CMD_SYNC MSIAddress [119:66] = PA[55:2], as a byte address (not hot: bigint). */
export function cmdMsiAddr(w: Uint32Array, off: number): bigint {
  return (BigInt(w[off + 3] & 0xffffff) << 32n) | BigInt((w[off + 2] & 0xfffffffc) >>> 0);
}

/** Granule size in bytes for TG (0 → 0: not a range operation). */
export function tgBytes(tg: number): number {
  return tg === 1 ? 4096 : tg === 2 ? 16384 : tg === 3 ? 65536 : 0;
}
/** Number of granules covered by a range TLBI: (NUM+1) * 2^SCALE (§4.4.1.1). */
export function rangeGranules(num: number, scale: number): number {
  return (num + 1) * 2 ** scale;
}

// ---------------------------------------------------------------------------------------------
// Allocation-free writers for the driver model's hot path. They overwrite all four words.

/**
 * TLBI with the common layout (NH_*, EL2_*, S12_VMALL, S2_IPA, ...). Fields a command does not
 * have must be passed as 0. addrPage = address >> 12 (VA[63:12] or IPA[55:12]).
 */
export function writeTlbi(
  w: Uint32Array, off: number, op: number, vmid: number, asid: number, addrPage: number,
  leaf: number, ttl: number, tg: number, num: number, scale: number,
): void {
  w[off] = ((op & 0xff) | ((num & 0x1f) << 12) | ((scale & 0x1f) << 20)) >>> 0;
  w[off + 1] = ((vmid & 0xffff) | ((asid & 0xffff) << 16)) >>> 0;
  w[off + 2] = ((leaf & 1) | ((ttl & 3) << 8) | ((tg & 3) << 10) | ((addrPage % TWO20) << 12)) >>> 0;
  w[off + 3] = Math.floor(addrPage / TWO20) >>> 0;
}

/** CMD_CFGI_STE / CFGI_CD / CFGI_CD_ALL / CFGI_STE_RANGE (leafOrRange goes to [68:64]). */
export function writeCfgi(
  w: Uint32Array, off: number, op: number, sid: number, ssid: number, leafOrRange: number,
): void {
  w[off] = ((op & 0xff) | ((ssid & 0xfffff) << 12)) >>> 0;
  w[off + 1] = sid >>> 0;
  w[off + 2] = leafOrRange & 0x1f;
  w[off + 3] = 0;
}

/** CMD_SYNC. msiAddr is a byte address (4-byte aligned) as a number (< 2^53). */
export function writeSync(
  w: Uint32Array, off: number, cs: number, msh: number, msiAttr: number, msiData: number,
  msiAddr: number,
): void {
  w[off] = (OP.CMD_SYNC | ((cs & 3) << 12) | ((msh & 3) << 22) | ((msiAttr & 0xf) << 24)) >>> 0;
  w[off + 1] = msiData >>> 0;
  w[off + 2] = (msiAddr % 4294967296) & 0xfffffffc;
  w[off + 3] = Math.floor(msiAddr / 4294967296) & 0xffffff;
}

/** CMD_ATC_INV. addrPage = address >> 12. */
export function writeAtcInv(
  w: Uint32Array, off: number, sid: number, ssv: number, ssid: number, global: number,
  size: number, addrPage: number,
): void {
  w[off] = (OP.CMD_ATC_INV | ((global & 1) << 9) | ((ssv & 1) << 11) | ((ssid & 0xfffff) << 12)) >>> 0;
  w[off + 1] = sid >>> 0;
  w[off + 2] = ((size & 0x3f) | ((addrPage % TWO20) << 12)) >>> 0;
  w[off + 3] = Math.floor(addrPage / TWO20) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// 128-bit conversions

/** Raised for malformed textual input (hex words, --encode specs). One-line message. */
export class CommandSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandSyntaxError';
  }
}

const M32 = 0xffffffffn;

/** From the two 64-bit halves as a driver writes them: dw0 = bits [63:0], dw1 = [127:64]. */
export function fromDwords(dw0: bigint, dw1: bigint): Uint32Array {
  const w = new Uint32Array(4);
  w[0] = Number(dw0 & M32);
  w[1] = Number((dw0 >> 32n) & M32);
  w[2] = Number(dw1 & M32);
  w[3] = Number((dw1 >> 32n) & M32);
  return w;
}

/** [dw0, dw1]: bits [63:0] and [127:64]. */
export function toDwords(w: Uint32Array, off = 0): [bigint, bigint] {
  return [
    (BigInt(w[off + 1] >>> 0) << 32n) | BigInt(w[off] >>> 0),
    (BigInt(w[off + 3] >>> 0) << 32n) | BigInt(w[off + 2] >>> 0),
  ];
}

export function toBigInt128(w: Uint32Array, off = 0): bigint {
  const [dw0, dw1] = toDwords(w, off);
  return (dw1 << 64n) | dw0;
}

export function fromBigInt128(x: bigint): Uint32Array {
  return fromDwords(x & 0xffffffffffffffffn, (x >> 64n) & 0xffffffffffffffffn);
}

/** The 128-bit value as one big-endian number: 32 hex digits, no prefix (dw1 then dw0). */
export function toHex32(w: Uint32Array, off = 0): string {
  let s = '';
  for (let i = 3; i >= 0; i--) s += (w[off + i] >>> 0).toString(16).padStart(8, '0');
  return s;
}

export function hex64(x: bigint): string {
  return '0x' + x.toString(16).padStart(16, '0');
}

/**
 * Parse a command written either
 *  - as ONE 128-bit number, big-endian: 32 hex digits, optional 0x prefix and `_` separators
 *    (e.g. `0x00000000ffff6d01_1234000500000012`: dw1 first, then dw0); or
 *  - as TWO 64-bit words in driver dump order, dw0 first then dw1, separated by spaces or a
 *    comma, each 1-16 hex digits with optional 0x (e.g. `0x1234000500000012 0xffff6d01`).
 * Throws CommandSyntaxError otherwise.
 */
export function fromHex32(text: string): Uint32Array {
  const tokens = text.trim().split(/[\s,]+/).filter((t) => t.length > 0);
  const clean = (t: string): string => t.replace(/^0x/i, '').replace(/_/g, '');
  if (tokens.length === 1) {
    const h = clean(tokens[0]);
    if (!/^[0-9a-fA-F]{32}$/.test(h)) {
      throw new CommandSyntaxError(`expected 32 hex digits or two 64-bit words, got "${text.trim()}"`);
    }
    return fromBigInt128(BigInt('0x' + h));
  }
  if (tokens.length === 2) {
    const [a, b] = tokens.map(clean);
    if (!/^[0-9a-fA-F]{1,16}$/.test(a) || !/^[0-9a-fA-F]{1,16}$/.test(b)) {
      throw new CommandSyntaxError(
        `expected two 64-bit words (dw0 dw1, at most 16 hex digits each), got "${text.trim()}"`);
    }
    return fromDwords(BigInt('0x' + a), BigInt('0x' + b));
  }
  throw new CommandSyntaxError(`expected 32 hex digits or two 64-bit words, got "${text.trim()}"`);
}

// ---------------------------------------------------------------------------------------------
// Generic decode / encode (not hot: uses bigint)

export type FieldValue = number | bigint;

/**
 * A decoded command. `fields` holds every field of the command by its spec name (numbers for
 * fields of at most 32 bits; bigint byte addresses for Address and MSIAddress). Reserved
 * opcodes decode to a name like `RESERVED_0x08` / `IMPDEF_0x80` and no fields.
 */
export interface CommandFields {
  op: number;
  name: string;
  fields: Record<string, FieldValue>;
}

/** Input to encodeCommand: op or name (CMD_CFGI_ALL allowed), and any subset of the fields (missing = 0). */
export interface CommandSpec {
  op?: number;
  name?: string;
  fields?: Record<string, FieldValue | undefined>;
}

function fieldWidth(f: FieldDef): number {
  return f.msb - f.lsb + 1;
}

function getBits(x: bigint, f: FieldDef): bigint {
  return (x >> BigInt(f.lsb)) & ((1n << BigInt(fieldWidth(f))) - 1n);
}

export function unknownOpcodeName(op: number): string {
  const h = op.toString(16).padStart(2, '0');
  return isImpDefOpcode(op) ? `IMPDEF_0x${h}` : `RESERVED_0x${h}`;
}

/** Name as decode reports it (0x04 with Range=31 → CMD_CFGI_ALL). */
export function commandName(w: Uint32Array, off = 0): string {
  const op = cmdOpcode(w, off);
  if (op === OP.CMD_CFGI_STE_RANGE && cmdRange(w, off) === 31) return 'CMD_CFGI_ALL';
  return OPCODE_NAMES[op] ?? unknownOpcodeName(op);
}

/** Decode any 128-bit value. Never throws; reserved bits are dropped (see reservedBitsSet). */
export function decodeCommand(w: Uint32Array, off = 0): CommandFields {
  const op = cmdOpcode(w, off);
  const d = COMMAND_DEFS[op];
  const fields: Record<string, FieldValue> = {};
  if (d !== undefined) {
    const x = toBigInt128(w, off);
    for (const f of d.fields) {
      const raw = getBits(x, f);
      fields[f.name] = f.shift !== undefined ? raw << BigInt(f.shift) : Number(raw);
    }
  }
  return { op, name: commandName(w, off), fields };
}

/**
 * Resolve a command name to its opcode: any case, with or without CMD_, and for TLBIs also
 * without CMD_TLBI_ (NH_VA, S2_IPA: no other command has such a name).
 */
export function opcodeByName(name: string): number | undefined {
  let n = name.trim().toUpperCase();
  if (n.startsWith('CMD_')) n = n.slice(4);
  const ops = OP as Record<string, number>;
  return ops['CMD_' + n] ?? ops['CMD_TLBI_' + n];
}

/**
 * Encode a command. Unknown field names, values out of range and unaligned addresses throw a
 * RangeError (encode is for programs; the CLI validates first with parseEncodeSpec).
 */
export function encodeCommand(spec: CommandSpec): Uint32Array {
  let op = spec.op;
  let cfgiAll = false;
  if (spec.name !== undefined) {
    const byName = opcodeByName(spec.name);
    if (byName === undefined) throw new RangeError(`unknown command name ${spec.name}`);
    if (op !== undefined && op !== byName) {
      throw new RangeError(`op 0x${op.toString(16)} does not match name ${spec.name}`);
    }
    op = byName;
    cfgiAll = /^(CMD_)?CFGI_ALL$/i.test(spec.name.trim());
  }
  if (op === undefined || !Number.isInteger(op) || op < 0 || op > 0xff) {
    throw new RangeError(`opcode must be an integer 0..0xff, got ${String(op)}`);
  }
  const d = COMMAND_DEFS[op];
  const given = spec.fields ?? {};
  let x = BigInt(op);
  if (d === undefined) {
    for (const [k, v] of Object.entries(given)) {
      if (v !== undefined) throw new RangeError(`opcode 0x${op.toString(16)} has no field ${k}`);
    }
    return fromBigInt128(x);
  }
  const byName = new Map(d.fields.map((f) => [f.name, f]));
  for (const k of Object.keys(given)) {
    if (given[k] !== undefined && !byName.has(k)) {
      throw new RangeError(`${d.name} has no field ${k} (fields: ${d.fields.map((f) => f.name).join(', ') || 'none'})`);
    }
  }
  for (const f of d.fields) {
    let v = given[f.name];
    if (cfgiAll && f === F.Range) {
      if (v !== undefined && BigInt(v) !== 31n) throw new RangeError('CMD_CFGI_ALL has Range=31');
      v = 31;
    }
    if (v === undefined) continue;
    if (typeof v === 'number' && !Number.isSafeInteger(v)) {
      throw new RangeError(`${d.name} ${f.name}: not an integer: ${v}`);
    }
    let raw = BigInt(v);
    const width = BigInt(fieldWidth(f));
    if (f.shift !== undefined) {
      const s = BigInt(f.shift);
      if (raw < 0n || (raw & ((1n << s) - 1n)) !== 0n) {
        throw new RangeError(`${d.name} ${f.name}: 0x${raw.toString(16)} is not ${2 ** f.shift}-byte aligned`);
      }
      raw >>= s;
      if (raw >= (1n << width)) {
        throw new RangeError(`${d.name} ${f.name}: 0x${BigInt(v).toString(16)} exceeds ${f.msb - f.lsb + 1 + f.shift} address bits`);
      }
    } else if (raw < 0n || raw >= (1n << width)) {
      throw new RangeError(`${d.name} ${f.name}: ${v} out of range 0..0x${((1n << width) - 1n).toString(16)}`);
    }
    x |= raw << BigInt(f.lsb);
  }
  return fromBigInt128(x);
}

// ---------------------------------------------------------------------------------------------
// Legality (§4.1.3, §4.1.5, §7.1 and the per-command "CERROR_ILL" rules; arch.md §1.2, §1.5)

export interface CheckOptions {
  /** The command arrives on the Secure Command queue (SMMU_S_CMDQ_*), else Non-secure. */
  secureQueue: boolean;
  /**
   * Model an implementation that detects non-zero reserved (RES0) fields and reports
   * CERROR_ILL, which §4.1.5 permits but does not require. Default false: reserved bits are
   * ignored.
   */
  strictReserved?: boolean;
}

export type CheckResult =
  | { readonly err: 0 }
  | { readonly err: typeof CERROR.ILL; readonly reason: string };

const LEGAL: CheckResult = Object.freeze({ err: 0 as const });
const ill = (reason: string): CheckResult => ({ err: CERROR.ILL, reason });

/**
 * Would this command be accepted, or stop the queue with CERROR_ILL? Never throws, allocates
 * nothing for a legal command. Precedence follows §4.1.3 (CERROR_ILL beats IGNORED): opcode,
 * queue, implemented features, parameters, then (optionally) reserved bits.
 */
export function checkCommand(
  w: Uint32Array, off: number, features: SmmuFeatures, opts: CheckOptions,
): CheckResult {
  const op = w[off] & 0xff;
  const d = COMMAND_DEFS[op];
  if (d === undefined) {
    const hex = '0x' + op.toString(16).padStart(2, '0');
    if (isImpDefOpcode(op)) {
      return ill(`opcode ${hex} is IMPLEMENTATION DEFINED and this SMMU implements none (§4.1.1)`);
    }
    return ill(`opcode ${hex} is Reserved (§4.1.1)`);
  }
  const name = op === OP.CMD_CFGI_STE_RANGE && cmdRange(w, off) === 31 ? 'CMD_CFGI_ALL' : d.name;
  const strict = opts.strictReserved === true;

  // Queue: Secure-only commands and SSec=1 are not accepted on the Non-secure queue (§4.1.6).
  if (!opts.secureQueue) {
    if (d.secureOnly) return ill(`${name}: Secure-only command on the Non-secure Command queue`);
    if (d.hasSSec && cmdSsec(w, off) === 1) return ill(`${name}: SSec=1 on the Non-secure Command queue`);
  }

  // Features: a command irrelevant to the implementation is CERROR_ILL (§7.1).
  switch (op) {
    case OP.CMD_CFGI_CD:
    case OP.CMD_CFGI_CD_ALL:
    case OP.CMD_TLBI_NH_ALL:
    case OP.CMD_TLBI_NH_ASID:
    case OP.CMD_TLBI_NH_VA:
    case OP.CMD_TLBI_NH_VAA:
      if (!features.s1p) return ill(`${name}: stage 1 not implemented (SMMU_IDR0.S1P=0)`);
      break;
    case OP.CMD_TLBI_S12_VMALL:
    case OP.CMD_TLBI_S2_IPA:
    case OP.CMD_TLBI_S_S12_VMALL:
    case OP.CMD_TLBI_S_S2_IPA:
      // Secure-queue variants: the model has no SMMU_S_IDR1.SEL2 view; S2P approximates it.
      if (!features.s2p) return ill(`${name}: stage 2 not implemented (SMMU_IDR0.S2P=0)`);
      break;
    case OP.CMD_TLBI_EL2_ALL:
    case OP.CMD_TLBI_EL2_ASID:
    case OP.CMD_TLBI_EL2_VA:
    case OP.CMD_TLBI_EL2_VAA:
    case OP.CMD_TLBI_S_EL2_ALL:
    case OP.CMD_TLBI_S_EL2_ASID:
    case OP.CMD_TLBI_S_EL2_VA:
    case OP.CMD_TLBI_S_EL2_VAA:
      if (!features.hyp) return ill(`${name}: EL2 StreamWorlds not implemented (SMMU_IDR0.Hyp=0)`);
      break;
    case OP.CMD_TLBI_EL3_ALL:
    case OP.CMD_TLBI_EL3_VA:
      // EL3 StreamWorld: only with RME, and never from the Non-secure (or Realm) queue (§4.4.2).
      if (!features.rme) return ill(`${name}: EL3 StreamWorld not implemented (SMMU_IDR0.RME_IMPL=0)`);
      if (!opts.secureQueue) return ill(`${name}: EL3 command on the Non-secure Command queue`);
      break;
    case OP.CMD_CFGI_VMS_PIDM:
      if (!features.mpam || features.archMinor < 2) {
        return ill(`${name}: requires SMMUv3.2+ with MPAM (SMMU_IDR3.MPAM=${features.mpam ? 1 : 0}, SMMU_AIDR.ArchMinorRev=${features.archMinor})`);
      }
      break;
    case OP.CMD_DPTI_ALL:
    case OP.CMD_DPTI_PA:
      if (!features.dpt) return ill(`${name}: Device Permission Table not implemented (SMMU_IDR3.DPT=0)`);
      break;
    case OP.CMD_ATC_INV:
      if (!features.ats) return ill(`${name}: ATS not implemented (SMMU_IDR0.ATS=0)`);
      break;
    case OP.CMD_PRI_RESP:
      if (!features.pri) return ill(`${name}: PRI not implemented (SMMU_IDR0.PRI=0)`);
      if (cmdResp(w, off) === 3) return ill(`${name}: Resp=0b11 is Reserved (§4.5.2)`);
      break;
    case OP.CMD_RESUME:
    case OP.CMD_STALL_TERM:
      if (features.stallModel === 1) {
        return ill(`${name}: stalling not supported (SMMU_IDR0.STALL_MODEL=0b01)`);
      }
      break;
    case OP.CMD_SYNC:
      if (cmdCs(w, off) === 3) return ill(`${name}: CS=0b11 is Reserved (§4.7.3)`);
      break;
    default:
      break;
  }

  // Range invalidation / level hint (§4.4.1.1).
  if (d.rangeTlbi) {
    const tg = cmdTg(w, off);
    const ttl = cmdTtl(w, off);
    const num = cmdNum(w, off);
    const scale = cmdScale(w, off);
    if (!features.ril) {
      // Without IDR3.RIL the range fields are RES0: ILL only if reserved fields are checked.
      if (strict && (tg | ttl | num | scale | cmdTtl128(w, off)) !== 0) {
        return ill(`${name}: TG/TTL/NUM/SCALE non-zero but range invalidation not implemented (SMMU_IDR3.RIL=0); these fields are RES0 (reserved field non-zero, §4.1.5)`);
      }
    } else if (tg !== 0) {
      // TTL128 (v3.4) changes what TTL=0 means, so the Reserved encoding is only NUM=SCALE=TTL=0 with TTL128=0.
      if (num === 0 && scale === 0 && ttl === 0 && cmdTtl128(w, off) === 0) {
        return ill(`${name}: range TLBI with TG!=0 and NUM=SCALE=TTL=0 is Reserved (§4.4.1.1)`);
      }
      if (tg === 2 && ttl === 1 && !features.ds) {
        return ill(`${name}: TG=16K with TTL=0b01 (level 1) requires SMMU_IDR5.DS=1 (§4.4.1.1)`);
      }
    } else if (strict && (num | scale | ttl) !== 0) {
      return ill(`${name}: NUM/SCALE/TTL non-zero with TG=0 (RES0 when TG=0; reserved field non-zero, §4.1.5)`);
    }
    if (strict && cmdTtl128(w, off) !== 0 && features.archMinor < 4) {
      return ill(`${name}: TTL128=1 before SMMUv3.4 (RES0; reserved field non-zero, §4.1.5)`);
    }
  }

  if (strict) {
    if (hasReservedBits(w, off, op)) {
      const bits = bitList(reservedBitsSet(w, off));
      const scaleNote = d.rangeTlbi && bits.includes(25)
        ? ' (bit 25: SCALE is [24:20] here as in Linux/QEMU, [25:20] in G.b diagrams)' : '';
      return ill(`${name}: reserved bit${bits.length > 1 ? 's' : ''} ${formatBits(bits)} non-zero (RES0; detection is optional, §4.1.5)${scaleNote}`);
    }
    // IPA/PA[55:52] are RES0 before v3.4 and [55:48] in v3.0 (OA size limits).
    if (d.fields.includes(F.AddressPA)) {
      const top = (w[off + 3] >>> 16) & 0xff; // PA[55:48]
      const lim = features.archMinor === 0 ? top : features.archMinor < 4 ? top >>> 4 : 0;
      if (lim !== 0) {
        return ill(`${name}: Address bits above PA[${features.archMinor === 0 ? 47 : 51}] are RES0 in SMMUv3.${features.archMinor} (reserved field non-zero, §4.1.5)`);
      }
    }
  }
  return LEGAL;
}

/** "[127:120,25]" style list of absolute bit numbers, runs collapsed. */
export function formatBits(bits: number[]): string {
  const sorted = [...bits].sort((a, b) => b - a);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] - 1) j++;
    parts.push(j === i ? `${sorted[i]}` : `${sorted[i]}:${sorted[j]}`);
    i = j + 1;
  }
  return `[${parts.join(',')}]`;
}
