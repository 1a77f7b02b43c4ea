import type { CommandModule } from 'yargs';
import { createImage } from '@diskimg/diskimage';
import { fmtBytes } from '@diskimg/partitions';
import { printTable } from './show.js';

interface CreateArgs {
  output: string;
  'esp-size'?: string;
  'secret-size'?: string;
  'slot-size'?: string;
  'sector-size'?: number;
  seed?: string;
  json?: boolean;
}

export const createCommand: CommandModule<object, CreateArgs> = {
  command: 'create <output>',
  describe: 'lay out a psyopsOS disk (GPT: ESP, secret, slot A, slot B) in a sparse image file or on an unused block device',
  builder: (y) =>
    y
      .positional('output', { type: 'string', demandOption: true, describe: 'image file to create (overwritten) or block device' })
      .option('esp-size', { type: 'string', describe: 'ESP size, e.g. 128M, 1.5G, 1536MiB (default 128M)' })
      .option('secret-size', { type: 'string', describe: 'psyops-secret size (default 128M)' })
      .option('slot-size', { type: 'string', describe: 'size of each OS slot A and B (default 1536M)' })
      .option('sector-size', { type: 'number', choices: [512, 4096], describe: 'logical sector size of the image (default 512)' })
      .option('seed', { type: 'string', describe: 'derive the disk and partition GUIDs from this seed (reproducible output)' }),
  handler: async (argv) => {
    const summary = await createImage({
      output: argv.output,
      espSize: argv['esp-size'],
      secretSize: argv['secret-size'],
      slotSize: argv['slot-size'],
      sectorSize: argv['sector-size'],
      seed: argv.seed,
    });
    if (argv.json) {
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      return;
    }
    process.stdout.write(`created ${summary.output}: ${fmtBytes(summary.sizeBytes)}, ${summary.sectorSize}-byte sectors, disk GUID ${summary.diskGuid}\n`);
    printTable(summary);
  },
};
