/** Messages between the page and the simulator worker (web/src/sim.worker.ts). */
import type { PolicyResult, RunOutput } from '../../src/sim/run.js';
import type { ScenarioIssue } from '../../src/workload/load.js';

export type ToWorker = { type: 'run'; id: number; yaml: string; file: string };

export interface RunInfo {
  name: string;
  description: string;
  seed: number;
  policies: string[];
  /** e.g. "20 ms" or "1000000 events". */
  duration: string;
}

export type FromWorker =
  /** The scenario does not validate: the same issues and messages as the CLI. */
  | { type: 'invalid'; id: number; issues: (ScenarioIssue & { text: string })[] }
  | { type: 'start'; id: number; info: RunInfo }
  /** `index` of the policy running, `fraction` of it done. */
  | { type: 'progress'; id: number; index: number; fraction: number }
  | { type: 'policy'; id: number; index: number; result: PolicyResult }
  | { type: 'done'; id: number; output: RunOutput; elapsedMs: number }
  | { type: 'error'; id: number; message: string };
