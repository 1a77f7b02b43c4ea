/**
 * Issue 26, leftovers of three classes: warnings on stderr are escaped like every human output
 * (26.13), numeric options are validated before anything starts (26.12), and a symlink target
 * that is not UTF-8 comes back byte-exact in `ls --json` (26.19).
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { runCliBounded } from './helpers/bounded-cli.js';
import { gptDisk, sh } from './helpers/fs-disk.js';
import { needTools } from './helpers/skip.js';

const work = mkdtempSync(join(tmpdir(), 'leftovers-26-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const ENV = { SOURCE_DATE_EPOCH: '1764374400' };
const SMALL = ['--esp-size', '40M', '--secret-size', '8M', '--slot-size', '32M'];

function tree(name: string, files: Record<string, string | Buffer>): string {
  const d = join(work, name);
  for (const [p, data] of Object.entries(files)) {
    mkdirSync(join(d, p, '..'), { recursive: true });
    writeFileSync(join(d, p), data);
  }
  return d;
}
function tarOf(dir: string, out: string): string {
  execFileSync('tar', ['-C', dir, '--sort=name', '--mtime=@1700000000', '--owner=0', '--group=0', '-cf', out, '.']);
  return out;
}
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
/** ESC, BEL, CR, other C0/C1 controls, DEL and the bidi controls: none may reach a terminal. */
/** Hostile inputs run bounded: a time limit and a peak RSS (KiB, /usr/bin/time -f %M). */
const MAX_RSS_KIB = 400 * 1024;
async function bounded(t: import('ava').ExecutionContext, args: string[]) {
  const r = await runCliBounded(args, { timeoutMs: 60_000, env: ENV });
  t.false(r.timedOut, `${args[0]}: ended within 60 s`);
  t.true(r.rssKiB !== undefined && r.rssKiB < MAX_RSS_KIB, `${args[0]}: peak RSS ${r.rssKiB} KiB`);
  return { ...r, stdout: r.stdout.toString('utf8') };
}
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;

// ---- 26.13: warnings on stderr ----------------------------------------------------------------

test('a hostile name quoted in a warning (update-esp manifest, create) is escaped on stderr; --json keeps it exact', async (t) => {
  if (!needTools(t, 'tar')) return;
  const osTar = tarOf(tree('os', { kernel: Buffer.alloc(30_000, 1), initramfs: Buffer.alloc(20_000, 2), squashfs: Buffer.alloc(100_000, 3) }), join(work, 'os.tar'));
  const espTar = tarOf(tree('esp', { 'EFI/BOOT/BOOTX64.EFI': Buffer.alloc(5_000, 4), 'manifest.json': '{"extra_programs": {}}' }), join(work, 'esp.tar'));
  const img = join(work, 'w.img');
  const c = await runCli(['create', img, '--os-tar', osTar, '--esp-tar', espTar, '--no-verify', '--seed', 'w', ...SMALL], { env: ENV });
  t.is(c.code, 0, c.stderr);
  t.notRegex(c.stderr, RAW);

  const evil = '/x\u001b[31mRED\u0007\u202egnp.efi';
  const manifest = JSON.stringify({ extra_programs: { [evil]: 'tool' } });
  const hostile = tarOf(tree('esp-evil', { 'EFI/BOOT/BOOTX64.EFI': Buffer.alloc(5_000, 5), 'manifest.json': manifest }), join(work, 'esp-evil.tar'));
  const before = sha(img);
  const r = await bounded(t, ['update-esp', img, '--esp-tar', hostile, '--no-verify', '--allow-downgrade', '--dry-run']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /warning: manifest\.json names \/x\\x1b\[31mRED\\x07\\xe2\\x80\\xaegnp\.efi, which the payload does not hold/);
  t.notRegex(r.stderr, RAW, JSON.stringify(r.stderr));
  t.notRegex(r.stdout, RAW);
  t.is(sha(img), before, '--dry-run wrote nothing');

  // --json: the warning is in the document exactly; stderr (still for people) stays escaped.
  const j = await runCli(['update-esp', img, '--esp-tar', hostile, '--no-verify', '--allow-downgrade', '--dry-run', '--json'], { env: ENV });
  t.is(j.code, 0, j.stderr);
  t.true((j.json.warnings as string[]).some((w) => w.includes(evil)));
  t.notRegex(j.stderr, RAW);

  // create quotes the same manifest entry in its warning.
  const c2 = await runCli(['create', join(work, 'w2.img'), '--os-tar', osTar, '--esp-tar', hostile, '--no-verify', '--seed', 'w', ...SMALL], { env: ENV });
  t.is(c2.code, 0, c2.stderr);
  t.notRegex(c2.stderr, RAW, JSON.stringify(c2.stderr));
});

// ---- 26.12: numeric options --------------------------------------------------------------------

test('serve --repo-cache with a value that is not whole seconds: exit 2, one line naming the option and the value, before anything starts', async (t) => {
  for (const v of ['abc', '', '1e3', '0x10', '-1', '1.5', ' 5']) {
    const r = await bounded(t, ['serve', join(work, 'absent.img'), '--listen', '127.0.0.1:0', '--repo', work, '--no-verify', '--repo-cache', v]);
    t.is(r.code, 2, `${v}: ${r.stderr}`);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.true(r.stderr.startsWith(`diskimg: --repo-cache ${JSON.stringify(v)}: a whole number`), r.stderr);
    t.notRegex(r.stderr, /NaN|serving|internal error/);
    t.is(r.stdout, '');
  }
});

// ---- 26.19: symlink targets that are not UTF-8 ---------------------------------------------------

test('a symlink target that is not UTF-8: ls shows it escaped, --json has targetBase64 with the exact bytes (ext4 by debugfs, SquashFS by unsquashfs)', async (t) => {
  if (!needTools(t, 'mkfs.ext4', 'sgdisk', 'debugfs', 'mksquashfs', 'unsquashfs')) return;
  const latin = (s: string) => Buffer.from(s, 'latin1');
  // A fast link (in the inode), a slow one (in a block: over 60 bytes) with a backslash, and a plain one.
  const links: [string, Buffer, string][] = [
    ['fast', latin('a\xff'), 'a\\xff'],
    ['slow', latin(`x/${'y'.repeat(70)}\xfe\\z`), `x/${'y'.repeat(70)}\\xfe\\\\z`],
    ['plain', latin('etc/os-release'), 'etc/os-release'],
  ];
  const root = join(work, 'links-root');
  const sqRoot = join(work, 'links-sq');
  for (const d of [root, sqRoot]) {
    mkdirSync(d, { recursive: true });
    for (const [n, target] of links) symlinkSync(target, join(d, n));
  }
  sh('mksquashfs', [sqRoot, join(root, 'sq'), '-noappend', '-quiet', '-no-progress', '-processors', '1']);
  const fs = join(work, 'links.fs');
  sh('mkfs.ext4', ['-q', '-F', '-L', 'lk-ext4', '-d', root, fs, '8M']);
  const disk = join(work, 'links-disk.img');
  gptDisk(disk, [{ name: 'lk-ext4', image: fs }]);

  // The judges: debugfs (fast link dest, slow link's block) and unsquashfs -lln, both as bytes.
  const fastDest = /Fast link dest: "([\s\S]*)"\n/.exec(sh('debugfs', ['-R', 'stat /fast', fs]).toString('latin1'))?.[1];
  t.deepEqual(latin(fastDest ?? ''), links[0]![1]);
  t.deepEqual(sh('debugfs', ['-R', 'cat /slow', fs]), links[1]![1]);
  const lln = sh('unsquashfs', ['-lln', join(root, 'sq')]);
  for (const [n, target] of links) t.true(lln.includes(Buffer.concat([latin(`squashfs-root/${n} -> `), target, latin('\n')])), `unsquashfs lists ${n}`);

  for (const spec of ['lk-ext4:/', 'lk-ext4:/sq!/']) {
    const r = await runCli(['ls', disk, spec, '--json']);
    t.is(r.code, 0, r.stderr);
    const m = new Map<string, any>(r.json.entries.map((e: any) => [e.name, e]));
    t.is(m.has('lost+found'), spec === 'lk-ext4:/', `${spec}: the ext4 root, then the SquashFS one`);
    for (const [n, target, shown] of links) {
      const e = m.get(n);
      t.is(e?.type, 'symlink', `${spec}${n}`);
      t.is(e?.target, shown, `${spec}${n}: target shown escaped`);
      if (shown.includes('\\')) t.deepEqual(Buffer.from(e?.targetBase64 ?? '', 'base64'), target, `${spec}${n}: targetBase64`);
      else t.false('targetBase64' in e, `${spec}${n}: no targetBase64 for a UTF-8 target`);
    }
    const human = await bounded(t, ['ls', disk, spec]);
    t.is(human.code, 0, human.stderr);
    t.true(human.stdout.split('\n').some((l) => l.endsWith(' fast -> a\\xff')), human.stdout);
  }
});
