import { Pe, CORTEX_A76_L2_TLB } from './cpu/pe.js';
import { DvmDomain } from './dvm.js';
import { Memory } from './memory.js';
import { Smmu, defaultSmmuParams, type SmmuParams } from './smmu/smmu.js';
import type { TlbGeometry } from './tlb/tlb-api.js';

export interface SystemParams {
  cpus: number;
  vhe: boolean;
  cpuTlb: TlbGeometry;
  smmus: SmmuParams[];
}

/** PEs, SMMUs, the DVM domain joining them, and memory (page tables). */
export class HwSystem {
  readonly memory = new Memory();
  readonly dvm = new DvmDomain();
  readonly pes: Pe[] = [];
  readonly smmus: Smmu[] = [];

  constructor(p: Partial<SystemParams> = {}) {
    const cpus = p.cpus ?? 4;
    for (let i = 0; i < cpus; i++) {
      const pe = new Pe(i, p.cpuTlb ?? CORTEX_A76_L2_TLB, p.vhe ?? false);
      this.pes.push(pe);
      this.dvm.addPe(pe);
    }
    for (const [i, sp] of (p.smmus ?? [defaultSmmuParams()]).entries()) {
      const s = new Smmu(i, this.memory, sp);
      this.smmus.push(s);
      this.dvm.addSmmu(s);
    }
  }
}
