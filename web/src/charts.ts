/**
 * Small self-contained SVG charts (no chart library): stacked horizontal bars, one bar per
 * policy. Returned as strings so the page and the exported HTML report share them. Colours
 * are set as attributes (Okabe-Ito palette, distinguishable with colour-blindness), so an SVG
 * copied out of the page renders the same anywhere.
 *
 * Pure (no DOM).
 */
import type { RunMetrics, RunOutput } from '../../src/sim/run.js';

export interface Series { key: string; label: string; color: string }

export interface StackedBarSpec {
  id: string;
  title: string;
  /** One sentence under the title: what is counted. */
  subtitle: string;
  categories: string[];
  series: Series[];
  /** values[category][series] */
  values: number[][];
  format: (v: number) => string;
  /** Axis tick labels (default: compact numbers). */
  tick?: (v: number) => string;
  /** Extra text after each bar's total. */
  note?: (categoryIndex: number) => string;
  /** Shown instead of the bars when every value is 0. */
  emptyText?: string;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export const fmtInt = (v: number): string => Math.round(v).toLocaleString('en-US');
export const fmtMs = (ns: number): string => `${(ns / 1e6).toFixed(2)} ms`;

/** 1, 2 or 5 times a power of ten, at least x. */
function niceCeil(x: number): number {
  if (x <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x * (1 - 1e-9)) return m * p;
  return 10 * p;
}

/** Axis: a nice step and 1..4 ticks covering max. */
export function axis(max: number): { step: number; ticks: number } {
  if (!(max > 0)) return { step: 1, ticks: 1 };
  const step = niceCeil(max / 4);
  return { step, ticks: Math.max(1, Math.ceil(max / step - 1e-9)) };
}

/** 0, 950, 12k, 1.5M */
export function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(2)}`;
}

export function stackedBarsSvg(spec: StackedBarSpec): string {
  const W = 640, labelW = 118, rightW = 150, rowH = 28, barH = 18, legendRowH = 18;
  const plotW = W - labelW - rightW;
  const totals = spec.values.map((row) => row.reduce((a, b) => a + b, 0));
  const ax = axis(Math.max(0, ...totals));
  const max = ax.step * ax.ticks;
  const tick = spec.tick ?? compact;
  const shown = spec.series.filter((_, si) => spec.values.some((row) => row[si] > 0));
  // legend: wrap swatches into rows
  const legend: { s: Series; x: number; y: number }[] = [];
  let lx = 0, ly = 0;
  for (const s of shown) {
    const w = 22 + s.label.length * 7.2 + 16;
    if (lx + w > W && lx > 0) { lx = 0; ly += legendRowH; }
    legend.push({ s, x: lx, y: ly });
    lx += w;
  }
  const legendH = shown.length > 0 ? ly + legendRowH + 6 : 0;
  const top = legendH + 6;
  const plotH = spec.categories.length * rowH;
  const H = top + plotH + 26;
  const titleId = `${spec.id}-title`, descId = `${spec.id}-desc`;
  const desc = spec.categories.map((c, ci) =>
    `${c}: ${spec.format(totals[ci])}${shown.length > 1 ? ` (${shown.map((s) => `${s.label} ${spec.format(spec.values[ci][spec.series.indexOf(s)])}`).join(', ')})` : ''}${spec.note ? `, ${spec.note(ci)}` : ''}`).join('; ');
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" id="${esc(spec.id)}" class="chart" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-labelledby="${titleId} ${descId}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12">`);
  o.push(`<title id="${titleId}">${esc(spec.title)}</title><desc id="${descId}">${esc(desc)}</desc>`);
  for (const { s, x, y } of legend) {
    o.push(`<rect x="${x}" y="${y + 3}" width="12" height="12" rx="2" fill="${s.color}"/><text x="${x + 17}" y="${y + 13}" fill="currentColor">${esc(s.label)}</text>`);
  }
  // grid and ticks
  for (let k = 0; k <= ax.ticks; k++) {
    const v = ax.step * k, x = labelW + (plotW * k) / ax.ticks;
    o.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="currentColor" stroke-opacity="0.15"/>`);
    o.push(`<text x="${x}" y="${top + plotH + 16}" text-anchor="middle" fill="currentColor" fill-opacity="0.7">${esc(tick(v))}</text>`);
  }
  spec.categories.forEach((c, ci) => {
    const y = top + ci * rowH + (rowH - barH) / 2;
    o.push(`<text x="${labelW - 8}" y="${y + barH / 2 + 4}" text-anchor="end" fill="currentColor" font-weight="600">${esc(c)}</text>`);
    let x = labelW;
    spec.series.forEach((s, si) => {
      const v = spec.values[ci][si];
      if (v <= 0) return;
      const w = (plotW * v) / max;
      o.push(`<rect x="${x.toFixed(2)}" y="${y}" width="${Math.max(w, 0.5).toFixed(2)}" height="${barH}" fill="${s.color}"><title>${esc(`${c}, ${s.label}: ${spec.format(v)}`)}</title></rect>`);
      x += w;
    });
    const label = spec.format(totals[ci]) + (spec.note ? `  ${spec.note(ci)}` : '');
    o.push(`<text x="${x + 6}" y="${y + barH / 2 + 4}" fill="currentColor">${esc(label)}</text>`);
  });
  if (spec.emptyText !== undefined && totals.every((t) => t === 0)) {
    o.push(`<text x="${labelW + plotW / 2}" y="${top + plotH / 2 + 4}" text-anchor="middle" fill="currentColor" font-style="italic">${esc(spec.emptyText)}</text>`);
  }
  o.push('</svg>');
  return o.join('');
}

export const SOURCE_SERIES: Series[] = [
  { key: 'kvmPage', label: 'KVM page unmap', color: '#D55E00' },
  { key: 'kvmRange', label: 'KVM range unmap', color: '#E69F00' },
  { key: 'kvmVm', label: 'KVM whole-VM flush', color: '#CC79A7' },
  { key: 'kvmRollover', label: 'KVM VMID rollover', color: '#0072B2' },
  { key: 'guest', label: 'guest TLBI', color: '#56B4E9' },
  { key: 'hostMm', label: 'host mm', color: '#009E73' },
  { key: 'driver', label: 'SMMU driver', color: '#F0E442' },
  { key: 'asidRollover', label: 'ASID rollover', color: '#999999' },
];

export interface ChartOut { id: string; title: string; subtitle: string; svg: string }

/** The page's three charts for a run. */
export function runCharts(out: RunOutput): ChartOut[] {
  const cats = out.results.map((r) => r.policy);
  const ms: RunMetrics[] = out.results.map((r) => r.metrics);
  const specs: StackedBarSpec[] = [
    {
      id: 'chart-collateral',
      title: 'Collateral invalidations by source',
      subtitle: 'TLB entries (SMMU and CPU) removed by an invalidation that was not meant for them, by who issued it. Lower is better.',
      categories: cats,
      series: SOURCE_SERIES,
      values: ms.map((m) => SOURCE_SERIES.map((s) => m.collateral.bySource[s.key] ?? 0)),
      format: fmtInt,
      emptyText: 'no collateral invalidations under any policy',
    },
    {
      id: 'chart-walks',
      title: 'SMMU page-table walk memory accesses',
      subtitle: 'Walk reads for DMA translations; the orange part refills entries lost to collateral invalidations. Hit rate of the SMMU TLB at the end of each bar.',
      categories: cats,
      series: [
        { key: 'refill', label: 'collateral refills', color: '#D55E00' },
        { key: 'other', label: 'other walks', color: '#0072B2' },
      ],
      values: ms.map((m) => [m.collateralRefillWalkAccesses, Math.max(0, m.translation.walkAccesses - m.collateralRefillWalkAccesses)]),
      format: fmtInt,
      note: (ci) => `hit rate ${ms[ci].translation.hitRate.toFixed(4)}`,
    },
    {
      id: 'chart-time',
      title: 'Estimated time spent on translation and invalidation',
      subtitle: 'From the cost model: DMA translation (TLB hits + walk reads), SMMU driver commands and CMD_SYNCs, DVM messages received. Lower is better.',
      categories: cats,
      series: [
        { key: 'dma', label: 'DMA translation', color: '#0072B2' },
        { key: 'driver', label: 'driver commands + CMD_SYNC', color: '#E69F00' },
        { key: 'dvm', label: 'DVM messages', color: '#CC79A7' },
      ],
      values: ms.map((m) => [m.translation.dmaTimeNs, m.translation.driverInvalidationTimeNs, m.translation.dvmTimeNs]),
      format: fmtMs,
      tick: (ns) => `${compact(ns / 1e6)} ms`,
    },
  ];
  return specs.map((s) => ({ id: s.id, title: s.title, subtitle: s.subtitle, svg: stackedBarsSvg(s) }));
}
