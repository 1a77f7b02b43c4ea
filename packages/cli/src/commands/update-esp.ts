import type { CommandModule } from 'yargs';
import type { EspUpdateResult } from '@diskimg/ab/internal';
import { fmtBytes, UsageError } from '@diskimg/partitions/internal';
import { bootDisk } from './boot-common.js';
import { printJson, printWarning } from '../output.js';

interface Args {
  disk?: string;
  'esp-tar'?: string;
  'esp-sig'?: string;
  repo?: string;
  version?: string;
  fwtype?: string;
  pubkey?: string;
  verify?: boolean;
  'allow-downgrade'?: boolean;
  'dry-run'?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export const updateEspCommand: CommandModule<object, Args> = {
  command: 'update-esp [disk]',
  describe:
    'replace the ESP payload (GRUB, memtest, EFI programs) from a signed psyopsESP tarball or a repository, crash-safely, ' +
    'keeping grub.cfg\'s default, trial and boot counting and /grub/grubenv',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', describe: 'image file or block device (default: the psyopsOS boot disk); its ESP must not be mounted' })
      .option('esp-tar', { type: 'string', describe: 'ESP tarball: FILE, http(s) URL, or - for standard input' })
      .option('esp-sig', { type: 'string', describe: 'its minisign signature, FILE or URL (default ESP_TAR.minisig; required with -)' })
      .option('repo', { type: 'string', describe: 'update repository (URL or directory): its latest ESP release (or --version)' })
      .option('version', { type: 'string', describe: 'with --repo: "latest" (default) or a version' })
      .option('fwtype', { type: 'string', describe: 'with --repo: firmware type (default x86_64-uefi)' })
      .option('pubkey', { type: 'string', describe: 'minisign public key that signs ESP releases' })
      .option('verify', { type: 'boolean', default: true, describe: 'check the signature (--no-verify installs an unsigned payload)' })
      .option('allow-downgrade', { type: 'boolean', describe: "install a version older than the ESP's, or over an ESP whose version is unknown (no verified /psyopsESP.tar.minisig)" })
      .option('dry-run', { type: 'boolean', describe: 'check everything, write nothing, print what would change' })
      .check((a) => {
        if (!!a['esp-tar'] === !!a.repo) throw new UsageError('give --esp-tar FILE|URL|- or --repo URL');
        if (a.repo && a['esp-sig']) throw new UsageError('--esp-sig goes with --esp-tar (the repository has the signature)');
        if (a.version && !a.repo) throw new UsageError('--version goes with --repo');
        return true;
      }),
  handler: async (argv) => {
    const { updateEsp } = await import('@diskimg/ab/internal');
    const disk = argv.disk ?? (await bootDisk());
    const r = await updateEsp({
      disk,
      espTar: argv['esp-tar'],
      espSig: argv['esp-sig'],
      repo: argv.repo,
      version: argv.version,
      fwtype: argv.fwtype,
      pubkey: argv.pubkey,
      noVerify: argv.verify === false,
      allowDowngrade: argv['allow-downgrade'],
      dryRun: argv['dry-run'],
    });
    if (!argv.quiet) for (const w of r.warnings) printWarning(w);
    if (argv.json) printJson(r);
    else process.stdout.write(describe(r));
  },
};

function describe(r: EspUpdateResult): string {
  const v = (x: string | null) => x ?? 'unknown version';
  if (r.upToDate) return `the ESP on ${r.disk} already holds ${v(r.newVersion)}; nothing written\n`;
  const lines = [
    `${r.dryRun ? 'would update' : 'updated'} the ESP on ${r.disk}: ${v(r.previousVersion)} -> ${v(r.newVersion)}${r.verified ? '' : ' (signature NOT verified)'}`,
    `${r.added.length} added, ${r.changed.length} changed, ${r.unchanged} unchanged, ${r.removed.length} removed; needs ${fmtBytes(r.needBytes)} of ${fmtBytes(r.freeBytes)} free`,
  ];
  if (r.extraPrograms.length) lines.push(`extra programs in grub.cfg: ${r.extraPrograms.join(' ')}`);
  return lines.join('\n') + '\n';
}
