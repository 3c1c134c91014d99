/**
 * The DVM (Inner Shareable) domain: which agents a TLBI reaches (arch.md §3.1), SMMU participation
 * (IDR0.BTM, CR2.PTM, knobs §3.4), HCR_EL2.FB upgrades, DSB / DVM Sync, VHE vs nVHE hosts and SVA
 * StreamWorlds (§3.3 "Practical consequences"), mixed ID widths (§3.17.4) and fault injection.
 */
import { describe, expect, it } from 'vitest';
import { CR0, REG, setField } from '../../src/arch/registers.js';
import { TLBI } from '../../src/arch/tlbi.js';
import { World } from '../../src/arch/world.js';
import { PeStat } from '../../src/hw/cpu/pe.js';
import { tableBase } from '../../src/hw/memory.js';
import { SmmuStat, defaultSmmuParams, type Smmu } from '../../src/hw/smmu/smmu.js';
import { newCd, newSte, STE_CONFIG, STRW } from '../../src/hw/smmu/structures.js';
import { HwSystem } from '../../src/hw/system.js';
import { newTlbiArgs } from '../../src/hw/tlbi-scope.js';
import { defaultSmmuKnobs, type SmmuKnobs } from '../../src/hw/knobs.js';
import {
  FULLY_ASSOC, REGIME, enableSmmu, fillNamed, idr0With, makeSystem, submitAndSync, survivors, type SysOpts,
} from './fixtures.js';

/** One NS-EL1 entry of VMID 5 / ASID 0x21 at page 0x40 in a TLB. */
const ONE = { e: { vmid: 5, asid: 0x21, page: 0x40 } };

function vmalle1is(sys: HwSystem, from = 0, vmid = 5): void {
  const pe = sys.pes[from];
  Object.assign(pe.regime, { ...REGIME.guestEl1, vmid });
  pe.tlbi(newTlbiArgs(TLBI.VMALLE1IS));
  pe.dsb();
}

/** Does a VMALLE1IS of VMID 5 remove the SMMU's VMID-5 entry? */
function smmuHit(o: SysOpts & { dropBroadcasts?: boolean }): { hit: boolean; smmu: Smmu } {
  const { sys, smmu } = makeSystem(o);
  if (o.dropBroadcasts) smmu.dropBroadcasts = true;
  fillNamed(smmu.tlb, ONE);
  vmalle1is(sys);
  return { hit: smmu.tlb.size === 0, smmu };
}

describe('§3.1 who receives a broadcast', () => {
  it('an IS TLBI reaches every PE (issuer included) and every SMMU with BTM=1, PTM=0', () => {
    const params = () => defaultSmmuParams({ tlb: FULLY_ASSOC, knobs: defaultSmmuKnobs() });
    const sys = new HwSystem({ cpus: 4, cpuTlb: FULLY_ASSOC, smmus: [params(), params(), params()] });
    for (const s of sys.smmus) enableSmmu(s, 0);
    for (const t of [...sys.pes.map((p) => p.tlb), ...sys.smmus.map((s) => s.tlb)]) fillNamed(t, ONE);
    vmalle1is(sys, 2);
    expect(sys.dvm.messages).toBe(1);
    for (const pe of sys.pes) {
      expect(pe.tlb.size).toBe(0);
      expect(pe.stats[PeStat.DVM_RECEIVED]).toBe(1);
    }
    for (const s of sys.smmus) {
      expect(s.tlb.size).toBe(0);
      expect(s.stats[SmmuStat.DVM_TLBI]).toBe(1);
    }
    expect(sys.pes[2].stats[PeStat.TLBI_BROADCAST]).toBe(1);
  });

  it('CR2.PTM=1: ignored by default (Arm recommendation), honoured with knob ptmIgnoresBroadcasts=false', () => {
    const ign = smmuHit({ ptm: 1 });
    expect(ign.hit).toBe(false);
    expect([ign.smmu.stats[SmmuStat.DVM_IGNORED], ign.smmu.stats[SmmuStat.DVM_TLBI]]).toEqual([1, 0]);
    expect(smmuHit({ ptm: 1, knobs: { ptmIgnoresBroadcasts: false } }).hit).toBe(true);
    expect(smmuHit({ ptm: 0 }).hit).toBe(true);
  });

  it('IDR0.BTM=0: never, whatever CR2 and the knobs say', () => {
    const noBtm: SysOpts = { smmu: { idr0: idr0With({ BTM: 0 }) } };
    for (const ptm of [0, 1] as const) {
      for (const knobs of [{}, { ptmIgnoresBroadcasts: false }] as Partial<SmmuKnobs>[]) {
        const r = smmuHit({ ...noBtm, ptm, knobs });
        expect(r.hit, `ptm=${ptm} ${JSON.stringify(knobs)}`).toBe(false);
        expect(r.smmu.stats[SmmuStat.DVM_IGNORED]).toBe(1);
      }
    }
  });

  it('SMMUEN=0: the SMMU does not take broadcasts', () => {
    const { sys, smmu } = makeSystem({ ptm: 0 });
    smmu.writeReg(REG.CR0, setField(0, CR0.CMDQEN, 1));
    fillNamed(smmu.tlb, ONE);
    vmalle1is(sys);
    expect(smmu.tlb.size).toBe(1);
  });

  it('fault injection: smmu.dropBroadcasts drops everything (even ALLE1IS)', () => {
    const { sys, smmu } = makeSystem();
    smmu.dropBroadcasts = true;
    fillNamed(smmu.tlb, { a: { vmid: 5, asid: 1 }, b: { world: World.NS_EL2_E2H, asid: 1, page: 1 } });
    const pe = sys.pes[0];
    Object.assign(pe.regime, REGIME.nvheEl2);
    for (const op of ['ALLE1IS', 'VMALLS12E1IS', 'ALLE2IS', 'VMALLE1IS']) pe.tlbi(newTlbiArgs(TLBI[op]));
    pe.dsb();
    expect(smmu.tlb.size).toBe(2);
    expect(smmu.stats[SmmuStat.DVM_IGNORED]).toBe(4);
    expect(sys.dvm.messages).toBe(4); // the PEs still got them
  });

  it('local TLBIs (no IS) never leave the PE: other PEs and SMMUs keep their entries', () => {
    const { sys, smmu } = makeSystem({ cpus: 2 });
    for (const t of [sys.pes[0].tlb, sys.pes[1].tlb, smmu.tlb]) fillNamed(t, ONE);
    const pe = sys.pes[0];
    Object.assign(pe.regime, REGIME.guestEl1);
    for (const op of ['VMALLE1', 'ASIDE1', 'VAE1', 'VAAE1', 'VMALLS12E1', 'ALLE1']) {
      const a = newTlbiArgs(TLBI[op]);
      a.asid = 0x21; a.page = 0x40;
      pe.tlbi(a);
    }
    pe.dsb();
    expect(pe.tlb.size).toBe(0);
    expect(sys.pes[1].tlb.size).toBe(1);
    expect(smmu.tlb.size).toBe(1);
    expect(sys.dvm.messages).toBe(0);
    expect(sys.dvm.syncs).toBe(0);
    expect(pe.stats[PeStat.TLBI_LOCAL]).toBe(6);
  });

  it('HCR_EL2.FB=1: a guest\'s EL1 TLBI is upgraded to IS (reaches the SMMU); not at EL2; not E2 ops', () => {
    const { sys, smmu } = makeSystem({ cpus: 2 });
    const pe = sys.pes[0];
    pe.hcrFb = true;
    Object.assign(pe.regime, REGIME.guestEl1);
    fillNamed(smmu.tlb, ONE);
    fillNamed(sys.pes[1].tlb, ONE);
    const a = newTlbiArgs(TLBI.VMALLE1);
    pe.tlbi(a);
    expect(a.op).toBe(TLBI.VMALLE1); // the caller's args are restored
    expect(smmu.tlb.size).toBe(0);
    expect(sys.pes[1].tlb.size).toBe(0);
    expect(pe.stats[PeStat.TLBI_BROADCAST]).toBe(1);
    expect(pe.pendingBroadcasts).toBe(1);
    // At EL2 (KVM itself) FB does not apply.
    fillNamed(smmu.tlb, ONE);
    Object.assign(pe.regime, REGIME.nvheEl2);
    pe.tlbi(newTlbiArgs(TLBI.VMALLE1));
    expect(smmu.tlb.size).toBe(1);
    expect(sys.dvm.messages).toBe(1);
  });
});

describe('§3.1 completion: DSB and DVM Sync', () => {
  it('one DVM Sync per DSB with outstanding broadcasts, none when there were none', () => {
    const { sys, smmu } = makeSystem({ cpus: 2 });
    const syncs: number[] = [];
    sys.dvm.listener = { onSync: (from) => syncs.push(from.id) };
    let smmuSyncs = 0;
    smmu.listener = { onDvmSync: () => { smmuSyncs++; } };
    const [pe0, pe1] = sys.pes;
    pe0.dsb();
    expect([sys.dvm.syncs, smmuSyncs]).toEqual([0, 0]);
    for (let i = 0; i < 3; i++) pe0.tlbi(newTlbiArgs(TLBI.VMALLE1IS));
    pe1.dsb(); // PE 1 has nothing outstanding
    expect(sys.dvm.syncs).toBe(0);
    pe0.dsb();
    expect([sys.dvm.syncs, smmuSyncs, smmu.stats[SmmuStat.DVM_SYNC]]).toEqual([1, 1, 1]);
    pe0.dsb();
    expect(sys.dvm.syncs).toBe(1);
    pe1.tlbi(newTlbiArgs(TLBI.ALLE1IS));
    pe0.tlbi(newTlbiArgs(TLBI.ALLE1IS));
    pe1.dsb();
    pe0.dsb();
    expect(syncs).toEqual([0, 1, 0]);
    expect(pe0.stats[PeStat.DSB]).toBe(4);
  });

  it('§3.1: CMD_SYNC is unrelated to broadcasts (no DVM Sync counted)', () => {
    const { sys, smmu } = makeSystem();
    submitAndSync(smmu);
    expect([smmu.stats[SmmuStat.SYNCS], smmu.stats[SmmuStat.DVM_SYNC], sys.dvm.syncs]).toEqual([1, 0, 0]);
  });
});

describe('§3.3 practical consequences: VHE vs nVHE hosts and SVA StreamWorlds', () => {
  /** Two SVA streams sharing mm ASID 0x42: SID 1 with STRW=EL1 (S2VMID 0), SID 2 with STRW=EL2. */
  function sva(o: SysOpts) {
    const { sys, smmu } = makeSystem(o);
    const mm = sys.memory.newTable(1, 'mm');
    mm.map(0x400, 0x7400);
    smmu.cdTables.set(0x1000, [newCd({ ASID: 0x42, ASET: 0, TTB0: tableBase(mm.id) })]);
    smmu.streamTable.set(1, newSte({ Config: STE_CONFIG.S1_TRANS, S1ContextPtr: 0x1000, S2VMID: 0, STRW: STRW.EL1 }));
    smmu.streamTable.set(2, newSte({ Config: STE_CONFIG.S1_TRANS, S1ContextPtr: 0x1000, STRW: STRW.EL2 }));
    smmu.translate(1, 0, 0x400);
    const el1Slot = smmu.lastSlot;
    smmu.translate(2, 0, 0x400);
    const el2Slot = smmu.lastSlot;
    return { sys, smmu, mm, el1Slot, el2Slot };
  }
  const vae1is = (sys: HwSystem) => {
    const a = newTlbiArgs(TLBI.VAE1IS);
    a.asid = 0x42; a.page = 0x400;
    sys.pes[0].asid = 0x42;
    sys.pes[0].tlbi(a);
    sys.pes[0].dsb();
  };

  it('VHE host (E2H,TGE=1,1): VAE1IS is EL2&0 — misses STRW=EL1 entries, hits STRW=EL2 entries with CR2.E2H=1', () => {
    const r = sva({ vhe: true, e2h: 1 });
    expect(r.smmu.tlb.world[r.el1Slot]).toBe(World.NS_EL1);
    expect(r.smmu.tlb.world[r.el2Slot]).toBe(World.NS_EL2_E2H);
    expect(r.sys.pes[0].regime).toMatchObject({ e2h: true, tge: true, el: 2 });
    vae1is(r.sys);
    expect(r.smmu.tlb.valid[r.el1Slot]).toBe(1);
    expect(r.smmu.tlb.valid[r.el2Slot]).toBe(0);
  });

  it('VHE host with CR2.E2H=0: STRW=EL2 entries are NS-EL2 (no ASID) and are missed too ("not required", §3.17.5)', () => {
    const r = sva({ vhe: true, e2h: 0 });
    expect(r.smmu.tlb.world[r.el2Slot]).toBe(World.NS_EL2);
    vae1is(r.sys);
    expect(r.smmu.tlb.size).toBe(2);
    // Knob el2WorldsCrossMatch: an implementation that matches both EL2 worlds.
    const k = sva({ vhe: true, e2h: 0, knobs: { el2WorldsCrossMatch: true } });
    vae1is(k.sys);
    expect(k.smmu.tlb.valid[k.el2Slot]).toBe(0);
    expect(k.smmu.tlb.valid[k.el1Slot]).toBe(1);
  });

  it('nVHE host (EL1, VMID 0): VAE1IS hits the STRW=EL1 SVA entry (S2VMID=0), not the EL2-E2H one', () => {
    const r = sva({ vhe: false, e2h: 1 });
    expect(r.sys.pes[0].regime).toMatchObject({ vmid: 0, el: 1 });
    vae1is(r.sys);
    expect(r.smmu.tlb.valid[r.el1Slot]).toBe(0);
    expect(r.smmu.tlb.valid[r.el2Slot]).toBe(1);
  });

  it('the PE\'s own entries follow the same regimes (VHE host fills EL2&0 entries, VAE1IS removes them)', () => {
    const r = sva({ vhe: true, e2h: 1 });
    const pe = r.sys.pes[1];
    pe.asid = 0x42;
    expect(pe.access(r.mm, 0x400, 1)).toBe(0x7400);
    const e = pe.tlb.entries()[0];
    expect([e.world, e.asid, e.vmid]).toEqual([World.NS_EL2_E2H, 0x42, 0]);
    vae1is(r.sys);
    expect(pe.tlb.size).toBe(0);
  });

  it('regression (§3.3 VAE2IS row): at EL2 with E2H=1 and TGE=0 a PE still runs in EL2&0, so VAE2IS reaches its entries', () => {
    const { sys } = makeSystem({ cpus: 1 });
    const pe = sys.pes[0];
    const t = sys.memory.newTable(1, 'hyp');
    t.map(0x10, 0x20);
    Object.assign(pe.regime, { vmid: 3, e2h: true, tge: false, el: 2 });
    pe.asid = 7;
    pe.access(t, 0x10, 1);
    expect(pe.world).toBe(World.NS_EL2_E2H); // used to be NS-EL2
    const a = newTlbiArgs(TLBI.VAE2IS);
    a.asid = 7; a.page = 0x10;
    pe.tlbi(a);
    expect(pe.tlb.size).toBe(0);
  });
});

describe('§3.1 / §3.17.4 mixed VMID/ASID widths', () => {
  const narrow: SysOpts = { smmu: { idr0: idr0With({ VMID16: 0, ASID16: 0 }) } };

  function narrowRig(knobs: Partial<SmmuKnobs> = {}) {
    const { sys, smmu } = makeSystem({ ...narrow, knobs });
    // Entries as an 8-bit SMMU tags them (low 8 bits of S2VMID 0x1234 and CD.ASID 0x1233).
    const names = fillNamed(smmu.tlb, { v34: { vmid: 0x34, asid: 0x33, page: 1 }, v35: { vmid: 0x35, asid: 0x33, page: 2 } });
    return { sys, smmu, names };
  }

  it('an 8-bit-VMID SMMU ignores broadcasts with VMID > 255 by default', () => {
    const r = narrowRig();
    vmalle1is(r.sys, 0, 0x1234);
    expect(r.smmu.tlb.size).toBe(2);
  });

  it('...and matches them on the low 8 bits with knob narrowIdsMatchLowBits ("may match")', () => {
    const r = narrowRig({ narrowIdsMatchLowBits: true });
    vmalle1is(r.sys, 0, 0x1234);
    expect(survivors(r.smmu.tlb, r.names)).toEqual(['v35']);
  });

  it('a VMID whose top byte is zero must match', () => {
    const r = narrowRig();
    vmalle1is(r.sys, 0, 0x34);
    expect(survivors(r.smmu.tlb, r.names)).toEqual(['v35']);
  });

  it('8-bit ASIDs: ASIDE1IS with ASID > 255 ignored by default, low-byte match with the knob', () => {
    for (const [knobs, left] of [[{}, 2], [{ narrowIdsMatchLowBits: true }, 1]] as const) {
      const r = narrowRig(knobs);
      const pe = r.sys.pes[0];
      Object.assign(pe.regime, { ...REGIME.guestEl1, vmid: 0x34 });
      const a = newTlbiArgs(TLBI.ASIDE1IS);
      a.asid = 0x1233;
      pe.tlbi(a);
      expect(r.smmu.tlb.size, JSON.stringify(knobs)).toBe(left);
    }
  });

  it('a 16-bit SMMU compares the full VMID (0x1234 does not hit VMID 0x34)', () => {
    const { sys, smmu } = makeSystem();
    const names = fillNamed(smmu.tlb, { v34: { vmid: 0x34, asid: 1 }, v1234: { vmid: 0x1234, asid: 1, page: 1 } });
    vmalle1is(sys, 0, 0x1234);
    expect(survivors(smmu.tlb, names)).toEqual(['v34']);
  });
});
