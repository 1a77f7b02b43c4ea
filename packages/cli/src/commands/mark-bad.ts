import { printJson } from '../output.js';
import type { CommandModule } from 'yargs';
import { bootedLabelOption, describeBootState, withDisk } from './boot-common.js';

interface Args {
  disk?: string;
  bootedLabel?: string;
  slot: string;
  json?: boolean;
}

export const markBadCommand: CommandModule<object, Args> = {
  command: 'mark-bad [disk]',
  describe:
    'mark a slot bad (default: the booted one; --slot other): its trial ends and the next boot is the confirmed default; ' +
    'rollback never makes it the default until set-next tries it again or set-default forces it; refused for the confirmed default (one grubenv write)',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', describe: 'image file or block device (default: the psyopsOS boot disk, found by labels)' })
      .option('booted-label', bootedLabelOption)
      .option('slot', {
        type: 'string',
        default: 'booted',
        choices: ['booted', 'other', 'a', 'b'],
        coerce: (v: string) => v.toLowerCase(),
        describe: 'the slot to mark: the booted one, the other one, or a / b',
      }),
  handler: async (argv) => {
    const { markBad } = await import('@diskimg/ab/internal');
    const r = await withDisk(argv.disk, true, (disk) => markBad(disk, { bootedLabel: argv.bootedLabel }, { slot: argv.slot }));
    if (argv.json) printJson(r);
    else process.stdout.write(`${r.message}\n${describeBootState(r.state).join('\n')}\n`);
  },
};
