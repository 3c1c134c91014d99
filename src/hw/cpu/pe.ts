import { IS_FORM, type TlbiOp } from '../../arch/tlbi.js';
import { World } from '../../arch/world.js';
import type { PageTable } from '../memory.js';
import { Tlb } from '../tlb/tlb.js';
import type { TlbGeometry } from '../tlb/tlb-api.js';
import { resetScope, type InvalScope, type TlbEntry } from '../tlb/scope.js';
import { tlbiScope, type IssuerRegime, type TlbiArgs } from '../tlbi-scope.js';
import type { DvmDomain } from '../dvm.js';
import { FaultHook, type FaultHooks } from '../fault-hooks.js';

/** Cortex-A76 L2 TLB: 1280 entries, 5-way (Arm TRM 100798). */
export const CORTEX_A76_L2_TLB: TlbGeometry = { entries: 1280, ways: 5, policy: 'lru' };

export const PeStat = { TLBI_LOCAL: 0, TLBI_BROADCAST: 1, DSB: 2, HITS: 3, MISSES: 4, DVM_RECEIVED: 5 } as const;

/** Observer of a PE (the oracle). Every method optional; only called when installed. */
export interface PeListener {
  /** access() hit `slot` of the PE's TLB for `page`, on behalf of context `ctx`. */
  onHit?(pe: Pe, slot: number, page: number, ctx: number): void;
  /** access() walked `table` and filled `slot` for context `ctx`. */
  onFill?(pe: Pe, slot: number, table: PageTable, page: number, ctx: number): void;
  /** A TLBI executed by this PE: broadcast into the DVM domain, or local. Read `a`, never keep it. */
  onTlbi?(pe: Pe, a: TlbiArgs, broadcast: boolean): void;
}

/**
 * A processing element: its TLB tagged by regime (World), VMID and ASID, and the state that
 * selects the regime of its TLBIs: VTTBR_EL2.VMID, HCR_EL2.{E2H,TGE,FB}, the current EL.
 */
export class Pe {
  readonly tlb: Tlb;
  /** What a TLBI from this PE carries. */
  readonly regime: IssuerRegime;
  /** Current ASID (TTBR). */
  asid = 0;
  /** HCR_EL2.FB: EL1 TLBIs from the guest are upgraded to Inner Shareable (KVM sets it). */
  hcrFb = false;
  dvm: DvmDomain | null = null;
  listener: PeListener | null = null;
  /** Fault-injection hooks (src/hw/fault-hooks.ts); null in normal runs. */
  faults: FaultHooks | null = null;
  /** Broadcasts issued since the last DSB (a DSB with none completes at once). */
  pendingBroadcasts = 0;
  readonly stats = new Float64Array(6);
  private readonly scratch: InvalScope = resetScope({} as InvalScope);
  private readonly fillEntry: TlbEntry = {
    world: 0, vmid: 0, asid: 0, global: false, aset: 0, stage: 1, page: 0, sizeLog2: 0,
    granuleLog2: 12, level: 3, leaf: 1, out: 0, ctx: 0,
  };

  constructor(readonly id: number, geometry: TlbGeometry = CORTEX_A76_L2_TLB, vhe = false) {
    this.tlb = new Tlb(geometry);
    this.regime = { vmid: 0, e2h: vhe, tge: vhe, el: vhe ? 2 : 1 };
  }

  /**
   * The world the PE's own accesses use: EL2&0 for a VHE host, EL2 for an nVHE hypervisor, else EL1&0.
   * Fix (arch.md §3.3 "VAE2IS / VALE2IS ... with HCR_EL2.E2H=1 the EL2&0 regime with ASID"): with
   * HCR_EL2.E2H=1, EL2 runs in the EL2&0 regime whatever TGE is (TGE only routes EL0). This used to
   * return NS-EL2 for {E2H,TGE}={1,0} (KVM's VHE guest-context window), so entries filled there were
   * missed by the VAE2IS that tlbiScope correctly sends to EL2&0 when E2H=1.
   */
  get world(): number {
    const r = this.regime;
    return r.el === 2 ? (r.e2h ? World.NS_EL2_E2H : World.NS_EL2) : World.NS_EL1;
  }

  /**
   * Execute a TLBI. IS forms (and EL1 forms from a guest with HCR_EL2.FB=1) go to the DVM domain,
   * which applies them to every PE, this one included, and to the SMMUs that take broadcasts.
   * The operation completes at the next DSB.
   */
  tlbi(a: TlbiArgs): void {
    const op: TlbiOp = a.op;
    const upgrade = !op.shareable && this.hcrFb && op.el === 1 && this.regime.el === 1;
    // Fault tlbi-non-shareable (Zephyr #98344: non-IS TLBIs on an SMP system): software issues
    // the local form, so other PEs and BTM SMMUs never see it. The guest's FB upgrade is hardware
    // and stays.
    const demoted = op.shareable && this.faults !== null && this.faults.fire(FaultHook.TLBI_NON_SHAREABLE);
    if ((op.shareable || upgrade) && this.dvm !== null && !demoted) {
      if (upgrade) a.op = IS_FORM.get(op)!;
      this.stats[PeStat.TLBI_BROADCAST]++;
      this.pendingBroadcasts++;
      this.listener?.onTlbi?.(this, a, true);
      this.dvm.broadcast(this, a);
      a.op = op;
      return;
    }
    this.stats[PeStat.TLBI_LOCAL]++;
    this.listener?.onTlbi?.(this, a, false);
    if (tlbiScope(a, this.regime, false, this.scratch)) this.tlb.invalidate(this.scratch);
  }

  /** Apply a broadcast from the domain to this PE's TLB. */
  receiveBroadcast(s: InvalScope): void {
    this.stats[PeStat.DVM_RECEIVED]++;
    this.tlb.invalidate(s);
  }

  /** DSB ISH: waits for this PE's broadcasts to complete (DVM Sync to every agent). */
  dsb(): void {
    this.stats[PeStat.DSB]++;
    if (this.pendingBroadcasts > 0 && this.dvm !== null) {
      this.pendingBroadcasts = 0;
      this.dvm.sync(this);
    }
  }

  /**
   * A memory access by software running on this PE: TLB lookup, walk of `table` on a miss.
   * Returns the output page or -1 (fault).
   */
  access(table: PageTable, page: number, ctx: number): number {
    const r = this.regime;
    const w = this.world;
    const vmid = w === World.NS_EL1 ? r.vmid : 0;
    const slot = this.tlb.lookup(w, vmid, this.asid, 0, false, page);
    if (slot >= 0) {
      this.stats[PeStat.HITS]++;
      this.listener?.onHit?.(this, slot, page, ctx);
      return this.tlb.out[slot] + (page - this.tlb.page[slot]);
    }
    this.stats[PeStat.MISSES]++;
    const out = table.walk(page);
    if (out < 0) return -1;
    const e = this.fillEntry;
    const span = 2 ** table.lastSizeLog2;
    e.world = w; e.vmid = vmid; e.asid = w === World.NS_EL2 ? -1 : this.asid; e.global = false;
    e.stage = 1; e.page = page - (page % span); e.sizeLog2 = table.lastSizeLog2; e.level = table.lastLevel;
    e.out = out - (page - e.page); e.ctx = ctx;
    const filled = this.tlb.fill(e);
    this.listener?.onFill?.(this, filled, table, page, ctx);
    return out;
  }
}
