/**
 * What-if replays: RIL off/on command re-encoding, other TLB geometry, and BTM with a synthetic
 * KVM beside a traced stage-2 SMMU under each policy.
 */
import { describe, expect, it } from 'vitest';
import { OP, decodeCommand, writeTlbi } from '../../src/arch/commands.js';
import { replayRuns } from '../../src/cli/replay.js';
import { UserError } from '../../src/cli/errors.js';
import { runLines } from '../../src/workload/trace/pipeline.js';
import type { ReplayOptions } from '../../src/workload/trace/replay.js';
import { replayOutput, replayText } from '../../src/workload/trace/report.js';
import { defaultSyntheticKvm, diffMetrics, newRewriteStats, rewriteCommands } from '../../src/workload/trace/whatif.js';
import { QemuTraceBuilder } from './fixtures.js';

function cmds(...specs: [number, number, number, number, number, number, number][]): Uint32Array {
  const w = new Uint32Array(specs.length * 4);
  specs.forEach(([op, vmid, asid, page, tg, num, scale], i) => writeTlbi(w, i * 4, op, vmid, asid, page, 1, tg !== 0 ? 3 : 0, tg, num, scale));
  return w;
}
const names = (w: Uint32Array): ReturnType<typeof decodeCommand>[] => {
  const out = [];
  for (let off = 0; off < w.length; off += 4) out.push(decodeCommand(w, off));
  return out;
};

describe('command rewriting', () => {
  it('RIL off: a range TLBI becomes one command per granule (TG/TTL/NUM/SCALE 0); others untouched', () => {
    const st = newRewriteStats();
    const w = cmds([OP.CMD_TLBI_NH_VA, 0, 3, 0x10, 1, 12, 0], [OP.CMD_TLBI_S2_IPA, 2, 0, 0x40000, 1, 1, 1], [OP.CMD_TLBI_NH_VA, 0, 3, 0x99, 0, 0, 0]);
    const out = names(rewriteCommands(w, { ril: 'off' }, st));
    expect(out).toHaveLength(13 + 4 + 1);
    expect(out.slice(0, 13).map((c) => c.fields.Address)).toEqual(Array.from({ length: 13 }, (_, i) => BigInt((0x10 + i) * 4096)));
    expect(out[0].fields).toMatchObject({ ASID: 3, TG: 0, TTL: 0, NUM: 0, SCALE: 0, Leaf: 1 });
    expect(out[13].name).toBe('CMD_TLBI_S2_IPA');
    expect(out[16].fields).toMatchObject({ VMID: 2, Address: BigInt(0x40003 * 4096) });
    expect(out[17].fields.Address).toBe(BigInt(0x99 * 4096));
    expect(st).toMatchObject({ rangeSplit: 2, perPageCommands: 17 });
  });

  it('RIL on: consecutive per-page TLBIs of one context merge into range commands; gaps and other ASIDs do not', () => {
    const st = newRewriteStats();
    const w = cmds(
      [OP.CMD_TLBI_NH_VA, 0, 3, 0x20, 0, 0, 0], [OP.CMD_TLBI_NH_VA, 0, 3, 0x21, 0, 0, 0], [OP.CMD_TLBI_NH_VA, 0, 3, 0x22, 0, 0, 0],
      [OP.CMD_TLBI_NH_VA, 0, 4, 0x23, 0, 0, 0], [OP.CMD_TLBI_NH_VA, 0, 4, 0x30, 0, 0, 0],
    );
    const out = names(rewriteCommands(w, { ril: 'on' }, st));
    // 3 pages: scale = ctz(3) = 0, num = 3 → one command with NUM=2 (arm_smmu_tlb_inv_range_cmd).
    expect(out.map((c) => [c.fields.ASID, c.fields.TG, c.fields.NUM, c.fields.SCALE, c.fields.TTL])).toEqual([
      [3, 1, 2, 0, 3], [4, 0, 0, 0, 0], [4, 0, 0, 0, 0],
    ]);
    expect(out[0].fields.Address).toBe(0x20000n);
    expect(st.merged).toBe(1);
  });

  it('nothing to do: the very same array comes back', () => {
    const w = cmds([OP.CMD_TLBI_NH_VA, 0, 3, 0x20, 0, 0, 0]);
    expect(rewriteCommands(w, { ril: 'off' }, newRewriteStats())).toBe(w);
  });

  it('btm-split moves command VMIDs', () => {
    const st = newRewriteStats();
    const out = names(rewriteCommands(cmds([OP.CMD_TLBI_S12_VMALL, 3, 0, 0, 0, 0, 0]), { vmidMap: (v) => v + 100 }, st));
    expect(out[0].fields.VMID).toBe(103);
    expect(st.vmidRemapped).toBe(1);
  });
});

/** A device behind a stage-2 SMMU (VMID 1), many DMA hits over ~1.5 ms of trace time. */
function stage2Busy(): string[] {
  const b = new QemuTraceBuilder();
  const X = { tid: 7, sid: 8, asid: -1, vmid: 1, stage: 2 as const };
  b.idr0(5, 0xd441019);
  b.translate({ ...X, configMiss: true, hit: false, iova: 0x40001000, out: 0x60001000, s2: { in: 0x40001000, out: 0x60001000 } });
  for (let i = 0; i < 300; i++) b.translate({ ...X, hit: true, iova: 0x40001000 + (i % 64) * 8, out: 0x60001000 + (i % 64) * 8 });
  return b.lines;
}

function whatIf(o: ReplayOptions) {
  const r = runLines(stage2Busy(), { runs: [{ label: 'as recorded' }, { label: 'what-if', ...o }] });
  return { base: r.runs[0], w: r.runs[1], r };
}

describe('what-if: BTM with a synthetic KVM beside a traced stage-2 SMMU', () => {
  const kvm = defaultSyntheticKvm({ vms: 2, unmapPerMs: 0, flushPerMs: 20 });

  it('btm-2020: KVM VMID 1 collides with the SMMU\'s VMID 1 — its VMALLS12E1IS removes SMMU entries (collateral) that DMA refills', () => {
    const { base, w } = whatIf({ policy: 'btm-2020', kvm });
    expect(base.dvm.receivedPerSmmu).toEqual([0]);
    expect(w.kvm!.vmids).toEqual([1, 2]);
    expect(w.kvm!.vmFlushes).toBeGreaterThan(5);
    expect(w.dvm.receivedPerSmmu[0]).toBeGreaterThan(0);
    expect(w.collateral.bySource.kvmVm).toBeGreaterThan(0);
    expect(w.collateral.byVictim.smmuS2).toBe(w.collateral.total);
    expect(w.collateralRefills).toBeGreaterThan(0);
    expect(w.translation.misses).toBeGreaterThan(base.translation.misses);
  });

  it('ptm: the same KVM traffic is ignored (CR2.PTM=1): no collateral', () => {
    const { w } = whatIf({ policy: 'ptm', kvm });
    expect(w.dvm.receivedPerSmmu).toEqual([0]);
    expect(w.dvm.ignoredPerSmmu[0]).toBeGreaterThan(0);
    expect(w.collateral.total).toBe(0);
  });

  it('btm-split: SMMU VMIDs move to the upper half, KVM keeps the lower: broadcasts received, no collateral', () => {
    const { w } = whatIf({ policy: 'btm-split', kvm });
    expect(w.dvm.receivedPerSmmu[0]).toBeGreaterThan(0);
    expect(w.collateral.total).toBe(0);
  });

  it('btm-s2aset: the hypothetical STE opt-out spares the SMMU entries', () => {
    const { w } = whatIf({ policy: 'btm-s2aset', kvm });
    expect(w.dvm.receivedPerSmmu[0]).toBeGreaterThan(0);
    expect(w.collateral.total).toBe(0);
  });

  it('btm-kvm-pinned: the VM owns the SMMU VMID, so its flushes are intended, not collateral', () => {
    const { w } = whatIf({ policy: 'btm-kvm-pinned', kvm });
    expect(w.collateral.total).toBe(0);
    expect(w.intended.bySource.kvmVm).toBeGreaterThan(0);
  });

  it('a stage-1 trace (VMID 0) is only hit by VMID-less broadcasts: page unmaps cost DVM messages, no collateral', () => {
    const b = new QemuTraceBuilder();
    const X = { tid: 7, sid: 8, asid: 1, vmid: 0, stage: 1 as const };
    b.translate({ ...X, configMiss: true, hit: false, iova: 0x1000, out: 0x81000, s1: { out: 0x81000 } });
    for (let i = 0; i < 200; i++) b.translate({ ...X, hit: true, iova: 0x1000 + i, out: 0x81000 + i });
    const r = runLines(b.lines, { runs: [{}, { btm: true, kvm: defaultSyntheticKvm({ vms: 2, unmapPerMs: 50, flushPerMs: 0 }) }] });
    expect(r.runs[1].dvm.receivedPerSmmu[0]).toBeGreaterThan(0);
    expect(r.runs[1].collateral.total).toBe(0);
    // ...but a KVM VMID rollover (ALLE1IS) wipes every NS-EL1 entry, VMID 0 stage-1 ones included.
    const r2 = runLines(b.lines, { runs: [{}, { btm: true, kvm: defaultSyntheticKvm({ vms: 2, unmapPerMs: 0, flushPerMs: 0, rolloverPerS: 20000 }) }] });
    expect(r2.runs[1].kvm!.rollovers).toBeGreaterThan(3);
    expect(r2.runs[1].collateral.bySource.kvmRollover).toBeGreaterThan(0);
    expect(r2.runs[1].collateral.byVictim.smmuS1).toBe(r2.runs[1].collateral.total);
  });

  it('the report shows QEMU, as recorded, what-if and the difference', () => {
    const { r } = whatIf({ policy: 'btm-2020', kvm, label: 'what-if: btm-2020, kvm 2 VMs' });
    const out = replayOutput('s2.log', r);
    expect(out.delta!.find((d) => d.metric === 'collateral.total')!.base).toBe(0);
    const text = replayText(out);
    expect(text).toMatch(/QEMU\s+as recorded\s+what-if: btm-2020, kvm 2 VMs\s+delta/);
    expect(text).toContain('synthetic KVM: 2 VMs, VMIDs 1,2');
    expect(diffMetrics({ a: 1, b: [1, 2] }, { a: 2, b: [3] })).toEqual([{ metric: 'a', base: 1, whatIf: 2, delta: 1, ratio: 1 }]);
  });

  it('other TLB geometry: QEMU\'s capacity flushes are not applied, the model\'s own replacement runs', () => {
    const { w } = whatIf({ tlb: { entries: 8, ways: 2, policy: 'rr' } });
    expect(w.translation.hits + w.translation.misses).toBe(301);
  });

  it('CLI options: what-if only when asked; bad values are one-line errors', () => {
    expect(replayRuns({})).toEqual([{ label: 'as recorded' }]);
    const runs = replayRuns({ btm: 'on', ril: 'off', smmuTlb: '2048,4', kvmVms: '4', kvmRate: '3', policy: 'btm-split' });
    expect(runs[1]).toMatchObject({ btm: true, ril: 'off', tlb: { entries: 2048, ways: 4, policy: 'lru' }, policy: 'btm-split', kvm: { vms: 4, unmapPerMs: 3 } });
    expect(runs[1].label).toBe('what-if: btm-split, btm on, ril off, tlb 2048x4, kvm 4 VMs');
    expect(() => replayRuns({ smmuTlb: '100,3' })).toThrow(UserError);
    expect(() => replayRuns({ ril: 'maybe' })).toThrow('--ril: expected on or off, got "maybe"');
    expect(() => replayRuns({ kvmRate: '2' })).toThrow('need --kvm-vms');
    expect(() => replayRuns({ policy: 'btm-2021' })).toThrow('unknown policy "btm-2021"');
  });
});
