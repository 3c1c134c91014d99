/**
 * `btmsim serve`: the web explorer (dist-web/, built by `npm run build:web`) on a local HTTP
 * server. Static files only: the simulator runs in the browser, in a Web Worker.
 */
import { spawn } from 'node:child_process';
import { existsSync, statSync, createReadStream } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { UserError } from './errors.js';

/** dist-web/ next to dist/ (this file is dist/cli/serve.js). */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../dist-web/', import.meta.url));
export const DEFAULT_PORT = 8377;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.yaml': 'text/yaml; charset=utf-8',
  '.wasm': 'application/wasm',
  '.woff2': 'font/woff2',
};

export function contentType(path: string): string {
  return TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

interface ServeFlags { port?: string; host?: string; open?: string | boolean; dir?: string }

export function parsePort(s: string | undefined): number {
  if (s === undefined) return DEFAULT_PORT;
  if (!/^\d+$/.test(s.trim())) throw new UserError(`--port: expected a port number 0..65535, got "${s}"`);
  const n = Number(s.trim());
  if (n > 65535) throw new UserError(`--port: expected a port number 0..65535, got ${s}`);
  return n;
}

function parseOpen(v: string | boolean | undefined): boolean {
  if (v === undefined || v === false) return false;
  if (v === true) return true;
  const s = v.trim().toLowerCase();
  if (['yes', 'true', '1', 'on'].includes(s)) return true;
  if (['no', 'false', '0', 'off'].includes(s)) return false;
  throw new UserError(`--open: expected yes or no, got "${v}"`);
}

/** Answers GET/HEAD for files under `root`; `/` is index.html. */
export function staticHandler(root: string): (req: IncomingMessage, res: ServerResponse) => void {
  const base = resolve(root);
  return (req, res) => {
    const send = (code: number, text: string, headers: Record<string, string> = {}) => {
      res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', ...headers });
      res.end(req.method === 'HEAD' ? undefined : text + '\n');
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(405, 'method not allowed', { allow: 'GET, HEAD' });
      return;
    }
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    } catch {
      send(400, 'bad request');
      return;
    }
    if (path.includes('\0')) {
      send(400, 'bad request');
      return;
    }
    let file = normalize(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) {
      send(403, 'forbidden');
      return;
    }
    try {
      if (statSync(file).isDirectory()) file = join(file, 'index.html');
    } catch { /* not found below */ }
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch {
      send(404, `not found: ${path}`);
      return;
    }
    const hashed = /[\\/]assets[\\/]/.test(file);
    res.writeHead(200, {
      'content-type': contentType(file),
      'content-length': String(size),
      'x-content-type-options': 'nosniff',
      'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  };
}

/** Starts the server; resolves once it listens (rejects with a UserError if it cannot). */
export function startServer(dir: string, port: number, host: string): Promise<{ server: Server; url: string }> {
  if (!existsSync(join(dir, 'index.html'))) {
    return Promise.reject(new UserError(
      `the web explorer is not built (${join(dir, 'index.html')} is missing): run \`npm run build:web\` (or \`npm run build\`) first`));
  }
  const server = createServer(staticHandler(dir));
  return new Promise((resolvePromise, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new UserError(`--port ${port}: the port is already in use on ${host} (choose another, or --port 0 for any free port)`));
      else if (e.code === 'EACCES') reject(new UserError(`--port ${port}: permission denied (ports below 1024 need privileges)`));
      else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') reject(new UserError(`--host ${host}: not an address of this machine`));
      else reject(new UserError(`cannot listen on ${host}:${port}: ${e.code ?? e.message}`));
    });
    server.listen(port, host, () => {
      const a = server.address();
      const p = typeof a === 'object' && a !== null ? a.port : port;
      const h = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
      resolvePromise({ server, url: `http://${h}:${p}/` });
    });
  });
}

function openBrowser(url: string): void {
  const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(cmd, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => process.stderr.write(`btmsim: could not start ${cmd}; open ${url} yourself\n`));
    child.unref();
  } catch {
    process.stderr.write(`btmsim: could not start ${cmd}; open ${url} yourself\n`);
  }
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the interactive web explorer (dist-web/) on a local HTTP server')
    .option('--port <n>', `TCP port (0: any free port)`, String(DEFAULT_PORT))
    .option('--host <addr>', 'address to listen on (0.0.0.0: every interface)', '127.0.0.1')
    .option('--open [yes|no]', 'open the page in the default browser', 'no')
    .option('--dir <path>', 'serve this directory instead of the built dist-web/')
    .action(async (flags: ServeFlags) => {
      const port = parsePort(flags.port);
      const open = parseOpen(flags.open);
      const dir = flags.dir !== undefined ? resolve(flags.dir) : DEFAULT_WEB_DIR;
      const host = flags.host ?? '127.0.0.1';
      const { server, url } = await startServer(dir, port, host);
      process.stdout.write(`btmsim explorer: ${url}\n(serving ${dir}; Ctrl+C stops)\n`);
      if (open) openBrowser(url);
      const stop = () => {
        server.closeAllConnections();
        server.close(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
