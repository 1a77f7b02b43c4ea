import type { CommandModule } from 'yargs';
import { rmSync, statSync } from 'node:fs';
import type { BuildSummary } from '@diskimg/ab/internal';
import type { CreateSummary } from '@diskimg/diskimage/internal';
import { fmtBytes, InputError, parseSize, UsageError } from '@diskimg/partitions/internal';
import { onSignalCleanup, printJson, printWarning } from '../output.js';
import { createProgress, progressWanted } from '../progress.js';
import { printTable } from './show.js';

interface CreateArgs {
  output: string;
  'os-tar'?: string;
  'os-sig'?: string;
  'esp-tar'?: string;
  'esp-dir'?: string;
  'esp-sig'?: string;
  'secret-tar'?: string;
  'secret-dir'?: string;
  pubkey?: string;
  verify?: boolean;
  'verify-esp'?: boolean;
  bootloader?: boolean;
  force?: boolean;
  'esp-size'?: string;
  'secret-size'?: string;
  'slot-size'?: string;
  'default-slot'?: 'a' | 'b';
  'kernel-params'?: string;
  'sector-size'?: '512' | '4096';
  seed?: string;
  'layout-only'?: boolean;
  json?: boolean;
  quiet?: boolean;
}

const UNITS = 'Sizes: K, M, G, T (or KiB, MiB, GiB, TiB) are powers of 1024; KB, MB, GB, TB are powers of 1000 (so 128M = 134217728 bytes, 128MB = 128000000).';

/** Options that fill partitions: meaningless with --layout-only. */
const CONTENT_OPTIONS = ['os-tar', 'os-sig', 'esp-tar', 'esp-dir', 'esp-sig', 'secret-tar', 'secret-dir', 'pubkey', 'kernel-params', 'default-slot', 'no-verify', 'no-verify-esp', 'no-bootloader'] as const;


export const createCommand: CommandModule<object, CreateArgs> = {
  command: 'create <output>',
  describe: 'build a psyopsOS disk image (GPT; FAT32 ESP with grub.cfg; ext4 secret, slot A and slot B) in a sparse file or on an unused block device',
  builder: (y) =>
    y
      .positional('output', { type: 'string', demandOption: true, describe: 'image file to create (replaced only when complete) or block device' })
      .option('os-tar', { type: 'string', describe: 'OS tarball for slots A and B (must hold kernel and initramfs)' })
      .option('os-sig', { type: 'string', describe: 'its minisign signature (default OS_TAR.minisig)' })
      .option('esp-tar', { type: 'string', describe: 'ESP payload tarball (EFI/BOOT/BOOTX64.EFI, …)', conflicts: 'esp-dir' })
      .option('esp-dir', { type: 'string', describe: 'ESP payload directory' })
      .option('esp-sig', { type: 'string', describe: 'signature of the ESP tarball (default ESP_TAR.minisig when present)' })
      .option('secret-tar', { type: 'string', describe: 'secrets tarball for psyops-secret (default: empty filesystem)', conflicts: 'secret-dir' })
      .option('secret-dir', { type: 'string', describe: 'secrets directory for psyops-secret' })
      .option('pubkey', { type: 'string', describe: 'minisign public key that signed the inputs (OS tarball and ESP tarball)' })
      .option('verify', { type: 'boolean', default: true, describe: 'verify signatures (--no-verify builds from unsigned inputs and says what it did not check)' })
      .option('verify-esp', { type: 'boolean', default: true, describe: 'verify the ESP payload too (--no-verify-esp accepts an unsigned ESP tarball or an --esp-dir)' })
      .option('bootloader', { type: 'boolean', default: true, describe: 'require /EFI/BOOT/BOOTX64.EFI in the ESP payload (--no-bootloader builds an image that cannot boot)' })
      .option('force', { type: 'boolean', describe: 'replace an existing OUTPUT that is not a disk image' })
      .option('esp-size', { type: 'string', describe: 'ESP size, e.g. 128M, 1.5G, 1536MiB (default 128M; M = MiB = 2^20 bytes, MB = 10^6)' })
      .option('secret-size', { type: 'string', describe: 'psyops-secret size (default 128M)' })
      .option('slot-size', { type: 'string', describe: 'size of each OS slot A and B (default 1536M)' })
      .option('default-slot', { type: 'string', choices: ['a', 'b'] as const, coerce: (v: string) => v.toLowerCase() as 'a' | 'b', describe: 'slot GRUB boots by default (a or b, any case; default a)' })
      .option('kernel-params', { type: 'string', describe: 'kernel parameters after "ro psyopsos=LABEL" (default: earlyprintk=dbgp console=tty0 console=ttyS0,115200)' })
      .option('sector-size', { type: 'string', choices: ['512', '4096'] as const, describe: 'logical sector size of the image (default 512)' })
      .option('seed', { type: 'string', describe: 'derive every GUID, UUID and serial from this seed (with SOURCE_DATE_EPOCH: byte-identical output)' })
      .option('layout-only', { type: 'boolean', describe: 'write only the partition table, no filesystems' })
      .example('$0 create disk.img --os-tar psyopsOS.tar --esp-tar psyopsESP.tar --pubkey release.pub', 'signed inputs (FILE.minisig beside each), verified before anything is written')
      .example('$0 create /dev/sdb --os-tar os.tar --esp-dir esp/ --no-verify --slot-size 2G', 'unsigned inputs onto an unused disk')
      .example('$0 create empty.img --layout-only --slot-size 512M', 'the partition table only')
      .epilogue(UNITS),
  handler: async (argv) => {
    // The narrow entries: create loads neither the readers (SquashFS, xz) nor update/repo/serve.
    const { buildImage } = await import('@diskimg/ab/internal/build');
    const { createImage, partialPath } = await import('@diskimg/diskimage/internal/create');
    const ss = Number(argv['sector-size'] ?? 512); // a string option: a bad value is named as typed, not as NaN
    const common = {
      output: argv.output,
      espSize: sizeOption(argv, 'esp-size', ss),
      secretSize: sizeOption(argv, 'secret-size', ss),
      slotSize: sizeOption(argv, 'slot-size', ss),
      sectorSize: argv['sector-size'] === undefined ? undefined : ss,
      seed: argv.seed,
      force: argv.force,
    };
    // Remove our temporary file if a signal ends the process mid-build (SIGKILL leaves it: the next create removes it).
    const tmp = partialPath(argv.output);
    const dropCleanup = onSignalCleanup(() => rmSync(tmp, { force: true }));
    try {
      if (argv['layout-only']) {
        const given = CONTENT_OPTIONS.filter((k) => given_(k));
        if (given.length) throw new UsageError(`--layout-only writes only the partition table; drop ${given.map((k) => `--${k}`).join(', ')}`);
        const summary = await createImage(common);
        return print(argv, summary);
      }
      if (!argv['os-tar']) throw new UsageError('create needs --os-tar FILE (or --layout-only for an empty partition table)');
      const progress = createProgress({ label: 'create', total: estimateBytes(argv), quiet: !progressWanted(argv) });
      let finished = 0;
      const summary = await buildImage({
      ...common,
      osTar: argv['os-tar'],
      osSig: argv['os-sig'],
      espTar: argv['esp-tar'],
      espDir: argv['esp-dir'],
      espSig: argv['esp-sig'],
      secretTar: argv['secret-tar'],
      secretDir: argv['secret-dir'],
      pubkey: argv.pubkey,
      noVerify: argv.verify === false,
      noVerifyEsp: argv['verify-esp'] === false,
      requireBootloader: argv.bootloader !== false,
      defaultSlot: argv['default-slot'],
      kernelParams: argv['kernel-params'],
      digests: argv.json,
      onProgress: (p) => {
        progress.update(finished + p.written, p.partition);
        if (p.done) finished += p.written;
      },
      onWarning: (m) => {
        progress.clear();
        printWarning(m);
      },
    }).catch((e) => {
      progress.clear();
      throw e;
    });
      progress.finish();
      for (const u of summary.unverified) printWarning(`NOT verified: ${u}`);
      print(argv, summary);
    } finally {
      dropCleanup();
    }

    function given_(k: (typeof CONTENT_OPTIONS)[number]): boolean {
      if (k.startsWith('no-')) return (argv as Record<string, unknown>)[k.slice(3)] === false;
      return (argv as Record<string, unknown>)[k] !== undefined;
    }
  },
};

/**
 * A size option parsed here, so its errors name the option (not "partition 3"):
 * whole bytes, more than 0, a multiple of the sector size.
 */
function sizeOption(argv: CreateArgs, name: 'esp-size' | 'secret-size' | 'slot-size', sectorSize: number): number | undefined {
  const v = argv[name];
  if (v === undefined) return undefined;
  const n = parseSize(v, `--${name}`);
  if (n === 'rest') throw new InputError(`--${name} rest: give a size, e.g. 128M`);
  if (n === 0) throw new InputError(`--${name} ${v}: size is 0; give a positive size such as 128M`);
  if (n % sectorSize !== 0) throw new InputError(`--${name} ${v}: ${n} bytes is not a multiple of the ${sectorSize}-byte sector size`);
  return n;
}

/** What create will write, roughly: the OS tarball twice, plus the ESP and secret tarballs (for the progress line). */
function estimateBytes(argv: CreateArgs): number | undefined {
  const size = (p: string | undefined) => {
    if (p === undefined) return 0;
    try {
      const st = statSync(p);
      return st.isFile() ? st.size : 0;
    } catch {
      return 0;
    }
  };
  const os = size(argv['os-tar']);
  return os > 0 ? 2 * os + size(argv['esp-tar']) + size(argv['secret-tar']) : undefined;
}

function print(argv: CreateArgs, summary: CreateSummary | BuildSummary): void {
  if (argv.json) {
    printJson(summary);
    return;
  }
  process.stdout.write(`created ${summary.output}: ${fmtBytes(summary.sizeBytes)}, ${summary.sectorSize}-byte sectors, disk GUID ${summary.diskGuid}\n`);
  printTable(summary);
  if ('slotsBuilt' in summary) {
    for (const s of summary.slotsBuilt) {
      const v = s.signature?.version ? `version ${s.signature.version}` : 'no signature';
      process.stdout.write(`${s.label}: ${s.files} files, ${fmtBytes(s.usedBytes)} used, ${v}\n`);
    }
    process.stdout.write(`default slot: ${summary.defaultSlot}\n`);
  }
}
