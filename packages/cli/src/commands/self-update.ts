import type { CommandModule } from 'yargs';
import { resolve } from 'node:path';
import { fmtBytes, InputError } from '@diskimg/partitions/internal';
import { printJson } from '../output.js';
import { createProgress, progressWanted, type Progress } from '../progress.js';
import { COMMIT } from '../version.js';

interface Args {
  repo: string;
  version?: string;
  pubkey?: string;
  'allow-downgrade'?: boolean;
  'dry-run'?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export const selfUpdateCommand: CommandModule<object, Args> = {
  command: 'self-update',
  describe: 'replace this one-file diskimg.mjs by the newer signed bundle of a repository (verified, checked with --version, renamed atomically)',
  builder: (y) =>
    y
      .option('repo', { type: 'string', demandOption: true, describe: 'update repository (http(s) URL or directory) with a published bundle (publish --bundle)' })
      .option('version', { type: 'string', describe: '"latest" (default: the pointer) or a version YYYYMMDD-HHMMSS' })
      .option('pubkey', { type: 'string', describe: 'minisign public key that signs the releases (required)' })
      .option('allow-downgrade', { type: 'boolean', describe: 'install a version older than the running one' })
      .option('dry-run', { type: 'boolean', describe: 'check the repository and the versions; download and write nothing' }),
  handler: async (argv) => {
    // Only the bundle (scripts/bundle.mjs defines COMMIT) is one file that can be replaced.
    const running = resolve(process.argv[1] ?? '');
    if (COMMIT === undefined) {
      throw new InputError(`${running}: not the one-file bundle (this diskimg runs from its sources or a package install); self-update replaces dist/diskimg.mjs only, update this one with git and pnpm`);
    }
    let progress: Progress | undefined;
    const quiet = !progressWanted(argv);
    const { selfUpdate } = await import('@diskimg/ab/internal');
    const r = await selfUpdate({
      repo: argv.repo,
      version: argv.version,
      pubkey: argv.pubkey,
      target: running,
      allowDowngrade: argv['allow-downgrade'],
      dryRun: argv['dry-run'],
      onProgress: (bytes, total) => {
        progress ??= createProgress({ label: 'self-update', total: total || undefined, quiet });
        progress.update(bytes);
      },
    }).catch((e) => {
      progress?.clear();
      throw e;
    });
    progress?.finish();
    if (argv.json) return printJson(r);
    const line = r.upToDate
      ? `up to date: ${r.target} is ${r.previous}`
      : r.dryRun
        ? `would replace ${r.target}: ${r.previous} -> ${r.version} (${r.filename}, key ${r.keyId})`
        : `replaced ${r.target}: ${r.previous} -> ${r.version} (${r.filename}, ${fmtBytes(r.bytes)}, key ${r.keyId}); it says ${r.versionLine}`;
    process.stdout.write(`${line}\n`);
  },
};
