/**
 * Every codec against structures cut from real mkfs.ext4 images: decode
 * (which verifies each checksum) and re-encode to the very same bytes.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, openSync, readSync, closeSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { csumSeed, hasMetadataCsum } from './checksum.js';
import { decodeSuperblock, encodeSuperblock, blockSize, groupCount } from './superblock.js';
import { decodeGroupDesc, encodeGroupDesc, descSize } from './group-desc.js';
import { blockBitmapChecksum, inodeBitmapChecksum, verifyBitmapChecksum } from './bitmap.js';
import { decodeInode, encodeInode, type Inode } from './inode.js';
import { decodeExtentNode, encodeExtentNode } from './extent.js';
import { decodeDirBlock, encodeDirBlock, decodeDxRoot } from './dirent.js';
import { decodeJournalSuperblock, encodeJournalSuperblock } from './journal-superblock.js';
import { featureNames } from './features.js';
import { cString } from './struct.js';
import { needTools } from '../../../../test/helpers/skip.js';


function readBytes(path: string, off: number, len: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(len);
    readSync(fd, b, 0, len, off);
    return b;
  } finally {
    closeSync(fd);
  }
}

function dumpe2fs(img: string): Map<string, string> {
  const out = execFileSync('dumpe2fs', ['-h', img], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const m = new Map<string, string>();
    for (const line of out.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

function makeImage(dir: string, args: string[]): string {
  const src = join(dir, 'src');
  mkdirSync(join(src, 'big'), { recursive: true });
  writeFileSync(join(src, 'hello.txt'), 'hello\n');
  symlinkSync('hello.txt', join(src, 'fast'));
  symlinkSync('x'.repeat(100), join(src, 'slow'));
  for (let i = 0; i < 300; i++) writeFileSync(join(src, 'big', `file-with-a-longish-name-${i}`), String(i));
  const img = join(dir, 'img');
  execFileSync('mkfs.ext4', ['-F', '-q', '-L', 'testlabel', ...args, '-d', src, img, '32M'], { stdio: 'ignore' });
  // mkfs -d writes linear directories; e2fsck -D re-indexes big ones as htrees (exit 1 = "fixed").
  const r = spawnSync('e2fsck', ['-fyD', img], { stdio: 'ignore' });
  if (r.status !== 0 && r.status !== 1) throw new Error(`e2fsck -fyD exited ${r.status}`);
  return img;
}

const variants: [string, string[]][] = [
  ['defaults (1 KiB blocks at this size)', []],
  ['4 KiB blocks, metadata_csum_seed', ['-b', '4096', '-O', 'metadata_csum_seed']],
  ['4 KiB blocks, ^metadata_csum_seed, ^64bit', ['-b', '4096', '-O', '^metadata_csum_seed,^64bit']],
  ['2 KiB blocks, 128-byte inodes, no metadata_csum (gdt_csum)', ['-b', '2048', '-I', '128', '-O', '^metadata_csum,uninit_bg']],
];

for (const [title, args] of variants) {
  test(`mkfs.ext4 ${args.join(' ') || '(defaults)'}: ${title}: every structure decodes and re-encodes to the same bytes`, (t) => {
    if (!needTools(t, 'mkfs.ext4')) return;
    const dir = mkdtempSync(join(tmpdir(), 'ext4-codec-'));
    try {
      const img = makeImage(dir, args);
      // Put a checksummed (v3) jbd2 superblock in the journal, as the kernel does on mount.
      execFileSync('debugfs', ['-w', '-f', '-', img], { input: 'journal_open -c\njournal_close\n', stdio: ['pipe', 'ignore', 'ignore'] });
      const d = dumpe2fs(img);

      const sbBytes = readBytes(img, 1024, 1024);
      const sb = decodeSuperblock(sbBytes);
      t.true(encodeSuperblock(sb).equals(sbBytes), 'superblock re-encodes');
      t.is(sb.s_inodes_count, Number(d.get('Inode count')));
      t.is(sb.s_blocks_count, Number(d.get('Block count')));
      t.is(sb.s_free_blocks_count, Number(d.get('Free blocks')));
      t.is(blockSize(sb), Number(d.get('Block size')));
      t.is(cString(sb.s_volume_name), d.get('Filesystem volume name') ?? '');
      t.is(featureNames(sb).join(' '), d.get('Filesystem features') ?? '');
      const uuid = sb.s_uuid.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');
      t.is(uuid, d.get('Filesystem UUID') ?? '');
      if (d.has('Checksum seed')) t.is(sb.s_checksum_seed, Number(d.get('Checksum seed')));

      const bs = blockSize(sb);
      const csum = hasMetadataCsum(sb);
      const seed = csumSeed(sb);
      const ds = descSize(sb);
      const groups = groupCount(sb);
      const gdtOff = (sb.s_first_data_block + 1) * bs;
      const gdt = readBytes(img, gdtOff, groups * ds);
      const gdOpts = (g: number) => (csum ? { group: g, csumSeed: seed } : { group: g, uuid: sb.s_uuid });
      const gds: ReturnType<typeof decodeGroupDesc>[] = [];
      for (let g = 0; g < groups; g++) {
        const raw = gdt.subarray(g * ds, (g + 1) * ds);
        const gd = decodeGroupDesc(raw, gdOpts(g));
        t.true(encodeGroupDesc(gd, { ...gdOpts(g), size: ds }).equals(raw), `group descriptor ${g} re-encodes`);
        gds.push(gd);
        if (csum && !(gd.bg_flags & 2)) {
          const bb = readBytes(img, gd.bg_block_bitmap * bs, bs);
          t.notThrows(() => verifyBitmapChecksum('block', g, gd.bg_block_bitmap_csum, blockBitmapChecksum(seed, bb, sb.s_clusters_per_group), ds));
        }
        if (csum && !(gd.bg_flags & 1)) {
          const ib = readBytes(img, gd.bg_inode_bitmap * bs, bs);
          t.notThrows(() => verifyBitmapChecksum('inode', g, gd.bg_inode_bitmap_csum, inodeBitmapChecksum(seed, ib, sb.s_inodes_per_group), ds));
        }
      }

      const isz = sb.s_inode_size;
      const readInode = (ino: number): { raw: Buffer; inode: Inode } => {
        const g = Math.floor((ino - 1) / sb.s_inodes_per_group);
        const idx = (ino - 1) % sb.s_inodes_per_group;
        const raw = readBytes(img, gds[g]!.bg_inode_table * bs + idx * isz, isz);
        return { raw, inode: decodeInode(raw, csum ? { csumSeed: seed, ino } : undefined) };
      };
      let checked = 0;
      for (let ino = 1; ino <= Math.min(sb.s_inodes_per_group, 400); ino++) {
        const { raw, inode } = readInode(ino);
        if (inode.i_mode === 0 && inode.i_links_count === 0) continue;
        t.true(encodeInode(inode, { inodeSize: isz, csum: csum ? { csumSeed: seed, ino } : undefined }).equals(raw), `inode ${ino} re-encodes`);
        checked++;
      }
      t.true(checked > 300, `${checked} inodes checked`);

      // Directory blocks: root (linear) and big/ (htree with 300 entries).
      const dirBlocks = (ino: number): { lblk: number; raw: Buffer; inode: Inode }[] => {
        const { inode } = readInode(ino);
        const xcsum = csum ? { csumSeed: seed, ino, gen: inode.i_generation } : undefined;
        const out: { lblk: number; raw: Buffer; inode: Inode }[] = [];
        const walk = (raw: Buffer, size: number) => {
          const node = decodeExtentNode(raw, { csum: xcsum });
          t.true(encodeExtentNode(node, size, xcsum).equals(raw), `inode ${ino} extent node re-encodes`);
          for (const x of node.indexes) walk(readBytes(img, x.ei_leaf * bs, bs), bs);
          for (const e of node.leaves) for (let i = 0; i < e.ee_len; i++) out.push({ lblk: e.ee_block + i, raw: readBytes(img, (e.ee_start + i) * bs, bs), inode });
        };
        walk(inode.i_block, 60);
        return out;
      };
      const dcsum = (ino: number, gen: number) => (csum ? { csumSeed: seed, ino, gen } : undefined);
      for (const { raw, inode } of dirBlocks(2)) {
        const dec = decodeDirBlock(raw, { csum: dcsum(2, inode.i_generation) });
        t.true(encodeDirBlock(dec.entries, bs, dcsum(2, inode.i_generation)).equals(raw), 'root dir block re-encodes');
        t.true(dec.entries.some((e) => e.name.toString() === 'hello.txt'));
      }
      const bigIno = decodeDirBlock(dirBlocks(2)[0]!.raw).entries.find((e) => e.name.toString() === 'big')!.inode;
      const big = dirBlocks(bigIno);
      const gen = big[0]!.inode.i_generation;
      t.truthy(big[0]!.inode.i_flags & 0x1000, 'big/ is an htree directory');
      const names = new Set<string>();
      for (const { lblk, raw } of big) {
        if (lblk === 0 && big[0]!.inode.i_flags & 0x1000) {
          const root = decodeDxRoot(raw, { csum: dcsum(bigIno, gen) });
          t.is(root.indirect_levels, 0);
          t.true(root.count > 1);
          continue;
        }
        const dec = decodeDirBlock(raw, { csum: dcsum(bigIno, gen) });
        t.true(encodeDirBlock(dec.entries, bs, dcsum(bigIno, gen)).equals(raw), `big/ block ${lblk} re-encodes`);
        for (const e of dec.entries) if (e.inode) names.add(e.name.toString());
      }
      t.is(names.size, 300);

      // Journal superblock (inode 8, logical block 0).
      const j = readInode(8).inode;
      const jroot = decodeExtentNode(j.i_block);
      const jraw = readBytes(img, jroot.leaves[0]!.ee_start * bs, 1024);
      const jsb = decodeJournalSuperblock(jraw);
      t.true(encodeJournalSuperblock(jsb).equals(jraw), 'journal superblock re-encodes');
      t.is(jsb.s_maxlen, Number(d.get('Total journal blocks')));
      if (d.has('Journal checksum')) t.is(jsb.s_checksum, Number(d.get('Journal checksum')));
      t.is(csum, d.get('Journal features')?.includes('journal_checksum_v3') ?? false, 'csum v3 journal iff metadata_csum');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
