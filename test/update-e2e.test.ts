/**
 * `diskimg update` end to end with real parts around it:
 *  - the OS tarball over HTTP from a real nginx, through a forwarder that cuts the connection three
 *    times: resumed with Range (206 in nginx's access log), the slot checks out (e2fsck -fn, debugfs
 *    rdump = the tarball), --json counts every input byte;
 *  - a 404 for the tarball: one line, exit 1, not one byte of the disk changed;
 *  - nginx with Range switched off (max_ranges 0) and one drop mid-stream: one line, exit 1, A, the
 *    GPT and the ESP byte-identical, B incomplete for `show` and invisible to blkid;
 *  - `ssh root@127.0.0.1 'diskimg update … --os-tar -' < os.tar` through a real sshd.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, createReadStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runCli, type CliResult } from './helpers/cli.js';
import { startDroppingProxy } from './helpers/dropping-proxy.js';
import { startNginx, type Nginx } from './helpers/nginx.js';
import { startSshd, type SshServer } from './helpers/sshd.js';
import { blkidPartition, checkSlot, digests, fileSha, GRUBENV_B_STAGED, grubenvText, have, writeOsTar } from './helpers/update.js';
import { ranTool, skipOrFail } from './helpers/skip.js';

const MiB = 1 << 20;
const work = mkdtempSync(join(tmpdir(), 'update-e2e-'));
const www = join(work, 'www');
mkdirSync(join(www, 'norange'), { recursive: true });

// No proxy from the environment: the tests choose their own path to nginx.
const ENV = { SOURCE_DATE_EPOCH: '1764374400', http_proxy: '', HTTP_PROXY: '', https_proxy: '', HTTPS_PROXY: '', no_proxy: '', NO_PROXY: '' };
const SMALL = ['--esp-size', '40M', '--secret-size', '8M', '--slot-size', '32M', '--seed', 'update-e2e'];
const V1 = '20251129-000000';
const V2 = '20251201-000000';

const missing = ['sfdisk', 'e2fsck', 'debugfs', 'blkid', 'tar', 'mcopy'].filter((c) => !have(c));
const toolSkip = missing.length ? `missing ${missing.join(', ')}` : undefined;

const closers: (() => Promise<void> | void)[] = [];
test.after.always(async () => {
  for (const c of closers.reverse()) await c();
  rmSync(work, { recursive: true, force: true });
});

const cli = (args: string[]): Promise<CliResult> => runCli(args, { env: ENV });
async function ok(args: string[]): Promise<CliResult> {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r;
}

let key: { pub: string; sec: string };
async function sign(file: string, version: string): Promise<string> {
  const tc = { type: 'psyopsOS', filename: `psyopsOS.x86_64.${version}.tar`, version, architecture: 'x86_64' };
  await ok(['sign', file, '--seckey', key.sec, '--trusted', ...Object.entries(tc).map(([k, v]) => `${k}=${v}`)]);
  return `${file}.minisig`;
}

let base: string; // create: A and B hold V1, next boot A
let osTar: string; // V2, ~7 MiB of incompressible data, served by nginx as /os.tar and /norange/os.tar
let nginx: Nginx | undefined;
let nginxSkip: string | undefined;

test.before(async () => {
  if (toolSkip) return;
  await ok(['keygen', '--out', join(work, 'k')]);
  key = { pub: join(work, 'k.pub'), sec: join(work, 'k.key') };
  const v1 = writeOsTar(join(work, 'v1.tar'), { kernel: 'kernel one\n' });
  await sign(v1, V1);
  base = join(work, 'base.img');
  await ok(['create', base, '--os-tar', v1, '--pubkey', key.pub, '--no-bootloader', ...SMALL]);
  osTar = writeOsTar(join(www, 'os.tar'), {
    kernel: randomBytes(MiB),
    initramfs: randomBytes(MiB / 2),
    modloop: randomBytes(5 * MiB + 12345),
    'etc-version': V2,
  });
  await sign(osTar, V2);
  for (const f of ['os.tar', 'os.tar.minisig']) copyFileSync(join(www, f), join(www, 'norange', f));
  const n = await startNginx(work, www, { locations: 'location /norange/ { max_ranges 0; }' });
  if (typeof n === 'string') nginxSkip = n;
  else {
    nginx = n;
    closers.push(() => n.stop());
  }
});

function fresh(name: string): string {
  const img = join(work, `${name}.img`);
  const r = spawnSync('cp', ['--sparse=always', base, img]);
  if (r.status !== 0) throw new Error(`cp ${base}: ${r.stderr}`);
  return img;
}

/** why: a missing tool list (toolSkip), nginx's or sshd's reason; undefined = it can run. */
function skipped(t: ExecutionContext, why: string | undefined, tool = 'nginx'): boolean {
  if (!why) return ranTool(t, tool), false;
  skipOrFail(t, why, { tool: why === toolSkip ? missing.join('+') : tool });
  return true;
}

/** nginx's access log lines for `prefix` since line `from`; waits up to 5 s for `want` of them (nginx logs a request when it ends). */
async function logLines(n: Nginx, from: number, prefix: string, want: number): Promise<string[]> {
  const lines = () => n.accessLog().slice(from).filter((l) => l.startsWith(prefix));
  for (let i = 0; i < 50 && lines().length < want; i++) await new Promise((r) => setTimeout(r, 100));
  return lines();
}

const oneLine = (t: ExecutionContext, stderr: string) => t.is(stderr.trim().split('\n').length, 1, stderr);

test.serial('HTTP through nginx, cut three times on the way: resumed with Range (206), slot e2fsck-clean and equal to the tarball, --json counts the input', async (t) => {
  if (skipped(t, toolSkip ?? nginxSkip)) return;
  const n = nginx!;
  const img = fresh('http');
  const before = digests(img);
  const cuts = [3 * MiB / 2, MiB + 7, 2 * MiB + 333];
  const proxy = await startDroppingProxy(n.port, cuts);
  closers.push(proxy.close);
  const logFrom = n.accessLog().length;
  const url = `http://127.0.0.1:${proxy.port}/os.tar`;
  const t0 = Date.now();
  const r = await cli(['update', img, '--slot', 'inactive', '--os-tar', url, '--os-sig', `http://127.0.0.1:${n.port}/os.tar.minisig`, '--pubkey', key.pub, '--json']);
  t.log(`update over HTTP with ${cuts.length} cuts: ${Date.now() - t0} ms`);
  t.is(r.code, 0, r.stderr);
  t.is(r.json?.inputBytes, statSync(osTar).size);
  t.is(r.json?.target.label, 'psyopsOS-B');
  t.is(r.json?.newVersion, V2);
  t.true(r.json?.verified);
  t.is(proxy.cutCount(), cuts.length);
  const log = await logLines(n, logFrom, '/os.tar ', cuts.length + 1);
  t.is(log.length, cuts.length + 1, log.join('\n'));
  t.regex(log[0]!, /^\/os\.tar 200 "-"/);
  for (const line of log.slice(1)) t.regex(line, /^\/os\.tar 206 "bytes=[1-9]\d*-" "\S+"/, log.join('\n'));
  checkSlot(t, img, 'psyopsOS-B', osTar, work);
  const after = digests(img);
  for (const k of ['gpt-primary', 'gpt-backup', 'p2', 'p3']) t.is(after[k], before[k], k);
  t.is((await ok(['show', img, '--json'])).json.esp.nextBoot.label, 'psyopsOS-B');
});

test.serial('HTTP 404 for the tarball: one line, exit 1, the disk unchanged', async (t) => {
  if (skipped(t, toolSkip ?? nginxSkip)) return;
  const n = nginx!;
  const img = fresh('404');
  const before = fileSha(img);
  const url = `http://127.0.0.1:${n.port}/missing.tar`;
  const r = await cli(['update', img, '--slot', 'inactive', '--os-tar', url, '--os-sig', `http://127.0.0.1:${n.port}/os.tar.minisig`, '--pubkey', key.pub]);
  t.is(r.code, 1, r.stderr);
  oneLine(t, r.stderr);
  t.regex(r.stderr, /missing\.tar: HTTP 404 Not Found/);
  t.is(fileSha(img), before);
});

test.serial('a server without Range support that drops once mid-stream: one line, exit 1, A, GPT and grub.cfg unchanged, B incomplete (staged) and invisible to blkid', async (t) => {
  if (skipped(t, toolSkip ?? nginxSkip)) return;
  const n = nginx!;
  const img = fresh('norange');
  const before = digests(img);
  const proxy = await startDroppingProxy(n.port, [2 * MiB]);
  closers.push(proxy.close);
  const logFrom = n.accessLog().length;
  const r = await cli(['update', img, '--slot', 'inactive', '--os-tar', `http://127.0.0.1:${proxy.port}/norange/os.tar`,
    '--os-sig', `http://127.0.0.1:${n.port}/norange/os.tar.minisig`, '--pubkey', key.pub]);
  t.is(r.code, 1, r.stderr);
  oneLine(t, r.stderr);
  t.regex(r.stderr, /dropped after \d+ bytes and the server does not support resuming \(Range\)/);
  // nginx was asked for a range and answered the whole file (max_ranges 0).
  const log = await logLines(n, logFrom, '/norange/os.tar ', 2);
  t.is(log.length, 2, log.join('\n'));
  t.regex(log[1]!, /^\/norange\/os\.tar 200 "bytes=[1-9]\d*-"/);
  const after = digests(img);
  for (const k of ['gpt-primary', 'gpt-backup', 'p2', 'p3']) t.is(after[k], before[k], k);
  t.is(grubenvText(img), GRUBENV_B_STAGED, "the ESP's one change: B staged before its first byte");
  t.not(after.p4, before.p4, 'B was being written');
  const show = await ok(['show', img, '--json']);
  t.is(show.json.partitions[3].filesystem.type, 'incomplete');
  t.is(show.json.esp.nextBoot.label, 'psyopsOS-A');
  const b = blkidPartition(img, 'psyopsOS-B', work);
  t.notRegex(b.out, /psyopsOS-B|ext4/, b.out);
});

/** `ssh … command` with `stdinFile` on its standard input. */
function ssh(server: SshServer, command: string, stdinFile: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', [...server.sshArgs, command], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.on('error', () => {});
    createReadStream(stdinFile).pipe(child.stdin);
  });
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

test.serial("ssh root@127.0.0.1 'diskimg update IMG --slot inactive --os-tar - …' < os.tar through a real sshd: the slot checks out", async (t) => {
  if (skipped(t, toolSkip)) return;
  const server = await startSshd();
  if (skipped(t, typeof server === 'string' ? server : undefined, 'sshd')) return;
  const s = server as SshServer;
  closers.push(() => s.stop());
  const img = fresh('ssh');
  const before = digests(img);
  const cmd = `cd ${q(repoRoot)} && node --import=tsx --conditions=source packages/cli/src/run.ts update ${q(img)} --slot inactive --os-tar - --os-sig ${q(`${osTar}.minisig`)} --pubkey ${q(key.pub)} --json`;
  const r = await ssh(s, cmd, osTar);
  t.is(r.code, 0, r.stderr + s.log().slice(-2000));
  const j = JSON.parse(r.stdout);
  t.is(j.inputBytes, statSync(osTar).size);
  t.is(j.target.label, 'psyopsOS-B');
  t.true(j.verified);
  checkSlot(t, img, 'psyopsOS-B', osTar, work);
  const after = digests(img);
  for (const k of ['gpt-primary', 'gpt-backup', 'p2', 'p3']) t.is(after[k], before[k], k);
});
