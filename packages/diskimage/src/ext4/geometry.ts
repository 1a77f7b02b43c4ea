import { InputError } from '@diskimg/partitions/internal';

/**
 * Pure planning of a new ext4 filesystem, following mke2fs 1.47
 * (misc/mke2fs.c + lib/ext2fs/initialize.c + alloc_tables.c) for block size
 * 4096, inode size 256, flex_bg 16, sparse_super, no reserved GDT blocks
 * (so no resize_inode). Numbers only: no I/O.
 */
export const BLOCK_SIZE = 4096;
export const INODE_SIZE = 256;
export const BLOCKS_PER_GROUP = BLOCK_SIZE * 8;
export const DESC_SIZE = 64;
export const FLEX_BG_SIZE = 16;
export const LOG_GROUPS_PER_FLEX = 4;
export const FIRST_INO = 11;
/** jbd2 refuses journals under 1024 blocks; mke2fs makes none under 2048 fs blocks. */
export const MIN_FS_BLOCKS = 2048;

export interface GroupPlan {
  /** First block of the group. */
  start: number;
  /** Blocks in the group (the last one may be short). */
  blocks: number;
  /** Superblock + GDT backup at its start (sparse_super). */
  hasSuper: boolean;
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
}

export interface Geometry {
  blockSize: number;
  blocksCount: number;
  reservedBlocks: number;
  groupCount: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  inodesCount: number;
  inodeTableBlocks: number;
  descBlocks: number;
  journalBlocks: number;
  /** mke2fs "usage type" chosen by size: floppy, small, default, big, huge. */
  usageType: string;
  inodeRatio: number;
  groups: GroupPlan[];
  /** Sorted, merged [start, end) block ranges holding fixed metadata (superblocks, GDTs, bitmaps, inode tables). */
  metadata: [number, number][];
}

/** sparse_super: groups 0, 1 and powers of 3, 5 and 7 hold backups. */
export function groupHasSuper(g: number): boolean {
  if (g <= 1) return true;
  if (g % 2 === 0) return false;
  for (const base of [3, 5, 7]) {
    let p = base;
    while (p < g) p *= base;
    if (p === g) return true;
  }
  return false;
}

/** mke2fs's usage type by size (misc/mke2fs.c parse_fs_type) and its inode_ratio from /etc/mke2fs.conf. */
function usageType(bytes: number): { type: string; ratio: number } {
  const MiB = 2 ** 20;
  if (bytes < 3 * MiB) return { type: 'floppy', ratio: 8192 };
  if (bytes < 512 * MiB) return { type: 'small', ratio: 4096 };
  if (bytes < 4 * 2 ** 40) return { type: 'default', ratio: 16384 };
  if (bytes < 16 * 2 ** 40) return { type: 'big', ratio: 32768 };
  return { type: 'huge', ratio: 65536 };
}

/** lib/ext2fs/mkjournal.c ext2fs_default_journal_size. */
export function defaultJournalBlocks(blocks: number): number {
  if (blocks < 2048) return -1;
  if (blocks < 32768) return 1024;
  if (blocks < 256 * 1024) return 4096;
  if (blocks < 512 * 1024) return 8192;
  if (blocks < 4096 * 1024) return 16384;
  if (blocks < 8192 * 1024) return 32768;
  if (blocks < 16384 * 1024) return 65536;
  if (blocks < 32768 * 1024) return 131072;
  return 262144;
}

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/**
 * Plan a filesystem for a region of `bytes` bytes. `reservedRatio` is the
 * percentage of blocks reserved for root (mke2fs -m, default 5).
 */
export function planGeometry(bytes: number, reservedRatio = 5): Geometry {
  const minBytes = MIN_FS_BLOCKS * BLOCK_SIZE;
  if (!(bytes >= minBytes)) {
    throw new InputError(`ext4: region of ${(bytes / 2 ** 20).toFixed(1)} MiB is too small; an ext4 filesystem with a journal needs at least ${minBytes / 2 ** 20} MiB`);
  }
  if (!(reservedRatio >= 0 && reservedRatio <= 50)) throw new InputError(`ext4: reserved ratio ${reservedRatio}% must be between 0 and 50`);
  let blocks = Math.floor(bytes / BLOCK_SIZE);
  const { type, ratio } = usageType(blocks * BLOCK_SIZE);
  // mke2fs computes the wanted inode count once from the requested size.
  const wantInodes = Math.min(Math.floor((blocks * BLOCK_SIZE) / ratio), 2 ** 32 - 1);
  const inodesPerBlock = BLOCK_SIZE / INODE_SIZE;

  for (;;) {
    const groupCount = ceilDiv(blocks, BLOCKS_PER_GROUP);
    const descBlocks = ceilDiv(groupCount, BLOCK_SIZE / DESC_SIZE);
    let ipg = Math.min(ceilDiv(wantInodes, groupCount), 65536 - inodesPerBlock);
    let itb = 0;
    for (;;) {
      itb = ceilDiv(ipg * INODE_SIZE, BLOCK_SIZE);
      let n = (itb * BLOCK_SIZE) / INODE_SIZE;
      if (n < 8) n = 8;
      n &= ~7;
      itb = ceilDiv(n * INODE_SIZE, BLOCK_SIZE);
      if (n * groupCount > 2 ** 32 - 1) {
        ipg--;
        continue;
      }
      if (n * groupCount < FIRST_INO + 1) {
        ipg += 8;
        continue;
      }
      ipg = n;
      break;
    }
    // A short last group too small for its own metadata (+50) is dropped.
    const last = groupCount - 1;
    let overhead = 2 + itb;
    if (groupHasSuper(last)) overhead += 1 + descBlocks;
    const rem = blocks % BLOCKS_PER_GROUP;
    if (groupCount === 1 && rem && rem < overhead) {
      throw new InputError(`ext4: region of ${(bytes / 2 ** 20).toFixed(1)} MiB is too small for the filesystem's metadata`);
    }
    if (rem && rem < overhead + 50) {
      blocks -= rem;
      continue;
    }
    const journalBlocks = defaultJournalBlocks(blocks);
    if (journalBlocks < 0) throw new InputError(`ext4: region is too small for a journal; use at least ${minBytes / 2 ** 20} MiB`);
    const groups = layoutGroups(blocks, groupCount, descBlocks, itb);
    return {
      blockSize: BLOCK_SIZE,
      blocksCount: blocks,
      reservedBlocks: Math.floor((reservedRatio * blocks) / 100),
      groupCount,
      blocksPerGroup: BLOCKS_PER_GROUP,
      inodesPerGroup: ipg,
      inodesCount: ipg * groupCount,
      inodeTableBlocks: itb,
      descBlocks,
      journalBlocks,
      usageType: type,
      inodeRatio: ratio,
      groups,
      metadata: metadataRanges(groups, descBlocks, itb),
    };
  }
}

/**
 * flex_bg placement as alloc_tables.c does on an empty filesystem: for each
 * flex group, the block bitmaps of its n groups are packed right after the
 * first group's superblock/GDT, then the n inode bitmaps, then the n inode
 * tables.
 */
function layoutGroups(blocks: number, groupCount: number, descBlocks: number, itb: number): GroupPlan[] {
  const groups: GroupPlan[] = [];
  for (let g = 0; g < groupCount; g++) {
    const start = g * BLOCKS_PER_GROUP;
    groups.push({ start, blocks: Math.min(BLOCKS_PER_GROUP, blocks - start), hasSuper: groupHasSuper(g), blockBitmap: 0, inodeBitmap: 0, inodeTable: 0 });
  }
  for (let g0 = 0; g0 < groupCount; g0 += FLEX_BG_SIZE) {
    const n = Math.min(FLEX_BG_SIZE, groupCount - g0);
    const first = groups[g0]!;
    const base = first.start + (first.hasSuper ? 1 + descBlocks : 0);
    // alloc_tables.c's table_offset: the last flex group packs tightly, except that a lone group keeps 16 slots.
    const off = n === 1 ? FLEX_BG_SIZE : n;
    if (base + 2 * off + n * itb > first.start + first.blocks) {
      // Cannot happen for the sizes mke2fs's ratios produce; refuse rather than guess.
      throw new InputError(`ext4: flex group ${g0 / FLEX_BG_SIZE} metadata does not fit its first group; region size ${blocks} blocks is unsupported`);
    }
    for (let i = 0; i < n; i++) {
      const gp = groups[g0 + i]!;
      gp.blockBitmap = base + i;
      gp.inodeBitmap = base + off + i;
      gp.inodeTable = base + 2 * off + i * itb;
    }
  }
  return groups;
}

function metadataRanges(groups: GroupPlan[], descBlocks: number, itb: number): [number, number][] {
  const r: [number, number][] = [];
  for (let g = 0; g < groups.length; g++) {
    const gp = groups[g]!;
    if (gp.hasSuper) r.push([gp.start, gp.start + 1 + descBlocks]);
    if (g % FLEX_BG_SIZE === 0) {
      const n = Math.min(FLEX_BG_SIZE, groups.length - g);
      r.push([gp.blockBitmap, gp.blockBitmap + n]);
      r.push([gp.inodeBitmap, gp.inodeBitmap + n]);
      r.push([gp.inodeTable, gp.inodeTable + n * itb]);
    }
  }
  r.sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const x of r) {
    const prev = out[out.length - 1];
    if (prev && x[0] <= prev[1]) prev[1] = Math.max(prev[1], x[1]);
    else out.push([x[0], x[1]]);
  }
  return out;
}
