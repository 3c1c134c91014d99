/**
 * Replay of the kernel allocator vectors (/work/shared/kernel-vectors/FORMAT.md) through our
 * allocators, op by op. Pure: no Node imports; the CLI (src/cli/vectors.ts) reads the files.
 *
 * Supported `allocator` values: "arm64-asid" and "kvm-vmid" (FORMAT.md), plus two extensions for
 * our own vectors: "kvm-vmid-legacy" (pre-5.18 update_vmid; ops load/put; result fields vmid, hw,
 * gen, path, changed, rollover, vm_flush, exit_all_cpus; state {gen, next}) and, for "kvm-vmid",
 * ops pin/unpin {vm} with params.pinning = true (pinned-VMID RFC). Optional params:
 * generation_step ("2^16" | "2^bits", ASID), pinning (bool; ASID default true, VMID default false),
 * pinned_writeback (bool, VMID RFC).
 *
 * Comparison: every field present in an expected result (recursively, arrays element-wise) is
 * compared with ours; 64-bit values may be given as decimal strings or numbers. A `warn` array is
 * compared by count only (WARN texts are not specified by FORMAT.md). Fields we produce that the
 * file does not mention are ignored (e.g. no `state` when state_included is false).
 */
import { Arm64AsidAllocator, type AsidGenerationStep } from './mm/asid.js';
import { KvmVmidAllocator } from './kvm/vmid.js';
import { KvmLegacyVmidAllocator } from './kvm/vmid-legacy.js';

export interface Mismatch {
  /** The file name given to replayVectorFile. */
  file: string;
  /** Op index; -1 for `init` and for file-level problems. */
  op: number;
  /** Dotted path of the field, e.g. "state.active[1]"; "file" for a malformed file. */
  field: string;
  expected: unknown;
  got: unknown;
}

/** Stop collecting after this many mismatches (a diverged replay repeats them for every op). */
export const MAX_MISMATCHES_PER_FILE = 100_000;

const MAX_ID = 1 << 26;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIndex(v: unknown, bound: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < bound;
}

class Collector {
  readonly out: Mismatch[] = [];
  full = false;
  constructor(readonly file: string) {}

  add(op: number, field: string, expected: unknown, got: unknown): void {
    if (this.full) return;
    if (this.out.length >= MAX_MISMATCHES_PER_FILE) {
      this.full = true;
      this.out.push({
        file: this.file,
        op,
        field: 'file',
        expected: 'replay within the mismatch cap',
        got: `more than ${MAX_MISMATCHES_PER_FILE} mismatches; replay stopped`,
      });
      return;
    }
    this.out.push({ file: this.file, op, field, expected, got });
  }

  malformed(op: number, what: string): Mismatch[] {
    this.out.push({ file: this.file, op, field: 'file', expected: 'a well-formed kernel vector file', got: what });
    return this.out;
  }
}

function sameScalar(expected: unknown, got: unknown): boolean {
  if (expected === got) return true;
  // 64-bit values: decimal strings in the files, numbers on our side (or the other way round).
  if (typeof expected === 'string' && typeof got === 'number') return expected === String(got);
  if (typeof expected === 'number' && typeof got === 'string') return String(expected) === got;
  return false;
}

function compare(c: Collector, op: number, path: string, expected: unknown, got: unknown): void {
  if (c.full) return;
  if (Array.isArray(expected)) {
    if (!Array.isArray(got)) {
      c.add(op, path, expected, got);
      return;
    }
    const n = Math.max(expected.length, got.length);
    for (let i = 0; i < n; i++) compare(c, op, `${path}[${i}]`, expected[i], got[i]);
    return;
  }
  if (isObj(expected)) {
    if (!isObj(got)) {
      c.add(op, path, expected, got);
      return;
    }
    for (const k of Object.keys(expected)) {
      compare(c, op, path ? `${path}.${k}` : k, expected[k], got[k]);
    }
    return;
  }
  if (!sameScalar(expected, got)) c.add(op, path, expected, got);
}

/** Compare one expected result object with ours; `warn` by count. */
function compareResult(c: Collector, op: number, expected: Obj, got: Obj, warns: string[]): void {
  for (const k of Object.keys(expected)) {
    if (k === 'warn') continue;
    compare(c, op, k, expected[k], got[k]);
  }
  const ew = expected['warn'];
  if (ew !== undefined) {
    const n = Array.isArray(ew) ? ew.length : 1;
    if (n !== warns.length) c.add(op, 'warn', ew, warns);
  } else if (warns.length > 0) {
    c.add(op, 'warn', undefined, warns);
  }
}

function optBool(params: Obj, key: string): boolean | undefined {
  const v = params[key];
  return typeof v === 'boolean' ? v : undefined;
}

/**
 * Replay one vector file (already parsed JSON) and return every difference between the file and
 * our allocator. Never throws: a malformed file is one mismatch with field "file"; an exception
 * from our allocator is a mismatch with field "exception".
 */
export function replayVectorFile(json: unknown, name: string): Mismatch[] {
  const c = new Collector(name);
  if (!isObj(json)) return c.malformed(-1, 'top level is not a JSON object');
  const allocator = json['allocator'];
  const params = json['params'];
  const init = json['init'];
  const ops = json['ops'];
  const results = json['results'];
  if (allocator !== 'arm64-asid' && allocator !== 'kvm-vmid' && allocator !== 'kvm-vmid-legacy') {
    return c.malformed(-1, `unknown allocator ${JSON.stringify(allocator)}`);
  }
  if (!isObj(params)) return c.malformed(-1, 'params is not an object');
  const bits = params['bits'];
  const cpus = params['cpus'];
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 2 || bits > 16) {
    return c.malformed(-1, `params.bits must be an integer in [2, 16], got ${JSON.stringify(bits)}`);
  }
  if (typeof cpus !== 'number' || !Number.isInteger(cpus) || cpus < 1 || cpus > 4096) {
    return c.malformed(-1, `params.cpus must be an integer in [1, 4096], got ${JSON.stringify(cpus)}`);
  }
  for (const k of ['kpti', 'cfg_unmap', 'pinning', 'pinned_writeback']) {
    if (params[k] !== undefined && typeof params[k] !== 'boolean') return c.malformed(-1, `params.${k} must be a boolean`);
  }
  const kpti = optBool(params, 'kpti');
  const cfgUnmap = optBool(params, 'cfg_unmap');
  const pinning = optBool(params, 'pinning');
  const pinnedWriteback = optBool(params, 'pinned_writeback');
  const step = params['generation_step'];
  if (step !== undefined && step !== '2^16' && step !== '2^bits') {
    return c.malformed(-1, `params.generation_step must be "2^16" or "2^bits"`);
  }
  if (!Array.isArray(ops)) return c.malformed(-1, 'ops is not an array');
  if (!Array.isArray(results)) return c.malformed(-1, 'results is not an array');
  if (ops.length !== results.length) {
    return c.malformed(-1, `ops has ${ops.length} entries but results has ${results.length}`);
  }
  if (init !== undefined && !isObj(init)) return c.malformed(-1, 'init is not an object');

  // Validate every op and result before running anything.
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i];
    if (!isObj(o)) return c.malformed(i, `ops[${i}] is not an object`);
    if (!isObj(results[i])) return c.malformed(i, `results[${i}] is not an object`);
    const kind = o['op'];
    const needCpu = (): string | null => (isIndex(o['cpu'], cpus) ? null : `ops[${i}].cpu must be a CPU in [0, ${cpus})`);
    const needId = (k: 'mm' | 'vm'): string | null =>
      isIndex(o[k], MAX_ID) ? null : `ops[${i}].${k} must be an integer in [0, 2^26)`;
    let err: string | null;
    if (allocator === 'arm64-asid') {
      if (kind === 'switch') err = needCpu() ?? needId('mm');
      else if (kind === 'pin' || kind === 'unpin') err = needId('mm');
      else err = `ops[${i}].op ${JSON.stringify(kind)} is not an ASID op (switch, pin, unpin)`;
    } else if (allocator === 'kvm-vmid') {
      if (kind === 'load') err = needCpu() ?? needId('vm');
      else if (kind === 'put') err = needCpu();
      else if (kind === 'pin' || kind === 'unpin') err = needId('vm');
      else err = `ops[${i}].op ${JSON.stringify(kind)} is not a VMID op (load, put, pin, unpin)`;
    } else {
      if (kind === 'load') err = needCpu() ?? needId('vm');
      else if (kind === 'put') err = needCpu();
      else err = `ops[${i}].op ${JSON.stringify(kind)} is not a legacy VMID op (load, put)`;
    }
    if (err) return c.malformed(i, err);
  }

  let opIndex = -1;
  try {
    if (allocator === 'arm64-asid') {
      const a = new Arm64AsidAllocator({
        bits,
        cpus,
        kpti: kpti === true,
        cfgUnmap: cfgUnmap ?? true,
        generationStep: (step as AsidGenerationStep | undefined) ?? '2^16',
        pinning: pinning ?? true,
      });
      if (isObj(init)) {
        const got: Obj = { max_pinned: a.maxPinnedAsids, gen: a.generation };
        if ('state' in init) got['state'] = a.snapshot();
        compareResult(c, -1, init, got, a.warnings.splice(0));
      }
      for (opIndex = 0; opIndex < ops.length && !c.full; opIndex++) {
        const o = ops[opIndex] as Obj;
        const exp = results[opIndex] as Obj;
        let got: Obj;
        if (o['op'] === 'switch') {
          const r = a.checkAndSwitchContext(o['cpu'] as number, o['mm'] as number);
          got = {
            ctxid: String(r.ctxid),
            asid: r.asid,
            gen: r.gen,
            path: r.path,
            changed: r.changed,
            flush: r.flush,
            rollover: r.rollover,
          };
        } else if (o['op'] === 'pin') {
          a.contextGet(o['mm'] as number);
          const p = a.pinResult;
          got = { ret: p.ret, ctxid: String(p.ctxid), refcount: p.refcount, changed: p.changed, rollover: p.rollover };
        } else {
          const mm = o['mm'] as number;
          const freed = a.contextPut(mm);
          got = { refcount: a.pinnedRefcount(mm), freed };
        }
        if ('state' in exp) got['state'] = a.snapshot();
        compareResult(c, opIndex, exp, got, a.warnings.splice(0));
      }
    } else if (allocator === 'kvm-vmid') {
      const v = new KvmVmidAllocator({ bits, cpus, pinning: pinning ?? false, pinnedWriteback: pinnedWriteback ?? false });
      if (isObj(init)) {
        const got: Obj = { ret: v.initRet, gen: v.generation };
        if ('state' in init) got['state'] = v.snapshot();
        compareResult(c, -1, init, got, v.warnings.splice(0));
      }
      for (opIndex = 0; opIndex < ops.length && !c.full; opIndex++) {
        const o = ops[opIndex] as Obj;
        const exp = results[opIndex] as Obj;
        let got: Obj;
        if (o['op'] === 'load') {
          const r = v.kvmArmVmidUpdate(o['cpu'] as number, o['vm'] as number);
          got = {
            vmid: String(r.vmid),
            hw: r.hw,
            gen: r.gen,
            path: r.path,
            changed: r.changed,
            rollover: r.rollover,
            vm_flush: r.vmFlush,
          };
        } else if (o['op'] === 'put') {
          v.kvmArmVmidClearActive(o['cpu'] as number);
          got = { ok: true };
        } else if (o['op'] === 'pin') {
          v.pinnedVmidGet(o['vm'] as number);
          const p = v.pinResult;
          got = { ret: p.ret, vmid: String(p.vmid), refcount: p.refcount, changed: p.changed, rollover: p.rollover };
        } else {
          const vm = o['vm'] as number;
          const freed = v.pinnedVmidPut(vm);
          got = { refcount: v.pinnedRefcount(vm), freed };
        }
        if ('state' in exp) got['state'] = v.snapshot();
        compareResult(c, opIndex, exp, got, v.warnings.splice(0));
      }
    } else {
      const l = new KvmLegacyVmidAllocator({ bits, cpus });
      if (isObj(init)) {
        const got: Obj = { gen: l.kvmVmidGen };
        if ('state' in init) got['state'] = l.snapshot();
        compareResult(c, -1, init, got, []);
      }
      for (opIndex = 0; opIndex < ops.length && !c.full; opIndex++) {
        const o = ops[opIndex] as Obj;
        const exp = results[opIndex] as Obj;
        let got: Obj;
        if (o['op'] === 'load') {
          const r = l.updateVmid(o['cpu'] as number, o['vm'] as number);
          got = {
            vmid: r.vmid,
            hw: r.hw,
            gen: r.gen,
            path: r.path,
            changed: r.changed,
            rollover: r.rollover,
            vm_flush: r.vmFlush,
            exit_all_cpus: r.exitAllCpus,
          };
        } else {
          l.kvmArmVmidClearActive(o['cpu'] as number);
          got = { ok: true };
        }
        if ('state' in exp) got['state'] = l.snapshot();
        compareResult(c, opIndex, exp, got, []);
      }
    }
  } catch (e) {
    c.add(opIndex, 'exception', 'no exception', e instanceof Error ? e.message : String(e));
  }
  return c.out;
}

/** One mismatch as the CLI prints it: `file: op N: field: expected X, got Y`. */
export function formatMismatch(m: Mismatch): string {
  return `${m.file}: op ${m.op}: ${m.field}: expected ${formatValue(m.expected)}, got ${formatValue(m.got)}`;
}

function formatValue(v: unknown): string {
  if (v === undefined) return '(missing)';
  try {
    return JSON.stringify(v as Json);
  } catch {
    return String(v);
  }
}
