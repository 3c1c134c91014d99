import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The built CLI and page, as a user runs them (`npm test` builds dist/ and dist-web/ first). */
export const root = resolve(import.meta.dirname, '../..');
export const bin = join(root, 'dist/cli/main.js');
export const built = existsSync(bin) && existsSync(join(root, 'dist-web/index.html'));

/** Starts `btmsim serve --port 0 …`; resolves with the URL it prints. */
export function startServe(args: string[] = []): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((res, rej) => {
    let out = '';
    const timer = setTimeout(() => rej(new Error(`btmsim serve printed no URL: ${out}`)), 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /http:\/\/\S+\//.exec(out);
      if (m) { clearTimeout(timer); res({ child, url: m[0] }); }
    });
    child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('exit', (code) => { clearTimeout(timer); rej(new Error(`btmsim serve exited ${code}: ${out}`)); });
  });
}
