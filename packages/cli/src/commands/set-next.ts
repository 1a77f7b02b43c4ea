import { printJson } from '../output.js';
import type { CommandModule } from 'yargs';
import { DEFAULT_TRIES, MAX_TRIES } from '@diskimg/grubcfg/internal';
import { describeBootState, withDisk } from './boot-common.js';
import { parseTries, triesOption } from './numeric.js';

interface Args {
  disk: string;
  slot: string;
  tries?: string;
  json?: boolean;
}

export const setNextCommand: CommandModule<object, Args> = {
  command: 'set-next <disk> <slot>',
  describe:
    'arm a trial of slot a or b: it boots up to --tries times until mark-good confirms it, then GRUB falls back to the ' +
    'confirmed default (adds the boot counting block to grub.cfg if missing, then writes grubenv); --tries 0 = set-default',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', demandOption: true, describe: 'image file or block device' })
      .positional('slot', { type: 'string', demandOption: true, choices: ['a', 'b'], describe: 'slot to try' })
      .option('tries', triesOption(`boots before falling back, 0 to ${MAX_TRIES} (default ${DEFAULT_TRIES})`)),
  handler: async (argv) => {
    const tries = parseTries(argv.tries);
    const { armTrial, slotLabel } = await import('@diskimg/ab/internal');
    const state = await withDisk(argv.disk, true, (disk) => armTrial(disk, slotLabel(argv.slot), { tries }));
    if (argv.json) printJson(state);
    else process.stdout.write(`${describeBootState(state).join('\n')}\n`);
  },
};
