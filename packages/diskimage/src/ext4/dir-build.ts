import { encodeDirBlock, packDirEntries, dirEntrySize, DIR_TAIL_SIZE, FT_UNKNOWN, FT_REG_FILE, FT_DIR, FT_CHRDEV, FT_BLKDEV, FT_FIFO, FT_SOCK, FT_SYMLINK, type DirChecksumOptions } from './dirent.js';

/**
 * Linear (non-htree) directories for the writer: "." and ".." first, then
 * the entries in input order, packed block by block, each block ending in the
 * metadata_csum tail. A linear directory of many blocks is valid ext4 with
 * dir_index as long as the inode lacks EXT4_INDEX_FL.
 */
export const FT = { UNKNOWN: FT_UNKNOWN, REG: FT_REG_FILE, DIR: FT_DIR, CHR: FT_CHRDEV, BLK: FT_BLKDEV, FIFO: FT_FIFO, SOCK: FT_SOCK, SYMLINK: FT_SYMLINK } as const;

export interface DirEntryIn {
  name: Buffer;
  ino: number;
  type: number;
}

type Packed = { inode: number; name: Buffer; file_type: number };

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

function withDots(entries: readonly DirEntryIn[], self: number, parent: number): Packed[] {
  const out: Packed[] = [
    { inode: self, name: DOT, file_type: FT_DIR },
    { inode: parent, name: DOTDOT, file_type: FT_DIR },
  ];
  for (const e of entries) out.push({ inode: e.ino, name: e.name, file_type: e.type });
  return out;
}

/** Blocks the directory needs (without building it), from its entry names. */
export function dirBlockCount(names: Iterable<string>, blockSize: number): number {
  const space = blockSize - DIR_TAIL_SIZE;
  let blocks = 1;
  let used = dirEntrySize(1) + dirEntrySize(2);
  for (const name of names) {
    const sz = dirEntrySize(Buffer.byteLength(name, 'utf8'));
    if (used + sz > space) {
      blocks++;
      used = 0;
    }
    used += sz;
  }
  return blocks;
}

/**
 * Encode a directory as exactly `nblocks` blocks (≥ what the entries need;
 * extra blocks are empty, as in mke2fs's lost+found).
 */
export function buildDirBlocks(entries: readonly DirEntryIn[], self: number, parent: number, nblocks: number, blockSize: number, csum: DirChecksumOptions): Buffer[] {
  const groups = packDirEntries(withDots(entries, self, parent), blockSize, true);
  if (groups.length > nblocks) throw new Error(`directory ${self}: ${groups.length} blocks needed, ${nblocks} given`);
  const out = groups.map((g) => encodeDirBlock(g, blockSize, csum));
  while (out.length < nblocks) out.push(encodeDirBlock([], blockSize, csum));
  return out;
}
