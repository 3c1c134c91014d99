/**
 * `btmsim replay` output: the JSON document and the text table (QEMU's own figures, the replay
 * as recorded, a what-if and the difference). No Node or DOM imports.
 */
import type { PipelineResult } from './pipeline.js';
import { comparableMetrics, type ReplayMetrics } from './replay.js';
import { diffMetrics, type MetricDelta } from './whatif.js';

export const REPLAY_OUTPUT_VERSION = 1;

/** What QEMU itself observed, from the trace (QEMU traces only). */
export interface Observed {
  translations: number;
  iotlb: { hits: number; misses: number; hitRate: number };
  walkReads: number;
  commands: { total: number; syncs: number; byOpcode: Record<string, number> };
  capacityFlushes: number;
}

export interface ReplayOutput {
  version: number;
  file: string;
  format: 'jsonl' | 'qemu';
  lines: number;
  badLines: number;
  unknownEvents: Record<string, number>;
  source: string | null;
  observed: Observed | null;
  import: PipelineResult['import'];
  asRecorded: ReplayMetrics | null;
  whatIf: ReplayMetrics | null;
  /** What-if minus as recorded, for every metric that differs. */
  delta: MetricDelta[] | null;
  /** JSONL with an `end` event: whether the replay reproduced the recorded metrics (comparableMetrics). */
  matchesRecording: boolean | null;
  /** The metrics that differ from the recording, if any. */
  recordingMismatches: MetricDelta[] | null;
}

export function replayOutput(file: string, r: PipelineResult): ReplayOutput {
  let observed: Observed | null = null;
  if (r.stats !== null) {
    const s = r.stats;
    let total = 0;
    for (const v of Object.values(s.commands)) total += v;
    observed = {
      translations: s.translations,
      iotlb: { hits: s.iotlb.hits, misses: s.iotlb.misses, hitRate: s.iotlb.hitRate },
      walkReads: s.walkReads,
      commands: { total, syncs: s.commands.CMD_SYNC ?? 0, byOpcode: s.commands },
      capacityFlushes: s.capacityFlushes,
    };
  }
  const asRecorded = r.runs[0] ?? null;
  const whatIf = r.runs[1] ?? null;
  let matches: boolean | null = null;
  let mismatches: MetricDelta[] | null = null;
  if (r.recorded !== null && asRecorded !== null) {
    mismatches = diffMetrics(comparableMetrics(r.recorded), comparableMetrics(asRecorded as unknown as Record<string, unknown>));
    matches = mismatches.length === 0;
  }
  return {
    version: REPLAY_OUTPUT_VERSION,
    file,
    format: r.format,
    lines: r.lines,
    badLines: r.badLines,
    unknownEvents: r.unknownEvents,
    source: r.header?.source ?? null,
    observed,
    import: r.import,
    asRecorded,
    whatIf,
    delta: asRecorded !== null && whatIf !== null ? diffMetrics(asRecorded, whatIf).filter((d) => d.metric !== 'events') : null,
    matchesRecording: matches,
    recordingMismatches: mismatches,
  };
}

interface Row { label: string; obs?: (o: Observed) => number | string; run?: (m: ReplayMetrics) => number | string; indent?: boolean }

const ms = (ns: number): string => (ns / 1e6).toFixed(3);
const sum = (a: number[]): number => a.reduce((x, y) => x + y, 0);

function rows(out: ReplayOutput): Row[] {
  const r: Row[] = [
    { label: 'DMA translations', obs: (o) => o.translations, run: (m) => m.dmaTranslations },
    { label: 'SMMU TLB hits', obs: (o) => o.iotlb.hits, run: (m) => m.translation.hits },
    { label: 'SMMU TLB misses', obs: (o) => o.iotlb.misses, run: (m) => m.translation.misses },
    { label: 'hit rate', obs: (o) => o.iotlb.hitRate.toFixed(4), run: (m) => m.translation.hitRate.toFixed(4) },
    { label: 'walk memory accesses', obs: (o) => o.walkReads, run: (m) => m.translation.walkAccesses },
    { label: 'capacity flushes (QEMU IOTLB full)', obs: (o) => o.capacityFlushes, run: (m) => m.smmu.capacityFlushesApplied },
    { label: 'SMMU commands', obs: (o) => o.commands.total, run: (m) => m.commands.total },
  ];
  const ops = new Set<string>();
  for (const k of Object.keys(out.observed?.commands.byOpcode ?? {})) ops.add(k);
  for (const m of [out.asRecorded, out.whatIf]) if (m !== null) for (const k of Object.keys(m.commands.byOpcode)) ops.add(k);
  for (const k of ops) {
    r.push({ label: k, indent: true, obs: (o) => o.commands.byOpcode[k] ?? 0, run: (m) => m.commands.byOpcode[k] ?? 0 });
  }
  r.push(
    { label: 'commands the model rejected', run: (m) => m.smmu.commandErrors },
    { label: 'DVM TLBIs received by SMMUs', run: (m) => sum(m.dvm.receivedPerSmmu) },
    { label: 'DVM TLBIs ignored (PTM / no BTM)', run: (m) => sum(m.dvm.ignoredPerSmmu) },
    { label: 'CPU TLBIs broadcast', run: (m) => m.cpu.tlbiBroadcast },
    { label: 'SMMU entries invalidated', run: (m) => m.smmu.entriesInvalidated },
    { label: 'collateral invalidations', run: (m) => m.collateral.total },
    { label: 'by KVM page/range flushes', indent: true, run: (m) => m.collateral.bySource.kvmPage + m.collateral.bySource.kvmRange },
    { label: 'by KVM whole-VM flushes', indent: true, run: (m) => m.collateral.bySource.kvmVm },
    { label: 'by KVM VMID rollovers', indent: true, run: (m) => m.collateral.bySource.kvmRollover },
    { label: 'intended invalidations', run: (m) => m.intended.total },
    { label: 'collateral refills', run: (m) => m.collateralRefills },
    { label: 'refill walk accesses', indent: true, run: (m) => m.collateralRefillWalkAccesses },
    { label: 'DMA translation time (ms)', run: (m) => ms(m.translation.dmaTimeNs) },
    { label: 'driver invalidation time (ms)', run: (m) => ms(m.translation.driverInvalidationTimeNs) },
    { label: 'DVM time at the SMMU (ms)', run: (m) => ms(m.translation.dvmTimeNs) },
  );
  return r;
}

function fmt(v: number | string | undefined): string {
  if (v === undefined) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(3);
  return v;
}

/** The replay as a fixed-width table, with the import summary above it. */
export function replayText(out: ReplayOutput): string {
  const L: string[] = [];
  const fmtName = out.format === 'qemu' ? 'QEMU trace' : `btmsim trace (source: ${out.source ?? '?'})`;
  L.push(`${out.file}: ${fmtName}, ${out.lines} lines${out.badLines > 0 ? `, ${out.badLines} malformed lines skipped` : ''}`);
  const unk = Object.entries(out.unknownEvents);
  if (unk.length > 0) L.push(`unknown events (counted, not replayed): ${unk.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  const im = out.import;
  if (im !== null) {
    const un = im.untranslated;
    L.push(`imported: ${im.dma} DMA translations (not translated: ${un.bypass} bypass, ${un.abort} abort, ${un.disabled} SMMU disabled), ` +
      `${Object.values(im.commands).reduce((a, b) => a + b, 0)} commands, ${im.configs} StreamID configurations, ` +
      `${im.tables} page tables with ${im.maps} mappings, ${im.capacityFlushes} QEMU capacity flushes`);
    L.push(`  range TLBIs merged back from smmuv3_range_inval pieces: ${im.rangeMerged.commands} (from ${im.rangeMerged.pieces} pieces)` +
      (im.qemuCommandErrors > 0 ? `; ${im.qemuCommandErrors} commands QEMU rejected (not replayed)` : '') +
      (im.unhandledCommands > 0 ? `; ${im.unhandledCommands} commands QEMU does not handle` : ''));
    const inf = im.inferred;
    L.push(`  inferred (QEMU does not print them): CMD_SYNC CS/MSI fields, PREFETCH StreamID ${inf.prefetchSid}, ` +
      `CFGI_CD SubstreamID ${inf.cfgiCdSsid}, missing StreamID ${inf.cfgiStSid}, CFGI_ALL range ${inf.cfgiAll}, ` +
      `TLBI without range lines ${inf.missingRange}, context without IOTLB line ${im.guessedContext}`);
  }
  if (out.matchesRecording !== null) {
    L.push(out.matchesRecording
      ? 'replay reproduces the metrics of the recording run'
      : `replay differs from the recording run in ${out.recordingMismatches!.length} metrics: ` +
        out.recordingMismatches!.slice(0, 5).map((d) => `${d.metric} ${d.base} -> ${d.whatIf}`).join(', '));
  }
  L.push('');
  const cols: { head: string; get: (row: Row) => string }[] = [];
  if (out.observed !== null) cols.push({ head: 'QEMU', get: (row) => (row.obs ? fmt(row.obs(out.observed!)) : '-') });
  if (out.asRecorded !== null) cols.push({ head: out.asRecorded.label, get: (row) => (row.run ? fmt(row.run(out.asRecorded!)) : '-') });
  if (out.whatIf !== null) {
    cols.push({ head: out.whatIf.label, get: (row) => (row.run ? fmt(row.run(out.whatIf!)) : '-') });
    cols.push({
      head: 'delta',
      get: (row) => {
        if (!row.run) return '';
        const a = row.run(out.asRecorded!), b = row.run(out.whatIf!);
        const x = typeof a === 'number' ? a : Number(a), y = typeof b === 'number' ? b : Number(b);
        if (!Number.isFinite(x) || !Number.isFinite(y) || x === y) return '';
        const d = y - x;
        const s = (d > 0 ? '+' : '') + (Number.isInteger(d) ? String(d) : d.toFixed(4));
        return x !== 0 ? `${s} (${d > 0 ? '+' : ''}${((d / x) * 100).toFixed(1)}%)` : s;
      },
    });
  }
  const rs = rows(out);
  const cells = rs.map((row) => cols.map((c) => c.get(row)));
  const labelW = Math.max(...rs.map((r) => r.label.length + (r.indent ? 2 : 0)));
  const colW = cols.map((c, i) => Math.max(c.head.length, ...cells.map((x) => x[i].length)));
  const pad = (s: string, w: number): string => s + ' '.repeat(Math.max(0, w - s.length));
  L.push(pad('', labelW) + '  ' + cols.map((c, i) => c.head.padStart(colW[i])).join('  '));
  rs.forEach((row, ri) => {
    L.push(pad((row.indent ? '  ' : '') + row.label, labelW) + '  ' + cells[ri].map((c, i) => c.padStart(colW[i])).join('  '));
  });
  if (out.whatIf?.kvm) {
    const k = out.whatIf.kvm;
    L.push('', `synthetic KVM: ${k.vms} VMs, VMIDs ${k.vmids.join(',')}, ${k.unmaps} page unmaps (IPAS2E1IS+VMALLE1IS), ${k.vmFlushes} VM flushes (VMALLS12E1IS), ${k.rollovers} VMID rollovers (ALLE1IS)`);
  }
  const rw = out.whatIf?.rewrite;
  if (rw && (rw.rangeSplit > 0 || rw.merged > 0 || rw.vmidRemapped > 0)) {
    L.push(`command rewrite: ${rw.rangeSplit} range TLBIs split into ${rw.perPageCommands} per-granule commands, ${rw.merged} per-page runs merged, ${rw.vmidRemapped} VMIDs moved`);
  }
  return L.join('\n') + '\n';
}
