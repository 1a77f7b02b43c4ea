import type { CommandModule } from 'yargs';
import { bootDisk } from './boot-common.js';
import { printJson, printWarning } from '../output.js';
import { parseTries, triesOption } from './numeric.js';
import { createProgress, progressWanted, type Progress } from '../progress.js';
import type { UpdateResult } from '@diskimg/ab/internal';
import { fmtBytes } from '@diskimg/partitions/internal';

interface Args {
  disk?: string;
  slot: 'inactive' | 'a' | 'b';
  'os-tar': string;
  'os-sig'?: string;
  pubkey?: string;
  verify?: boolean;
  'booted-label'?: string;
  'allow-downgrade'?: boolean;
  force?: boolean;
  switch?: boolean;
  tries?: string;
  'dry-run'?: boolean;
  'skip-unchanged'?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export const updateCommand: CommandModule<object, Args> = {
  command: 'update [disk]',
  describe: 'write a signed OS tarball (file, URL or - for stdin) into the slot that is not booted, then arm it for a trial boot',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', describe: 'image file or block device (default: the psyopsOS boot disk, found by label)' })
      .option('slot', { type: 'string', choices: ['inactive', 'a', 'b'] as const, coerce: (v: string) => v.toLowerCase() as 'inactive' | 'a' | 'b', demandOption: true, describe: 'slot to write; inactive = not the booted one' })
      .option('os-tar', { type: 'string', demandOption: true, describe: 'OS tarball: FILE, http(s) URL, or - for standard input (plain or gzip)' })
      .option('os-sig', { type: 'string', describe: 'its minisign signature, FILE or URL (default OS_TAR.minisig; required with -)' })
      .option('pubkey', { type: 'string', describe: 'minisign public key that signs OS updates' })
      .option('verify', { type: 'boolean', default: true, describe: 'check the signature (--no-verify writes unsigned input)' })
      .option('booted-label', { type: 'string', describe: 'the running slot (default: psyopsos= on /proc/cmdline; on an image file, the slot GRUB boots next)' })
      .option('allow-downgrade', { type: 'boolean', describe: 'install a version older than the booted one' })
      .option('force', { type: 'boolean', describe: 'write the running version again; overwrite the last good slot while the booted one is on trial' })
      .option('switch', { type: 'boolean', default: true, describe: 'arm the new slot for the next boot (--no-switch arms nothing: the slot stays staged, rollback refuses it, set-next tries it)' })
      .option('tries', triesOption('boots the new slot gets before GRUB falls back (default 3; 0 = switch the default for good)'))
      .option('dry-run', { type: 'boolean', describe: 'check everything, write nothing, print what would happen' })
      .option('skip-unchanged', { type: 'boolean', describe: 'read each block first and write only changed ones (default: on for block devices)' }),
  handler: async (argv) => {
    const { lastUpdatePath, markGoodCommand, updateSlot, withLastUpdate } = await import('@diskimg/ab/internal');
    const options = updateOptionsFrom(argv); // every option checked before the disk is even looked for
    const disk = argv.disk ?? (await bootDisk());
    const r = await withUpdateProgress(argv, (onProgress) =>
      withLastUpdate(lastUpdatePath(disk), { disk, dryRun: argv['dry-run'] }, () =>
        updateSlot({ disk, osTar: argv['os-tar'], osSig: argv['os-sig'], ...options, onProgress }),
      ),
    );
    if (argv.json) printJson(r);
    else process.stdout.write(describe(r, (label) => markGoodCommand(argv.disk ?? null, { label, source: r.booted.source })));
  },
};

/** What `update` and `update --repo` (commands/repo.ts) both take from the command line. */
export function updateOptionsFrom(argv: Omit<Args, 'os-tar'>) {
  return {
    slot: argv.slot,
    pubkey: argv.pubkey,
    noVerify: argv.verify === false,
    bootedLabel: argv['booted-label'],
    allowDowngrade: argv['allow-downgrade'],
    force: argv.force,
    noSwitch: argv.switch === false,
    tries: parseTries(argv.tries),
    dryRun: argv['dry-run'],
    skipUnchanged: argv['skip-unchanged'],
    hintDisk: argv.disk ?? null,
  };
}

type OnProgress = (p: { bytes: number; total?: number }) => void;

/** Run an update with the progress line (terminal only, not with --json/--quiet), then print its warnings (not with --quiet; --json has them in `warnings`). */
export async function withUpdateProgress<R extends { warnings: string[] }>(argv: { json?: boolean; quiet?: boolean }, run: (onProgress: OnProgress) => Promise<R>): Promise<R> {
  let progress: Progress | undefined;
  const quiet = !progressWanted(argv);
  const r = await run(({ bytes, total }) => {
    progress ??= createProgress({ label: 'update', total: total || undefined, quiet });
    progress.update(bytes);
  }).catch((e) => {
    progress?.clear();
    throw e;
  });
  progress?.finish();
  if (!argv.quiet) for (const w of r.warnings) printWarning(w);
  return r;
}

/** `markGood(label)`: the mark-good command to run once `label` booted (hints.ts markGoodCommand). */
function describe(r: UpdateResult, markGood: (label: string) => string): string {
  const v = (x: string | null) => x ?? 'unknown version';
  const lines = [
    `${r.dryRun ? 'would write' : 'wrote'} ${r.target.label} (partition ${r.target.partition}) on ${r.disk}: ${v(r.previousVersion)} -> ${v(r.newVersion)}`,
    `booted: ${r.booted.label ?? 'unknown'} (${r.booted.source})${r.verified ? '' : '; signature NOT verified (--no-verify)'}`,
  ];
  if (!r.dryRun) {
    lines.push(`read ${fmtBytes(r.inputBytes)}, wrote ${fmtBytes(r.bytesWritten)}${r.bytesSkipped ? `, skipped ${fmtBytes(r.bytesSkipped)} unchanged` : ''} in ${(r.durationMs / 1000).toFixed(1)} s`);
    if (r.armed) {
      const t = r.armed.trial;
      lines.push(t ? `next boot: ${t.label} on trial (${t.triesLeft} tries); confirm with "${markGood(t.label)}" after a healthy boot` : `default slot: ${r.armed.defaultLabel}`);
    } else if (r.staged) lines.push(`${r.staged} staged (not armed): rollback will not make it the default; set-next ${r.target.slot} tries it`);
    else lines.push('boot configuration unchanged');
  }
  return lines.join('\n') + '\n';
}
