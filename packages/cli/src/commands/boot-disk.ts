import type { CommandModule } from 'yargs';
import { printJson } from '../output.js';

export const bootDiskCommand: CommandModule<object, { json?: boolean }> = {
  command: 'boot-disk',
  describe: 'print the psyopsOS boot disk (found by partition labels), its partitions and the booted slot',
  handler: async (argv) => {
    const { findBootDisk } = await import('@diskimg/ab/internal');
    const r = await findBootDisk();
    if (argv.json) printJson(r);
    else process.stdout.write(`${r.disk}\n${r.partitions.map((p) => `  ${p.number} ${p.label}`).join('\n')}\nbooted: ${r.booted ?? 'unknown'}\n`);
  },
};
