/**
 * The update repository's commands (issue 12), registered by one line in index.ts:
 * publish, check, update-esp, and `update --repo URL|DIR [--version latest|V]`, which
 * wraps the update command: without --repo it is exactly `update`; with it, the release
 * is resolved from the repository and then written by the same library call (updateSlot).
 */
import type { CommandModule, Argv } from 'yargs';
import { fmtBytes, UsageError } from '@diskimg/partitions/internal';
import { publishCommand } from './publish.js';
import { checkCommand } from './check.js';
import { updateEspCommand } from './update-esp.js';
import { updateOptionsFrom, withUpdateProgress } from './update.js';
import { bootDisk } from './boot-common.js';
import { printJson } from '../output.js';

/** Marks --os-tar as "taken from the repository" so update's own required-option check passes. */
const FROM_REPO = '\0repo';

export function withRepo(update: CommandModule<any, any>): CommandModule<any, any> {
  return {
    ...update,
    describe: `${update.describe}; or the latest (or --version) release of a repository (--repo URL|DIR)`,
    builder: (y: Argv) => {
      const b = typeof update.builder === 'function' ? (update.builder as (y: Argv) => Argv)(y) : y;
      return b
        .option('repo', { type: 'string', describe: 'update repository (http(s) URL or directory): the release its latest pointer (or --version) names' })
        .option('version', { type: 'string', describe: 'with --repo: "latest" (default) or a version YYYYMMDD-HHMMSS' })
        .middleware((a) => {
          if (a.repo === undefined) {
            if (a.version !== undefined) throw new UsageError('--version goes with --repo');
            return;
          }
          if (a['os-tar'] !== undefined || a['os-sig'] !== undefined) throw new UsageError('--repo replaces --os-tar/--os-sig: give one or the other');
          a['os-tar'] = a.osTar = FROM_REPO;
        }, true);
    },
    handler: async (argv: any) => {
      if (argv.repo === undefined) return update.handler(argv);
      const { lastUpdatePath, markGoodCommand, updateFromRepo, withLastUpdate } = await import('@diskimg/ab/internal');
      const options = updateOptionsFrom(argv); // every option checked before the disk or the repository is read
      const disk = argv.disk ?? (await bootDisk());
      const r = await withUpdateProgress(argv, (onProgress) =>
        withLastUpdate(lastUpdatePath(disk), { disk, dryRun: argv['dry-run'] }, () =>
          updateFromRepo({ disk, repo: argv.repo, version: argv.version, ...options, onProgress }),
        ),
      );
      if (argv.json) {
        printJson(r);
        return;
      }
      const v = (x: string | null) => x ?? 'unknown version';
      const lines = [`repository: ${r.release.filename}${r.release.verified ? '' : ' (signature NOT verified)'}`];
      if (r.upToDate === 'booted') lines.push(`up to date: ${r.booted.label} runs ${r.release.version}; nothing written`);
      else if (r.upToDate === 'armed') lines.push(`${r.target.label} already holds ${r.release.version} and boots next (on trial); nothing written: reboot`);
      else {
        lines.push(`${r.dryRun ? 'would write' : 'wrote'} ${r.target.label} (partition ${r.target.partition}) on ${r.disk}: ${v(r.previousVersion)} -> ${v(r.newVersion)}`);
        if (!r.dryRun) {
          lines.push(`read ${fmtBytes(r.inputBytes)}, wrote ${fmtBytes(r.bytesWritten)}${r.bytesSkipped ? `, skipped ${fmtBytes(r.bytesSkipped)} unchanged` : ''} in ${(r.durationMs / 1000).toFixed(1)} s`);
          const t = r.armed?.trial;
          lines.push(r.armed ? (t ? `next boot: ${t.label} on trial (${t.triesLeft} tries); confirm with "${markGoodCommand(argv.disk ?? null, { label: t.label, source: r.booted.source })}" after a healthy boot` : `default slot: ${r.armed.defaultLabel}`) : r.staged ? `${r.staged} staged (not armed): rollback will not make it the default; set-next ${r.target.slot} tries it` : 'boot configuration unchanged');
        }
      }
      process.stdout.write(lines.join('\n') + '\n');
    },
  };
}

/** Replace `update` by its --repo-aware version and add publish, check and update-esp. */
export function addRepoCommands(commands: CommandModule<any, any>[]): void {
  const i = commands.findIndex((c) => typeof c.command === 'string' && c.command.startsWith('update '));
  if (i >= 0) commands[i] = withRepo(commands[i]!);
  commands.push(publishCommand, checkCommand, updateEspCommand);
}
