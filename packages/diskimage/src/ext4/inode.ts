import { FormatError } from '@diskimg/partitions/internal';
import { GOOD_OLD_INODE_SIZE, I_CHECKSUM_HI, I_CHECKSUM_LO, inodeChecksum, inodeHasChecksumHi } from './checksum.js';
import { asBuffer, decodeFields, encodeFields, type FieldDef, type StructOf } from './struct.js';

/** i_mode file types (S_IFMT). */
export const S_IFMT = 0xf000;
export const S_IFIFO = 0x1000;
export const S_IFCHR = 0x2000;
export const S_IFDIR = 0x4000;
export const S_IFBLK = 0x6000;
export const S_IFREG = 0x8000;
export const S_IFLNK = 0xa000;
export const S_IFSOCK = 0xc000;

/** i_flags bits the reader and writer care about. */
export const EXT4_SECRM_FL = 0x1;
export const EXT4_ENCRYPT_FL = 0x800;
export const EXT4_INDEX_FL = 0x1000;
export const EXT4_HUGE_FILE_FL = 0x40000;
export const EXT4_EXTENTS_FL = 0x80000;
export const EXT4_VERITY_FL = 0x100000;
export const EXT4_EA_INODE_FL = 0x200000;
export const EXT4_INLINE_DATA_FL = 0x10000000;

/** Well-known inode numbers. */
export const EXT4_BAD_INO = 1;
export const EXT4_ROOT_INO = 2;
export const EXT4_RESIZE_INO = 7;
export const EXT4_JOURNAL_INO = 8;

/**
 * struct ext4_inode, the first 128 bytes (Linux osd1/osd2). The uid, gid,
 * size, block count and xattr block are combined from their lo/hi halves.
 * i_block is the raw 60-byte block map / extent root / inline data / symlink.
 */
export const INODE_FIELDS = [
  ['i_mode', 0x0, 'u16'],
  ['i_uid', 0x2, 'u16', 0x78, 'u16'],
  ['i_size', 0x4, 'u32', 0x6c, 'u32'],
  ['i_atime', 0x8, 'u32'],
  ['i_ctime', 0xc, 'u32'],
  ['i_mtime', 0x10, 'u32'],
  ['i_dtime', 0x14, 'u32'],
  ['i_gid', 0x18, 'u16', 0x7a, 'u16'],
  ['i_links_count', 0x1a, 'u16'],
  ['i_blocks', 0x1c, 'u32', 0x74, 'u16'],
  ['i_flags', 0x20, 'u32'],
  ['l_i_version', 0x24, 'u32'],
  ['i_block', 0x28, 'b60'],
  ['i_generation', 0x64, 'u32'],
  ['i_file_acl', 0x68, 'u32', 0x76, 'u16'],
  ['i_obso_faddr', 0x70, 'u32'],
  ['l_i_checksum_lo', 0x7c, 'u16'],
  ['l_i_reserved', 0x7e, 'u16'],
] as const satisfies readonly FieldDef[];

/** The large-inode fields from byte 128 (present when s_inode_size ≥ 160; meaningful up to 128 + i_extra_isize). */
export const INODE_EXTRA_FIELDS = [
  ['i_extra_isize', 0x80, 'u16'],
  ['i_checksum_hi', 0x82, 'u16'],
  ['i_ctime_extra', 0x84, 'u32'],
  ['i_mtime_extra', 0x88, 'u32'],
  ['i_atime_extra', 0x8c, 'u32'],
  ['i_crtime', 0x90, 'u32'],
  ['i_crtime_extra', 0x94, 'u32'],
  ['i_version_hi', 0x98, 'u32'],
  ['i_projid', 0x9c, 'u32'],
] as const satisfies readonly FieldDef[];

const EXTRA_END = 0xa0;

export type Inode = StructOf<typeof INODE_FIELDS> &
  StructOf<typeof INODE_EXTRA_FIELDS> & {
    /** Bytes from 0xa0 to the end of the on-disk inode (in-inode xattrs live here); empty for 128-byte inodes. */
    i_tail: Buffer;
  };

export interface InodeChecksumOptions {
  /** Filesystem checksum seed (checksum.csumSeed). */
  csumSeed: number;
  /** Inode number. */
  ino: number;
  /** i_generation; defaults to the inode's own. */
  gen?: number;
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Check the stored checksum of a raw on-disk inode. An all-zero inode counts as valid (as e2fsprogs does). */
export function verifyInodeChecksum(raw: Uint8Array, csumSeed: number, ino: number): boolean {
  const b = asBuffer(raw);
  const gen = b.readUInt32LE(0x64);
  const sum = inodeChecksum(csumSeed, ino, gen, b);
  const hasHi = inodeHasChecksumHi(b);
  const stored = b.readUInt16LE(I_CHECKSUM_LO) + (hasHi ? b.readUInt16LE(I_CHECKSUM_HI) * 0x10000 : 0);
  const want = hasHi ? sum : sum & 0xffff;
  return stored === want || isZero(b);
}

/**
 * Decode an on-disk inode of s_inode_size bytes (128 or more). With
 * `csum`, verifies the metadata_csum checksum and throws
 * FormatError "ext4 inode N: checksum mismatch".
 */
export function decodeInode(bytes: Uint8Array, csum?: InodeChecksumOptions): Inode {
  const S = `ext4 inode${csum ? ' ' + csum.ino : ''}`;
  if (bytes.length < GOOD_OLD_INODE_SIZE) throw new FormatError(S, `${bytes.length} bytes, need at least 128`);
  const b = asBuffer(bytes);
  const base = decodeFields(INODE_FIELDS, b);
  const extra =
    b.length >= EXTRA_END
      ? decodeFields(INODE_EXTRA_FIELDS, b)
      : { i_extra_isize: 0, i_checksum_hi: 0, i_ctime_extra: 0, i_mtime_extra: 0, i_atime_extra: 0, i_crtime: 0, i_crtime_extra: 0, i_version_hi: 0, i_projid: 0 };
  if (b.length > GOOD_OLD_INODE_SIZE && GOOD_OLD_INODE_SIZE + extra.i_extra_isize > b.length) {
    throw new FormatError(S, `i_extra_isize ${extra.i_extra_isize} runs past the ${b.length}-byte inode`);
  }
  if (csum && !verifyInodeChecksum(b, csum.csumSeed, csum.ino)) throw new FormatError(S, 'checksum mismatch');
  return { ...base, ...extra, i_tail: Buffer.from(b.subarray(Math.min(EXTRA_END, b.length))) };
}

/**
 * Encode an inode into `inodeSize` bytes (default 256). With `csum`, the
 * checksum is computed last and stored in l_i_checksum_lo (and i_checksum_hi
 * when i_extra_isize ≥ 4); otherwise the given checksum fields are written.
 */
export function encodeInode(inode: Inode, opts: { inodeSize?: number; csum?: InodeChecksumOptions } = {}): Buffer {
  const size = opts.inodeSize ?? 256;
  const S = `ext4 inode${opts.csum ? ' ' + opts.csum.ino : ''}`;
  if (size < GOOD_OLD_INODE_SIZE || (size & (size - 1)) !== 0) throw new FormatError(S, `inode size ${size} is not a power of two ≥ 128`);
  const b = Buffer.alloc(size);
  encodeFields(INODE_FIELDS, inode, b, S);
  if (size >= EXTRA_END) {
    if (GOOD_OLD_INODE_SIZE + inode.i_extra_isize > size) throw new FormatError(S, `i_extra_isize ${inode.i_extra_isize} does not fit a ${size}-byte inode`);
    encodeFields(INODE_EXTRA_FIELDS, inode, b, S);
    const tail = inode.i_tail ?? Buffer.alloc(0);
    if (tail.length > size - EXTRA_END) throw new FormatError(S, `i_tail is ${tail.length} bytes, ${size - EXTRA_END} fit`);
    b.set(tail, EXTRA_END);
  } else if (inode.i_extra_isize) {
    throw new FormatError(S, 'i_extra_isize needs an inode larger than 128 bytes');
  }
  if (opts.csum) {
    const sum = inodeChecksum(opts.csum.csumSeed, opts.csum.ino, opts.csum.gen ?? inode.i_generation, b);
    b.writeUInt16LE(sum & 0xffff, I_CHECKSUM_LO);
    if (inodeHasChecksumHi(b)) b.writeUInt16LE(sum >>> 16, I_CHECKSUM_HI);
  }
  return b;
}

/** An all-zero inode of the given shape, to fill in field by field. */
export function emptyInode(extraIsize = 32): Inode {
  const o: Record<string, unknown> = {};
  for (const [n, , k] of INODE_FIELDS) o[n] = k === 'b60' ? Buffer.alloc(60) : 0;
  for (const [n] of INODE_EXTRA_FIELDS) o[n] = 0;
  o.i_extra_isize = extraIsize;
  o.i_tail = Buffer.alloc(0);
  return o as Inode;
}

/**
 * A timestamp as seconds (may exceed 2^31 via the epoch bits) and
 * nanoseconds. `extra` is used only when `hasExtra` (the field lies inside
 * 128 + i_extra_isize).
 */
export function inodeTime(lo: number, extra: number, hasExtra: boolean): { sec: number; nsec: number } {
  const signed = lo | 0;
  if (!hasExtra) return { sec: signed, nsec: 0 };
  return { sec: signed + (extra & 3) * 2 ** 32, nsec: extra >>> 2 };
}

/** Split seconds (+ nanoseconds) into the 32-bit field and its *_extra word. */
export function encodeInodeTime(sec: number, nsec = 0): { lo: number; extra: number } {
  const s = Math.floor(sec);
  const epoch = Math.floor((s + 2 ** 31) / 2 ** 32); // 0 for 1901..2038
  const lo = (s - epoch * 2 ** 32) >>> 0;
  return { lo, extra: ((nsec << 2) | (epoch & 3)) >>> 0 };
}

/** Does field `offset` (4 bytes) lie inside the inode's extra space? */
export function inodeHasField(inode: Pick<Inode, 'i_extra_isize'>, offset: number, inodeSize: number): boolean {
  return inodeSize > GOOD_OLD_INODE_SIZE && offset + 4 <= GOOD_OLD_INODE_SIZE + inode.i_extra_isize;
}
