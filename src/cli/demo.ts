import type { Command } from 'commander';
import { btmDemo } from '../sim/demo.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('step-by-step demonstration of BTM over-invalidation on the hardware model')
    .action(() => {
      process.stdout.write(btmDemo().join('\n') + '\n');
    });
}
