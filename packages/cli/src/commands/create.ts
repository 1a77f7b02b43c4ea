import type { CommandModule } from 'yargs';
import { buildImage, type BuildSummary } from '@diskimg/ab';
import { createImage, type CreateSummary } from '@diskimg/diskimage';
import { fmtBytes, UsageError } from '@diskimg/partitions';
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
  'esp-size'?: string;
  'secret-size'?: string;
  'slot-size'?: string;
  'default-slot'?: 'a' | 'b';
  'kernel-params'?: string;
  'sector-size'?: number;
  seed?: string;
  'layout-only'?: boolean;
  json?: boolean;
}

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
      .option('pubkey', { type: 'string', describe: 'minisign public key that signed the inputs' })
      .option('verify', { type: 'boolean', default: true, describe: 'verify signatures (--no-verify to build from unsigned inputs)' })
      .option('esp-size', { type: 'string', describe: 'ESP size, e.g. 128M, 1.5G, 1536MiB (default 128M)' })
      .option('secret-size', { type: 'string', describe: 'psyops-secret size (default 128M)' })
      .option('slot-size', { type: 'string', describe: 'size of each OS slot A and B (default 1536M)' })
      .option('default-slot', { type: 'string', choices: ['a', 'b'] as const, default: 'a' as const, describe: 'slot GRUB boots by default' })
      .option('kernel-params', { type: 'string', describe: 'kernel parameters after "ro psyopsos=LABEL" (default: earlyprintk=dbgp console=tty0 console=ttyS0,115200)' })
      .option('sector-size', { type: 'number', choices: [512, 4096], describe: 'logical sector size of the image (default 512)' })
      .option('seed', { type: 'string', describe: 'derive every GUID, UUID and serial from this seed (with SOURCE_DATE_EPOCH: byte-identical output)' })
      .option('layout-only', { type: 'boolean', describe: 'write only the partition table, no filesystems' }),
  handler: async (argv) => {
    const common = {
      output: argv.output,
      espSize: argv['esp-size'],
      secretSize: argv['secret-size'],
      slotSize: argv['slot-size'],
      sectorSize: argv['sector-size'],
      seed: argv.seed,
    };
    if (argv['layout-only']) {
      const summary = await createImage(common);
      return print(argv, summary);
    }
    if (!argv['os-tar']) throw new UsageError('create needs --os-tar FILE (or --layout-only for an empty partition table)');
    const progress = process.stderr.isTTY && !argv.json ? ttyProgress() : undefined;
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
      defaultSlot: argv['default-slot'],
      kernelParams: argv['kernel-params'],
      digests: argv.json,
      onProgress: progress,
      onWarning: (m) => process.stderr.write(`diskimg: warning: ${m}\n`),
    });
    print(argv, summary);
  },
};

function print(argv: CreateArgs, summary: CreateSummary | BuildSummary): void {
  if (argv.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
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

/** One updating line per partition on stderr (only on a terminal). */
function ttyProgress() {
  let last = 0;
  return (p: { partition: string; written: number; size: number; done?: boolean }) => {
    const now = Date.now();
    if (!p.done && now - last < 100) return;
    last = now;
    const line = `${p.partition}: ${fmtBytes(p.written)} written${p.done ? ', done' : ''}`;
    process.stderr.write(`\r\x1b[K${line}${p.done ? '\n' : ''}`);
  };
}
