import test from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FileDevice } from '../device/file.js';
import { readDirTree } from '../source/dir.js';
import type { TreeEntry } from '../source/tree.js';
import { createExt4 } from './create.js';
import { makeEntropy } from '@diskimg/partitions/internal';
import { MiB, EPOCH, tmp, makeImage, fsck, rdumpDiff, stat, prng, makeOsTree, makeManyFiles } from './testutil.js';
import { needRoot, needTools, ranTool, skipOrFail, type SkipContext } from '../../../../test/helpers/skip.js';

/** A file of `size` bytes streamed in 1 MiB chunks (incompressible, each chunk distinct); `sha` is filled as it streams. */
function bigFile(path: string, size: number, seed: number): { entry: TreeEntry; sha: () => string } {
  const base = prng(MiB, seed);
  const h = createHash('sha256');
  const body = (async function* () {
    for (let off = 0, i = 0; off < size; off += MiB, i++) {
      const c = Buffer.from(base.subarray(0, Math.min(MiB, size - off)));
      c.writeUInt32LE(i, 0);
      h.update(c);
      yield c;
    }
  })();
  return { entry: { path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: EPOCH, size, body }, sha: () => h.digest('hex') };
}

function debugfsSha(img: string, path: string): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn('debugfs', ['-R', `cat ${path}`, img], { stdio: ['ignore', 'pipe', 'ignore'] });
    const h = createHash('sha256');
    p.stdout.on('data', (c: Buffer) => h.update(c));
    p.on('error', rej);
    p.on('close', () => res(h.digest('hex')));
  });
}

test('a 300 MiB and a 700 MiB file at 1.5 GiB: extents across groups and an extent index block, e2fsck clean, contents identical', async (t) => {
  if (!needTools(t, 'e2fsck', 'debugfs')) return;
  const dir = tmp('big');
  const img = join(dir, 'fs.img');
  const a = bigFile('squashfs/modloop.squashfs', 300 * MiB, 7);
  const b = bigFile('big/700', 700 * MiB + 12345, 8);
  const s = await makeImage(img, 1536 * MiB, (async function* () { yield a.entry; yield b.entry; })());
  t.is(s.files, 2);
  const f = fsck(img);
  t.is(f.status, 0, f.out);
  t.deepEqual(f.extra, []);
  t.is(await debugfsSha(img, '/squashfs/modloop.squashfs'), a.sha());
  t.is(await debugfsSha(img, '/big/700'), b.sha());
  const st = stat(img, '/big/700');
  t.is(st.size, 700 * MiB + 12345);
  // 179204 data blocks + 1 extent leaf block, in 512-byte sectors.
  t.is(st.blockcount, (179204 + 1) * 8);
  const ex = execFileSync('debugfs', ['-R', 'ex /big/700', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  t.regex(ex, /^\s*0\/\s*1\s/m, 'depth-1 tree (index block)');
  rmSync(dir, { recursive: true, force: true });
});

/** Make a fuller filesystem with the real mkfs.ext4 -d (and, as root, dirty its journal through a rw mount). */
function oldFs(img: string, size: string, src: string, t: SkipContext): void {
  execFileSync('truncate', ['-s', size, img]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', src, img], { stdio: 'ignore' });
  if (!needRoot(t, 'a rw loop mount that dirties the old journal')) return;
  const mnt = `${img}.mnt`;
  mkdirSync(mnt, { recursive: true });
  const m = spawnSync('mount', ['-o', 'loop', img, mnt], { encoding: 'utf8' });
  if (m.status !== 0) return skipOrFail(t, `loop mount failed (${m.stderr.trim()}); old journal not dirtied`, { tool: 'loop-mount' });
  ranTool(t, 'loop-mount');
  try {
    execFileSync('sh', ['-c', `cp -a ${mnt}/tree ${mnt}/tree2 && rm -rf ${mnt}/tree/d1 && sync`]);
  } finally {
    spawnSync('umount', [mnt]);
  }
}

for (const size of ['128M', '1536M']) {
  test(`a new filesystem over a fuller mkfs.ext4 -d one (${size}) passes e2fsck and reads back identical`, async (t) => {
    if (!needTools(t, 'e2fsck', 'debugfs', 'mkfs.ext4')) return;
    const dir = tmp('over');
    const old = join(dir, 'old');
    makeManyFiles(join(old, 'tree'), 3000, 100);
    makeOsTree(join(old, 'os'));
    const img = join(dir, 'fs.img');
    oldFs(img, size, old, t);
    t.deepEqual(fsck(img).extra, [], 'the old filesystem is clean');
    const src = join(dir, 'new');
    makeOsTree(src, 0.5);
    const dev = await FileDevice.open(img, { writable: true });
    await createExt4(dev, readDirTree(src), { label: 'psyopsOS-B', entropy: makeEntropy('over'), now: EPOCH, sourceDateEpoch: EPOCH });
    await dev.close();
    const f = fsck(img);
    t.is(f.status, 0, f.out);
    t.deepEqual(f.extra, []);
    t.is(rdumpDiff(img, src), '');
    t.is(stat(img, '/bin/busybox').links, 3);
    rmSync(dir, { recursive: true, force: true });
  });
}

test('dir_nlink: a directory with 64,998 subdirectories has 65,000 links, one more and it has 1', async (t) => {
  if (!needTools(t, 'e2fsck', 'debugfs')) return;
  const dir = tmp('nlink');
  const img = join(dir, 'fs.img');
  const d = (path: string): TreeEntry => ({ path, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: EPOCH, size: 0 });
  await makeImage(img, 8192 * MiB, (async function* () {
    for (let i = 0; i < 64998; i++) yield d(`a/${i}`);
    for (let i = 0; i < 64999; i++) yield d(`b/${i}`);
  })());
  const f = fsck(img);
  t.is(f.status, 0, f.out);
  t.deepEqual(f.extra, []);
  t.is(stat(img, '/a').links, 65000);
  t.is(stat(img, '/b').links, 1);
  rmSync(dir, { recursive: true, force: true });
});
