/**
 * `btmsim replay <file>`: replay a trace — btmsim's own JSONL (`btmsim run --record`) or a QEMU
 * `-trace 'smmu*'` log (plain or .xz) — into the model, deterministically; `--stats` only counts
 * what the trace holds; what-if options replay the same trace on other hardware and policy and
 * report the difference. docs/traces.md describes both formats and every option.
 *
 * Reading is streamed (constant memory whatever the length): plain files through fs streams,
 * `.xz` (detected by its magic bytes) decompressed by the `xz-decompress` package (xz-embedded in
 * WebAssembly: no native code, nothing downloaded at install), run in a worker thread so that
 * decompression overlaps parsing and modelling. `--xz system` pipes through the system `xz -dc`
 * instead when there is one (optional; the package path is the default and always works).
 */
import { createReadStream, openSync, readSync, closeSync, statSync, writeSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { isAscii } from 'node:buffer';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type { Command } from 'commander';
import { UserError } from './errors.js';
import { POLICY_NAMES, type PolicyName } from '../workload/schema.js';
import type { TlbGeometry } from '../hw/tlb/tlb-api.js';
import { TraceError } from '../workload/trace/errors.js';
import { forEachLine } from '../workload/trace/lines.js';
import { TracePipeline, type PipelineResult, type TraceFormat } from '../workload/trace/pipeline.js';
import type { ReplayOptions } from '../workload/trace/replay.js';
import { replayOutput, replayText } from '../workload/trace/report.js';
import { jsonlStatsText, statsText } from '../workload/trace/stats.js';
import { defaultSyntheticKvm } from '../workload/trace/whatif.js';

export type XzMode = 'wasm' | 'system' | 'auto';

const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];

/** True when the file starts with the xz magic bytes. */
export function isXzFile(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(6);
    const n = readSync(fd, b, 0, 6, 0);
    return n === 6 && XZ_MAGIC.every((x, i) => b[i] === x);
  } finally {
    closeSync(fd);
  }
}

let systemXz: boolean | undefined;
/** Whether `xz` can be run (checked once). */
export function systemXzAvailable(): boolean {
  if (systemXz === undefined) {
    try {
      systemXz = spawnSync('xz', ['--version'], { stdio: 'ignore' }).status === 0;
    } catch {
      systemXz = false;
    }
  }
  return systemXz;
}

/**
 * The decompressed bytes of `path` as text chunks: ASCII chunks (QEMU traces are ASCII) are
 * turned into strings by the fast latin1 path, and from the first chunk with another byte on,
 * everything goes through a streaming UTF-8 decoder.
 */
export async function* openTraceText(path: string, xz: XzMode = 'wasm'): AsyncGenerator<string> {
  let utf8: InstanceType<typeof TextDecoder> | null = null;
  for await (const c of openTraceChunks(path, xz)) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    if (utf8 === null && isAscii(b)) { yield b.toString('latin1'); continue; }
    utf8 ??= new TextDecoder('utf-8');
    yield utf8.decode(b, { stream: true });
  }
  if (utf8 !== null) {
    const rest = utf8.decode();
    if (rest.length > 0) yield rest;
  }
}

/**
 * The decompressed bytes of `path` as an async iterable of chunks. Throws UserError for a file
 * that cannot be read.
 */
export function openTraceChunks(path: string, xz: XzMode = 'wasm'): AsyncIterable<Uint8Array> {
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new UserError(`${path}: is a directory`);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!isXzFile(path)) return createReadStream(path, { highWaterMark: 1 << 20 });
  const mode = xz === 'auto' ? (systemXzAvailable() ? 'system' : 'wasm') : xz;
  if (mode === 'system') {
    if (!systemXzAvailable()) throw new UserError('--xz system: no xz program found on PATH');
    return systemXzChunks(path);
  }
  return workerChunks(path);
}

// ---- the decoder in a worker thread, overlapping decompression with parsing and modelling

/** Decompressed bytes per message, and messages in flight (bounded: constant memory). */
const WORKER_CHUNK = 1 << 20;
const WORKER_CREDITS = 4;

interface WorkerMsg { chunk?: Uint8Array; done?: boolean; error?: string }

/**
 * The worker's code (CommonJS, run with `eval`, so it works from the compiled CLI and from the
 * TypeScript sources alike): xz-decompress on a file stream, output gathered into 1 MiB
 * messages, at most WORKER_CREDITS unacknowledged.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createReadStream } = require('node:fs');
const { Readable } = require('node:stream');
const { XzReadableStream } = require(workerData.xzPath);
let credits = workerData.credits;
let wake = null;
parentPort.on('message', (m) => { if (m === 'ack') { credits++; const w = wake; wake = null; if (w) w(); } });
(async () => {
  let buf = new Uint8Array(workerData.chunk);
  let size = 0;
  const flush = async () => {
    if (size === 0) return;
    while (credits <= 0) await new Promise((r) => { wake = r; });
    credits--;
    const out = size === buf.length ? buf : buf.slice(0, size);
    parentPort.postMessage({ chunk: out }, [out.buffer]);
    buf = new Uint8Array(workerData.chunk);
    size = 0;
  };
  try {
    const s = new XzReadableStream(Readable.toWeb(createReadStream(workerData.path, { highWaterMark: 1 << 20 })));
    for await (const c of s) {
      let off = 0;
      while (off < c.length) {
        const n = Math.min(c.length - off, buf.length - size);
        buf.set(c.subarray(off, off + n), size);
        size += n;
        off += n;
        if (size === buf.length) await flush();
      }
    }
    await flush();
    parentPort.postMessage({ done: true });
  } catch (e) {
    parentPort.postMessage({ error: 'xz decompression failed (' + ((e && e.message) || String(e)) + ')' });
  }
})();
`;

async function* workerChunks(path: string): AsyncGenerator<Uint8Array> {
  const xzPath = createRequire(import.meta.url).resolve('xz-decompress');
  const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, xzPath, chunk: WORKER_CHUNK, credits: WORKER_CREDITS } });
  const queue: WorkerMsg[] = [];
  let wake: (() => void) | null = null;
  const push = (m: WorkerMsg): void => { queue.push(m); const f = wake; wake = null; f?.(); };
  w.on('message', (m: WorkerMsg) => push(m));
  w.on('error', (e: Error) => push({ error: e.message }));
  w.on('exit', (code) => push(code === 0 ? { done: true } : { error: `decoder thread exited with ${code}` }));
  try {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((r) => { wake = r; });
      const m = queue.shift()!;
      if (m.error !== undefined) throw new UserError(`${path}: ${m.error}`);
      if (m.done === true) return;
      if (m.chunk !== undefined) {
        yield m.chunk;
        w.postMessage('ack');
      }
    }
  } finally {
    await w.terminate();
  }
}

async function* systemXzChunks(path: string): AsyncGenerator<Uint8Array> {
  const p = spawn('xz', ['-dc', '--', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => { if (err.length < 500) err += d.toString(); });
  const done = new Promise<number>((res) => p.on('close', (code) => res(code ?? 1)));
  try {
    for await (const c of p.stdout) yield c as Buffer;
  } finally {
    if (p.exitCode === null) p.kill();
  }
  const code = await done;
  if (code !== 0) throw new UserError(`${path}: xz -dc failed (${err.trim() || `exit ${code}`})`);
}

// ---------------------------------------------------------------------------------------------
// Options

export interface ReplayFlags {
  format?: string;
  stats?: boolean;
  json?: boolean;
  skipBad?: boolean;
  policy?: string;
  smmuTlb?: string;
  ril?: string;
  btm?: string;
  kvmVms?: string;
  kvmRate?: string;
  kvmFlushRate?: string;
  kvmVmidBase?: string;
  kvmRolloverRate?: string;
  seed?: string;
  xz?: string;
  convert?: string;
  out?: string;
}

function onOff(flag: string, v: string | undefined): 'on' | 'off' | undefined {
  if (v === undefined) return undefined;
  const s = v.trim().toLowerCase();
  if (s === 'on' || s === '1' || s === 'true') return 'on';
  if (s === 'off' || s === '0' || s === 'false') return 'off';
  throw new UserError(`${flag}: expected on or off, got "${v}"`);
}

function number(flag: string, v: string | undefined, min: number, max: number, int: boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v.trim());
  if (!Number.isFinite(n) || (int && !Number.isInteger(n)) || n < min || n > max) {
    throw new UserError(`${flag}: expected ${int ? 'an integer' : 'a number'} in ${min}..${max}, got "${v}"`);
  }
  return n;
}

/** `--smmu-tlb entries,ways[,lru|rr|random]` */
export function parseTlbGeometry(v: string | undefined): TlbGeometry | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(',').map((s) => s.trim());
  if (parts.length < 2 || parts.length > 3) throw new UserError(`--smmu-tlb: expected entries,ways[,policy], got "${v}"`);
  const entries = number('--smmu-tlb entries', parts[0], 1, 2 ** 26, true)!;
  const ways = number('--smmu-tlb ways', parts[1], 1, 2 ** 26, true)!;
  const policy = (parts[2] ?? 'lru') as TlbGeometry['policy'];
  if (!['lru', 'rr', 'random'].includes(policy)) throw new UserError(`--smmu-tlb: policy must be lru, rr or random, got "${parts[2]}"`);
  if (entries % ways !== 0) throw new UserError(`--smmu-tlb: ways (${ways}) must divide entries (${entries})`);
  const sets = entries / ways;
  if ((sets & (sets - 1)) !== 0) throw new UserError(`--smmu-tlb: entries/ways (the number of sets, ${sets}) must be a power of two`);
  return { entries, ways, policy };
}

/** The replays to run: as recorded, plus one what-if when any what-if option is given. */
export function replayRuns(f: ReplayFlags): ReplayOptions[] {
  let policy: PolicyName | undefined;
  if (f.policy !== undefined) {
    if (!(POLICY_NAMES as readonly string[]).includes(f.policy)) {
      throw new UserError(`--policy: unknown policy "${f.policy}" (expected one of: ${POLICY_NAMES.join(', ')})`);
    }
    policy = f.policy as PolicyName;
  }
  const tlb = parseTlbGeometry(f.smmuTlb);
  const ril = onOff('--ril', f.ril);
  const btm = onOff('--btm', f.btm);
  const vms = number('--kvm-vms', f.kvmVms, 0, 4096, true);
  const seed = number('--seed', f.seed, 0, 0xffffffff, true) ?? 1;
  const kvmGiven = f.kvmRate !== undefined || f.kvmFlushRate !== undefined || f.kvmVmidBase !== undefined || f.kvmRolloverRate !== undefined;
  if (kvmGiven && vms === undefined) throw new UserError('--kvm-rate, --kvm-flush-rate, --kvm-rollover-rate and --kvm-vmid-base need --kvm-vms');
  const whatIf: ReplayOptions = {};
  const label: string[] = [];
  if (policy !== undefined) { whatIf.policy = policy; label.push(policy); }
  if (btm !== undefined) { whatIf.btm = btm === 'on'; label.push(`btm ${btm}`); }
  if (ril !== undefined) { whatIf.ril = ril; label.push(`ril ${ril}`); }
  if (tlb !== undefined) { whatIf.tlb = tlb; label.push(`tlb ${tlb.entries}x${tlb.ways}`); }
  if (vms !== undefined && vms > 0) {
    whatIf.kvm = defaultSyntheticKvm({
      vms, seed,
      ...(f.kvmRate !== undefined ? { unmapPerMs: number('--kvm-rate', f.kvmRate, 0, 1e6, false)! } : {}),
      ...(f.kvmFlushRate !== undefined ? { flushPerMs: number('--kvm-flush-rate', f.kvmFlushRate, 0, 1e6, false)! } : {}),
      ...(f.kvmVmidBase !== undefined ? { vmidBase: number('--kvm-vmid-base', f.kvmVmidBase, 0, 65535, true)! } : {}),
      ...(f.kvmRolloverRate !== undefined ? { rolloverPerS: number('--kvm-rollover-rate', f.kvmRolloverRate, 0, 1e6, false)! } : {}),
    });
    label.push(`kvm ${vms} VMs`);
  }
  const runs: ReplayOptions[] = [{ label: 'as recorded' }];
  if (label.length > 0) runs.push({ ...whatIf, label: `what-if: ${label.join(', ')}` });
  return runs;
}

// ---------------------------------------------------------------------------------------------
// Running

export interface ReplayFileOptions extends ReplayFlags {
  /** Where skipped-line warnings go (default: stderr). */
  warn?: (s: string) => void;
}

/** Read `file` once and run the pipeline. Errors come out as UserError `file:line: reason`. */
export async function replayFile(file: string, f: ReplayFileOptions = {}): Promise<PipelineResult> {
  let format: TraceFormat | undefined;
  if (f.format !== undefined && f.format !== 'auto') {
    if (f.format !== 'jsonl' && f.format !== 'qemu') throw new UserError(`--format: expected jsonl, qemu or auto, got "${f.format}"`);
    format = f.format;
  }
  const xz = (f.xz ?? process.env.BTMSIM_XZ ?? 'wasm') as XzMode;
  if (!['wasm', 'system', 'auto'].includes(xz)) throw new UserError(`--xz: expected wasm, system or auto, got "${xz}"`);
  const runs = f.stats === true ? [] : replayRuns(f);
  const warn = f.warn ?? ((s: string) => { process.stderr.write(s + '\n'); });
  let shown = 0;
  let convertFd = -1;
  let buf = '';
  if (f.convert !== undefined) {
    try { convertFd = openSync(f.convert, 'w'); } catch (e) {
      throw new UserError(`--convert: cannot write ${f.convert}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  const p = new TracePipeline({
    format, statsOnly: f.stats === true, runs, skipBad: f.skipBad === true,
    onBad: (e) => { if (shown++ < 5) warn(`btmsim: skipped ${e.located(file)}`); },
    ...(convertFd >= 0 ? {
      jsonlSink: (line: string) => {
        buf += line + '\n';
        if (buf.length > 1 << 20) { writeSync(convertFd, buf); buf = ''; }
      },
    } : {}),
  });
  try {
    await forEachLine(openTraceText(file, xz), (l) => p.push(l));
    const r = p.finish();
    if (convertFd >= 0 && buf.length > 0) writeSync(convertFd, buf);
    return r;
  } catch (e) {
    if (e instanceof TraceError) throw new UserError(e.located(file));
    throw e;
  } finally {
    if (convertFd >= 0) closeSync(convertFd);
  }
}

export function registerReplay(program: Command): void {
  program
    .command('replay <file>')
    .description('replay a trace (btmsim JSONL, or a QEMU -trace smmu* log, plain or .xz) into the model; --stats only counts what it holds; what-if options compare with other hardware and policy')
    .option('--format <fmt>', 'jsonl, qemu or auto (detected from the first line)', 'auto')
    .option('--stats', 'only count what the trace contains (no modelling)')
    .option('--json', 'print JSON instead of text')
    .option('--skip-bad', 'skip malformed lines (counted) instead of stopping at the first')
    .option('--policy <name>', `what-if: replay under a coordination policy (${POLICY_NAMES.join(', ')})`)
    .option('--smmu-tlb <entries,ways[,policy]>', 'what-if: SMMU TLB geometry (QEMU\'s own capacity flushes are then not applied)')
    .option('--ril <on|off>', 'what-if: SMMU_IDR3.RIL; off re-encodes range TLBIs as one command per granule')
    .option('--btm <on|off>', 'what-if: SMMU_IDR0.BTM and the driver\'s FEAT_BTM (CR2.PTM=0)')
    .option('--kvm-vms <n>', 'what-if: a synthetic KVM with n VMs beside the traced system (VMIDs from 1)')
    .option('--kvm-rate <r>', 'synthetic KVM: stage-2 page unmaps (IPAS2E1IS + VMALLE1IS) per ms per VM', '1')
    .option('--kvm-flush-rate <r>', 'synthetic KVM: whole-VM flushes (VMALLS12E1IS) per ms per VM', '0.05')
    .option('--kvm-rollover-rate <r>', 'synthetic KVM: VMID rollovers (ALLE1IS) per second (default 0)')
    .option('--kvm-vmid-base <n>', 'synthetic KVM: first VMID (KVM allocates from 1)')
    .option('--seed <n>', 'seed of the synthetic KVM', '1')
    .option('--xz <mode>', 'how to decompress .xz: wasm (xz-decompress package, the default; or $BTMSIM_XZ), system (xz -dc), auto')
    .option('--convert <out.jsonl>', 'also write the events as a btmsim JSONL trace (e.g. a QEMU trace converted)')
    .option('--out <file>', 'also write the JSON output to this file')
    .action(async (file: string, flags: ReplayFlags, cmd: Command) => {
      // Defaults of the KVM knobs must not, alone, turn on a what-if.
      const src = (k: string): string | undefined => cmd.getOptionValueSource(k);
      const f: ReplayFlags = { ...flags };
      if (src('kvmRate') === 'default') delete f.kvmRate;
      if (src('kvmFlushRate') === 'default') delete f.kvmFlushRate;
      if (f.kvmVms === undefined && src('seed') === 'default') delete f.seed;
      const r = await replayFile(file, f);
      let json: string;
      let text: string;
      if (f.stats === true) {
        const s = r.stats ?? r.jsonlStats;
        json = JSON.stringify(s, null, 2) + '\n';
        text = r.stats !== null ? statsText(r.stats, file) : jsonlStatsText(r.jsonlStats!, file);
      } else {
        const out = replayOutput(file, r);
        json = JSON.stringify(out, null, 2) + '\n';
        text = replayText(out);
      }
      if (r.badLines > 0) process.stderr.write(`btmsim: ${r.badLines} malformed lines skipped\n`);
      if (f.out !== undefined) {
        try { writeSyncFile(f.out, json); } catch (e) {
          throw new UserError(`--out: cannot write ${f.out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
      }
      process.stdout.write(f.json === true ? json : text);
    });
}

function writeSyncFile(path: string, s: string): void {
  const fd = openSync(path, 'w');
  try { writeSync(fd, s); } finally { closeSync(fd); }
}
