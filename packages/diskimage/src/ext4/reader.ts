/**
 * Read-only access to an ext2/ext3/ext4 filesystem on a Device: stat,
 * readdir, readFile (streamed), readlink, with symlinks followed in paths.
 *
 * Reads: extents (any depth, uninitialized extents and holes as zeros),
 * legacy block maps, fast and slow symlinks, inline_data, htree and linear
 * directories, 1 KiB–64 KiB blocks, 32/64-bit group descriptors, flex_bg,
 * meta_bg, bigalloc, metadata_csum (with or without metadata_csum_seed) and
 * gdt_csum. Like debugfs, it does not replay the journal.
 *
 * Refused up front with "unsupported feature X" (FormatError):
 *   compression, journal_dev (an external journal, not a filesystem),
 *   dirdata, encrypt, and any unknown incompat feature.
 *
 * Every checksum on the way is verified; a mismatch or an impossible value is
 * a FormatError naming the structure ("ext4 inode 12: checksum mismatch").
 * Every loop is bounded (tree depth, visited sets, symlink hops, sizes).
 */
import { FormatError, InputError, PathError } from '@diskimg/partitions/internal';
import type { Device } from '../device/device.js';
import { decodeSuperblock, blockSize as sbBlockSize, groupCount, SUPERBLOCK_OFFSET, type Superblock } from './superblock.js';
import { decodeGroupDesc, descSize as sbDescSize, BG_INODE_UNINIT, type GroupDesc } from './group-desc.js';
import { csumSeed as fsCsumSeed, hasMetadataCsum } from './checksum.js';
import { hasFeature, unsupportedForRead } from './features.js';
import {
  decodeInode,
  encodeInode,
  inodeTime,
  inodeHasField,
  type Inode,
  S_IFMT,
  S_IFDIR,
  S_IFREG,
  S_IFLNK,
  S_IFCHR,
  S_IFBLK,
  S_IFIFO,
  S_IFSOCK,
  EXT4_EXTENTS_FL,
  EXT4_INLINE_DATA_FL,
  EXT4_INDEX_FL,
  EXT4_ROOT_INO,
} from './inode.js';
import { decodeDirBlock, decodeDxRoot, decodeDxNode, isDxNodeBlock, type DirEntry } from './dirent.js';
import {
  aclFromDisk,
  decodeIbodyXattrs,
  decodeXattrBlock,
  xattrFullName,
  EXT4_XATTR_INDEX_SYSTEM,
  EXT4_XATTR_INDEX_POSIX_ACL_ACCESS,
  EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT,
  type XattrEntry,
} from './xattr.js';
import { nameFromBytes, nameToBytes } from '../image/names.js';
import { blockMapRuns, coalesce, extentRuns, type MapContext, type Run } from './file-map.js';

export type Ext4FileType = 'file' | 'directory' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket' | 'unknown';

export interface Ext4Stat {
  ino: number;
  type: Ext4FileType;
  /** Full i_mode (type and permission bits). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  links: number;
  /** Seconds since the epoch; *Ns the nanoseconds when the inode has them. */
  atime: number;
  atimeNs: number;
  mtime: number;
  mtimeNs: number;
  ctime: number;
  ctimeNs: number;
  crtime?: number;
  /** Device numbers for character and block devices. */
  rdev?: { major: number; minor: number };
  flags: number;
  generation: number;
}

export interface Ext4Dirent {
  /** The name as UTF-8, bytes that are not UTF-8 as \\xHH and \\ for a backslash (image/names.ts; raw bytes in `rawName`). */
  name: string;
  rawName: Buffer;
  ino: number;
  /** From the directory entry (filetype feature), else from the inode. */
  type: Ext4FileType;
}

export interface OpenExt4Options {
  /** Where the device came from, for error messages ("disk.img partition 3"). */
  name?: string;
}

const MAX_SYMLINK_HOPS = 40;
const READ_CHUNK = 1 << 20;
const READ_AHEAD = 32 << 10;
const FT: Ext4FileType[] = ['unknown', 'file', 'directory', 'char', 'block', 'fifo', 'socket', 'symlink'];

function typeOfMode(mode: number): Ext4FileType {
  switch (mode & S_IFMT) {
    case S_IFREG: return 'file';
    case S_IFDIR: return 'directory';
    case S_IFLNK: return 'symlink';
    case S_IFCHR: return 'char';
    case S_IFBLK: return 'block';
    case S_IFIFO: return 'fifo';
    case S_IFSOCK: return 'socket';
    default: return 'unknown';
  }
}

/** Does group `g` hold a superblock backup (and so a descriptor copy)? */
function groupHasSuper(sb: Superblock, g: number): boolean {
  if (g === 0) return true;
  if (hasFeature(sb, 'sparse_super2')) return g === sb.s_backup_bgs[0] || g === sb.s_backup_bgs[1];
  if (g <= 1 || !hasFeature(sb, 'sparse_super')) return true;
  if (!(g & 1)) return false;
  for (const p of [3, 5, 7]) {
    let x = p;
    while (x < g) x *= p;
    if (x === g) return true;
  }
  return false;
}

/** Open the ext2/3/4 filesystem on `dev` (a partition or a bare filesystem image). */
export async function openExt4(dev: Device, opts: OpenExt4Options = {}): Promise<Ext4Reader> {
  return await Ext4Reader.open(dev, opts);
}

class DirectCache<T> {
  private readonly keys: Float64Array;
  private readonly vals: (T | undefined)[];
  constructor(readonly size: number) {
    this.keys = new Float64Array(size).fill(-1);
    this.vals = new Array<T | undefined>(size);
  }
  /** Fibonacci hashing: block numbers a group apart must not share a slot. */
  private slot(k: number): number {
    return (Math.imul((k ^ (k / 2 ** 32)) | 0, 0x9e3779b1) >>> 0) % this.size;
  }
  get(k: number): T | undefined {
    const s = this.slot(k);
    return this.keys[s] === k ? this.vals[s] : undefined;
  }
  set(k: number, v: T): void {
    const s = this.slot(k);
    this.keys[s] = k;
    this.vals[s] = v;
  }
}

/** A read-only Device view of a regular file inside an ext4 filesystem (a SquashFS image in a slot). */
export class Ext4FileDevice implements Device {
  readonly sectorSize = 512;
  readonly size: number;
  constructor(
    private readonly fs: Ext4Reader,
    private readonly ino: number,
    private readonly inode: Inode,
    readonly name: string,
  ) {
    this.size = inode.i_size;
  }
  async read(offset: number, buf: Uint8Array): Promise<void> {
    await this.fs.readAt(this.ino, this.inode, offset, buf);
  }
  async write(): Promise<void> {
    throw new InputError(`${this.name}: read-only`);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

export class Ext4Reader {
  readonly blockSize: number;
  readonly groups: number;
  readonly metadataCsum: boolean;
  readonly csumSeed: number;
  private readonly gds: GroupDesc[];
  private readonly inodeSize: number;
  private readonly ctx: MapContext;
  /** Direct-mapped caches (slot = hash of the number): O(1), no eviction bookkeeping. */
  private readonly inodeCache = new DirectCache<Inode>(8192);
  /** Recently read metadata blocks (inode tables, directories, tree blocks). */
  private readonly blockCache: DirectCache<Buffer>;
  private readonly dirCache = new Map<number, Ext4Dirent[]>();

  private constructor(
    readonly dev: Device,
    readonly sb: Superblock,
    gds: GroupDesc[],
    readonly name: string,
  ) {
    this.blockSize = sbBlockSize(sb);
    this.groups = gds.length;
    this.gds = gds;
    this.inodeSize = sb.s_rev_level === 0 ? 128 : sb.s_inode_size;
    this.metadataCsum = hasMetadataCsum(sb);
    this.csumSeed = fsCsumSeed(sb);
    this.blockCache = new DirectCache<Buffer>(Math.max(64, (8 << 20) / this.blockSize));
    this.ctx = {
      blockSize: this.blockSize,
      blocksCount: sb.s_blocks_count,
      firstDataBlock: sb.s_first_data_block,
      readBlock: (n, s) => this.readBlock(n, s),
      csumSeed: this.metadataCsum ? this.csumSeed : undefined,
    };
  }

  static async open(dev: Device, opts: OpenExt4Options): Promise<Ext4Reader> {
    const name = opts.name ?? 'ext4 filesystem';
    const S = 'ext4 superblock';
    if (dev.size < SUPERBLOCK_OFFSET + 1024) throw new FormatError(S, `${name} is only ${dev.size} bytes, too small for ext4`);
    const raw = Buffer.alloc(1024);
    await dev.read(SUPERBLOCK_OFFSET, raw);
    const sb = decodeSuperblock(raw);
    const bad = unsupportedForRead(sb);
    if (bad.length) throw new FormatError(S, `unsupported feature ${bad.join(', ')}: diskimg cannot read this filesystem`);
    const bs = sbBlockSize(sb);
    // Geometry sanity: everything below is bounded by these numbers.
    const clusterBits = hasFeature(sb, 'bigalloc') ? sb.s_log_cluster_size - sb.s_log_block_size : 0;
    if (clusterBits < 0 || clusterBits > 16) throw new FormatError(S, `s_log_cluster_size ${sb.s_log_cluster_size} out of range`);
    if (sb.s_blocks_per_group === 0 || sb.s_blocks_per_group > 8 * bs * 2 ** clusterBits) throw new FormatError(S, `s_blocks_per_group ${sb.s_blocks_per_group} out of range`);
    if (sb.s_inodes_per_group === 0 || sb.s_inodes_per_group > 8 * bs) throw new FormatError(S, `s_inodes_per_group ${sb.s_inodes_per_group} out of range`);
    const isz = sb.s_rev_level === 0 ? 128 : sb.s_inode_size;
    if (isz < 128 || isz > bs || (isz & (isz - 1)) !== 0) throw new FormatError(S, `s_inode_size ${isz} out of range`);
    if (sb.s_first_data_block >= sb.s_blocks_count) throw new FormatError(S, `s_first_data_block ${sb.s_first_data_block} beyond s_blocks_count ${sb.s_blocks_count}`);
    if (sb.s_blocks_count * bs > dev.size) {
      throw new FormatError(S, `s_blocks_count ${sb.s_blocks_count} × ${bs} bytes exceeds the ${dev.size}-byte ${name}`);
    }
    const groups = groupCount(sb);
    if (sb.s_inodes_count > groups * sb.s_inodes_per_group) throw new FormatError(S, `s_inodes_count ${sb.s_inodes_count} exceeds ${groups} groups × ${sb.s_inodes_per_group}`);
    const ds = sbDescSize(sb);
    if (ds > 1024 || (ds & (ds - 1)) !== 0) throw new FormatError(S, `s_desc_size ${sb.s_desc_size} out of range`);
    const perBlock = bs / ds;
    const descBlocks = Math.ceil(groups / perBlock);
    const metaBg = hasFeature(sb, 'meta_bg');
    if (metaBg && sb.s_first_meta_bg > descBlocks) throw new FormatError(S, `s_first_meta_bg ${sb.s_first_meta_bg} beyond the ${descBlocks} descriptor blocks`);
    const gdtStart = Math.floor(1024 / bs) + 1; // the block after the superblock's
    const csum = hasMetadataCsum(sb);
    const seed = fsCsumSeed(sb);
    const gdtCsum = !csum && hasFeature(sb, 'uninit_bg');
    const gds: GroupDesc[] = [];
    const blk = Buffer.alloc(bs);
    for (let i = 0; i < descBlocks; i++) {
      let where: number;
      if (!metaBg || i < sb.s_first_meta_bg) where = gdtStart + i;
      else {
        const g = i * perBlock;
        where = g === 0 ? gdtStart : sb.s_first_data_block + g * sb.s_blocks_per_group + (groupHasSuper(sb, g) ? 1 : 0);
      }
      if (where >= sb.s_blocks_count) throw new FormatError('ext4 group descriptors', `descriptor block ${i} at ${where} lies beyond the filesystem`);
      await dev.read(where * bs, blk);
      for (let j = 0; j < perBlock && gds.length < groups; j++) {
        const g = gds.length;
        const d = blk.subarray(j * ds, (j + 1) * ds);
        const gd = decodeGroupDesc(d, csum ? { group: g, csumSeed: seed } : gdtCsum ? { group: g, uuid: sb.s_uuid } : { group: g });
        gds.push(gd);
      }
    }
    return new Ext4Reader(dev, sb, gds, name);
  }

  /**
   * The journal holds transactions not yet replayed (needs_recovery). Like
   * debugfs we read the filesystem as it is on disk, which may miss the most
   * recent changes; callers may want to say so.
   */
  get needsRecovery(): boolean {
    return hasFeature(this.sb, 'needs_recovery');
  }

  /** Read one metadata block (cached; do not modify it), checking it lies inside the filesystem. */
  async readBlock(n: number, structure: string, readAhead = false): Promise<Buffer> {
    if (!Number.isInteger(n) || n < 0 || n >= this.sb.s_blocks_count) throw new FormatError(structure, `block ${n} lies outside the filesystem`);
    const hit = this.blockCache.get(n);
    if (hit) return hit;
    // Inode tables are read in aligned 32 KiB pieces: neighbouring inodes are
    // usually wanted next, and one device read per inode is what makes walks slow.
    const ra = readAhead ? Math.max(1, READ_AHEAD / this.blockSize) : 1;
    const first = n - (n % ra);
    const count = Math.min(ra, this.sb.s_blocks_count - first);
    const big = Buffer.alloc(count * this.blockSize);
    await this.dev.read(first * this.blockSize, big);
    for (let k = 0; k < count; k++) this.blockCache.set(first + k, big.subarray(k * this.blockSize, (k + 1) * this.blockSize));
    const b = this.blockCache.get(n)!;
    return b;
  }

  /** The decoded inode `ino` (checksum verified with metadata_csum). */
  async inode(ino: number): Promise<Inode> {
    const cached = this.inodeCache.get(ino);
    if (cached) return cached;
    const S = `ext4 inode ${ino}`;
    if (!Number.isInteger(ino) || ino < 1 || ino > this.sb.s_inodes_count) throw new FormatError(S, `inode number out of range (1..${this.sb.s_inodes_count})`);
    const g = Math.floor((ino - 1) / this.sb.s_inodes_per_group);
    const idx = (ino - 1) % this.sb.s_inodes_per_group;
    const gd = this.gds[g]!;
    const off = idx * this.inodeSize;
    const tblk = gd.bg_inode_table + Math.floor(off / this.blockSize);
    if (gd.bg_inode_table < this.sb.s_first_data_block || tblk >= this.sb.s_blocks_count) {
      throw new FormatError(`ext4 group descriptor ${g}`, `bg_inode_table ${gd.bg_inode_table} lies outside the filesystem`);
    }
    if (this.metadataCsum || hasFeature(this.sb, 'uninit_bg')) {
      // An inode in a never-initialized part of the table reads as zeros.
      if (gd.bg_flags & BG_INODE_UNINIT || idx >= this.sb.s_inodes_per_group - gd.bg_itable_unused) {
        throw new FormatError(S, 'not in use (its inode table part is uninitialized)');
      }
    }
    const blk = await this.readBlock(tblk, `ext4 inode table of group ${g}`, true);
    const o = off % this.blockSize;
    const raw = blk.subarray(o, o + this.inodeSize);
    const inode = decodeInode(raw, this.metadataCsum ? { csumSeed: this.csumSeed, ino } : undefined);
    this.inodeCache.set(ino, inode);
    return inode;
  }

  /** i_size with its high half (all file types, as e2fsprogs 1.47). */
  private sizeOf(i: Inode): number {
    return i.i_size;
  }

  statInode(ino: number, i: Inode): Ext4Stat {
    const has = (off: number) => inodeHasField(i, off, this.inodeSize);
    const a = inodeTime(i.i_atime, i.i_atime_extra, has(0x8c));
    const m = inodeTime(i.i_mtime, i.i_mtime_extra, has(0x88));
    const c = inodeTime(i.i_ctime, i.i_ctime_extra, has(0x84));
    const type = typeOfMode(i.i_mode);
    const st: Ext4Stat = {
      ino,
      type,
      mode: i.i_mode,
      uid: i.i_uid,
      gid: i.i_gid,
      size: this.sizeOf(i),
      links: i.i_links_count,
      atime: a.sec,
      atimeNs: a.nsec,
      mtime: m.sec,
      mtimeNs: m.nsec,
      ctime: c.sec,
      ctimeNs: c.nsec,
      flags: i.i_flags,
      generation: i.i_generation,
    };
    if (has(0x90)) st.crtime = inodeTime(i.i_crtime, i.i_crtime_extra, has(0x94)).sec;
    if (type === 'char' || type === 'block') {
      const old = i.i_block.readUInt32LE(0);
      if (old) st.rdev = { major: (old >>> 8) & 0xff, minor: old & 0xff };
      else {
        const n = i.i_block.readUInt32LE(4);
        st.rdev = { major: (n & 0xfff00) >>> 8, minor: (n & 0xff) | ((n >>> 12) & 0xfff00) };
      }
    }
    return st;
  }

  /* ---- block mapping and data ------------------------------------------ */

  private maxSize(i: Inode): number {
    const bs = this.blockSize;
    if (i.i_flags & EXT4_EXTENTS_FL) return 2 ** 32 * bs;
    const p = bs / 4;
    return (12 + p + p * p + p * p * p) * bs;
  }

  /** Mapped runs of an inode's data, in logical order, up to its size. */
  runs(ino: number, i: Inode): AsyncGenerator<Run> {
    const size = this.sizeOf(i);
    if (size > this.maxSize(i)) throw new FormatError(`ext4 inode ${ino}`, `i_size ${size} exceeds the largest file this layout can map`);
    const nblocks = Math.ceil(size / this.blockSize);
    const raw = i.i_flags & EXT4_EXTENTS_FL ? extentRuns(this.ctx, ino, i.i_generation, i.i_block, nblocks) : blockMapRuns(this.ctx, ino, i.i_block, nblocks);
    return coalesce(raw, READ_CHUNK / this.blockSize);
  }

  /** The whole inline data of an inline_data inode (i_block then system.data). */
  private inlineData(ino: number, i: Inode): Buffer {
    const S = `ext4 inode ${ino}`;
    // The xattr area starts at 128 + i_extra_isize (re-encoding gives the raw inode back).
    const full = encodeInode(i, { inodeSize: this.inodeSize });
    const xattrs = this.inodeSize > 128 ? decodeIbodyXattrs(full.subarray(128 + i.i_extra_isize), S) : [];
    const data = xattrs.find((x) => x.e_name_index === EXT4_XATTR_INDEX_SYSTEM && x.name.toString() === 'data');
    if (!data) throw new FormatError(S, 'inline_data inode without a system.data attribute');
    return Buffer.concat([i.i_block, data.value]);
  }

  private isInline(i: Inode): boolean {
    return (i.i_flags & EXT4_INLINE_DATA_FL) !== 0 && hasFeature(this.sb, 'inline_data');
  }

  /** Stream the first `size` bytes of an inode's data; holes and uninitialized extents as zeros. */
  async *readInodeData(ino: number, i: Inode): AsyncGenerator<Buffer> {
    const size = this.sizeOf(i);
    if (this.isInline(i)) {
      // Past the inline bytes a file reads as zeros (mkfs -d stores an all-zero
      // file as an empty inline area with its full i_size, as the kernel reads it).
      // i_size may exceed the inline area by far (mkfs -d stores a fully sparse
      // 3 MiB file inline, 0 bytes of data): e2fsck and the kernel read the rest
      // as zeros, streamed here like a hole.
      const d = this.inlineData(ino, i);
      const head = d.subarray(0, Math.min(size, d.length));
      if (head.length) yield Buffer.from(head);
      for (let left = size - head.length; left > 0; left -= READ_CHUNK) yield Buffer.alloc(Math.min(left, READ_CHUNK));
      return;
    }
    const bs = this.blockSize;
    let pos = 0; // bytes emitted
    const zeros = function* (n: number) {
      while (n > 0) {
        const k = Math.min(n, READ_CHUNK);
        yield Buffer.alloc(k);
        n -= k;
      }
    };
    for await (const r of this.runs(ino, i)) {
      const start = r.lblk * bs;
      if (start > pos) {
        yield* zeros(start - pos);
        pos = start;
      }
      const end = Math.min(size, (r.lblk + r.len) * bs);
      if (r.uninit) {
        yield* zeros(end - pos);
        pos = end;
        continue;
      }
      while (pos < end) {
        const n = Math.min(end - pos, READ_CHUNK);
        const buf = Buffer.alloc(n);
        await this.dev.read(r.pblk * bs + (pos - start), buf);
        yield buf;
        pos += n;
      }
    }
    yield* zeros(size - pos);
  }

  private readonly runCache = new Map<number, Run[]>();

  /**
   * Fill `buf` from byte `offset` of inode `ino`'s data, reading only the
   * blocks it covers (the file's extent runs are mapped once and kept), holes
   * and uninitialized extents as zeros. What a SquashFS image inside a slot
   * is read through, without copying it out.
   */
  async readAt(ino: number, i: Inode, offset: number, buf: Uint8Array): Promise<void> {
    const size = this.sizeOf(i);
    if (!Number.isInteger(offset) || offset < 0 || offset + buf.length > size) {
      throw new InputError(`${this.name}: inode ${ino}: read of ${buf.length} bytes at ${offset} past the end (${size} bytes)`);
    }
    if (this.isInline(i)) {
      const d = this.inlineData(ino, i);
      buf.fill(0);
      buf.set(d.subarray(Math.min(offset, d.length), Math.min(offset + buf.length, d.length)));
      return;
    }
    let runs = this.runCache.get(ino);
    if (!runs) {
      runs = [];
      for await (const r of this.runs(ino, i)) runs.push(r);
      if (this.runCache.size > 16) this.runCache.clear();
      this.runCache.set(ino, runs);
    }
    const bs = this.blockSize;
    let done = 0;
    while (done < buf.length) {
      const at = offset + done;
      const lblk = Math.floor(at / bs);
      // The last run starting at or before lblk (runs are in logical order).
      let lo = 0;
      let hi = runs.length - 1;
      let k = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (runs[mid]!.lblk <= lblk) {
          k = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      const r = k >= 0 ? runs[k]! : undefined;
      if (r && lblk < r.lblk + r.len) {
        const end = Math.min(offset + buf.length, (r.lblk + r.len) * bs);
        const n = end - at;
        const part = buf.subarray(done, done + n);
        if (r.uninit) part.fill(0);
        else await this.dev.read(r.pblk * bs + (at - r.lblk * bs), part);
        done += n;
      } else {
        // A hole up to the next run (or the end).
        const next = runs[k + 1];
        const end = Math.min(offset + buf.length, next ? next.lblk * bs : Infinity);
        buf.subarray(done, done + (end - at)).fill(0);
        done += end - at;
      }
    }
  }

  /* ---- directories ------------------------------------------------------ */

  /** Entries of directory inode `ino` (without "." and ".."). */
  async readdirInode(ino: number): Promise<Ext4Dirent[]> {
    const cached = this.dirCache.get(ino);
    if (cached) return cached;
    const i = await this.inode(ino);
    if ((i.i_mode & S_IFMT) !== S_IFDIR) throw new InputError(`${this.name}: inode ${ino} is not a directory`);
    const S = `ext4 directory inode ${ino}`;
    const filetype = hasFeature(this.sb, 'filetype');
    const out: Ext4Dirent[] = [];
    const add = (entries: DirEntry[]) => {
      for (const e of entries) {
        if (e.inode === 0) continue;
        if (e.name.length === 0) throw new FormatError(S, `entry for inode ${e.inode} has an empty name`);
        if (e.inode > this.sb.s_inodes_count) throw new FormatError(S, `entry "${e.name.toString()}" points to inode ${e.inode}, beyond s_inodes_count`);
        const n = e.name.toString('latin1');
        if (n === '.' || n === '..') continue;
        out.push({ name: nameFromBytes(e.name), rawName: e.name, ino: e.inode, type: filetype ? FT[e.file_type] ?? 'unknown' : 'unknown' });
      }
    };
    if (this.isInline(i)) {
      // i_block: 4-byte parent inode, then entries; system.data continues them.
      const d = this.inlineData(ino, i);
      const first = d.subarray(4, 60);
      if (first.length && first.readUInt16LE(4) !== 0) add(decodeDirBlock(first, { structure: `${S} inline data` }).entries);
      const rest = d.subarray(60);
      if (rest.length >= 8) add(decodeDirBlock(rest, { structure: `${S} inline data` }).entries);
    } else {
      const bs = this.blockSize;
      const indexed = (i.i_flags & EXT4_INDEX_FL) !== 0 && hasFeature(this.sb, 'dir_index');
      const csum = this.metadataCsum ? { csumSeed: this.csumSeed, ino, gen: i.i_generation } : undefined;
      for await (const r of this.runs(ino, i)) {
        if (r.uninit) continue;
        for (let k = 0; k < r.len; k++) {
          const lblk = r.lblk + k;
          const where = `${S} block ${lblk}`;
          const blk = await this.readBlock(r.pblk + k, where);
          if (indexed && lblk === 0) {
            decodeDxRoot(blk, { csum, structure: `${S} htree root` });
            continue;
          }
          if (indexed && isDxNodeBlock(blk)) {
            // An interior htree node, or (without metadata_csum, where both look
            // alike) an emptied leaf: either way it names no entries.
            if (csum) decodeDxNode(blk, { csum, structure: `${S} htree node ${lblk}` });
            continue;
          }
          add(decodeDirBlock(blk, { csum, structure: where }).entries);
        }
      }
    }
    if (this.dirCache.size > 64) this.dirCache.clear();
    this.dirCache.set(ino, out);
    return out;
  }

  /* ---- paths ------------------------------------------------------------ */

  /**
   * Resolve `path` to an inode number. Symlinks in intermediate components
   * are followed (relative to their directory, or the root when absolute);
   * the last one only when `follow`.
   */
  async lookup(path: string, follow = true): Promise<number> {
    let hops = 0;
    const resolve = async (start: number, parts: string[], followLast: boolean): Promise<number> => {
      let cur = start;
      for (let k = 0; k < parts.length; k++) {
        const p = parts[k]!;
        if (p === '' || p === '.') continue;
        const dirInode = await this.inode(cur);
        if ((dirInode.i_mode & S_IFMT) !== S_IFDIR) throw new PathError('ENOTDIR', `${this.name}: ${path}: not a directory`);
        if (p === '..') {
          // The directory's own ".." entry: right after following a symlink too.
          cur = cur === EXT4_ROOT_INO ? EXT4_ROOT_INO : await this.dotdot(cur);
          continue;
        }
        const want = nameToBytes(p);
        const hit = (await this.readdirInode(cur)).find((e) => e.rawName.equals(want));
        if (!hit) throw new PathError('ENOENT', `${this.name}: ${path}: no such file or directory`);
        const last = k === parts.length - 1;
        const child = await this.inode(hit.ino);
        if ((child.i_mode & S_IFMT) === S_IFLNK && (!last || followLast)) {
          if (++hops > MAX_SYMLINK_HOPS) throw new PathError('ELOOP', `${this.name}: ${path}: too many levels of symbolic links`);
          const target = nameFromBytes(await this.readlinkInode(hit.ino, child));
          const base = target.startsWith('/') ? EXT4_ROOT_INO : cur;
          cur = await resolve(base, target.split('/'), true);
          continue;
        }
        cur = hit.ino;
      }
      return cur;
    };
    return await resolve(EXT4_ROOT_INO, path.split('/'), follow);
  }

  private async dotdot(ino: number): Promise<number> {
    // Only reached after following a symlink into a directory: read its "..".
    const i = await this.inode(ino);
    if (this.isInline(i)) return this.inlineData(ino, i).readUInt32LE(0);
    for await (const r of this.runs(ino, i)) {
      if (r.lblk !== 0 || r.uninit) break;
      const blk = await this.readBlock(r.pblk, `ext4 directory inode ${ino} block 0`);
      const second = blk.readUInt16LE(4);
      if (second >= 12 && second + 10 <= blk.length && blk[second + 6] === 2 && blk.readUInt16LE(second + 8) === 0x2e2e) {
        return blk.readUInt32LE(second);
      }
      break;
    }
    throw new FormatError(`ext4 directory inode ${ino}`, 'no ".." entry');
  }

  async readlinkInode(ino: number, i: Inode): Promise<Buffer> {
    const S = `ext4 inode ${ino}`;
    if ((i.i_mode & S_IFMT) !== S_IFLNK) throw new InputError(`${this.name}: inode ${ino} is not a symbolic link`);
    const size = this.sizeOf(i);
    if (size > this.blockSize || size > 65536) throw new FormatError(S, `symlink of ${size} bytes is longer than a block`);
    if (!this.isInline(i) && size < 60) return Buffer.from(i.i_block.subarray(0, size)); // fast symlink
    const parts: Buffer[] = [];
    for await (const b of this.readInodeData(ino, i)) parts.push(b);
    return Buffer.concat(parts);
  }

  /** stat, following a final symlink. */
  async stat(path: string): Promise<Ext4Stat> {
    const ino = await this.lookup(path, true);
    return this.statInode(ino, await this.inode(ino));
  }

  /** stat without following a final symlink. */
  async lstat(path: string): Promise<Ext4Stat> {
    const ino = await this.lookup(path, false);
    return this.statInode(ino, await this.inode(ino));
  }

  async readdir(path: string): Promise<Ext4Dirent[]> {
    const ino = await this.lookup(path, true);
    const i = await this.inode(ino);
    if ((i.i_mode & S_IFMT) !== S_IFDIR) throw new PathError('ENOTDIR', `${this.name}: ${path}: not a directory`);
    return await this.readdirInode(ino);
  }

  /** A regular file's contents as a stream of chunks (≤ 1 MiB each). */
  async *readFile(path: string): AsyncGenerator<Buffer> {
    const ino = await this.lookup(path, true);
    const i = await this.inode(ino);
    if ((i.i_mode & S_IFMT) !== S_IFREG) throw new PathError('ENOTREG', `${this.name}: ${path}: not a regular file`);
    yield* this.readInodeData(ino, i);
  }

  /**
   * The extended attributes of inode `ino` by full name ("user.x",
   * "security.capability"), from the inode's extra space and its xattr block
   * (checksum verified), values in ea_inodes read too. POSIX ACLs come back
   * as Linux's getxattr gives them (system.posix_acl_access, version 2);
   * inline_data's system.data is left out (it is file content).
   */
  async xattrsInode(ino: number, i: Inode): Promise<Map<string, Buffer>> {
    const S = `ext4 inode ${ino}`;
    const all: XattrEntry[] = [];
    if (this.inodeSize > 128 + i.i_extra_isize) {
      const full = encodeInode(i, { inodeSize: this.inodeSize });
      all.push(...decodeIbodyXattrs(full.subarray(128 + i.i_extra_isize), `${S} xattrs`));
    }
    if (i.i_file_acl) {
      const blk = await this.readBlock(i.i_file_acl, `${S} xattr block ${i.i_file_acl}`);
      all.push(...decodeXattrBlock(blk, `${S} xattr block ${i.i_file_acl}`, this.metadataCsum ? { seed: this.csumSeed, blockNr: i.i_file_acl } : undefined).entries);
    }
    const out = new Map<string, Buffer>();
    for (const e of all) {
      if (e.e_name_index === EXT4_XATTR_INDEX_SYSTEM && e.name.toString('latin1') === 'data' && this.isInline(i)) continue;
      let value = e.value;
      if (e.e_value_inum) {
        const vi = await this.inode(e.e_value_inum);
        const parts: Buffer[] = [];
        for await (const c of this.readInodeData(e.e_value_inum, vi)) parts.push(c);
        value = Buffer.concat(parts);
      }
      if (e.e_name_index === EXT4_XATTR_INDEX_POSIX_ACL_ACCESS || e.e_name_index === EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT) value = aclFromDisk(value, `${S} ACL`);
      out.set(xattrFullName(e.e_name_index, e.name), value);
    }
    return out;
  }

  /** Extended attributes of `path` (a final symlink not followed, like getfattr -h). */
  async xattrs(path: string): Promise<Map<string, Buffer>> {
    const ino = await this.lookup(path, false);
    return await this.xattrsInode(ino, await this.inode(ino));
  }

  async readlink(path: string): Promise<string> {
    const ino = await this.lookup(path, false);
    return nameFromBytes(await this.readlinkInode(ino, await this.inode(ino)));
  }
}
