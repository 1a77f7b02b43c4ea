import type { CommandModule } from 'yargs';
import { printJson } from '../output.js';

interface Args {
  disk: string;
  slot: string;
  json?: boolean;
}

export const setDefaultCommand: CommandModule<object, Args> = {
  command: 'set-default <disk> <slot>',
  describe: 'make slot a or b the confirmed default GRUB boot entry and end any trial (grub.cfg, then grubenv; crash-safe FAT replaces)',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', demandOption: true, describe: 'image file or block device' })
      .positional('slot', { type: 'string', demandOption: true, choices: ['a', 'b'], coerce: (v: string) => v.toLowerCase(), describe: 'slot to boot by default (a or b, any case)' }),
  handler: async (argv) => {
    const { setDefaultSlot } = await import('@diskimg/ab/internal');
    const r = await setDefaultSlot(argv.disk, argv.slot);
    if (argv.json) printJson(r);
    else process.stdout.write(`default slot: ${r.defaultLabel}${r.previous && r.previous !== r.defaultLabel ? ` (was ${r.previous})` : ''}\n`);
  },
};
