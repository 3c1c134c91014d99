import { CR0, CR2, REG, setField } from '../arch/registers.js';
import { TLBI } from '../arch/tlbi.js';
import { STAGE_NAMES, WORLD_NAMES } from '../arch/world.js';
import { tableBase } from '../hw/memory.js';
import { SmmuStat } from '../hw/smmu/smmu.js';
import { newSte, STE_CONFIG } from '../hw/smmu/structures.js';
import { HwSystem } from '../hw/system.js';
import { newTlbiArgs } from '../hw/tlbi-scope.js';

/**
 * The thread's problem in eight steps, on the hardware model alone: an assigned device's DMA fills
 * SMMU stage-2 entries tagged with VMID 1; KVM, flushing an unrelated VM that also has VMID 1,
 * broadcasts TLBI VMALLS12E1IS; an SMMU with BTM=1 and PTM=0 drops the device's entries and the
 * next DMA walks again. With PTM=1 (mainline Linux) the same broadcast is ignored.
 * Returns the lines to print (the core does no I/O).
 */
export function btmDemo(): string[] {
  const out: string[] = [];
  const say = (s: string) => out.push(s);
  for (const ptm of [0, 1]) {
    const sys = new HwSystem({ cpus: 2 });
    const smmu = sys.smmus[0];
    const pe = sys.pes[0];
    say(ptm === 0
      ? '== SMMU with SMMU_IDR0.BTM=1 and SMMU_CR2.PTM=0: it takes part in broadcast TLB maintenance'
      : '== Same system with SMMU_CR2.PTM=1, as mainline Linux programs it');
    // The driver programs CR2 while the SMMU is disabled, then enables the queue and translation.
    smmu.writeReg(REG.CR2, setField(setField(0, CR2.PTM, ptm), CR2.RECINVSID, 1));
    smmu.writeReg(REG.CR0, setField(setField(0, CR0.CMDQEN, 1), CR0.SMMUEN, 1));

    // VM A runs on the CPUs with KVM VMID 1. The SMMU driver gave the stage-2 domain of a device
    // assigned to VM B the VMID 1 too: both allocators start at 1.
    const vmA = sys.memory.newTable(1, 'VM A stage 2 (KVM)');
    const domB = sys.memory.newTable(2, 'VM B device stage 2 (SMMU domain)');
    for (let p = 0; p < 8; p++) { vmA.map(0x40000 + p, 0x80000 + p); domB.map(0x40000 + p, 0x90000 + p); }
    smmu.streamTable.set(0x10, newSte({ Config: STE_CONFIG.S2_TRANS, S2VMID: 1, S2TTB: tableBase(domB.id) }));
    say(`1. STE for StreamID 0x10: Config=S2, S2VMID=1 (SMMU VMID IDA starts at 1); KVM gave VM A VMID 1 too`);

    let walks = 0;
    for (let p = 0; p < 8; p++) { smmu.translate(0x10, 0, 0x40000 + p); walks += smmu.lastWalk; }
    say(`2. Device DMA to 8 pages: ${smmu.stats[SmmuStat.MISSES]} misses, ${walks} walk memory accesses, ` +
      `${smmu.tlb.size} TLB entries filled (${WORLD_NAMES[smmu.tlb.world[smmu.lastSlot]]}, ` +
      `VMID ${smmu.tlb.vmid[smmu.lastSlot]}, ${STAGE_NAMES[smmu.tlb.stage[smmu.lastSlot]]})`);
    const hits0 = smmu.stats[SmmuStat.HITS];
    for (let p = 0; p < 8; p++) smmu.translate(0x10, 0, 0x40000 + p);
    say(`3. Same 8 pages again: ${smmu.stats[SmmuStat.HITS] - hits0} hits`);

    // KVM on PE 0 unmaps a page of VM A: enter_vmid_context loads VMID 1, then
    // __kvm_tlb_flush_vmid: DSB ISHST; TLBI VMALLS12E1IS; DSB ISH.
    pe.regime.vmid = 1;
    vmA.unmap(0x40003);
    const before = smmu.tlb.size;
    pe.tlbi(newTlbiArgs(TLBI.VMALLS12E1IS));
    pe.dsb();
    say(`4. KVM flushes VM A: TLBI VMALLS12E1IS with VTTBR_EL2.VMID=1, DSB ISH -> ` +
      `DVM messages received by the SMMU: ${smmu.stats[SmmuStat.DVM_TLBI]}, ignored: ${smmu.stats[SmmuStat.DVM_IGNORED]}`);
    say(`5. SMMU TLB entries of VM B's device: ${before} before, ${smmu.tlb.size} after` +
      (smmu.tlb.size < before ? ' -- dropped although VM B\'s page tables did not change (collateral invalidation)' : ' -- untouched'));
    const m0 = smmu.stats[SmmuStat.MISSES];
    let w2 = 0;
    for (let p = 0; p < 8; p++) { smmu.translate(0x10, 0, 0x40000 + p); w2 += smmu.lastWalk; }
    say(`6. Device DMA to the same 8 pages: ${smmu.stats[SmmuStat.MISSES] - m0} misses, ${w2} walk memory accesses ` +
      (w2 > 0 ? '(collateral refills)' : '(all hits)'));
    say('');
  }
  say('Remedies compared by `btmsim run`: keep PTM=1 (ptm), split the VMID space (btm-split),');
  say('give the SMMU the VM\'s own pinned KVM VMID (btm-kvm-pinned), or a stage-2 ASET (btm-s2aset).');
  return out;
}
