/**
 * Issue 27.10: releases by hand. `create --repo URL|DIR [--version V]` builds an image from a
 * repository's release (OS and ESP found through their verified signatures, downloaded streaming
 * from a real nginx), byte-identical to `create` from the same files; a tarball that does not match
 * its signature leaves no image and no download behind. `releases --repo` lists versions per kind,
 * the latest, and each signature's state, from a directory or nginx's autoindex page.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliResult } from './helpers/cli.js';
import { startNginx, type Nginx } from './helpers/nginx.js';
import { needCondition } from './helpers/skip.js';
import { fileSha, tarDir, writeOsTar } from './helpers/update.js';

const work = mkdtempSync(join(tmpdir(), 'releases-'));
const www = join(work, 'www');
const repo = join(www, 'repo');
const evil = join(www, 'evil');
mkdirSync(repo, { recursive: true });
const ENV = { SOURCE_DATE_EPOCH: '1764374400', http_proxy: '', HTTP_PROXY: '', no_proxy: '', NO_PROXY: '' };
const SMALL = ['--esp-size', '40M', '--secret-size', '8M', '--slot-size', '32M', '--seed', 'releases'];
const V1 = '20251101-000000';
const V2 = '20251201-000000';
const E1 = '20251102-000000';

const cli = (args: string[]): Promise<CliResult> => runCli(args, { env: ENV });
async function ok(args: string[]): Promise<CliResult> {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r;
}
function oneLine(t: ExecutionContext, stderr: string): void {
  t.is(stderr.trimEnd().split('\n').length, 1, stderr);
  t.notRegex(stderr, /internal error|\n\s+at /);
}

let nginx: Nginx | undefined;
let nginxSkip: string | undefined;
const key = { pub: join(work, 'k.pub'), sec: join(work, 'k.key') };
const ready = (async () => {
  await ok(['keygen', '--out', join(work, 'k')]);
  await ok(['keygen', '--out', join(work, 'other')]);
  const v1 = writeOsTar(join(work, 'v1.tar'), { kernel: randomBytes(100_000), 'etc-version': V1 });
  const v2 = writeOsTar(join(work, 'v2.tar'), { kernel: randomBytes(2 << 20), 'etc-version': V2 });
  const espDir = join(work, 'esp');
  mkdirSync(join(espDir, 'EFI', 'BOOT'), { recursive: true });
  writeFileSync(join(espDir, 'EFI', 'BOOT', 'BOOTX64.EFI'), randomBytes(50_000));
  const esp = tarDir(espDir, join(work, 'esp.tar'));
  await ok(['publish', '--repo', repo, '--os-tar', v1, '--seckey', key.sec, '--version', V1]);
  await ok(['publish', '--repo', repo, '--os-tar', v2, '--seckey', key.sec, '--version', V2]);
  await ok(['publish', '--repo', repo, '--esp-tar', esp, '--seckey', key.sec, '--version', E1]);
  // A mirror that serves altered bytes under the genuine signatures.
  cpSync(repo, evil, { recursive: true });
  const t = join(evil, `psyopsOS.x86_64.${V2}.tar`);
  // The real tarball's first 10 KiB, so the altered file still starts as a tar.
  writeFileSync(t, Buffer.concat([readFileSync(t).subarray(0, 10240), randomBytes(1000)]));
  const n = await startNginx(work, www, { locations: `location /listed/ { alias ${repo}/; autoindex on; }` });
  if (typeof n === 'string') nginxSkip = n;
  else nginx = n;
})();
test.after.always(async () => {
  await nginx?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function need(t: ExecutionContext): Promise<boolean> {
  await ready;
  return needCondition(t, nginx ? undefined : nginxSkip ?? 'nginx did not start', 'nginx');
}

test.serial('create --repo URL (nginx) and --repo DIR build the same bytes as create from the release files; --version picks an older release', async (t) => {
  if (!(await need(t))) return;
  const url = `http://127.0.0.1:${nginx!.port}/repo/`;
  const fromFiles = join(work, 'files.img');
  await ok(['create', fromFiles, '--os-tar', join(repo, `psyopsOS.x86_64.${V2}.tar`), '--esp-tar', join(repo, `psyopsESP.x86_64-uefi.${E1}.tar`), '--pubkey', key.pub, ...SMALL]);
  const fromUrl = join(work, 'url.img');
  // What a SIGKILLed create --repo left: removed by the next one (a dead PID's directory only).
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  mkdirSync(join(work, `.diskimg-release-${dead}-AbC123`));
  writeFileSync(join(work, `.diskimg-release-${dead}-AbC123`, 'psyopsOS.x86_64.x.tar'), 'partial');
  mkdirSync(join(work, `.diskimg-release-${process.pid}-XyZ789`)); // a live process's: kept
  const u = await ok(['create', fromUrl, '--repo', url, '--pubkey', key.pub, ...SMALL, '--http-timeout', '60']);
  t.regex(u.stderr, new RegExp(`from ${url}: psyopsOS\\.x86_64\\.${V2}\\.tar, psyopsESP\\.x86_64-uefi\\.${E1}\\.tar`));
  const fromDir = join(work, 'dir.img');
  await ok(['create', fromDir, '--repo', repo, '--pubkey', key.pub, ...SMALL]);
  t.is(fileSha(fromUrl), fileSha(fromFiles));
  t.is(fileSha(fromDir), fileSha(fromFiles));
  t.deepEqual(readdirSync(work).filter((n) => n.startsWith('.diskimg-release-')), [`.diskimg-release-${process.pid}-XyZ789`], 'the downloads and a dead process\'s leftovers are removed');
  rmSync(join(work, `.diskimg-release-${process.pid}-XyZ789`), { recursive: true });
  const show = await ok(['show', fromUrl, '--json']);
  t.regex(JSON.stringify(show.json), new RegExp(V2));
  t.regex(JSON.stringify(show.json), new RegExp(E1));

  const old = join(work, 'old.img');
  const o = await ok(['create', old, '--repo', url, '--version', V1, '--pubkey', key.pub, ...SMALL, '--json']);
  t.is(o.json.verified.os.fields.version, V1);
  t.is(o.json.verified.esp.fields.version, E1);
});

test.serial('create --repo URL: a tarball that does not match its signature leaves no image and no download; another key is refused before any download', async (t) => {
  if (!(await need(t))) return;
  const out = join(work, 'evil.img');
  const r = await cli(['create', out, '--repo', `http://127.0.0.1:${nginx!.port}/evil/`, '--pubkey', key.pub, ...SMALL]);
  t.is(r.code, 1, r.stdout);
  oneLine(t, r.stderr);
  t.regex(r.stderr, new RegExp(`^diskimg: http://127\\.0\\.0\\.1:${nginx!.port}/evil/psyopsOS\\.x86_64\\.${V2}\\.tar: signature verification failed`));
  t.false(existsSync(out));
  t.deepEqual(readdirSync(work).filter((n) => n.startsWith('.diskimg-release-') || n.startsWith('.evil.img')), []);

  const k = await cli(['create', out, '--repo', `http://127.0.0.1:${nginx!.port}/repo/`, '--pubkey', join(work, 'other.pub'), ...SMALL]);
  t.is(k.code, 1);
  oneLine(t, k.stderr);
  t.regex(k.stderr, /latest\.tar\.minisig: signed by key/);
  t.false(existsSync(out));
});

test('create --repo: conflicting options are usage errors', async (t) => {
  const out = join(work, 'usage.img');
  for (const extra of [['--os-tar', 'x.tar'], ['--os-sig', 'x.minisig'], ['--layout-only']]) {
    const r = await cli(['create', out, '--repo', repo, '--pubkey', key.pub, ...extra]);
    t.is(r.code, 2, r.stderr);
    oneLine(t, r.stderr);
    t.regex(r.stderr, /--repo takes the OS tarball and its signature from the repository: drop --/);
  }
  const v = await cli(['create', out, '--os-tar', 'x.tar', '--version', V1]);
  t.is(v.code, 2);
  t.regex(v.stderr, /--version goes with --repo/);
});

test.serial('releases --repo DIR and URL (nginx autoindex): versions per kind, newest first, latest marked, signatures checked; without a listing only the pointers', async (t) => {
  if (!(await need(t))) return;
  const dir = await ok(['releases', '--repo', repo, '--pubkey', key.pub]);
  t.is(
    dir.stdout,
    [
      `psyopsESP x86_64-uefi: latest ${E1}`,
      `  ${E1}  latest  signature ok  psyopsESP.x86_64-uefi.${E1}.tar`,
      `psyopsOS x86_64: latest ${V2}`,
      `  ${V2}  latest  signature ok  psyopsOS.x86_64.${V2}.tar`,
      `  ${V1}          signature ok  psyopsOS.x86_64.${V1}.tar`,
      '',
    ].join('\n'),
  );
  const listed = await ok(['releases', '--repo', `http://127.0.0.1:${nginx!.port}/listed/`, '--pubkey', key.pub, '--json']);
  t.is(listed.json.listing, 'index');
  const os = listed.json.groups.find((g: any) => g.kind === 'os');
  t.deepEqual(os.releases.map((r: any) => [r.version, r.latest, r.signature, r.tarball]), [[V2, true, 'ok', true], [V1, false, 'ok', true]]);
  const bare = await ok(['releases', '--repo', `http://127.0.0.1:${nginx!.port}/repo/`, '--pubkey', key.pub]);
  t.regex(bare.stdout, /the server gives no directory listing; only the releases the pointers name are shown/);
  t.regex(bare.stdout, new RegExp(`  ${V2}  latest  signature ok`));
  t.notRegex(bare.stdout, new RegExp(V1));

  // Another key: every signature refused, exit 1, still the listing.
  const wrong = await cli(['releases', '--repo', repo, '--pubkey', join(work, 'other.pub')]);
  t.is(wrong.code, 1);
  t.regex(wrong.stdout, /signature REFUSED: .*signed by key/);
  t.regex(wrong.stdout, /latest unknown \(/);
});
