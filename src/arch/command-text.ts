/**
 * Human-readable view of SMMUv3 commands: `explainCommand` (text that reads like the spec),
 * `explainJson` (the same as a JSON-able object) and `parseEncodeSpec` (the `--encode` syntax).
 * Not on any hot path. No Node imports (runs in the browser explorer too).
 */
import { CERROR_NAMES, type SmmuFeatures } from './registers.js';
import {
  COMMAND_DEFS, CommandSyntaxError, FIELD, OP, bitList, checkCommand,
  decodeCommand, encodeCommand, formatBits, opcodeByName, isImpDefOpcode, reservedBitsSet,
  tgBytes, toDwords, toHex32, type CheckOptions, type CommandDef, type FieldDef, type FieldValue,
} from './commands.js';

export { CommandSyntaxError } from './commands.js';

export interface ExplainOptions extends CheckOptions {
  /** Word offset of the command in `w` (default 0). */
  off?: number;
}

const TG_NAMES = ['none', '4K', '16K', '64K'] as const;
const CS_NAMES = ['SIG_NONE', 'SIG_IRQ', 'SIG_SEV', 'Reserved'] as const;
const MSH_NAMES = [
  'Non-shareable', 'Reserved (treated as Non-shareable)', 'Outer Shareable', 'Inner Shareable',
] as const;
const RESP_NAMES = ['Failure', 'InvalidRequest', 'Success', 'Reserved'] as const;

function bitsLabel(f: FieldDef): string {
  return f.msb === f.lsb ? `[${f.lsb}]` : `[${f.msb}:${f.lsb}]`;
}

function hexv(v: FieldValue): string {
  return '0x' + v.toString(16);
}

/** 4096 → "4 KiB", 2^64 → "16 EiB"; exact powers of two get a unit, others hex bytes. */
export function formatBytes(n: bigint): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB'];
  let u = 0;
  let v = n;
  while (v >= 1024n && v % 1024n === 0n && u < units.length - 1) {
    v /= 1024n;
    u++;
  }
  return `${v.toString()} ${units[u]}`;
}

/** MSIAttr uses the STE.MemAttr encoding (VMSAv8 stage-2 MemAttr[3:0], §4.7.3). */
function memAttrName(a: number): string {
  const outer = (a >>> 2) & 3;
  const inner = a & 3;
  if (outer === 0) {
    return ['Device-nGnRnE', 'Device-nGnRE', 'Device-nGRE', 'Device-GRE'][inner];
  }
  const c = ['?', 'Non-cacheable', 'Write-Through', 'Write-Back'];
  if (inner === 0) return 'Reserved';
  return `Normal, Outer ${c[outer]}, Inner ${c[inner]}`;
}

interface Analysis {
  op: number;
  name: string;
  def: CommandDef | undefined;
  fields: Record<string, FieldValue>;
  details: { name: string; bits: string; value: FieldValue; meaning: string }[];
  span: string | undefined;
  effect: string;
  notes: string[];
  reserved: number[];
  err: number;
  reason: string | undefined;
}

function fieldMeaning(
  d: CommandDef, f: FieldDef, v: FieldValue, fields: Record<string, FieldValue>,
  features: SmmuFeatures,
): string {
  const n = typeof v === 'bigint' ? Number(v) : v;
  switch (f) {
    case FIELD.SSec: return n ? 'Secure StreamID' : 'Non-secure StreamID';
    case FIELD.SSV: return n ? 'SubstreamID valid' : 'no SubstreamID (SubstreamID ignored)';
    case FIELD.SubstreamID: return `SubstreamID ${n}`;
    case FIELD.StreamID:
      if (d.op === OP.CMD_CFGI_STE_RANGE && fields.Range === 31) return `StreamID ${n} (ignored by CMD_CFGI_ALL)`;
      return `StreamID ${n}`;
    case FIELD.VMID: return `VMID ${n}`;
    case FIELD.ASID: return `ASID ${n}`;
    case FIELD.Leaf:
      return n ? 'last level only (walk-cache/intermediate entries need not be invalidated)'
        : d.kind === 'cfgi' ? 'also the level-1 descriptor used to reach it'
          : 'all levels, including walk-cache (intermediate) entries';
    case FIELD.NUM: return `NUM+1 = ${n + 1}`;
    case FIELD.SCALE: return `2^SCALE = ${2 ** n}`;
    case FIELD.TTL128: return n ? 'TTL is for 128-bit descriptors (v3.4)' : '64-bit descriptors';
    case FIELD.TTL:
      return n === 0 ? 'any level' : `leaf entries from level ${n} only`;
    case FIELD.TG:
      if (n === 0) return 'no range: a single address, TTL unused';
      if (!features.ril) return `${TG_NAMES[n]} (ignored: SMMU_IDR3.RIL=0)`;
      return `${TG_NAMES[n]} granule: range operation`;
    case FIELD.Range: return n === 31 ? 'all StreamIDs (CMD_CFGI_ALL)' : `2^(Range+1) = ${2 ** (n + 1)} StreamIDs`;
    case FIELD.PrefetchSize: return `2^Size = ${2 ** n} translations`;
    case FIELD.AtcSize: return n >= 52 ? 'everything (Size >= 52)' : `4 KiB * 2^Size = ${formatBytes(4096n << BigInt(n))}`;
    case FIELD.Global: return n ? 'Global Invalidate: all PASIDs' : 'not global';
    case FIELD.PRGIndex: return `Page Request Group ${n}`;
    case FIELD.Resp: return RESP_NAMES[n];
    case FIELD.Ac: return n ? 'retry the transaction' : 'terminate the transaction';
    case FIELD.Ab: return n ? 'on terminate: abort to the device' : 'on terminate: RAZ/WI response';
    case FIELD.STAG: return `stall tag ${n}`;
    case FIELD.CS: return CS_NAMES[n];
    case FIELD.MSH: return MSH_NAMES[n];
    case FIELD.MSIAttr: return memAttrName(n);
    case FIELD.MSIData: return `MSI payload ${n}`;
    case FIELD.MSIAddress: return v === 0n ? 'no MSI write' : `MSI write to PA ${hexv(v)}`;
    case FIELD.AddressVA:
      return d.op === OP.CMD_ATC_INV ? 'untranslated address (VA/IPA) [63:12]' : 'VA[63:12]';
    case FIELD.AddressPA: return d.kind === 'dpti' ? 'PA[55:12]' : 'IPA[55:12]';
    default: return '';
  }
}

/** What the command covers, in one line (address range, StreamIDs...). */
function spanOf(d: CommandDef, fl: Record<string, FieldValue>, features: SmmuFeatures): string | undefined {
  const num = (k: string): number => Number(fl[k] ?? 0);
  const addr = (fl.Address as bigint | undefined) ?? 0n;
  const space = d.fields.includes(FIELD.AddressPA) ? (d.kind === 'dpti' ? 'PA' : 'IPA') : 'VA';
  if (d.rangeTlbi) {
    const tg = num('TG');
    if (tg !== 0 && features.ril) {
      const granules = BigInt(num('NUM') + 1) << BigInt(num('SCALE'));
      const bytes = granules * BigInt(tgBytes(tg));
      const lvl = num('TTL') === 0 ? '' : `, level-${num('TTL')} leaves only`;
      return `(NUM+1)*2^SCALE = ${granules} x ${TG_NAMES[tg]} granule${granules === 1n ? '' : 's'} = ${formatBytes(bytes)}: ${space} ${hexv(addr)}..${hexv(addr + bytes - 1n)}${lvl}`;
    }
    if (d.fields.includes(FIELD.AddressVA) || d.fields.includes(FIELD.AddressPA)) {
      return `entries covering ${space} ${hexv(addr)} (low bits ignored according to the entry size)`;
    }
  }
  switch (d.op) {
    case OP.CMD_CFGI_STE_RANGE: {
      const r = num('Range');
      if (r === 31) return 'all StreamIDs of this Security state, plus all VMS caches (CMD_CFGI_ALL)';
      const n = 2 ** (r + 1);
      const base = Math.floor(num('StreamID') / n) * n;
      return `${n} StreamIDs 0x${base.toString(16)}..0x${(base + n - 1).toString(16)}`;
    }
    case OP.CMD_ATC_INV: {
      const s = num('Size');
      if (s >= 52) return `all ATC entries of StreamID ${num('StreamID')}${num('SSV') ? ` SubstreamID ${num('SubstreamID')}` : ''}`;
      const bytes = 4096n << BigInt(s);
      const base = addr & ~(bytes - 1n);
      return `${formatBytes(bytes)}: 0x${base.toString(16)}..0x${(base + bytes - 1n).toString(16)} (aligned to the span)`;
    }
    case OP.CMD_PREFETCH_ADDR:
      return `${2 ** num('Size')} translations from VA ${hexv(addr)}`;
    case OP.CMD_SYNC: {
      const cs = num('CS');
      if (cs === 1) {
        const msi = fl.MSIAddress as bigint;
        if (!features.msi || msi === 0n) return 'on completion: wired interrupt (no MSI write)';
        return `on completion: MSI write of 0x${num('MSIData').toString(16)} to PA ${hexv(msi)}`;
      }
      if (cs === 2) return features.sev ? 'on completion: WFE wake-up event (SEV)' : 'on completion: nothing (SMMU_IDR0.SEV=0: SIG_SEV acts as SIG_NONE)';
      if (cs === 0) return 'on completion: nothing signalled (software polls CMDQ_CONS)';
      return undefined;
    }
    default:
      return undefined;
  }
}

function analyze(w: Uint32Array, features: SmmuFeatures, opts: ExplainOptions): Analysis {
  const off = opts.off ?? 0;
  const dec = decodeCommand(w, off);
  const d = COMMAND_DEFS[dec.op];
  const chk = checkCommand(w, off, features, opts);
  const notes: string[] = [];
  const details: Analysis['details'] = [];
  let span: string | undefined;
  let effect: string;
  let reserved: number[] = [];
  if (d === undefined) {
    effect = isImpDefOpcode(dec.op)
      ? 'IMPLEMENTATION DEFINED opcode (0x80-0x8F); this model implements none.'
      : 'Reserved opcode.';
  } else {
    effect = dec.name === 'CMD_CFGI_ALL'
      ? 'Invalidates all cached STEs, CDs and L1 descriptors of this Security state and all VMS caches; StreamID is ignored (§4.3.6). Recommended before TLB invalidation when resetting.'
      : d.effect;
    for (const f of d.fields) {
      const v = dec.fields[f.name];
      details.push({ name: f.name, bits: bitsLabel(f), value: v, meaning: fieldMeaning(d, f, v, dec.fields, features) });
    }
    span = spanOf(d, dec.fields, features);
    reserved = bitList(reservedBitsSet(w, off));
    if (reserved.length > 0 && opts.strictReserved !== true) {
      notes.push(`reserved bits ${formatBits(reserved)} are non-zero: ignored here (detecting them is optional, §4.1.5; --strict-reserved makes them CERROR_ILL)`);
    }
    const vmid = dec.fields.VMID;
    if (typeof vmid === 'number' && vmid > 0xff && !features.vmid16) {
      notes.push('VMID[15:8] non-zero with 8-bit VMIDs (SMMU_IDR0.VMID16=0): RES0, not illegal; the command need not affect any entry');
    }
    const asid = dec.fields.ASID;
    if (typeof asid === 'number' && asid > 0xff && !features.asid16) {
      notes.push('ASID[15:8] non-zero with 8-bit ASIDs (SMMU_IDR0.ASID16=0): RES0, not illegal; the command need not affect any entry');
    }
    if (d.kind === 'tlbi-nh' && typeof vmid === 'number' && vmid !== 0 && !features.s2p) {
      notes.push('stage 2 not implemented (SMMU_IDR0.S2P=0): VMID is RES0; non-zero means an UNKNOWN VMID or no invalidation');
    }
    if (d.rangeTlbi && !features.ril && (Number(dec.fields.TG) | Number(dec.fields.NUM) | Number(dec.fields.SCALE) | Number(dec.fields.TTL)) !== 0) {
      notes.push('range invalidation not implemented (SMMU_IDR3.RIL=0): TG/NUM/SCALE/TTL are RES0 and ignored');
    }
    if (dec.op === OP.CMD_SYNC && dec.fields.MSH === 1) {
      notes.push('MSH=0b01 is Reserved and behaves as 0b00 (Non-shareable)');
    }
  }
  return {
    op: dec.op, name: dec.name, def: d, fields: dec.fields, details, span, effect, notes, reserved,
    err: chk.err, reason: chk.err === 0 ? undefined : chk.reason,
  };
}

/**
 * Multi-line, spec-worded explanation of the command at w[off]: name and opcode, the value,
 * each field with its bits, value and meaning, what it covers and invalidates, then "legal" or
 * "CERROR_ILL: <reason>". Never throws.
 */
export function explainCommand(w: Uint32Array, features: SmmuFeatures, opts: ExplainOptions): string {
  const off = opts.off ?? 0;
  const a = analyze(w, features, opts);
  const [dw0, dw1] = toDwords(w, off);
  const out: string[] = [];
  const opHex = '0x' + a.op.toString(16).padStart(2, '0');
  out.push(`${a.name} (opcode ${opHex}${a.name === 'CMD_CFGI_ALL' ? ', CMD_CFGI_STE_RANGE with Range=31' : ''})`);
  const hex = toHex32(w, off);
  out.push(`  value   0x${hex.slice(0, 16)}_${hex.slice(16)}`);
  out.push(`  dwords  dw0 0x${dw0.toString(16).padStart(16, '0')}  dw1 0x${dw1.toString(16).padStart(16, '0')}`);
  if (a.details.length > 0) {
    out.push('  fields:');
    const wName = Math.max(...a.details.map((x) => x.name.length));
    const wBits = Math.max(...a.details.map((x) => x.bits.length));
    const wVal = Math.max(...a.details.map((x) => hexv(x.value).length));
    for (const x of a.details) {
      out.push(`    ${x.name.padEnd(wName)}  ${x.bits.padEnd(wBits)}  ${hexv(x.value).padEnd(wVal)}  ${x.meaning}`.trimEnd());
    }
  } else if (a.def !== undefined) {
    out.push('  fields: none');
  }
  if (a.span !== undefined) out.push(`  covers: ${a.span}`);
  out.push(`  effect: ${a.effect}`);
  for (const n of a.notes) out.push(`  note: ${n}`);
  out.push(a.err === 0 ? '  legal' : `  ${CERROR_NAMES[a.err]}: ${a.reason}`);
  return out.join('\n');
}

/** JSON-able form of a field value: numbers stay numbers, bigints become hex strings. */
function jsonValue(v: FieldValue): number | string {
  return typeof v === 'bigint' ? '0x' + v.toString(16) : v;
}

export interface ExplainJson {
  op: number;
  opcode: string;
  name: string;
  value: string;
  dw0: string;
  dw1: string;
  fields: Record<string, number | string>;
  fieldDetails: { name: string; bits: string; value: number | string; meaning: string }[];
  covers: string | null;
  effect: string;
  notes: string[];
  reservedBits: number[];
  legal: boolean;
  cerror: string;
  reason: string | null;
}

/** The explanation as a plain JSON-able object (bigints as hex strings). Never throws. */
export function explainJson(w: Uint32Array, features: SmmuFeatures, opts: ExplainOptions): ExplainJson {
  const off = opts.off ?? 0;
  const a = analyze(w, features, opts);
  const [dw0, dw1] = toDwords(w, off);
  const fields: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(a.fields)) fields[k] = jsonValue(v);
  return {
    op: a.op,
    opcode: '0x' + a.op.toString(16).padStart(2, '0'),
    name: a.name,
    value: '0x' + toHex32(w, off),
    dw0: '0x' + dw0.toString(16).padStart(16, '0'),
    dw1: '0x' + dw1.toString(16).padStart(16, '0'),
    fields,
    fieldDetails: a.details.map((x) => ({ name: x.name, bits: x.bits, value: jsonValue(x.value), meaning: x.meaning })),
    covers: a.span ?? null,
    effect: a.effect,
    notes: a.notes,
    reservedBits: a.reserved,
    legal: a.err === 0,
    cerror: CERROR_NAMES[a.err],
    reason: a.reason ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// --encode 'CMD_TLBI_NH_VA vmid=5 asid=0x1234 addr=0xffff6000 leaf=1 tg=4k ttl=3'

/** Lower-case aliases → spec field name. A key is accepted only if the command has the field. */
const KEY_ALIASES: Record<string, string> = {
  sid: 'StreamID', streamid: 'StreamID',
  ssid: 'SubstreamID', substreamid: 'SubstreamID', pasid: 'SubstreamID',
  addr: 'Address', address: 'Address', va: 'Address', ipa: 'Address', pa: 'Address',
  msiaddr: 'MSIAddress', msiaddress: 'MSIAddress',
  prgi: 'PRGIndex', prgindex: 'PRGIndex', grpid: 'PRGIndex',
};

const SYMBOLS: Record<string, Record<string, number>> = {
  TG: { none: 0, '4k': 1, '16k': 2, '64k': 3 },
  CS: { none: 0, sig_none: 0, irq: 1, sig_irq: 1, sev: 2, sig_sev: 2 },
  MSH: { nsh: 0, osh: 2, ish: 3 },
  Resp: { failure: 0, invalidrequest: 1, invalid: 1, success: 2 },
};

function parseNumber(s: string): bigint | undefined {
  const t = s.replace(/_/g, '');
  if (/^0x[0-9a-f]+$/i.test(t) || /^0b[01]+$/i.test(t) || /^[0-9]+$/.test(t)) return BigInt(t);
  return undefined;
}

/**
 * Parse `NAME key=value ...` into a 128-bit command. NAME with or without CMD_ (TLBIs also
 * without CMD_TLBI_), any case
 * (CFGI_ALL = CFGI_STE_RANGE range=31). Keys are the spec field names in any case, plus aliases
 * (sid, ssid, addr, msiaddr, prgi); values are decimal, 0x hex or 0b binary; tg also
 * 4k/16k/64k, cs none/irq/sev, msh nsh/osh/ish, resp failure/invalid/success. addr is a byte
 * address and must be 4 KiB aligned. Throws CommandSyntaxError with a one-line message.
 */
export function parseEncodeSpec(text: string): Uint32Array {
  const tokens = text.trim().split(/\s+/).filter((t) => t.length > 0);
  if (tokens.length === 0) throw new CommandSyntaxError('empty command spec: expected e.g. "CMD_TLBI_NH_ASID vmid=1 asid=2"');
  const nameTok = tokens[0];
  const op = opcodeByName(nameTok);
  if (op === undefined) {
    throw new CommandSyntaxError(`unknown command "${nameTok}" (expected a name like CMD_TLBI_NH_VA; see docs/commands.md)`);
  }
  const d = COMMAND_DEFS[op] as CommandDef;
  const isAll = /^(CMD_)?CFGI_ALL$/i.test(nameTok);
  const shown = isAll ? 'CMD_CFGI_ALL' : d.name;
  const byKey = new Map<string, FieldDef>();
  for (const f of d.fields) byKey.set(f.name.toLowerCase(), f);
  const keyList = d.fields.map((f) => f.name.toLowerCase()).join(', ') || 'none';
  const values: Record<string, FieldValue> = {};
  const seen = new Set<string>();
  for (const tok of tokens.slice(1)) {
    const eq = tok.indexOf('=');
    if (eq <= 0 || eq === tok.length - 1) throw new CommandSyntaxError(`expected key=value, got "${tok}"`);
    const key = tok.slice(0, eq).toLowerCase();
    const valText = tok.slice(eq + 1);
    const fname = KEY_ALIASES[key] ?? d.fields.find((f) => f.name.toLowerCase() === key)?.name;
    const f = fname === undefined ? undefined : byKey.get(fname.toLowerCase());
    if (f === undefined) throw new CommandSyntaxError(`unknown key "${key}" for ${shown} (keys: ${keyList})`);
    if (seen.has(f.name)) throw new CommandSyntaxError(`key "${key}" given twice`);
    seen.add(f.name);
    const width = f.msb - f.lsb + 1;
    let v = SYMBOLS[f.name]?.[valText.toLowerCase()] !== undefined
      ? BigInt(SYMBOLS[f.name][valText.toLowerCase()]) : parseNumber(valText);
    if (v === undefined) {
      const sym = SYMBOLS[f.name] ? ` or one of ${Object.keys(SYMBOLS[f.name]).join('/')}` : '';
      throw new CommandSyntaxError(`${key}=${valText}: not a number (decimal, 0x hex or 0b binary${sym})`);
    }
    if (f.shift !== undefined) {
      const align = 1n << BigInt(f.shift);
      const maxBits = width + f.shift;
      if (v % align !== 0n) {
        throw new CommandSyntaxError(`${key}=${valText} must be ${formatBytes(align)} aligned (${f.name} ${bitsLabel(f)} holds address bits [${maxBits - 1}:${f.shift}])`);
      }
      if (v >= (1n << BigInt(maxBits))) {
        throw new CommandSyntaxError(`${key}=${valText} out of range for ${shown} ${f.name}: ${maxBits}-bit address (0..0x${((1n << BigInt(maxBits)) - align).toString(16)})`);
      }
      values[f.name] = v;
    } else {
      const max = (1n << BigInt(width)) - 1n;
      if (v > max) {
        throw new CommandSyntaxError(`${key}=${valText} out of range for ${shown} ${f.name} ${bitsLabel(f)} (0..0x${max.toString(16)})`);
      }
      if (isAll && f === FIELD.Range && v !== 31n) {
        throw new CommandSyntaxError(`${key}=${valText}: CMD_CFGI_ALL has Range=31 (use CMD_CFGI_STE_RANGE)`);
      }
      values[f.name] = Number(v);
    }
  }
  return encodeCommand({ name: isAll ? 'CMD_CFGI_ALL' : d.name, fields: values });
}
