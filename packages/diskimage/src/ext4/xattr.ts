import { FormatError } from '@diskimg/partitions';
import { asBuffer } from './struct.js';

/**
 * In-inode extended attributes (struct ext4_xattr_ibody_header + entries),
 * read-only and only as far as the reader needs: inline_data keeps the part
 * of a file or directory that does not fit in i_block in "system.data".
 */
export const EXT4_XATTR_MAGIC = 0xea020000;
export const EXT4_XATTR_INDEX_SYSTEM = 7;

export interface XattrEntry {
  e_name_index: number;
  name: Buffer;
  e_value_inum: number;
  value: Buffer;
}

/**
 * Parse the in-inode xattr area: `area` is the raw inode bytes from
 * 128 + i_extra_isize to the end of the inode. Returns [] when the magic is
 * absent. Values live at e_value_offs from the first entry.
 */
export function decodeIbodyXattrs(area: Uint8Array, structure: string): XattrEntry[] {
  const b = asBuffer(area);
  if (b.length < 4 || b.readUInt32LE(0) !== EXT4_XATTR_MAGIC) return [];
  const base = 4;
  const out: XattrEntry[] = [];
  let off = base;
  // Entries are ≥ 16 bytes each, so this ends within area.length / 16 steps.
  while (off + 4 <= b.length && b.readUInt32LE(off) !== 0) {
    if (off + 16 > b.length) throw new FormatError(structure, 'in-inode xattr entry runs past the inode');
    const nameLen = b[off]!;
    const e_name_index = b[off + 1]!;
    const valueOffs = b.readUInt16LE(off + 2);
    const e_value_inum = b.readUInt32LE(off + 4);
    const valueSize = b.readUInt32LE(off + 8);
    if (off + 16 + nameLen > b.length) throw new FormatError(structure, 'in-inode xattr name runs past the inode');
    const name = Buffer.from(b.subarray(off + 16, off + 16 + nameLen));
    let value = Buffer.alloc(0);
    if (e_value_inum === 0 && valueSize > 0) {
      if (base + valueOffs + valueSize > b.length) throw new FormatError(structure, `in-inode xattr value of ${valueSize} bytes runs past the inode`);
      value = Buffer.from(b.subarray(base + valueOffs, base + valueOffs + valueSize));
    }
    out.push({ e_name_index, name, e_value_inum, value });
    off += (16 + nameLen + 3) & ~3;
  }
  return out;
}
