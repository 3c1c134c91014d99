/**
 * Exports of a run. JSON: byte for byte what `btmsim run --json` prints for the same scenario
 * and seed. The HTML report is src/report/html.ts's runReportHtml (the one `btmsim run --html`
 * writes), loaded on demand (see app.tsx) so its code stays out of the page's first download.
 *
 * Pure (no DOM).
 */
import type { RunOutput } from '../../src/sim/run.js';

export function runJson(out: RunOutput): string {
  return JSON.stringify(out, null, 2) + '\n';
}

/** A table cell as the page shows it: integers grouped by thousands, strings as they are. */
export function cellText(v: number | string | null): string {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : String(v);
  return v;
}
