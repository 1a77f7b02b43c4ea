import type { CommandModule } from 'yargs';
import { printJson, waitForDrain } from '../output.js';

interface CatArgs {
  disk: string;
  spec: string;
  json?: boolean;
}

/** Write chunks to stdout with backpressure; a closed pipe (`| head`) ends quietly, as for cat. */
async function toStdout(chunks: AsyncIterable<Buffer>): Promise<void> {
  let closed = false;
  const isEpipe = (e: unknown) => (e as NodeJS.ErrnoException)?.code === 'EPIPE';
  const onError = (e: NodeJS.ErrnoException) => {
    if (isEpipe(e)) closed = true;
  };
  // Stays attached: an EPIPE reported after the last write must not surface as an error either.
  process.stdout.on('error', onError);
  for await (const c of chunks) {
    if (closed) return;
    if (process.stdout.write(c)) continue;
    try {
      if (!(await waitForDrain(process.stdout))) return;
    } catch (e) {
      if (!isEpipe(e)) throw e;
      return;
    }
  }
}

export const catCommand: CommandModule<object, CatArgs> = {
  command: 'cat <disk> <spec>',
  describe: 'write a file from inside a partition to stdout, without mounting (--json: its size and sha256 instead)',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', demandOption: true, describe: 'image file or block device' })
      .positional('spec', { type: 'string', demandOption: true, describe: 'LABEL:/path, e.g. PSYOPSOSEFI:/grub/grub.cfg; IMAGE!/path reads inside a SquashFS image: psyopsOS-A:/squashfs!/etc/os-release' }),
  handler: async (argv) => {
    const { createHash } = await import('node:crypto');
    const { withFilesystem } = await import('@diskimg/diskimage/internal');
    await withFilesystem(argv.disk, argv.spec, async (fs, path, label, shown) => {
      // stat first, so a directory or a missing file fails before anything is written.
      await fs.stat(path);
      const data = fs.readFile(path);
      if (argv.json) {
        const h = createHash('sha256');
        let size = 0;
        for await (const c of data) {
          h.update(c);
          size += c.length;
        }
        printJson({ disk: argv.disk, label, path: shown, size, sha256: h.digest('hex') });
        return;
      }
      await toStdout(data);
    });
  },
};
