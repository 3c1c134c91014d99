import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, built, root, startServe } from './serve-helper.js';

// `btmsim serve` as a user runs it.
describe.runIf(built)('btmsim serve', () => {
  let child: ChildProcess;
  let url: string;
  beforeAll(async () => { ({ child, url } = await startServe()); }, 20_000);
  afterAll(() => { child?.kill(); });

  it('prints its URL on 127.0.0.1 and serves the page with the right content types', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await page.text();
    expect(html).toContain('btmsim explorer');
    const assets = readdirSync(join(root, 'dist-web/assets'));
    const js = assets.find((f) => f.endsWith('.js'))!;
    const css = assets.find((f) => f.endsWith('.css'))!;
    const r1 = await fetch(new URL(`assets/${js}`, url));
    expect(r1.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(r1.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(new URL(`assets/${css}`, url))).headers.get('content-type')).toBe('text/css; charset=utf-8');
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(Buffer.byteLength(html));
  });

  it('answers 404 for missing files, 405 for other methods, and never leaves dist-web/', async () => {
    expect((await fetch(new URL('nope.js', url))).status).toBe(404);
    expect((await fetch(url, { method: 'POST' })).status).toBe(405);
    for (const p of ['/../package.json', '/%2e%2e/package.json', '/assets/..%2f..%2fpackage.json']) {
      const r = await fetch(url.replace(/\/$/, '') + p);
      expect([403, 404], p).toContain(r.status);
      expect(await r.text()).not.toContain('"name": "btmsim"');
    }
  });

  it('a taken port or a missing build is a one-line error, exit 2', async () => {
    const port = Number(new URL(url).port);
    const taken = spawnSync(process.execPath, [bin, 'serve', '--port', String(port)], { encoding: 'utf8', cwd: root, timeout: 10_000 });
    expect(taken.status).toBe(2);
    expect(taken.stderr).toMatch(/^btmsim: --port \d+: the port is already in use/);
    expect(taken.stderr.trim().split('\n')).toHaveLength(1);
    const missing = spawnSync(process.execPath, [bin, 'serve', '--port', '0', '--dir', join(root, 'no-such-dir')], { encoding: 'utf8', cwd: root, timeout: 10_000 });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('npm run build:web');
    const bad = spawnSync(process.execPath, [bin, 'serve', '--port', 'http'], { encoding: 'utf8', cwd: root, timeout: 10_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--port: expected a port number');
  });

  it('--host binds where asked (a free port chosen by the test)', async () => {
    const port = await new Promise<number>((res) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
    });
    const other = spawn(process.execPath, [bin, 'serve', '--port', String(port), '--host', '127.0.0.1', '--open', 'no'], { cwd: root });
    try {
      const line = await new Promise<string>((res, rej) => {
        other.stdout.on('data', (d: Buffer) => res(d.toString()));
        other.on('exit', (c) => rej(new Error(`exit ${c}`)));
      });
      expect(line).toContain(`http://127.0.0.1:${port}/`);
    } finally {
      other.kill();
    }
  });
});
