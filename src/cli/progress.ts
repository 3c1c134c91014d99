/**
 * A one-line progress bar on stderr: done/total, failures, elapsed and ETA. On a terminal the line
 * is redrawn in place (at most 10 times a second); otherwise (CI logs, files) a plain line is
 * printed every few seconds. Workers never print: the main thread updates the bar from their
 * results.
 */
export interface ProgressStream {
  write(s: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  total: number;
  /** Jobs already done before this session (resume): counted as done, not used for the rate. */
  already?: number;
  alreadyFailed?: number;
  label?: string;
  /** Plain-line interval when not a terminal (ms). */
  plainEveryMs?: number;
  now?: () => number;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '--:--';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (x: number): string => String(x).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(ss)}` : `${m}:${two(ss)}`;
}

export class ProgressBar {
  private done: number;
  private failed: number;
  private readonly t0: number;
  private last = -Infinity;
  /** Cost done in this session and the total cost left, for the ETA (job costs differ). */
  private costDone = 0;
  private costLeft: number;
  private readonly now: () => number;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly out: ProgressStream, private readonly opts: ProgressOptions & { costTotal: number }) {
    this.done = opts.already ?? 0;
    this.failed = opts.alreadyFailed ?? 0;
    this.now = opts.now ?? Date.now;
    this.t0 = this.now();
    this.costLeft = opts.costTotal;
  }

  get tty(): boolean { return this.out.isTTY === true; }

  /** Draw now, then keep the elapsed time and ETA moving while no job finishes. */
  start(): void {
    this.render(true);
    this.timer = setInterval(() => this.render(false), 1000);
    this.timer.unref();
  }

  /** A job finished (`cost`: its estimated cost, as counted in costTotal). */
  tick(ok: boolean, cost = 1): void {
    this.done++;
    if (!ok) this.failed++;
    this.costDone += cost;
    this.costLeft = Math.max(0, this.costLeft - cost);
    this.render(false);
  }

  line(): string {
    const { total } = this.opts;
    const elapsed = this.now() - this.t0;
    const eta = this.costDone > 0 ? (elapsed / this.costDone) * this.costLeft : NaN;
    const frac = total > 0 ? this.done / total : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = this.tty ? `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ` : '';
    const label = this.opts.label ? `${this.opts.label} ` : '';
    const fail = this.failed > 0 ? ` · ${this.failed} failed` : '';
    const etaText = this.done >= total ? '' : ` · ETA ${formatDuration(eta)}`;
    return `${label}${bar}${this.done}/${total} (${Math.floor(frac * 100)}%)${fail} · ${formatDuration(elapsed)}${etaText}`;
  }

  render(force: boolean): void {
    const t = this.now();
    if (this.tty) {
      if (!force && t - this.last < 100) return;
      this.last = t;
      let s = this.line();
      const cols = this.out.columns !== undefined && this.out.columns >= 20 ? this.out.columns : 0;
      if (cols > 0 && s.length > cols - 1) s = s.slice(0, cols - 1);
      this.out.write(`\r${s}\x1b[K`);
    } else {
      if (!force && t - this.last < (this.opts.plainEveryMs ?? 5000)) return;
      this.last = t;
      this.out.write(this.line() + '\n');
    }
  }

  /** Final state, then end the line. */
  finish(): void {
    if (this.timer !== null) { clearInterval(this.timer); this.timer = null; }
    if (this.tty) {
      this.render(true);
      this.out.write('\n');
    } else {
      this.render(true);
    }
  }
}
