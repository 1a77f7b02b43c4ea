/**
 * Issue 26.5: HTTP has an overall deadline (--http-timeout) and a stall rule (--min-rate over
 * --stall-window), in every command that downloads. A real nginx serves a repository written by
 * `publish`; a forwarder in front of it starves the tarball's answer (headers then silence, or one
 * byte per interval). Short option values keep each case to seconds. Each run is bounded by a
 * timeout and its peak RSS (/usr/bin/time -f %M); it must end with one line naming the URL and the
 * rule, exit 1, the GPT, ESP, secret and booted slot byte-identical and the target `incomplete`.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runCli, type CliResult } from './helpers/cli.js';
import { startStallProxy, type StallProxy } from './helpers/dropping-proxy.js';
import { startNginx, type Nginx } from './helpers/nginx.js';
import { needCondition, needTools } from './helpers/skip.js';
import { digests, GRUBENV_B_STAGED, grubenvText, tarDir, writeOsTar } from './helpers/update.js';

const work = mkdtempSync(join(tmpdir(), 'http-limits-'));
const www = join(work, 'www');
const repo = join(www, 'repo');
mkdirSync(repo, { recursive: true });
const ENV = { SOURCE_DATE_EPOCH: '1764374400', http_proxy: '', HTTP_PROXY: '', no_proxy: '', NO_PROXY: '' };
const SMALL = ['--esp-size', '40M', '--secret-size', '8M', '--slot-size', '32M', '--seed', 'http-limits'];
const V1 = '20251101-000000';
const V2 = '20251201-000000';
const MAX_RSS_KIB = 400 * 1024;

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

/** The CLI under /usr/bin/time -f %M, killed after `limitMs`: its result, peak RSS (KiB) and run time. */
function timed(args: string[], limitMs: number): Promise<CliResult & { rssKiB: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn('/usr/bin/time', ['-f', '%M', process.execPath, '--import=tsx', '--conditions=source', 'packages/cli/src/run.ts', ...args], {
      cwd: repoRoot,
      env: { DISKIMG_LAST_UPDATE: '', ...process.env, ...ENV },
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      const lines = stderr.trimEnd().split('\n');
      const rssKiB = Number(lines.pop());
      if (/^Command (exited with non-zero status|terminated by signal)/.test(lines.at(-1) ?? '')) lines.pop(); // time's own line
      resolve({ code: code ?? 137, stdout, stderr: lines.length ? lines.join('\n') + '\n' : '', rssKiB, ms: Date.now() - t0 });
    });
  });
}

let nginx: Nginx | undefined;
let nginxSkip: string | undefined;
const ready = (async () => {
  await ok(['keygen', '--out', join(work, 'k')]);
  // Big enough that the tarball's answer is still streaming when the forwarder starves it.
  const v1 = writeOsTar(join(work, 'v1.tar'), { kernel: randomBytes(200_000), 'etc-version': V1 });
  const v2 = writeOsTar(join(work, 'v2.tar'), { kernel: randomBytes(3 << 20), 'etc-version': V2 });
  await ok(['publish', '--repo', repo, '--os-tar', v1, '--seckey', join(work, 'k.key'), '--version', V1]);
  await ok(['create', join(work, 'base.img'), '--os-tar', join(repo, `psyopsOS.x86_64.${V1}.tar`), '--pubkey', join(work, 'k.pub'), '--no-bootloader', ...SMALL]);
  await ok(['publish', '--repo', repo, '--os-tar', v2, '--seckey', join(work, 'k.key'), '--version', V2]);
  const espDir = join(work, 'esp');
  mkdirSync(join(espDir, 'EFI', 'BOOT'), { recursive: true });
  writeFileSync(join(espDir, 'EFI', 'BOOT', 'BOOTX64.EFI'), randomBytes(2 << 20));
  await ok(['publish', '--repo', repo, '--esp-tar', tarDir(espDir, join(work, 'esp.tar')), '--seckey', join(work, 'k.key'), '--version', V2]);
  const n = await startNginx(work, www);
  if (typeof n === 'string') nginxSkip = n;
  else {
    nginx = n;
    closers.push(() => n.stop());
  }
})();

async function setup(t: ExecutionContext, match: RegExp, opts: { after: number; trickleMs?: number }): Promise<{ proxy: StallProxy; img: string } | undefined> {
  await ready;
  if (!needCondition(t, nginx ? undefined : nginxSkip ?? 'nginx did not start', 'nginx')) return undefined;
  if (!needTools(t, 'sfdisk')) return undefined;
  const proxy = await startStallProxy(nginx!.port, match, opts);
  closers.push(() => proxy.close());
  const img = join(work, `node-${Math.random().toString(36).slice(2)}.img`);
  copyFileSync(join(work, 'base.img'), img);
  return { proxy, img };
}

/** One line on stderr, no stack, no "internal error". */
function oneLine(t: ExecutionContext, stderr: string): void {
  t.is(stderr.trimEnd().split('\n').length, 1, stderr);
  t.notRegex(stderr, /internal error|\n\s+at /);
}

const tarball = (port: number) => `http://127.0.0.1:${port}/repo/psyopsOS.x86_64.${V2}.tar`;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function refusedUpdate(t: ExecutionContext, trickleMs: number | undefined): Promise<void> {
  const s = await setup(t, /\.tar HTTP/, { after: 256 * 1024, trickleMs });
  if (!s) return;
  const before = digests(s.img);
  const r = await timed(
    ['update', s.img, '--slot', 'inactive', '--booted-label', 'psyopsOS-A', '--repo', `http://127.0.0.1:${s.proxy.port}/repo/`, '--pubkey', join(work, 'k.pub'),
      '--stall-window', '1', '--min-rate', '1K', '--http-timeout', '5'],
    60_000,
  );
  t.log(r.stderr.trim(), `${r.ms} ms, ${r.rssKiB} KiB`);
  t.is(r.code, 1, r.stdout);
  oneLine(t, r.stderr);
  // The URL, the overall rule that ended it, and the stall rule that failed each attempt.
  t.regex(r.stderr, new RegExp(`^diskimg: ${esc(tarball(s.proxy.port))}: not complete within 5 s \\(the --http-timeout limit\\): \\d+ of \\d+ bytes received in \\d+ attempts; last: stalled: \\d+ bytes from 127\\.0\\.0\\.1:${s.proxy.port} in 1 s, fewer than 1024 \\(--min-rate 1024 bytes/s over --stall-window 1\\)`));
  t.true(r.ms < 30_000, `${r.ms} ms`);
  t.true(r.rssKiB > 0 && r.rssKiB < MAX_RSS_KIB, `peak RSS ${r.rssKiB} KiB`);
  t.true(s.proxy.requests.filter((q) => /\.tar HTTP/.test(q)).length >= 2, s.proxy.requests.join('\n'));
  const after = digests(s.img);
  for (const k of ['gpt-primary', 'gpt-backup', 'p2', 'p3']) t.is(after[k], before[k], `${k} byte-identical`);
  t.is(grubenvText(s.img), GRUBENV_B_STAGED, "the ESP's one change: B staged before its first byte");
  const show = await ok(['show', s.img, '--json']);
  t.is(show.json.partitions.find((p: any) => p.number === 4).filesystem.type, 'incomplete');
}

test.serial('update --repo: the tarball\'s headers, then silence: the stall rule fails each attempt, --http-timeout ends it; one line, booted slot and confirmed default byte-identical, target incomplete and staged', (t) =>
  refusedUpdate(t, undefined));

test.serial('update --repo: the tarball trickles one byte per 300 ms: stalled, resumed, then --http-timeout; one line, booted slot and confirmed default byte-identical, target incomplete and staged', (t) =>
  refusedUpdate(t, 300));

test.serial('update-esp --repo: the ESP tarball trickles: stalled, then --http-timeout; one line, the ESP and everything else byte-identical', async (t) => {
  const s = await setup(t, /psyopsESP\.x86_64-uefi\.\d{8}-\d{6}\.tar HTTP/, { after: 64 * 1024, trickleMs: 300 });
  if (!s) return;
  const before = digests(s.img);
  const r = await timed(['update-esp', s.img, '--repo', `http://127.0.0.1:${s.proxy.port}/repo/`, '--pubkey', join(work, 'k.pub'), '--stall-window', '1', '--http-timeout', '4'], 60_000);
  t.is(r.code, 1, r.stdout);
  oneLine(t, r.stderr);
  t.regex(r.stderr, new RegExp(`^diskimg: http://127\\.0\\.0\\.1:${s.proxy.port}/repo/psyopsESP\\.x86_64-uefi\\.${V2}\\.tar: not complete within 4 s \\(the --http-timeout limit\\): \\d+ of \\d+ bytes received in \\d+ attempts; last: stalled: `));
  t.true(r.rssKiB > 0 && r.rssKiB < MAX_RSS_KIB, `peak RSS ${r.rssKiB} KiB`);
  t.deepEqual(digests(s.img), before);
});

test.serial('check: a pointer whose server never answers ends at --http-timeout with one line naming the pointer (not after the idle timeout × resumes)', async (t) => {
  const s = await setup(t, /latest\.tar\.minisig HTTP/, { after: 0 });
  if (!s) return;
  const before = digests(s.img);
  const r = await timed(['check', s.img, '--booted-label', 'psyopsOS-A', '--repo', `http://127.0.0.1:${s.proxy.port}/repo/`, '--pubkey', join(work, 'k.pub'), '--http-timeout', '2'], 60_000);
  t.is(r.code, 1, r.stdout);
  oneLine(t, r.stderr);
  t.is(r.stderr, `diskimg: http://127.0.0.1:${s.proxy.port}/repo/psyopsOS.x86_64.latest.tar.minisig: not complete within 2 s (the --http-timeout limit): 0 bytes received\n`);
  t.true(r.ms < 20_000, `${r.ms} ms`);
  t.true(r.rssKiB > 0 && r.rssKiB < MAX_RSS_KIB, `peak RSS ${r.rssKiB} KiB`);
  t.deepEqual(digests(s.img), before);
});

test('bad values are usage errors (exit 2), before anything is read', async (t) => {
  const img = join(work, 'none.img');
  for (const [opt, val, re] of [
    ['--http-timeout', 'abc', /--http-timeout abc: a number of seconds/],
    ['--http-timeout', '-1', /--http-timeout -1: a number of seconds/],
    ['--stall-window', '0', /--stall-window 0: a number of seconds, more than 0/],
    ['--min-rate', 'fast', /--min-rate fast: bytes per second/],
  ] as const) {
    for (const cmd of [['update', img, '--slot', 'inactive', '--repo', 'http://127.0.0.1:9/'], ['check', img, '--repo', 'http://127.0.0.1:9/']]) {
      const r = await cli([...cmd, '--pubkey', join(work, 'none.pub'), opt, val]);
      t.is(r.code, 2, `${cmd[0]} ${opt} ${val}: ${r.stderr}`);
      oneLine(t, r.stderr);
      t.regex(r.stderr, re);
    }
  }
  // Every other command that downloads has the options and checks them the same way.
  for (const cmd of [['self-update', '--repo', 'http://127.0.0.1:9/'], ['update-esp', img, '--repo', 'http://127.0.0.1:9/'], ['serve', img, '--repo', 'http://127.0.0.1:9/'],
    ['create', img, '--repo', 'http://127.0.0.1:9/'], ['releases', '--repo', 'http://127.0.0.1:9/']]) {
    const r = await cli([...cmd, '--pubkey', join(work, 'none.pub'), '--stall-window', 'x']);
    t.is(r.code, 2, `${cmd[0]}: ${r.stderr}`);
    oneLine(t, r.stderr);
    t.regex(r.stderr, /--stall-window x: a number of seconds/);
  }
});

test.serial('serve --repo: a repository that never answers holds /health no longer than --http-timeout; the page reports the rule as the repository error', async (t) => {
  const s = await setup(t, /latest\.tar\.minisig HTTP/, { after: 0 });
  if (!s) return;
  const child = spawn(process.execPath, ['--import=tsx', '--conditions=source', 'packages/cli/src/run.ts', 'serve', s.img, '--booted-label', 'psyopsOS-A', '--listen', '127.0.0.1:0',
    '--repo', `http://127.0.0.1:${s.proxy.port}/repo/`, '--pubkey', join(work, 'k.pub'), '--http-timeout', '2'], { cwd: repoRoot, env: { ...process.env, ...ENV }, stdio: ['ignore', 'ignore', 'pipe'] });
  closers.push(() => void child.kill('SIGKILL'));
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString('utf8');
      const m = /on (http:\/\/\S+\/) /.exec(err);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (c) => reject(new Error(`serve exited ${c}: ${err}`)));
  });
  const t0 = Date.now();
  const res = await fetch(`${url}health`);
  const ms = Date.now() - t0;
  const body = (await res.json()) as { repo: { error: string | null } };
  t.true(ms < 10_000, `${ms} ms`);
  t.is(body.repo.error, `http://127.0.0.1:${s.proxy.port}/repo/psyopsOS.x86_64.latest.tar.minisig: not complete within 2 s (the --http-timeout limit): 0 bytes received`);
  child.kill('SIGTERM');
});
