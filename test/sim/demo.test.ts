import { describe, expect, it } from 'vitest';
import { btmDemo } from '../../src/sim/demo.js';

describe('btm demo', () => {
  it('shows the SMMU dropping the device entries with PTM=0 and keeping them with PTM=1', () => {
    const lines = btmDemo();
    const text = lines.join('\n');
    expect(text).toContain('collateral invalidation');
    expect(text).toContain('untouched');
    // PTM=0: 8 misses after the flush; PTM=1: all hits.
    expect(lines.filter((l) => l.startsWith('6.'))[0]).toContain('8 misses');
    expect(lines.filter((l) => l.startsWith('6.'))[1]).toContain('0 misses');
  });
});
