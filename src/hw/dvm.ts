import type { Pe } from './cpu/pe.js';
import type { Smmu } from './smmu/smmu.js';
import { resetScope, type InvalScope } from './tlb/scope.js';
import { tlbiScope, type IssuerRegime, type TlbiArgs } from './tlbi-scope.js';

export interface DvmListener {
  /** A broadcast TLBI entered the domain (before delivery). */
  onBroadcast?(from: Pe, a: TlbiArgs): void;
  /** A DVM Sync (the issuer's DSB) completed every earlier broadcast of `from`. */
  onSync?(from: Pe): void;
}

/**
 * The Inner Shareable domain: delivers broadcast TLBIs (DVM TLB Invalidate messages) to every PE
 * and to every SMMU, each SMMU deciding whether to act (IDR0.BTM, CR2.PTM), and DVM Syncs at DSB.
 */
export class DvmDomain {
  readonly pes: Pe[] = [];
  readonly smmus: Smmu[] = [];
  /** DVM TLBI messages and Syncs sent. */
  messages = 0;
  syncs = 0;
  listener: DvmListener | null = null;
  private readonly scratch: InvalScope = resetScope({} as InvalScope);

  addPe(pe: Pe): void { this.pes.push(pe); pe.dvm = this; }
  addSmmu(s: Smmu): void { this.smmus.push(s); }

  broadcast(from: Pe, a: TlbiArgs): void {
    this.messages++;
    this.listener?.onBroadcast?.(from, a);
    const who: IssuerRegime = from.regime;
    if (tlbiScope(a, who, false, this.scratch)) {
      for (let i = 0; i < this.pes.length; i++) this.pes[i].receiveBroadcast(this.scratch);
    }
    for (let i = 0; i < this.smmus.length; i++) this.smmus[i].receiveBroadcast(a, who);
  }

  sync(from: Pe): void {
    this.syncs++;
    for (let i = 0; i < this.smmus.length; i++) this.smmus[i].receiveDvmSync();
    this.listener?.onSync?.(from);
  }
}
