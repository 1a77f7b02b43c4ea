import { FormatError } from '@diskimg/partitions/internal';
import { BG_CHECKSUM, groupDescChecksum } from './checksum.js';
import { asBuffer, decodeFields, encodeFields, type FieldDef, type StructOf } from './struct.js';

/** bg_flags bits. */
export const BG_INODE_UNINIT = 0x1;
export const BG_BLOCK_UNINIT = 0x2;
export const BG_INODE_ZEROED = 0x4;

/** struct ext4_group_desc as a 64-byte (64bit feature) descriptor; *_lo/*_hi combined. */
export const GROUP_DESC_FIELDS = [
  ['bg_block_bitmap', 0x0, 'u32', 0x20, 'u32'],
  ['bg_inode_bitmap', 0x4, 'u32', 0x24, 'u32'],
  ['bg_inode_table', 0x8, 'u32', 0x28, 'u32'],
  ['bg_free_blocks_count', 0xc, 'u16', 0x2c, 'u16'],
  ['bg_free_inodes_count', 0xe, 'u16', 0x2e, 'u16'],
  ['bg_used_dirs_count', 0x10, 'u16', 0x30, 'u16'],
  ['bg_flags', 0x12, 'u16'],
  ['bg_exclude_bitmap', 0x14, 'u32', 0x34, 'u32'],
  ['bg_block_bitmap_csum', 0x18, 'u16', 0x38, 'u16'],
  ['bg_inode_bitmap_csum', 0x1a, 'u16', 0x3a, 'u16'],
  ['bg_itable_unused', 0x1c, 'u16', 0x32, 'u16'],
  ['bg_checksum', 0x1e, 'u16'],
  ['bg_reserved', 0x3c, 'u32'],
] as const satisfies readonly FieldDef[];

/** The same fields in a 32-byte descriptor (no 64bit feature): only the low halves exist. */
const GROUP_DESC_FIELDS_32 = [
  ['bg_block_bitmap', 0x0, 'u32'],
  ['bg_inode_bitmap', 0x4, 'u32'],
  ['bg_inode_table', 0x8, 'u32'],
  ['bg_free_blocks_count', 0xc, 'u16'],
  ['bg_free_inodes_count', 0xe, 'u16'],
  ['bg_used_dirs_count', 0x10, 'u16'],
  ['bg_flags', 0x12, 'u16'],
  ['bg_exclude_bitmap', 0x14, 'u32'],
  ['bg_block_bitmap_csum', 0x18, 'u16'],
  ['bg_inode_bitmap_csum', 0x1a, 'u16'],
  ['bg_itable_unused', 0x1c, 'u16'],
  ['bg_checksum', 0x1e, 'u16'],
] as const satisfies readonly FieldDef[];

export type GroupDesc = StructOf<typeof GROUP_DESC_FIELDS>;

/** Descriptor size: s_desc_size with 64bit (at least 64), else 32. */
export function descSize(sb: { s_feature_incompat: number; s_desc_size: number }): number {
  return sb.s_feature_incompat & 0x80 ? Math.max(sb.s_desc_size, 64) : 32;
}

export interface GroupDescChecksumOptions {
  /** Block group number (part of every checksum). */
  group: number;
  /** metadata_csum: the filesystem csum seed → crc32c checksum. */
  csumSeed?: number;
  /** gdt_csum (uninit_bg) without metadata_csum: s_uuid → crc16 checksum. */
  uuid?: Uint8Array;
}

function computeChecksum(b: Buffer, o: GroupDescChecksumOptions): number | undefined {
  if (o.csumSeed !== undefined) return groupDescChecksum('crc32c', o.csumSeed, o.group, b);
  if (o.uuid !== undefined) return groupDescChecksum('crc16', o.uuid, o.group, b);
  return undefined;
}

/**
 * Decode one descriptor; `bytes.length` is the descriptor size (32, or 64+ with
 * 64bit). Verifies bg_checksum when given the csum seed (or uuid for gdt_csum).
 */
export function decodeGroupDesc(bytes: Uint8Array, opts: GroupDescChecksumOptions = { group: 0 }): GroupDesc {
  const S = `ext4 group descriptor ${opts.group}`;
  if (bytes.length !== 32 && bytes.length < 64) throw new FormatError(S, `descriptor size ${bytes.length} is neither 32 nor ≥ 64`);
  const b = asBuffer(bytes);
  const gd: GroupDesc = bytes.length === 32 ? { ...decodeFields(GROUP_DESC_FIELDS_32, b), bg_reserved: 0 } : decodeFields(GROUP_DESC_FIELDS, b);
  const want = computeChecksum(b, opts);
  if (want !== undefined && want !== gd.bg_checksum) {
    throw new FormatError(S, `bg_checksum mismatch (stored 0x${gd.bg_checksum.toString(16)}, computed 0x${want.toString(16)})`);
  }
  return gd;
}

/**
 * Encode one descriptor of `size` bytes (64 with 64bit, 32 otherwise). With a
 * csum seed (or uuid) bg_checksum is computed last; otherwise gd.bg_checksum is written.
 */
export function encodeGroupDesc(gd: GroupDesc, opts: GroupDescChecksumOptions & { size?: number } = { group: 0 }): Buffer {
  const size = opts.size ?? 64;
  const S = `ext4 group descriptor ${opts.group}`;
  if (size !== 32 && size < 64) throw new FormatError(S, `descriptor size ${size} is neither 32 nor ≥ 64`);
  const b = Buffer.alloc(size);
  if (size === 32) {
    for (const [name, , , ] of GROUP_DESC_FIELDS) {
      const v = gd[name as keyof GroupDesc];
      const lim = name === 'bg_block_bitmap' || name === 'bg_inode_bitmap' || name === 'bg_inode_table' || name === 'bg_exclude_bitmap' ? 2 ** 32 : 2 ** 16;
      if (name !== 'bg_reserved' && v >= lim) throw new FormatError(S, `${name} = ${v} needs a 64-byte descriptor (64bit feature)`);
    }
    encodeFields(GROUP_DESC_FIELDS_32, gd, b, S);
  } else {
    encodeFields(GROUP_DESC_FIELDS, gd, b, S);
  }
  const sum = computeChecksum(b, opts);
  if (sum !== undefined) b.writeUInt16LE(sum, BG_CHECKSUM);
  return b;
}
