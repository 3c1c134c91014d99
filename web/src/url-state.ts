/**
 * The page state in the URL fragment, so a result can be shared:
 *
 *   #s=thread-2020&vfs=8&vmid=16&pol=ptm,btm-2020&tlb=4096&unmap=2&ms=100&y=z.<base64url>
 *
 * `s` names the shipped scenario; `y` (only when the YAML was edited by hand) holds the whole
 * text, deflated (`z.`) when the browser has CompressionStream, else plain (`b.`), base64url;
 * the knob parameters are the control changes made on top of that text.
 *
 * Pure (no DOM): unit-tested in Node by test/web/url-state.test.ts.
 */
import { isPolicy, type Policy } from './policies.js';
import type { KnobEdits } from './knobs.js';

export interface UrlState {
  scenario: string;
  yaml: string | null;
  edits: KnobEdits;
  /** Parameters that could not be read, for a notice. */
  problems: string[];
}

const PARAM = { vmidBits: 'vmid', vfs: 'vfs', policies: 'pol', tlbEntries: 'tlb', kvmUnmap: 'unmap', durationMs: 'ms' } as const;

export async function encodeState(s: { scenario: string; yaml: string | null; edits: KnobEdits }): Promise<string> {
  const parts = [`s=${encodeURIComponent(s.scenario)}`];
  const e = s.edits;
  if (e.vmidBits !== undefined) parts.push(`${PARAM.vmidBits}=${e.vmidBits}`);
  if (e.vfs !== undefined) parts.push(`${PARAM.vfs}=${e.vfs}`);
  if (e.policies !== undefined) parts.push(`${PARAM.policies}=${e.policies.join(',')}`);
  if (e.tlbEntries !== undefined) parts.push(`${PARAM.tlbEntries}=${e.tlbEntries}`);
  if (e.kvmUnmap !== undefined) parts.push(`${PARAM.kvmUnmap}=${e.kvmUnmap}`);
  if (e.durationMs !== undefined) parts.push(`${PARAM.durationMs}=${e.durationMs}`);
  if (s.yaml !== null) parts.push(`y=${await packText(s.yaml)}`);
  return parts.join('&');
}

/** Reads a fragment (with or without `#`); unknown or malformed parameters are listed in `problems`. */
export async function decodeState(hash: string, defaultScenario: string): Promise<UrlState> {
  const out: UrlState = { scenario: defaultScenario, yaml: null, edits: {}, problems: [] };
  const h = hash.startsWith('#') ? hash.slice(1) : hash;
  if (h === '') return out;
  for (const part of h.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    let val: string;
    try {
      val = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
    } catch {
      out.problems.push(key);
      continue;
    }
    const n = Number(val);
    const okNum = val !== '' && Number.isFinite(n);
    switch (key) {
      case 's': out.scenario = val; break;
      case 'y':
        try { out.yaml = await unpackText(val); } catch { out.problems.push('y'); }
        break;
      case PARAM.vmidBits:
        if (n === 8 || n === 16) out.edits.vmidBits = n; else out.problems.push(key);
        break;
      case PARAM.vfs:
        if (okNum && Number.isInteger(n) && n >= 0) out.edits.vfs = n; else out.problems.push(key);
        break;
      case PARAM.policies: {
        const list = val.split(',').filter((p) => p !== '');
        if (list.length > 0 && list.every(isPolicy)) out.edits.policies = [...new Set(list as Policy[])];
        else out.problems.push(key);
        break;
      }
      case PARAM.tlbEntries:
        if (okNum && Number.isInteger(n) && n > 0) out.edits.tlbEntries = n; else out.problems.push(key);
        break;
      case PARAM.kvmUnmap:
        if (okNum && n >= 0) out.edits.kvmUnmap = n; else out.problems.push(key);
        break;
      case PARAM.durationMs:
        if (okNum && n > 0) out.edits.durationMs = n; else out.problems.push(key);
        break;
      default: out.problems.push(key);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Text <-> base64url, deflated when the platform can (CompressionStream: browsers since 2023, Node 18+)

export async function packText(text: string): Promise<string> {
  const bytes = new TextEncoder().encode(text);
  if (typeof CompressionStream === 'function') {
    try {
      return 'z.' + toBase64Url(await pipe(bytes, new CompressionStream('deflate-raw')));
    } catch { /* fall through to plain */ }
  }
  return 'b.' + toBase64Url(bytes);
}

export async function unpackText(s: string): Promise<string> {
  if (s.startsWith('b.')) return new TextDecoder('utf-8', { fatal: true }).decode(fromBase64Url(s.slice(2)));
  if (s.startsWith('z.')) {
    const raw = await pipe(fromBase64Url(s.slice(2)), new DecompressionStream('deflate-raw'));
    return new TextDecoder('utf-8', { fatal: true }).decode(raw);
  }
  throw new Error('unknown text encoding');
}

async function pipe<W>(input: NoInfer<W>, t: { readable: ReadableStream<Uint8Array>; writable: WritableStream<W> }): Promise<Uint8Array> {
  const w = t.writable.getWriter();
  const done = (async () => {
    const chunks: Uint8Array[] = [];
    const r = t.readable.getReader();
    for (;;) {
      const { value, done: end } = await r.read();
      if (end) break;
      chunks.push(value);
    }
    return chunks;
  })();
  await w.write(input);
  await w.close();
  const chunks = await done;
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export function toBase64Url(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i] << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    s += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
    if (i + 1 < b.length) s += B64[(n >> 6) & 63];
    if (i + 2 < b.length) s += B64[n & 63];
  }
  return s;
}

export function fromBase64Url(s: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) throw new Error('not base64url');
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    const c = [0, 1, 2, 3].map((k) => (i + k < s.length ? B64.indexOf(s[i + k]) : 0));
    const n = (c[0] << 18) | (c[1] << 12) | (c[2] << 6) | c[3];
    out[o++] = (n >> 16) & 255;
    if (i + 2 < s.length) out[o++] = (n >> 8) & 255;
    if (i + 3 < s.length) out[o++] = n & 255;
  }
  return out.subarray(0, o);
}
