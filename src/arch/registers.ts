/**
 * SMMUv3 register fields (IHI 0070 G.b §6.3; arch.md §2). Facts only: bit positions and the
 * feature view derived from the ID registers.
 */

/** A bit field: [msb:lsb]. */
export interface Field { readonly lsb: number; readonly width: number }
const f = (msb: number, lsb: number): Field => ({ lsb, width: msb - lsb + 1 });

export function getField(reg: number, fld: Field): number {
  return fld.width >= 32 ? reg >>> 0 : (reg >>> fld.lsb) & ((1 << fld.width) - 1);
}
export function setField(reg: number, fld: Field, v: number): number {
  const mask = (fld.width >= 32 ? 0xffffffff : ((1 << fld.width) - 1)) << fld.lsb;
  return ((reg & ~mask) | ((v << fld.lsb) & mask)) >>> 0;
}

/** SMMU_IDR0 (offset 0x0), §6.3.1. */
export const IDR0 = {
  S2P: f(0, 0), S1P: f(1, 1), TTF: f(3, 2), COHACC: f(4, 4), BTM: f(5, 5), HTTU: f(7, 6),
  DORMHINT: f(8, 8), HYP: f(9, 9), ATS: f(10, 10), NS1ATS: f(11, 11), ASID16: f(12, 12),
  MSI: f(13, 13), SEV: f(14, 14), ATOS: f(15, 15), PRI: f(16, 16), VMW: f(17, 17),
  VMID16: f(18, 18), CD2L: f(19, 19), VATOS: f(20, 20), TTENDIAN: f(22, 21), ATSRECERR: f(23, 23),
  STALL_MODEL: f(25, 24), TERM_MODEL: f(26, 26), ST_LEVEL: f(28, 27), RME_IMPL: f(30, 30),
} as const;

/** SMMU_IDR1 (0x4), §6.3.2. */
export const IDR1 = {
  SIDSIZE: f(5, 0), SSIDSIZE: f(10, 6), PRIQS: f(15, 11), EVENTQS: f(20, 16), CMDQS: f(25, 21),
  ATTR_PERMS_OVR: f(26, 26), ATTR_TYPES_OVR: f(27, 27), REL: f(28, 28), QUEUES_PRESET: f(29, 29),
  TABLES_PRESET: f(30, 30), ECMDQ: f(31, 31),
} as const;

/** SMMU_IDR3 (0xC), §6.3.4 (selected). */
export const IDR3 = {
  HAD: f(2, 2), PBHA: f(3, 3), XNX: f(4, 4), PPS: f(5, 5), MPAM: f(7, 7), FWB: f(8, 8), STT: f(9, 9),
  RIL: f(10, 10), BBML: f(12, 11), E0PD: f(13, 13), PTWNNC: f(14, 14), DPT: f(15, 15),
} as const;

/** SMMU_IDR5 (0x14), §6.3.6. */
export const IDR5 = {
  OAS: f(2, 0), GRAN4K: f(4, 4), GRAN16K: f(5, 5), GRAN64K: f(6, 6), DS: f(7, 7), D128: f(8, 8),
  VAX: f(11, 10), STALL_MAX: f(31, 16),
} as const;

/** SMMU_CR0 (0x20), §6.3.9. */
export const CR0 = {
  SMMUEN: f(0, 0), PRIQEN: f(1, 1), EVENTQEN: f(2, 2), CMDQEN: f(3, 3), ATSCHK: f(4, 4),
  VMW: f(8, 6), DPT_WALK_EN: f(10, 10),
} as const;

/** SMMU_CR2 (0x2C), §6.3.12. */
export const CR2 = { E2H: f(0, 0), RECINVSID: f(1, 1), PTM: f(2, 2), REC_CFG_ATS: f(3, 3) } as const;

/** SMMU_CMDQ_CONS (0x9C), §6.3.28. */
export const CMDQ_CONS = { RD: f(19, 0), ERR: f(30, 24) } as const;

/** SMMU_GERROR / GERRORN bits (§6.3.19-20). */
export const GERROR = {
  CMDQ_ERR: 0, EVENTQ_ABT_ERR: 2, PRIQ_ABT_ERR: 3, MSI_CMDQ_ABT_ERR: 4, MSI_EVENTQ_ABT_ERR: 5,
  MSI_PRIQ_ABT_ERR: 6, MSI_GERROR_ABT_ERR: 7, SFM_ERR: 8, CMDQP_ERR: 9, DPT_ERR: 10,
} as const;

/** Register offsets (§6.2). */
export const REG = {
  IDR0: 0x0, IDR1: 0x4, IDR2: 0x8, IDR3: 0xc, IDR4: 0x10, IDR5: 0x14, IIDR: 0x18, AIDR: 0x1c,
  CR0: 0x20, CR0ACK: 0x24, CR1: 0x28, CR2: 0x2c, GBPA: 0x44, IRQ_CTRL: 0x50, IRQ_CTRLACK: 0x54,
  GERROR: 0x60, GERRORN: 0x64, STRTAB_BASE: 0x80, STRTAB_BASE_CFG: 0x88, CMDQ_BASE: 0x90,
  CMDQ_PROD: 0x98, CMDQ_CONS: 0x9c, EVENTQ_BASE: 0xa0,
} as const;

/** CMDQ_CONS.ERR codes (§7.1). */
export const CERROR = { NONE: 0, ILL: 1, ABT: 2, ATC_INV_SYNC: 3 } as const;
export const CERROR_NAMES: Record<number, string> = {
  0: 'CERROR_NONE', 1: 'CERROR_ILL', 2: 'CERROR_ABT', 3: 'CERROR_ATC_INV_SYNC',
};

/**
 * What command legality and matching depend on: a decoded view of the ID registers plus the
 * queue a command arrives on. Built from IDR0/IDR3/IDR5/AIDR by `featuresFromIdr`.
 */
export interface SmmuFeatures {
  s1p: boolean;
  s2p: boolean;
  /** IDR0.Hyp: EL2 / EL2-E2H StreamWorlds; CMD_TLBI_EL2_* legal. */
  hyp: boolean;
  btm: boolean;
  ats: boolean;
  pri: boolean;
  msi: boolean;
  sev: boolean;
  asid16: boolean;
  vmid16: boolean;
  vmw: boolean;
  /** IDR0.STALL_MODEL: 0b01 = no stall (RESUME / STALL_TERM illegal). */
  stallModel: number;
  termModel: boolean;
  /** IDR0.RME_IMPL: EL3 commands only meaningful with RME (and then only on the Root/Secure side). */
  rme: boolean;
  /** IDR3.RIL: range invalidation and level hint. */
  ril: boolean;
  /** IDR3.MPAM (with VMS: CMD_CFGI_VMS_PIDM legal, v3.2+). */
  mpam: boolean;
  /** IDR3.DPT (CMD_DPTI_* legal, v3.3+). */
  dpt: boolean;
  /** IDR5.DS: 52-bit addresses with 4K/16K (TG=16K,TTL=01 legal only if DS). */
  ds: boolean;
  /** AIDR.ArchMinorRev: 0..4 for v3.0..v3.4. */
  archMinor: number;
}

export interface IdrValues { idr0: number; idr3: number; idr5: number; aidr: number }

export function featuresFromIdr(r: IdrValues): SmmuFeatures {
  const g = (reg: number, fld: Field) => getField(reg, fld);
  return {
    s1p: g(r.idr0, IDR0.S1P) === 1,
    s2p: g(r.idr0, IDR0.S2P) === 1,
    hyp: g(r.idr0, IDR0.HYP) === 1,
    btm: g(r.idr0, IDR0.BTM) === 1,
    ats: g(r.idr0, IDR0.ATS) === 1,
    pri: g(r.idr0, IDR0.PRI) === 1,
    msi: g(r.idr0, IDR0.MSI) === 1,
    sev: g(r.idr0, IDR0.SEV) === 1,
    asid16: g(r.idr0, IDR0.ASID16) === 1,
    vmid16: g(r.idr0, IDR0.VMID16) === 1,
    vmw: g(r.idr0, IDR0.VMW) === 1,
    stallModel: g(r.idr0, IDR0.STALL_MODEL),
    termModel: g(r.idr0, IDR0.TERM_MODEL) === 1,
    rme: g(r.idr0, IDR0.RME_IMPL) === 1,
    ril: g(r.idr3, IDR3.RIL) === 1,
    mpam: g(r.idr3, IDR3.MPAM) === 1,
    dpt: g(r.idr3, IDR3.DPT) === 1,
    ds: g(r.idr5, IDR5.DS) === 1,
    archMinor: r.aidr & 0xf,
  };
}

/** A generous default: v3.2 SMMU with S1+S2, Hyp, BTM, ATS, 16-bit IDs, RIL, MSI. */
export function defaultFeatures(over: Partial<SmmuFeatures> = {}): SmmuFeatures {
  return {
    s1p: true, s2p: true, hyp: true, btm: true, ats: true, pri: false, msi: true, sev: true,
    asid16: true, vmid16: true, vmw: false, stallModel: 1, termModel: false, rme: false,
    ril: true, mpam: false, dpt: false, ds: false, archMinor: 2, ...over,
  };
}
