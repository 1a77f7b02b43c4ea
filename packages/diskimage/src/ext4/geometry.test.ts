import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, closeSync, openSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '@diskimg/partitions/internal';
import { planGeometry, groupHasSuper, defaultJournalBlocks } from './geometry.js';
import { BlockAllocator } from './alloc.js';
import { needTools } from '../../../../test/helpers/skip.js';


/** Parse what we compare from dumpe2fs of a real mkfs.ext4 (same block/inode size, no resize_inode). */
function realGeometry(bytes: number) {
  const dir = mkdtempSync(join(tmpdir(), 'geom-'));
  const img = join(dir, 'fs.img');
  const fd = openSync(img, 'w');
  ftruncateSync(fd, bytes);
  closeSync(fd);
  execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', '-I', '256', '-E', 'nodiscard', '-O', '^resize_inode,^metadata_csum_seed,^orphan_file', img], { env: { ...process.env, MKE2FS_CONFIG: '/etc/mke2fs.conf' } });
  const out = execFileSync('dumpe2fs', [img], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  rmSync(dir, { recursive: true, force: true });
  const num = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(out)![1]);
  const groups = [...out.matchAll(/Block bitmap at (\d+).*\n\s+Inode bitmap at (\d+).*\n\s+Inode table at (\d+)-/g)].map((m) => [Number(m[1]), Number(m[2]), Number(m[3])]);
  return {
    blocks: num('Block count'),
    inodes: num('Inode count'),
    ipg: num('Inodes per group'),
    reserved: num('Reserved block count'),
    journal: num('Total journal blocks'),
    groups,
  };
}

const MiB = 2 ** 20;
for (const size of [16 * MiB, 100 * MiB, 300 * MiB, 511 * MiB, 512 * MiB, 1536 * MiB, 8192 * MiB, 20 * 1024 * MiB, 9 * MiB + 3 * 4096]) {
  test(`geometry matches mkfs.ext4 at ${(size / MiB).toFixed(2)} MiB`, (t) => {
    if (!needTools(t, 'mkfs.ext4')) return;
    const real = realGeometry(size);
    const g = planGeometry(size);
    t.is(g.blocksCount, real.blocks);
    t.is(g.inodesCount, real.inodes);
    t.is(g.inodesPerGroup, real.ipg);
    t.is(g.reservedBlocks, real.reserved);
    t.is(g.journalBlocks, real.journal);
    t.deepEqual(g.groups.map((x) => [x.blockBitmap, x.inodeBitmap, x.inodeTable]), real.groups);
  });
}

test('sparse_super backup groups and journal sizes', (t) => {
  const backups = [...Array(1000).keys()].filter(groupHasSuper);
  t.deepEqual(backups, [0, 1, 3, 5, 7, 9, 25, 27, 49, 81, 125, 243, 343, 625, 729]);
  t.is(defaultJournalBlocks(4096), 1024);
  t.is(defaultJournalBlocks(393216), 8192);
  t.is(defaultJournalBlocks(2 ** 21), 16384);
});

test('too small regions are refused with a one-line InputError', (t) => {
  const e = t.throws(() => planGeometry(4 * MiB), { instanceOf: InputError });
  t.regex(e!.message, /too small.*at least 8 MiB/);
  t.notRegex(e!.message, /\n/);
});

test('allocator skips metadata and never hands out a block twice', (t) => {
  const g = planGeometry(1536 * MiB);
  const a = new BlockAllocator(g.blocksCount, g.metadata);
  const seen = new Set<number>();
  let total = 0;
  for (;;) {
    const runs = a.alloc(7919);
    if (!runs) break;
    for (const r of runs) {
      for (let b = r.start; b < r.start + r.len; b++) {
        t.false(seen.has(b));
        seen.add(b);
        t.false(g.metadata.some(([s, e]) => b >= s && b < e));
      }
      total += r.len;
    }
  }
  t.is(total + a.free, g.blocksCount - g.metadata.reduce((n, [s, e]) => n + e - s, 0));
  t.true(a.free < 7919);
});
