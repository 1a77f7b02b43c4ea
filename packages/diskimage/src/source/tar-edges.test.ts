/**
 * Tar edge cases through our tar reader and createExt4, judged by debugfs: names of exactly 100
 * and 101 bytes (ustar's name field is 100), 155- and 256-byte paths (ustar prefix / pax path),
 * files of exactly 512 and 0 bytes (a body that fills its block / none), hard links whose target
 * is short, 100+ bytes long, or in another directory. Archives from GNU tar (gnu and pax formats)
 * and bsdtar; each slot must equal the source tree (debugfs rdump + diff -r), and each hard link
 * must share its target's inode (debugfs stat: same Inode, Links 2 or more).
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { readTarTree } from './tar.js';
import { debugfs, fsck, makeImage, MiB, rdumpDiff, tmp } from '../ext4/testutil.js';
import { needTools } from '../../../../test/helpers/skip.js';

const name100 = 'n'.repeat(96) + '.100';
const name101 = 'm'.repeat(97) + '.101';
// a 155-byte path: directory part of 120 bytes (fits ustar's prefix) + a 34-byte name
const dir120 = 'd'.repeat(59) + '/' + 'e'.repeat(60);
const path155 = `${dir120}/${'f'.repeat(34)}`;
// a 256-byte path: only pax (or GNU longname) carries it
const dir200 = Array.from({ length: 4 }, (_, i) => String(i).repeat(49)).join('/'); // 199 bytes
const path256 = `${dir200}/${'g'.repeat(256 - 200)}`;

function makeTree(root: string): { links: [string, string][] } {
  const w = (p: string, data: Buffer | string) => {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), data);
  };
  w(name100, 'exactly 100\n');
  w(name101, 'exactly 101\n');
  w(path155, 'path of 155\n');
  w(path256, 'path of 256\n');
  w('f512', Buffer.alloc(512, 0x33));
  w('f0', '');
  w('f511', Buffer.alloc(511, 0x34));
  w('f513', Buffer.alloc(513, 0x35));
  const links: [string, string][] = [
    ['hard-short', 'f512'],
    ['hard-to-101', name101],
    [`${dir120}/hard-to-256`, path256],
    ['sub/hard-to-155', path155],
    ['hard-to-empty', 'f0'],
  ];
  for (const [l, target] of links) {
    mkdirSync(join(root, l, '..'), { recursive: true });
    linkSync(join(root, target), join(root, l));
  }
  return { links };
}

const ARCHIVERS: [string, (src: string, out: string) => void][] = [
  ['GNU tar --format=gnu', (src, out) => execFileSync('tar', ['--format=gnu', '--sort=name', '-C', src, '-cf', out, '.'])],
  ['GNU tar --format=pax', (src, out) => execFileSync('tar', ['--format=pax', '--sort=name', '-C', src, '-cf', out, '.'])],
  ['bsdtar --format=pax', (src, out) => execFileSync('bsdtar', ['--format=pax', '-C', src, '-cf', out, '.'])],
];

for (const [what, archive] of ARCHIVERS) {
  test(`${what}: 100/101-byte names, 155/256-byte paths, 0/511/512/513-byte files and hard links (long targets too) land as debugfs reads them`, async (t) => {
    if (!needTools(t, what.startsWith('bsdtar') ? 'bsdtar' : 'tar', 'debugfs', 'e2fsck')) return;
    const dir = tmp('taredge');
    try {
      const src = join(dir, 'src');
      const { links } = makeTree(src);
      const tarFile = join(dir, 'os.tar');
      archive(src, tarFile);
      const img = join(dir, 'fs.img');
      await makeImage(img, 32 * MiB, readTarTree(Readable.from([readFileSync(tarFile)]), 'os.tar'));
      const f = fsck(img);
      t.is(f.status, 0, f.out);
      t.deepEqual(f.extra, []);
      t.is(rdumpDiff(img, src), '');
      const inode = (p: string) => {
        const s = debugfs(img, `stat "/${p}"`);
        return { ino: Number(/Inode: (\d+)/.exec(s)?.[1]), links: Number(/Links: (\d+)/.exec(s)?.[1]), size: Number(/Size: (\d+)/.exec(s)?.[1]) };
      };
      for (const [l, target] of links) {
        const a = inode(l);
        const b = inode(target);
        t.true(a.ino > 0, `${l} exists`);
        t.is(a.ino, b.ino, `${l} is a hard link to ${target}`);
        t.true(a.links >= 2, `${target} has ${a.links} links`);
      }
      t.is(inode('f512').size, 512);
      t.is(inode('f0').size, 0);
      t.is(inode(name100).size, 12);
      t.is(inode(path256).size, 12);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
