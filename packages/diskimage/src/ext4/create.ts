import { InputError, clampTime, type Entropy } from '@diskimg/partitions';
import type { Device } from '../device/device.js';
import type { TreeEntry } from '../source/tree.js';
import { drain } from '../source/tree.js';
import { planGeometry, groupHasSuper, BLOCK_SIZE, INODE_SIZE, DESC_SIZE, FIRST_INO, LOG_GROUPS_PER_FLEX, type Geometry } from './geometry.js';
import { BlockAllocator, type Run } from './alloc.js';
import { buildExtentTree, runsToExtents, treeBlocksNeeded } from './extent-tree.js';
import { dirBlockCount, buildDirBlocks, FT, type DirEntryIn } from './dir-build.js';
import { journalSuperblockBlock } from './journal-create.js';
import { crc32cRaw } from './crc32c.js';
import { featureWords } from './features.js';
import { encodeSuperblock, EXT4_SUPER_MAGIC, EXT4_CRC32C_CHKSUM, type Superblock } from './superblock.js';
import { encodeGroupDesc, BG_INODE_UNINIT, BG_INODE_ZEROED } from './group-desc.js';
import { setBits, blockBitmapChecksum, inodeBitmapChecksum, bitmapChecksumField } from './bitmap.js';
import {
  emptyInode,
  encodeInode,
  encodeInodeTime,
  S_IFDIR,
  S_IFREG,
  S_IFLNK,
  S_IFCHR,
  S_IFBLK,
  S_IFIFO,
  EXT4_EXTENTS_FL,
  EXT4_ROOT_INO,
  EXT4_JOURNAL_INO,
} from './inode.js';

/**
 * Create a fresh ext4 filesystem on `dev` (a partition Region) from a stream
 * of tree entries. File data goes straight from the stream to its final,
 * contiguous blocks; directories, inode tables, bitmaps, group descriptors
 * and superblocks are written at the end. Memory stays flat apart from a
 * small record per inode and directory entry.
 */
export const EXT4_FEATURES = [
  'has_journal', 'ext_attr', 'dir_index', 'filetype', 'extent', '64bit', 'flex_bg',
  'sparse_super', 'large_file', 'huge_file', 'dir_nlink', 'extra_isize', 'metadata_csum',
] as const;

export interface ExtraFile {
  /** Path inside the filesystem, e.g. "psyopsOS-A" or "psyopsOS.tar.minisig". */
  path: string;
  data: Buffer | string;
  mode?: number;
}

export interface CreateExt4Options {
  label: string;
  entropy: Entropy;
  /** The build's "now" in seconds (SOURCE_DATE_EPOCH or the clock). */
  now?: number;
  /** Input timestamps are clamped to this. */
  sourceDateEpoch?: number;
  /** Percentage of blocks reserved for root (mke2fs -m), default 5. */
  reservedRatio?: number;
  /** Small files added after the tree (side files, signatures). */
  extraFiles?: ExtraFile[];
  /**
   * Also zero the inode tables of groups that hold no inode (and flag them
   * ITABLE_ZEROED). Off by default: like mke2fs's lazy_itable_init, such
   * groups are INODE_UNINIT and the kernel zeroes them on first rw mount.
   */
  zeroInodeTables?: boolean;
}

export interface CreateExt4Summary {
  blocks: number;
  inodes: number;
  usedBlocks: number;
  usedInodes: number;
  /** Regular files, symlinks, devices and FIFOs written (hard links not counted twice). */
  files: number;
  blockSize: number;
  uuid: string;
}

/** EXT4_LINK_MAX: with dir_nlink, a directory with more subdirectories has i_links_count 1. */
const LINK_MAX = 65000;
const CHUNK = 1 << 20;
const MiB = 2 ** 20;

interface Times {
  atime: number;
  mtime: number;
  ctime: number;
}

interface Node extends Times {
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
  iblock?: Buffer;
}

interface Dir extends Node {
  parent: number;
  subdirs: number;
  entries: DirEntryIn[];
  /** lost+found gets at least 4 blocks, as mke2fs makes it. */
  minBlocks: number;
}

class OutOfSpace extends Error {}
class OutOfInodes extends Error {}

export async function createExt4(dev: Device, entries: AsyncIterable<TreeEntry> | undefined, opts: CreateExt4Options): Promise<CreateExt4Summary> {
  const labelBytes = Buffer.from(opts.label, 'utf8');
  if (labelBytes.length > 16) throw new InputError(`ext4 label "${opts.label}" is ${labelBytes.length} bytes; at most 16 fit`);
  const geo = planGeometry(dev.size, opts.reservedRatio ?? 5);
  const w = new Writer(dev, geo, opts, labelBytes);
  return await w.run(entries);
}

class Writer {
  private readonly alloc: BlockAllocator;
  private readonly uuid: Buffer;
  private readonly hashSeed: Buffer;
  private readonly csumSeed: number;
  private readonly now: number;
  private readonly sde: number | undefined;
  /** Indexed by inode number. */
  private readonly nodes: (Node | undefined)[] = [];
  private readonly dirs = new Map<string, Dir>();
  /** Every path seen (for duplicates and hard links) → inode number. */
  private readonly paths = new Map<string, number>();
  private nextIno = FIRST_INO + 1;
  private files = 0;
  private journalRuns: Run[] = [];
  private readonly zero = Buffer.alloc(CHUNK);
  /** Gathers small input chunks into larger writes; reused for every file. */
  private readonly stage = Buffer.allocUnsafe(CHUNK);

  constructor(
    private readonly dev: Device,
    private readonly geo: Geometry,
    private readonly opts: CreateExt4Options,
    private readonly label: Buffer,
  ) {
    this.alloc = new BlockAllocator(geo.blocksCount, geo.metadata);
    this.uuid = uuidV4(opts.entropy.bytes(`ext4-uuid:${opts.label}`, 16));
    this.hashSeed = uuidV4(opts.entropy.bytes(`ext4-hash-seed:${opts.label}`, 16));
    this.csumSeed = crc32cRaw(0xffffffff, this.uuid);
    this.sde = opts.sourceDateEpoch;
    this.now = Math.floor(clampTime(opts.now ?? opts.sourceDateEpoch ?? Date.now() / 1000, this.sde));
  }

  async run(entries: AsyncIterable<TreeEntry> | undefined): Promise<CreateExt4Summary> {
    await this.createJournal();
    const t = { atime: this.now, mtime: this.now, ctime: this.now };
    const root = this.newDir(EXT4_ROOT_INO, EXT4_ROOT_INO, 0o755, 0, 0, t);
    this.dirs.set('', root);
    this.paths.set('', EXT4_ROOT_INO);
    const lpf = this.newDir(FIRST_INO, EXT4_ROOT_INO, 0o700, 0, 0, t);
    lpf.minBlocks = 4;
    this.link(root, 'lost+found', lpf);
    this.dirs.set('lost+found', lpf);
    this.paths.set('lost+found', FIRST_INO);

    const iter = entries?.[Symbol.asyncIterator]();
    this.streaming = true;
    try {
      if (iter) for (let r = await iter.next(); !r.done; r = await iter.next()) await this.add(r.value);
      for (const f of this.opts.extraFiles ?? []) await this.add(extraEntry(f, this.now));
    } catch (e) {
      if (e instanceof OutOfSpace || e instanceof OutOfInodes) await this.overflow(e, iter);
      throw e;
    }
    this.streaming = false;
    await this.writeDirectories();
    await this.writeInodeTables();
    await this.writeGroupMetadata();
    await this.dev.flush();
    const usedInodes = this.nextIno - 1;
    return {
      blocks: this.geo.blocksCount,
      inodes: this.geo.inodesCount,
      usedBlocks: this.geo.blocksCount - this.alloc.free,
      usedInodes,
      files: this.files,
      blockSize: BLOCK_SIZE,
      uuid: formatUuid(this.uuid),
    };
  }

  // ---------- input ----------

  private times(e: { mtime: number; atime?: number; ctime?: number }): Times {
    const c = (x: number) => clampTime(x, this.sde);
    const mtime = c(e.mtime);
    return { mtime, atime: c(e.atime ?? e.mtime), ctime: c(e.ctime ?? e.mtime) };
  }

  private newIno(): number {
    if (this.nextIno > this.geo.inodesCount) throw new OutOfInodes();
    return this.nextIno++;
  }

  private newDir(ino: number, parent: number, perm: number, uid: number, gid: number, t: Times): Dir {
    const d: Dir = { ino, mode: S_IFDIR | perm, uid, gid, ...t, size: 0, links: 0, flags: EXT4_EXTENTS_FL, sectors: 0, parent, subdirs: 0, entries: [], minBlocks: 1 };
    this.nodes[ino] = d;
    return d;
  }

  private link(dir: Dir, name: string, node: Node): void {
    const nb = Buffer.from(name, 'utf8');
    if (nb.length > 255) throw new InputError(`ext4: name "${name}" is ${nb.length} bytes; ext4 allows at most 255`);
    dir.entries.push({ name: nb, ino: node.ino, type: fileType(node.mode) });
    if ((node.mode & 0xf000) === S_IFDIR) dir.subdirs++;
    else node.links++;
  }

  /** The directory holding `path`, creating missing parents (mode 0755, root-owned) as tar allows. */
  private parentOf(path: string): { dir: Dir; name: string } {
    const slash = path.lastIndexOf('/');
    const name = path.slice(slash + 1);
    const ppath = slash < 0 ? '' : path.slice(0, slash);
    let dir = this.dirs.get(ppath);
    if (!dir) {
      if (this.paths.has(ppath)) throw new InputError(`ext4: "${path}": its parent "${ppath}" is not a directory`);
      const { dir: gp, name: pname } = this.parentOf(ppath);
      dir = this.newDir(this.newIno(), gp.ino, 0o755, 0, 0, { atime: this.now, mtime: this.now, ctime: this.now });
      this.link(gp, pname, dir);
      this.dirs.set(ppath, dir);
      this.paths.set(ppath, dir.ino);
    }
    return { dir, name };
  }

  private async add(e: TreeEntry): Promise<void> {
    if (e.type === 'directory') {
      const existing = this.dirs.get(e.path);
      if (existing) {
        // The root, lost+found, or a parent created implicitly earlier: take the entry's attributes.
        Object.assign(existing, { mode: S_IFDIR | (e.mode & 0o7777), uid: e.uid, gid: e.gid }, this.times(e));
        return;
      }
    }
    if (this.paths.has(e.path)) {
      await drain(e.body);
      throw new InputError(`ext4: "${e.path}" appears twice in the input; remove the duplicate`);
    }
    const { dir, name } = this.parentOf(e.path);
    if (e.type === 'hardlink') {
      const target = this.paths.get(e.linkname ?? '');
      const node = target === undefined ? undefined : this.nodes[target];
      if (!node) throw new InputError(`ext4: hard link "${e.path}" points to "${e.linkname}", which is not earlier in the input`);
      if ((node.mode & 0xf000) === S_IFDIR) throw new InputError(`ext4: hard link "${e.path}" points to a directory`);
      this.link(dir, name, node);
      this.paths.set(e.path, node.ino);
      return;
    }
    const ino = this.newIno();
    const t = this.times(e);
    const perm = e.mode & 0o7777;
    if (e.type === 'directory') {
      const d = this.newDir(ino, dir.ino, perm, e.uid, e.gid, t);
      this.link(dir, name, d);
      this.dirs.set(e.path, d);
      this.paths.set(e.path, ino);
      return;
    }
    const node: Node = { ino, mode: 0, uid: e.uid, gid: e.gid, ...t, size: 0, links: 0, flags: 0, sectors: 0 };
    switch (e.type) {
      case 'file':
        node.mode = S_IFREG | perm;
        await this.writeFile(node, e.size, e.body);
        break;
      case 'symlink': {
        node.mode = S_IFLNK | 0o777;
        const target = Buffer.from(e.linkname ?? '', 'utf8');
        if (target.length === 0 || target.length >= BLOCK_SIZE) throw new InputError(`ext4: symlink "${e.path}" target is ${target.length} bytes; must be 1..${BLOCK_SIZE - 1}`);
        node.size = target.length;
        if (target.length < 60) {
          // Fast symlink: the target lives in i_block, no extents flag.
          node.iblock = Buffer.alloc(60);
          target.copy(node.iblock);
        } else {
          await this.writeFile(node, target.length, [target]);
        }
        break;
      }
      case 'char':
      case 'block': {
        node.mode = (e.type === 'char' ? S_IFCHR : S_IFBLK) | perm;
        node.iblock = encodeDev(e.devmajor ?? 0, e.devminor ?? 0);
        break;
      }
      case 'fifo':
        node.mode = S_IFIFO | perm;
        node.iblock = Buffer.alloc(60);
        break;
    }
    this.nodes[ino] = node;
    this.files++;
    this.link(dir, name, node);
    this.paths.set(e.path, ino);
  }

  /** Allocate contiguous runs for `size` bytes, stream the body into them, build the extent tree. */
  private async writeFile(node: Node, size: number, body: AsyncIterable<Buffer> | Iterable<Buffer> | undefined): Promise<void> {
    node.flags = EXT4_EXTENTS_FL;
    node.size = size;
    const nblocks = Math.ceil(size / BLOCK_SIZE);
    const runs = nblocks ? this.alloc.alloc(nblocks) : [];
    if (!runs) {
      this.pendingBlocks = nblocks;
      throw new OutOfSpace();
    }
    if (nblocks) await this.streamInto(runs, size, body);
    const tree = await this.extentTree(node.ino, runs);
    node.iblock = tree.iblock;
    node.sectors = (nblocks + tree.treeBlocks) * (BLOCK_SIZE / 512);
  }

  private pendingBlocks = 0;
  /** While reading the input, running out of space is reported after draining it (to say how much is needed). */
  private streaming = false;

  private async extentTree(ino: number, runs: Run[]): Promise<{ iblock: Buffer; treeBlocks: number }> {
    const need = treeBlocksNeeded(runsToExtents(runs).length, BLOCK_SIZE);
    if (need && need > this.alloc.free) {
      if (this.streaming) throw new OutOfSpace();
      this.tooBig(this.geo.blocksCount - this.alloc.free + need);
    }
    const tree = buildExtentTree(runs, BLOCK_SIZE, { csumSeed: this.csumSeed, ino, gen: 0 }, (n) => {
      const out: number[] = [];
      for (const r of this.alloc.alloc(n)!) for (let i = 0; i < r.len; i++) out.push(r.start + i);
      return out;
    });
    for (const b of tree.blocks) await this.dev.write(b.block * BLOCK_SIZE, b.data);
    return { iblock: tree.iblock, treeBlocks: tree.blocks.length };
  }

  /**
   * Copy exactly `size` bytes from `body` to the file's runs. Large chunks are
   * written where they belong as they come (several writes in flight while
   * the next chunk is parsed); small ones are gathered in a 1 MiB buffer
   * first. The tail of the last block is zeroed, so nothing of an older
   * filesystem stays inside a file's blocks.
   */
  private async streamInto(runs: Run[], size: number, body: AsyncIterable<Buffer> | Iterable<Buffer> | undefined): Promise<void> {
    const inflight: Promise<void>[] = [];
    let runIdx = 0;
    let runFirst = 0; // file offset where runs[runIdx] begins
    // Write `buf` at file offset `off` (≥ every earlier offset), split at run boundaries.
    const put = async (buf: Buffer, off: number) => {
      let p = 0;
      while (p < buf.length) {
        const at = off + p;
        while (at >= runFirst + runs[runIdx]!.len * BLOCK_SIZE) runFirst += runs[runIdx++]!.len * BLOCK_SIZE;
        const r = runs[runIdx]!;
        const n = Math.min(buf.length - p, runFirst + r.len * BLOCK_SIZE - at);
        inflight.push(this.dev.write(r.start * BLOCK_SIZE + (at - runFirst), buf.subarray(p, p + n)));
        p += n;
      }
      while (inflight.length > 2) await inflight.shift();
    };
    const stage = this.stage;
    let stageOff = 0;
    let fill = 0;
    const flushStage = async () => {
      if (!fill) return;
      await put(stage.subarray(0, fill), stageOff);
      await Promise.all(inflight.splice(0)); // the stage is reused next
      fill = 0;
    };
    let got = 0;
    if (body) {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (got + chunk.length > size) throw new InputError(`ext4: input file is longer than its declared size ${size}`);
        if (chunk.length >= 64 * 1024) {
          await flushStage();
          await put(chunk, got);
        } else {
          if (fill + chunk.length > stage.length) await flushStage();
          if (!fill) stageOff = got;
          chunk.copy(stage, fill);
          fill += chunk.length;
        }
        got += chunk.length;
      }
    }
    if (got !== size) throw new InputError(`ext4: input file ended after ${got} of ${size} bytes (truncated input?)`);
    await flushStage();
    if (size % BLOCK_SIZE) await put(this.zero.subarray(0, BLOCK_SIZE - (size % BLOCK_SIZE)), size);
    await Promise.all(inflight);
  }

  /**
   * Out of blocks or inodes: read (and discard) the rest of the input to say
   * how much the payload needs, then fail with one line.
   */
  private async overflow(e: Error, iter: AsyncIterator<TreeEntry> | undefined): Promise<never> {
    let blocks = this.geo.blocksCount - this.alloc.free + this.pendingBlocks;
    let inodes = this.nextIno - 1;
    let dirBytes = 0;
    if (iter) {
      for (let r = await iter.next(); !r.done; r = await iter.next()) {
        const x = r.value;
        await drain(x.body);
        if (x.type !== 'hardlink') inodes++;
        dirBytes += 8 + Buffer.byteLength(x.path) + 4;
        if (x.type === 'file') blocks += Math.ceil(x.size / BLOCK_SIZE);
        if (x.type === 'symlink' && Buffer.byteLength(x.linkname ?? '') >= 60) blocks++;
      }
    }
    for (const d of this.dirs.values()) for (const en of d.entries) dirBytes += 8 + en.name.length + 4;
    blocks += this.dirs.size + Math.ceil(dirBytes / BLOCK_SIZE);
    if (e instanceof OutOfInodes) {
      throw new InputError(`ext4 "${this.opts.label}": the payload has ${inodes} files and directories but the filesystem has ${this.geo.inodesCount} inodes; use a larger partition`);
    }
    this.tooBig(blocks);
  }

  private tooBig(blocks: number): never {
    const have = Math.floor((this.geo.blocksCount * BLOCK_SIZE) / MiB);
    throw new InputError(`ext4 "${this.opts.label}": payload needs ${Math.ceil((blocks * BLOCK_SIZE) / MiB)} MiB, partition has ${have} MiB; use a larger partition or a smaller payload`);
  }

  // ---------- journal ----------

  /** Inode 8: zeroed blocks (no stale transaction can ever replay) with a jbd2 v2 superblock in the first. */
  private async createJournal(): Promise<void> {
    const runs = this.alloc.alloc(this.geo.journalBlocks)!;
    this.journalRuns = runs;
    for (const r of runs) await this.zeroBlocks(r.start, r.len);
    await this.dev.write(runs[0]!.start * BLOCK_SIZE, journalSuperblockBlock(this.geo.journalBlocks, BLOCK_SIZE, this.uuid));
    const node: Node = { ino: EXT4_JOURNAL_INO, mode: S_IFREG | 0o600, uid: 0, gid: 0, atime: this.now, mtime: this.now, ctime: this.now, size: this.geo.journalBlocks * BLOCK_SIZE, links: 1, flags: EXT4_EXTENTS_FL, sectors: 0 };
    const tree = await this.extentTree(EXT4_JOURNAL_INO, runs);
    node.iblock = tree.iblock;
    node.sectors = (this.geo.journalBlocks + tree.treeBlocks) * (BLOCK_SIZE / 512);
    this.nodes[EXT4_JOURNAL_INO] = node;
  }

  private async zeroBlocks(start: number, count: number): Promise<void> {
    const per = CHUNK / BLOCK_SIZE;
    for (let b = 0; b < count; b += per) {
      const n = Math.min(per, count - b);
      await this.dev.write((start + b) * BLOCK_SIZE, this.zero.subarray(0, n * BLOCK_SIZE));
    }
  }

  // ---------- final metadata ----------

  private async writeDirectories(): Promise<void> {
    // Inode order keeps the output deterministic and the blocks of a directory tree together.
    const dirs = [...this.dirs.values()].sort((a, b) => a.ino - b.ino);
    const sizes = dirs.map((d) => Math.max(d.minBlocks, dirBlockCount(d.entries, BLOCK_SIZE)));
    const need = sizes.reduce((a, b) => a + b, 0);
    if (need > this.alloc.free) this.tooBig(this.geo.blocksCount - this.alloc.free + need);
    for (const [di, d] of dirs.entries()) {
      const n = sizes[di]!;
      const runs = this.alloc.alloc(n);
      if (!runs) this.tooBig(this.geo.blocksCount - this.alloc.free + n);
      const blocks = buildDirBlocks(d.entries, d.ino, d.parent, n, BLOCK_SIZE, { csumSeed: this.csumSeed, ino: d.ino, gen: 0 });
      let i = 0;
      for (const r of runs) {
        await this.dev.write(r.start * BLOCK_SIZE, Buffer.concat(blocks.slice(i, i + r.len)));
        i += r.len;
      }
      const tree = await this.extentTree(d.ino, runs);
      d.iblock = tree.iblock;
      d.size = n * BLOCK_SIZE;
      d.sectors = (n + tree.treeBlocks) * (BLOCK_SIZE / 512);
      d.links = 2 + d.subdirs >= LINK_MAX ? 1 : 2 + d.subdirs;
      d.entries = [];
    }
  }

  private encodeNode(ino: number): Buffer {
    const n = this.nodes[ino];
    const csum = { csumSeed: this.csumSeed, ino, gen: 0 };
    if (!n) {
      // Reserved inodes as mke2fs writes them: zero, no extra fields, checksum only; inode 1 carries times.
      const x = emptyInode(0);
      if (ino === 1) x.i_atime = x.i_ctime = x.i_mtime = encodeInodeTime(this.now).lo;
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
    if (n.iblock) x.i_block = n.iblock;
    const a = splitTime(n.atime);
    const m = splitTime(n.mtime);
    const c = splitTime(n.ctime);
    const cr = encodeInodeTime(this.now);
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

  /** Inode tables of groups holding inodes, written whole (zeros past the last inode). */
  private async writeInodeTables(): Promise<void> {
    const { inodesPerGroup: ipg, groups } = this.geo;
    const perChunk = CHUNK / INODE_SIZE;
    const used = this.nextIno - 1;
    for (let g = 0; g < groups.length; g++) {
      const first = g * ipg + 1;
      if (first > used && !this.opts.zeroInodeTables) continue;
      const table = groups[g]!.inodeTable * BLOCK_SIZE;
      for (let i = 0; i < ipg; i += perChunk) {
        const n = Math.min(perChunk, ipg - i);
        const buf = Buffer.alloc(n * INODE_SIZE);
        for (let k = 0; k < n; k++) {
          const ino = first + i + k;
          if (ino > used) break;
          this.encodeNode(ino).copy(buf, k * INODE_SIZE);
        }
        await this.dev.write(table + i * INODE_SIZE, buf);
      }
    }
  }

  private async writeGroupMetadata(): Promise<void> {
    const geo = this.geo;
    const ipg = geo.inodesPerGroup;
    const used = this.nextIno - 1;
    const dirsPerGroup = new Array<number>(geo.groupCount).fill(0);
    for (const d of this.dirs.values()) dirsPerGroup[Math.floor((d.ino - 1) / ipg)]!++;
    const gdt = Buffer.alloc(geo.descBlocks * BLOCK_SIZE);
    let freeBlocks = 0;
    for (let g = 0; g < geo.groupCount; g++) {
      const gp = geo.groups[g]!;
      // Block bitmap: used = below the allocator's cursor, or fixed metadata; padding past a short last group set.
      const bb = Buffer.alloc(BLOCK_SIZE);
      const end = gp.start + gp.blocks;
      const below = Math.min(end, this.alloc.position) - gp.start;
      if (below > 0) setBits(bb, 0, below);
      for (const [s, e] of geo.metadata) {
        const a = Math.max(s, gp.start);
        const b = Math.min(e, end);
        if (a < b) setBits(bb, a - gp.start, b - gp.start);
      }
      if (gp.blocks < geo.blocksPerGroup) setBits(bb, gp.blocks, BLOCK_SIZE * 8);
      const bfree = gp.blocks - popcount(bb, gp.blocks);
      freeBlocks += bfree;
      // Inode bitmap: inodes are handed out in order; bits past inodes_per_group are padding.
      const ib = Buffer.alloc(BLOCK_SIZE);
      const usedHere = Math.max(0, Math.min(ipg, used - g * ipg));
      setBits(ib, 0, usedHere);
      setBits(ib, ipg, BLOCK_SIZE * 8);
      await this.dev.write(gp.blockBitmap * BLOCK_SIZE, bb);
      await this.dev.write(gp.inodeBitmap * BLOCK_SIZE, ib);
      let flags = 0;
      if (usedHere === 0) flags |= BG_INODE_UNINIT;
      if (usedHere > 0 || this.opts.zeroInodeTables) flags |= BG_INODE_ZEROED;
      const desc = encodeGroupDesc(
        {
          bg_block_bitmap: gp.blockBitmap,
          bg_inode_bitmap: gp.inodeBitmap,
          bg_inode_table: gp.inodeTable,
          bg_free_blocks_count: bfree,
          bg_free_inodes_count: ipg - usedHere,
          bg_used_dirs_count: dirsPerGroup[g]!,
          bg_flags: flags,
          bg_exclude_bitmap: 0,
          bg_block_bitmap_csum: bitmapChecksumField(blockBitmapChecksum(this.csumSeed, bb, geo.blocksPerGroup), DESC_SIZE),
          bg_inode_bitmap_csum: bitmapChecksumField(inodeBitmapChecksum(this.csumSeed, ib, ipg), DESC_SIZE),
          bg_itable_unused: ipg - usedHere,
          bg_checksum: 0,
          bg_reserved: 0,
        },
        { group: g, csumSeed: this.csumSeed, size: DESC_SIZE },
      );
      desc.copy(gdt, g * DESC_SIZE);
    }
    const sb = this.superblock(freeBlocks, geo.inodesCount - used);
    // Backups first, the primary superblock last.
    for (let g = geo.groupCount - 1; g >= 0; g--) {
      if (!groupHasSuper(g)) continue;
      const start = geo.groups[g]!.start;
      const block = Buffer.alloc(BLOCK_SIZE);
      encodeSuperblock({ ...sb, s_block_group_nr: g }).copy(block, g === 0 ? 1024 : 0);
      await this.dev.write((start + 1) * BLOCK_SIZE, gdt);
      await this.dev.write(start * BLOCK_SIZE, block);
    }
  }

  private superblock(freeBlocks: number, freeInodes: number): Superblock {
    const geo = this.geo;
    const f = featureWords([...EXT4_FEATURES]);
    const j = this.nodes[EXT4_JOURNAL_INO]!;
    const jnl: number[] = [];
    for (let i = 0; i < 15; i++) jnl.push(j.iblock!.readUInt32LE(i * 4));
    jnl.push(Math.floor(j.size / 2 ** 32), j.size % 2 ** 32);
    const sb: Record<string, unknown> = {
      s_inodes_count: geo.inodesCount,
      s_blocks_count: geo.blocksCount,
      s_r_blocks_count: geo.reservedBlocks,
      s_free_blocks_count: freeBlocks,
      s_free_inodes_count: freeInodes,
      s_first_data_block: 0,
      s_log_block_size: 2,
      s_log_cluster_size: 2,
      s_blocks_per_group: geo.blocksPerGroup,
      s_clusters_per_group: geo.blocksPerGroup,
      s_inodes_per_group: geo.inodesPerGroup,
      s_mtime: 0,
      s_wtime: this.now,
      s_mnt_count: 0,
      s_max_mnt_count: 0xffff,
      s_magic: EXT4_SUPER_MAGIC,
      s_state: 1,
      s_errors: 1,
      s_minor_rev_level: 0,
      s_lastcheck: this.now,
      s_checkinterval: 0,
      s_creator_os: 0,
      s_rev_level: 1,
      s_def_resuid: 0,
      s_def_resgid: 0,
      s_first_ino: FIRST_INO,
      s_inode_size: INODE_SIZE,
      s_block_group_nr: 0,
      ...f,
      s_uuid: this.uuid,
      s_volume_name: this.label,
      s_last_mounted: Buffer.alloc(0),
      s_journal_inum: EXT4_JOURNAL_INO,
      s_hash_seed: [0, 4, 8, 12].map((o) => this.hashSeed.readUInt32LE(o)),
      s_def_hash_version: 1, // half_md4, as mke2fs
      s_jnl_backup_type: 1, // EXT3_JNL_BACKUP_BLOCKS
      s_desc_size: DESC_SIZE,
      s_default_mount_opts: 0x0004 | 0x0008, // user_xattr, acl (mke2fs.conf default_mntopts)
      s_mkfs_time: this.now,
      s_jnl_blocks: jnl,
      s_min_extra_isize: 32,
      s_want_extra_isize: 32,
      s_flags: 0x1, // signed_directory_hash
      s_log_groups_per_flex: LOG_GROUPS_PER_FLEX,
      s_checksum_type: EXT4_CRC32C_CHKSUM,
    };
    return sb as unknown as Superblock;
  }
}

// ---------- helpers ----------

function uuidV4(b: Buffer): Buffer {
  const u = Buffer.from(b);
  u[6] = (u[6]! & 0x0f) | 0x40;
  u[8] = (u[8]! & 0x3f) | 0x80;
  return u;
}

function formatUuid(u: Buffer): string {
  const h = u.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function fileType(mode: number): number {
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
function encodeDev(major: number, minor: number): Buffer {
  const b = Buffer.alloc(60);
  if (major < 256 && minor < 256) b.writeUInt32LE((major << 8) | minor, 0);
  else b.writeUInt32LE(((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0, 4);
  return b;
}

/** Seconds (possibly fractional) → the 32-bit field and *_extra (nanoseconds + epoch bits). */
function splitTime(t: number): { lo: number; extra: number } {
  const sec = Math.floor(t);
  const nsec = Math.min(999_999_999, Math.round((t - sec) * 1e9));
  return encodeInodeTime(sec, nsec);
}

const POP = new Uint8Array(256).map((_, i) => {
  let c = 0;
  for (let x = i; x; x >>= 1) c += x & 1;
  return c;
});

function popcount(b: Buffer, bits: number): number {
  let c = 0;
  const full = bits >>> 3;
  for (let i = 0; i < full; i++) c += POP[b[i]!]!;
  for (let i = full * 8; i < bits; i++) if (b[i >>> 3]! & (1 << (i & 7))) c++;
  return c;
}

function extraEntry(f: ExtraFile, now: number): TreeEntry {
  const data = Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data, 'utf8');
  return { path: f.path.replace(/^\/+/, ''), type: 'file', mode: f.mode ?? 0o644, uid: 0, gid: 0, mtime: now, size: data.length, body: (async function* () { yield data; })() };
}
