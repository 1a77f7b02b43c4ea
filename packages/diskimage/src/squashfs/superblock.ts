/**
 * The SquashFS 4.0 superblock (96 bytes at offset 0, little-endian), names as
 * in the kernel's squashfs_fs.h. Decoding checks what every later read relies
 * on: magic, version, block size/log, and that every table lies inside
 * bytes_used and the device.
 */
import { FormatError, UnsupportedFormatError } from '@diskimg/partitions/internal';

export const SQUASHFS_MAGIC = 0x73717368; // "hsqs"
export const SUPERBLOCK_SIZE = 96;
/** Nothing: an absent table (xattrs, fragments, export) is all ones. */
export const INVALID_BLK = 2 ** 64 - 1;

export const COMPRESSION = { 1: 'gzip', 2: 'lzma', 3: 'lzo', 4: 'xz', 5: 'lz4', 6: 'zstd' } as const;
export type Compression = (typeof COMPRESSION)[keyof typeof COMPRESSION];

export const SQUASHFS_NOI = 0x0001;
export const SQUASHFS_NOD = 0x0002;
export const SQUASHFS_NOF = 0x0008;
export const SQUASHFS_NO_FRAG = 0x0010;
export const SQUASHFS_ALWAYS_FRAG = 0x0020;
export const SQUASHFS_EXPORT = 0x0080;
export const SQUASHFS_NOX = 0x0100;
export const SQUASHFS_NO_XATTR = 0x0200;
export const SQUASHFS_COMP_OPT = 0x0400;

/** Hostile-image caps (the kernel's own limits). */
export const MAX_BLOCK_SIZE = 1 << 20;
export const MIN_BLOCK_SIZE = 4096;

export interface SquashfsSuperblock {
  s_magic: number;
  inodes: number;
  mkfs_time: number;
  block_size: number;
  fragments: number;
  compression: number;
  block_log: number;
  flags: number;
  no_ids: number;
  s_major: number;
  s_minor: number;
  root_inode: bigint;
  bytes_used: number;
  id_table_start: number;
  xattr_id_table_start: number;
  inode_table_start: number;
  directory_table_start: number;
  fragment_table_start: number;
  lookup_table_start: number;
}

const S = 'squashfs superblock';

/** A 64-bit offset as a number; all ones (absent) becomes INVALID_BLK. */
function u64(b: Buffer, o: number): number {
  const v = b.readBigUInt64LE(o);
  if (v === 0xffffffffffffffffn) return INVALID_BLK;
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(S, `offset ${v} at byte ${o} out of range`);
  return Number(v);
}

export function isSquashfs(b: Uint8Array): boolean {
  return b.length >= 4 && Buffer.from(b.buffer, b.byteOffset, 4).readUInt32LE(0) === SQUASHFS_MAGIC;
}

export function decodeSuperblock(b: Buffer, deviceSize: number): SquashfsSuperblock {
  if (b.length < SUPERBLOCK_SIZE) throw new FormatError(S, `only ${b.length} bytes, need ${SUPERBLOCK_SIZE}`);
  const sb: SquashfsSuperblock = {
    s_magic: b.readUInt32LE(0),
    inodes: b.readUInt32LE(4),
    mkfs_time: b.readUInt32LE(8),
    block_size: b.readUInt32LE(12),
    fragments: b.readUInt32LE(16),
    compression: b.readUInt16LE(20),
    block_log: b.readUInt16LE(22),
    flags: b.readUInt16LE(24),
    no_ids: b.readUInt16LE(26),
    s_major: b.readUInt16LE(28),
    s_minor: b.readUInt16LE(30),
    root_inode: b.readBigUInt64LE(32),
    bytes_used: u64(b, 40),
    id_table_start: u64(b, 48),
    xattr_id_table_start: u64(b, 56),
    inode_table_start: u64(b, 64),
    directory_table_start: u64(b, 72),
    fragment_table_start: u64(b, 80),
    lookup_table_start: u64(b, 88),
  };
  if (sb.s_magic !== SQUASHFS_MAGIC) throw new FormatError(S, 'no SquashFS magic "hsqs" (not a SquashFS image, or a big-endian/pre-4.0 one)');
  if (sb.s_major !== 4 || sb.s_minor !== 0) throw new UnsupportedFormatError(S, `version ${sb.s_major}.${sb.s_minor}: only SquashFS 4.0 is read`);
  if (sb.block_size < MIN_BLOCK_SIZE || sb.block_size > MAX_BLOCK_SIZE || 1 << sb.block_log !== sb.block_size) {
    throw new FormatError(S, `block_size ${sb.block_size} / block_log ${sb.block_log} invalid (4 KiB..1 MiB, a power of two)`);
  }
  if (!(sb.compression in COMPRESSION)) throw new UnsupportedFormatError(S, `unknown compression id ${sb.compression}`);
  if (sb.bytes_used === INVALID_BLK || sb.bytes_used < SUPERBLOCK_SIZE || sb.bytes_used > deviceSize) {
    throw new FormatError(S, `bytes_used ${sb.bytes_used} does not fit the ${deviceSize}-byte device (truncated image?)`);
  }
  const inside = (name: string, v: number, optional: boolean) => {
    if (optional && v === INVALID_BLK) return;
    if (v < SUPERBLOCK_SIZE || v > sb.bytes_used) throw new FormatError(S, `${name} ${v} lies outside the image (bytes_used ${sb.bytes_used})`);
  };
  inside('inode_table_start', sb.inode_table_start, false);
  inside('directory_table_start', sb.directory_table_start, false);
  inside('id_table_start', sb.id_table_start, false);
  inside('fragment_table_start', sb.fragment_table_start, true);
  inside('lookup_table_start', sb.lookup_table_start, true);
  inside('xattr_id_table_start', sb.xattr_id_table_start, true);
  if (sb.directory_table_start < sb.inode_table_start) throw new FormatError(S, 'directory table starts before the inode table');
  if (sb.no_ids === 0) throw new FormatError(S, 'no_ids is 0 (every inode needs an owner id)');
  return sb;
}

export function compressionName(sb: SquashfsSuperblock): Compression {
  return COMPRESSION[sb.compression as keyof typeof COMPRESSION];
}
