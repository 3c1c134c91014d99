/**
 * `btmsim explain`: decode one SMMUv3 command (or build one with --encode) and say what it does
 * and whether it would stop the queue with CERROR_ILL on the given SMMU.
 *
 * Exit codes: 0 whenever the input was well formed, including commands that are illegal on the
 * chosen SMMU (explaining a CERROR_ILL is a successful decode, not an error); 2 (UserError) for
 * malformed input or options.
 */
import type { Command } from 'commander';
import { UserError } from './errors.js';
import { defaultFeatures, featuresFromIdr, type SmmuFeatures } from '../arch/registers.js';
import { CommandSyntaxError, fromHex32, toDwords, toHex32 } from '../arch/commands.js';
import { explainCommand, explainJson, parseEncodeSpec } from '../arch/command-text.js';

const BOOL_KEYS = [
  's1p', 's2p', 'hyp', 'btm', 'ats', 'pri', 'msi', 'sev', 'asid16', 'vmid16', 'vmw', 'termModel',
  'rme', 'ril', 'mpam', 'dpt', 'ds',
] as const satisfies readonly (keyof SmmuFeatures)[];
const NUM_KEYS = { stallModel: 3, archMinor: 4 } as const;
const IDR_KEYS = ['idr0', 'idr3', 'idr5', 'aidr'] as const;

/**
 * `--features s1p=0,ril=0,...`: overrides on defaultFeatures(). Keys are SmmuFeatures names
 * (any case; stall_model/arch_minor also accepted); booleans take 0/1/true/false. If any of
 * idr0/idr3/idr5/aidr=<hex> is given, the base is featuresFromIdr() of those registers (ones not
 * given read as 0) instead of the defaults, and the other keys still override it.
 */
export function parseFeatures(list: string | undefined): SmmuFeatures {
  if (list === undefined || list.trim() === '') return defaultFeatures();
  const pairs: [string, string][] = [];
  for (const item of list.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UserError(`explain: --features: expected key=value, got "${item}"`);
    pairs.push([item.slice(0, eq).trim().toLowerCase().replace(/_/g, ''), item.slice(eq + 1).trim()]);
  }
  const num = (k: string, v: string, max: number): number => {
    const t = v.replace(/_/g, '');
    const n = /^0x[0-9a-f]+$/i.test(t) || /^[0-9]+$/.test(t) ? Number(t) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > max) {
      throw new UserError(`explain: --features: ${k}=${v} out of range (0..${max === 0xffffffff ? '0xffffffff' : max})`);
    }
    return n;
  };
  const idr = { idr0: 0, idr3: 0, idr5: 0, aidr: 0 };
  let fromIdr = false;
  for (const [k, v] of pairs) {
    if ((IDR_KEYS as readonly string[]).includes(k)) {
      idr[k as (typeof IDR_KEYS)[number]] = num(k, v, 0xffffffff);
      fromIdr = true;
    }
  }
  const f: SmmuFeatures = fromIdr ? featuresFromIdr(idr) : defaultFeatures();
  for (const [k, v] of pairs) {
    if ((IDR_KEYS as readonly string[]).includes(k)) continue;
    const bk = BOOL_KEYS.find((b) => b.toLowerCase() === k);
    if (bk !== undefined) {
      const lv = v.toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(lv)) f[bk] = true;
      else if (['0', 'false', 'no', 'off'].includes(lv)) f[bk] = false;
      else throw new UserError(`explain: --features: ${k}=${v}: expected 0 or 1`);
      continue;
    }
    const nk = (Object.keys(NUM_KEYS) as (keyof typeof NUM_KEYS)[]).find((n) => n.toLowerCase() === k);
    if (nk !== undefined) {
      f[nk] = num(k, v, NUM_KEYS[nk]);
      continue;
    }
    throw new UserError(`explain: --features: unknown key "${k}" (keys: ${[...BOOL_KEYS, ...Object.keys(NUM_KEYS), ...IDR_KEYS].join(', ')})`);
  }
  return f;
}

interface ExplainCliOptions {
  json?: boolean;
  encode?: string;
  features?: string;
  secureQueue?: boolean;
  strictReserved?: boolean;
}

export function registerExplain(program: Command): Command {
  return program
    .command('explain')
    .description('decode one SMMUv3 command: fields, meaning, and legality (CERROR_ILL) on the given SMMU')
    .argument('[words...]', 'the command: 32 hex digits (the 128-bit value, most significant first), or two 64-bit words dw0 dw1 as a driver dump prints them')
    .option('--json', 'print a JSON object instead of text')
    .option('--encode <spec>', "build a command, e.g. 'CMD_TLBI_NH_VA vmid=5 asid=0x1234 addr=0xffff6000 leaf=1 tg=4k ttl=3'")
    .option('--features <list>', 'SMMU features overriding the defaults, e.g. s1p=0,s2p=1,ril=0,hyp=1,ats=1 (or idr0=0x...,idr3=...,idr5=...,aidr=...)')
    .option('--secure-queue', 'the command is on the Secure Command queue (default: Non-secure)')
    .option('--strict-reserved', 'report non-zero reserved fields as CERROR_ILL (optional in the architecture)')
    .addHelpText('after', `
Input forms (same command both ways):
  btmsim explain 0x00000000ffff6701_1234000500000012     (one 128-bit value, dw1 then dw0; '_' allowed)
  btmsim explain 0x1234000500000012 0x00000000ffff6701   (dw0 dw1, as the driver writes them)
An illegal command is explained with its CERROR_ILL reason and exits 0; malformed input exits 2.`)
    .action((words: string[], opts: ExplainCliOptions, cmd: Command) => {
      const write = cmd.configureOutput().writeOut ?? ((s: string) => process.stdout.write(s));
      const features = parseFeatures(opts.features);
      const chk = { secureQueue: opts.secureQueue === true, strictReserved: opts.strictReserved === true };
      let w: Uint32Array;
      if (opts.encode !== undefined) {
        if (words.length > 0) throw new UserError('explain: give either a command value or --encode, not both');
        try {
          w = parseEncodeSpec(opts.encode);
        } catch (e) {
          if (e instanceof CommandSyntaxError || e instanceof RangeError) {
            throw new UserError(`explain --encode: ${e.message}`);
          }
          throw e;
        }
      } else {
        if (words.length === 0) {
          throw new UserError('explain: expected 32 hex digits or two 64-bit words (or --encode <spec>)');
        }
        try {
          w = fromHex32(words.join(' '));
        } catch (e) {
          if (e instanceof CommandSyntaxError) throw new UserError(`explain: ${e.message}`);
          throw e;
        }
      }
      if (opts.json === true) {
        write(JSON.stringify(explainJson(w, features, chk), null, 2) + '\n');
        return;
      }
      let text = '';
      if (opts.encode !== undefined) {
        const [dw0, dw1] = toDwords(w);
        text += `encoded: 0x${toHex32(w)}\n`;
        text += `dwords:  0x${dw0.toString(16).padStart(16, '0')} 0x${dw1.toString(16).padStart(16, '0')}\n\n`;
      }
      write(text + explainCommand(w, features, chk) + '\n');
    });
}
