// End to end: a psyopsOS-style OS tarball whose /squashfs is a mksquashfs image of an Alpine-like
// root (with /etc/os-release and /lib/apk/db/installed) and whose /modloop is an xz -Xbcj x86 image,
// through `diskimg create` (slot A) and `diskimg update` (slot B, another release); then
// `cat DISK 'psyopsOS-A:/squashfs!/etc/os-release'` equals the file, `ls` lists what unsquashfs
// lists, `show` prints the release and package count, `packages` lists and diffs the apk database
// (judged against the files that went into the images), and a literal "!" in an ext4 name is
// still reachable.
import test, { type ExecutionContext } from 'ava';
import { mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { needTools } from './helpers/skip.js';
import { run, unsquashfsList, workDir } from './helpers/squashfs.js';

const RELEASE_A = 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\nHOME_URL="https://alpinelinux.org/"\n';
const RELEASE_B = 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.21.0\nPRETTY_NAME="Alpine Linux v3.21"\n';
const PKGS_A: [string, string][] = [['musl', '1.2.5-r0'], ['busybox', '1.36.1-r29'], ['openssh', '9.7_p1-r4'], ['curl', '8.9.1-r1']];
const PKGS_B: [string, string][] = [['musl', '1.2.5-r8'], ['busybox', '1.37.0-r12'], ['openssh', '9.7_p1-r4'], ['jq', '1.7.1-r0']];

function apkDb(p: [string, string][]): string {
  // As apk writes it: one record per package, blank-line separated, with checksums and file lists.
  return p.map(([n, v], k) => `C:Q1${Buffer.from(n).toString('base64')}=\nP:${n}\nV:${v}\nA:x86_64\nS:${1000 + k}\nT:${n} package\nF:usr/bin\nR:${n}\n`).join('\n') + '\n';
}

function osTarball(dir: string, release: string, pkgs: [string, string][], comp: string): string {
  const root = join(dir, 'root');
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'lib/apk/db'), { recursive: true });
  mkdirSync(join(root, 'bin'), { recursive: true });
  writeFileSync(join(root, 'etc/os-release'), release);
  writeFileSync(join(root, 'lib/apk/db/installed'), apkDb(pkgs));
  writeFileSync(join(root, 'bin/busybox'), Buffer.alloc(300000, 7));
  for (let k = 0; k < 300; k++) writeFileSync(join(root, 'etc', `conf-${k}`), `setting ${k}\n`);
  const mods = join(dir, 'mods/modules/6.6.0/kernel');
  mkdirSync(mods, { recursive: true });
  writeFileSync(join(mods, 'loop.ko'), Buffer.alloc(200000, 0x90));
  const pay = join(dir, 'pay');
  mkdirSync(pay);
  run('mksquashfs', [root, join(pay, 'squashfs'), '-comp', comp, '-noappend', '-quiet', '-no-progress', '-processors', '1']);
  run('mksquashfs', [join(dir, 'mods'), join(pay, 'modloop'), '-comp', 'xz', '-Xbcj', 'x86', '-noappend', '-quiet', '-no-progress', '-processors', '1']);
  writeFileSync(join(pay, 'kernel'), 'kernel');
  writeFileSync(join(pay, 'initramfs'), 'initramfs');
  writeFileSync(join(pay, 'notes!txt'), 'a literal bang\n');
  const tar = join(dir, 'os.tar');
  run('tar', ['-C', pay, '-cf', tar, 'kernel', 'initramfs', 'squashfs', 'modloop', 'notes!txt']);
  return tar;
}

/** A small image with tarA in slot A (create) and tarB in slot B (update, not switched to). */
async function twoSlots(t: ExecutionContext, w: string, tarA: string, tarB: string): Promise<string> {
  const img = join(w, 'disk.img');
  const sizes = ['--esp-size', '40M', '--secret-size', '8M', '--slot-size', '48M'];
  const c = await runCli(['create', img, '--os-tar', tarA, '--no-verify', '--no-bootloader', '--quiet', ...sizes]);
  t.is(c.code, 0, c.stderr);
  const u = await runCli(['update', img, '--slot', 'b', '--os-tar', tarB, '--no-verify', '--allow-downgrade', '--quiet', '--no-switch']);
  t.is(u.code, 0, u.stderr);
  return img;
}

test('squashfs e2e: create + update with OS tarballs holding SquashFS roots; cat/ls/show/packages look inside', async (t) => {
  if (!needTools(t, 'mksquashfs', 'unsquashfs', 'tar')) return;
  const w = join(workDir(), 'e2e');
  const tarA = osTarball(join(w, 'a'), RELEASE_A, PKGS_A, 'gzip');
  const tarB = osTarball(join(w, 'b'), RELEASE_B, PKGS_B, 'zstd');
  const img = await twoSlots(t, w, tarA, tarB);

  // cat: the bytes that went in.
  const cat = await runCli(['cat', img, 'psyopsOS-A:/squashfs!/etc/os-release']);
  t.is(cat.code, 0, cat.stderr);
  t.is(cat.stdout, RELEASE_A);
  t.is((await runCli(['cat', img, 'psyopsOS-B:/squashfs!/etc/os-release'])).stdout, RELEASE_B);
  const cj = await runCli(['cat', img, 'psyopsOS-A:/squashfs!/lib/apk/db/installed', '--json']);
  t.like(cj.json, { label: 'psyopsOS-A', path: '/squashfs!/lib/apk/db/installed', size: apkDb(PKGS_A).length });
  // A literal "!" in an ext4 name is taken as written (it exists, so it is not split).
  t.is((await runCli(['cat', img, 'psyopsOS-A:/notes!txt'])).stdout, 'a literal bang\n');

  // ls: what unsquashfs -lln lists at the root of the image (names, modes, sizes).
  const sq = join(w, 'a/pay/squashfs');
  const want = unsquashfsList(sq).filter((r) => r.path !== '/' && r.path.lastIndexOf('/') === 0);
  const ls = await runCli(['ls', img, 'psyopsOS-A:/squashfs!/', '--json']);
  t.is(ls.code, 0, ls.stderr);
  t.deepEqual(ls.json.entries.map((e: any) => [`/${e.name}`, e.size]), want.map((r) => [r.path, Number(r.size)]));
  const etc = await runCli(['ls', img, 'psyopsOS-A:/squashfs!/etc']);
  t.is(etc.stdout.trim().split('\n').length, 301);
  // Errors name the nested path, one line.
  const missing = await runCli(['cat', img, 'psyopsOS-A:/squashfs!/etc/nope']);
  t.is(missing.code, 1);
  t.is(missing.stderr.trim(), 'diskimg: psyopsOS-A:/squashfs!/etc/nope: no such file or directory');

  // show: the release and package count per slot, text and --json.
  const show = await runCli(['show', img]);
  t.is(show.code, 0, show.stderr);
  t.regex(show.stdout, /A psyopsOS-A .*\n {4}os: Alpine Linux v3\.20 \(VERSION_ID 3\.20\.3\), 4 packages\n/);
  t.regex(show.stdout, /B psyopsOS-B .*\n {4}os: Alpine Linux v3\.21 \(VERSION_ID 3\.21\.0\), 4 packages\n/);
  const sj = await runCli(['show', img, '--json']);
  t.deepEqual(sj.json.slots[0].os, { rootfs: 'ok', prettyName: 'Alpine Linux v3.20', versionId: '3.20.3', packages: 4 });

  // packages: the apk database, and what the update changes.
  const pa = await runCli(['packages', img, 'a', '--json']);
  t.deepEqual(pa.json.slots.a.packages.map((p: any) => [p.name, p.version]), [...PKGS_A].sort());
  const pt = await runCli(['packages', img, 'b']);
  t.is(pt.stdout, [...PKGS_B].sort().map(([n, v]) => `${n} ${v}\n`).join(''));
  const d = await runCli(['packages', img, '--diff']);
  t.is(d.code, 0, d.stderr);
  t.is(d.stdout, '~ busybox 1.36.1-r29 -> 1.37.0-r12\n- curl 8.9.1-r1\n+ jq 1.7.1-r0\n~ musl 1.2.5-r0 -> 1.2.5-r8\n');
  const dj = await runCli(['packages', img, '--diff', '--json']);
  t.deepEqual(dj.json.changed, [{ name: 'busybox', from: '1.36.1-r29', to: '1.37.0-r12' }, { name: 'musl', from: '1.2.5-r0', to: '1.2.5-r8' }]);
  t.is((await runCli(['packages', img, 'c'])).code, 2);

  // The modloop is xz with the x86 BCJ filter (`-Xbcj x86`), read through the nested path.
  const ko = await runCli(['cat', img, 'psyopsOS-A:/modloop!/modules/6.6.0/kernel/loop.ko', '--json']);
  t.is(ko.code, 0, ko.stderr);
  t.is(ko.json.size, 200000);
  t.is(ko.json.sha256, run('sha256sum', [join(w, 'a/mods/modules/6.6.0/kernel/loop.ko')]).toString().slice(0, 64));
  t.is(readFileSync(join(w, 'a/root/etc/os-release'), 'utf8'), RELEASE_A);
});

test('show and packages keep going when a slot holds a SquashFS image we cannot read: lzo is "unsupported", a truncated image is "error"', async (t) => {
  if (!needTools(t, 'mksquashfs', 'tar')) return;
  const w = join(workDir(), 'unreadable');
  const tarA = osTarball(join(w, 'a'), RELEASE_A, PKGS_A, 'lzo');
  // Slot B: a gzip image cut in half after mksquashfs made it (its tables are at the end), re-tarred.
  osTarball(join(w, 'b'), RELEASE_B, PKGS_B, 'gzip');
  const pay = join(w, 'b/pay');
  const sq = join(pay, 'squashfs');
  truncateSync(sq, Math.floor(readFileSync(sq).length / 2));
  const tarB = join(w, 'b/os-cut.tar');
  run('tar', ['-C', pay, '-cf', tarB, 'kernel', 'initramfs', 'squashfs', 'modloop']);
  const img = await twoSlots(t, w, tarA, tarB);

  const show = await runCli(['show', img]);
  t.is(show.code, 0, show.stderr);
  t.regex(show.stdout, /A psyopsOS-A .*\n {4}os: UNSUPPORTED psyopsOS-A:\/squashfs: squashfs root inode .*unsupported compression lzo.*mksquashfs -comp xz\)\n/);
  t.regex(show.stdout, /B psyopsOS-B .*\n {4}os: ERROR psyopsOS-B:\/squashfs: squashfs superblock: .*truncated image/);
  const sj = await runCli(['show', img, '--json']);
  t.is(sj.code, 0, sj.stderr);
  t.like(sj.json.slots[0].os, { rootfs: 'unsupported', prettyName: null, packages: null });
  t.like(sj.json.slots[1].os, { rootfs: 'error', prettyName: null, packages: null });
  t.true(sj.json.slots[1].os.error.length > 0);
  // packages names the slot and the reason, one line, non-zero exit.
  const pa = await runCli(['packages', img, 'a']);
  t.is(pa.code, 1);
  t.regex(pa.stderr, /^diskimg: psyopsOS-A:\/squashfs: .*lzo[^\n]*\n$/);
  // The rest of the slot is still readable.
  t.is((await runCli(['cat', img, 'psyopsOS-B:/kernel'])).stdout, 'kernel');
});
