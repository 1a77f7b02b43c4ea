// Seeded corruption of SquashFS images made by mksquashfs (gzip, and -noI -noD -noF -noX
// uncompressed; xz once its decoder is in): bytes flipped in the superblock and the metadata
// tables, and truncations. Opening and walking every entry (readdir, stat, readlink, xattrs, every
// file's bytes, readAt) must end normally or in one of our typed errors (DiskimgError), never a
// RangeError/TypeError, and each case must finish within its time cap (a hang guard, not a timing
// assertion).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { DiskimgError } from '../packages/partitions/src/index.js';
import { MemoryDevice, openSquashfs, type SquashfsInode } from '../packages/diskimage/src/index.js';
import { needRoot, needTools } from './helpers/skip.js';
import { SQFS_TOOLS, image, run, type ImageSpec } from './helpers/squashfs.js';
import { mulberry32 } from './helpers/prng.js';

const CASES = 60;
const CASE_CAP_MS = 30_000;

/** Walk everything the reader can reach; returns how many entries it saw. */
async function walkAll(img: Buffer): Promise<number> {
  const fs = await openSquashfs(new MemoryDevice(img.length, 512, img), { name: 'fuzzed' });
  const seen = new Set<SquashfsInode>();
  let n = 0;
  const rec = async (dir: SquashfsInode, path: string, depth: number) => {
    if (depth > 64) return;
    for (const e of await fs.readdirInode(dir, path)) {
      n++;
      if (seen.has(e.inode)) continue;
      seen.add(e.inode);
      await fs.statInode(e.inode);
      await fs.xattrsInode(e.inode);
      if (e.inode.type === 'file') {
        for await (const _ of fs.readInode(e.inode)) void _;
        if (e.inode.file_size! > 10) await fs.readAt(e.inode, Math.floor(e.inode.file_size! / 2), Buffer.alloc(5));
      }
      if (e.inode.type === 'directory') await rec(e.inode, `${path}/${e.name}`, depth + 1);
    }
  };
  await rec(fs.root, '', 0);
  for (const p of ['/etc/os-release', '/bin/sh', '/bin/etc-up/hostname', '/loop-a', '/x/shared2']) {
    await fs.stat(p).catch((e) => {
      if (!(e instanceof DiskimgError)) throw e;
    });
  }
  return n;
}

async function oneCase(img: Buffer): Promise<'ok' | 'typed'> {
  let timer: NodeJS.Timeout | undefined;
  const cap = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`case took over ${CASE_CAP_MS / 1000} s (a hang?)`)), CASE_CAP_MS);
  });
  try {
    await Promise.race([walkAll(img), cap]);
    return 'ok';
  } catch (e) {
    if (e instanceof DiskimgError) return 'typed';
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

const SPECS: [string, ImageSpec][] = [
  ['gzip', { tool: 'mksquashfs', comp: 'gzip' }],
  ['uncompressed', { tool: 'mksquashfs', comp: 'gzip', args: ['-noI', '-noD', '-noF', '-noX'] }],
  ['xz', { tool: 'mksquashfs', comp: 'xz' }],
];

for (const [label, spec] of SPECS) {
  test.serial(`squashfs fuzz: ${label}: ${CASES} seeded corruptions and truncations end in typed errors`, async (t) => {
    if (!needRoot(t, 'mknod in the fixture tree') || !needTools(t, ...SQFS_TOOLS, 'python3')) return;
    const orig = readFileSync(image(spec));
    t.true((await walkAll(orig)) > 50, 'the intact image walks');
    const inodeStart = Number(orig.readBigUInt64LE(64));
    const used = Number(orig.readBigUInt64LE(40));
    const tally = { ok: 0, typed: 0 };
    for (let seed = 1; seed <= CASES; seed++) {
      const rnd = mulberry32(seed * 7919);
      const img = Buffer.from(orig);
      let what: string;
      if (seed % 10 === 0) {
        const cut = Math.floor(rnd() * used);
        what = `truncated at ${cut}`;
        tally[await oneCase(img.subarray(0, cut))]++;
        continue;
      }
      const flips = 1 + Math.floor(rnd() * 8);
      const at: number[] = [];
      for (let k = 0; k < flips; k++) {
        // Mostly the metadata tables (inodes, directories, fragments, ids, xattrs), sometimes the superblock.
        const o = rnd() < 0.15 ? Math.floor(rnd() * 96) : inodeStart + Math.floor(rnd() * (used - inodeStart));
        img[o] ^= 1 + Math.floor(rnd() * 255);
        at.push(o);
      }
      what = `bytes ${at.join(',')}`;
      try {
        tally[await oneCase(img)]++;
      } catch (e) {
        t.fail(`seed ${seed} (${what}): ${(e as Error).stack}`);
      }
    }
    t.log(`${label}: ${tally.ok} walked (damage in unread or data bytes), ${tally.typed} ended in a typed error`);
    t.true(tally.typed > 0);
  });
}
