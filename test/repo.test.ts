/**
 * The update repository (issue 12) end to end with real parts: `publish` writes a directory that a
 * real nginx serves; `check` and `update --repo http://…` read it; the slot is checked with e2fsck
 * -fn and debugfs rdump; hostile pointers are refused with the disk unchanged; a reader polling the
 * pointer while versions are published in a loop never sees a missing or unverifiable file; a
 * publish killed at random points leaves a valid pointer to a complete release.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { get } from 'node:http';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePublicKey, encodeSignature, formatTrustedComment, publish, readSecretKeyFile, signToSignature, verifyFile } from '../packages/ab/src/index.js';
import { repoRoot, runCli, type CliResult } from './helpers/cli.js';
import { needTools, skipOrFail } from './helpers/skip.js';
import { startNginx, type Nginx } from './helpers/nginx.js';
import { blkidPartition, checkSlot, digests, espFile, GRUBENV_B_STAGED, grubenvText, have, tarDir, writeOsTar } from './helpers/update.js';
import { startGateProxy } from './helpers/dropping-proxy.js';

const work = mkdtempSync(join(tmpdir(), 'repo-'));
const www = join(work, 'www');
const repo = join(www, 'repo');
mkdirSync(repo, { recursive: true });
const ENV = { SOURCE_DATE_EPOCH: '1764374400', http_proxy: '', HTTP_PROXY: '', no_proxy: '', NO_PROXY: '' };
const SMALL = ['--esp-size', '40M', '--secret-size', '8M', '--slot-size', '32M', '--seed', 'repo'];
const V1 = '20251101-000000';
const V2 = '20251201-000000';
const V3 = '20251215-000000';

const missing = ['sfdisk', 'e2fsck', 'debugfs', 'blkid', 'tar'].filter((c) => !have(c));
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
const oneLine = (t: ExecutionContext, stderr: string) => t.is(stderr.trim().split('\n').length, 1, stderr);
function skipped(t: ExecutionContext, why: string | undefined): boolean {
  if (!why) return false;
  skipOrFail(t, why, { tool: /nginx/i.test(why) ? 'nginx' : /qemu|ovmf|fixture|kernel/i.test(why) ? 'qemu' : 'tools' });
  return true;
}

let key: { pub: string; sec: string };
let other: { pub: string; sec: string };
let base: string; // both slots V1, next boot A
let tarV2: string;
let tarV3: string;
let nginx: Nginx | undefined;
let nginxSkip: string | undefined;
let url: string;

test.before(async () => {
  if (toolSkip) return;
  await ok(['keygen', '--out', join(work, 'k')]);
  await ok(['keygen', '--out', join(work, 'other')]);
  key = { pub: join(work, 'k.pub'), sec: join(work, 'k.key') };
  other = { pub: join(work, 'other.pub'), sec: join(work, 'other.key') };
  const v1 = writeOsTar(join(work, 'v1.tar'), { kernel: 'kernel one\n' });
  const tc = formatTrustedComment({ type: 'psyopsOS', filename: `psyopsOS.x86_64.${V1}.tar`, version: V1, architecture: 'x86_64' });
  await ok(['sign', v1, '--seckey', key.sec, '--trusted', ...tc.split(' ')]);
  base = join(work, 'base.img');
  await ok(['create', base, '--os-tar', v1, '--pubkey', key.pub, '--no-bootloader', ...SMALL]);
  tarV2 = writeOsTar(join(work, 'v2.tar'), { kernel: randomBytes(300_000), 'etc-version': V2 });
  tarV3 = writeOsTar(join(work, 'v3.tar'), { kernel: randomBytes(400_000), modloop: randomBytes(1 << 20), 'etc-version': V3 });
  const n = await startNginx(work, www);
  if (typeof n === 'string') nginxSkip = n;
  else {
    nginx = n;
    closers.push(() => n.stop());
    url = `http://127.0.0.1:${n.port}/repo/`;
  }
});

let imgN = 0;
function fresh(): string {
  const img = join(work, `d${imgN++}.img`);
  copyFileSync(base, img);
  return img;
}
const pointerOf = (dir: string) => readFileSync(join(dir, 'psyopsOS.x86_64.latest.tar.minisig'), 'utf8');

test.serial('publish two versions: the pointer names the newer; an existing version, a downgrade and a foreign --sig are refused', async (t) => {
  if (skipped(t, toolSkip)) return;
  const r2 = await ok(['publish', '--repo', repo, '--os-tar', tarV2, '--seckey', key.sec, '--version', V2, '--trusted', 'kernel=6.1.0', 'alpine=3.20', '--json']);
  t.is(r2.json.artifact, `psyopsOS.x86_64.${V2}.tar`);
  t.is(r2.json.previous, null);
  const r3 = await ok(['publish', '--repo', repo, '--os-tar', tarV3, '--seckey', key.sec, '--version', V3]);
  t.regex(r3.stdout, new RegExp(`latest.tar.minisig: ${V2} -> ${V3}`));
  t.deepEqual(readdirSync(repo).sort(), [
    `psyopsOS.x86_64.${V2}.tar`, `psyopsOS.x86_64.${V2}.tar.minisig`, `psyopsOS.x86_64.${V3}.tar`, `psyopsOS.x86_64.${V3}.tar.minisig`, 'psyopsOS.x86_64.latest.tar.minisig',
  ]);
  // The pointer is a copy of the newest signature; minisign itself verifies the tarball with it.
  t.is(pointerOf(repo), readFileSync(join(repo, `psyopsOS.x86_64.${V3}.tar.minisig`), 'utf8'));
  t.regex(pointerOf(repo), new RegExp(`trusted comment: type=psyopsOS filename=psyopsOS.x86_64.${V3}.tar version=${V3} architecture=x86_64\n`));
  if (have('minisign')) {
    const m = spawnSyncOut('minisign', ['-V', '-p', key.pub, '-m', join(repo, `psyopsOS.x86_64.${V3}.tar`), '-x', join(repo, 'psyopsOS.x86_64.latest.tar.minisig')]);
    t.is(m.status, 0, m.out);
  }
  // refused, one line each, the repository unchanged
  const before = readdirSync(repo).sort();
  const again = await cli(['publish', '--repo', repo, '--os-tar', tarV3, '--seckey', key.sec, '--version', V3]);
  t.is(again.code, 1);
  oneLine(t, again.stderr);
  t.regex(again.stderr, /already published/);
  const down = await cli(['publish', '--repo', repo, '--os-tar', tarV2, '--seckey', key.sec, '--version', '20251210-000000']);
  t.is(down.code, 1);
  t.regex(down.stderr, /names 20251215-000000, newer than 20251210-000000; pass --allow-downgrade/);
  const foreignSig = join(work, 'foreign.minisig');
  const sk = await readSecretKeyFile(other.sec);
  writeFileSync(foreignSig, encodeSignature(await signToSignature(tarV2, sk, `type=psyopsOS filename=psyopsOS.x86_64.20251220-000000.tar version=20251220-000000`)));
  const bad = await cli(['publish', '--repo', repo, '--os-tar', tarV2, '--sig', foreignSig, '--pubkey', key.pub]);
  t.is(bad.code, 1);
  oneLine(t, bad.stderr);
  t.regex(bad.stderr, /signed by key/);
  t.deepEqual(readdirSync(repo).sort(), before);
});

test.serial('check over nginx: exit 10 with the new version; update --repo http:// writes it (e2fsck -fn, debugfs rdump = tarball); then 11 on trial, 0 after mark-good; update again is "up to date"', async (t) => {
  if (skipped(t, toolSkip ?? nginxSkip)) return;
  const img = fresh();
  const c1 = await cli(['check', img, '--repo', url, '--pubkey', key.pub]);
  t.is(c1.code, 10, c1.stderr + c1.stdout);
  t.regex(c1.stdout, new RegExp(`update available: ${V3} \\(booted ${V1}\\)`));
  const before = digests(img);
  const u = await cli(['update', img, '--slot', 'inactive', '--repo', url, '--pubkey', key.pub, '--json']);
  t.is(u.code, 0, u.stderr);
  t.is(u.json.release.filename, `psyopsOS.x86_64.${V3}.tar`);
  t.is(u.json.newVersion, V3);
  t.is(u.json.target.label, 'psyopsOS-B');
  checkSlot(t, img, 'psyopsOS-B', tarV3, work, join(repo, `psyopsOS.x86_64.${V3}.tar.minisig`));
  const after = digests(img);
  for (const k of ['gpt-primary', 'gpt-backup', 'p2', 'p3']) t.is(after[k], before[k], k);
  // The image's "booted" slot is the one GRUB boots next: B, on trial.
  const c2 = await cli(['check', img, '--repo', url, '--pubkey', key.pub]);
  t.is(c2.code, 11, c2.stdout);
  t.regex(c2.stdout, /boot pending: psyopsOS-B is on trial/);
  await ok(['mark-good', img, '--booted-label', 'psyopsOS-B']);
  const c3 = await cli(['check', img, '--repo', url, '--pubkey', key.pub, '--json']);
  t.is(c3.code, 0, c3.stdout);
  t.is(c3.json.status, 'up-to-date');
  t.is(c3.json.booted.version, V3);
  const same = digests(img);
  const u2 = await cli(['update', img, '--slot', 'inactive', '--repo', url, '--pubkey', key.pub]);
  t.is(u2.code, 0, u2.stderr);
  t.regex(u2.stdout, new RegExp(`up to date: psyopsOS-B runs ${V3}; nothing written`));
  t.deepEqual(digests(img), same);
  // --version picks an older one: a downgrade, refused by the same rules as update --os-tar.
  const old = await cli(['update', img, '--slot', 'inactive', '--repo', url, '--version', V2, '--pubkey', key.pub]);
  t.is(old.code, 1);
  t.regex(old.stderr, /older than the booted psyopsOS-B/);
  // Errors are errors: an unreachable repository is exit 1, never "up to date".
  const down = await cli(['check', img, '--repo', 'http://127.0.0.1:9/nothing/', '--pubkey', key.pub]);
  t.is(down.code, 1);
  oneLine(t, down.stderr);
});

test.serial('a release whose trial was given up (rollback, or mark-good after a fallback: the slot marked bad) is not offered again: check exit 0, update --repo refused, nothing written', async (t) => {
  if (skipped(t, toolSkip)) return;
  const img = fresh();
  await ok(['update', img, '--slot', 'inactive', '--repo', repo, '--pubkey', key.pub]);
  const rb = await ok(['rollback', img]); // B's trial ended, B marked bad
  t.regex(rb.stdout, /psyopsOS-B's trial ended and it is marked bad/);
  const c = await cli(['check', img, '--repo', repo, '--pubkey', key.pub, '--json']);
  t.is(c.code, 0, c.stdout + c.stderr);
  t.is(c.json.status, 'up-to-date');
  const human = await cli(['check', img, '--repo', repo, '--pubkey', key.pub]);
  t.regex(human.stdout, new RegExp(`up to date: ${V1} \\(the repository's latest, ${V3}, is what psyopsOS-B holds, marked bad: publish a fixed version\\)`));
  const same = digests(img);
  const u = await cli(['update', img, '--slot', 'inactive', '--repo', repo, '--pubkey', key.pub]);
  t.is(u.code, 1, u.stdout);
  t.regex(u.stderr, new RegExp(`^diskimg: psyopsOS-B holds ${V3}, which is marked bad \\(its trial failed or was given up\\); not trying it again: pass --force to, or publish a fixed version\\n$`));
  t.deepEqual(digests(img), same);
});

test.serial('update --repo --no-switch stages the latest (psyopsos_staged, not bad): check still says update available (exit 10), and update --repo of the same version rewrites and arms it (grub-editenv: the trial, nothing staged)', async (t) => {
  if (skipped(t, toolSkip) || skipped(t, have('grub-editenv') ? undefined : 'missing grub-editenv')) return;
  const img = fresh();
  const editenv = () => {
    const f = join(work, `grubenv-${imgN}-${Date.now()}`);
    writeFileSync(f, espFile(img, '/grub/grubenv'));
    const r = spawnSync('grub-editenv', [f, 'list'], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    return r.stdout;
  };
  const staged = await ok(['update', img, '--slot', 'inactive', '--repo', repo, '--pubkey', key.pub, '--no-switch']);
  t.regex(staged.stdout, /psyopsOS-B staged \(not armed\): rollback will not make it the default; set-next b tries it\n$/);
  t.is(editenv(), 'psyopsos_staged=psyopsOS-B\n');
  const c = await cli(['check', img, '--repo', repo, '--pubkey', key.pub, '--json']);
  t.is(c.code, 10, c.stdout + c.stderr);
  t.is(c.json.status, 'update-available');
  const u = await cli(['update', img, '--slot', 'inactive', '--repo', repo, '--pubkey', key.pub]);
  t.is(u.code, 0, u.stderr);
  t.regex(u.stdout, /next boot: psyopsOS-B on trial \(3 tries\)/);
  t.is(editenv(), 'psyopsos_trial=psyopsOS-B\npsyopsos_tries=3\npsyopsos_armed=3\n');
  const c2 = await cli(['check', img, '--repo', repo, '--pubkey', key.pub]);
  t.is(c2.code, 11, c2.stdout + c2.stderr);
});

/** A repository whose pointer (signed with `sec`) has the trusted comment `tc`. */
async function hostileRepo(name: string, tc: string, sec = key.sec): Promise<string> {
  const dir = join(www, name);
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(repo)) copyFileSync(join(repo, f), join(dir, f));
  writeFileSync(join(www, 'evil.tar'), readFileSync(tarV2));
  const sk = await readSecretKeyFile(sec);
  writeFileSync(join(dir, 'psyopsOS.x86_64.latest.tar.minisig'), encodeSignature(await signToSignature(tarV2, sk, tc)));
  return `http://127.0.0.1:${nginx!.port}/${name}/`;
}

test.serial('hostile pointers: filename=../evil.tar, another file name, another architecture, another key, an edited trusted comment, a tarball not matching: refused in one line, disk unchanged (the last: B incomplete and marked)', async (t) => {
  if (skipped(t, toolSkip ?? nginxSkip)) return;
  const cases: [string, string, RegExp, string?][] = [
    ['dotdot', `type=psyopsOS filename=../evil.tar version=${V3}`, /names "\.\.\/evil\.tar", which is not a file name in the repository/],
    ['othername', `type=psyopsOS filename=evil.tar version=${V3}`, /names "evil\.tar", not a psyopsOS release for x86_64/],
    ['esp', `type=psyopsESP filename=psyopsESP.x86_64-uefi.${V3}.tar version=${V3}`, /type=psyopsESP, not type=psyopsOS/],
    ['arch', `type=psyopsOS filename=psyopsOS.aarch64.${V3}.tar version=${V3} architecture=aarch64`, /not a psyopsOS release for x86_64/],
    ['version', `type=psyopsOS filename=psyopsOS.x86_64.${V3}.tar version=20301231-000000`, /but version=20301231-000000/],
    ['key', `type=psyopsOS filename=psyopsOS.x86_64.${V3}.tar version=${V3}`, /signed by key/, other.sec],
  ];
  for (const [name, tc, re, sec] of cases) {
    const img = fresh();
    const before = digests(img);
    const u = await cli(['update', img, '--slot', 'inactive', '--repo', await hostileRepo(name, tc, sec), '--pubkey', key.pub]);
    t.is(u.code, 1, `${name}: ${u.stdout}`);
    oneLine(t, u.stderr);
    t.regex(u.stderr, re, name);
    t.deepEqual(digests(img), before, name);
    const c = await cli(['check', img, '--repo', `http://127.0.0.1:${nginx!.port}/${name}/`, '--pubkey', key.pub]);
    t.is(c.code, 1, `check ${name}`);
  }
  // The right key, but the pointer's trusted comment edited after signing (a newer version claimed).
  const edited = join(www, 'edited');
  mkdirSync(edited, { recursive: true });
  for (const f of readdirSync(repo)) copyFileSync(join(repo, f), join(edited, f));
  writeFileSync(join(edited, `psyopsOS.x86_64.20301231-000000.tar`), readFileSync(tarV3));
  writeFileSync(join(edited, 'psyopsOS.x86_64.latest.tar.minisig'), pointerOf(repo).replaceAll(V3, '20301231-000000'));
  {
    const img = fresh();
    const before = digests(img);
    for (const cmd of ['update', 'check']) {
      const r = await cli([cmd, img, ...(cmd === 'update' ? ['--slot', 'inactive'] : []), '--repo', `http://127.0.0.1:${nginx!.port}/edited/`, '--pubkey', key.pub]);
      t.is(r.code, 1, `${cmd} edited: ${r.stdout}`);
      oneLine(t, r.stderr);
      t.regex(r.stderr, /latest\.tar\.minisig: the trusted comment does not match its signature \(it was altered\)/);
    }
    t.deepEqual(digests(img), before, 'edited');
  }
  // A tarball that does not match its signature: the slot is left incomplete and marked, A and grub.cfg untouched.
  const dir = join(www, 'tampered');
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(repo)) copyFileSync(join(repo, f), join(dir, f));
  const bytes = readFileSync(tarV3);
  bytes[bytes.length - 3000] ^= 1;
  writeFileSync(join(dir, `psyopsOS.x86_64.${V3}.tar`), bytes);
  const img = fresh();
  const before = digests(img);
  const u = await cli(['update', img, '--slot', 'inactive', '--repo', `http://127.0.0.1:${nginx!.port}/tampered/`, '--pubkey', key.pub]);
  t.is(u.code, 1);
  oneLine(t, u.stderr);
  t.regex(u.stderr, /signature verification failed/);
  const after = digests(img);
  for (const k of ['gpt-primary', 'gpt-backup', 'p2', 'p3']) t.is(after[k], before[k], k);
  t.is(grubenvText(img), GRUBENV_B_STAGED, "the ESP's one change: B staged before its first byte");
  // Missing file named by a valid pointer.
  rmSync(join(dir, `psyopsOS.x86_64.${V3}.tar`));
  const img2 = fresh();
  const before2 = digests(img2);
  const m = await cli(['update', img2, '--slot', 'inactive', '--repo', `http://127.0.0.1:${nginx!.port}/tampered/`, '--pubkey', key.pub]);
  t.is(m.code, 1);
  oneLine(t, m.stderr);
  t.regex(m.stderr, new RegExp(`psyopsOS\\.x86_64\\.${V3}\\.tar: HTTP 404 Not Found: the repository does not have the release its pointer names .*nothing was written`));
  t.deepEqual(digests(img2), before2);
});

test.serial("the ESP older than the repository's ESP pointer: check warns (exit 10, then 12), update --repo warns on stderr (not with --quiet) and in --json; no ESP pointer: silent; one that does not verify: a warning for update, an error for check", async (t) => {
  if (skipped(t, toolSkip ?? nginxSkip)) return;
  const E1 = '20260101-000000';
  const E2 = '20261101-000000';
  const dir = join(www, 'espwarn');
  mkdirSync(dir);
  for (const f of readdirSync(repo)) copyFileSync(join(repo, f), join(dir, f)); // OS V2, V3, pointer V3
  const tree = join(work, 'esp-tree');
  mkdirSync(join(tree, 'EFI/BOOT'), { recursive: true });
  writeFileSync(join(tree, 'EFI/BOOT/BOOTX64.EFI'), randomBytes(4096));
  const espTar = tarDir(tree, join(work, 'esp.tar'));
  await ok(['publish', '--repo', dir, '--esp-tar', espTar, '--seckey', key.sec, '--version', E1]);
  const e1 = join(dir, `psyopsESP.x86_64-uefi.${E1}.tar`);
  const img = join(work, 'espwarn.img');
  await ok(['create', img, '--os-tar', join(work, 'v1.tar'), '--esp-tar', e1, '--esp-sig', `${e1}.minisig`, '--pubkey', key.pub, ...SMALL]);
  await ok(['publish', '--repo', dir, '--esp-tar', espTar, '--seckey', key.sec, '--version', E2]);
  const url = `http://127.0.0.1:${nginx!.port}/espwarn/`;
  // The command to run, complete (issue 27.6): the disk named, the key given.
  const warning = `the ESP is ${E1}, the repository has psyopsESP ${E2}: run diskimg update-esp ${img} --repo ${url} --pubkey ${key.pub}`;

  const c1 = await cli(['check', img, '--repo', url, '--pubkey', key.pub]);
  t.is(c1.code, 10, c1.stdout + c1.stderr);
  t.true(c1.stdout.split('\n').includes(`warning: ${warning}`), c1.stdout);
  t.regex(c1.stdout, new RegExp(`esp: ${E1}, repository ${E2}: update-esp available`));
  const cj = await cli(['check', img, '--repo', url, '--pubkey', key.pub, '--json']);
  t.deepEqual(cj.json.warnings, [warning]);
  t.true(cj.json.esp.updateAvailable);

  const dry = await cli(['update', img, '--slot', 'inactive', '--repo', url, '--pubkey', key.pub, '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  t.is(dry.stderr, `diskimg: warning: ${warning}\n`);
  const u = await cli(['update', img, '--slot', 'inactive', '--repo', url, '--pubkey', key.pub, '--json', '--quiet']);
  t.is(u.code, 0, u.stderr);
  t.is(u.stderr, '');
  t.is(u.json.newVersion, V3);
  t.deepEqual(u.json.esp, { version: E1, latest: E2, behind: true, warning });
  t.true(u.json.warnings.includes(warning));

  await ok(['mark-good', img, '--booted-label', 'psyopsOS-B']);
  const c2 = await cli(['check', img, '--repo', url, '--pubkey', key.pub]);
  t.is(c2.code, 12, c2.stdout);
  t.regex(c2.stdout, new RegExp(`ESP update available: ${E2}`));
  t.true(c2.stdout.includes(`warning: ${warning}`));
  await ok(['update-esp', img, '--repo', url, '--pubkey', key.pub]);
  const c3 = await cli(['check', img, '--repo', url, '--pubkey', key.pub, '--json']);
  t.is(c3.code, 0, c3.stdout);
  t.deepEqual(c3.json.warnings, []);

  // No ESP release in the repository: nothing to say.
  const none = await cli(['update', img, '--slot', 'inactive', '--repo', url.replace('/espwarn/', '/repo/'), '--pubkey', key.pub, '--json']);
  t.is(none.code, 0, none.stderr);
  t.is(none.stderr, '');
  t.deepEqual(none.json.esp, { version: E2, latest: null, behind: false });

  // An ESP pointer signed by another key: update (its job is the OS) warns; check is an error.
  const sk = await readSecretKeyFile(other.sec);
  const E3 = '20261201-000000';
  writeFileSync(join(dir, 'psyopsESP.x86_64-uefi.latest.tar.minisig'), encodeSignature(await signToSignature(espTar, sk, `type=psyopsESP filename=psyopsESP.x86_64-uefi.${E3}.tar version=${E3}`)));
  const bad = await cli(['update', img, '--slot', 'inactive', '--repo', url, '--pubkey', key.pub]);
  t.is(bad.code, 0, bad.stderr);
  t.regex(bad.stdout, /up to date/);
  t.regex(bad.stderr, /^diskimg: warning: cannot compare the ESP with the repository's: .*psyopsESP\.x86_64-uefi\.latest\.tar\.minisig.*signed by key/);
  const cb = await cli(['check', img, '--repo', url, '--pubkey', key.pub]);
  t.is(cb.code, 1, cb.stdout);
  oneLine(t, cb.stderr);
  t.regex(cb.stderr, /signed by key/);
});

/**
 * `update --repo` through a proxy that holds the tarball's answer after 1 MiB: while it is held,
 * `publish --keep 1` adds a newer version and prunes the one being downloaded.
 */
async function heldDownload(t: ExecutionContext, name: string, tar: string, version: string, next: string, nextVersion: string) {
  const dir = join(www, name);
  mkdirSync(dir);
  await ok(['publish', '--repo', dir, '--os-tar', tar, '--seckey', key.sec, '--version', version]);
  const sig = join(work, `${name}.minisig`);
  copyFileSync(join(dir, `psyopsOS.x86_64.${version}.tar.minisig`), sig);
  const gate = await startGateProxy(nginx!.port, /\.tar HTTP/, 1 << 20);
  closers.push(() => gate.close());
  const img = fresh();
  const before = digests(img);
  const running = cli(['update', img, '--slot', 'inactive', '--repo', `http://127.0.0.1:${gate.port}/${name}/`, '--pubkey', key.pub, '--json']);
  // If the client fails before its download is held, say so instead of waiting forever.
  await Promise.race([gate.held, running.then((r) => { throw new Error(`update ended before its download was held: exit ${r.code}: ${r.stderr}`); })]);
  const p = await ok(['publish', '--repo', dir, '--os-tar', next, '--seckey', key.sec, '--version', nextVersion, '--keep', '1', '--json']);
  t.deepEqual(p.json.pruned, [`psyopsOS.x86_64.${version}.tar.minisig`, `psyopsOS.x86_64.${version}.tar`]);
  t.false(existsSync(join(dir, `psyopsOS.x86_64.${version}.tar`)));
  return { dir, gate, img, before, running, sig, url: `http://127.0.0.1:${gate.port}/${name}/` };
}

test.serial('publish --keep 1 while a client downloads: an open download finishes the version it started (e2fsck, debugfs); a resume of the pruned file is a one-line error, booted slot and confirmed default unchanged, B marked, and the next run gets the new version', async (t) => {
  if (skipped(t, toolSkip ?? nginxSkip)) return;
  const R1 = '20260401-000000';
  const R2 = '20260402-000000';
  // 10 MiB: more than the sockets between nginx and the client buffer, so nginx reads the pruned file after the prune.
  const big = writeOsTar(join(work, 'big.tar'), { kernel: randomBytes(6 << 20), modloop: randomBytes(4 << 20), 'etc-version': R1 });
  const small = writeOsTar(join(work, 'small.tar'), { kernel: randomBytes(300_000), 'etc-version': R2 });

  // 1. The connection stays open: nginx keeps reading the unlinked file; the client ends with R1, verified.
  const a = await heldDownload(t, 'busy', big, R1, small, R2);
  a.gate.release();
  const u = await a.running;
  t.is(u.code, 0, u.stderr);
  t.is(u.json.newVersion, R1);
  t.is(u.json.release.version, R1);
  t.is(u.json.target.label, 'psyopsOS-B');
  checkSlot(t, a.img, 'psyopsOS-B', big, work, a.sig);
  t.is(digests(a.img).p3, a.before.p3);
  t.is(a.gate.requests.filter((r) => /\.tar HTTP/.test(r)).length, 1, a.gate.requests.join('\n'));

  // 2. The connection drops after the prune: the resume (Range) finds no file. One line; only B touched.
  const b = await heldDownload(t, 'busy2', big, R1, small, R2);
  b.gate.cut();
  const f = await b.running;
  t.is(f.code, 1, f.stdout);
  t.log(f.stderr.trim());
  oneLine(t, f.stderr);
  t.regex(f.stderr, new RegExp(`psyopsOS\\.x86_64\\.${R1}\\.tar: HTTP 404 Not Found when resuming after \\d+ bytes: the release was removed from the repository during the download \\(a newer publish's --keep; the pointer now names ${R2}\\); nothing was armed: the booted slot and the confirmed default are unchanged, the target slot is left incomplete \\(staged: rollback will not go to it, the next update rewrites it\\); run the update again`));
  t.true(b.gate.requests.some((r) => /\.tar HTTP/.test(r)) && b.gate.requests.filter((r) => /\.tar HTTP/.test(r)).length === 2, b.gate.requests.join('\n'));
  const after = digests(b.img);
  for (const k of ['gpt-primary', 'gpt-backup', 'p2', 'p3']) t.is(after[k], b.before[k], k);
  // The ESP's one change: grubenv marks B not proven (update writes it before B's first byte).
  t.is(espFile(b.img, '/grub/grubenv').toString('latin1').replace(/#+$/, ''), '# GRUB Environment Block\n# WARNING: Do not edit this file by tools other than grub-editenv!!!\npsyopsos_staged=psyopsOS-B\n');
  t.notRegex(blkidPartition(b.img, 'psyopsOS-B', work).out, /psyopsOS-B|ext4/);
  const show = await ok(['show', b.img, '--json']);
  t.is(show.json.partitions.find((p: any) => p.number === 4).filesystem.type, 'incomplete');
  // The next run (the service's next day) gets what the pointer names now.
  const again = await cli(['update', b.img, '--slot', 'inactive', '--repo', b.url, '--pubkey', key.pub, '--json']);
  t.is(again.code, 0, again.stderr);
  t.is(again.json.newVersion, R2);
  checkSlot(t, b.img, 'psyopsOS-B', small, work, join(b.dir, `psyopsOS.x86_64.${R2}.tar.minisig`));
});

function fetchBuf(u: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(u, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

test.serial('a reader polling the pointer while versions are published in a loop never sees a missing or unverifiable file', async (t) => {
  if (skipped(t, toolSkip ?? nginxSkip)) return;
  const dir = join(www, 'race');
  mkdirSync(dir);
  const payload = join(work, 'race.tar');
  writeFileSync(payload, randomBytes(2 << 20));
  const pub = decodePublicKey(readFileSync(key.pub, 'utf8'));
  const PUBLISHES = 25;
  let done = false;
  let reads = 0;
  const versions = new Set<string>();
  const failures: string[] = [];
  const reader = (async () => {
    while (!done) {
      const p = await fetchBuf(`http://127.0.0.1:${nginx!.port}/race/psyopsOS.x86_64.latest.tar.minisig`);
      if (p.status === 404 && versions.size === 0) continue; // nothing published yet
      if (p.status !== 200) {
        failures.push(`pointer: HTTP ${p.status}`);
        continue;
      }
      const name = /filename=(\S+)/.exec(p.body.toString())?.[1];
      const a = await fetchBuf(`http://127.0.0.1:${nginx!.port}/race/${name}`);
      if (a.status !== 200) failures.push(`${name}: HTTP ${a.status}`);
      else {
        try {
          const v = await verifyFile((async function* () { yield a.body; })(), p.body, pub);
          versions.add(v.fields.version!);
        } catch (e) {
          failures.push(`${name}: ${(e as Error).message}`);
        }
      }
      reads++;
    }
  })();
  for (let i = 0; i < PUBLISHES; i++) {
    await publish({ repo: dir, osTar: payload, seckey: key.sec, version: `20260101-0000${String(i).padStart(2, '0')}` });
  }
  done = true;
  await reader;
  t.deepEqual(failures, []);
  t.log(`${PUBLISHES} publishes, ${reads} pointer reads + downloads, ${versions.size} distinct versions seen`);
  t.true(reads >= PUBLISHES, `reads ${reads}`);
  t.true(versions.size >= 3, `versions seen ${versions.size}`);
});

test.serial('publish killed at random points: the pointer always verifies and names a complete release; leftovers are cleaned by the next publish', async (t) => {
  if (skipped(t, toolSkip)) return;
  const dir = join(work, 'killed');
  mkdirSync(dir);
  const payload = join(work, 'kill.tar');
  writeFileSync(payload, randomBytes(24 << 20));
  await ok(['publish', '--repo', dir, '--os-tar', payload, '--seckey', key.sec, '--version', '20260201-000000']);
  const pub = decodePublicKey(readFileSync(key.pub, 'utf8'));
  let rng = 7;
  const rand = () => ((rng = (rng * 1103515245 + 12345) >>> 0) >>> 8) / 2 ** 24;
  const outcomes: string[] = [];
  for (let i = 1; i <= 8; i++) {
    // Kill once the publish has begun writing (its first temporary file appears), after a random extra delay.
    const extra = Math.floor(rand() * 250);
    const child = spawn(process.execPath, ['--import=tsx', '--conditions=source', 'packages/cli/src/run.ts', 'publish', '--repo', dir, '--os-tar', payload, '--seckey', key.sec, '--version', `20260201-00000${i}`], { cwd: repoRoot, env: { ...process.env, ...ENV }, stdio: 'ignore' });
    const closed = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    let exited = false;
    void closed.then(() => (exited = true));
    while (!exited && !readdirSync(dir).some((f) => f.endsWith(`.partial-${child.pid}`))) await new Promise((r) => setTimeout(r, 2));
    await new Promise((r) => setTimeout(r, extra));
    child.kill('SIGKILL');
    const code = await closed;
    const delay = `${extra} ms after its first write`;
    const p = pointerOf(dir);
    const name = /filename=(\S+)/.exec(p)?.[1]!;
    t.true(existsSync(join(dir, name)), `${name} missing`);
    const v = await verifyFile(join(dir, name), p, pub);
    outcomes.push(`kill ${delay}: ${code === null ? 'killed' : `exit ${code}`}, pointer ${v.fields.version}, ${readdirSync(dir).filter((f) => f.startsWith('.')).length} leftovers`);
  }
  t.log(outcomes.join('\n'));
  const last = await ok(['publish', '--repo', dir, '--os-tar', payload, '--seckey', key.sec, '--version', '20260301-000000', '--keep', '2', '--json']);
  t.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.')), []);
  t.is(readdirSync(dir).filter((f) => f.endsWith('.tar')).length, 2);
  t.log(`cleaned ${last.json.cleaned.length} leftovers, pruned ${last.json.pruned.length} files`);
});

function spawnSyncOut(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}
