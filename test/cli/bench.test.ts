/**
 * `npm run bench -- --json` prints one object with the figures the README quotes. Only the shape
 * and sanity of the figures are checked here: performance itself is never judged by a test.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'dist/cli/main.js');

describe.runIf(existsSync(bin))('btmsim bench --quick --json', () => {
  it('prints tlbLookupsPerSec, eventsPerSec, eventsPerSecWithOracle, replayLinesPerSec, sweepSpeedup2, peakRssMiB', () => {
    const r = spawnSync(process.execPath, [bin, 'bench', '--quick', '--json'], { encoding: 'utf8', cwd: root });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const j = JSON.parse(lines[0]);
    for (const k of ['tlbLookupsPerSec', 'eventsPerSec', 'eventsPerSecWithOracle', 'sweepSpeedup2', 'peakRssMiB']) {
      expect(j[k], k).toBeGreaterThan(0);
    }
    if (existsSync(resolve(root, '../shared/traces/s1-strict.trace.log.xz'))) {
      expect(j.replayLinesPerSec).toBeGreaterThan(0);
      expect(j.replay.lines).toBe(2114684);
    }
    // The sweep's results do not depend on the number of workers.
    expect(j.sweep.identical).toBe(true);
    expect(j.rssByRunLength.map((x: { events: number }) => x.events)).toEqual([1e5, 1e6]);
    for (const x of j.rssByRunLength) expect(x.liveHeapMiB).toBeGreaterThan(0);
  }, 120_000);
});
