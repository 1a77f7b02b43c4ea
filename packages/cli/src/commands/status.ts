import type { CommandModule } from 'yargs';
import { printJson, displayText } from '../output.js';
import { bootedLabelOption, withDisk } from './boot-common.js';

interface Args {
  disk?: string;
  bootedLabel?: string;
  json?: boolean;
}

export const statusCommand: CommandModule<object, Args> = {
  command: 'status [disk]',
  describe:
    'one line for a shell prompt: "psyopsOS-B 20261201-000000 ok", "… TRIAL 2/3" (tries left / armed), ' +
    '"psyopsOS-A … FELL BACK from B …"; exit 0 when the booted slot (offline: the disk\'s current slot) is confirmed, 1 otherwise',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', describe: 'image file or block device (default: the psyopsOS boot disk, found by labels)' })
      .option('booted-label', bootedLabelOption),
  handler: (argv) => runStatus(argv),
};

/** The handler; also called directly, without yargs, by the fast path (../fast.ts). */
export async function runStatus(argv: Args): Promise<void> {
  const { bootedLabel, isBlockDisk, lastUpdatePath, readLastUpdate, slotStatus } = await import('@diskimg/ab/internal/status');
  let booted: string | undefined;
  const s = await withDisk(argv.disk, false, (disk) => {
    // As inferBooted: /proc/cmdline speaks of the running system's disk, not of an image file.
    booted = argv.bootedLabel ?? (isBlockDisk(disk) ? bootedLabel() : undefined);
    return slotStatus(disk, booted);
  });
  if (argv.json) {
    const record = lastUpdatePath(argv.disk);
    printJson({ booted: booted ?? null, ...s, lastUpdate: record ? readLastUpdate(record) : null });
  }
  else process.stdout.write(`${displayText(s.line)}\n`);
  if (!s.confirmed) process.exitCode = 1;
}
