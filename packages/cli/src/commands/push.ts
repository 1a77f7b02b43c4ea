/**
 * `diskimg push`: from the builder, one command updates a node over ssh. The system `ssh` client
 * is spawned (so ~/.ssh/config, agents and jump hosts work; no password is ever handled here):
 *
 *  1. `REMOTE boot-disk --json` on the node finds its boot disk (skipped when DISK is given);
 *  2. the signature (public data, a few hundred bytes) and the public key (--pubkey, required) are copied
 *     into a private temp dir on the node (`mktemp -d`, `cat > FILE`);
 *  3. the tarball is streamed over ssh into `REMOTE update DISK --slot inactive --os-tar - --os-sig
 *     TMP/os.tar.minisig … --json`: the node verifies before it arms the trial, and the temp dir is
 *     removed whatever the outcome;
 *  4. with --reboot, `--reboot-cmd` (default `reboot`) runs on the node after a successful update.
 *
 * A failure on the node comes back as one line with the node's own message.
 */
import type { CommandModule } from 'yargs';
import { createReadStream, statSync } from 'node:fs';
import { DiskimgError, UsageError, fmtBytes } from '@diskimg/partitions/internal';
import { printJson, printWarning } from '../output.js';
import { retryWithDisk } from './boot-common.js';
import { parseTries, triesOption } from './numeric.js';
import { createProgress, progressWanted } from '../progress.js';

interface Args {
  disk?: string;
  ssh: string;
  'ssh-opt'?: string[];
  'os-tar'?: string;
  'os-sig'?: string;
  repo?: string;
  version?: string;
  pubkey?: string;
  'remote-cmd': string;
  'booted-label'?: string;
  tries?: string;
  reboot?: boolean;
  'reboot-cmd': string;
  json?: boolean;
  quiet?: boolean;
}

/** A shell word for the remote shell. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface Remote {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `ssh [opts] HOST command`, feeding `input` (a buffer, or a file streamed with progress). */
async function ssh(a: Args, command: string, input?: Buffer | { file: string; onBytes(n: number): void }): Promise<Remote> {
  const { spawn } = await import('node:child_process');
  const args = [...(a['ssh-opt'] ?? []).flatMap((o) => ['-o', o]), '--', a.ssh, command];
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e: NodeJS.ErrnoException) =>
      // Not started: ENOENT (not installed) and EACCES (not executable, or a PATH entry this user cannot search) alike.
      reject(e.code === 'ENOENT' || e.code === 'EACCES' ? new DiskimgError(`ssh: the ssh client could not be run (${e.code}: not installed, or not on a PATH this user can search; apt-get install openssh-client)`) : e),
    );
    child.stdin.on('error', () => {}); // the node may stop reading early (a refusal): its message says why
    if (input === undefined) child.stdin.end();
    else if (Buffer.isBuffer(input)) child.stdin.end(input);
    else {
      let n = 0;
      const rs = createReadStream(input.file);
      rs.on('data', (d) => input.onBytes((n += d.length)));
      rs.on('error', reject);
      rs.pipe(child.stdin);
    }
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
    );
  });
}

/** One line for a failed remote step: the node's own "diskimg: …" message, or ssh's. */
function nodeError(a: Args, step: string, r: Remote, fix = ''): DiskimgError {
  const lines = r.stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const mine = lines.filter((l) => l.startsWith('diskimg: ')).pop();
  let msg: string;
  if (mine) msg = mine.slice('diskimg: '.length) + fix;
  else if (r.code === 127) msg = `${a['remote-cmd']}: command not found on the node (${lines.pop() ?? 'exit 127'}); put diskimg on its PATH or give --remote-cmd 'node /path/to/diskimg.mjs'`;
  else if (r.code === 255) msg = `ssh failed: ${lines.pop() ?? 'exit 255'}`;
  else msg = lines.pop() ?? `exit ${r.code}`;
  return new DiskimgError(`${a.ssh}: ${step}: ${msg}`);
}

/** The mark-good to run on the node once `label` booted: the node's diskimg (--remote-cmd), the disk when one was named, the label when push gave one. */
function confirmOnNode(a: Args, disk: string | undefined, label: string): string {
  return [a['remote-cmd'], 'mark-good', ...(disk !== undefined ? [q(disk)] : []), ...(a['booted-label'] !== undefined ? ['--booted-label', q(label)] : [])].join(' ');
}

export const pushCommand: CommandModule<object, Args> = {
  command: 'push [disk]',
  describe: 'from the builder: update a node over ssh in one command (boot-disk, then the tarball streamed into "update --slot inactive --os-tar -", optionally reboot)',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', describe: "the node's disk (default: what \"diskimg boot-disk\" finds on the node)" })
      .option('ssh', { type: 'string', demandOption: true, describe: 'the node: [USER@]HOST as the ssh client understands it (~/.ssh/config applies)' })
      .option('ssh-opt', { type: 'string', array: true, alias: 'ssh-option', describe: 'an ssh -o option, e.g. Port=2222 or IdentityFile=~/.ssh/node (repeatable)' })
      .option('os-tar', { type: 'string', describe: 'OS tarball on the builder' })
      .option('os-sig', { type: 'string', describe: 'its minisign signature (default OS_TAR.minisig)' })
      .option('repo', { type: 'string', describe: 'a local update repository directory: push its latest (or --version) release' })
      .option('version', { type: 'string', describe: 'with --repo: "latest" (default) or a version YYYYMMDD-HHMMSS' })
      .option('pubkey', { type: 'string', describe: 'required: minisign public key that signs the release; the builder checks --repo\'s pointer with it and the node verifies the tarball with it (copied over)' })
      .option('remote-cmd', { type: 'string', default: 'diskimg', describe: "how to run diskimg on the node, a shell command, e.g. 'node /root/diskimg.mjs'" })
      .option('booted-label', { type: 'string', describe: "passed to the node's update (tests, image files)" })
      .option('tries', triesOption("passed to the node's update (0 to 9, checked here first)"))
      .option('reboot', { type: 'boolean', describe: 'reboot the node after the update succeeded' })
      .option('reboot-cmd', { type: 'string', default: 'reboot', describe: 'the command --reboot runs on the node' })
      .check((a) => {
        if ((a['os-tar'] === undefined) === (a.repo === undefined)) throw new UsageError('give --os-tar FILE or --repo DIR (one of them)');
        if (a.repo !== undefined && a['os-sig'] !== undefined) throw new UsageError('--os-sig goes with --os-tar, not --repo');
        if (a.repo === undefined && a.version !== undefined) throw new UsageError('--version goes with --repo');
        if (a.repo !== undefined && /^https?:\/\//.test(a.repo)) {
          throw new UsageError(`--repo: give a local directory (a node fetches a URL itself: on the node, diskimg update --slot inactive --repo ${a.repo} --pubkey KEY)`);
        }
        // The node's update has no key of its own: without one it refuses (no --pubkey), after the copy.
        if (a.pubkey === undefined) throw new UsageError('push: give --pubkey FILE, the minisign public key that signs your releases (the node verifies the tarball with it)');
        return true;
      }),
  handler: async (a) => {
    const tries = parseTries(a.tries); // before ssh is started: the node would only refuse it after the whole stream
    // The key first: a missing or malformed one is refused before anything goes over ssh.
    const { readPublicKeyFile } = await import('@diskimg/ab/internal');
    await readPublicKeyFile(a.pubkey!);
    // What to send: a file and its signature's text.
    let tar: string;
    let sigText: Buffer;
    if (a.repo !== undefined) {
      const { resolveRelease } = await import('@diskimg/ab/internal');
      const rel = await resolveRelease({ repo: a.repo, kind: 'os', version: a.version, pubkey: a.pubkey });
      tar = rel.artifact;
      sigText = Buffer.from(rel.sigText);
    } else {
      tar = a['os-tar']!;
      const { readFileSync } = await import('node:fs');
      sigText = readFileSync(a['os-sig'] ?? `${tar}.minisig`);
    }
    const size = statSync(tar).size;
    const remote = a['remote-cmd'];

    // 1. The node's boot disk.
    let disk = a.disk;
    if (disk === undefined) {
      const r = await ssh(a, `${remote} boot-disk --json`);
      if (r.code !== 0) {
        // diskimg ran and found no (or several) psyopsOS disks: the fix is naming it.
        const { shellWord } = await import('@diskimg/ab/internal');
        throw nodeError(a, 'boot-disk', r, `; name the node's disk: ${retryWithDisk(shellWord)}`);
      }
      disk = (JSON.parse(r.stdout) as { disk: string }).disk;
    }

    // 2. The signature (and key) into a private temp dir on the node.
    const mk = await ssh(a, 'umask 077 && t=$(mktemp -d) && cat > "$t/os.tar.minisig" && echo "$t"', sigText);
    if (mk.code !== 0) throw nodeError(a, 'copying the signature', mk);
    const tmp = mk.stdout.trim();
    if (!tmp.startsWith('/')) throw new DiskimgError(`${a.ssh}: copying the signature: mktemp printed ${JSON.stringify(tmp)}`);
    const cleanup = () => ssh(a, `rm -rf ${q(tmp)}`).catch(() => undefined);
    let pubArg = '';
    {
      const { readFileSync } = await import('node:fs');
      const pk = await ssh(a, `cat > ${q(`${tmp}/pubkey`)}`, readFileSync(a.pubkey!));
      if (pk.code !== 0) {
        await cleanup();
        throw nodeError(a, 'copying the public key', pk);
      }
      pubArg = ` --pubkey ${q(`${tmp}/pubkey`)}`;
    }

    // 3. The tarball streamed into update on the node.
    const extra = [a['booted-label'] !== undefined ? ` --booted-label ${q(a['booted-label'])}` : '', tries !== undefined ? ` --tries ${tries}` : ''].join('');
    const cmd =
      `${remote} update ${q(disk)} --slot inactive --os-tar - --os-sig ${q(`${tmp}/os.tar.minisig`)}${pubArg}${extra} --json --quiet; ` +
      `rc=$?; rm -rf ${q(tmp)}; exit $rc`;
    const progress = createProgress({ label: `push ${a.ssh}`, total: size, quiet: !progressWanted(a) });
    const up = await ssh(a, cmd, { file: tar, onBytes: (n) => progress.update(n) }).catch(async (e) => {
      progress.clear();
      await cleanup();
      throw e;
    });
    if (up.code !== 0) {
      progress.clear();
      await cleanup();
      throw nodeError(a, 'update', up);
    }
    progress.finish();
    let result: any;
    try {
      result = JSON.parse(up.stdout);
    } catch {
      throw new DiskimgError(`${a.ssh}: update: the node printed no JSON result: ${up.stdout.slice(0, 200)}`);
    }
    for (const w of result.warnings ?? []) printWarning(`${a.ssh}: ${w}`);

    // 4. Reboot, only after success.
    let rebooted = false;
    if (a.reboot) {
      const rb = await ssh(a, a['reboot-cmd']);
      // A reboot may cut the connection before ssh hears the exit status (255): that is success.
      if (rb.code !== 0 && rb.code !== 255) throw nodeError(a, 'reboot', rb);
      rebooted = true;
    }
    if (a.json) printJson({ node: a.ssh, disk, sentBytes: size, rebooted, update: result });
    else {
      const v = (x: string | null) => x ?? 'unknown version';
      process.stdout.write(
        `${a.ssh}: wrote ${result.target?.label} on ${disk}: ${v(result.previousVersion)} -> ${v(result.newVersion)} (${fmtBytes(size)} sent, verified on the node: ${result.verified ? 'yes' : 'NO'})\n` +
          (result.armed?.trial ? `next boot: ${result.armed.trial.label} on trial (${result.armed.trial.triesLeft} tries); confirm with "${confirmOnNode(a, a.disk, result.armed.trial.label)}" on the node\n` : '') +
          (rebooted ? `${a.ssh}: rebooting\n` : ''),
      );
    }
  },
};
