import type { CommandModule } from 'yargs';
import { bootDisk, bootedLabelOption } from './boot-common.js';
import { printJson } from '../output.js';

interface Args {
  disk?: string;
  repo: string;
  pubkey?: string;
  verify?: boolean;
  'booted-label'?: string;
  arch?: string;
  fwtype?: string;
  json?: boolean;
}

export const checkCommand: CommandModule<object, Args> = {
  command: 'check [disk]',
  describe:
    'compare the repository\'s latest release with the booted slot, the other slot and the ESP; exit 0 up to date, ' +
    '10 an OS update is available, 11 a boot is pending (booted slot on trial, another slot armed, or fell back from the latest), ' +
    '13 the repository\'s latest is older than what runs (rolled back or frozen), 12 only an ESP update; 1 on any error (network, signature)',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', describe: 'image file or block device (default: the psyopsOS boot disk)' })
      .option('repo', { type: 'string', demandOption: true, describe: 'repository: http(s) URL or directory' })
      .option('pubkey', { type: 'string', describe: 'minisign public key that signs the releases' })
      .option('verify', { type: 'boolean', default: true, describe: 'verify the pointers\' signatures (--no-verify: names only)' })
      .option('booted-label', bootedLabelOption)
      .option('arch', { type: 'string', describe: 'this node\'s architecture (default from the CPU, e.g. x86_64)' })
      .option('fwtype', { type: 'string', describe: 'ESP firmware type (default x86_64-uefi)' }),
  handler: async (argv) => {
    const { checkRepo, findBootDisk } = await import('@diskimg/ab/internal');
    const disk = argv.disk ?? (await bootDisk());
    const r = await checkRepo({
      disk,
      repo: argv.repo,
      pubkey: argv.pubkey,
      noVerify: argv.verify === false,
      bootedLabel: argv['booted-label'],
      arch: argv.arch,
      fwtype: argv.fwtype,
      hintDisk: argv.disk ?? null,
    });
    if (argv.json) printJson(r);
    else process.stdout.write(r.lines.join('\n') + '\n');
    process.exitCode = r.exitCode;
  },
};
