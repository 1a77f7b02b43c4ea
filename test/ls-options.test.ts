/**
 * `ls` as users expect it: -l with link count and owners (checked against debugfs stat), a symlink
 * given as the path is listed as the link unless -L, partitions by number, labels ignoring case on
 * both filesystems (and a clear error when that is ambiguous).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';

const work = mkdtempSync(join(tmpdir(), 'ls-options-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const ENV = { SOURCE_DATE_EPOCH: '1764374400' };
let img: string;

test.before(async () => {
  const os = join(work, 'os');
  mkdirSync(join(os, 'etc'), { recursive: true });
  writeFileSync(join(os, 'kernel'), 'k');
  writeFileSync(join(os, 'initramfs'), 'i');
  writeFileSync(join(os, 'etc/a'), 'a');
  linkSync(join(os, 'etc/a'), join(os, 'etc/b'));
  symlinkSync('etc', join(os, 'link-to-etc'));
  const tar = join(work, 'os.tar');
  spawnSync('tar', ['--owner=1234', '--group=567', '--numeric-owner', '-C', os, '-cf', tar, '.']);
  img = join(work, 'x.img');
  const r = await runCli(['create', img, '--os-tar', tar, '--no-verify', '--no-bootloader', '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '16M'], { env: ENV });
  if (r.code !== 0) throw new Error(r.stderr);
});

test('ls -l: link count and numeric owner and group, as debugfs stat reports them', async (t) => {
  const r = await runCli(['ls', '-l', img, 'psyopsOS-A:/etc']);
  t.is(r.code, 0, r.stderr);
  const a = r.stdout.split('\n').find((l) => l.endsWith(' a'))!;
  t.regex(a, /^-rw-r--r-- 2 1234 567 +1 /);
  // The independent reader: debugfs on the extracted slot.
  const parts = JSON.parse(spawnSync('sfdisk', ['--json', img], { encoding: 'utf8' }).stdout).partitiontable.partitions;
  const p = parts[2];
  const slot = join(work, 'a.part');
  spawnSync('dd', [`if=${img}`, `of=${slot}`, 'bs=512', `skip=${p.start}`, `count=${p.size}`, 'status=none']);
  const st = spawnSync('debugfs', ['-R', 'stat /etc/a', slot], { encoding: 'utf8' }).stdout;
  t.regex(st, /Links: 2/);
  t.regex(st, /User:\s+1234\s+Group:\s+567/);
});

test('a symlink given as the path is the link (ls -d); -L or a trailing slash follows it', async (t) => {
  const link = await runCli(['ls', img, 'psyopsOS-A:/link-to-etc']);
  t.is(link.code, 0, link.stderr);
  t.regex(link.stdout, /^lrwxrwxrwx .* link-to-etc -> etc\n$/);
  const followed = await runCli(['ls', '-L', img, 'psyopsOS-A:/link-to-etc']);
  t.regex(followed.stdout, / a\n.* b\n$/);
  const slash = await runCli(['ls', img, 'psyopsOS-A:/link-to-etc/']);
  t.is(slash.stdout, followed.stdout);
});

test('partitions by number and labels ignoring case, on ext4 and FAT alike', async (t) => {
  const byLabel = await runCli(['ls', img, 'psyopsOS-A:/']);
  t.is((await runCli(['ls', img, '3:/'])).stdout, byLabel.stdout);
  t.is((await runCli(['ls', img, 'psyopsos-a:/'])).stdout, byLabel.stdout);
  const esp = await runCli(['ls', img, 'PSYOPSOSEFI:/grub']);
  t.is(esp.code, 0, esp.stderr);
  t.is((await runCli(['ls', img, 'psyopsosefi:/grub'])).stdout, esp.stdout);
  t.is((await runCli(['ls', img, '1:/grub'])).stdout, esp.stdout);
  const none = await runCli(['ls', img, 'nope:/']);
  t.is(none.code, 1);
  t.regex(none.stderr, /no partition labelled "nope"/);
});
