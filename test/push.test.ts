/**
 * Issue 13, `diskimg push` against a real sshd (test/helpers/sshd.ts): "the node" is this machine
 * with an image file (--booted-label), and diskimg on it is the one-file bundle
 * (--remote-cmd 'node …/diskimg.mjs'). push writes slot B and `status` over ssh says TRIAL; a
 * refusal on the node and a missing diskimg come back as one line; --reboot runs --reboot-cmd.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runCli, type CliResult } from './helpers/cli.js';
import { needTools, skipOrFail } from './helpers/skip.js';
import { startSshd, type SshServer } from './helpers/sshd.js';
import { checkSlot, digests, have, writeOsTar } from './helpers/update.js';

const work = mkdtempSync(join(tmpdir(), 'push-'));
const ENV = { SOURCE_DATE_EPOCH: '1764374400' };
const SMALL = ['--esp-size', '40M', '--secret-size', '8M', '--slot-size', '32M', '--seed', 'push'];
const V1 = '20251129-000000';
const V2 = '20251201-000000';
const missing = ['sfdisk', 'e2fsck', 'debugfs', 'blkid', 'tar', 'mcopy'].filter((c) => !have(c));

let server: SshServer | undefined;
let skip: string | undefined = missing.length ? `missing ${missing.join(', ')}` : undefined;
let bundle: string;
let base: string;
let v2: string;
let pub: string;

const ok = async (args: string[]): Promise<CliResult> => {
  const r = await runCli(args, { env: ENV });
  if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r;
};
const sign = (f: string, v: string, key: string) =>
  ok(['sign', f, '--seckey', key, '--trusted', 'type=psyopsOS', '--trusted', `version=${v}`, '--trusted', `filename=psyopsOS.x86_64.${v}.tar`, '--trusted', 'architecture=x86_64']);

test.before(async () => {
  if (skip) return;
  const s = await startSshd();
  if (typeof s === 'string') {
    skip = s;
    return;
  }
  server = s;
  await ok(['keygen', '--out', join(work, 'k')]);
  pub = join(work, 'k.pub');
  const v1 = writeOsTar(join(work, 'v1.tar'), { kernel: 'kernel one\n', 'etc-version': V1 });
  await sign(v1, V1, join(work, 'k.key'));
  v2 = writeOsTar(join(work, 'v2.tar'), { kernel: 'kernel two\n', modloop: Buffer.alloc(3 << 20, 7), 'etc-version': V2 });
  await sign(v2, V2, join(work, 'k.key'));
  base = join(work, 'base.img');
  await ok(['create', base, '--os-tar', v1, '--pubkey', pub, '--no-bootloader', ...SMALL]);
  bundle = join(work, 'node', 'diskimg.mjs');
  const b = spawnSync(process.execPath, [join(repoRoot, 'scripts/bundle.mjs'), '--outfile', bundle, '--quiet'], { encoding: 'utf8' });
  if (b.status !== 0) throw new Error(b.stderr);
});
test.after.always(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

function skipped(t: ExecutionContext): boolean {
  if (!skip) return false;
  skipOrFail(t, skip, { tool: 'sshd' });
  return true;
}

/** The helper's ssh arguments as push options: -p → Port=, -i → IdentityFile=, -o as is. */
function sshOpts(s: SshServer): string[] {
  const out: string[] = [];
  const a = s.sshArgs;
  for (let i = 0; i < a.length - 1; i += 2) {
    const v = a[i + 1]!;
    out.push('--ssh-opt', a[i] === '-p' ? `Port=${v}` : a[i] === '-i' ? `IdentityFile=${v}` : v);
  }
  return out;
}
const host = (s: SshServer) => s.sshArgs.at(-1)!;
let n = 0;
function fresh(): string {
  const img = join(work, `node-${n++}.img`);
  spawnSync('cp', ['--sparse=always', base, img]);
  return img;
}
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

test.serial('push writes slot B on the node, status over ssh says TRIAL; --reboot runs after success', async (t) => {
  if (skipped(t)) return;
  const s = server!;
  const img = fresh();
  const before = digests(img);
  const marker = join(work, 'rebooted');
  const r = await runCli(['push', img, '--ssh', host(s), ...sshOpts(s), '--os-tar', v2, '--pubkey', pub, '--remote-cmd', `node ${q(bundle)}`, '--booted-label', 'psyopsOS-A', '--reboot', '--reboot-cmd', `touch ${q(marker)}`, '--json'], { env: ENV });
  t.is(r.code, 0, r.stderr + s.log().slice(-1500));
  t.is(r.json.update.target.label, 'psyopsOS-B');
  t.true(r.json.update.verified);
  t.is(r.json.update.newVersion, V2);
  t.is(r.json.sentBytes, readFileSync(v2).length);
  t.true(r.json.rebooted);
  t.true(existsSync(marker), '--reboot-cmd ran');
  checkSlot(t, img, 'psyopsOS-B', v2, work);
  const after = digests(img);
  for (const k of ['gpt-primary', 'gpt-backup', 'p2', 'p3']) t.is(after[k], before[k], k);
  const st = spawnSync('ssh', [...s.sshArgs, `node ${q(bundle)} status ${q(img)} --booted-label psyopsOS-B`], { encoding: 'utf8' });
  t.regex(st.stdout, /^psyopsOS-B .*TRIAL/, st.stderr);
  // Nothing left behind in the node's temp dir.
  t.is(spawnSync('sh', ['-c', 'ls -d /tmp/tmp.* 2>/dev/null | xargs -r -n1 sh -c \'test -e "$0/os.tar.minisig" && echo "$0"\''], { encoding: 'utf8' }).stdout, '');
});

test.serial('a refusal on the node comes back as one line with its message; the disk is unchanged; no reboot', async (t) => {
  if (skipped(t)) return;
  const s = server!;
  const img = fresh();
  const before = digests(img);
  await ok(['keygen', '--out', join(work, 'other')]);
  const marker = join(work, 'rebooted-2');
  const r = await runCli(['push', img, '--ssh', host(s), ...sshOpts(s), '--os-tar', v2, '--pubkey', join(work, 'other.pub'), '--remote-cmd', `node ${q(bundle)}`, '--booted-label', 'psyopsOS-A', '--reboot', '--reboot-cmd', `touch ${q(marker)}`], { env: ENV });
  t.is(r.code, 1, r.stdout + r.stderr);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, new RegExp(`^diskimg: ${host(s).replace(/\./g, '\\.')}: update: .*(key|signature)`, 'i'));
  t.false(existsSync(marker));
  t.deepEqual(digests(img), before);
});

test.serial('no diskimg on the node: one line naming the command tried', async (t) => {
  if (skipped(t)) return;
  const s = server!;
  const r = await runCli(['push', '--ssh', host(s), ...sshOpts(s), '--os-tar', v2, '--pubkey', pub, '--remote-cmd', '/nonexistent/diskimg'], { env: ENV });
  t.is(r.code, 1, r.stderr);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, /boot-disk: \/nonexistent\/diskimg: command not found on the node/);
});

test.serial("the node has no psyopsOS disk: push's one line suggests push itself with DISK; pasted with the disk, it runs", async (t) => {
  if (skipped(t)) return;
  const s = server!;
  const bd = spawnSync(process.execPath, [bundle, 'boot-disk'], { encoding: 'utf8' });
  if (bd.status === 0) return skipOrFail(t, `a psyopsOS disk is attached to this machine: ${bd.stdout.split('\n')[0]}`, { tool: 'tools' });
  const r = await runCli(['push', '--ssh', host(s), ...sshOpts(s), '--os-tar', v2, '--pubkey', pub, '--remote-cmd', `node ${bundle}`], { env: ENV });
  t.is(r.code, 1, r.stderr);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, /boot-disk: no psyopsOS boot disk found/);
  t.notRegex(r.stderr, /diskimg update DISK/);
  const line = /; name the node's disk: (.*)$/m.exec(r.stderr)?.[1];
  t.truthy(line, r.stderr);
  t.true(line!.startsWith('diskimg push DISK --ssh '), line);
  const img = fresh();
  const p = spawnSync('sh', ['-c', `diskimg() { "$N" --import=tsx --conditions=source "$R" "$@"; }\n${line!.replace('DISK', img)}`], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, ...ENV, N: process.execPath, R: join(repoRoot, 'packages/cli/src/run.ts') },
  });
  t.is(p.status, 0, p.stdout + p.stderr);
  t.regex(p.stdout, /wrote psyopsOS-B .*-> 20251201-000000/);
  checkSlot(t, img, 'psyopsOS-B', v2, work);
});

// Issue 27.7: the node's update has no key of its own, so --pubkey is required and checked before
// any ssh (no server needed: an unreachable host proves nothing was tried); --help says so.
test('push without --pubkey, or with an unreadable one: exit 2/1 before any ssh, one line naming the fix', async (t) => {
  const tar = join(work, 'nokey.tar');
  spawnSync('tar', ['-cf', tar, '-T', '/dev/null']);
  const r = await runCli(['push', '--ssh', 'root@192.0.2.1', '--ssh-opt', 'ConnectTimeout=1', '--os-tar', tar], { env: ENV });
  t.is(r.code, 2, r.stderr);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, /give --pubkey FILE/);
  const bad = await runCli(['push', '--ssh', 'root@192.0.2.1', '--ssh-opt', 'ConnectTimeout=1', '--os-tar', tar, '--pubkey', join(work, 'missing.pub')], { env: ENV });
  t.is(bad.code, 1, bad.stderr);
  t.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  t.regex(bad.stderr, /missing\.pub: no such public key file/);
  t.notRegex(bad.stderr, /ssh|192\.0\.2\.1/);
  const h = await runCli(['push', '--help']);
  t.notRegex(h.stdout, /default: the node's own/);
  t.regex(h.stdout, /--pubkey\s+required/);
});

// Parsed before any ssh: no server needed, so it runs even where sshd is skipped.
test('push --repo https://… is a usage error (exit 2) naming the fix', async (t) => {
  const r = await runCli(['push', '--ssh', 'root@127.0.0.1', '--repo', 'https://example.invalid/repo'], { env: ENV });
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /--repo: give a local directory/);
});

test.serial('push --repo DIR sends the release the verified pointer names; a pointer signed by another key is refused before anything is sent', async (t) => {
  if (skipped(t)) return;
  const s = server!;
  const repo = join(work, 'repo');
  mkdirSync(repo);
  await ok(['publish', '--repo', repo, '--os-tar', v2, '--seckey', join(work, 'k.key'), '--version', V2]);
  const img = fresh();
  const r = await runCli(['push', img, '--ssh', host(s), ...sshOpts(s), '--repo', repo, '--pubkey', pub, '--remote-cmd', `node ${q(bundle)}`, '--booted-label', 'psyopsOS-A', '--json'], { env: ENV });
  t.is(r.code, 0, r.stderr + s.log().slice(-1500));
  t.is(r.json.update.target.label, 'psyopsOS-B');
  t.is(r.json.update.newVersion, V2);
  // The slot holds the repository's tarball and its signature (publish signed it anew).
  checkSlot(t, img, 'psyopsOS-B', join(repo, `psyopsOS.x86_64.${V2}.tar`), work);

  // The pointer re-signed by a key the builder does not trust: refused on the builder, the node untouched.
  await ok(['keygen', '--out', join(work, 'rogue')]);
  const pointer = join(repo, 'psyopsOS.x86_64.latest.tar.minisig');
  spawnSync('rm', ['-f', pointer]);
  await ok(['sign', join(repo, `psyopsOS.x86_64.${V2}.tar`), '--seckey', join(work, 'rogue.key'), '--sig', pointer, '--trusted', 'type=psyopsOS', '--trusted', `version=${V2}`, '--trusted', `filename=psyopsOS.x86_64.${V2}.tar`, '--trusted', 'architecture=x86_64']);
  const img2 = fresh();
  const before = digests(img2);
  const bad = await runCli(['push', img2, '--ssh', host(s), ...sshOpts(s), '--repo', repo, '--pubkey', pub, '--remote-cmd', `node ${q(bundle)}`, '--booted-label', 'psyopsOS-A'], { env: ENV });
  t.is(bad.code, 1, bad.stdout + bad.stderr);
  t.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  t.regex(bad.stderr, /key|signature/i);
  t.deepEqual(digests(img2), before);
});
