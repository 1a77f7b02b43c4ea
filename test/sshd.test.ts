// The sshd test helper works end to end: a file piped through `ssh … 'sha256sum'` hashes the same
// (the path `ssh node diskimg update --os-tar - < psyopsOS.tar` will take).
import test from 'ava';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd, type SshServer } from './helpers/sshd.js';
import { needCondition } from './helpers/skip.js';

const started = startSshd();
test.after.always(async () => {
  const s = await started;
  if (typeof s !== 'string') await s.stop();
});

function ssh(server: SshServer, command: string, stdinFile?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', [...server.sshArgs, command], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (stdinFile) createReadStream(stdinFile).pipe(child.stdin);
    else child.stdin.end();
  });
}

test("ssh root@127.0.0.1 'sha256sum' < file prints the file's hash; the remote PATH finds our node", async (t) => {
  const server = await started;
  if (typeof server === 'string') return void needCondition(t, server, 'sshd');
  needCondition(t, undefined, 'sshd');
  const dir = mkdtempSync(join(tmpdir(), 'diskimg-ssh-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const data = randomBytes(16 * 1024 * 1024 + 17);
  const file = join(dir, 'psyopsOS.tar');
  writeFileSync(file, data);
  const r = await ssh(server, 'sha256sum', file);
  t.is(r.code, 0, r.stderr + server.log());
  t.is(r.stdout, `${createHash('sha256').update(data).digest('hex')}  -\n`);
  t.is(r.stderr, '');
  const node = await ssh(server, 'command -v node');
  t.is(node.code, 0, node.stderr);
  t.is(node.stdout.trim(), process.execPath, 'the same node binary');
});
