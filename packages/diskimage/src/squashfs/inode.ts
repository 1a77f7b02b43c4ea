/**
 * Inodes in the inode table: a 16-byte common header then a type-specific
 * body (squashfs_fs.h: squashfs_{dir,ldir,reg,lreg,symlink,dev,ldev,ipc,lipc}_inode).
 * Extended ("l") forms add a link count, xattr index, larger sizes, sparse
 * byte counts or a directory index.
 */
import { FormatError } from '@diskimg/partitions/internal';
import type { MetaCursor, MetaPos } from './metadata.js';

export const SQUASHFS_DIR_TYPE = 1;
export const SQUASHFS_REG_TYPE = 2;
export const SQUASHFS_SYMLINK_TYPE = 3;
export const SQUASHFS_BLKDEV_TYPE = 4;
export const SQUASHFS_CHRDEV_TYPE = 5;
export const SQUASHFS_FIFO_TYPE = 6;
export const SQUASHFS_SOCKET_TYPE = 7;
export const SQUASHFS_LDIR_TYPE = 8;
export const SQUASHFS_LREG_TYPE = 9;
export const SQUASHFS_LSYMLINK_TYPE = 10;
export const SQUASHFS_LBLKDEV_TYPE = 11;
export const SQUASHFS_LCHRDEV_TYPE = 12;
export const SQUASHFS_LFIFO_TYPE = 13;
export const SQUASHFS_LSOCKET_TYPE = 14;

/** No fragment / no xattrs. */
export const SQUASHFS_INVALID_FRAG = 0xffffffff;
export const SQUASHFS_INVALID_XATTR = 0xffffffff;
/** Block size word: bit 24 set = stored uncompressed; low 24 bits = bytes on disk (0 = a hole). */
export const SQUASHFS_COMPRESSED_BIT_BLOCK = 1 << 24;

export const MAX_SYMLINK = 4096;
/** Largest directory index we accept (entries), bounded by the listing it indexes. */
const MAX_DIR_INDEX = 1 << 16;

export type SquashfsFileType = 'file' | 'directory' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

const TYPES: Record<number, SquashfsFileType> = {
  1: 'directory', 2: 'file', 3: 'symlink', 4: 'block', 5: 'char', 6: 'fifo', 7: 'socket',
};

const IFMT: Record<SquashfsFileType, number> = {
  socket: 0o140000, symlink: 0o120000, file: 0o100000, block: 0o060000, directory: 0o040000, char: 0o020000, fifo: 0o010000,
};

export interface DirIndex {
  /** Byte offset of this header inside the directory listing. */
  index: number;
  /** Metadata block (relative to the directory table) holding that header. */
  start: number;
  /** The first name under that header. */
  name: Buffer;
}

/** A decoded inode (from lookup or a directory entry), passed back to the reader's *Inode methods. */
export interface SquashfsInode {
  inode_type: number;
  type: SquashfsFileType;
  mode: number;
  uid_idx: number;
  gid_idx: number;
  mtime: number;
  inode_number: number;
  nlink: number;
  xattr: number;
  /** Regular files */
  start_block?: number;
  file_size?: number;
  fragment?: number;
  offset?: number;
  /** Number of data blocks (their size words follow the inode: read lazily, a sparse file's list can be large). */
  block_count?: number;
  /** Where the block size words start in the inode table. */
  block_list_at?: MetaPos;
  sparse?: number;
  /** Directories */
  dir_start_block?: number;
  dir_offset?: number;
  /** file_size as stored: the listing bytes + 3 (mksquashfs counts "." and ".."), what stat reports. */
  dir_size?: number;
  parent_inode?: number;
  index?: DirIndex[];
  /** Symlinks */
  symlink?: Buffer;
  /** Devices */
  rdev?: { major: number; minor: number };
}

export interface InodeContext {
  blockSize: number;
  blockLog: number;
  inodes: number;
  bytesUsed: number;
}

/** Decode the inode at the cursor (the cursor is left after it). */
export async function decodeInode(c: MetaCursor, ctx: InodeContext): Promise<SquashfsInode> {
  const S = c.structure;
  const h = await c.bytes(16);
  const inode_type = h.readUInt16LE(0);
  const basic = inode_type > 7 ? inode_type - 7 : inode_type;
  const type = TYPES[basic];
  if (!type || inode_type === 0 || inode_type > 14) throw new FormatError(S, `unknown inode type ${inode_type}`);
  const ino: SquashfsInode = {
    inode_type,
    type,
    mode: IFMT[type] | (h.readUInt16LE(2) & 0o7777),
    uid_idx: h.readUInt16LE(4),
    gid_idx: h.readUInt16LE(6),
    mtime: h.readUInt32LE(8),
    inode_number: h.readUInt32LE(12),
    nlink: 1,
    xattr: SQUASHFS_INVALID_XATTR,
  };
  if (ino.inode_number < 1 || ino.inode_number > ctx.inodes) throw new FormatError(S, `inode_number ${ino.inode_number} out of range (1..${ctx.inodes})`);
  switch (inode_type) {
    case SQUASHFS_DIR_TYPE: {
      const b = await c.bytes(16);
      ino.dir_start_block = b.readUInt32LE(0);
      ino.nlink = b.readUInt32LE(4);
      ino.dir_size = b.readUInt16LE(8);
      ino.dir_offset = b.readUInt16LE(10);
      ino.parent_inode = b.readUInt32LE(12);
      break;
    }
    case SQUASHFS_LDIR_TYPE: {
      const b = await c.bytes(24);
      ino.nlink = b.readUInt32LE(0);
      ino.dir_size = b.readUInt32LE(4);
      ino.dir_start_block = b.readUInt32LE(8);
      ino.parent_inode = b.readUInt32LE(12);
      const icount = b.readUInt16LE(16);
      ino.dir_offset = b.readUInt16LE(18);
      ino.xattr = b.readUInt32LE(20);
      if (icount > MAX_DIR_INDEX) throw new FormatError(S, `directory index of ${icount} entries`);
      ino.index = [];
      for (let k = 0; k < icount; k++) {
        const e = await c.bytes(12);
        const size = e.readUInt32LE(8) + 1;
        if (size > 256) throw new FormatError(S, `directory index name of ${size} bytes (max 256)`);
        ino.index.push({ index: e.readUInt32LE(0), start: e.readUInt32LE(4), name: Buffer.from(await c.bytes(size)) });
      }
      break;
    }
    case SQUASHFS_REG_TYPE:
    case SQUASHFS_LREG_TYPE: {
      if (inode_type === SQUASHFS_REG_TYPE) {
        const b = await c.bytes(16);
        ino.start_block = b.readUInt32LE(0);
        ino.fragment = b.readUInt32LE(4);
        ino.offset = b.readUInt32LE(8);
        ino.file_size = b.readUInt32LE(12);
      } else {
        const b = await c.bytes(40);
        const big = (o: number) => {
          const v = b.readBigUInt64LE(o);
          if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(S, `64-bit field ${v} out of range`);
          return Number(v);
        };
        ino.start_block = big(0);
        ino.file_size = big(8);
        ino.sparse = big(16);
        ino.nlink = b.readUInt32LE(24);
        ino.fragment = b.readUInt32LE(28);
        ino.offset = b.readUInt32LE(32);
        ino.xattr = b.readUInt32LE(36);
      }
      const size = ino.file_size!;
      const hasFrag = ino.fragment !== SQUASHFS_INVALID_FRAG;
      const nblocks = hasFrag ? Math.floor(size / ctx.blockSize) : Math.ceil(size / ctx.blockSize);
      if (hasFrag && ino.offset! + (size % ctx.blockSize) > ctx.blockSize) throw new FormatError(S, `fragment offset ${ino.offset} + tail ${size % ctx.blockSize} exceeds the block size`);
      // The size words are compressed with the inode table (a 1 GiB sparse file at
      // 4 KiB blocks lists 262,144 words in a few bytes): not read here, but in
      // pieces when the data is, so a lying file_size costs no memory up front.
      ino.block_count = nblocks;
      ino.block_list_at = c.pos();
      break;
    }
    case SQUASHFS_SYMLINK_TYPE:
    case SQUASHFS_LSYMLINK_TYPE: {
      const b = await c.bytes(8);
      ino.nlink = b.readUInt32LE(0);
      const n = b.readUInt32LE(4);
      if (n > MAX_SYMLINK) throw new FormatError(S, `symlink of ${n} bytes (max ${MAX_SYMLINK})`);
      ino.symlink = Buffer.from(await c.bytes(n));
      if (inode_type === SQUASHFS_LSYMLINK_TYPE) ino.xattr = (await c.bytes(4)).readUInt32LE(0);
      break;
    }
    case SQUASHFS_BLKDEV_TYPE:
    case SQUASHFS_CHRDEV_TYPE:
    case SQUASHFS_LBLKDEV_TYPE:
    case SQUASHFS_LCHRDEV_TYPE: {
      const ext = inode_type > 7;
      const b = await c.bytes(ext ? 12 : 8);
      ino.nlink = b.readUInt32LE(0);
      const d = b.readUInt32LE(4);
      // The kernel's new_decode_dev: 12-bit major, 20-bit minor split around it.
      ino.rdev = { major: (d & 0xfff00) >>> 8, minor: (d & 0xff) | ((d >>> 12) & 0xfff00) };
      if (ext) ino.xattr = b.readUInt32LE(8);
      break;
    }
    default: {
      const ext = inode_type > 7;
      const b = await c.bytes(ext ? 8 : 4);
      ino.nlink = b.readUInt32LE(0);
      if (ext) ino.xattr = b.readUInt32LE(4);
    }
  }
  return ino;
}

/** The size stat reports: file bytes, listing bytes for directories (as the kernel), target length for symlinks. */
export function inodeSize(i: SquashfsInode): number {
  if (i.type === 'file') return i.file_size!;
  if (i.type === 'directory') return i.dir_size!;
  if (i.type === 'symlink') return i.symlink!.length;
  return 0;
}
