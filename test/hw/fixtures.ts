/**
 * Shared helpers for the hardware-model tests: systems with an enabled SMMU, a fixed population of
 * TLB entries identified by name (through the `ctx` field, which never takes part in matching),
 * and command-queue helpers that build real 128-bit commands with the arch/commands.ts encoders.
 */
import { writeCfgi, writeSync, writeTlbi } from '../../src/arch/commands.js';
import { CR0, CR2, IDR0, REG, setField, type Field } from '../../src/arch/registers.js';
import { Stage, World } from '../../src/arch/world.js';
import type { IssuerRegime } from '../../src/hw/tlbi-scope.js';
import { defaultSmmuKnobs, type SmmuKnobs } from '../../src/hw/knobs.js';
import { defaultSmmuParams, type Smmu, type SmmuParams } from '../../src/hw/smmu/smmu.js';
import { HwSystem } from '../../src/hw/system.js';
import type { Tlb } from '../../src/hw/tlb/tlb.js';
import type { TlbGeometry } from '../../src/hw/tlb/tlb-api.js';
import type { TlbEntry } from '../../src/hw/tlb/scope.js';

/** Fully associative: a fixture of many entries at one address must not evict itself. */
export const FULLY_ASSOC: TlbGeometry = { entries: 64, ways: 64, policy: 'lru' };

/** IDR0 with some fields changed. */
export function idr0With(over: Partial<Record<keyof typeof IDR0, number>>, base = defaultSmmuParams().idr0): number {
  let v = base;
  for (const [k, val] of Object.entries(over)) v = setField(v, (IDR0 as Record<string, Field>)[k], val as number);
  return v;
}

export interface SysOpts {
  cpus?: number;
  vhe?: boolean;
  cpuTlb?: TlbGeometry;
  smmu?: Partial<SmmuParams>;
  knobs?: Partial<SmmuKnobs>;
  /** CR2.PTM written before enabling (default 0: the SMMU takes part in BTM). */
  ptm?: 0 | 1;
  /** CR2.E2H written before enabling (default 0). */
  e2h?: 0 | 1;
  /** Leave the SMMU disabled (default false). */
  disabled?: boolean;
}

/** Program CR2 while disabled, then CR0.CMDQEN|SMMUEN, as src/sim/demo.ts does. */
export function enableSmmu(smmu: Smmu, ptm: 0 | 1 = 0, e2h: 0 | 1 = 0): void {
  smmu.writeReg(REG.CR2, setField(setField(setField(0, CR2.PTM, ptm), CR2.E2H, e2h), CR2.RECINVSID, 1));
  smmu.writeReg(REG.CR0, setField(setField(0, CR0.CMDQEN, 1), CR0.SMMUEN, 1));
}

export function makeSystem(o: SysOpts = {}): { sys: HwSystem; smmu: Smmu } {
  const params = defaultSmmuParams({ tlb: FULLY_ASSOC, ...o.smmu, knobs: defaultSmmuKnobs(o.knobs) });
  const sys = new HwSystem({ cpus: o.cpus ?? 2, vhe: o.vhe ?? false, cpuTlb: o.cpuTlb ?? FULLY_ASSOC, smmus: [params] });
  const smmu = sys.smmus[0];
  if (!o.disabled) enableSmmu(smmu, o.ptm ?? 0, o.e2h ?? 0);
  return { sys, smmu };
}

/** A TLB entry with defaults: NS-EL1 stage-1 4K leaf at level 3, 4K granule. */
export function ent(p: Partial<TlbEntry>): TlbEntry {
  return {
    world: World.NS_EL1, vmid: 0, asid: -1, global: false, aset: 0, stage: Stage.S1, page: 0, sizeLog2: 0,
    granuleLog2: 12, level: 3, leaf: 1, out: 0x900000, ctx: 0, ...p,
  };
}

/** Fill named entries; entry i gets ctx = i. Returns the names in ctx order. */
export function fillNamed(tlb: Tlb, pop: Record<string, Partial<TlbEntry>>): string[] {
  const names = Object.keys(pop);
  names.forEach((n, i) => {
    const e = ent({ ...pop[n], ctx: i });
    tlb.fill({ ...e, out: e.out - (e.out % 2 ** e.sizeLog2) });
  });
  if (tlb.size !== names.length) throw new Error(`fixture evicted entries: ${tlb.size}/${names.length}`);
  return names;
}

/** Names of the entries still in the TLB, sorted. */
export function survivors(tlb: Tlb, names: string[]): string[] {
  return tlb.entries().map((e) => names[e.ctx]).sort();
}

/** Names removed (all names minus survivors), sorted. */
export function removed(tlb: Tlb, names: string[]): string[] {
  const s = new Set(survivors(tlb, names));
  return names.filter((n) => !s.has(n)).sort();
}

// ---------------------------------------------------------------------------------------------
// The fixed population of arch.md §3.3 tests.

/** Issuer's VMID, another VMID, operand ASID, another ASID. */
export const V = 5;
export const V2 = 6;
export const A = 0x21;
export const A2 = 0x22;
/** The invalidated page (VA or IPA); the 2 MiB region holding it; a page outside every range. */
export const P = 0x40201;
export const B = 0x40200;
export const Q = 0x60000;
/** Range operations cover [R_START, R_START + R_PAGES): contains P and 0x401f5, overlaps the block at B. */
export const R_START = 0x401f0;
export const R_PAGES = 32;

const L2BLOCK = { page: B, sizeLog2: 9, level: 2 };
const WALK = { ...L2BLOCK, leaf: 0 };

/**
 * Every combination that matters (arch.md §3.2 tagging): NS-EL1 (VMID tagged, ASID if nG, ASET),
 * NS-EL2 (no ASID, no VMID), NS-EL2-E2H (ASID, ASET, no VMID), EL3; stages S1 / S2 / NESTED;
 * leaf and a walk-cache-like leaf=0 entry; in-range and far pages; a 2 MiB block; a 64K-granule entry.
 */
export function population(): Record<string, Partial<TlbEntry>> {
  const L1 = World.NS_EL1, L2 = World.NS_EL2, E2H = World.NS_EL2_E2H;
  return {
    'L1.own': { world: L1, vmid: V, asid: A, page: P },
    'L1.aset1': { world: L1, vmid: V, asid: A, aset: 1, page: P },
    'L1.asid2': { world: L1, vmid: V, asid: A2, page: P },
    'L1.glob': { world: L1, vmid: V, global: true, page: P },
    'L1.glob.aset1': { world: L1, vmid: V, global: true, aset: 1, page: P },
    'L1.vmid2': { world: L1, vmid: V2, asid: A, page: P },
    'L1.vmid0': { world: L1, vmid: 0, asid: A, page: P },
    'L1.r': { world: L1, vmid: V, asid: A, page: 0x401f5 },
    'L1.far': { world: L1, vmid: V, asid: A, page: Q },
    'L1.block': { world: L1, vmid: V, asid: A, ...L2BLOCK },
    'L1.walk': { world: L1, vmid: V, asid: A, ...WALK },
    'L1.g64k': { world: L1, vmid: V, asid: A, page: B, sizeLog2: 4, granuleLog2: 16 },
    'L1.nested': { world: L1, stage: Stage.NESTED, vmid: V, asid: A, page: P },
    'L1.nested.aset1': { world: L1, stage: Stage.NESTED, vmid: V, asid: A, aset: 1, page: P },
    'L1.nested.far': { world: L1, stage: Stage.NESTED, vmid: V, asid: A, page: Q },
    'L1.s2': { world: L1, stage: Stage.S2, vmid: V, page: P },
    'L1.s2.far': { world: L1, stage: Stage.S2, vmid: V, page: Q },
    'L1.s2.walk': { world: L1, stage: Stage.S2, vmid: V, ...WALK },
    'L1.s2.vmid2': { world: L1, stage: Stage.S2, vmid: V2, page: P },
    'L2.p': { world: L2, page: P },
    'L2.aset1': { world: L2, aset: 1, page: P },
    'L2.far': { world: L2, page: Q },
    'L2.walk': { world: L2, ...WALK },
    'E2H.own': { world: E2H, asid: A, page: P },
    'E2H.aset1': { world: E2H, asid: A, aset: 1, page: P },
    'E2H.asid2': { world: E2H, asid: A2, page: P },
    'E2H.glob': { world: E2H, global: true, page: P },
    'E2H.glob.aset1': { world: E2H, global: true, aset: 1, page: P },
    'E2H.far': { world: E2H, asid: A, page: Q },
    'E2H.walk': { world: E2H, asid: A, ...WALK },
    'EL3.p': { world: World.EL3, page: P },
    'EL3.far': { world: World.EL3, page: Q },
  };
}

/** Issuer regimes (VTTBR_EL2.VMID, HCR_EL2.{E2H,TGE}, EL). */
export const REGIME = {
  /** A guest at EL1 (or an nVHE host with VMID V). */
  guestEl1: { vmid: V, e2h: false, tge: false, el: 1 },
  /** KVM nVHE at EL2 with the guest's VMID loaded. */
  nvheEl2: { vmid: V, e2h: false, tge: false, el: 2 },
  /** KVM VHE in guest context: E2H=1, TGE cleared, guest VMID loaded (__tlb_switch_to_guest). */
  vheGuestCtx: { vmid: V, e2h: true, tge: false, el: 2 },
  /** VHE host: EL2&0 with {E2H,TGE}={1,1}. */
  vheHost: { vmid: 0, e2h: true, tge: true, el: 2 },
  /** nVHE hypervisor's own EL2 regime (E2H=0). */
  el2NoE2h: { vmid: 0, e2h: false, tge: false, el: 2 },
} as const satisfies Record<string, IssuerRegime>;

// ---------------------------------------------------------------------------------------------
// Command queue helpers

/** One command as 4 words. */
export function tlbiCmd(
  op: number, f: { vmid?: number; asid?: number; page?: number; leaf?: number; ttl?: number; tg?: number; num?: number; scale?: number } = {},
): Uint32Array {
  const w = new Uint32Array(4);
  writeTlbi(w, 0, op, f.vmid ?? 0, f.asid ?? 0, f.page ?? 0, f.leaf ?? 0, f.ttl ?? 0, f.tg ?? 0, f.num ?? 0, f.scale ?? 0);
  return w;
}

export function cfgiCmd(op: number, sid: number, ssid = 0, leafOrRange = 0): Uint32Array {
  const w = new Uint32Array(4);
  writeCfgi(w, 0, op, sid, ssid, leafOrRange);
  return w;
}

export function syncCmd(cs = 0): Uint32Array {
  const w = new Uint32Array(4);
  writeSync(w, 0, cs, 3, 0xf, 0, 0);
  return w;
}

/** Concatenate commands into one buffer. */
export function cmds(...list: Uint32Array[]): Uint32Array {
  const out = new Uint32Array(list.length * 4);
  list.forEach((c, i) => out.set(c.subarray(0, 4), i * 4));
  return out;
}

/** Submit commands followed by a CMD_SYNC through the real queue; expects no error. */
export function submitAndSync(smmu: Smmu, ...list: Uint32Array[]): void {
  const buf = cmds(...list, syncCmd());
  if (!smmu.submit(buf, 0, list.length + 1)) throw new Error('queue full');
}

/** Queue index (wrap bit included) of CONS.RD. */
export function consRd(smmu: Smmu): number {
  return smmu.cmdqCons & ((2 << smmu.cmdqLog2Size) - 1);
}

