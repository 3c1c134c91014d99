import { describe, expect, it } from 'vitest';
import { runReportHtml, sweepReportHtml } from '../../src/report/html.js';
import { esc, lineChart, niceTicks } from '../../src/report/svg.js';
import { runScenarioWithTimelines } from '../../src/sim/run.js';
import { parseVary } from '../../src/sweep/grid.js';
import { definitionOf, latestRecords, rowsOf, type JobRecord } from '../../src/sweep/results.js';
import { runPolicyWithTimeline } from '../../src/sim/run.js';
import { loadScenarioText } from '../../src/workload/load.js';
import type { PolicyName, Scenario } from '../../src/workload/schema.js';

const EVIL = '<script>alert(1)</script>';
const TEXT = `name: "${EVIL}"
description: "desc & <b>bold</b> 'quoted'"
duration: { ms: 0.5 }
compare: [ptm, btm-2020]
workload: { vms: 2, devicesPerVm: 1, sva: { processes: 0, hostProcesses: 2 } }
# a comment with </pre> and <img src=x onerror=alert(2)>
`;

function scenario(text: string): Scenario {
  const r = loadScenarioText(text, 't.yaml');
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.scenario;
}

/** No user string reaches the page unescaped; the page fetches nothing. */
function expectSafe(html: string): void {
  expect(html).not.toContain(EVIL);
  expect(html).not.toContain('<img');
  expect(html).not.toContain('<b>bold</b>');
  expect(html).not.toMatch(/<script(?![^>]*type="application\/json")/);
  expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?(https?:|\/\/)/i);
  expect(html).not.toMatch(/@import|url\(/);
  expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
}

describe('HTML reports', () => {
  const sc = scenario(TEXT);

  it('run report: SVG charts, a table under each, the scenario and seed embedded, everything escaped', () => {
    const { output, timelines } = runScenarioWithTimelines(sc, ['ptm', 'btm-2020'], { samples: 10 });
    const html = runReportHtml({ output, timelines, scenarioText: TEXT, scenarioSource: 'evil<file>.yaml', description: sc.description });
    expectSafe(html);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('evil&lt;file&gt;.yaml');
    expect(html).toContain('desc &amp; &lt;b&gt;bold&lt;/b&gt; &#39;quoted&#39;');
    const svgs = html.match(/<svg /g) ?? [];
    expect(svgs.length).toBeGreaterThanOrEqual(7); // policy bars + 6 time series
    expect((html.match(/<figure>/g) ?? []).length).toBe((html.match(/<table>/g) ?? []).length);
    expect(html).toContain('id="policy-comparison"');
    expect(html).toContain('id="time-smmuVmids"');
    expect(html).toContain('id="time-kvmRollovers"');
    expect(html).toContain('# a comment with &lt;/pre&gt; and &lt;img src=x onerror=alert(2)&gt;');
    expect(html).toContain(`--seed ${sc.seed}`);
    // Deterministic.
    expect(runReportHtml({ output, timelines, scenarioText: TEXT, scenarioSource: 'evil<file>.yaml', description: sc.description })).toBe(html);
  });

  it('sweep report: charts against the swept parameter, bars per point, over time, the scenario; escaped', () => {
    const axes = [parseVary('cpu.vmidBits+smmu.vmidBits=8,16'), parseVary('workload.devicesPerVm=1..4:x2'), parseVary(`description=${EVIL}`)];
    const policies: PolicyName[] = ['ptm', 'btm-2020'];
    const def = definitionOf({ scenarioName: sc.name, scenarioText: TEXT, seed: sc.seed, axes, policies, samples: 5 });
    const recs: JobRecord[] = [];
    for (let job = 0; job < def.jobs; job++) {
      const policy = policies[job % 2];
      if (job === 3) { recs.push({ job, policy, seed: 1, status: 'error', error: `failed with ${EVIL}` }); continue; }
      const r = runPolicyWithTimeline(sc, policy, { samples: 5 });
      recs.push({ job, policy, seed: 1, status: 'ok', metrics: r.result.metrics, timeline: r.timeline });
    }
    const rows = rowsOf(def, latestRecords(recs));
    const html = sweepReportHtml({ def, rows });
    expectSafe(html);
    expect(html).toContain('At a glance');
    expect(html).toContain('id="vs-collateral"');
    expect(html).toContain('id="vs-unattached"');
    expect(html).toContain('id="bars-collateral"');
    expect(html).toContain('id="time-smmuVmids"');
    expect(html).toContain('Failed runs');
    expect(html).toContain('failed with &lt;script&gt;');
    expect(html).toContain('vmidBits = 8');
    expect(html).toContain('vmidBits = 16');
    expect(html).toContain('<pre id="scenario">');
    // The machine-readable definition cannot close its script element.
    const json = /<script type="application\/json" id="sweep-definition">([\s\S]*?)<\/script>/.exec(html)![1];
    expect(JSON.parse(json).scenarioText).toBe(TEXT);
    expect(JSON.parse(json).seed).toBe(sc.seed);
    expect((html.match(/<svg /g) ?? []).length).toBeGreaterThanOrEqual(6 + 2 + 6);
    expect(sweepReportHtml({ def, rows })).toBe(html);
  });

  it('chart helpers: escape, nice ticks, a line chart', () => {
    expect(esc(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    expect(niceTicks(0, 87)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    const svg = lineChart({ title: EVIL, xLabel: 'x', yLabel: 'y', panels: [{ title: EVIL, series: [{ label: EVIL, color: '#000', points: [[1, 1], [2, null], [4, 3]] }] }], xScale: 'log2' });
    expect(svg).not.toContain(EVIL);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('<path d="M');
  });
});
