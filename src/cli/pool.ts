/**
 * A small pull-based pool of worker_threads. Each worker takes one job at a time; when it answers,
 * the pool hands it the next. A worker that dies (uncaught error, out of memory, exit) fails its
 * job and is replaced, so one bad job never stops the others. Results are delivered in the order
 * they finish: callers key them by job index.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';

export interface PoolJob<M> {
  id: number;
  message: M;
}

export type PoolResult<R> = { ok: true; value: R } | { ok: false; error: string };

export interface PoolOptions<M, R> {
  workerFile: URL | string;
  size: number;
  jobs: readonly PoolJob<M>[];
  onResult: (id: number, result: PoolResult<R>) => void;
  /** Worker resource limits (e.g. maxOldGenerationSizeMb). */
  resourceLimits?: ResourceLimits;
}

/** Messages a pool worker posts back: `{ id, ok: true, value }` or `{ id, ok: false, error }`. */
export type WorkerReply<R> = { id: number; ok: true; value: R } | { id: number; ok: false; error: string };

export interface PoolHandle {
  done: Promise<void>;
  /** Terminate every worker; `done` resolves once they have exited. Unfinished jobs get no result. */
  stop(): Promise<void>;
}

export function runPool<M, R>(opts: PoolOptions<M, R>): PoolHandle {
  let next = 0;
  let finished = 0;
  let stopped = false;
  const total = opts.jobs.length;
  const workers = new Set<Worker>();
  let resolveDone!: () => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<void>((res, rej) => { resolveDone = res; rejectDone = rej; });

  const settle = (): void => {
    if (finished === total || (stopped && workers.size === 0)) resolveDone();
  };

  const spawn = (): void => {
    if (stopped || next >= total) return;
    let current: PoolJob<M> | null = null;
    let answered = false;
    let w: Worker;
    try {
      w = new Worker(opts.workerFile, opts.resourceLimits ? { resourceLimits: opts.resourceLimits } : {});
    } catch (e) {
      rejectDone(e);
      return;
    }
    workers.add(w);
    const give = (): void => {
      if (stopped || next >= total) { current = null; void w.terminate(); return; }
      current = opts.jobs[next++];
      answered = false;
      w.postMessage({ id: current.id, message: current.message });
    };
    const fail = (why: string): void => {
      if (current !== null && !answered && !stopped) {
        answered = true;
        finished++;
        opts.onResult(current.id, { ok: false, error: why });
        current = null;
      }
    };
    w.on('message', (reply: WorkerReply<R>) => {
      if (current === null || reply.id !== current.id || stopped) return;
      answered = true;
      finished++;
      opts.onResult(reply.id, reply.ok ? { ok: true, value: reply.value } : { ok: false, error: reply.error });
      give();
      settle();
    });
    w.on('error', (e: Error) => {
      fail(`worker crashed: ${e?.message ?? String(e)}`);
    });
    w.on('exit', (code) => {
      workers.delete(w);
      if (current !== null && !answered) fail(`worker exited with code ${code}`);
      // Replace a worker that died with jobs still to hand out.
      if (!stopped && next < total) spawn();
      settle();
    });
    give();
  };

  const n = Math.max(1, Math.min(opts.size, total));
  if (total === 0) resolveDone();
  for (let i = 0; i < n; i++) spawn();

  return {
    done,
    async stop(): Promise<void> {
      stopped = true;
      await Promise.all([...workers].map((w) => w.terminate()));
      resolveDone();
    },
  };
}
