import { describe, expect, it } from 'vitest';
import { formatDuration, ProgressBar } from '../../src/cli/progress.js';

function fake(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY, columns: 200, write: (s: string) => { chunks.push(s); return true; } } };
}

describe('progress bar', () => {
  it('on a terminal: redraws one line in place with done/total, failures, elapsed and ETA (throttled)', () => {
    let t = 0;
    const { chunks, stream } = fake(true);
    const bar = new ProgressBar(stream, { total: 4, costTotal: 4, label: 'sweep', now: () => t });
    bar.render(true);
    t = 1000; bar.tick(true);
    t = 1010; bar.tick(false); // within 100 ms: not drawn
    t = 2000; bar.tick(true);
    expect(chunks).toHaveLength(3);
    expect(chunks.every((c) => c.startsWith('\r') && c.endsWith('\x1b[K'))).toBe(true);
    expect(chunks[2]).toContain('[##################------] 3/4 (75%) · 1 failed · 0:02 · ETA 0:01');
    t = 3000; bar.tick(true); bar.finish();
    expect(chunks.at(-2)).toContain('4/4 (100%) · 1 failed · 0:03');
    expect(chunks.at(-2)).not.toContain('ETA');
    expect(chunks.at(-1)).toBe('\n');
  });

  it('elsewhere (CI logs): a plain line every few seconds, and the final state', () => {
    let t = 0;
    const { chunks, stream } = fake(false);
    const bar = new ProgressBar(stream, { total: 10, costTotal: 10, already: 2, plainEveryMs: 5000, now: () => t });
    bar.render(true);
    for (let i = 0; i < 8; i++) { t += 1000; bar.tick(true); }
    bar.finish();
    expect(chunks.every((c) => c.endsWith('\n') && !c.includes('\r'))).toBe(true);
    expect(chunks[0]).toBe('2/10 (20%) · 0:00 · ETA --:--\n');
    expect(chunks).toHaveLength(3); // start, t = 5 s, final
    expect(chunks.at(-1)).toBe('10/10 (100%) · 0:08\n');
  });

  it('ETA is weighted by the estimated cost of the jobs left', () => {
    let t = 0;
    const { chunks, stream } = fake(false);
    const bar = new ProgressBar(stream, { total: 2, costTotal: 4, plainEveryMs: 0, now: () => t });
    t = 1000; bar.tick(true, 1); // 1 of 4 cost units in 1 s: 3 left
    expect(chunks.at(-1)).toContain('ETA 0:03');
  });

  it('formats durations', () => {
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(61_000)).toBe('1:01');
    expect(formatDuration(3_725_000)).toBe('1:02:05');
    expect(formatDuration(NaN)).toBe('--:--');
  });
});
