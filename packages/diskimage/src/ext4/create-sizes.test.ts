/**
 * Block accounting at the edges, judged by mkfs.ext4 -d on the same tree: files of 0, 1, 4095,
 * 4096, 4097 and 8192 bytes, all-zero blocks (holes, as mke2fs -d leaves them), a file with holes
 * inside and at the end, and 59/60/61-byte symlinks (fast below 60). For each, `debugfs stat`'s
 * size, Blockcount and the extent list's logical ranges must equal mkfs.ext4's; e2fsck -fn clean.
 * (e2fsck accepts a block past the end of a file, so it alone cannot see an extra block.)
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { readDirTree } from '../source/dir.js';
import { fsck, makeImage, MiB, stat, tmp } from './testutil.js';
import { needTools } from '../../../../test/helpers/skip.js';

const SIZES = [0, 1, 4095, 4096, 4097, 8192, 3 * 4096, 3 * 4096 + 1];

function makeTree(root: string): string[] {
  mkdirSync(root, { recursive: true });
  const paths: string[] = [];
  for (const n of SIZES) {
    writeFileSync(join(root, `f${n}`), Buffer.alloc(n, 0x5a));
    paths.push(`/f${n}`);
  }
  // all-zero data: whole zero blocks are holes for mke2fs -d (and for us)
  writeFileSync(join(root, 'zeros4096'), Buffer.alloc(4096));
  writeFileSync(join(root, 'zeros4097'), Buffer.alloc(4097));
  // data, 3 blocks of hole, data not block-aligned, then a hole to the end (size 40960)
  const fd = openSync(join(root, 'holes'), 'w');
  writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 0);
  writeSync(fd, Buffer.alloc(200, 2), 0, 200, 4 * 4096 + 100);
  writeSync(fd, Buffer.alloc(1, 0), 0, 1, 10 * 4096 - 1);
  closeSync(fd);
  paths.push('/zeros4096', '/zeros4097', '/holes');
  for (const n of [59, 60, 61]) {
    symlinkSync('t'.repeat(n), join(root, `link${n}`));
    paths.push(`/link${n}`);
  }
  return paths;
}

/** "(0-1):1234-1235, (4):2000" → "(0-1), (4)": the logical ranges (physical blocks differ by design). */
const logical = (extents: string | undefined) => (extents ?? '').split(/,\s*/).map((e) => /^\(([^)]*)\)/.exec(e.trim())?.[1] ?? e.trim()).join(', ');

test('files of 0/1/4095/4096/4097/8192 bytes, zero blocks, holes and 59-61-byte symlinks: size, Blockcount and extents as mkfs.ext4 -d', async (t) => {
  if (!needTools(t, 'mkfs.ext4', 'debugfs', 'e2fsck')) return;
  const dir = tmp('sizes');
  try {
    const src = join(dir, 'src');
    const paths = makeTree(src);
    const ours = join(dir, 'ours.img');
    await makeImage(ours, 64 * MiB, readDirTree(src));
    const f = fsck(ours);
    t.is(f.status, 0, f.out);
    t.deepEqual(f.extra, []);
    const ref = join(dir, 'ref.img');
    execFileSync('truncate', ['-s', '64M', ref]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', '-d', src, ref], { stdio: 'ignore' });
    t.is(logical(stat(ref, '/holes').extents), '0, 4', 'the reference really has holes');
    for (const p of paths) {
      const a = stat(ours, p);
      const b = stat(ref, p);
      t.is(a.size, b.size, `${p} size`);
      t.is(a.blockcount, b.blockcount, `${p} Blockcount (ours ${a.blockcount}, mkfs.ext4 ${b.blockcount})`);
      t.is(logical(a.extents), logical(b.extents), `${p} extents (ours ${a.extents}, mkfs.ext4 ${b.extents})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a file that runs through the end of block group 0 into group 1 (the last block of a group used): e2fsck -fn clean, group free counts as dumpe2fs counts them', async (t) => {
  if (!needTools(t, 'e2fsck', 'dumpe2fs')) return;
  const dir = tmp('groups');
  try {
    const img = join(dir, 'fs.img');
    const size = 130 * MiB; // group 0 holds 128 MiB (32768 blocks), so the file crosses into group 1
    const chunk = Buffer.alloc(MiB, 0x77);
    const body = (async function* () { for (let i = 0; i < size / MiB; i++) yield chunk; })();
    await makeImage(img, 200 * MiB, (async function* () {
      yield { path: 'big', type: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, size, body };
    })());
    const f = fsck(img);
    t.is(f.status, 0, f.out);
    t.deepEqual(f.extra, []);
    // dumpe2fs: each group's "N free blocks" must match the free ranges it lists
    const d = execFileSync('dumpe2fs', [img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 * MiB });
    const groups = d.split(/\nGroup \d+:/).slice(1);
    t.true(groups.length >= 2);
    for (const [g, text] of groups.entries()) {
      const count = Number(/(\d+) free blocks/.exec(text)?.[1]);
      const ranges = /Free blocks: (.*)/.exec(text)?.[1]?.trim() ?? '';
      const listed = ranges === '' ? 0 : ranges.split(', ').reduce((a, r) => { const [x, y] = r.split('-').map(Number); return a + (y === undefined ? 1 : y - x! + 1); }, 0);
      t.is(count, listed, `group ${g}: descriptor says ${count} free, bitmap lists ${listed}`);
    }
    t.regex(groups[0]!, /Free blocks: *\n|Free blocks: $/m, 'group 0 is full to its last block');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
