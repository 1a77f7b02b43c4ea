/**
 * A real OpenSSH server for tests, as a child process on a free 127.0.0.1 port: its own host key,
 * config and authorized_keys in a temp dir, a throwaway ed25519 client key, root login by key only.
 * For `ssh node diskimg update --os-tar - < psyopsOS.tar`-style tests: run
 * `ssh ...sshArgs 'command'` with the input on stdin.
 *
 * The session's PATH is this process's PATH (sshd SetEnv), so the remote side finds the same node.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './nginx.js';

export interface SshServer {
  port: number;
  /** Arguments for `ssh` before the remote command: -p port -i key -o … root@127.0.0.1 */
  sshArgs: string[];
  /** sshd's log so far (it runs with -e: logs on stderr). */
  log(): string;
  stop(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd'; // sshd re-executes itself, so it must be started by absolute path

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Start sshd; resolves to a skip reason (a string) when it cannot run here. */
export async function startSshd(): Promise<SshServer | string> {
  if (!existsSync(SSHD)) return 'sshd not installed (apt-get install openssh-server)';
  if (!have('ssh') || !have('ssh-keygen')) return 'ssh or ssh-keygen not installed (apt-get install openssh-client)';
  if (process.getuid?.() !== 0) return 'needs root (sshd must run as root to log in as root)';
  // The privilege separation directory sshd insists on; normally made by the init script.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const dir = mkdtempSync(join(tmpdir(), 'diskimg-sshd-'));
  const hostKey = join(dir, 'host_ed25519');
  const clientKey = join(dir, 'client_ed25519');
  for (const [key, comment] of [[hostKey, 'diskimg-test-host'], [clientKey, 'diskimg-test-client']]) {
    const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', key], { encoding: 'utf8' });
    if (r.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      return `ssh-keygen failed: ${r.stderr.trim()}`;
    }
  }
  const authorized = join(dir, 'authorized_keys');
  writeFileSync(authorized, readFileSync(`${clientKey}.pub`), { mode: 0o600 });

  let lastErr = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const config = join(dir, 'sshd_config');
    writeFileSync(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${authorized}`,
        'PermitRootLogin yes',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'StrictModes no', // the temp dir's modes are not sshd's business here
        'UsePAM no',
        'X11Forwarding no',
        'PrintMotd no',
        'PrintLastLog no',
        'LogLevel VERBOSE',
        `SetEnv PATH=${process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'}`,
      ].join('\n') + '\n',
    );
    const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    child.on('error', (e) => (log += `${e.message}\n`));
    const sshArgs = [
      '-p', String(port), '-i', clientKey,
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
      '-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10',
      'root@127.0.0.1',
    ];
    const stop = () =>
      new Promise<void>((resolve) => {
        const done = () => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      });
    // Ready when a real login works (proves keys, config and root login, not just a listening port).
    const deadline = Date.now() + 15_000;
    let ok = false;
    while (Date.now() < deadline && child.exitCode === null) {
      if (/Server listening/.test(log)) {
        const r = spawnSync('ssh', [...sshArgs, 'true'], { encoding: 'utf8', timeout: 15_000 });
        ok = r.status === 0;
        if (ok) break;
        lastErr = r.stderr.trim();
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (ok) return { port, sshArgs, log: () => log, stop };
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    lastErr = `${lastErr} ${log.split('\n').filter((l) => /error|fatal|refused|Bind/i.test(l)).join(' | ')}`.trim();
    if (!/Address already in use/.test(log)) break; // only a port collision is worth another try
  }
  rmSync(dir, { recursive: true, force: true });
  return `sshd did not start or refused the test login: ${lastErr || 'no reason given'}`;
}
