#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { UserError } from './errors.js';
import { registerExplain } from './explain.js';
import { registerVectors } from './vectors.js';
import { registerDemo } from './demo.js';
import { registerRun } from './run.js';
import { registerCheck } from './check.js';
import { registerSchema } from './schema.js';
import { registerBench } from './bench.js';
import { registerReplay } from './replay.js';
import { registerSweep } from './sweep.js';
import { registerMerge } from './merge.js';
import { registerServe } from './serve.js';

const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('btmsim')
    .description('Model and simulator of Arm SMMUv3 broadcast TLB maintenance and CPU/KVM/SMMU ASID-VMID coordination')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerRun(program);
  registerCheck(program);
  registerSweep(program);
  registerMerge(program);
  registerDemo(program);
  registerSchema(program);
  registerBench(program);
  registerExplain(program);
  registerVectors(program);
  registerReplay(program);
  registerServe(program);
  return program;
}

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its one-line message (unknown option, missing argument...)
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (e instanceof UserError) {
      process.stderr.write(`btmsim: ${e.message}\n`);
      process.exitCode = e.exitCode;
      return;
    }
    process.stderr.write(`btmsim: internal error (please report): ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 70;
  }
}

void main();
