import type { RunOutput, RunMetrics } from '../sim/run.js';

/** One row of the comparison table: label and how to read it from the metrics. */
interface Row {
  label: string;
  get: (m: RunMetrics) => number | string | null;
  indent?: boolean;
  /** Shown only when some run has this (a workload feature most scenarios do not use). */
  showIf?: (m: RunMetrics) => boolean;
}

const ms = (ns: number): string => (ns / 1e6).toFixed(3);
/** The run had guest SVA munmaps (the rows about them are shown only then). */
const guestSva = (m: RunMetrics): boolean => (m.workload.guestSvaMunmaps ?? 0) > 0;

/** The rows of `btmsim run`'s table, in reading order (README "Reading the default output"). */
export const TABLE_ROWS: Row[] = [
  { label: 'collateral invalidations', get: (m) => m.collateral.total },
  { label: 'by KVM page/range flushes', get: (m) => m.collateral.bySource.kvmPage + m.collateral.bySource.kvmRange, indent: true },
  { label: 'by KVM whole-VM flushes', get: (m) => m.collateral.bySource.kvmVm, indent: true },
  { label: 'by KVM VMID rollovers', get: (m) => m.collateral.bySource.kvmRollover, indent: true },
  { label: 'by guest TLBIs', get: (m) => m.collateral.bySource.guest, indent: true },
  { label: 'by host mm / ASID / driver', get: (m) => m.collateral.bySource.hostMm + m.collateral.bySource.asidRollover + m.collateral.bySource.driver, indent: true },
  { label: 'SMMU victims (S2/S1/nested)', get: (m) => `${m.collateral.byVictim.smmuS2}/${m.collateral.byVictim.smmuS1}/${m.collateral.byVictim.smmuNested}`, indent: true },
  { label: 'intended invalidations', get: (m) => m.intended.total },
  { label: 'collateral refills', get: (m) => m.collateralRefills },
  { label: 'refill walk accesses', get: (m) => m.collateralRefillWalkAccesses, indent: true },
  { label: 'SMMU commands', get: (m) => m.commands.total },
  { label: 'CMD_SYNC', get: (m) => m.commands.syncs, indent: true },
  { label: 'DVM TLBIs received by SMMUs', get: (m) => m.dvm.receivedPerSmmu.reduce((a, b) => a + b, 0) },
  { label: 'KVM VMID rollovers', get: (m) => m.vmid.kvmRollovers },
  { label: 'SMMU VMID alloc failures', get: (m) => m.vmid.smmuAllocFailures },
  { label: 'pinned VMIDs peak / failures', get: (m) => `${m.vmid.pinnedPeak}/${m.vmid.pinFailures}` },
  { label: 'devices left unattached', get: (m) => m.vmid.devicesUnattached },
  { label: 'DMA translations', get: (m) => m.translation.hits + m.translation.misses },
  { label: 'SMMU TLB hit rate', get: (m) => m.translation.hitRate.toFixed(4) },
  { label: 'walk memory accesses', get: (m) => m.translation.walkAccesses },
  { label: 'DMA translation time (ms)', get: (m) => ms(m.translation.dmaTimeNs) },
  { label: 'driver invalidation time (ms)', get: (m) => ms(m.translation.driverInvalidationTimeNs) },
  { label: 'guest SVA munmaps (nested)', get: (m) => m.workload.guestSvaMunmaps ?? 0, showIf: guestSva },
  { label: 'vSMMU command traps', get: (m) => m.workload.vsmmuTraps ?? 0, indent: true, showIf: guestSva },
  { label: 'vSMMU trap time (ms)', get: (m) => ms(m.translation.vsmmuTrapTimeNs ?? 0), indent: true, showIf: guestSva },
];

/** The rows shown for these results (TABLE_ROWS without the rows no run needs). */
export function tableRowsFor(out: RunOutput): Row[] {
  return TABLE_ROWS.filter((r) => r.showIf === undefined || out.results.some((x) => r.showIf!(x.metrics)));
}

/** A fixed-width comparison table, one column per policy. */
export function comparisonTable(out: RunOutput): string {
  const heads = out.results.map((r) => r.policy);
  const rows = tableRowsFor(out);
  const cells = rows.map((row) => out.results.map((r) => fmt(row.get(r.metrics))));
  const labelW = Math.max(...rows.map((r) => r.label.length + (r.indent ? 2 : 0)));
  const colW = heads.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const lines: string[] = [];
  const sim = out.results[0]?.metrics.simulatedNs ?? 0;
  lines.push(`scenario ${out.scenario}, seed ${out.seed}, ${(sim / 1e6).toFixed(1)} ms simulated`);
  lines.push('');
  lines.push(pad('', labelW) + '  ' + heads.map((h, i) => h.padStart(colW[i])).join('  '));
  rows.forEach((row, ri) => {
    const label = (row.indent ? '  ' : '') + row.label;
    lines.push(pad(label, labelW) + '  ' + cells[ri].map((c, i) => c.padStart(colW[i])).join('  '));
  });
  return lines.join('\n') + '\n';
}

function fmt(v: number | string | null): string {
  if (v === null) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(3);
  return v;
}

const pad = (s: string, w: number): string => s + ' '.repeat(Math.max(0, w - s.length));
