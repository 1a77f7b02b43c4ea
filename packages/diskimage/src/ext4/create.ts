import { InputError, clampTime, type Entropy } from '@diskimg/partitions';
import type { Device } from '../device/device.js';
import type { TreeEntry } from '../source/tree.js';
import { drain } from '../source/tree.js';
import { planGeometry, groupHasSuper, BLOCK_SIZE, INODE_SIZE, DESC_SIZE, FIRST_INO, type Geometry } from './geometry.js';
import { BlockAllocator, type Run } from './alloc.js';
import { WriteBehind } from './write-behind.js';
import { buildExtentTree, runsToExtents, treeBlocksNeeded } from './extent-tree.js';
import { dirBlockCount, buildDirBlocks, type DirEntryIn } from './dir-build.js';
import { journalSuperblockBlock } from './journal-create.js';
import { crc32cRaw } from './crc32c.js';
import { encodeSuperblock } from './superblock.js';
import { S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, EXT4_EXTENTS_FL, EXT4_ROOT_INO, EXT4_JOURNAL_INO } from './inode.js';
import { encodeNodeInode, encodeDev, fileType, IblockStore, type NodeRecord as Node, type Times } from './inode-build.js';
import { buildGroup, buildSuperblock } from './group-build.js';

export { EXT4_FEATURES } from './group-build.js';

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
  /**
   * The region is known to read as zeros (a freshly created sparse image
   * file): skip zeroing the journal, which keeps the image sparse. Never set
   * it for a region that held anything.
   */
  regionIsZeroed?: boolean;
  /**
   * Keep this filesystem UUID and directory hash seed (16 bytes each) instead
   * of drawing new ones: an update keeps the slot's identity, so rewriting
   * the same tarball gives the same bytes.
   */
  uuid?: Uint8Array;
  hashSeed?: Uint8Array;
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

/** EXT4_LINK_MAX: with dir_nlink, a directory whose link count would exceed it has i_links_count 1 (e2fsck pass4). */
const LINK_MAX = 65000;
const CHUNK = 1 << 20;
const MiB = 2 ** 20;

interface Dir extends Node {
  parent: number;
  subdirs: number;
  /** name → ino * 8 + file_type, in insertion order (a Map keeps it): compact, and doubles as the path index. */
  entries: Map<string, number>;
  /** lost+found gets at least 4 blocks, as mke2fs makes it. */
  minBlocks: number;
}

class OutOfSpace extends Error {}
class OutOfInodes extends Error {}

/**
 * Create a fresh ext4 filesystem on `dev` (a partition Region) from a stream
 * of tree entries. File data goes straight from the stream to its final,
 * contiguous blocks; directories, inode tables, bitmaps, group descriptors
 * and superblocks are written at the end. Memory stays flat apart from a
 * small record per inode and directory entry (~0.5 KiB per file).
 * Bad input is a one-line InputError; only `dev` is ever written.
 */
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
  private readonly iblocks = new IblockStore();
  /** Indexed by inode number. */
  private readonly nodes: (Node | undefined)[] = [];
  private readonly dirs = new Map<string, Dir>();
  private nextIno = FIRST_INO + 1;
  private files = 0;
  private readonly zero = Buffer.alloc(CHUNK);
  /** Data, directory and tree blocks go through it; drained before the group metadata. */
  private readonly wb: WriteBehind;

  constructor(
    private readonly dev: Device,
    private readonly geo: Geometry,
    private readonly opts: CreateExt4Options,
    private readonly label: Buffer,
  ) {
    this.alloc = new BlockAllocator(geo.blocksCount, geo.metadata);
    this.wb = new WriteBehind(dev);
    this.uuid = opts.uuid ? Buffer.from(opts.uuid) : uuidV4(opts.entropy.bytes(`ext4-uuid:${opts.label}`, 16));
    this.hashSeed = opts.hashSeed ? Buffer.from(opts.hashSeed) : uuidV4(opts.entropy.bytes(`ext4-hash-seed:${opts.label}`, 16));
    this.csumSeed = crc32cRaw(0xffffffff, this.uuid);
    this.sde = opts.sourceDateEpoch;
    this.now = Math.floor(clampTime(opts.now ?? opts.sourceDateEpoch ?? Date.now() / 1000, this.sde));
  }

  async run(entries: AsyncIterable<TreeEntry> | undefined): Promise<CreateExt4Summary> {
    try {
      await this.build(entries);
    } catch (e) {
      // No write of this attempt may land after we return (a retry could be writing the same region).
      await this.wb.drain().catch(() => {});
      throw e;
    }
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

  private async build(entries: AsyncIterable<TreeEntry> | undefined): Promise<void> {
    await this.createJournal();
    const t = { atime: this.now, mtime: this.now, ctime: this.now };
    const root = this.newDir(EXT4_ROOT_INO, EXT4_ROOT_INO, 0o755, 0, 0, t);
    this.dirs.set('', root);
    const lpf = this.newDir(FIRST_INO, EXT4_ROOT_INO, 0o700, 0, 0, t);
    lpf.minBlocks = 4;
    this.link(root, 'lost+found', lpf);
    this.dirs.set('lost+found', lpf);

    const iter = entries?.[Symbol.asyncIterator]();
    this.streaming = true;
    try {
      if (iter) for (let r = await iter.next(); !r.done; r = await iter.next()) await this.add(r.value);
      for (const f of this.opts.extraFiles ?? []) await this.add(extraEntry(f, this.now));
    } catch (e) {
      if (e instanceof OutOfSpace || e instanceof OutOfInodes) await this.overflow(e, iter);
      await iter?.return?.(undefined).catch(() => {}); // let the source close its file
      throw e;
    }
    this.streaming = false;
    await this.writeDirectories();
    await this.wb.drain();
    await this.writeInodeTables();
    await this.writeGroupMetadata();
    await this.dev.flush();
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
    const d: Dir = { ino, mode: S_IFDIR | perm, uid, gid, ...t, size: 0, links: 0, flags: EXT4_EXTENTS_FL, sectors: 0, parent, subdirs: 0, entries: new Map(), minBlocks: 1 };
    this.nodes[ino] = d;
    return d;
  }

  private link(dir: Dir, name: string, node: Node): void {
    const len = Buffer.byteLength(name, 'utf8');
    if (len > 255) throw new InputError(`ext4: name "${name}" is ${len} bytes; ext4 allows at most 255`);
    dir.entries.set(name, node.ino * 8 + fileType(node.mode));
    if ((node.mode & 0xf000) === S_IFDIR) dir.subdirs++;
    else node.links++;
  }

  /** Inode number at `path` ("" is the root), if the input created it. */
  private lookup(path: string): number | undefined {
    if (path === '') return EXT4_ROOT_INO;
    const slash = path.lastIndexOf('/');
    const v = this.dirs.get(slash < 0 ? '' : path.slice(0, slash))?.entries.get(path.slice(slash + 1));
    return v === undefined ? undefined : Math.floor(v / 8);
  }

  /** The directory holding `path`, creating missing parents (mode 0755, root-owned) as tar allows. */
  private parentOf(path: string): { dir: Dir; name: string } {
    const slash = path.lastIndexOf('/');
    const name = path.slice(slash + 1);
    const ppath = slash < 0 ? '' : path.slice(0, slash);
    let dir = this.dirs.get(ppath);
    if (!dir) {
      if (this.lookup(ppath) !== undefined) throw new InputError(`ext4: "${path}": its parent "${ppath}" is not a directory`);
      const { dir: gp, name: pname } = this.parentOf(ppath);
      dir = this.newDir(this.newIno(), gp.ino, 0o755, 0, 0, { atime: this.now, mtime: this.now, ctime: this.now });
      this.link(gp, pname, dir);
      this.dirs.set(ppath, dir);
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
    if (this.lookup(e.path) !== undefined) {
      await drain(e.body);
      throw new InputError(`ext4: "${e.path}" appears twice in the input; remove the duplicate`);
    }
    const { dir, name } = this.parentOf(e.path);
    if (e.type === 'hardlink') {
      const target = this.lookup(e.linkname ?? '');
      const node = target === undefined ? undefined : this.nodes[target];
      if (!node) throw new InputError(`ext4: hard link "${e.path}" points to "${e.linkname}", which is not earlier in the input`);
      if ((node.mode & 0xf000) === S_IFDIR) throw new InputError(`ext4: hard link "${e.path}" points to a directory`);
      this.link(dir, name, node);
      return;
    }
    const ino = this.newIno();
    const t = this.times(e);
    const perm = e.mode & 0o7777;
    if (e.type === 'directory') {
      const d = this.newDir(ino, dir.ino, perm, e.uid, e.gid, t);
      this.link(dir, name, d);
      this.dirs.set(e.path, d);
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
          this.iblocks.set(ino, target);
        } else {
          await this.writeFile(node, target.length, [target]);
        }
        break;
      }
      case 'char':
      case 'block': {
        node.mode = (e.type === 'char' ? S_IFCHR : S_IFBLK) | perm;
        this.iblocks.set(ino, encodeDev(e.devmajor ?? 0, e.devminor ?? 0));
        break;
      }
      case 'fifo':
        node.mode = S_IFIFO | perm;
        break;
    }
    this.nodes[ino] = node;
    this.files++;
    this.link(dir, name, node);
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
    this.iblocks.set(node.ino, tree.iblock);
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
    for (const b of tree.blocks) await this.wb.write(b.block * BLOCK_SIZE, b.data);
    return { iblock: tree.iblock, treeBlocks: tree.blocks.length };
  }

  /**
   * Copy exactly `size` bytes from `body` to the file's runs, chunk by chunk
   * through the write-behind. The tail of the last block is zeroed, so
   * nothing of an older filesystem stays inside a file's blocks.
   */
  private async streamInto(runs: Run[], size: number, body: AsyncIterable<Buffer> | Iterable<Buffer> | undefined): Promise<void> {
    let runIdx = 0;
    let runFirst = 0; // file offset where runs[runIdx] begins
    // Queue `buf` for file offset `off` (≥ every earlier offset), split at run boundaries.
    const put = async (buf: Buffer, off: number) => {
      let p = 0;
      while (p < buf.length) {
        const at = off + p;
        while (at >= runFirst + runs[runIdx]!.len * BLOCK_SIZE) runFirst += runs[runIdx++]!.len * BLOCK_SIZE;
        const r = runs[runIdx]!;
        const n = Math.min(buf.length - p, runFirst + r.len * BLOCK_SIZE - at);
        await this.wb.write(r.start * BLOCK_SIZE + (at - runFirst), buf.subarray(p, p + n));
        p += n;
      }
    };
    let got = 0;
    if (body) {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (got + chunk.length > size) throw new InputError(`ext4: input file is longer than its declared size ${size}`);
        await put(chunk, got);
        got += chunk.length;
      }
    }
    if (got !== size) throw new InputError(`ext4: input file ended after ${got} of ${size} bytes (truncated input?)`);
    if (size % BLOCK_SIZE) await put(this.zero.subarray(0, BLOCK_SIZE - (size % BLOCK_SIZE)), size);
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
    for (const d of this.dirs.values()) for (const name of d.entries.keys()) dirBytes += 8 + Buffer.byteLength(name) + 4;
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
    if (!this.opts.regionIsZeroed) for (const r of runs) await this.zeroBlocks(r.start, r.len);
    await this.wb.drain(); // the zeroes land before the journal superblock over the first of them
    await this.dev.write(runs[0]!.start * BLOCK_SIZE, journalSuperblockBlock(this.geo.journalBlocks, BLOCK_SIZE, this.uuid));
    const node: Node = { ino: EXT4_JOURNAL_INO, mode: S_IFREG | 0o600, uid: 0, gid: 0, atime: this.now, mtime: this.now, ctime: this.now, size: this.geo.journalBlocks * BLOCK_SIZE, links: 1, flags: EXT4_EXTENTS_FL, sectors: 0 };
    const tree = await this.extentTree(EXT4_JOURNAL_INO, runs);
    this.iblocks.set(EXT4_JOURNAL_INO, tree.iblock);
    node.sectors = (this.geo.journalBlocks + tree.treeBlocks) * (BLOCK_SIZE / 512);
    this.nodes[EXT4_JOURNAL_INO] = node;
  }

  private async zeroBlocks(start: number, count: number): Promise<void> {
    const per = CHUNK / BLOCK_SIZE;
    for (let b = 0; b < count; b += per) {
      const n = Math.min(per, count - b);
      await this.wb.write((start + b) * BLOCK_SIZE, this.zero.subarray(0, n * BLOCK_SIZE));
    }
  }

  // ---------- final metadata ----------

  private async writeDirectories(): Promise<void> {
    // Inode order keeps the output deterministic and the blocks of a directory tree together.
    const dirs = [...this.dirs.values()].sort((a, b) => a.ino - b.ino);
    const sizes = dirs.map((d) => Math.max(d.minBlocks, dirBlockCount(d.entries.keys(), BLOCK_SIZE)));
    const need = sizes.reduce((a, b) => a + b, 0);
    if (need > this.alloc.free) this.tooBig(this.geo.blocksCount - this.alloc.free + need);
    for (const [di, d] of dirs.entries()) {
      const n = sizes[di]!;
      const runs = this.alloc.alloc(n);
      if (!runs) this.tooBig(this.geo.blocksCount - this.alloc.free + n);
      const list: DirEntryIn[] = [];
      for (const [name, v] of d.entries) list.push({ name: Buffer.from(name, 'utf8'), ino: Math.floor(v / 8), type: v % 8 });
      const blocks = buildDirBlocks(list, d.ino, d.parent, n, BLOCK_SIZE, { csumSeed: this.csumSeed, ino: d.ino, gen: 0 });
      let i = 0;
      for (const r of runs) {
        await this.wb.write(r.start * BLOCK_SIZE, Buffer.concat(blocks.slice(i, i + r.len)));
        i += r.len;
      }
      const tree = await this.extentTree(d.ino, runs);
      this.iblocks.set(d.ino, tree.iblock);
      d.size = n * BLOCK_SIZE;
      d.sectors = (n + tree.treeBlocks) * (BLOCK_SIZE / 512);
      d.links = 2 + d.subdirs > LINK_MAX ? 1 : 2 + d.subdirs;
      d.entries = new Map();
    }
  }

  private encodeNode(ino: number): Buffer {
    return encodeNodeInode(this.nodes[ino], ino, this.iblocks.get(ino), this.csumSeed, this.now);
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
    const used = this.nextIno - 1;
    const dirsPerGroup = new Array<number>(geo.groupCount).fill(0);
    for (const d of this.dirs.values()) dirsPerGroup[Math.floor((d.ino - 1) / geo.inodesPerGroup)]!++;
    const gdt = Buffer.alloc(geo.descBlocks * BLOCK_SIZE);
    let freeBlocks = 0;
    for (let g = 0; g < geo.groupCount; g++) {
      const gr = buildGroup(geo, g, { allocatedBelow: this.alloc.position, usedInodes: used, dirs: dirsPerGroup[g]!, csumSeed: this.csumSeed, zeroedInodeTables: !!this.opts.zeroInodeTables });
      await this.dev.write(geo.groups[g]!.blockBitmap * BLOCK_SIZE, gr.blockBitmap);
      await this.dev.write(geo.groups[g]!.inodeBitmap * BLOCK_SIZE, gr.inodeBitmap);
      gr.desc.copy(gdt, g * DESC_SIZE);
      freeBlocks += gr.freeBlocks;
    }
    const j = this.nodes[EXT4_JOURNAL_INO]!;
    const sb = buildSuperblock(geo, { freeBlocks, freeInodes: geo.inodesCount - used, now: this.now, uuid: this.uuid, hashSeed: this.hashSeed, label: this.label, journalIblock: this.iblocks.get(EXT4_JOURNAL_INO), journalSize: j.size });
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

function extraEntry(f: ExtraFile, now: number): TreeEntry {
  const data = Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data, 'utf8');
  return { path: f.path.replace(/^\/+/, ''), type: 'file', mode: f.mode ?? 0o644, uid: 0, gid: 0, mtime: now, size: data.length, body: (async function* () { yield data; })() };
}
