import { printJson } from '../output.js';
import type { CommandModule } from 'yargs';
import { bootedLabelOption, describeBootState, withDisk } from './boot-common.js';

interface Args {
  disk?: string;
  bootedLabel?: string;
  json?: boolean;
}

export const rollbackCommand: CommandModule<object, Args> = {
  command: 'rollback [disk]',
  describe:
    'go back: with a trial armed, end it (the confirmed default stays); otherwise make the slot other than the booted one ' +
    '(or than the default, offline) the default, when it holds a complete slot (/psyopsOS.tar.minisig)',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', describe: 'image file or block device (default: the psyopsOS boot disk, found by labels)' })
      .option('booted-label', bootedLabelOption),
  handler: async (argv) => {
    const { bootedLabel, rollback } = await import('@diskimg/ab/internal');
    const booted = bootedLabel({ bootedLabel: argv.bootedLabel });
    const state = await withDisk(argv.disk, true, (disk) => rollback(disk, booted));
    if (argv.json) printJson({ booted: booted ?? null, state });
    else process.stdout.write(`rolled back\n${describeBootState(state).join('\n')}\n`);
  },
};
