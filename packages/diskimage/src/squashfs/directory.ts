/**
 * Directory listings in the directory table: runs of a header
 * (squashfs_dir_header: count − 1, start block of the entries' inodes
 * relative to the inode table, base inode number) then count entries
 * (squashfs_dir_entry: offset in that inode block, inode number delta,
 * basic type, name size − 1, name). A listing is file_size − 3 bytes long.
 * Extended directories carry an index (one entry per metadata block) that
 * lookups use to skip ahead in big directories.
 */
import { FormatError } from '@diskimg/partitions/internal';
import { MetaCursor, type MetadataReader } from './metadata.js';
import type { SquashfsInode } from './inode.js';

/** Names are at most 256 bytes (SQUASHFS_NAME_LEN). */
export const MAX_NAME = 256;
/** A header covers at most 256 entries (mksquashfs and the kernel both use this). */
const MAX_HEADER_COUNT = 256;

export interface SquashfsDirent {
  name: Buffer;
  /** Where the inode is: metadata block relative to the inode table, offset inside it. */
  block: number;
  offset: number;
  inode_number: number;
  /** Basic inode type (1..7). */
  type: number;
}

/**
 * Entries of a directory in on-disk (sorted) order. With `stopAt`, reading
 * starts at the index entry that precedes that name and stops at the first
 * entry sorting after it (the lookup path).
 */
export async function readDirectory(
  meta: MetadataReader,
  dirTableStart: number,
  dir: SquashfsInode,
  structure: string,
  stopAt?: Buffer,
): Promise<SquashfsDirent[]> {
  const size = dir.dir_size! - 3;
  if (size < 0) throw new FormatError(structure, `directory file_size ${dir.dir_size} below 3`);
  let done = 0;
  let pos = { block: dirTableStart + dir.dir_start_block!, offset: dir.dir_offset! };
  if (stopAt && dir.index?.length) {
    // The last index entry whose first name is not after the wanted one (names sort bytewise).
    let best: (typeof dir.index)[number] | undefined;
    for (const x of dir.index) {
      if (Buffer.compare(x.name, stopAt) <= 0) best = x;
      else break;
    }
    if (best) {
      if (best.index > size) throw new FormatError(structure, `directory index offset ${best.index} out of range`);
      pos = { block: dirTableStart + best.start, offset: (dir.dir_offset! + best.index) % 8192 };
      done = best.index;
    }
  }
  // The listing's length is known: fetch it in one piece, then parse without awaiting.
  const all = await new MetaCursor(meta, pos, structure).bytes(size - done);
  let at = 0;
  const c = { bytes: (n: number) => all.subarray(at, (at += n)) };
  const out: SquashfsDirent[] = [];
  while (done < size) {
    if (size - done < 12) throw new FormatError(structure, `${size - done} stray bytes at the end of the listing`);
    const h = c.bytes(12);
    done += 12;
    const count = h.readUInt32LE(0) + 1;
    const start = h.readUInt32LE(4);
    const base = h.readUInt32LE(8);
    if (count > MAX_HEADER_COUNT) throw new FormatError(structure, `directory header with ${count} entries (max ${MAX_HEADER_COUNT})`);
    for (let k = 0; k < count; k++) {
      if (size - done < 8) throw new FormatError(structure, 'listing ends inside an entry');
      const e = c.bytes(8);
      const nameSize = e.readUInt16LE(6) + 1;
      if (nameSize > MAX_NAME) throw new FormatError(structure, `name of ${nameSize} bytes (max ${MAX_NAME})`);
      if (size - done < 8 + nameSize) throw new FormatError(structure, 'listing ends inside a name');
      const name = Buffer.from(c.bytes(nameSize));
      done += 8 + nameSize;
      const type = e.readUInt16LE(4);
      if (type < 1 || type > 7) throw new FormatError(structure, `entry "${name.toString()}" has type ${type}`);
      if (name.includes(0x2f) || name.includes(0) || name.equals(DOT) || name.equals(DOTDOT)) {
        throw new FormatError(structure, `entry name "${name.toString()}" is not a file name`);
      }
      if (stopAt && Buffer.compare(name, stopAt) > 0) return out;
      out.push({ name, block: start, offset: e.readUInt16LE(0), inode_number: (base + e.readInt16LE(2)) >>> 0, type });
    }
  }
  return out;
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
