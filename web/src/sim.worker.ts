/**
 * The simulator core in a Web Worker: validates the scenario text (same loader and messages as
 * the CLI), then runs each policy on the same workload and seed, posting progress and each
 * policy's result as it completes. A run is cancelled by terminating the worker.
 */
import { policiesOf, RESULT_VERSION, runScenario, type PolicyResult, type RunOutput } from '../../src/sim/run.js';
import { formatIssue, loadScenarioText } from '../../src/workload/load.js';
import type { FromWorker, ToWorker } from './protocol.js';

const scope = self as unknown as {
  postMessage(m: FromWorker): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
};
const post = (m: FromWorker): void => scope.postMessage(m);

scope.onmessage = (e) => {
  const m = e.data;
  if (m.type !== 'run') return;
  try {
    run(m);
  } catch (err) {
    post({ type: 'error', id: m.id, message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
  }
};

function run(m: ToWorker): void {
  const t0 = performance.now();
  const r = loadScenarioText(m.yaml, m.file);
  if (!r.ok) {
    post({ type: 'invalid', id: m.id, issues: r.issues.map((i) => ({ ...i, text: formatIssue(i) })) });
    return;
  }
  const sc = r.scenario;
  const policies = policiesOf(sc);
  const duration = 'ms' in sc.duration ? `${sc.duration.ms} ms` : `${sc.duration.events} events`;
  post({ type: 'start', id: m.id, info: { name: sc.name, description: sc.description, seed: sc.seed, policies, duration } });
  const results: PolicyResult[] = [];
  let head: RunOutput | undefined;
  policies.forEach((p, index) => {
    let last = 0;
    const out = runScenario(sc, [p], {
      onProgress: (_p, fraction) => {
        const now = performance.now();
        if (now - last < 100) return;
        last = now;
        post({ type: 'progress', id: m.id, index, fraction });
      },
    });
    head ??= out;
    results.push(out.results[0]);
    post({ type: 'policy', id: m.id, index, result: out.results[0] });
  });
  // The same object, key order included, as runScenario(sc, policies): `btmsim run --json`.
  const output: RunOutput = { ...(head ?? { version: RESULT_VERSION, scenario: sc.name, seed: sc.seed, results: [] }), results };
  post({ type: 'done', id: m.id, output, elapsedMs: performance.now() - t0 });
}
