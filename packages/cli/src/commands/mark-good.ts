import { printJson } from '../output.js';
import type { CommandModule } from 'yargs';
import { UsageError } from '@diskimg/partitions/internal';
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
    'already the confirmed default: nothing to do; refused after a fallback or when another slot is on trial',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', describe: 'image file or block device (default: the psyopsOS boot disk, found by labels)' })
      .option('booted-label', bootedLabelOption),
  handler: async (argv) => {
    const { bootedLabel, markGood } = await import('@diskimg/ab/internal');
    const booted = bootedLabel({ bootedLabel: argv.bootedLabel });
    if (!booted) throw new UsageError('mark-good: no psyopsos= on /proc/cmdline; give --booted-label LABEL');
    const r = await withDisk(argv.disk, true, (disk) => markGood(disk, booted));
    if (argv.json) printJson({ booted, ...r });
    else process.stdout.write(`${r.message}\n`);
  },
};
