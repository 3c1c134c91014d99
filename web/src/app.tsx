/**
 * The explorer page: scenario picker and controls on the left, the YAML they edit under them,
 * the run status, charts and comparison table on the right. Every change restarts the run in
 * the worker (cancelling the one going); the state is mirrored into the URL fragment.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { RunOutput } from '../../src/sim/run.js';
import { tableRowsFor } from '../../src/report/table.js';
import { runCharts, fmtMs } from './charts.js';
import { Editor, type Issue } from './editor.js';
import { cellText, runJson } from './export.js';
import {
  applyKnob, effectiveEdits, KNOB_DEFAULTS, readKnobs, SCALES, withValue,
  type Knob, type KnobEdits, type KnobValues, type KnobView,
} from './knobs.js';
import { POLICIES, POLICY_HELP, type Policy } from './policies.js';
import type { FromWorker, RunInfo } from './protocol.js';
import { SimRunner } from './runner.js';
import { DEFAULT_SCENARIO, SHIPPED, shipped } from './scenarios.js';
import { encodeState, type UrlState } from './url-state.js';

type Status =
  | { kind: 'idle' }
  | { kind: 'running'; info: RunInfo | null; index: number; fraction: number; startedAt: number }
  | { kind: 'done'; elapsedMs: number }
  | { kind: 'invalid'; count: number }
  | { kind: 'cancelled' }
  | { kind: 'error'; message: string };

interface Result { output: RunOutput; info: RunInfo; yaml: string; source: string; elapsedMs: number }

const DEBOUNCE_MS = 300;

export function App(props: { initial: UrlState; notices: string[] }) {
  const init = props.initial;
  const [scenarioId, setScenarioId] = useState(init.scenario);
  const [custom, setCustom] = useState<string | null>(init.yaml);
  const [edits, setEdits] = useState<KnobEdits>(init.edits);
  const [text, setText] = useState(() => initialText(init));
  const [status, setStatus] = useState<Status>({ kind: 'idle' });
  const [issues, setIssues] = useState<Issue[]>([]);
  const [result, setResult] = useState<Result | null>(null);
  const [runs, setRuns] = useState(0);
  const [notice, setNotice] = useState(props.notices.join(' '));
  const [flash, setFlash] = useState('');

  const base = shipped(scenarioId) ?? shipped(DEFAULT_SCENARIO)!;
  const baseText = custom ?? base.text;
  const file = base.file;
  const view = useMemo(() => readKnobs(text), [text]);
  const baseView = useMemo(() => readKnobs(baseText), [baseText]);

  // ---- the worker
  const pending = useRef<{ info: RunInfo | null; yaml: string; source: string }>({ info: null, yaml: '', source: '' });
  const runner = useMemo(() => new SimRunner((m: FromWorker) => onWorker(m)), []);
  function onWorker(m: FromWorker): void {
    switch (m.type) {
      case 'invalid':
        setIssues(m.issues);
        setStatus({ kind: 'invalid', count: m.issues.length });
        break;
      case 'start':
        setIssues([]);
        pending.current.info = m.info;
        setStatus((s) => ({ kind: 'running', info: m.info, index: 0, fraction: 0, startedAt: s.kind === 'running' ? s.startedAt : performance.now() }));
        break;
      case 'progress':
        setStatus((s) => (s.kind === 'running' ? { ...s, index: m.index, fraction: m.fraction } : s));
        break;
      case 'policy':
        setStatus((s) => (s.kind === 'running' ? { ...s, index: m.index + 1, fraction: 0 } : s));
        break;
      case 'done':
        setResult({ output: m.output, info: pending.current.info!, yaml: pending.current.yaml, source: pending.current.source, elapsedMs: m.elapsedMs });
        setStatus({ kind: 'done', elapsedMs: m.elapsedMs });
        setRuns((n) => n + 1);
        break;
      case 'error':
        setStatus({ kind: 'error', message: m.message });
        break;
    }
  }
  const start = (yaml: string) => {
    pending.current = { info: null, yaml, source: yaml === base.text ? `${file}, in the btmsim explorer` : `${file} edited in the btmsim explorer` };
    setStatus({ kind: 'running', info: null, index: 0, fraction: 0, startedAt: performance.now() });
    runner.run(yaml, file);
  };
  const cancel = () => {
    if (runner.cancel()) setStatus({ kind: 'cancelled' });
  };

  // run on load at once, then after each change (debounced: sliders fire on every step)
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      start(text);
      return;
    }
    const t = setTimeout(() => start(text), DEBOUNCE_MS);
    return () => clearTimeout(t);
  }, [text]);

  useEffect(() => () => runner.dispose(), []);

  // Escape cancels a run from anywhere on the page
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && runner.running) { e.preventDefault(); cancel(); }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);

  // ---- the URL
  useEffect(() => {
    let live = true;
    void encodeState({ scenario: scenarioId, yaml: custom, edits }).then((h) => {
      if (live && location.hash.slice(1) !== h) history.replaceState(null, '', `#${h}`);
    });
    return () => { live = false; };
  }, [scenarioId, custom, edits]);

  // ---- changes
  const pick = (id: string) => {
    const s = shipped(id);
    if (!s) return;
    setScenarioId(id);
    setCustom(null);
    setEdits({});
    setText(s.text);
    setNotice('');
  };
  const onText = (t: string) => {
    setText(t);
    setCustom(t === base.text ? null : t);
    setEdits({});
  };
  function setKnob<K extends Knob>(k: K, v: KnobValues[K]): void {
    const t = applyKnob(text, k, v);
    if (t === null) return;
    setText(t);
    setEdits(effectiveEdits(baseView, { ...edits, [k]: v }));
  }

  const copyLink = async () => {
    const h = await encodeState({ scenario: scenarioId, yaml: custom, edits });
    const url = `${location.origin}${location.pathname}${location.search}#${h}`;
    try {
      await navigator.clipboard.writeText(url);
      setFlash('Link copied to the clipboard.');
    } catch {
      setFlash('The link is in the address bar: copy it from there.');
    }
  };

  const exportHtml = async (r: Result) => {
    try {
      // the report renderer of `btmsim run --html`, fetched on first use
      const { runReportHtml } = await import('../../src/report/html.js');
      const html = runReportHtml({ output: r.output, scenarioText: r.yaml, scenarioSource: r.source, description: r.info.description });
      download(`${r.output.scenario}-seed${r.output.seed}.html`, 'text/html', html);
      setFlash('');
    } catch (e) {
      setFlash(`Could not build the HTML report: ${e instanceof Error ? e.message : String(e)}`);
    }
  };

  const running = status.kind === 'running';
  const stale = result !== null && status.kind !== 'done';
  const charts = useMemo(() => (result ? runCharts(result.output) : []), [result]);
  const controlsDisabled = view === null;

  return (
    <div class="page" data-status={status.kind} data-runs={runs}>
      <header class="top">
        <h1>btmsim explorer</h1>
        <p class="lede">
          What does Arm SMMUv3 <strong>broadcast TLB maintenance</strong> (BTM) cost when KVM and the SMMU share VMIDs?
          Each run simulates one workload (VMs with assigned devices doing DMA, KVM changing stage-2 page tables)
          under several <strong>VMID policies</strong> and compares them. With BTM on, KVM's TLB invalidations by VMID
          also wipe SMMU TLB entries of devices that happen to carry the same VMID: <strong>collateral
          invalidations</strong>, paid for later with extra page-table walks. Pick a scenario, move a control, and
          the charts and table update. Everything runs in your browser.
        </p>
        <details class="help">
          <summary>How to read the results</summary>
          <ul>
            <li><strong>collateral invalidations</strong>: TLB entries removed by an invalidation that was not meant for them (the over-invalidation BTM causes). Lower is better.</li>
            <li><strong>collateral refills / refill walk accesses</strong>: later SMMU page-table walks that re-fetch those entries, and their memory reads: the performance price.</li>
            <li><strong>SMMU commands / CMD_SYNC</strong>: invalidation commands the SMMU driver had to send. This is what BTM saves (policy <code>ptm</code> sends the most).</li>
            <li><strong>DVM TLBIs received</strong>: CPU broadcast invalidations the SMMU acted on.</li>
            <li><strong>KVM VMID rollovers, SMMU VMID alloc failures, pinned VMIDs, devices left unattached</strong>: VMID pressure; a device left unattached has no DMA at all.</li>
            <li><strong>DMA translation time, driver invalidation time</strong>: the counts priced with the cost model (<code>cost:</code> in the YAML).</li>
          </ul>
          <p>Every number comes from a simulation in simulated time, with the same seed for every policy. The command-line tool <code>btmsim run</code> prints the same table.</p>
        </details>
        {notice && <p class="notice" role="status">{notice} <button type="button" class="link" onClick={() => setNotice('')}>Dismiss</button></p>}
      </header>

      <main class="layout">
        <section class="controls" aria-labelledby="controls-h">
          <h2 id="controls-h">Scenario</h2>
          <div class="field">
            <label for="scenario">Shipped scenario</label>
            <select id="scenario" value={scenarioId} onChange={(e) => pick(e.currentTarget.value)} aria-describedby="scenario-about">
              {SHIPPED.map((s) => (
                <option key={s.id} value={s.id}>{s.id}{s.description ? ` — ${s.description}` : ''}</option>
              ))}
            </select>
            <p class="hint" id="scenario-about">
              {custom !== null ? <><strong>Edited</strong> from {base.file}. </> : null}
              {base.about}
            </p>
            {(custom !== null || Object.keys(edits).length > 0) && (
              <button type="button" onClick={() => pick(scenarioId)}>Reset to {base.file}</button>
            )}
          </div>

          <h2>Controls</h2>
          {controlsDisabled && <p class="note">The controls need a scenario that parses as a YAML mapping: fix the YAML below first.</p>}
          <Knobs view={view} disabled={controlsDisabled} set={setKnob} />

          <h2><label for="yaml">Scenario YAML</label></h2>
          <p class="hint" id="yaml-help">
            The controls above edit this text; you can also edit it directly (every field: <code>btmsim schema</code>,
            or the README). Mistakes are reported as <code>file:line:col: field: message</code>, as the command line does.
          </p>
          <Editor value={text} onInput={onText} issues={issues} />
        </section>

        <section class="results" aria-labelledby="results-h">
          <h2 id="results-h">Results</h2>
          <div class="runbar">
            <StatusLine status={status} result={result} />
            <div class="buttons">
              <button type="button" id="cancel" onClick={cancel} disabled={!running} aria-keyshortcuts="Escape">Cancel run</button>
              <button type="button" id="run" onClick={() => start(text)} disabled={running}>Run again</button>
              <button type="button" id="export-json" disabled={!result}
                onClick={() => result && download(`${result.output.scenario}-seed${result.output.seed}.json`, 'application/json', runJson(result.output))}>
                Download JSON
              </button>
              <button type="button" id="export-html" disabled={!result} onClick={() => result && void exportHtml(result)}>
                Download HTML report
              </button>
              <button type="button" id="copy-link" onClick={() => void copyLink()}>Copy link</button>
            </div>
            <p class="flash" role="status">{flash}</p>
          </div>

          {result === null ? (
            <p class="placeholder">{status.kind === 'invalid' ? 'Fix the scenario to see results.' : 'The first run is under way…'}</p>
          ) : (
            <div class={stale ? 'output stale' : 'output'} aria-busy={running}>
              {stale && <p class="stale-note">{staleNote(status)}</p>}
              <Headline out={result.output} />
              <div class="charts">
                {charts.map((c) => (
                  <figure key={c.id} class="chart-fig">
                    <figcaption><strong>{c.title}</strong><span>{c.subtitle}</span></figcaption>
                    <div dangerouslySetInnerHTML={{ __html: c.svg }} />
                  </figure>
                ))}
              </div>
              <CompareTable out={result.output} info={result.info} />
            </div>
          )}
        </section>
      </main>
      <footer class="foot">
        <p>btmsim: an executable model of SMMUv3 BTM and CPU/KVM/SMMU VMID coordination. The same simulator runs on the command line: <code>npx btmsim run</code>.</p>
      </footer>
    </div>
  );
}

function initialText(s: UrlState): string {
  const b = s.yaml ?? (shipped(s.scenario) ?? shipped(DEFAULT_SCENARIO)!).text;
  let t = b;
  for (const [k, v] of Object.entries(s.edits) as [Knob, never][]) t = applyKnob(t, k, v) ?? t;
  return t;
}

function staleNote(s: Status): string {
  switch (s.kind) {
    case 'running': return 'Running the new settings; the results below are from the previous run.';
    case 'cancelled': return 'Run cancelled: the results below are from the previous run.';
    case 'invalid': return 'The scenario has mistakes: the results below are from the last valid run.';
    case 'error': return 'The run failed: the results below are from the previous run.';
    default: return '';
  }
}

function StatusLine({ status, result }: { status: Status; result: Result | null }) {
  let text = '';
  let pct = 0;
  if (status.kind === 'running') {
    const n = status.info?.policies.length ?? 0;
    pct = n > 0 ? Math.min(100, ((status.index + status.fraction) / n) * 100) : 0;
    const elapsed = (performance.now() - status.startedAt) / 1000;
    const left = pct >= 1 && elapsed >= 2 ? elapsed * (100 / pct - 1) : null;
    text = status.info === null
      ? 'Starting…'
      : `Running ${status.info.name} (${status.info.duration}): ${status.info.policies[Math.min(status.index, n - 1)]} (${Math.min(status.index + 1, n)} of ${n}), ` +
        `${pct < 10 ? pct.toFixed(1) : pct.toFixed(0)}%${left !== null ? `, about ${formatSeconds(left)} left` : ''}. Esc or “Cancel run” stops it.`;
  } else if (status.kind === 'done' && result) {
    text = `Done: ${result.output.scenario}, seed ${result.output.seed}, ${result.info.duration} simulated, ${result.output.results.length} ${result.output.results.length === 1 ? 'policy' : 'policies'} in ${(status.elapsedMs / 1000).toFixed(1)} s.`;
  } else if (status.kind === 'invalid') {
    text = `The scenario has ${status.count === 1 ? 'a mistake' : `${status.count} mistakes`}: see under the editor.`;
  } else if (status.kind === 'cancelled') {
    text = 'Run cancelled. Change a control or press “Run again” to start another.';
  } else if (status.kind === 'error') {
    text = `The simulator failed: ${status.message}`;
  }
  return (
    <div class="status">
      <p id="status" role="status" aria-live="polite">{text}</p>
      <progress id="progress" max={100} value={status.kind === 'running' ? pct : status.kind === 'done' ? 100 : 0}
        aria-label="Run progress" class={status.kind === 'running' ? '' : 'idle'} />
    </div>
  );
}

function formatSeconds(s: number): string {
  if (s < 90) return `${Math.max(1, Math.round(s))} s`;
  return `${Math.round(s / 60)} min`;
}

function Headline({ out }: { out: RunOutput }) {
  if (out.results.length === 0) return null;
  const cost = (i: number) => out.results[i].metrics.translation.dmaTimeNs + out.results[i].metrics.translation.driverInvalidationTimeNs + out.results[i].metrics.translation.dvmTimeNs;
  let best = 0, worst = 0;
  out.results.forEach((r, i) => {
    if (cost(i) < cost(best)) best = i;
    if (r.metrics.collateral.total > out.results[worst].metrics.collateral.total) worst = i;
  });
  const worstM = out.results[worst].metrics;
  const unattached = out.results.filter((r) => r.metrics.vmid.devicesUnattached > 0);
  return (
    <ul class="headline" id="headline">
      <li>Lowest estimated translation + invalidation time: <strong>{out.results[best].policy}</strong> ({fmtMs(cost(best))})
        {out.results[best].metrics.vmid.devicesUnattached > 0
          ? `, but it left ${out.results[best].metrics.vmid.devicesUnattached} devices unattached: they did no DMA to translate.`
          : '.'}</li>
      {worstM.collateral.total > 0
        ? <li>Most collateral invalidations: <strong>{out.results[worst].policy}</strong> ({worstM.collateral.total.toLocaleString('en-US')} entries, {worstM.collateralRefills.toLocaleString('en-US')} refilled by walks).</li>
        : <li>No policy causes collateral invalidations here.</li>}
      {unattached.length > 0 && (
        <li>Devices left without a VMID (no DMA): {unattached.map((r) => `${r.policy} ${r.metrics.vmid.devicesUnattached}`).join(', ')}.</li>
      )}
    </ul>
  );
}

function CompareTable({ out, info }: { out: RunOutput; info: RunInfo }) {
  return (
    <div class="table-wrap" tabIndex={0} aria-labelledby="cmp-caption">
      <table class="cmp" id="comparison">
        <caption id="cmp-caption">Comparison: {out.scenario}, seed {out.seed}, {info.duration} simulated (the table of <code>btmsim run</code>)</caption>
        <thead>
          <tr><th scope="col">metric</th>{out.results.map((r) => <th scope="col" key={r.policy}>{r.policy}</th>)}</tr>
        </thead>
        <tbody>
          {tableRowsFor(out).map((row) => (
            <tr key={row.label} class={row.indent ? 'sub' : ''} data-row={row.label}>
              <th scope="row">{row.label}</th>
              {out.results.map((r) => <td key={r.policy} data-policy={r.policy}>{cellText(row.get(r.metrics))}</td>)}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

// ---- controls

function Knobs({ view, disabled, set }: { view: KnobView | null; disabled: boolean; set: <K extends Knob>(k: K, v: KnobValues[K]) => void }) {
  const v: KnobView = view ?? {
    vmidBits: 8, cpuVmidBits: 8, smmuVmidBits: 8, vfs: KNOB_DEFAULTS.vfs, policies: [KNOB_DEFAULTS.policy],
    tlbEntries: KNOB_DEFAULTS.tlbEntries, tlbWays: KNOB_DEFAULTS.tlbWays, kvmUnmap: KNOB_DEFAULTS.kvmUnmap,
    durationMs: KNOB_DEFAULTS.durationMs, durationEvents: null,
  };
  const ways = Number.isInteger(v.tlbWays) && v.tlbWays > 0 ? v.tlbWays : KNOB_DEFAULTS.tlbWays;
  return (
    <div class="knobs">
      <fieldset class="field" disabled={disabled}>
        <legend>VMID width (CPU and SMMU)</legend>
        <div class="seg" role="presentation">
          {([8, 16] as const).map((b) => (
            <label key={b} class="seg-opt">
              <input type="radio" name="vmid-bits" id={`vmid-${b}`} value={b} checked={v.vmidBits === b}
                onChange={() => set('vmidBits', b)} aria-describedby="vmid-hint" />
              <span>{b}-bit</span>
            </label>
          ))}
        </div>
        <p class="hint" id="vmid-hint">
          {v.vmidBits === null
            ? `The YAML sets CPU ${String(v.cpuVmidBits)}-bit and SMMU ${String(v.smmuVmidBits)}-bit; choosing here sets both. `
            : ''}
          8-bit VMIDs (256) are the hard case of the 2020 thread; 16-bit make room for every VM and device.
        </p>
      </fieldset>

      <Slider id="vfs" label="VFs per VM" values={withValue(SCALES.vfs, v.vfs)} value={v.vfs} disabled={disabled}
        format={(x) => `${x} ${x === 1 ? 'VF' : 'VFs'}`} onChange={(x) => set('vfs', x)}
        hint="SR-IOV virtual functions assigned to each VM; with the default per-device VMID scope each one takes an SMMU VMID." />

      <fieldset class="field" disabled={disabled}>
        <legend>Policies to compare</legend>
        {POLICIES.map((p) => {
          const on = v.policies.includes(p);
          const last = on && v.policies.length === 1;
          return (
            <div class="check" key={p}>
              <input type="checkbox" id={`pol-${p}`} checked={on} disabled={last} aria-describedby={`pol-${p}-d`}
                onChange={(e) => {
                  const next: Policy[] = e.currentTarget.checked ? [...v.policies.filter((x) => x !== p), p] : v.policies.filter((x) => x !== p);
                  if (next.length > 0) set('policies', next);
                }} />
              <label for={`pol-${p}`}><code>{p}</code></label>
              <span class="hint" id={`pol-${p}-d`}>{POLICY_HELP[p]}{last ? ' (at least one policy stays selected)' : ''}</span>
            </div>
          );
        })}
      </fieldset>

      <Slider id="tlb" label="SMMU TLB size" values={withValue(SCALES.tlbEntries(ways), v.tlbEntries)} value={v.tlbEntries} disabled={disabled}
        format={(x) => `${x.toLocaleString('en-US')} entries`} onChange={(x) => set('tlbEntries', x)}
        hint={`Entries in the SMMU's main TLB (${ways}-way). Bigger TLBs hold more entries that a collateral invalidation can wipe.`} />

      <Slider id="unmap" label="KVM unmap rate" values={withValue(SCALES.kvmUnmap, v.kvmUnmap)} value={v.kvmUnmap} disabled={disabled}
        format={(x) => `${x} per ms per VM`} onChange={(x) => set('kvmUnmap', x)}
        hint="Stage-2 page unmaps by KVM's MMU notifier; each one broadcasts TLBIs by VMID." />

      <Slider id="duration" label="Simulated duration" values={withValue(SCALES.durationMs, v.durationMs ?? -1).filter((x) => x > 0)}
        value={v.durationMs} disabled={disabled}
        format={(x) => `${x} ms`} onChange={(x) => set('durationMs', x)}
        valueText={v.durationMs === null ? `${String(v.durationEvents)} events (set in the YAML)` : undefined}
        hint="Simulated time. About 1 s of wall time per 20 ms for five policies; long runs can be cancelled." />
    </div>
  );
}

function Slider(props: {
  id: string; label: string; hint: string; values: number[]; value: number | null; disabled: boolean;
  format: (v: number) => string; onChange: (v: number) => void; valueText?: string;
}) {
  const idx = props.value === null ? -1 : props.values.indexOf(props.value);
  const shown = props.valueText ?? (props.value === null ? '' : props.format(props.value));
  return (
    <div class="field slider">
      <div class="slider-head">
        <label for={props.id}>{props.label}</label>
        <output for={props.id} id={`${props.id}-value`}>{shown}</output>
      </div>
      <input type="range" id={props.id} min={0} max={props.values.length - 1} step={1}
        value={idx < 0 ? 0 : idx} disabled={props.disabled}
        aria-valuetext={shown} aria-describedby={`${props.id}-hint`}
        onInput={(e) => {
          const x = props.values[Number(e.currentTarget.value)];
          if (x !== undefined && x !== props.value) props.onChange(x);
        }} />
      <p class="hint" id={`${props.id}-hint`}>{props.hint}</p>
    </div>
  );
}

function download(name: string, type: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
