/**
 * Read-only access to a SquashFS 4.0 image on a Device (a file, a partition,
 * or a file inside an ext4 slot through Ext4FileDevice): stat, lstat,
 * readdir, readlink, xattrs, readFile (streamed) and readAt, symbolic links
 * followed in paths. Hard links share an inode (same inode number). Holes
 * (a data block of size 0) read as zeros.
 *
 * Hostile images: metadata blocks ≤ 8 KiB, data blocks ≤ block_size
 * (≤ 1 MiB), names ≤ 256 bytes, symlinks ≤ 4096 bytes, paths ≤ 4096
 * components deep, ≤ 40 symlink hops; every offset is checked against
 * bytes_used before a read, so damage is a FormatError, never a RangeError
 * or a hang.
 */
import { FormatError, InputError, PathError, UnsupportedFormatError } from '@diskimg/partitions/internal';
import type { Device } from '../device/device.js';
import { decompressorFor, type Decompressor } from './compress.js';
import { decodeSuperblock, compressionName, INVALID_BLK, SUPERBLOCK_SIZE, SQUASHFS_NO_XATTR, type Compression, type SquashfsSuperblock } from './superblock.js';
import { MetaCursor, MetadataReader, type MetaPos } from './metadata.js';
import { decodeInode, inodeSize, SQUASHFS_COMPRESSED_BIT_BLOCK, SQUASHFS_INVALID_FRAG, SQUASHFS_INVALID_XATTR, type InodeContext, type SquashfsFileType, type SquashfsInode } from './inode.js';
import { readDirectory, type SquashfsDirent } from './directory.js';
import { FragmentTable } from './fragment.js';
import { IdTable } from './id.js';
import { XattrTable } from './xattr.js';
import { ExportTable } from './export.js';
import { Lru } from './lru.js';
import { nameFromBytes, nameToBytes } from '../image/names.js';

/** What stat(2) would say about an inode in a SquashFS image (mtime in seconds since the epoch). */
export interface SquashfsStat {
  ino: number;
  type: SquashfsFileType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  links: number;
  mtime: number;
  rdev?: { major: number; minor: number };
}

/** One directory entry: its name (decoded as UTF-8, and the raw bytes) and its inode. */
export interface SquashfsEntry {
  name: string;
  rawName: Buffer;
  inode: SquashfsInode;
}

/** Options for openSquashfs. */
export interface OpenSquashfsOptions {
  /** For error messages ("psyopsOS-A:/squashfs"). */
  name?: string;
}

const MAX_SYMLINK_HOPS = 40;
const MAX_DEPTH = 4096;
/** Data blocks per block-list checkpoint (8 KiB of size words: one metadata block's worth). */
const BLOCK_INDEX_STEP = 2048;

/** Checkpoints into a file's block list: where piece c's words start in the inode table, and its first block on disk. */
interface BlockIndex {
  at: MetaPos[];
  disk: number[];
}
interface BlockPiece {
  c: number;
  words: Uint32Array;
  offs: Float64Array;
  after: MetaPos;
  end: number;
}

/**
 * A read-only SquashFS 4.0 image (gzip, xz, lz4, lzo, zstd or uncompressed): list, stat, read
 * files as streams (readFile/readInode), symlinks and xattrs. Open it with openSquashfs.
 */
export class SquashfsReader {
  readonly compression: Compression;
  readonly blockSize: number;
  private readonly decompress: Decompressor;
  readonly meta: MetadataReader;
  private readonly ids: IdTable;
  private readonly fragments?: FragmentTable;
  private readonly exports?: ExportTable;
  private xattrTable?: Promise<XattrTable | undefined>;
  private readonly inodeCache = new Lru<number, SquashfsInode>(8192);
  private readonly dataCache = new Lru<number, Buffer>(8);
  private readonly blockIndex = new WeakMap<SquashfsInode, BlockIndex>();
  private readonly pieces = new WeakMap<SquashfsInode, BlockPiece>();
  private readonly ctx: InodeContext;
  /** Data block reads from the device (for the benchmark). */
  dataReads = 0;
  root!: SquashfsInode;

  private constructor(
    readonly dev: Device,
    readonly sb: SquashfsSuperblock,
    readonly name: string,
  ) {
    this.compression = compressionName(sb);
    this.blockSize = sb.block_size;
    this.decompress = decompressorFor(this.compression);
    this.meta = new MetadataReader(dev, sb.bytes_used, this.decompress);
    this.ids = new IdTable(dev, this.meta, sb.id_table_start, sb.no_ids);
    if (sb.fragment_table_start !== INVALID_BLK && sb.fragments > 0) this.fragments = new FragmentTable(dev, this.meta, sb.fragment_table_start, sb.fragments);
    if (sb.lookup_table_start !== INVALID_BLK) this.exports = new ExportTable(dev, this.meta, sb.lookup_table_start, sb.inodes);
    this.ctx = { blockSize: sb.block_size, blockLog: sb.block_log, inodes: sb.inodes, bytesUsed: sb.bytes_used };
  }

  static async open(dev: Device, opts: OpenSquashfsOptions = {}): Promise<SquashfsReader> {
    const name = opts.name ?? 'squashfs image';
    if (dev.size < SUPERBLOCK_SIZE) throw new FormatError('squashfs superblock', `${name} is only ${dev.size} bytes, too small for SquashFS`);
    const raw = Buffer.alloc(SUPERBLOCK_SIZE);
    await dev.read(0, raw);
    try {
      const r = new SquashfsReader(dev, decodeSuperblock(raw, dev.size), name);
      r.root = await r.inodeAt(r.sb.root_inode, 'squashfs root inode');
      if (r.root.type !== 'directory') throw new FormatError('squashfs root inode', `is a ${r.root.type}, not a directory`);
      return r;
    } catch (e) {
      // The superblock and root inode errors name the structure only; say which image it is.
      if (!(e instanceof FormatError) || !opts.name) throw e;
      const Err = e instanceof UnsupportedFormatError ? UnsupportedFormatError : FormatError;
      throw new Err(`${name.replace(/!$/, '')}: ${e.structure}`, e.message.slice(e.structure.length + 2));
    }
  }

  /* ---- inodes ----------------------------------------------------------- */

  private async inodeAtPos(block: number, offset: number, structure: string): Promise<SquashfsInode> {
    if (block > this.sb.directory_table_start - this.sb.inode_table_start || offset >= 8192) {
      throw new FormatError(structure, `inode reference ${block}:${offset} lies outside the inode table`);
    }
    const key = block * 8192 + offset;
    const hit = this.inodeCache.get(key);
    if (hit) return hit;
    const c = new MetaCursor(this.meta, { block: this.sb.inode_table_start + block, offset }, `${structure} (inode at ${block}:${offset})`);
    const i = await decodeInode(c, this.ctx);
    this.inodeCache.set(key, i);
    return i;
  }

  async inodeAt(ref: bigint, structure: string): Promise<SquashfsInode> {
    return await this.inodeAtPos(Number(ref >> 16n), Number(ref & 0xffffn), structure);
  }

  async inodeOf(e: SquashfsDirent, dirName: string): Promise<SquashfsInode> {
    const where = `${this.name}: ${dirName === '/' ? '' : dirName.replace(/\/+$/, '')}/${e.name.toString()}`;
    const i = await this.inodeAtPos(e.block, e.offset, where);
    const basic = i.inode_type > 7 ? i.inode_type - 7 : i.inode_type;
    if (basic !== e.type) throw new FormatError(where, `directory entry says type ${e.type}, inode says ${i.inode_type}`);
    return i;
  }

  async statInode(i: SquashfsInode): Promise<SquashfsStat> {
    const st: SquashfsStat = {
      ino: i.inode_number,
      type: i.type,
      mode: i.mode,
      uid: await this.ids.get(i.uid_idx),
      gid: await this.ids.get(i.gid_idx),
      size: inodeSize(i),
      links: i.nlink,
      mtime: i.mtime,
    };
    if (i.rdev) st.rdev = i.rdev;
    return st;
  }

  /* ---- directories and paths ------------------------------------------- */

  async readdirInode(dir: SquashfsInode, path = '?'): Promise<SquashfsEntry[]> {
    if (dir.type !== 'directory') throw new PathError('ENOTDIR', `${this.name}: ${path}: not a directory`);
    const S = `${this.name}: directory ${path}`;
    const ents = await readDirectory(this.meta, this.sb.directory_table_start, dir, S);
    const out: SquashfsEntry[] = [];
    for (const e of ents) out.push({ name: nameFromBytes(e.name), rawName: e.name, inode: await this.inodeOf(e, path) });
    return out;
  }

  private async child(dir: SquashfsInode, name: Buffer, path: string): Promise<SquashfsInode | undefined> {
    const ents = await readDirectory(this.meta, this.sb.directory_table_start, dir, `${this.name}: directory ${path}`, name);
    const hit = ents.find((e) => e.name.equals(name));
    return hit ? await this.inodeOf(hit, path) : undefined;
  }

  /** Resolve `path`; symlinks in the middle are followed, the last one only when `follow`. */
  async lookup(path: string, follow = true): Promise<SquashfsInode> {
    let hops = 0;
    const resolve = async (stack: SquashfsInode[], parts: string[], followLast: boolean): Promise<SquashfsInode[]> => {
      if (parts.length > MAX_DEPTH) throw new PathError('ENOENT', `${this.name}: ${path}: path too deep`);
      for (let k = 0; k < parts.length; k++) {
        const p = parts[k]!;
        if (p === '' || p === '.') continue;
        const cur = stack[stack.length - 1]!;
        if (cur.type !== 'directory') throw new PathError('ENOTDIR', `${this.name}: ${path}: not a directory`);
        if (p === '..') {
          if (stack.length > 1) stack.pop();
          continue;
        }
        const want = nameToBytes(p);
        if (want.length > 256) throw new PathError('ENOENT', `${this.name}: ${path}: no such file or directory`);
        const c = await this.child(cur, want, path);
        if (!c) throw new PathError('ENOENT', `${this.name}: ${path}: no such file or directory`);
        const last = k === parts.length - 1;
        if (c.type === 'symlink' && (!last || followLast)) {
          if (++hops > MAX_SYMLINK_HOPS) throw new PathError('ELOOP', `${this.name}: ${path}: too many levels of symbolic links`);
          const target = nameFromBytes(c.symlink!);
          const base = target.startsWith('/') ? [this.root] : stack;
          stack = await resolve([...base], target.split('/'), true);
          continue;
        }
        stack.push(c);
        if (stack.length > MAX_DEPTH) throw new PathError('ENOENT', `${this.name}: ${path}: path too deep`);
      }
      return stack;
    };
    const st = await resolve([this.root], path.split('/'), follow);
    return st[st.length - 1]!;
  }

  async stat(path: string): Promise<SquashfsStat> {
    return await this.statInode(await this.lookup(path, true));
  }

  async lstat(path: string): Promise<SquashfsStat> {
    return await this.statInode(await this.lookup(path, false));
  }

  async readdir(path: string): Promise<SquashfsEntry[]> {
    return await this.readdirInode(await this.lookup(path, true), path);
  }

  async readlink(path: string): Promise<string> {
    const i = await this.lookup(path, false);
    if (i.type !== 'symlink') throw new InputError(`${this.name}: ${path}: not a symbolic link`);
    return nameFromBytes(i.symlink!);
  }

  /** Extended attributes by full name ("user.x", "security.capability"); empty when none. */
  async xattrsInode(i: SquashfsInode): Promise<Map<string, Buffer>> {
    if (i.xattr === SQUASHFS_INVALID_XATTR) return new Map();
    this.xattrTable ??= (async () => {
      if (this.sb.xattr_id_table_start === INVALID_BLK || this.sb.flags & SQUASHFS_NO_XATTR) return undefined;
      return await XattrTable.open(this.dev, this.meta, this.sb.xattr_id_table_start, this.sb.bytes_used);
    })();
    const t = await this.xattrTable;
    if (!t) throw new FormatError(`${this.name}: inode ${i.inode_number}`, `xattr index ${i.xattr} but the image has no xattr table`);
    return await t.get(i.xattr, `${this.name}: inode ${i.inode_number}`);
  }

  async xattrs(path: string): Promise<Map<string, Buffer>> {
    return await this.xattrsInode(await this.lookup(path, false));
  }

  /** The inode number's reference from the export table (images made with -exports, the default). */
  async inodeByNumber(n: number): Promise<SquashfsInode> {
    if (!this.exports) throw new InputError(`${this.name}: the image has no export table`);
    return await this.inodeAt(await this.exports.ref(n), `${this.name}: inode ${n}`);
  }

  /* ---- file data -------------------------------------------------------- */

  /**
   * Size word and disk offset of data block `k` of a regular file. The words
   * are read from the inode table in pieces of BLOCK_INDEX_STEP, and each
   * piece's start (table position, disk offset) is kept, so memory is one
   * checkpoint per 2048 blocks however large (or sparse) the file, and a
   * sequential read decodes each word once.
   */
  private async blockAt(i: SquashfsInode, k: number, S: string): Promise<{ word: number; pos: number }> {
    let idx = this.blockIndex.get(i);
    if (!idx) {
      idx = { at: [i.block_list_at!], disk: [i.start_block!] };
      this.blockIndex.set(i, idx);
    }
    const c = Math.floor(k / BLOCK_INDEX_STEP);
    while (idx.at.length <= c) {
      const p = await this.blockPiece(i, idx, idx.at.length - 1, S);
      idx.at.push(p.after);
      idx.disk.push(p.end);
    }
    const p = await this.blockPiece(i, idx, c, S);
    const j = k - c * BLOCK_INDEX_STEP;
    return { word: p.words[j]!, pos: p.offs[j]! };
  }

  private async blockPiece(i: SquashfsInode, idx: BlockIndex, c: number, S: string): Promise<BlockPiece> {
    const hit = this.pieces.get(i);
    if (hit?.c === c) return hit;
    const n = Math.min(BLOCK_INDEX_STEP, i.block_count! - c * BLOCK_INDEX_STEP);
    const { data, after } = await this.meta.read(idx.at[c]!, n * 4, `${S} block list`);
    const words = new Uint32Array(n);
    const offs = new Float64Array(n);
    let pos = idx.disk[c]!;
    for (let j = 0; j < n; j++) {
      const w = data.readUInt32LE(j * 4);
      const size = w & ~SQUASHFS_COMPRESSED_BIT_BLOCK;
      const k = c * BLOCK_INDEX_STEP + j;
      if (size > this.blockSize) throw new FormatError(S, `data block ${k} of ${size} bytes exceeds block_size ${this.blockSize}`);
      words[j] = w;
      offs[j] = pos;
      pos += size;
      if (pos > this.sb.bytes_used) throw new FormatError(S, `data block ${k} runs past the image end`);
    }
    const piece = { c, words, offs, after, end: pos };
    this.pieces.set(i, piece);
    return piece;
  }

  /** Decompressed bytes of one stored block (data or fragment), `expect` bytes long. */
  private async dataBlock(pos: number, word: number, expect: number, S: string): Promise<Buffer> {
    const size = word & ~SQUASHFS_COMPRESSED_BIT_BLOCK;
    if (size === 0) return Buffer.alloc(expect); // a hole
    if (size > this.blockSize || word >>> 25 !== 0) throw new FormatError(S, `block size word 0x${word.toString(16)} invalid`);
    if (pos + size > this.sb.bytes_used) throw new FormatError(S, `data block at ${pos} runs past the image end`);
    const key = pos;
    let data = this.dataCache.get(key);
    if (!data) {
      const raw = Buffer.alloc(size);
      await this.dev.read(pos, raw);
      this.dataReads++;
      data = word & SQUASHFS_COMPRESSED_BIT_BLOCK ? raw : this.decompress(raw, this.blockSize, `${S} (data block at ${pos})`);
      this.dataCache.set(key, data);
    }
    if (data.length < expect) throw new FormatError(S, `data block at ${pos} holds ${data.length} bytes, expected ${expect}`);
    return data;
  }

  /** Bytes of block `k` of a regular file (the last one may be the fragment tail). */
  private async fileBlock(i: SquashfsInode, k: number, S: string): Promise<Buffer> {
    const size = i.file_size!;
    const bs = this.blockSize;
    const len = Math.min(bs, size - k * bs);
    if (k < i.block_count!) {
      const { word, pos } = await this.blockAt(i, k, S);
      const b = await this.dataBlock(pos, word, len, S);
      if (b.length !== len && word & ~SQUASHFS_COMPRESSED_BIT_BLOCK) throw new FormatError(S, `data block ${k} holds ${b.length} bytes, expected ${len}`);
      return b.subarray(0, len);
    }
    if (i.fragment === SQUASHFS_INVALID_FRAG || !this.fragments) throw new FormatError(S, `block ${k} is past the block list and there is no fragment`);
    const f = await this.fragments.get(i.fragment!);
    const fb = await this.dataBlock(f.start_block, f.size, i.offset! + len, `${S} fragment ${i.fragment}`);
    return fb.subarray(i.offset!, i.offset! + len);
  }

  /** A regular file's bytes, one block (≤ 1 MiB) at a time. */
  async *readInode(i: SquashfsInode, S = this.name): AsyncGenerator<Buffer> {
    if (i.type !== 'file') throw new PathError('ENOTREG', `${S}: not a regular file`);
    const n = Math.ceil(i.file_size! / this.blockSize);
    for (let k = 0; k < n; k++) yield Buffer.from(await this.fileBlock(i, k, S));
  }

  async *readFile(path: string): AsyncGenerator<Buffer> {
    const i = await this.lookup(path, true);
    if (i.type === 'directory') throw new PathError('EISDIR', `${this.name}: ${path}: is a directory`);
    if (i.type !== 'file') throw new PathError('ENOTREG', `${this.name}: ${path}: not a regular file`);
    yield* this.readInode(i, `${this.name}: ${path}`);
  }

  /** Fill `buf` from byte `offset` of a regular file (random access: only the blocks it covers are read). */
  async readAt(i: SquashfsInode, offset: number, buf: Uint8Array, S = this.name): Promise<void> {
    if (i.type !== 'file') throw new PathError('ENOTREG', `${S}: not a regular file`);
    if (offset < 0 || offset + buf.length > i.file_size!) throw new InputError(`${S}: read of ${buf.length} bytes at ${offset} past the end (${i.file_size} bytes)`);
    let done = 0;
    while (done < buf.length) {
      const at = offset + done;
      const k = Math.floor(at / this.blockSize);
      const b = await this.fileBlock(i, k, S);
      const from = at - k * this.blockSize;
      const n = Math.min(buf.length - done, b.length - from);
      buf.set(b.subarray(from, from + n), done);
      done += n;
    }
  }
}

/** Open the SquashFS image on `dev`. */
export async function openSquashfs(dev: Device, opts: OpenSquashfsOptions = {}): Promise<SquashfsReader> {
  return await SquashfsReader.open(dev, opts);
}

/** A Device view of a regular file inside a SquashFS image (read-only). */
export class SquashfsFileDevice implements Device {
  readonly sectorSize = 512;
  readonly size: number;
  constructor(
    private readonly fs: SquashfsReader,
    private readonly inode: SquashfsInode,
    private readonly name: string,
  ) {
    this.size = inode.file_size!;
  }
  async read(offset: number, buf: Uint8Array): Promise<void> {
    await this.fs.readAt(this.inode, offset, buf, this.name);
  }
  async write(): Promise<void> {
    throw new InputError(`${this.name}: read-only`);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

export type { MetaPos };
