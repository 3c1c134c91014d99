import { describe, it, expect } from 'vitest';
import { CERROR, defaultFeatures, type SmmuFeatures } from '../../src/arch/registers.js';
import { ALL_COMMAND_DEFS, checkCommand, decodeCommand, type CheckOptions } from '../../src/arch/commands.js';
import { explainCommand, explainJson } from '../../src/arch/command-text.js';
import { Prng } from '../../src/sim/prng.js';

/**
 * Any 128-bit value may sit in a command queue: decode, legality and explanation must never
 * throw, and every word is either legal (err 0) or CERROR_ILL with a reason.
 */
const FEATURE_SETS: SmmuFeatures[] = [
  defaultFeatures(),
  defaultFeatures({ s1p: false, hyp: false, ril: false, ats: false, vmid16: false, asid16: false, archMinor: 0 }),
  defaultFeatures({ s2p: false, hyp: false, stallModel: 0, pri: true, msi: false, sev: false }),
  defaultFeatures({ rme: true, mpam: true, dpt: true, ds: true, archMinor: 4, stallModel: 2 }),
];
const OPTS: CheckOptions[] = [
  { secureQueue: false },
  { secureQueue: true },
  { secureQueue: false, strictReserved: true },
  { secureQueue: true, strictReserved: true },
];
const N = 100_000;

describe('command fuzz (deterministic seed)', () => {
  it(`decodes, checks and explains ${N} random 128-bit words without throwing`, () => {
    const rng = new Prng(0x5eed, 7);
    const ops = ALL_COMMAND_DEFS.map((d) => d.op);
    const w = new Uint32Array(4);
    let legal = 0;
    let ill = 0;
    for (let i = 0; i < N; i++) {
      for (let k = 0; k < 4; k++) w[k] = rng.nextU32();
      // Half the words get an architected opcode so that every decoder is exercised; some get
      // sparse upper words so that small, plausible values (and legal commands) also occur.
      if ((i & 1) === 0) w[0] = ((w[0] & ~0xff) | ops[rng.int(ops.length)]) >>> 0;
      if ((i & 6) === 0) { w[0] &= 0x00ff00ff; w[1] &= 0x00ff00ff; w[2] &= 0x00000f01; w[3] = 0; }
      const f = FEATURE_SETS[i % FEATURE_SETS.length];
      const o = OPTS[(i >>> 2) % OPTS.length];
      const dec = decodeCommand(w);
      if (dec.op !== (w[0] & 0xff)) throw new Error(`decode opcode mismatch for ${Array.from(w)}`);
      const r = checkCommand(w, 0, f, o);
      if (r.err === 0) {
        legal++;
      } else {
        ill++;
        if (r.err !== CERROR.ILL || typeof r.reason !== 'string' || r.reason.length === 0) {
          throw new Error(`bad check result for ${Array.from(w)}: ${JSON.stringify(r)}`);
        }
      }
      const text = explainCommand(w, f, o);
      const last = text.slice(text.lastIndexOf('\n') + 1);
      if (r.err === 0 ? last !== '  legal' : last !== `  CERROR_ILL: ${(r as { reason: string }).reason}`) {
        throw new Error(`explain verdict mismatch for ${Array.from(w)}: ${last}`);
      }
      if (i % 16 === 0) JSON.stringify(explainJson(w, f, o));
    }
    expect(legal + ill).toBe(N);
    expect(legal).toBeGreaterThan(N / 20);
    expect(ill).toBeGreaterThan(N / 20);
  });
});
