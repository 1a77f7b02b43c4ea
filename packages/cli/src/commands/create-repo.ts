/**
 * `create OUTPUT --repo URL|DIR [--version latest|V] [--arch A] [--fwtype T]` (issue 27.10): build
 * an image from a repository's release instead of exact file names. Wraps `create` (registered by
 * one line in index.ts): without --repo it is exactly `create`; with it, the OS release (and the
 * latest ESP release, unless --esp-tar/--esp-dir is given) is found and verified as `update --repo`
 * does (releaseInputs), downloaded when the repository is a URL, then `create` runs on those files.
 */
import type { Argv, CommandModule } from 'yargs';
import { statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseSize, PSYOPS_DEFAULTS, UsageError } from '@diskimg/partitions/internal';
import { displayText, onSignalCleanup } from '../output.js';
import { createProgress, progressWanted, type Progress } from '../progress.js';

export function withCreateRepo(create: CommandModule<any, any>): CommandModule<any, any> {
  return {
    ...create,
    builder: (y: Argv) => {
      const b = typeof create.builder === 'function' ? (create.builder as (y: Argv) => Argv)(y) : y;
      return b
        .option('repo', { type: 'string', describe: 'build from an update repository (http(s) URL or directory): its OS release and latest ESP release, verified with --pubkey' })
        .option('version', { type: 'string', describe: 'with --repo: the OS release, "latest" (default) or a version YYYYMMDD-HHMMSS' })
        .option('arch', { type: 'string', describe: 'with --repo: the OS architecture (default x86_64)' })
        .option('fwtype', { type: 'string', describe: 'with --repo: the ESP firmware type (default x86_64-uefi)' })
        .example('$0 create node.img --repo https://updates.example/repo --pubkey release.pub', 'the latest OS and ESP releases of a repository, verified')
        .middleware((a) => {
          if (a.repo === undefined) {
            for (const k of ['version', 'arch', 'fwtype']) if (a[k] !== undefined) throw new UsageError(`--${k} goes with --repo`);
            return;
          }
          const clash = ['os-tar', 'os-sig', 'esp-sig', 'layout-only'].filter((k) => a[k] !== undefined);
          if (clash.length) throw new UsageError(`--repo takes the OS tarball and its signature from the repository: drop ${clash.map((k) => `--${k}`).join(', ')}`);
        }, true);
    },
    handler: async (argv: any) => {
      if (argv.repo === undefined) return create.handler(argv);
      const { releaseInputs } = await import('@diskimg/ab/internal');
      // The partition sizes create will use (its defaults are PSYOPS_DEFAULTS); 'rest' counts as the default.
      const size = (v: string | undefined, d: string) => {
        const n = parseSize(v ?? d, 'size');
        return typeof n === 'number' ? n : (parseSize(d, 'size') as number);
      };
      const out = resolve(argv.output);
      const isDevice = (() => {
        try {
          return statSync(out).isBlockDevice();
        } catch {
          return false;
        }
      })();
      let progress: Progress | undefined;
      let current = '';
      let tmp: string | undefined;
      const drop = onSignalCleanup(() => tmp && rmSync(tmp, { recursive: true, force: true }));
      const ownEsp = argv['esp-tar'] !== undefined || argv['esp-dir'] !== undefined;
      try {
        const inputs = await releaseInputs({
          repo: argv.repo,
          version: argv.version,
          arch: argv.arch,
          fwtype: argv.fwtype,
          pubkey: argv.pubkey,
          noVerify: argv.verify === false,
          esp: ownEsp ? 'no' : argv.bootloader === false ? 'optional' : 'required',
          tmpDir: isDevice ? tmpdir() : dirname(out),
          // A tarball larger than twice its partition cannot fit; a hostile server cannot fill the disk.
          maxOsBytes: 2 * size(argv['slot-size'], PSYOPS_DEFAULTS.slotSize),
          maxEspBytes: 2 * size(argv['esp-size'], PSYOPS_DEFAULTS.espSize),
          onTempDir: (dir) => (tmp = dir),
          onProgress: (name, bytes, total) => {
            if (name !== current) {
              progress?.finish();
              current = name;
              progress = createProgress({ label: name, total: total || undefined, quiet: !progressWanted(argv) });
            }
            progress!.update(bytes);
          },
        }).catch((e) => {
          progress?.clear();
          throw e;
        });
        progress?.finish();
        tmp = inputs.tmp;
        try {
          if (!argv.json && !argv.quiet) {
            const names = [inputs.os, inputs.esp].filter((r) => r !== null).map((r) => `${r!.filename}${r!.verified ? '' : ' (signature NOT verified)'}`);
            process.stderr.write(`diskimg: from ${displayText(argv.repo)}: ${displayText(names.join(', '))}\n`);
          }
          await create.handler({
            ...argv,
            'os-tar': inputs.osTar,
            osTar: inputs.osTar,
            'os-sig': inputs.osSig,
            osSig: inputs.osSig,
            ...(inputs.espTar ? { 'esp-tar': inputs.espTar, espTar: inputs.espTar, 'esp-sig': inputs.espSig, espSig: inputs.espSig } : {}),
          });
        } finally {
          await inputs.cleanup();
        }
      } finally {
        drop();
      }
    },
  };
}

/** Replace `create` in the list by its --repo-aware version. */
export function addCreateRepo(commands: CommandModule<any, any>[]): void {
  const i = commands.findIndex((c) => typeof c.command === 'string' && c.command.startsWith('create '));
  if (i >= 0) commands[i] = withCreateRepo(commands[i]!);
}
