/**
 * Static SVG charts as strings: line charts (small multiples sharing a y scale), horizontal bar
 * panels and grouped vertical bars. No chart library and no DOM, so the same code renders in
 * Node (HTML reports) and in the browser explorer; the output is a pure function of the input
 * (byte-identical across runs). Every string that reaches the SVG is escaped.
 */
import { POLICY_NAMES } from '../workload/schema.js';

/** Escape text for HTML/XML content and attribute values. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'));
}

/** Okabe–Ito palette (distinguishable with the common colour-vision deficiencies). */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'];

/** A fixed colour per policy, the same in every chart. */
export function policyColor(policy: string): string {
  const i = (POLICY_NAMES as readonly string[]).indexOf(policy);
  return PALETTE[i >= 0 ? i : (hash(policy) % PALETTE.length)];
}

/** Dash pattern per series index, so overlapping lines stay distinguishable. */
const DASHES = ['', '6 3', '2 2', '8 3 2 3', '4 4', '1 3'];
type Marker = 'circle' | 'square' | 'triangle' | 'diamond' | 'cross' | 'tri-down';
const MARKERS: Marker[] = ['circle', 'square', 'triangle', 'diamond', 'cross', 'tri-down'];

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** Numbers in SVG coordinates: at most 2 decimals, no trailing zeros. */
const c = (v: number): string => formatFixed(v, 2);

function formatFixed(v: number, d: number): string {
  const s = v.toFixed(d);
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** Tick label: 3 significant digits, k/M/G suffixes. */
export function fmtTick(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return trimSig(v / 1e9) + 'G';
  if (a >= 1e6) return trimSig(v / 1e6) + 'M';
  if (a >= 1e4) return trimSig(v / 1e3) + 'k';
  if (a === 0) return '0';
  if (a < 0.001) return v.toExponential(1);
  return trimSig(v);
}

function trimSig(v: number): string {
  const a = Math.abs(v);
  const d = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return formatFixed(v, d);
}

/** Table number: integers with thousands separators, others with up to 4 significant decimals. */
export function fmtNum(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (Number.isInteger(v)) return groupThousands(String(Math.abs(v)), v < 0);
  const a = Math.abs(v);
  const d = a >= 1000 ? 1 : a >= 1 ? 3 : 4;
  const s = formatFixed(a, d);
  const [i, f] = s.split('.');
  return groupThousands(i, v < 0) + (f !== undefined ? '.' + f : '');
}

function groupThousands(digits: string, neg: boolean): string {
  return (neg ? '−' : '') + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** "Nice" ticks covering [lo, hi] (1, 2, 5 × 10^k steps), about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  const step = (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  const start = Math.floor(lo / step + 1e-9) * step;
  const ticks: number[] = [];
  for (let v = start; v < hi + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';
const TEXT = '#222';
const MUTED = '#666';
const GRID = '#e4e4e4';
const AXIS = '#999';

export interface LegendItem { label: string; color: string; dash?: string; marker?: Marker; swatch?: 'line' | 'box' }

/** Approximate text width (px) at font size 11, for layout. */
const textW = (s: string, size = 11): number => s.length * size * 0.58;

function legend(items: readonly LegendItem[], x0: number, y0: number, maxW: number): { svg: string; height: number } {
  if (items.length === 0) return { svg: '', height: 0 };
  let x = x0, y = y0;
  const parts: string[] = [];
  for (const it of items) {
    const w = 30 + textW(it.label) + 16;
    if (x + w > x0 + maxW && x > x0) { x = x0; y += 18; }
    if (it.swatch === 'box') {
      parts.push(`<rect x="${c(x)}" y="${c(y - 8)}" width="14" height="10" fill="${it.color}"/>`);
    } else {
      parts.push(`<line x1="${c(x)}" y1="${c(y - 3)}" x2="${c(x + 22)}" y2="${c(y - 3)}" stroke="${it.color}" stroke-width="2"${it.dash ? ` stroke-dasharray="${it.dash}"` : ''}/>`);
      if (it.marker) parts.push(marker(it.marker, x + 11, y - 3, it.color));
    }
    parts.push(`<text x="${c(x + (it.swatch === 'box' ? 19 : 27))}" y="${c(y)}" fill="${TEXT}">${esc(it.label)}</text>`);
    x += w;
  }
  return { svg: `<g class="legend">${parts.join('')}</g>`, height: y - y0 + 18 };
}

function marker(kind: Marker, x: number, y: number, color: string): string {
  const r = 3;
  switch (kind) {
    case 'circle': return `<circle cx="${c(x)}" cy="${c(y)}" r="${r}" fill="${color}"/>`;
    case 'square': return `<rect x="${c(x - r)}" y="${c(y - r)}" width="${r * 2}" height="${r * 2}" fill="${color}"/>`;
    case 'triangle': return `<path d="M${c(x)} ${c(y - r - 0.5)}L${c(x + r + 0.5)} ${c(y + r)}L${c(x - r - 0.5)} ${c(y + r)}Z" fill="${color}"/>`;
    case 'tri-down': return `<path d="M${c(x)} ${c(y + r + 0.5)}L${c(x + r + 0.5)} ${c(y - r)}L${c(x - r - 0.5)} ${c(y - r)}Z" fill="${color}"/>`;
    case 'diamond': return `<path d="M${c(x)} ${c(y - r - 1)}L${c(x + r + 1)} ${c(y)}L${c(x)} ${c(y + r + 1)}L${c(x - r - 1)} ${c(y)}Z" fill="${color}"/>`;
    case 'cross': return `<path d="M${c(x - r)} ${c(y - r)}L${c(x + r)} ${c(y + r)}M${c(x - r)} ${c(y + r)}L${c(x + r)} ${c(y - r)}" stroke="${color}" stroke-width="1.8"/>`;
  }
}

function svgOpen(w: number, h: number, title: string, id?: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg"${id ? ` id="${esc(id)}"` : ''} class="chart" width="${c(w)}" height="${c(h)}" viewBox="0 0 ${c(w)} ${c(h)}" role="img" aria-label="${esc(title)}" ${FONT} font-size="11"><title>${esc(title)}</title>`;
}

function header(title: string, subtitle: string | undefined, w: number): { svg: string; height: number } {
  let s = `<text x="0" y="15" font-size="14" font-weight="600" fill="${TEXT}">${esc(title)}</text>`;
  let h = 24;
  if (subtitle) {
    for (const line of wrap(subtitle, Math.floor(w / 6.2))) {
      s += `<text x="0" y="${h + 9}" fill="${MUTED}">${esc(line)}</text>`;
      h += 15;
    }
    h += 4;
  }
  return { svg: s, height: h };
}

function wrap(text: string, width: number): string[] {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let cur = '';
  for (const w of words) {
    if (cur !== '' && cur.length + 1 + w.length > width) { lines.push(cur); cur = w; } else cur = cur === '' ? w : cur + ' ' + w;
  }
  if (cur !== '') lines.push(cur);
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Line charts

export interface LineSeries {
  label: string;
  color: string;
  /** [x, y]; y null breaks the line. */
  points: ReadonlyArray<readonly [number, number | null]>;
}

export interface LinePanel { title: string; series: LineSeries[] }

export interface LineChartSpec {
  id?: string;
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  panels: LinePanel[];
  xScale?: 'linear' | 'log2';
  /** Label x ticks at the data's x values (few distinct values, e.g. a swept parameter). */
  xAtData?: boolean;
  xFormat?: (v: number) => string;
  yFormat?: (v: number) => string;
  /** Draw steps (value holds until the next sample) instead of straight segments. */
  step?: boolean;
  /** Draw point markers (default: when a series has at most 40 points). */
  markers?: boolean;
  /** Horizontal reference lines per panel index (e.g. a capacity). */
  refLines?: ReadonlyArray<ReadonlyArray<{ y: number; label: string }>>;
  width?: number;
  panelHeight?: number;
}

/** A line chart; several panels share the y scale and the legend (small multiples). */
export function lineChart(spec: LineChartSpec): string {
  const n = Math.max(1, spec.panels.length);
  const W = spec.width ?? 900;
  const cols = Math.min(n, n === 4 ? 2 : 3);
  const rows = Math.ceil(n / cols);
  const gap = 18;
  const panelW = (W - gap * (cols - 1)) / cols;
  const panelH = spec.panelHeight ?? (n === 1 ? 300 : 240);
  const ml = 58, mr = 14, mt = 22, mb = 40;
  const plotW = panelW - ml - mr, plotH = panelH - mt - mb;
  const yFmt = spec.yFormat ?? fmtTick;
  const xFmt = spec.xFormat ?? fmtTick;
  const log = spec.xScale === 'log2';

  // Legend items: every series label once, in first-seen order.
  const items: LegendItem[] = [];
  const styleOf = new Map<string, { dash: string; marker: Marker; color: string }>();
  for (const p of spec.panels) for (const s of p.series) {
    if (!styleOf.has(s.label)) {
      const i = styleOf.size;
      const st = { dash: DASHES[i % DASHES.length], marker: MARKERS[i % MARKERS.length], color: s.color };
      styleOf.set(s.label, st);
      items.push({ label: s.label, color: s.color, dash: st.dash, marker: st.marker });
    }
  }
  const head = header(spec.title, spec.subtitle, W);
  const leg = legend(items, 0, head.height + 12, W);
  const top = head.height + leg.height + 8;

  // Domains.
  let xmin = Infinity, xmax = -Infinity, ymax = 0, ymin = 0;
  const xs = new Set<number>();
  for (const p of spec.panels) for (const s of p.series) for (const [x, y] of s.points) {
    if (log && !(x > 0)) continue;
    xs.add(x);
    xmin = Math.min(xmin, x); xmax = Math.max(xmax, x);
    if (y !== null && Number.isFinite(y)) { ymax = Math.max(ymax, y); ymin = Math.min(ymin, y); }
  }
  for (const rl of spec.refLines ?? []) for (const r of rl) ymax = Math.max(ymax, r.y);
  if (!Number.isFinite(xmin)) { xmin = 0; xmax = 1; }
  if (xmin === xmax) { xmin = log ? xmin / 2 : xmin - 1; xmax = log ? xmax * 2 : xmax + 1; }
  const yTicks = niceTicks(ymin, ymax > ymin ? ymax : ymin + 1, 5);
  const y0 = yTicks[0], y1 = yTicks[yTicks.length - 1];
  const fx = (x: number): number => {
    const t = log ? (Math.log2(x) - Math.log2(xmin)) / (Math.log2(xmax) - Math.log2(xmin)) : (x - xmin) / (xmax - xmin);
    return t * plotW;
  };
  const fy = (y: number): number => plotH - ((y - y0) / (y1 - y0)) * plotH;
  let xTicks: number[];
  if (spec.xAtData || (log && xs.size <= 16)) xTicks = [...xs].sort((a, b) => a - b);
  else if (log) { xTicks = []; for (let e = Math.ceil(Math.log2(xmin)); e <= Math.floor(Math.log2(xmax)); e++) xTicks.push(2 ** e); }
  else xTicks = niceTicks(xmin, xmax, 6).filter((t) => t >= xmin - 1e-9 && t <= xmax + 1e-9);
  // Thin out x labels that would overlap.
  const xLabelEvery = Math.max(1, Math.ceil((xTicks.length * 34) / plotW));

  const parts: string[] = [head.svg, leg.svg];
  spec.panels.forEach((panel, pi) => {
    const col = pi % cols, row = Math.floor(pi / cols);
    const ox = col * (panelW + gap) + ml, oy = top + row * panelH + mt;
    const g: string[] = [`<g transform="translate(${c(ox)},${c(oy)})">`];
    if (n > 1 || panel.title !== '') g.push(`<text x="${c(plotW / 2)}" y="-8" text-anchor="middle" font-weight="600" fill="${TEXT}">${esc(panel.title)}</text>`);
    for (const t of yTicks) {
      g.push(`<line x1="0" x2="${c(plotW)}" y1="${c(fy(t))}" y2="${c(fy(t))}" stroke="${GRID}"/>`);
      g.push(`<text x="-6" y="${c(fy(t) + 3.5)}" text-anchor="end" fill="${MUTED}">${esc(yFmt(t))}</text>`);
    }
    xTicks.forEach((t, i) => {
      g.push(`<line x1="${c(fx(t))}" x2="${c(fx(t))}" y1="${c(plotH)}" y2="${c(plotH + 4)}" stroke="${AXIS}"/>`);
      if (i % xLabelEvery === 0) g.push(`<text x="${c(fx(t))}" y="${c(plotH + 15)}" text-anchor="middle" fill="${MUTED}">${esc(xFmt(t))}</text>`);
    });
    g.push(`<line x1="0" x2="${c(plotW)}" y1="${c(plotH)}" y2="${c(plotH)}" stroke="${AXIS}"/>`);
    g.push(`<line x1="0" x2="0" y1="0" y2="${c(plotH)}" stroke="${AXIS}"/>`);
    g.push(`<text x="${c(plotW / 2)}" y="${c(plotH + 32)}" text-anchor="middle" fill="${TEXT}">${esc(spec.xLabel)}</text>`);
    if (col === 0) g.push(`<text transform="translate(${c(-ml + 12)},${c(plotH / 2)}) rotate(-90)" text-anchor="middle" fill="${TEXT}">${esc(spec.yLabel)}</text>`);
    // Reference lines; their labels (right-aligned, above the line) are pushed down so that
    // labels of close lines do not overlap.
    let labelY = -Infinity;
    for (const r of [...(spec.refLines?.[pi] ?? [])].sort((a, b) => b.y - a.y)) {
      g.push(`<line x1="0" x2="${c(plotW)}" y1="${c(fy(r.y))}" y2="${c(fy(r.y))}" stroke="#b00" stroke-dasharray="5 3" stroke-width="1"/>`);
      labelY = Math.max(fy(r.y) - 4, labelY + 12);
      g.push(`<text x="${c(plotW - 2)}" y="${c(labelY)}" text-anchor="end" fill="#b00" stroke="#fff" stroke-width="3" paint-order="stroke">${esc(r.label)}</text>`);
    }
    for (const s of panel.series) {
      const st = styleOf.get(s.label)!;
      const segs: string[] = [];
      let pen = false;
      for (const [x, y] of s.points) {
        if (y === null || !Number.isFinite(y) || (log && !(x > 0))) { pen = false; continue; }
        const px = fx(x), py = fy(y);
        if (!pen) segs.push(`M${c(px)} ${c(py)}`);
        else if (spec.step) segs.push(`H${c(px)}V${c(py)}`);
        else segs.push(`L${c(px)} ${c(py)}`);
        pen = true;
      }
      if (segs.length > 0) {
        g.push(`<path d="${segs.join('')}" fill="none" stroke="${s.color}" stroke-width="2" stroke-linejoin="round"${st.dash ? ` stroke-dasharray="${st.dash}"` : ''}><title>${esc(s.label)}</title></path>`);
      }
      const showMarkers = spec.markers ?? s.points.length <= 40;
      if (showMarkers) {
        for (const [x, y] of s.points) {
          if (y === null || !Number.isFinite(y) || (log && !(x > 0))) continue;
          g.push(marker(st.marker, fx(x), fy(y), s.color));
        }
      }
    }
    g.push('</g>');
    parts.push(g.join(''));
  });
  const H = top + rows * panelH;
  return svgOpen(W, H, spec.title, spec.id) + parts.join('') + '</svg>';
}

// ---------------------------------------------------------------------------------------------
// Horizontal bar panels (one bar per category, e.g. per policy)

export interface BarPanel {
  title: string;
  bars: { label: string; color: string; value: number | null }[];
  format?: (v: number) => string;
}

export interface BarPanelsSpec { id?: string; title: string; subtitle?: string; panels: BarPanel[]; width?: number; columns?: number }

/** Small multiples of horizontal bar charts, each with its own scale. */
export function barPanels(spec: BarPanelsSpec): string {
  const W = spec.width ?? 900;
  const cols = Math.max(1, Math.min(spec.columns ?? 2, spec.panels.length));
  const gap = 28;
  const panelW = (W - gap * (cols - 1)) / cols;
  const labelW = Math.min(140, 12 + Math.max(0, ...spec.panels.flatMap((p) => p.bars.map((b) => textW(b.label)))));
  const valueW = 70;
  const barH = 16, rowH = 22;
  const head = header(spec.title, spec.subtitle, W);
  const maxBars = Math.max(1, ...spec.panels.map((p) => p.bars.length));
  const panelH = 26 + maxBars * rowH + 10;
  const parts: string[] = [head.svg];
  spec.panels.forEach((p, pi) => {
    const col = pi % cols, row = Math.floor(pi / cols);
    const ox = col * (panelW + gap), oy = head.height + 6 + row * panelH;
    const plotW = panelW - labelW - valueW;
    const max = Math.max(0, ...p.bars.map((b) => b.value ?? 0));
    const fmt = p.format ?? fmtNum;
    const g: string[] = [`<g transform="translate(${c(ox)},${c(oy)})">`];
    g.push(`<text x="0" y="13" font-weight="600" fill="${TEXT}">${esc(p.title)}</text>`);
    p.bars.forEach((b, i) => {
      const y = 24 + i * rowH;
      const w = b.value !== null && max > 0 ? (b.value / max) * plotW : 0;
      g.push(`<text x="${c(labelW - 6)}" y="${c(y + barH / 2 + 4)}" text-anchor="end" fill="${TEXT}">${esc(b.label)}</text>`);
      g.push(`<rect x="${c(labelW)}" y="${c(y)}" width="${c(Math.max(w, b.value ? 1 : 0))}" height="${barH}" fill="${b.color}"><title>${esc(`${b.label}: ${b.value === null ? 'no data' : fmt(b.value)}`)}</title></rect>`);
      g.push(`<text x="${c(labelW + w + 4)}" y="${c(y + barH / 2 + 4)}" fill="${MUTED}">${esc(b.value === null ? 'no data' : fmt(b.value))}</text>`);
    });
    g.push(`<line x1="${c(labelW)}" x2="${c(labelW)}" y1="20" y2="${c(24 + p.bars.length * rowH - 4)}" stroke="${AXIS}"/>`);
    g.push('</g>');
    parts.push(g.join(''));
  });
  const H = head.height + 6 + Math.ceil(spec.panels.length / cols) * panelH;
  return svgOpen(W, H, spec.title, spec.id) + parts.join('') + '</svg>';
}

// ---------------------------------------------------------------------------------------------
// Grouped vertical bars (groups along x, one bar per series in each group)

export interface GroupedBarsSpec {
  id?: string;
  title: string;
  subtitle?: string;
  groups: string[];
  series: { label: string; color: string }[];
  /** values[group][series] */
  values: (number | null)[][];
  yLabel: string;
  xLabel?: string;
  yFormat?: (v: number) => string;
  width?: number;
  height?: number;
}

export function groupedBars(spec: GroupedBarsSpec): string {
  const ns = Math.max(1, spec.series.length);
  const barW = Math.max(3, Math.min(14, Math.floor(620 / Math.max(1, spec.groups.length * ns))));
  const groupW = ns * barW + 10;
  const mr = 10;
  const longest = Math.max(0, ...spec.groups.map((g) => textW(g)));
  const rotate = longest > groupW - 4;
  const mb = rotate ? Math.min(140, longest * 0.72 + 28) : 40;
  const W = Math.max(spec.width ?? 900, 58 + mr + spec.groups.length * groupW);
  // Rotated labels reach left of their group: leave room for the first one.
  const slot0 = (W - 58 - mr) / Math.max(1, spec.groups.length);
  const ml = rotate ? Math.max(58, Math.ceil(longest * 0.77 - slot0 / 2 + 8)) : 58;
  const plotW = W - ml - mr;
  const plotH = spec.height ?? 240;
  const head = header(spec.title, spec.subtitle, W);
  const leg = legend(spec.series.map((s) => ({ label: s.label, color: s.color, swatch: 'box' as const })), 0, head.height + 12, W);
  const top = head.height + leg.height + 12;
  let max = 0;
  for (const row of spec.values) for (const v of row) if (v !== null && Number.isFinite(v)) max = Math.max(max, v);
  const ticks = niceTicks(0, max > 0 ? max : 1, 5);
  const y1 = ticks[ticks.length - 1];
  const fy = (v: number): number => plotH - (v / y1) * plotH;
  const slot = plotW / Math.max(1, spec.groups.length);
  const fmt = spec.yFormat ?? fmtTick;
  const g: string[] = [head.svg, leg.svg, `<g transform="translate(${ml},${c(top)})">`];
  for (const t of ticks) {
    g.push(`<line x1="0" x2="${c(plotW)}" y1="${c(fy(t))}" y2="${c(fy(t))}" stroke="${GRID}"/>`);
    g.push(`<text x="-6" y="${c(fy(t) + 3.5)}" text-anchor="end" fill="${MUTED}">${esc(fmt(t))}</text>`);
  }
  spec.groups.forEach((label, gi) => {
    const cx = slot * gi + slot / 2;
    const x0 = cx - (ns * barW) / 2;
    spec.series.forEach((s, si) => {
      const v = spec.values[gi]?.[si] ?? null;
      if (v === null || !Number.isFinite(v)) return;
      const h = plotH - fy(v);
      g.push(`<rect x="${c(x0 + si * barW)}" y="${c(fy(v))}" width="${c(Math.max(1, barW - 1))}" height="${c(Math.max(h, v > 0 ? 0.8 : 0))}" fill="${s.color}"><title>${esc(`${label} · ${s.label}: ${fmtNum(v)}`)}</title></rect>`);
    });
    if (rotate) g.push(`<text transform="translate(${c(cx + 3)},${c(plotH + 10)}) rotate(-40)" text-anchor="end" fill="${MUTED}">${esc(label)}</text>`);
    else g.push(`<text x="${c(cx)}" y="${c(plotH + 15)}" text-anchor="middle" fill="${MUTED}">${esc(label)}</text>`);
  });
  g.push(`<line x1="0" x2="${c(plotW)}" y1="${c(plotH)}" y2="${c(plotH)}" stroke="${AXIS}"/>`);
  g.push(`<text transform="translate(${c(-ml + 12)},${c(plotH / 2)}) rotate(-90)" text-anchor="middle" fill="${TEXT}">${esc(spec.yLabel)}</text>`);
  if (spec.xLabel) g.push(`<text x="${c(plotW / 2)}" y="${c(plotH + mb - 6)}" text-anchor="middle" fill="${TEXT}">${esc(spec.xLabel)}</text>`);
  g.push('</g>');
  const H = top + plotH + mb;
  return svgOpen(W, H, spec.title, spec.id) + g.join('') + '</svg>';
}
