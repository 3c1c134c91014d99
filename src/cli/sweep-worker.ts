/**
 * Sweep worker (worker_threads; always run from the built dist/cli/sweep-worker.js). Takes one
 * job at a time: a validated scenario and a policy; answers with the run's metrics and
 * timeline, or the error that stopped it.
 *
 * Test hook: BTMSIM_TEST_FAIL_JOBS=3,7 makes jobs 3 and 7 throw (to test that a failing job is
 * recorded without stopping the others); BTMSIM_TEST_CRASH_JOBS=5 makes the worker thread exit
 * in the middle of job 5 (the pool must record it and replace the worker);
 * BTMSIM_TEST_SLOW_MS=n sleeps n ms before each job (to test kill-and-resume on tiny grids).
 * They are read here only.
 */
import { parentPort } from 'node:worker_threads';
import { runPolicyWithTimeline } from '../sim/run.js';
import type { PolicyName, Scenario } from '../workload/schema.js';
import type { WorkerReply } from './pool.js';

export interface SweepJobMessage {
  scenario: Scenario;
  policy: PolicyName;
  samples: number;
}

export type SweepJobValue = ReturnType<typeof runPolicyWithTimeline>;

const failJobs = new Set((process.env.BTMSIM_TEST_FAIL_JOBS ?? '').split(',').filter((s) => s.trim() !== '').map(Number));
const crashJobs = new Set((process.env.BTMSIM_TEST_CRASH_JOBS ?? '').split(',').filter((s) => s.trim() !== '').map(Number));
const slowMs = Number(process.env.BTMSIM_TEST_SLOW_MS ?? 0);

function errorText(e: unknown): string {
  if (e instanceof Error) return (e.name && e.name !== 'Error' ? `${e.name}: ` : '') + e.message.split('\n')[0];
  return String(e);
}

parentPort?.on('message', (msg: { id: number; message: SweepJobMessage }) => {
  let reply: WorkerReply<SweepJobValue>;
  try {
    if (slowMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, slowMs);
    if (crashJobs.has(msg.id)) process.exit(3);
    if (failJobs.has(msg.id)) throw new Error(`injected failure for job ${msg.id} (BTMSIM_TEST_FAIL_JOBS)`);
    const m = msg.message;
    const value = runPolicyWithTimeline(m.scenario, m.policy, { samples: m.samples });
    reply = { id: msg.id, ok: true, value };
  } catch (e) {
    reply = { id: msg.id, ok: false, error: errorText(e) };
  }
  parentPort!.postMessage(reply);
});
