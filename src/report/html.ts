/**
 * Self-contained HTML reports (inline CSS and SVG, no scripts to run, nothing fetched): one for a
 * `btmsim run` (policies compared on one scenario), one for a sweep (metrics against the swept
 * parameter). Every chart is followed by the table of the numbers it draws; the scenario text and
 * seed are embedded so that any figure can be reproduced. Every string that comes from the user
 * (scenario name, description and text, axis keys and values, error messages) is escaped.
 *
 * Pure: the output is a function of the input (no dates, no timings, no host names), so a
 * report's bytes are as reproducible as the results.
 */
import type { RunMetrics, RunOutput } from '../sim/run.js';
import type { Timeline } from '../sim/timeline.js';
import { pointParams, shortKey, type AxisValue } from '../sweep/grid.js';
import { defAxes, type Shard, type SweepDefinition, type SweepRow } from '../sweep/results.js';
import { tableRowsFor } from './table.js';
import { barPanels, esc, fmtNum, groupedBars, lineChart, policyColor, type LinePanel } from './svg.js';

// ---------------------------------------------------------------------------------------------
// Page pieces

const CSS = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 0; background: #fff; }
main { max-width: 960px; margin: 0 auto; padding: 24px 20px 64px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 36px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 24px 0 6px; }
p.lead { color: #555; margin: 0 0 12px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0 16px; }
dl.facts dt { color: #666; } dl.facts dd { margin: 0; }
figure { margin: 18px 0 26px; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: #555; font-size: 13px; margin-top: 4px; }
table { border-collapse: collapse; font-size: 12.5px; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 9px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
th { background: #f6f6f6; font-weight: 600; }
td.n, th.n { text-align: right; }
tr.ind td:first-child { padding-left: 22px; color: #444; }
td.err { color: #a00; white-space: pre-wrap; }
details { margin: 4px 0 8px; } summary { cursor: pointer; color: #0645ad; font-size: 13px; }
pre { background: #f7f7f7; border: 1px solid #e2e2e2; padding: 10px 12px; overflow-x: auto; font-size: 12.5px; line-height: 1.35; }
code { font-size: 12.5px; background: #f3f3f3; padding: 0 3px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 5px; vertical-align: baseline; }
.answer { background: #f4f8fc; border-left: 4px solid #0072B2; padding: 8px 14px; margin: 12px 0; }
.table-wrap { overflow-x: auto; }
`;

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

type Cell = string | number | null | undefined | { html: string; cls?: string };

/** An HTML table; numbers are right-aligned and formatted, strings escaped. */
export function htmlTable(head: readonly Cell[], rows: readonly (readonly Cell[])[], opts: { rowClass?: (i: number) => string } = {}): string {
  const cell = (v: Cell, tag: 'td' | 'th'): string => {
    if (v !== null && typeof v === 'object') return `<${tag}${v.cls ? ` class="${v.cls}"` : ''}>${v.html}</${tag}>`;
    if (typeof v === 'number') return `<${tag} class="n">${esc(fmtNum(v))}</${tag}>`;
    if (v === null || v === undefined) return `<${tag} class="n">–</${tag}>`;
    return `<${tag}${/^[-−]?[\d.,/]+$/.test(v) ? ' class="n"' : ''}>${esc(v)}</${tag}>`;
  };
  const h = `<tr>${head.map((x) => cell(x, 'th')).join('')}</tr>`;
  const b = rows.map((r, i) => {
    const cls = opts.rowClass?.(i);
    return `<tr${cls ? ` class="${cls}"` : ''}>${r.map((x) => cell(x, 'td')).join('')}</tr>`;
  }).join('\n');
  return `<div class="table-wrap"><table>\n<thead>${h}</thead>\n<tbody>\n${b}\n</tbody></table></div>`;
}

function figure(svg: string, caption: string, table: string, tableRows: number): string {
  const t = tableRows > 25
    ? `<details><summary>numbers behind this chart (${tableRows} rows)</summary>\n${table}\n</details>`
    : table;
  return `<figure>\n${svg}\n<figcaption>${caption}</figcaption>\n</figure>\n${t}\n`;
}

const policyHead = (p: string): Cell => ({ html: `<span class="swatch" style="background:${policyColor(p)}"></span>${esc(p)}`, cls: 'n' });

/** JSON safe inside a <script type="application/json"> element. */
function scriptJson(x: unknown): string {
  return JSON.stringify(x, null, 1).replace(/[<>&\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const ms = (ns: number): number => Math.round(ns / 1e3) / 1e3;

function durationText(simulatedNs: number | undefined): string {
  return simulatedNs === undefined ? '' : `${(simulatedNs / 1e6).toFixed(1)} ms simulated`;
}

// ---------------------------------------------------------------------------------------------
// Time series (shared by both reports)

interface TimelineFigureInput {
  /** Panel per entry: its title and one timeline per policy (null = no data). */
  panels: { title: string; policies: string[]; timelines: (Timeline | null)[] }[];
  idPrefix: string;
}

const TL_CHARTS: { key: 'kvmVmids' | 'smmuVmids' | 'kvmRollovers' | 'devicesUnattached' | 'collateral' | 'collateralRefills'; title: string; y: string; caption: string; cap?: 'kvmVmidCapacity' | 'smmuVmidCapacity' }[] = [
  { key: 'smmuVmids', title: 'SMMU stage-2 VMIDs in use', y: 'VMIDs in use', cap: 'smmuVmidCapacity', caption: 'VMIDs held by SMMU stage-2 domains (the fullest SMMU; for btm-kvm-pinned, pinned KVM VMIDs). The dashed line is the capacity: the IDA range, or the pin cap 2^bits − CPUs − 2.' },
  { key: 'kvmVmids', title: 'KVM VMIDs in use (current generation)', y: 'VMIDs in use', cap: 'kvmVmidCapacity', caption: 'VMIDs KVM has handed out since its last rollover; at the dashed capacity the next new VMID rolls the generation over (TLBI ALLE1IS).' },
  { key: 'kvmRollovers', title: 'KVM VMID rollovers (cumulative)', y: 'rollovers', caption: 'Each rollover broadcasts TLBI ALLE1IS, which empties every NS-EL1 SMMU TLB entry when BTM is on.' },
  { key: 'devicesUnattached', title: 'Devices left unattached (cumulative)', y: 'devices', caption: 'Device attachments that failed for want of a VMID (IDA exhausted or pin refused).' },
  { key: 'collateral', title: 'Collateral invalidations (cumulative)', y: 'TLB entries', caption: 'SMMU and CPU TLB entries removed by invalidations that did not intend their context.' },
  { key: 'collateralRefills', title: 'Collateral refills (cumulative)', y: 'refills', caption: 'Walks that refilled an entry removed collaterally: the performance price.' },
];

function timelineFigures(inp: TimelineFigureInput): string {
  const out: string[] = [];
  for (const ch of TL_CHARTS) {
    const panels: LinePanel[] = inp.panels.map((p) => ({
      title: p.title,
      series: p.policies.flatMap((pol, i) => {
        const tl = p.timelines[i];
        if (!tl) return [];
        return [{ label: pol, color: policyColor(pol), points: tl.tNs.map((t, k) => [t / 1e6, tl[ch.key][k]] as const) }];
      }),
    }));
    // Capacity lines: one per distinct capacity in a panel, when it is on the scale of the data.
    let dataMax = 0;
    for (const p of inp.panels) for (const t of p.timelines) if (t) for (const v of t[ch.key]) dataMax = Math.max(dataMax, v);
    const capsOf = (p: TimelineFigureInput['panels'][number]): Map<number, string[]> => {
      const by = new Map<number, string[]>();
      p.policies.forEach((pol, i) => {
        const t = p.timelines[i];
        if (t) { const v = t[ch.cap!]; by.set(v, [...(by.get(v) ?? []), pol]); }
      });
      return by;
    };
    const refLines = ch.cap === undefined ? undefined : inp.panels.map((p) => {
      const by = capsOf(p);
      return [...by.entries()].filter(([v]) => dataMax > 0 && v <= 2 * dataMax)
        .map(([v, pols]) => ({ y: v, label: by.size === 1 ? `capacity ${v}` : `${v}: ${pols.join(', ')}` }));
    });
    const svg = lineChart({
      id: `${inp.idPrefix}-${ch.key}`, title: ch.title, xLabel: 'simulated time (ms)', yLabel: ch.y, panels, step: true, markers: false,
      ...(refLines ? { refLines } : {}),
    });
    // Table: one row per sample (per panel), one column per policy.
    const head: Cell[] = [...(inp.panels.length > 1 ? ['panel'] : []), 'time (ms)'];
    const allPolicies = [...new Set(inp.panels.flatMap((p) => p.policies))];
    head.push(...allPolicies.map(policyHead));
    const rows: Cell[][] = [];
    for (const p of inp.panels) {
      const ref = p.timelines.find((t) => t !== null);
      if (!ref) continue;
      ref.tNs.forEach((t, k) => {
        const r: Cell[] = [...(inp.panels.length > 1 ? [p.title] : []), Math.round(t / 1e3) / 1e3];
        for (const pol of allPolicies) {
          const i = p.policies.indexOf(pol);
          const tl = i >= 0 ? p.timelines[i] : null;
          r.push(tl ? tl[ch.key][k] ?? null : null);
        }
        rows.push(r);
      });
    }
    let caption = esc(ch.caption);
    if (dataMax === 0) caption = 'All zero. ' + caption;
    if (ch.cap !== undefined) {
      const text = inp.panels.map((p) => {
        const by = capsOf(p);
        const list = by.size === 1 ? String([...by.keys()][0]) : [...by.entries()].map(([v, pols]) => `${pols.join(', ')} ${v}`).join('; ');
        return (p.title ? `${p.title}: ` : '') + list;
      });
      caption += ' Capacity: ' + esc(text.join(' | ')) + '.';
    }
    out.push(figure(svg, caption, htmlTable(head, rows), rows.length));
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Run report

export interface RunReportInput {
  output: RunOutput;
  /** One per policy of output.results (same order), or omitted: no time-series charts. */
  timelines?: Timeline[];
  /** The scenario as given (YAML or JSON text) and where it came from. */
  scenarioText: string;
  scenarioSource: string;
  description?: string;
  /** The seed given with --seed, if it overrode the file's. */
  seedOverride?: number;
}

const RUN_BARS: { title: string; get: (m: RunMetrics) => number; format?: (v: number) => string }[] = [
  { title: 'Collateral invalidations', get: (m) => m.collateral.total },
  { title: 'Collateral refills', get: (m) => m.collateralRefills },
  { title: 'Refill walk accesses', get: (m) => m.collateralRefillWalkAccesses },
  { title: 'SMMU commands', get: (m) => m.commands.total },
  { title: 'CMD_SYNCs', get: (m) => m.commands.syncs },
  { title: 'DVM TLBIs received by SMMUs', get: (m) => m.dvm.receivedPerSmmu.reduce((a, b) => a + b, 0) },
  { title: 'DMA translation time (ms)', get: (m) => ms(m.translation.dmaTimeNs), format: (v) => v.toFixed(3) },
  { title: 'Driver invalidation time (ms)', get: (m) => ms(m.translation.driverInvalidationTimeNs), format: (v) => v.toFixed(3) },
  { title: 'KVM VMID rollovers', get: (m) => m.vmid.kvmRollovers },
  { title: 'Devices left unattached', get: (m) => m.vmid.devicesUnattached },
];

export function runReportHtml(inp: RunReportInput): string {
  const out = inp.output;
  const policies = out.results.map((r) => r.policy);
  const parts: string[] = [];
  parts.push(`<h1>btmsim run: ${esc(out.scenario)}</h1>`);
  if (inp.description) parts.push(`<p class="lead">${esc(inp.description)}</p>`);
  parts.push(`<dl class="facts">
<dt>scenario</dt><dd>${esc(out.scenario)} (${esc(inp.scenarioSource)})</dd>
<dt>seed</dt><dd>${out.seed}${inp.seedOverride !== undefined ? ' (from --seed)' : ''}</dd>
<dt>duration</dt><dd>${esc(durationText(out.results[0]?.metrics.simulatedNs))}</dd>
<dt>policies</dt><dd>${policies.map((p) => `<span class="swatch" style="background:${policyColor(p)}"></span>${esc(p)}`).join(', ')}</dd>
<dt>results format</dt><dd>version ${out.version}</dd>
</dl>`);

  parts.push('<h2>Policy comparison</h2>');
  const svg = barPanels({
    id: 'policy-comparison',
    title: 'Policies on the same workload and seed',
    subtitle: 'Each panel has its own scale. Collateral invalidations and refills are the cost of broadcasts hitting SMMU entries whose tables did not change; commands and CMD_SYNCs are what BTM saves.',
    panels: RUN_BARS.map((b) => ({
      title: b.title,
      ...(b.format ? { format: b.format } : {}),
      bars: out.results.map((r) => ({ label: r.policy, color: policyColor(r.policy), value: b.get(r.metrics) })),
    })),
  });
  const shownRows = tableRowsFor(out);
  const tableRows: Cell[][] = shownRows.map((row) => [row.label, ...out.results.map((r) => {
    const v = row.get(r.metrics);
    return typeof v === 'number' ? v : v === null ? null : v;
  })]);
  parts.push(figure(svg, 'The numbers below are those of <code>btmsim run</code>\'s table (README, "Metrics").',
    htmlTable(['metric', ...policies.map(policyHead)], tableRows, { rowClass: (i) => (shownRows[i].indent ? 'ind' : '') }), 0));

  if (inp.timelines && inp.timelines.length === out.results.length) {
    parts.push('<h2>VMID pressure and rollovers over time</h2>');
    parts.push(timelineFigures({ idPrefix: 'time', panels: [{ title: '', policies, timelines: inp.timelines }] }));
  }

  parts.push('<h2>Scenario</h2>');
  parts.push(`<p>Seed <b>${out.seed}</b>. Reproduce every figure: save the text below as <code>scenario.yaml</code> and run<br><code>${esc(`btmsim run scenario.yaml --seed ${out.seed} --policy ${policies.join(',')} --html report.html`)}</code></p>`);
  parts.push(`<pre id="scenario">${esc(inp.scenarioText)}</pre>`);
  return page(`btmsim run: ${out.scenario}`, parts.join('\n'));
}

// ---------------------------------------------------------------------------------------------
// Sweep report

const SWEEP_METRICS: { id: string; title: string; y: string; caption: string; get: (m: RunMetrics) => number }[] = [
  { id: 'collateral', title: 'Collateral invalidations', y: 'TLB entries', get: (m) => m.collateral.total,
    caption: 'Entries removed by invalidations that did not intend their context (the thread\'s over-invalidation).' },
  { id: 'refills', title: 'Collateral refills', y: 'refills', get: (m) => m.collateralRefills,
    caption: 'Later walks that refilled a collaterally removed entry: the performance price.' },
  { id: 'unattached', title: 'Devices left unattached', y: 'devices', get: (m) => m.vmid.devicesUnattached,
    caption: 'Device attachments that failed because the SMMU\'s VMID space (or the pin cap) ran out.' },
  { id: 'rollovers', title: 'KVM VMID rollovers', y: 'rollovers', get: (m) => m.vmid.kvmRollovers,
    caption: 'Generation rollovers of KVM\'s VMID allocator, each a TLBI ALLE1IS.' },
  { id: 'dma-time', title: 'DMA translation time (ms)', y: 'ms', get: (m) => ms(m.translation.dmaTimeNs),
    caption: '(hits + misses) × tlbHitNs + walk accesses × walkAccessNs.' },
  { id: 'driver-time', title: 'Driver invalidation time (ms)', y: 'ms', get: (m) => ms(m.translation.driverInvalidationTimeNs),
    caption: 'commands × commandNs + CMD_SYNCs × cmdSyncNs.' },
];

export interface SweepReportInput {
  def: SweepDefinition;
  /** Rows of this report (every job, or one shard's), sorted by job. */
  rows: readonly SweepRow[];
  shard?: Shard | null;
}

const fmtValue = (v: AxisValue): string => (typeof v === 'number' ? String(v) : String(v));

function isGeometric(xs: readonly number[]): boolean {
  if (xs.length < 3 || xs.some((x) => !(x > 0))) return false;
  const s = [...xs].sort((a, b) => a - b);
  if (s[s.length - 1] / s[0] < 16) return false;
  for (let i = 1; i < s.length; i++) if (s[i] / s[i - 1] < 1.5) return false;
  return true;
}

export function sweepReportHtml(inp: SweepReportInput): string {
  const { def, rows } = inp;
  const axes = defAxes(def);
  const policies = def.policies;
  const P = policies.length;
  const byJob = new Map(rows.map((r) => [r.job, r]));
  const metricsOf = (point: number, pi: number): RunMetrics | null => byJob.get(point * P + pi)?.metrics ?? null;
  const failed = rows.filter((r) => r.status !== 'ok');

  // The x axis: the numeric axis with the most values (the last one on ties); facets: the others.
  let xi = -1;
  axes.forEach((a, i) => {
    if (a.values.length > 1 && a.values.every((v) => typeof v === 'number') && (xi < 0 || a.values.length >= axes[xi].values.length)) xi = i;
  });
  const facetAxes = axes.map((_, i) => i).filter((i) => i !== xi && axes[i].values.length > 1);
  const constAxes = axes.filter((a, i) => i !== xi && a.values.length === 1);
  // Facet combinations in grid order.
  const facets: { label: string; idx: number[] }[] = [];
  const facetCount = facetAxes.reduce((n, i) => n * axes[i].values.length, 1);
  for (let f = 0; f < facetCount; f++) {
    const idx: number[] = [];
    let r = f;
    for (let k = facetAxes.length - 1; k >= 0; k--) { const n = axes[facetAxes[k]].values.length; idx[k] = r % n; r = Math.floor(r / n); }
    facets.push({ idx, label: facetAxes.map((ai, k) => `${shortKey(axes[ai].key)} = ${fmtValue(axes[ai].values[idx[k]])}`).join(', ') });
  }
  /** Grid point of facet f at x-value index xv. */
  const pointAt = (f: number, xv: number): number => {
    let p = 0;
    for (let i = 0; i < axes.length; i++) {
      const n = axes[i].values.length;
      const k = facetAxes.indexOf(i);
      const v = i === xi ? xv : k >= 0 ? facets[f].idx[k] : 0;
      p = p * n + v;
    }
    return p;
  };

  const parts: string[] = [];
  parts.push(`<h1>btmsim sweep: ${esc(def.scenarioName)}</h1>`);
  const gridText = axes.map((a) => `${a.key} ∈ {${a.values.map(fmtValue).join(', ')}}`).concat([`policy ∈ {${policies.join(', ')}}`]).join(' × ');
  parts.push(`<p class="lead">${esc(gridText)}: ${def.points} grid point${def.points === 1 ? '' : 's'} × ${P} polic${P === 1 ? 'y' : 'ies'} = ${def.jobs} runs.</p>`);
  parts.push(`<dl class="facts">
<dt>scenario</dt><dd>${esc(def.scenarioName)}</dd>
<dt>seed</dt><dd>${def.seed}${axes.some((a) => a.key.split('+').includes('seed')) ? ' (varied: see the seed axis)' : ''}</dd>
<dt>runs in this report</dt><dd>${rows.length} of ${def.jobs}${inp.shard ? ` (shard ${inp.shard.index}/${inp.shard.count})` : ''}; ${failed.length} failed</dd>
<dt>results format</dt><dd>version ${def.version}</dd>
</dl>`);

  const xAxis = xi >= 0 ? axes[xi] : null;
  const xs = xAxis ? (xAxis.values as number[]) : [];
  const xLabel = xAxis ? xAxis.key : '';
  const log = isGeometric(xs);

  // ---- the answer at a glance
  if (xAxis) {
    parts.push('<h2>At a glance</h2>');
    const exhaust = (m: RunMetrics): boolean => m.vmid.devicesUnattached > 0 || m.vmid.smmuAllocFailures > 0 || m.vmid.pinFailures > 0;
    const head: Cell[] = ['policy', ...facets.map((f) => f.label || 'all')];
    const tRows: Cell[][] = policies.map((pol, pi) => {
      const r: Cell[] = [pol];
      facets.forEach((_, f) => {
        let ok: number | null = null, known = true, failedAt: number | null = null;
        for (let xv = 0; xv < xs.length; xv++) {
          const m = metricsOf(pointAt(f, xv), pi);
          if (m === null) { known = false; break; }
          if (exhaust(m)) { failedAt = xs[xv]; break; }
          ok = xs[xv];
        }
        r.push(!known && failedAt === null ? '(incomplete)' : failedAt === null ? `all (≤ ${xs[xs.length - 1]})` : ok === null ? `none (fails at ${failedAt})` : `≤ ${ok} (fails at ${failedAt})`);
      });
      return r;
    });
    parts.push(`<div class="answer"><b>Largest ${esc(xLabel)} with every device attached</b> (no SMMU VMID allocation or pin failure), per policy${facets.length > 1 ? ' and ' + esc(facetAxes.map((i) => axes[i].key).join(', ')) : ''}:</div>`);
    parts.push(htmlTable(head, tRows));
  }

  // ---- metrics against the swept parameter
  if (xAxis) {
    parts.push(`<h2>Against ${esc(xLabel)}</h2>`);
    if (constAxes.length > 0) parts.push(`<p>Fixed: ${esc(constAxes.map((a) => `${a.key} = ${fmtValue(a.values[0])}`).join(', '))}.</p>`);
    for (const sm of SWEEP_METRICS) {
      const panels: LinePanel[] = facets.map((f, fi) => ({
        title: f.label,
        series: policies.map((pol, pi) => ({
          label: pol, color: policyColor(pol),
          points: xs.map((x, xv) => { const m = metricsOf(pointAt(fi, xv), pi); return [x, m ? sm.get(m) : null] as const; }),
        })),
      }));
      const svg = lineChart({
        id: `vs-${sm.id}`, title: `${sm.title} against ${xLabel}`, xLabel, yLabel: sm.y, panels,
        xScale: log ? 'log2' : 'linear', xAtData: xs.length <= 16,
      });
      const head: Cell[] = [...(facets.length > 1 ? [facetAxes.map((i) => axes[i].key).join(', ')] : []), xLabel, ...policies.map(policyHead)];
      const tRows: Cell[][] = [];
      facets.forEach((f, fi) => xs.forEach((x, xv) => {
        tRows.push([...(facets.length > 1 ? [f.label] : []), x, ...policies.map((_, pi) => { const m = metricsOf(pointAt(fi, xv), pi); return m ? sm.get(m) : null; })]);
      }));
      const allZero = tRows.every((r) => r.slice(-P).every((v) => v === null || v === 0));
      parts.push(figure(svg, (allZero ? 'All zero in this sweep. ' : '') + esc(sm.caption), htmlTable(head, tRows), tRows.length));
    }
  }

  // ---- policy comparison bars, per grid point
  parts.push('<h2>Policy comparison at each grid point</h2>');
  const pointLabels: string[] = [];
  for (let p = 0; p < def.points; p++) {
    const params = pointParams(axes, p);
    const lab = axes.filter((a) => a.values.length > 1).map((a) => `${shortKey(a.key)}=${fmtValue(params[a.key])}`).join(' ');
    pointLabels.push(lab === '' ? def.scenarioName : lab);
  }
  for (const sm of [SWEEP_METRICS[0], SWEEP_METRICS[4]]) {
    const values = pointLabels.map((_, p) => policies.map((_, pi) => { const m = metricsOf(p, pi); return m ? sm.get(m) : null; }));
    const svg = groupedBars({
      id: `bars-${sm.id}`, title: `${sm.title} by policy`, groups: pointLabels,
      series: policies.map((p) => ({ label: p, color: policyColor(p) })), values, yLabel: sm.y,
    });
    const tRows: Cell[][] = pointLabels.map((lab, p) => [lab, ...values[p]]);
    parts.push(figure(svg, esc(sm.caption), htmlTable(['grid point', ...policies.map(policyHead)], tRows), tRows.length));
  }

  // ---- over time, at the largest swept value of each facet
  if (def.samples > 0) {
    const xv = xAxis ? xs.length - 1 : 0;
    const panels = (xAxis ? facets : [{ label: '', idx: [] as number[] }]).map((f, fi) => {
      const p = xAxis ? pointAt(fi, xv) : 0;
      return {
        title: xAxis ? `${f.label ? f.label + ', ' : ''}${shortKey(xAxis.key)} = ${xs[xv]}` : pointLabels[0],
        policies: [...policies],
        timelines: policies.map((_, pi) => byJob.get(p * P + pi)?.timeline ?? null),
      };
    });
    if (panels.some((p) => p.timelines.some((t) => t !== null))) {
      parts.push('<h2>VMID pressure and rollovers over time</h2>');
      parts.push(`<p>${xAxis ? `At the largest ${esc(xLabel)} of each panel.` : 'At the first grid point.'} Every run's series are in <code>results.json</code> (<code>rows[].timeline</code>).</p>`);
      parts.push(timelineFigures({ idPrefix: 'time', panels }));
    }
  }

  // ---- failures
  if (failed.length > 0) {
    parts.push('<h2>Failed runs</h2>');
    parts.push(htmlTable(['job', ...axes.map((a) => a.key), 'policy', 'error'],
      failed.map((r) => [r.job, ...axes.map((a) => fmtValue(r.params[a.key])), r.policy, { html: esc(r.error ?? ''), cls: 'err' }])));
  }

  // ---- reproduce
  parts.push('<h2>Scenario and reproduction</h2>');
  const varies = def.axes.map((a) => `--vary '${a.flag}'`).join(' ');
  parts.push(`<p>Base seed <b>${def.seed}</b>. Save the scenario below as <code>scenario.yaml</code>; the whole sweep is<br><code>${esc(`btmsim sweep scenario.yaml --seed ${def.seed} ${varies} --policy ${policies.join(',')} --samples ${def.samples} --out DIR`)}</code><br>
and one grid point is the same command with one value per <code>--vary</code> (and one <code>--policy</code>).</p>`);
  parts.push(`<pre id="scenario">${esc(def.scenarioText)}</pre>`);
  parts.push(`<script type="application/json" id="sweep-definition">${scriptJson(def)}</script>`);
  return page(`btmsim sweep: ${def.scenarioName}`, parts.join('\n'));
}
