import { z } from 'zod';

/**
 * The scenario format. Every default states where it comes from (DESIGN.md §7, reference/*.md);
 * `btmsim schema` prints this as JSON Schema for editors (yaml-language-server).
 */

export const POLICY_NAMES = ['ptm', 'btm-2020', 'btm-split', 'btm-kvm-pinned', 'btm-s2aset'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

const idBits = z.literal([8, 16]);
const isPow2 = (v: number): boolean => v >= 1 && Number.isInteger(v) && (v & (v - 1)) === 0;

const tlbGeometry = (entries: number, ways: number, policy: 'lru' | 'rr' | 'random', source: string) =>
  z.strictObject({
    entries: z.number().int().positive().max(2 ** 26).default(entries)
      .describe(`Total entries; entries/ways (the number of sets) must be a power of two. Default ${entries}: ${source}`),
    ways: z.number().int().positive().default(ways).describe(`Associativity; entries/ways sets. Default ${ways}: ${source}`),
    policy: z.enum(['lru', 'rr', 'random']).default(policy).describe(`Replacement. Default ${policy}: ${source}`),
  }).refine((g) => g.entries % g.ways === 0, {
    path: ['ways'],
    error: (iss) => {
      const g = iss.input as { entries: number; ways: number };
      return `must divide entries (${g.entries} entries / ${g.ways} ways is not a whole number of sets)`;
    },
  }).refine((g) => g.entries % g.ways !== 0 || isPow2(g.entries / g.ways), {
    path: ['entries'],
    error: (iss) => {
      const g = iss.input as { entries: number; ways: number };
      const sets = g.entries / g.ways;
      const lo = 2 ** Math.floor(Math.log2(sets));
      return `must be a power of two times ways: ${g.entries} entries / ${g.ways} ways = ${sets} sets, not a power of two (nearest: ${lo * g.ways} or ${lo * 2 * g.ways} entries)`;
    },
  });

export const CpuSchema = z.strictObject({
  count: z.number().int().min(1).max(512).default(8)
    .describe('Number of PEs (possible CPUs: the pinned-ID cap is 2^bits - CPUs - 2).'),
  asidBits: idBits.default(16).describe('ID_AA64MMFR0_EL1.ASIDBits. Default 16 (Cortex-A76 TRM B2.58).'),
  vmidBits: idBits.default(8).describe('ID_AA64MMFR1_EL1.VMIDBits: 8 on v8.0 parts, 16 with VMID16 (v8.1). Default 8: the thread\'s hard case.'),
  vhe: z.boolean().default(false).describe('Host runs VHE (EL2&0): host broadcasts carry no VMID and the SMMU needs STRW=EL2, CR2.E2H=1.'),
  kpti: z.boolean().default(false).describe('KPTI: ASIDs in pairs, every TLBI by ASID issued twice.'),
  tlbiRange: z.boolean().default(true).describe('FEAT_TLBIRANGE (Armv8.4): range TLBIs for host and KVM flushes.'),
  tlb: tlbGeometry(1280, 5, 'lru', 'Cortex-A76 L2 TLB, 1280 entries 5-way (TRM 100798)').default({ entries: 1280, ways: 5, policy: 'lru' })
    .describe('Geometry of each PE\'s TLB.'),
});

export const SmmuSchema = z.strictObject({
  count: z.number().int().min(1).max(16).default(1).describe('Identical SMMUs (devices are spread round-robin).'),
  btm: z.boolean().default(true).describe('SMMU_IDR0.BTM: SMMU and interconnect support broadcast TLB maintenance.'),
  s1p: z.boolean().default(true).describe('SMMU_IDR0.S1P.'),
  s2p: z.boolean().default(true).describe('SMMU_IDR0.S2P.'),
  hyp: z.boolean().default(true).describe('SMMU_IDR0.Hyp (EL2/EL2-E2H StreamWorlds).'),
  ats: z.boolean().default(false).describe('SMMU_IDR0.ATS; with atcEntries > 0 devices cache translations.'),
  asidBits: idBits.default(16).describe('SMMU_IDR0.ASID16.'),
  vmidBits: idBits.default(8).describe('SMMU_IDR0.VMID16. Default 8 to match the CPU in the thread\'s case.'),
  ril: z.boolean().default(true).describe('SMMU_IDR3.RIL: range invalidation (mandatory from SMMUv3.2).'),
  tlb: tlbGeometry(2048, 4, 'rr', 'gem5 SMMUv3.py main TLB (explicitly "not representative")').default({ entries: 2048, ways: 4, policy: 'rr' })
    .describe('Geometry of each SMMU\'s main TLB.'),
  microTlbEntries: z.number().int().min(0).max(1024).default(0).describe('Per-stream micro-TLB, fully associative; 0 = none. gem5 default 32.'),
  walkCacheEntries: z.number().int().min(0).max(65536).default(0).describe('Walk cache entries (4-way); 0 = none. MMU-600: 256 per level (Intel Agilex 5 TRM).'),
  atcEntries: z.number().int().min(0).max(4096).default(0).describe('Per-endpoint ATC entries (ATS); 0 = none.'),
  mmu700Erratum2812531: z.boolean().default(false).describe('IIDR reads MMU-700: Linux clears FEAT_BTM (erratum 2812531) and forces CMD_SYNC.'),
});

export const KernelSchema = z.strictObject({
  kvmVmidAllocator: z.enum(['v5.18', 'legacy']).default('v5.18').describe('KVM VMID allocator: v5.18+ vmid.c (ASID-style) or the pre-5.18 linear scheme.'),
  svaEra: z.enum(['shared', 'private']).default('private').describe('SVA ASID: shared pinned CPU ASID (v5.10-v6.10) or private SMMU ASID (v6.11+). Policy btm-2020 forces shared.'),
  kvmRangeFlush: z.boolean().default(true).describe('KVM v6.6+: stage-2 unmaps deferred into one range flush (needs FEAT_TLBIRANGE and stage-2 FWB).'),
});

export const PolicyOptionsSchema = z.strictObject({
  vmidScope: z.enum(['device', 'vm', 'vsmmu']).default('device').describe('One SMMU VMID per assigned device (QEMU VFIO), per VM (shared iommufd S2 parent), or per vSMMU (2026 series).'),
  split: z.number().int().min(2).max(65535).optional().describe('btm-split: first SMMU VMID; KVM gets [1, split). Default: half the VMID space.'),
  s2Tables: z.enum(['private', 'shared']).default('private').describe('btm-kvm-pinned: SMMU stage 2 uses its own tables (must still be invalidated by command: "double invalidation") or KVM\'s.'),
});

export const DmaSchema = z.strictObject({
  ratePerUs: z.number().positive().max(1e4).default(1).describe('DMA translations per microsecond per device (stream).'),
  workingSetPages: z.number().int().min(1).max(1 << 24).default(256).describe('Distinct 4 KiB pages a device touches.'),
  locality: z.number().min(0).max(1).default(0.9).describe('Probability the next access is near the previous one (sequential); else uniform in the working set.'),
});

export const WorkloadSchema = z.strictObject({
  vms: z.number().int().min(0).max(4096).default(8).describe('VMs alive at start.'),
  vcpusPerVm: z.number().int().min(1).max(64).default(2).describe('vCPUs per VM, scheduled on the PEs.'),
  vmPages: z.number().int().min(16).max(1 << 22).default(4096).describe('Guest memory mapped at stage 2 per VM, in 4 KiB pages.'),
  timesliceUs: z.number().positive().default(1000).describe('vCPU scheduling quantum; each switch is a vCPU put + load on that CPU.'),
  devicesPerVm: z.number().int().min(0).max(2048).default(2).describe('SR-IOV VFs assigned per VM (ixgbe: up to 63 VFs per device; P-Tile: 2048).'),
  nested: z.boolean().default(false).describe('Assigned devices use nested translation (guest stage 1 over the S2 parent).'),
  dma: DmaSchema.default({ ratePerUs: 1, workingSetPages: 256, locality: 0.9 }).describe('Device DMA traffic through the SMMU.'),
  kvm: z.strictObject({
    unmapPerMsPerVm: z.number().min(0).default(1).describe('MMU-notifier page unmaps per ms per VM (each: __kvm_tlb_flush_vmid_ipa, or a range flush).'),
    rangeUnmapPerMsPerVm: z.number().min(0).default(0.1).describe('MMU-notifier range unmaps (THP split, balloon) per ms per VM.'),
    rangePages: z.number().int().min(1).default(512).describe('Pages per range unmap (512 = one 2 MiB THP).'),
    flushVmPerMsPerVm: z.number().min(0).default(0.05).describe('kvm_flush_remote_tlbs (TLBI VMALLS12E1IS) per ms per VM (memslot changes...).'),
    dirtyLogging: z.strictObject({
      vms: z.number().int().min(0).default(0).describe('VMs under live migration (dirty logging).'),
      passesPerMs: z.number().min(0).default(0.5).describe('Write-protect passes per ms per migrating VM.'),
    }).default({ vms: 0, passesPerMs: 0.5 }).describe('Live migration: write-protect passes over guest memory.'),
  }).default({ unmapPerMsPerVm: 1, rangeUnmapPerMsPerVm: 0.1, rangePages: 512, flushVmPerMsPerVm: 0.05, dirtyLogging: { vms: 0, passesPerMs: 0.5 } })
    .describe('KVM stage-2 maintenance driven by the host MMU notifiers.'),
  guestTlbiPerMsPerVm: z.number().min(0).default(2).describe('Guest TLBIs (upgraded to IS by HCR_EL2.FB) per ms per VM.'),
  guestSva: z.strictObject({
    munmapPerMsPerVm: z.number().min(0).default(0).describe('Guest munmap/mprotect per ms per VM in a process whose mm a nested device uses (guest SVA); needs nested: true. 0 = off.'),
    munmapPages: z.number().int().min(1).default(16).describe('Pages per guest munmap/mprotect.'),
  }).default({ munmapPerMsPerVm: 0, munmapPages: 16 })
    .describe('Guest SVA through nesting: the guest changes a stage-1 table its device uses and invalidates it, by broadcast TLBIs (vSMMU with BTM) or by vSMMU commands the VMM traps.'),
  churn: z.strictObject({
    vmLifetimeMs: z.number().positive().optional().describe('Mean VM lifetime; a destroyed VM is replaced by a new one (rollover pressure). Absent = no churn.'),
  }).default({}).describe('VM creation and destruction.'),
  sva: z.strictObject({
    processes: z.number().int().min(0).max(4096).default(0).describe('Host processes bound to a device with SVA.'),
    munmapPerMs: z.number().min(0).default(1).describe('munmap/mprotect per ms per SVA process.'),
    munmapPages: z.number().int().min(1).default(16).describe('Pages per munmap/mprotect.'),
    hostProcesses: z.number().int().min(0).default(16).describe('Other host processes context-switching on the CPUs (ASID pressure).'),
  }).default({ processes: 0, munmapPerMs: 1, munmapPages: 16, hostProcesses: 16 })
    .describe('Shared Virtual Addressing: host processes whose page tables the SMMU walks.'),
}).refine((w) => w.guestSva.munmapPerMsPerVm === 0 || (w.nested && w.devicesPerVm > 0), {
  path: ['guestSva', 'munmapPerMsPerVm'],
  error: 'guest SVA goes through a nested device: needs workload.nested: true and devicesPerVm > 0 (or set 0)',
});

export const DurationSchema = z.union([
  z.strictObject({ ms: z.number().positive().max(1e7).describe('Simulated milliseconds.') }),
  z.strictObject({ events: z.number().int().positive().max(1e10).describe('Stop after this many events.') }),
]);

export const CostSchema = z.strictObject({
  tlbHitNs: z.number().min(0).default(3).describe('SMMU TLB hit latency. gem5 main TLB 3 cycles at 1 GHz ("not representative"); no public hardware figure.'),
  walkAccessNs: z.number().min(0).default(90).describe('One page-table read by the SMMU walker. No public SMMU figure: an assumed DRAM load-to-use latency.'),
  commandNs: z.number().min(0).default(50).describe('Driver cost to build and publish one command. No public figure.'),
  cmdSyncNs: z.number().min(0).default(2000).describe('CMD_SYNC round trip. No public figure; order of magnitude from J. Garry 2020 (peers.md N17: ~16 us per map+unmap at 32 CPUs).'),
  dvmMessageNs: z.number().min(0).default(100).describe('Cost to the SMMU of one DVM TLBI message. No public figure (peers.md §2.1).'),
  vsmmuTrapNs: z.number().min(0).default(10000).describe('A guest vSMMU command batch trapped to the VMM and replayed by the host (VM exit, iommufd IOMMU_HWPT_INVALIDATE). No public figure: the order of an MMIO exit to user space plus an ioctl.'),
});

export const ScenarioSchema = z.strictObject({
  $schema: z.string().optional().describe('JSON Schema of this file, for editors (output of `btmsim schema`); ignored by btmsim.'),
  name: z.string().default('unnamed').describe('Scenario name, shown in reports.'),
  description: z.string().default('').describe('Free text, shown in reports.'),
  seed: z.number().int().min(0).max(2 ** 32 - 1).default(1).describe('PRNG seed (0..2^32-1): the same scenario and seed give the same run.'),
  duration: DurationSchema.default({ ms: 20 }).describe('When to stop: { ms: <simulated milliseconds> } or { events: <count> }. Default 20 ms.'),
  cpu: CpuSchema.default(CpuSchema.parse({})).describe('The CPUs (PEs) and their TLB maintenance features.'),
  smmu: SmmuSchema.default(SmmuSchema.parse({})).describe('The SMMUv3 instances: ID register features and cache geometry.'),
  kernel: KernelSchema.default(KernelSchema.parse({})).describe('Linux/KVM behaviour being modelled.'),
  policy: z.enum(POLICY_NAMES).default('btm-2020').describe('The policy of a single run (see compare).'),
  compare: z.array(z.enum(POLICY_NAMES)).min(1).optional().describe('Policies run on the same workload and seed; default: just `policy`.'),
  policyOptions: PolicyOptionsSchema.default(PolicyOptionsSchema.parse({})).describe('Knobs of the individual policies.'),
  workload: WorkloadSchema.default(WorkloadSchema.parse({})).describe('What the VMs, devices and host processes do.'),
  cost: CostSchema.default(CostSchema.parse({})).describe('Latency model (nanoseconds) used to turn event counts into time.'),
});

export type Scenario = z.infer<typeof ScenarioSchema>;
export type ScenarioInput = z.input<typeof ScenarioSchema>;

export function scenarioJsonSchema(): unknown {
  return z.toJSONSchema(ScenarioSchema, { io: 'input', unrepresentable: 'any' });
}
