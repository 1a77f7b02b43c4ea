import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { InputError, makeEntropy } from '@diskimg/partitions/internal';
import { MemoryDevice } from '../device/memory.js';
import { Region } from '../device/region.js';
import { readDirTree } from '../source/dir.js';
import { readTarTree } from '../source/tar.js';
import type { TreeEntry } from '../source/tree.js';
import { createExt4 } from './create.js';
import { planGeometry } from './geometry.js';
import { MiB, EPOCH, tmp, makeImage, fsck, debugfs, rdumpDiff, stat, dumpe2fsHeader, makeOsTree, makeManyFiles } from './testutil.js';
import { needRoot, needTools, ranTool, skipOrFail, type SkipContext } from '../../../../test/helpers/skip.js';

const SIZES = [16 * MiB, 128 * MiB, 1536 * MiB, 8192 * MiB];
const FEATURES = 'has_journal ext_attr dir_index filetype extent 64bit flex_bg sparse_super large_file huge_file dir_nlink extra_isize metadata_csum';

function skip(t: SkipContext): boolean {
  return !needTools(t, 'e2fsck', 'debugfs');
}

/** A tar (built with tar-stream) holding what a directory source cannot: devices, FIFOs, uids/gids > 65535 (ustar's 6 octal digits cap them at 262143), future times. */
async function specialTar(): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  const d = new Date(EPOCH * 1000 - 86400_000);
  const add = (h: Partial<tarStream.Header> & { name: string }, body?: string) => new Promise<void>((res, rej) => pack.entry({ mtime: d, uid: 0, gid: 0, ...h }, body ?? '', (e) => (e ? rej(e) : res())));
  await add({ name: 'dev', type: 'directory', mode: 0o755 });
  await add({ name: 'dev/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 });
  await add({ name: 'dev/sda1', type: 'block-device', mode: 0o660, gid: 6, devmajor: 8, devminor: 1 });
  await add({ name: 'dev/bigminor', type: 'character-device', mode: 0o600, devmajor: 259, devminor: 70000 });
  await add({ name: 'dev/initctl', type: 'fifo', mode: 0o600 });
  await add({ name: 'home', type: 'directory', mode: 0o755 });
  await add({ name: 'home/user', type: 'directory', mode: 0o700, uid: 100000, gid: 200_000 });
  await add({ name: 'home/user/notes', type: 'file', mode: 0o640, uid: 100000, gid: 200_000 }, 'hello\n');
  await add({ name: 'usr/bin/sudo', type: 'file', mode: 0o4711 }, 'x'.repeat(5000));
  await add({ name: 'usr/bin/wall', type: 'file', mode: 0o2755, gid: 5 }, 'y');
  await add({ name: 'usr/bin/future', type: 'file', mode: 0o755, mtime: new Date((EPOCH + 5000) * 1000) }, 'z');
  await add({ name: 'usr/bin/short', type: 'symlink', linkname: 'sudo' });
  await add({ name: 'usr/bin/long', type: 'symlink', linkname: '/usr/' + 'l'.repeat(200) });
  await add({ name: 'usr/bin/sudo-hard', type: 'link', linkname: 'usr/bin/sudo' });
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

function tarEntries(buf: Buffer): AsyncIterable<TreeEntry> {
  return readTarTree(Readable.from([buf]), 'special.tar');
}

for (const size of SIZES) {
  const name = `${size / MiB} MiB`;
  test(`empty filesystem at ${name}: e2fsck clean, dumpe2fs shows the contract's features and label`, async (t) => {
    if (skip(t)) return;
    const dir = tmp('empty');
    const img = join(dir, 'fs.img');
    const s = await makeImage(img, size, undefined, { label: 'psyopsOS-A' });
    const f = fsck(img);
    t.is(f.status, 0, f.out);
    t.deepEqual(f.extra, []);
    const h = dumpe2fsHeader(img);
    t.is(/^Filesystem features:\s+(.*)$/m.exec(h)![1]!.trim(), FEATURES);
    t.is(/^Filesystem volume name:\s+(.*)$/m.exec(h)![1], 'psyopsOS-A');
    const geo = planGeometry(size);
    t.is(Number(/^Block count:\s+(\d+)/m.exec(h)![1]), geo.blocksCount);
    t.is(Number(/^Inode count:\s+(\d+)/m.exec(h)![1]), geo.inodesCount);
    t.is(Number(/^Free inodes:\s+(\d+)/m.exec(h)![1]), geo.inodesCount - 11);
    t.is(Number(/^Free blocks:\s+(\d+)/m.exec(h)![1]), s.blocks - s.usedBlocks);
    // lost+found as mke2fs makes it: 16 KiB, mode 0700, links 2.
    const lpf = stat(img, '/lost+found');
    t.like(lpf, { type: 'directory', mode: 0o700, size: 16384, links: 2 });
    t.like(stat(img, '/'), { links: 3, mode: 0o755 });
    rmSync(dir, { recursive: true, force: true });
  });

  test(`devices, FIFOs, big uids, setuid, symlinks and hard links from a tar at ${name}`, async (t) => {
    if (skip(t)) return;
    const dir = tmp('special');
    const img = join(dir, 'fs.img');
    await makeImage(img, size, tarEntries(await specialTar()));
    const f = fsck(img);
    t.is(f.status, 0, f.out);
    t.deepEqual(f.extra, []);
    const day = EPOCH - 86400;
    t.like(stat(img, '/dev/null'), { type: 'character', mode: 0o666, uid: 0, gid: 0, mtime: day });
    t.regex(debugfs(img, 'stat /dev/null'), /Device major\/minor number: 01:03/);
    t.regex(debugfs(img, 'stat /dev/sda1'), /Device major\/minor number: 08:01/);
    t.like(stat(img, '/dev/sda1'), { type: 'block', mode: 0o660, gid: 6 });
    t.regex(debugfs(img, 'stat /dev/bigminor'), /Device major\/minor number: 259:70000/);
    t.like(stat(img, '/dev/initctl'), { type: 'FIFO', mode: 0o600 });
    t.like(stat(img, '/home/user'), { type: 'directory', mode: 0o700, uid: 100000, gid: 200_000, links: 2 });
    t.like(stat(img, '/home/user/notes'), { uid: 100000, gid: 200_000, size: 6, mode: 0o640, links: 1, blockcount: 8 });
    t.like(stat(img, '/usr/bin/sudo'), { mode: 0o4711, links: 2, size: 5000, blockcount: 16, mtime: day, atime: day, ctime: day, crtime: EPOCH });
    t.like(stat(img, '/usr/bin/wall'), { mode: 0o2755, gid: 5 });
    t.like(stat(img, '/usr/bin/future'), { mtime: EPOCH }); // clamped to SOURCE_DATE_EPOCH
    t.like(stat(img, '/usr/bin/short'), { type: 'symlink', size: 4, blockcount: 0 });
    t.like(stat(img, '/usr/bin/long'), { type: 'symlink', size: 205, blockcount: 8 });
    t.regex(debugfs(img, 'stat /usr/bin/short'), /Fast link dest: "sudo"/);
    t.is(debugfs(img, 'cat /usr/bin/sudo-hard'), 'x'.repeat(5000));
    // Implicit parent "usr" (no tar entry) is a root-owned 0755 directory.
    t.like(stat(img, '/usr'), { type: 'directory', mode: 0o755, uid: 0, links: 3 });
    rmSync(dir, { recursive: true, force: true });
  });
}

for (const size of SIZES) {
  test(`OS-like tree from a directory at ${size / MiB} MiB: e2fsck clean, rdump identical, stat matches`, async (t) => {
    if (skip(t)) return;
    const dir = tmp('os');
    const src = join(dir, 'src');
    makeOsTree(src);
    const img = join(dir, 'fs.img');
    await makeImage(img, size, readDirTree(src));
    const f = fsck(img);
    t.is(f.status, 0, f.out);
    t.deepEqual(f.extra, []);
    t.is(rdumpDiff(img, src), '');
    t.like(stat(img, '/bin/busybox'), { mode: 0o4755, links: 3 });
    t.like(stat(img, '/bin/sg'), { mode: 0o2711 });
    t.like(stat(img, '/tmp'), { mode: 0o1777 });
    t.like(stat(img, '/bin/sixty'), { type: 'symlink', size: 60, blockcount: 8 });
    t.like(stat(img, '/boot/dtbs'), { links: 9 });
    if (needRoot(t, 'the loop mount comparison')) {
      const mnt = join(dir, 'mnt');
      execFileSync('mkdir', ['-p', mnt]);
      const m = spawnSync('mount', ['-o', 'ro,loop', '-t', 'ext4', img, mnt], { encoding: 'utf8' });
      if (m.status !== 0) {
        skipOrFail(t, `loop mount failed (${m.stderr.trim()}); mount comparison not done`, { tool: 'loop-mount' });
      } else {
        ranTool(t, 'loop-mount');
        try {
          const d = spawnSync('diff', ['-r', '--no-dereference', '-x', 'lost+found', src, mnt], { encoding: 'utf8' });
          t.is(d.stdout + d.stderr, '');
          const st = (p: string) => execFileSync('stat', ['-c', '%a %u %g %h %s %Y', p], { encoding: 'utf8' });
          for (const p of ['bin/busybox', 'bin/sg', 'tmp', 'boot/dtbs', 'etc/empty', 'bin/long-link']) t.is(st(join(mnt, p)).split(' ').slice(0, 5).join(' '), st(join(src, p)).split(' ').slice(0, 5).join(' '), p);
        } finally {
          spawnSync('umount', [mnt]);
        }
        // The kernel writing into it (new dirs spread over uninitialised groups, deletes) keeps it e2fsck-clean.
        const rw = spawnSync('mount', ['-o', 'loop', '-t', 'ext4', img, mnt], { encoding: 'utf8' });
        if (rw.status !== 0) skipOrFail(t, `rw loop mount failed (${rw.stderr.trim()})`, { tool: 'loop-mount' });
        else {
          try {
            execFileSync('sh', ['-c', `for i in $(seq 1 30); do mkdir -p ${mnt}/new$i && echo $i > ${mnt}/new$i/f; done; rm -f ${mnt}/bin/ls ${mnt}/etc/hostname; head -c 3000000 /dev/zero > ${mnt}/zeros; sync`]);
          } finally {
            spawnSync('umount', [mnt]);
          }
          t.deepEqual(fsck(img).extra, [], 'after a rw mount');
        }
        t.log('loop-mounted: diff -r and stat compared');
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
}

test('5,000 files at 128 MiB and a 2,000-entry directory: e2fsck clean (no directory optimisation asked), rdump identical', async (t) => {
  if (skip(t)) return;
  const dir = tmp('many');
  const src = join(dir, 'src');
  makeManyFiles(join(src, 'tree'), 5000, 300);
  makeManyFiles(join(src, 'wide'), 2000, 2000);
  const img = join(dir, 'fs.img');
  const s = await makeImage(img, 128 * MiB, readDirTree(src));
  t.is(s.files, 7000);
  const f = fsck(img);
  t.is(f.status, 0, f.out);
  t.deepEqual(f.extra, []);
  t.is(rdumpDiff(img, src), '');
  const wide = stat(img, '/wide/d0');
  t.true(wide.size > 16 * 4096, 'multi-block linear directory');
  t.is(wide.flags & 0x1000, 0, 'no htree INDEX flag');
  rmSync(dir, { recursive: true, force: true });
});

test('same input + seed + SOURCE_DATE_EPOCH give identical bytes; another seed changes the UUID', async (t) => {
  const dir = tmp('det');
  const src = join(dir, 'src');
  makeOsTree(src, 0.25);
  const sums: string[] = [];
  for (const seed of ['a', 'a', 'b']) {
    const img = join(dir, `fs-${sums.length}.img`);
    await makeImage(img, 64 * MiB, readDirTree(src), { entropy: makeEntropy(seed) });
    sums.push(createHash('sha256').update(readFileSync(img)).digest('hex'));
    rmSync(img);
  }
  t.is(sums[0], sums[1]);
  t.not(sums[0], sums[2]);
  rmSync(dir, { recursive: true, force: true });
});

async function* gen(entries: TreeEntry[]): AsyncGenerator<TreeEntry> {
  yield* entries;
}

function file(path: string, size: number, fill = 0x61): TreeEntry {
  return {
    path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: EPOCH, size,
    body: (async function* () {
      for (let left = size; left > 0; left -= MiB) yield Buffer.alloc(Math.min(MiB, left), fill);
    })(),
  };
}

test('bad inputs fail with one-line InputErrors', async (t) => {
  const dev = () => new MemoryDevice(16 * MiB);
  const opts = { label: 'x', entropy: makeEntropy('s'), now: EPOCH };
  const big = await t.throwsAsync(createExt4(dev(), gen([file('a', 10 * MiB), file('b', 9 * MiB), file('c', 1 * MiB)]), opts), { instanceOf: InputError });
  t.regex(big!.message, /payload needs 2\d MiB, partition has 16 MiB/);
  // Data fits, the directory blocks written at the end do not.
  const names: TreeEntry[] = [file('fill', 2790 * 4096)];
  for (let i = 0; i < 500; i++) names.push({ path: `${'n'.repeat(240)}${i}`, type: 'fifo', mode: 0o600, uid: 0, gid: 0, mtime: 0, size: 0 });
  const dirs = await t.throwsAsync(createExt4(dev(), gen(names), opts), { instanceOf: InputError });
  t.regex(dirs!.message, /payload needs 1\d MiB, partition has 16 MiB/);
  const many: TreeEntry[] = [];
  for (let i = 0; i < 5000; i++) many.push({ path: `f${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0 });
  const inodes = await t.throwsAsync(createExt4(dev(), gen(many), opts), { instanceOf: InputError });
  t.regex(inodes!.message, /5\d\d\d files and directories but the filesystem has 4096 inodes/);
  const label = await t.throwsAsync(createExt4(dev(), undefined, { ...opts, label: 'a-label-of-17-byt' }), { instanceOf: InputError });
  t.regex(label!.message, /label .* 17 bytes; at most 16/);
  const small = await t.throwsAsync(createExt4(new MemoryDevice(4 * MiB), undefined, opts), { instanceOf: InputError });
  t.regex(small!.message, /too small/);
  const dup = await t.throwsAsync(createExt4(dev(), gen([file('a', 1), file('a', 1)]), opts), { instanceOf: InputError });
  t.regex(dup!.message, /"a" appears twice/);
  const short: TreeEntry = { ...file('s', 10), body: (async function* () { yield Buffer.alloc(5); })() };
  t.regex((await t.throwsAsync(createExt4(dev(), gen([short]), opts), { instanceOf: InputError }))!.message, /ended after 5 of 10 bytes/);
  const hl: TreeEntry = { path: 'h', type: 'hardlink', linkname: 'nowhere', mode: 0, uid: 0, gid: 0, mtime: 0, size: 0 };
  t.regex((await t.throwsAsync(createExt4(dev(), gen([hl]), opts), { instanceOf: InputError }))!.message, /not earlier in the input/);
  for (const m of [big, inodes, label, small, dup]) t.notRegex(m!.message, /\n/);
});

test('a truncated tar stream and an escaping path are InputErrors', async (t) => {
  const tar = await specialTar();
  const opts = { label: 'x', entropy: makeEntropy('s'), now: EPOCH };
  await t.throwsAsync(createExt4(new MemoryDevice(16 * MiB), readTarTree(Readable.from([tar.subarray(0, 3000)]), 'cut.tar'), opts), { instanceOf: InputError, message: /cut\.tar/ });
  const pack = tarStream.pack();
  pack.entry({ name: '../evil', mode: 0o644 }, 'x');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  await t.throwsAsync(createExt4(new MemoryDevice(16 * MiB), readTarTree(Readable.from([Buffer.concat(chunks)]), 'evil.tar'), opts), { instanceOf: InputError, message: /\.\./ });
});

test('nothing outside the region is touched, on success or failure', async (t) => {
  const disk = new MemoryDevice(40 * MiB);
  disk.data.fill(0xa5);
  const region = new Region(disk, 8 * MiB, 16 * MiB, 'psyops-secret');
  const opts = { label: 'psyops-secret', entropy: makeEntropy('s'), now: EPOCH };
  const outside = () => disk.data.subarray(0, 8 * MiB).every((b) => b === 0xa5) && disk.data.subarray(24 * MiB).every((b) => b === 0xa5);
  await createExt4(region, gen([file('a', 3 * MiB)]), opts);
  t.true(outside());
  await t.throwsAsync(createExt4(region, gen([file('a', 30 * MiB)]), opts), { instanceOf: InputError });
  t.true(outside());
  if (!needTools(t, 'e2fsck')) return;
  // After the failed attempt, a good one over the same region is still e2fsck-clean.
  await createExt4(region, gen([file('a', 3 * MiB)]), opts);
  const dir = tmp('region');
  const img = join(dir, 'p.img');
  const fd = openSync(img, 'w');
  writeSync(fd, disk.data.subarray(8 * MiB, 24 * MiB));
  closeSync(fd);
  t.deepEqual(fsck(img).extra, []);
  rmSync(dir, { recursive: true, force: true });
});

test('the e2fsck judge reports a damaged image', async (t) => {
  if (skip(t)) return;
  const dir = tmp('judge');
  const img = join(dir, 'fs.img');
  await makeImage(img, 16 * MiB, undefined);
  t.deepEqual(fsck(img).extra, []);
  // Flip a byte in the root inode (inode table of group 0): its checksum no longer matches.
  const table = Number(/Inode table at (\d+)/.exec(execFileSync('dumpe2fs', [img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))![1]);
  const fd = openSync(img, 'r+');
  writeSync(fd, Buffer.from([0x5a]), 0, 1, table * 4096 + 256 + 0x10);
  closeSync(fd);
  const r = fsck(img);
  t.not(r.status, 0);
  t.true(r.extra.length > 0);
  rmSync(dir, { recursive: true, force: true });
});

test('extra files, nanosecond times and times past 2038 reach the inodes', async (t) => {
  if (skip(t)) return;
  const dir = tmp('extra');
  const img = join(dir, 'fs.img');
  const e: TreeEntry = { path: 'etc/stamp', type: 'file', mode: 0o600, uid: 7, gid: 8, mtime: 1_600_000_000.25, atime: 2_200_000_000, ctime: 1_600_000_001.5, size: 3, body: (async function* () { yield Buffer.from('abc'); })() };
  await makeImage(img, 16 * MiB, gen([e]), { sourceDateEpoch: undefined, now: 1_750_000_000, extraFiles: [{ path: 'psyopsOS-A', data: 'psyopsOS-A' }, { path: '/psyopsOS.tar.minisig', data: Buffer.from('sig\n'), mode: 0o600 }] });
  t.deepEqual(fsck(img).extra, []);
  const s = debugfs(img, 'stat /etc/stamp');
  t.regex(s, /mtime: 0x5f5e1000:3b9aca00/); // 0.25 s = 250000000 ns, << 2 in i_mtime_extra
  t.regex(s, /ctime: 0x5f5e1001:77359400/);
  t.regex(s, /atime: 0x83215600:00000001/); // 2200000000 = 2^32 * 1 epoch bit - 2094967296
  t.regex(s, /crtime: 0x684ee180:00000000/);
  t.is(debugfs(img, 'cat /psyopsOS-A'), 'psyopsOS-A');
  t.like(stat(img, '/psyopsOS.tar.minisig'), { mode: 0o600, size: 4, mtime: 1_750_000_000 });
  rmSync(dir, { recursive: true, force: true });
});

test('regionIsZeroed on a fresh sparse file skips the journal zeroing and is still e2fsck-clean', async (t) => {
  if (skip(t)) return;
  const dir = tmp('zeroed');
  const a = join(dir, 'a.img');
  const b = join(dir, 'b.img');
  await makeImage(a, 128 * MiB, undefined);
  await makeImage(b, 128 * MiB, undefined, { regionIsZeroed: true });
  t.deepEqual(fsck(b).extra, []);
  // Same bytes, fewer allocated blocks.
  t.is(createHash('sha256').update(readFileSync(a)).digest('hex'), createHash('sha256').update(readFileSync(b)).digest('hex'));
  const used = (p: string) => Number(execFileSync('stat', ['-c', '%b', p], { encoding: 'utf8' }).trim()) * 512;
  t.true(used(b) <= used(a) - 15 * MiB, `${used(b)} vs ${used(a)}`); // the 16 MiB journal
  rmSync(dir, { recursive: true, force: true });
});
