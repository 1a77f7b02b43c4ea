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
    'go back, never forward: with a trial armed, end it and mark that slot bad (the confirmed default stays); otherwise make the slot ' +
    'other than the booted one the default, when it is proven (did not fail its trial, not bad or staged) and complete ' +
    '(/psyopsOS.tar.minisig); an unproven slot: nothing changes (exit 0, the line says why)',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', describe: 'image file or block device (default: the psyopsOS boot disk, found by labels)' })
      .option('booted-label', bootedLabelOption),
  handler: async (argv) => {
    const { rollback } = await import('@diskimg/ab/internal');
    const r = await withDisk(argv.disk, true, (disk) => rollback(disk, { bootedLabel: argv.bootedLabel }));
    if (argv.json) printJson(r);
    else process.stdout.write(`${r.message}\n${describeBootState(r.state).join('\n')}\n`);
  },
};
