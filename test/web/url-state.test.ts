import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeState, encodeState, fromBase64Url, packText, toBase64Url, unpackText } from '../../web/src/url-state.js';

const thread = readFileSync(resolve(import.meta.dirname, '../../scenarios/thread-2020.yaml'), 'utf8');

describe('web explorer URL state (web/src/url-state.ts)', () => {
  it('round-trips scenario, edited YAML and control changes', async () => {
    const s = { scenario: 'vm-churn-8bit', yaml: thread.replace('seed: 1', 'seed: 42'), edits: { vmidBits: 16 as const, vfs: 3, policies: ['ptm' as const, 'btm-split' as const], tlbEntries: 512, kvmUnmap: 0.2, durationMs: 100 } };
    const h = await encodeState(s);
    expect(h).toMatch(/^s=vm-churn-8bit&vmid=16&vfs=3&pol=ptm,btm-split&tlb=512&unmap=0.2&ms=100&y=z\.[A-Za-z0-9_-]+$/);
    expect(h.length).toBeLessThan(thread.length); // deflated
    expect(await decodeState('#' + h, 'thread-2020')).toEqual({ ...s, problems: [] });
  });

  it('a plain link is just the scenario; an empty fragment is the default', async () => {
    expect(await encodeState({ scenario: 'thread-2020', yaml: null, edits: {} })).toBe('s=thread-2020');
    expect(await decodeState('', 'thread-2020')).toEqual({ scenario: 'thread-2020', yaml: null, edits: {}, problems: [] });
  });

  it('lists what it cannot read instead of failing', async () => {
    const r = await decodeState('#s=sva-btm&vmid=12&vfs=-1&pol=ptm,nope&ms=abc&y=z.!!&zzz=1&unmap=2', 'thread-2020');
    expect(r.scenario).toBe('sva-btm');
    expect(r.edits).toEqual({ kvmUnmap: 2 });
    expect(r.problems).toEqual(['vmid', 'vfs', 'pol', 'ms', 'y', 'zzz']);
  });

  it('packs text plainly or deflated, and base64url round-trips any bytes', async () => {
    await fc.assert(fc.asyncProperty(fc.string({ unit: 'grapheme' }), async (t) => {
      expect(await unpackText(await packText(t))).toBe(t);
    }), { numRuns: 100, seed: 8 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
      expect([...fromBase64Url(toBase64Url(b))]).toEqual([...b]);
    }), { numRuns: 300, seed: 8 });
    expect(await unpackText('b.' + toBase64Url(new TextEncoder().encode('a: 1')))).toBe('a: 1');
    await expect(unpackText('q.abc')).rejects.toThrow();
  });
});
