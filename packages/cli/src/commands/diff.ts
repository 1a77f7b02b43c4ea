import type { CommandModule } from 'yargs';
import { displayText } from '../output.js';
import { DiskimgError } from '@diskimg/partitions/internal';

interface Args {
  a: string;
  b: string;
  bytes?: boolean;
  json?: boolean;
}

/**
 * `diskimg diff A B`: exit 0 identical, 1 different, 2 trouble (like diff(1)):
 * an unreadable disk is exit 2 here, not the usual 1, so a script can tell
 * "different" from "could not compare".
 */
export const diffCommand: CommandModule<object, Args> = {
  command: 'diff <a> <b>',
  describe:
    'compare two disks (image files or block devices) structure by structure and print what differs, one line each, ' +
    'grouped by partition: GPT header and entries, filesystem type and superblock / boot sector fields, files added (+), ' +
    'removed (-) or changed (M: content, mode, owner, times, xattrs, symlink target), grub.cfg lines, grubenv variables. ' +
    'Exit 0 identical, 1 different, 2 error',
  builder: (y) =>
    y
      .positional('a', { type: 'string', demandOption: true, describe: 'first disk (image file or block device)' })
      .positional('b', { type: 'string', demandOption: true, describe: 'second disk' })
      .option('bytes', {
        type: 'boolean',
        default: true,
        describe: 'also compare the raw bytes of partitions (and GPT areas) whose structures compared equal (--no-bytes skips that read)',
      }),
  handler: async (argv) => {
    const { describeDifference, diffDisks, summarizeDifferences } = await import('@diskimg/ab/internal');
    let diffs;
    try {
      diffs = await diffDisks(argv.a, argv.b, { bytes: argv.bytes });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (!(e instanceof DiskimgError) && !(err && typeof err.code === 'string' && err.message)) throw e;
      process.stderr.write(`diskimg: ${displayText(err.message)}\n`);
      process.exitCode = 2;
      return;
    }
    const summary = summarizeDifferences(diffs);
    if (argv.json) process.stdout.write(`${JSON.stringify({ identical: diffs.length === 0, summary, differences: diffs }, null, 2)}\n`);
    else if (diffs.length > 0) {
      const lines = diffs.map((d) => displayText(`${d.group}: ${describeDifference(d)}`));
      const cats = Object.entries(summary.categories).map(([k, n]) => `${k} ${n}`).join(', ');
      lines.push(`${summary.count} ${summary.count === 1 ? 'difference' : 'differences'} (${cats}): ${summary.verdict}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    process.exitCode = diffs.length === 0 ? 0 : 1;
  },
};
