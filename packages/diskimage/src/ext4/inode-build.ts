import { emptyInode, encodeInode, encodeInodeTime, S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO } from './inode.js';
import { FT } from './dir-build.js';
import { INODE_SIZE } from './geometry.js';

/**
 * The writer's in-memory record of an inode (kept small: one per file) and
 * its encoding into the on-disk inode with metadata_csum.
 */
export interface Times {
  atime: number;
  mtime: number;
  ctime: number;
  /** Exact nanoseconds; when set, the matching seconds field is whole. */
  atimeNs?: number;
  mtimeNs?: number;
  ctimeNs?: number;
}

export interface NodeRecord extends Times {
  ino: number;
  /** Full i_mode (type | permissions). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  links: number;
  flags: number;
  /** 512-byte sectors. */
  sectors: number;
  /** The in-inode xattr area (from 128 + i_extra_isize to the end of the inode), when the inode has attributes there. */
  ibody?: Buffer;
  /** i_file_acl: the external xattr block. */
  xattrBlock?: number;
}

const PER_CHUNK = 16384;

/**
 * The 60-byte i_block of every inode, packed in ~1 MiB slabs allocated as
 * inode numbers grow, instead of one small Buffer per file.
 */
export class IblockStore {
  private readonly chunks: Buffer[] = [];

  set(ino: number, iblock: Uint8Array): void {
    const c = Math.floor(ino / PER_CHUNK);
    const chunk = (this.chunks[c] ??= Buffer.alloc(PER_CHUNK * 60));
    chunk.set(iblock.subarray(0, 60), (ino % PER_CHUNK) * 60);
  }

  /** A view (valid until the next set) of inode `ino`'s i_block; zeros if never set. */
  get(ino: number): Buffer {
    const chunk = this.chunks[Math.floor(ino / PER_CHUNK)];
    if (!chunk) return Buffer.alloc(60);
    const o = (ino % PER_CHUNK) * 60;
    return chunk.subarray(o, o + 60);
  }
}

/**
 * Encode inode `ino` (generation 0). A missing record is a reserved inode,
 * written as mke2fs does: zero, no extra fields, checksum only; inode 1 (bad
 * blocks) carries the creation time. `now` is also every inode's crtime.
 */
export function encodeNodeInode(n: NodeRecord | undefined, ino: number, iblock: Buffer, csumSeed: number, now: number): Buffer {
  const csum = { csumSeed, ino, gen: 0 };
  if (!n) {
    const x = emptyInode(0);
    if (ino === 1) x.i_atime = x.i_ctime = x.i_mtime = encodeInodeTime(now).lo;
    return encodeInode(x, { inodeSize: INODE_SIZE, csum });
  }
  const x = emptyInode(32);
  x.i_mode = n.mode;
  x.i_uid = n.uid;
  x.i_gid = n.gid;
  x.i_size = n.size;
  x.i_links_count = n.links;
  x.i_blocks = n.sectors;
  x.i_flags = n.flags;
  x.i_block = Buffer.from(iblock);
  if (n.ibody) x.i_tail = n.ibody;
  if (n.xattrBlock) x.i_file_acl = n.xattrBlock;
  const a = splitTime(n.atime, n.atimeNs);
  const m = splitTime(n.mtime, n.mtimeNs);
  const c = splitTime(n.ctime, n.ctimeNs);
  const cr = encodeInodeTime(now);
  x.i_atime = a.lo;
  x.i_atime_extra = a.extra;
  x.i_mtime = m.lo;
  x.i_mtime_extra = m.extra;
  x.i_ctime = c.lo;
  x.i_ctime_extra = c.extra;
  x.i_crtime = cr.lo;
  x.i_crtime_extra = cr.extra;
  return encodeInode(x, { inodeSize: INODE_SIZE, csum });
}

export function fileType(mode: number): number {
  switch (mode & 0xf000) {
    case S_IFREG: return FT.REG;
    case S_IFDIR: return FT.DIR;
    case S_IFCHR: return FT.CHR;
    case S_IFBLK: return FT.BLK;
    case S_IFIFO: return FT.FIFO;
    case S_IFLNK: return FT.SYMLINK;
    default: return FT.UNKNOWN;
  }
}

/** Device numbers in i_block as the kernel stores them: old 8:8 encoding when both fit, else the new one in i_block[1]. */
export function encodeDev(major: number, minor: number): Buffer {
  const b = Buffer.alloc(60);
  if (major < 256 && minor < 256) b.writeUInt32LE((major << 8) | minor, 0);
  else b.writeUInt32LE(((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0, 4);
  return b;
}

/** Seconds (possibly fractional, or whole with exact `ns`) → the 32-bit field and *_extra (nanoseconds + epoch bits). */
export function splitTime(t: number, ns?: number): { lo: number; extra: number } {
  const sec = Math.floor(t);
  const nsec = ns ?? Math.min(999_999_999, Math.round((t - sec) * 1e9));
  return encodeInodeTime(sec, nsec);
}

