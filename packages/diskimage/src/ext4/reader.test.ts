/**
 * The reader against filesystems made by the real mkfs.ext4 -d (e2fsprogs
 * defaults and variants): every directory listed and every file read
 * byte-identical to the source tree, symlinks resolved, and stat equal to
 * both `debugfs -R stat` and the source's lstat.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, closeSync, lstatSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, linkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { DiskimgError, FormatError, InputError } from '@diskimg/partitions/internal';
import { FileDevice } from '../device/file.js';
import { MemoryDevice } from '../device/memory.js';
import { openExt4, type Ext4Reader } from './reader.js';
import { walkExt4 } from '../../../../test/helpers/ext4-walk.js';
import { needTools } from '../../../../test/helpers/skip.js';

const isRoot = process.getuid?.() === 0;
const MiB = 2 ** 20;

const work = mkdtempSync(join(tmpdir(), 'ext4-reader-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

/** The source tree every image is made from (built once). */
function buildSource(): string {
  const src = join(work, 'src');
  mkdirSync(join(src, 'dir', 'sub', 'deeper'), { recursive: true });
  mkdirSync(join(src, 'many'));
  writeFileSync(join(src, 'empty'), '');
  writeFileSync(join(src, 'one'), 'x');
  for (const n of [1023, 1024, 1025, 4095, 4096, 4097, 65537]) writeFileSync(join(src, `size-${n}`), Buffer.alloc(n, n & 0xff));
  // 40 MiB of non-repeating data.
  const fd = openSync(join(src, 'big40'), 'w');
  const chunk = createHash('sha512').update('seed').digest();
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < 40; i++) {
    for (let o = 0; o < MiB; o += 64) createHash('sha512').update(chunk).update(`${i}:${o}`).digest().copy(block, o);
    writeSync(fd, block);
  }
  closeSync(fd);
  // Sparse: data at 0, in the middle and at the very end of 70 MiB (reaches the
  // triple-indirect range of a 1 KiB block map).
  const sp = openSync(join(src, 'sparse'), 'w');
  writeSync(sp, Buffer.from('start'), 0, 5, 0);
  writeSync(sp, Buffer.from('middle'), 0, 6, 5 * MiB + 123);
  writeSync(sp, Buffer.from('end'), 0, 3, 70 * MiB - 3);
  closeSync(sp);
  for (let i = 0; i < 2000; i++) writeFileSync(join(src, 'many', `entry-number-${String(i).padStart(5, '0')}`), `${i}\n`);
  writeFileSync(join(src, 'dir', 'sub', 'deeper', 'leaf.txt'), 'leaf\n');
  symlinkSync('dir/sub', join(src, 'to-sub'));
  symlinkSync('/dir/sub/deeper/leaf.txt', join(src, 'abs-link'));
  symlinkSync('../../' + 'a'.repeat(200), join(src, 'dir', 'slow-link'));
  symlinkSync('nowhere', join(src, 'dangling'));
  linkSync(join(src, 'one'), join(src, 'dir', 'hardlink-to-one'));
  writeFileSync(join(src, 'setuid'), '#!/bin/sh\n');
  chmodSync(join(src, 'setuid'), 0o4755);
  writeFileSync(join(src, 'private'), 'secret');
  chmodSync(join(src, 'private'), 0o600);
  if (isRoot) chownSync(join(src, 'private'), 1234, 5678);
  spawnSync('mkfifo', [join(src, 'fifo')]);
  const t = new Date('2021-03-04T05:06:07Z');
  utimesSync(join(src, 'one'), t, t);
  return src;
}

let srcDir: string | undefined;
const source = () => (srcDir ??= buildSource());

async function withImage(name: string, args: string[], fn: (fs: Ext4Reader, img: string) => Promise<void>, reindex = false) {
  const img = join(work, `${name}.img`);
  execFileSync('mkfs.ext4', ['-F', '-q', ...args, '-d', source(), img, '256M'], { stdio: 'ignore' });
  if (reindex) {
    // mkfs -d writes linear directories; e2fsck -D turns the big one into an htree.
    const r = spawnSync('e2fsck', ['-fyD', img], { stdio: 'ignore' });
    if (r.status !== 0 && r.status !== 1) throw new Error(`e2fsck -fyD: ${r.status}`);
  }
  const dev = await FileDevice.open(img);
  try {
    await fn(await openExt4(dev, { name }), img);
  } finally {
    await dev.close();
    rmSync(img, { force: true });
  }
}

interface DebugfsStat {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  links: number;
  mtimeLo: number;
  mtimeExtra?: number;
}

/** `debugfs -R stat` for many paths in one run. */
function debugfsStats(img: string, paths: string[]): Map<string, DebugfsStat> {
  const out = execFileSync('debugfs', ['-f', '-', img], { input: paths.map((p) => `stat "${p}"\n`).join(''), stdio: ['pipe', 'pipe', 'ignore'], maxBuffer: 64 * MiB }).toString();
  const parts = out.split(/^debugfs: stat /m).slice(1);
  const m = new Map<string, DebugfsStat>();
  for (const part of parts) {
    const path = part.slice(0, part.indexOf('\n')).replace(/^"|"$/g, '');
    const g = (re: RegExp) => {
      const x = re.exec(part);
      if (!x) throw new Error(`debugfs stat ${path}: no ${re}`);
      return x;
    };
    const mt = g(/ mtime: 0x([0-9a-f]+)(?::([0-9a-f]+))?/);
    m.set(path, {
      ino: Number(g(/Inode: (\d+)/)[1]),
      mode: parseInt(g(/Mode: +(\d+)/)[1]!, 8),
      uid: Number(g(/User: +(\d+)/)[1]),
      gid: Number(g(/Group: +(\d+)/)[1]),
      size: Number(g(/Size: (\d+)/)[1]),
      links: Number(g(/Links: (\d+)/)[1]),
      mtimeLo: parseInt(mt[1]!, 16),
      mtimeExtra: mt[2] === undefined ? undefined : parseInt(mt[2], 16),
    });
  }
  return m;
}

async function checkAll(t: import('ava').ExecutionContext, fs: Ext4Reader, img: string) {
  const src = source();
  // 1. Whole tree: names, bytes, symlink targets.
  const w = await walkExt4(fs, src, { ignoreRootNames: ['lost+found'] });
  t.deepEqual(w.mismatches, []);
  t.is(w.files, 2000 + 15);
  t.true(w.dirs >= 5);

  // 2. stat against debugfs and the source, for everything outside many/ plus a sample of it.
  const paths: string[] = [];
  const collect = async (p: string) => {
    for (const e of await fs.readdir(p)) {
      const full = `${p === '/' ? '' : p}/${e.name}`;
      if (full.startsWith('/many/') && !full.endsWith('0')) continue;
      paths.push(full);
      if (e.type === 'directory') await collect(full);
    }
  };
  await collect('/');
  const ref = debugfsStats(img, paths);
  for (const p of paths) {
    const ours = await fs.lstat(p);
    const d = ref.get(p);
    if (!d) {
      t.fail(`debugfs gave no stat for ${p}`);
      continue;
    }
    t.is(ours.ino, d.ino, `${p} ino`);
    t.is(ours.mode & 0o7777, d.mode & 0o7777, `${p} mode`);
    t.is(ours.uid, d.uid, `${p} uid`);
    t.is(ours.gid, d.gid, `${p} gid`);
    t.is(ours.size, d.size, `${p} size`);
    t.is(ours.links, d.links, `${p} links`);
    t.is(ours.mtime % 2 ** 32 >>> 0, d.mtimeLo, `${p} mtime`);
    if (d.mtimeExtra !== undefined) t.is(ours.mtimeNs, d.mtimeExtra >>> 2, `${p} mtime ns`);
    if (p === '/lost+found') continue;
    const s = lstatSync(join(src, p));
    t.is(ours.mode, s.mode, `${p} mode vs source`);
    t.is(ours.uid, s.uid, `${p} uid vs source`);
    t.is(ours.gid, s.gid, `${p} gid vs source`);
    if (!s.isDirectory()) t.is(ours.size, s.size, `${p} size vs source`);
    t.is(ours.mtime, Math.floor(s.mtimeMs / 1000), `${p} mtime vs source`);
  }

  // 3. Paths through symlinks, readlink, error cases.
  t.is(Buffer.concat(await arr(fs.readFile('/to-sub/deeper/leaf.txt'))).toString(), 'leaf\n');
  t.is(Buffer.concat(await arr(fs.readFile('/abs-link'))).toString(), 'leaf\n');
  t.is(Buffer.concat(await arr(fs.readFile('/dir/../to-sub/../../one'))).toString(), 'x');
  await t.throwsAsync(arr(fs.readFile('/dir/../to-sub/../one')), { instanceOf: InputError }); // "..": the link target's parent
  t.is(await fs.readlink('/dir/slow-link'), '../../' + 'a'.repeat(200));
  t.is((await fs.stat('/to-sub')).type, 'directory');
  t.is((await fs.lstat('/to-sub')).type, 'symlink');
  t.is((await fs.lstat('/fifo')).type, 'fifo');
  t.is((await fs.stat('/one')).ino, (await fs.stat('/dir/hardlink-to-one')).ino);
  t.is((await fs.stat('/one')).links, 2);
  await t.throwsAsync(fs.stat('/nope'), { instanceOf: InputError, message: /no such file/ });
  await t.throwsAsync(fs.stat('/dangling'), { instanceOf: InputError, message: /no such file/ });
  await t.throwsAsync(arr(fs.readFile('/dir')), { instanceOf: InputError, message: /not a regular file/ });
  await t.throwsAsync(fs.readdir('/one'), { instanceOf: InputError, message: /not a directory/ });
  // The sparse file streams in chunks of at most 1 MiB.
  let max = 0;
  for await (const b of fs.readFile('/sparse')) max = Math.max(max, b.length);
  t.true(max <= MiB);
}

async function arr<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const variants: { name: string; args: string[]; reindex?: boolean; check?: (t: import('ava').ExecutionContext, fs: Ext4Reader) => Promise<void> }[] = [
  { name: 'defaults, 4 KiB blocks, htree', args: ['-b', '4096'], reindex: true },
  { name: 'defaults at 256 MiB (1 KiB blocks), metadata_csum_seed, orphan_file', args: ['-O', 'metadata_csum_seed,orphan_file'], reindex: true },
  { name: 'legacy block maps (^extent), 1 KiB blocks, no metadata_csum', args: ['-b', '1024', '-O', '^extent,^64bit,^metadata_csum,^flex_bg'], reindex: true },
  { name: '64 KiB blocks', args: ['-b', '65536'] },
  { name: 'inline_data', args: ['-O', 'inline_data', '-b', '4096'] },
  {
    name: 'meta_bg, ^resize_inode, ^flex_bg, 1 KiB blocks',
    args: ['-b', '1024', '-O', 'meta_bg,^resize_inode,^flex_bg'],
    // 40 MiB across 8 MiB groups that each start with their own inode table:
    // more extents than i_block holds, so a tree with checksummed leaf blocks.
    check: async (t, fs) => {
      t.true((await fs.inode(await fs.lookup('/big40'))).i_block.readUInt16LE(6) >= 1, 'big40 has an extent tree of depth ≥ 1');
    },
  },
];

for (const v of variants) {
  test.serial(`reads mkfs.ext4 -d: ${v.name}`, async (t) => {
    if (!needTools(t, 'mkfs.ext4', 'debugfs')) return;
    await withImage(v.name.replace(/\W+/g, '-'), v.args, async (fs, img) => {
      if (v.reindex) t.truthy((await fs.inode(await fs.lookup('/many'))).i_flags & 0x1000, 'many/ is an htree');
      await v.check?.(t, fs);
      await checkAll(t, fs, img);
    }, v.reindex);
  });
}

test('refuses unsupported features up front and names damaged structures', async (t) => {
  if (!needTools(t, 'mkfs.ext4', 'debugfs')) return;
  const img = join(work, 'small.img');
  execFileSync('mkfs.ext4', ['-F', '-q', '-b', '1024', '-O', 'encrypt', img, '4M'], { stdio: 'ignore' });
  const buf = execFileSync('cat', [img], { maxBuffer: 8 * MiB });
  await t.throwsAsync(openExt4(new MemoryDevice(buf.length, 512, Buffer.from(buf))), { instanceOf: FormatError, message: /unsupported feature encrypt/ });
  execFileSync('mkfs.ext4', ['-F', '-q', '-b', '1024', img, '4M'], { stdio: 'ignore' });
  const good = execFileSync('cat', [img], { maxBuffer: 8 * MiB });
  const fs = await openExt4(new MemoryDevice(good.length, 512, Buffer.from(good)));
  const root = await fs.inode(2);
  t.is(fs.statInode(2, root).type, 'directory');
  // Flip a byte in the root inode: its checksum no longer matches.
  const bad = Buffer.from(good);
  const gd = (fs as unknown as { gds: { bg_inode_table: number }[] }).gds[0]!;
  bad[gd.bg_inode_table * 1024 + 256 + 0x10] ^= 1;
  const fs2 = await openExt4(new MemoryDevice(bad.length, 512, bad));
  await t.throwsAsync(fs2.readdir('/'), { instanceOf: FormatError, message: 'ext4 inode 2: checksum mismatch' });
  // Corrupt the superblock magic.
  const nosb = Buffer.from(good);
  nosb[1024 + 0x38] = 0;
  await t.throwsAsync(openExt4(new MemoryDevice(nosb.length, 512, nosb)), { instanceOf: FormatError, message: /ext4 superblock: s_magic/ });
  rmSync(img);
});

test('damaged filesystems (random byte flips in the metadata) give a typed error or a best-effort read, never a crash', async (t) => {
  if (!needTools(t, 'mkfs.ext4', 'debugfs')) return;
  const src = join(work, 'fuzz-src');
  mkdirSync(join(src, 'd', 'e'), { recursive: true });
  for (let i = 0; i < 60; i++) writeFileSync(join(src, 'd', `f${i}`), `file ${i}\n`);
  writeFileSync(join(src, 'big'), Buffer.alloc(300_000, 7));
  symlinkSync('d/e', join(src, 'l1'));
  symlinkSync('y'.repeat(100), join(src, 'd', 'slow'));
  for (const args of [['-O', '^metadata_csum,^uninit_bg'], ['-O', '^extent,^64bit,^metadata_csum'], ['-O', 'inline_data']]) {
    const img = join(work, 'fuzz.img');
    execFileSync('mkfs.ext4', ['-F', '-q', '-b', '1024', ...args, '-d', src, img, '4M'], { stdio: 'ignore' });
    const good = execFileSync('cat', [img], { maxBuffer: 8 * MiB });
    let typed = 0;
    let read = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat({ max: 300 * 1024 - 1 }), fc.nat({ max: 255 })), { minLength: 1, maxLength: 300 }), async (flips) => {
        const b = Buffer.from(good);
        // Keep the primary superblock intact so the damage reaches deeper structures.
        for (const [off, v] of flips) if (off < 1024 || off >= 2048) b[off] = v;
        try {
          const fs = await openExt4(new MemoryDevice(b.length, 512, b));
          await walkExt4(fs, undefined, { byteBudget: 64 * MiB, entryBudget: 20_000 });
          read++;
        } catch (e) {
          if (!(e instanceof DiskimgError)) throw e;
          typed++;
        }
      }),
      { numRuns: 80, seed: 42 },
    );
    t.log(`mkfs.ext4 ${args.join(' ')}: ${typed} typed errors, ${read} best-effort reads`);
  }
  t.pass();
});
