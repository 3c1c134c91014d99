/**
 * Owns the simulator worker. A new run while one is going, or cancel(), terminates the worker
 * (the simulation loop never yields, so that is the only way to stop it) and the next run gets
 * a fresh one. Messages of an older run are dropped by id.
 */
import type { FromWorker } from './protocol.js';

export type Listener = (m: FromWorker) => void;

export class SimRunner {
  private worker: Worker | null = null;
  private busy = false;
  private id = 0;

  constructor(private readonly listener: Listener) {}

  /** Starts a run; returns its id. */
  run(yaml: string, file: string): number {
    if (this.busy) this.terminate();
    const w = (this.worker ??= this.spawn());
    this.busy = true;
    this.id++;
    w.postMessage({ type: 'run', id: this.id, yaml, file });
    return this.id;
  }

  /** Stops the current run, if any. Returns whether one was running. */
  cancel(): boolean {
    if (!this.busy) return false;
    this.terminate();
    this.id++;
    return true;
  }

  /** Ends the worker for good (the page is going away or starting over). */
  dispose(): void {
    this.terminate();
    this.id++;
  }

  get running(): boolean {
    return this.busy;
  }

  private spawn(): Worker {
    const w = new Worker(new URL('./sim.worker.ts', import.meta.url), { type: 'module', name: 'btmsim' });
    w.onmessage = (e: MessageEvent<FromWorker>) => {
      const m = e.data;
      if (m.id !== this.id) return;
      if (m.type === 'done' || m.type === 'invalid' || m.type === 'error') this.busy = false;
      this.listener(m);
    };
    w.onerror = (e) => {
      e.preventDefault();
      const id = this.id;
      this.terminate();
      this.listener({ type: 'error', id, message: e.message || 'the simulator worker failed to start' });
    };
    return w;
  }

  private terminate(): void {
    this.worker?.terminate();
    this.worker = null;
    this.busy = false;
  }
}
