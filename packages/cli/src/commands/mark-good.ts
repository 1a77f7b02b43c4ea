import { printJson } from '../output.js';
import type { CommandModule } from 'yargs';
import { bootedLabelOption, withDisk } from './boot-common.js';

interface Args {
  disk?: string;
  bootedLabel?: string;
  json?: boolean;
}

export const markGoodCommand: CommandModule<object, Args> = {
  command: 'mark-good [disk]',
  describe:
    'confirm the booted slot: when it is on trial it becomes the default and the trial ends (grub.cfg, then grubenv); ' +
    'the confirmed default after a fallback: the fallback is acknowledged (the failed slot stays marked bad); ' +
    'already the confirmed default: nothing to do; refused when another slot is on trial and this one is not the default',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', describe: 'image file or block device (default: the psyopsOS boot disk, found by labels)' })
      .option('booted-label', bootedLabelOption),
  handler: async (argv) => {
    const { markGood } = await import('@diskimg/ab/internal');
    const r = await withDisk(argv.disk, true, (disk) => markGood(disk, { bootedLabel: argv.bootedLabel }));
    if (argv.json) printJson(r);
    else process.stdout.write(`${r.message}\n`);
  },
};
