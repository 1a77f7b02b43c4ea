import { InputError, clampTime, type Entropy } from '@diskimg/partitions/internal';
import type { Device, WriteHint } from '../device/device.js';
import type { TreeEntry } from '../source/tree.js';
import { validateTree } from '../source/validate.js';
import { planGeometry, groupHasSuper, BLOCK_SIZE, INODE_SIZE, DESC_SIZE, FIRST_INO, type Geometry } from './geometry.js';
import { BlockAllocator, type Run } from './alloc.js';
import { WriteBehind } from './write-behind.js';
import { buildExtentTree, runsToExtents, treeBlocksNeeded, type FileRun } from './extent-tree.js';
import { aclToDisk, blockCapacity, compareXattrs, encodeIbodyXattrs, encodeXattrBlock, ibodyCapacity, xattrEntrySpace, xattrShortName, EXT4_XATTR_INDEX_POSIX_ACL_ACCESS, EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT, EXT4_XATTR_REFCOUNT_MAX, type XattrEntry } from './xattr.js';
import { checkAcl, decodeAclXattr, aclIsMinimal, ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER } from '../source/acl.js';
import { dirBlockCount, buildDirBlocks, type DirEntryIn } from './dir-build.js';
import { journalSuperblockBlock } from './journal-create.js';
import { crc32cRaw } from './crc32c.js';
import { encodeSuperblock } from './superblock.js';
import { S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, EXT4_EXTENTS_FL, EXT4_ROOT_INO, EXT4_JOURNAL_INO } from './inode.js';
import { encodeNodeInode, encodeDev, fileType, IblockStore, type NodeRecord as Node, type Times } from './inode-build.js';
import { buildGroup, buildSuperblock } from './group-build.js';

export { EXT4_FEATURES } from './group-build.js';

/** A small file `createExt4` adds after the tree (side files, signatures). */
export interface ExtraFile {
  /** Path inside the filesystem, e.g. "psyopsOS-A" or "psyopsOS.tar.minisig". */
  path: string;
  data: Buffer | string;
  mode?: number;
}

/** Options of `createExt4`: label, entropy (UUIDs), timestamps, reserved blocks and extra small files. */
export interface CreateExt4Options {
  label: string;
  entropy: Entropy;
  /** The build's "now" in seconds (SOURCE_DATE_EPOCH or the clock). */
  now?: number;
  /** Input timestamps are clamped to this. */
  sourceDateEpoch?: number;
  /** Names the input (the tar file) in validation errors; default `ext4 "LABEL"`. */
  inputName?: string;
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

/** What `createExt4` wrote: block and inode counts, files, block size and UUID. */
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
const NO_ZERO: WriteHint = { noZeroPieces: true };
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
  /** By inode number; a path is found by walking names from the root (no full path is kept per directory). */
  private readonly dirs = new Map<number, Dir>();
  private root!: Dir;
  /** The parent directory of the last entry: archives list a directory's files together. */
  private lastParent: { path: string; dir: Dir } | undefined;
  private nextIno = FIRST_INO + 1;
  private files = 0;
  private readonly zero = Buffer.alloc(CHUNK);
  private readonly zeroBlock = Buffer.alloc(BLOCK_SIZE);
  /** External xattr blocks by content, shared by inodes with identical sets (up to the kernel's refcount limit). */
  private readonly xblocks = new Map<string, { block: number; refs: number; entries: XattrEntry[] }>();
  private readonly xblocksFull: { block: number; refs: number; entries: XattrEntry[] }[] = [];
  private xattrCount = 0;
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
    this.dirs.set(root.ino, root);
    this.root = root;
    const lpf = this.newDir(FIRST_INO, EXT4_ROOT_INO, 0o700, 0, 0, t);
    lpf.minBlocks = 4;
    this.link(root, 'lost+found', lpf);
    this.dirs.set(lpf.ino, lpf);

    // One validation layer for every writer (source/validate.ts): names, duplicates, sizes, targets.
    const checked = entries && validateTree(entries, { fs: 'ext4', inputName: this.opts.inputName ?? `ext4 "${this.opts.label}"`, builtinDirs: ['lost+found'] });
    const iter = checked?.[Symbol.asyncIterator]();
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
    await this.writeXattrBlocks();
    await this.wb.drain();
    await this.writeInodeTables();
    await this.writeGroupMetadata();
    await this.dev.flush();
  }

  // ---------- input ----------

  /**
   * Times clamped to SOURCE_DATE_EPOCH (newer ones become it, like tar
   * --clamp-mtime); older ones keep their nanoseconds exactly.
   */
  private times(e: Pick<TreeEntry, 'mtime' | 'atime' | 'ctime' | 'mtimeNs' | 'atimeNs' | 'ctimeNs'>): Times {
    const out = {} as Times;
    const set = (k: 'mtime' | 'atime' | 'ctime', sec: number, ns: number | undefined) => {
      const newer = this.sde !== undefined && (sec > this.sde || (sec === this.sde && !!ns));
      out[k] = newer ? this.sde! : sec;
      if (ns !== undefined && !newer) out[`${k}Ns`] = ns;
    };
    set('mtime', e.mtime, e.mtimeNs);
    set('atime', e.atime ?? e.mtime, e.atime !== undefined ? e.atimeNs : e.mtimeNs);
    set('ctime', e.ctime ?? e.mtime, e.ctime !== undefined ? e.ctimeNs : e.mtimeNs);
    return out;
  }

  /**
   * Store an entry's xattrs as e2fsprogs and the kernel do: sorted by (index,
   * name length, name), each in the inode's extra space when it fits, the
   * rest in one external block shared with every inode holding the same set.
   * POSIX ACLs go to ext4's compact format and set the mode's permission
   * bits, as setfacl does. A set larger than one block is refused.
   */
  private setXattrs(node: Node, xattrs: Map<string, Buffer> | undefined, path: string): void {
    node.ibody = undefined;
    node.xattrBlock = undefined;
    if (!xattrs?.size) return;
    const what = `ext4: "${path || '/'}"`;
    const entries: XattrEntry[] = [];
    for (const [full, raw] of xattrs) {
      const { index, name } = xattrShortName(full, what);
      let value = raw;
      if (index === EXT4_XATTR_INDEX_POSIX_ACL_ACCESS || index === EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT) {
        const acl = checkAcl(decodeAclXattr(raw, `${what} ${full}`), `${what} ${full}`);
        if (index === EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT && (node.mode & 0xf000) !== S_IFDIR) {
          throw new InputError(`${what}: a default ACL on a non-directory; remove it from the payload`);
        }
        if (index === EXT4_XATTR_INDEX_POSIX_ACL_ACCESS) {
          const perm = (tag: number) => acl.find((x) => x.tag === tag)?.perm ?? 0;
          const group = acl.some((x) => x.tag === ACL_MASK) ? perm(ACL_MASK) : perm(ACL_GROUP_OBJ);
          node.mode = (node.mode & ~0o777) | (perm(ACL_USER_OBJ) << 6) | (group << 3) | perm(ACL_OTHER);
          if (aclIsMinimal(acl)) continue; // the mode says it all; the kernel stores no attribute
        }
        value = aclToDisk(raw, `${what} ${full}`);
      }
      entries.push({ e_name_index: index, name, e_value_inum: 0, value });
    }
    if (!entries.length) return;
    this.xattrCount += entries.length;
    entries.sort(compareXattrs);
    const inInode: XattrEntry[] = [];
    const inBlock: XattrEntry[] = [];
    let room = ibodyCapacity(INODE_SIZE - 160);
    for (const e of entries) {
      const need = xattrEntrySpace(e);
      if (need <= room) {
        inInode.push(e);
        room -= need;
      } else inBlock.push(e);
    }
    if (inInode.length) node.ibody = encodeIbodyXattrs(inInode, INODE_SIZE - 160);
    if (!inBlock.length) return;
    const total = inBlock.reduce((a, e) => a + xattrEntrySpace(e), 0);
    if (total > blockCapacity(BLOCK_SIZE)) {
      throw new InputError(
        `${what}: its extended attributes need ${total + (INODE_SIZE - 160 - 8 - room)} bytes; ext4 holds ${ibodyCapacity(INODE_SIZE - 160)} in the inode and ${blockCapacity(BLOCK_SIZE)} in one attribute block (diskimg writes no ea_inode); shrink them`,
      );
    }
    const key = inBlock.map((e) => `${e.e_name_index}:${e.name.toString('hex')}:${e.value.toString('hex')}`).join('/');
    let shared = this.xblocks.get(key);
    if (!shared || shared.refs >= EXT4_XATTR_REFCOUNT_MAX) {
      if (shared) this.xblocksFull.push(shared);
      const run = this.alloc.alloc(1);
      if (!run) {
        if (this.streaming) throw new OutOfSpace();
        this.tooBig(this.geo.blocksCount + 1);
      }
      shared = { block: run[0]!.start, refs: 0, entries: inBlock };
      this.xblocks.set(key, shared);
    }
    shared.refs++;
    node.xattrBlock = shared.block;
    node.sectors += BLOCK_SIZE / 512;
  }

  private async writeXattrBlocks(): Promise<void> {
    for (const x of [...this.xblocksFull, ...this.xblocks.values()]) {
      await this.wb.write(x.block * BLOCK_SIZE, encodeXattrBlock(x.entries, BLOCK_SIZE, x.refs, x.block, this.csumSeed));
    }
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

  /** The directory at `path` ("" is the root), if the input made one: a walk from the root, linear in the path. */
  private dirAt(path: string): Dir | undefined {
    if (path === '') return this.root;
    if (this.lastParent?.path === path) return this.lastParent.dir;
    let d = this.root;
    for (const name of path.split('/')) {
      const v = d.entries.get(name);
      const next = v === undefined ? undefined : this.dirs.get(Math.floor(v / 8));
      if (!next) return undefined;
      d = next;
    }
    return d;
  }

  /** Inode number at `path` ("" is the root), if the input created it. */
  private lookup(path: string): number | undefined {
    if (path === '') return EXT4_ROOT_INO;
    const slash = path.lastIndexOf('/');
    const v = this.dirAt(slash < 0 ? '' : path.slice(0, slash))?.entries.get(path.slice(slash + 1));
    return v === undefined ? undefined : Math.floor(v / 8);
  }

  /**
   * The directory holding `path`, creating missing parents (mode 0755,
   * root-owned) as tar allows. A loop, not recursion: depth is the input's.
   */
  private parentOf(path: string): { dir: Dir; name: string } {
    const slash = path.lastIndexOf('/');
    const name = path.slice(slash + 1);
    const ppath = slash < 0 ? '' : path.slice(0, slash);
    if (ppath === '') return { dir: this.root, name };
    if (this.lastParent?.path === ppath) return { dir: this.lastParent.dir, name };
    let d = this.root;
    const parts = ppath.split('/');
    for (let i = 0; i < parts.length; i++) {
      const v = d.entries.get(parts[i]!);
      let next = v === undefined ? undefined : this.dirs.get(Math.floor(v / 8));
      if (v !== undefined && !next) throw new InputError(`ext4: "${path}": its parent "${parts.slice(0, i + 1).join('/')}" is not a directory`);
      if (!next) {
        next = this.newDir(this.newIno(), d.ino, 0o755, 0, 0, { atime: this.now, mtime: this.now, ctime: this.now });
        this.link(d, parts[i]!, next);
        this.dirs.set(next.ino, next);
      }
      d = next;
    }
    this.lastParent = { path: ppath, dir: d };
    return { dir: d, name };
  }

  private async add(e: TreeEntry): Promise<void> {
    if (e.type === 'directory') {
      const existing = this.dirAt(e.path);
      if (existing) {
        // The root, lost+found, or a parent created implicitly earlier: take the entry's attributes.
        if (existing.xattrBlock) throw new InputError(`ext4: directory "${e.path}" appears twice in the input with extended attributes; remove the duplicate`);
        Object.assign(existing, { mode: S_IFDIR | (e.mode & 0o7777), uid: e.uid, gid: e.gid }, this.times(e));
        this.setXattrs(existing, e.xattrs, e.path);
        return;
      }
    }
    // No body is drained on a refusal (a sparse one would expand): the source skips what is unread.
    if (this.lookup(e.path) !== undefined) {
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
      this.setXattrs(d, e.xattrs, e.path);
      this.link(dir, name, d);
      this.dirs.set(d.ino, d);
      return;
    }
    const node: Node = { ino, mode: 0, uid: e.uid, gid: e.gid, ...t, size: 0, links: 0, flags: 0, sectors: 0 };
    const mode = { file: S_IFREG, symlink: S_IFLNK, char: S_IFCHR, block: S_IFBLK, fifo: S_IFIFO }[e.type];
    node.mode = mode | (e.type === 'symlink' ? 0o777 : perm);
    this.setXattrs(node, e.xattrs, e.path);
    switch (e.type) {
      case 'file':
        if (e.sparse) await this.writeFile(node, e.size, e.sparse.runs(), e.sparse.storedSize);
        else await this.writeFile(node, e.size, e.body);
        break;
      case 'symlink': {
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
        this.iblocks.set(ino, encodeDev(e.devmajor ?? 0, e.devminor ?? 0));
        break;
      }
      case 'fifo':
        break;
    }
    this.nodes[ino] = node;
    this.files++;
    this.link(dir, name, node);
  }

  /**
   * Stream the body to freshly allocated blocks and build the extent tree.
   * Whole blocks of zeros are left unallocated (holes, as mke2fs -d does);
   * the other blocks take the allocator's next free blocks as they arrive,
   * so a file without holes is one contiguous run.
   */
  private async writeFile(node: Node, size: number, body: AsyncIterable<Buffer | number> | Iterable<Buffer> | undefined, storedSize = size): Promise<void> {
    node.flags = EXT4_EXTENTS_FL;
    node.size = size;
    // A sparse file needs blocks for its stored data only (holes stay holes).
    const nblocks = Math.ceil(Math.min(size, storedSize) / BLOCK_SIZE);
    if (nblocks > this.alloc.free) {
      this.pendingBlocks = nblocks;
      throw new OutOfSpace();
    }
    const runs: FileRun[] = [];
    if (size) await this.streamInto(runs, size, body);
    const tree = await this.extentTree(node.ino, runs);
    this.iblocks.set(node.ino, tree.iblock);
    const used = runs.reduce((a, r) => a + r.len, 0);
    node.sectors += (used + tree.treeBlocks) * (BLOCK_SIZE / 512);
  }

  private pendingBlocks = 0;
  /** While reading the input, running out of space is reported after draining it (to say how much is needed). */
  private streaming = false;

  private async extentTree(ino: number, runs: FileRun[]): Promise<{ iblock: Buffer; treeBlocks: number }> {
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
   * Copy exactly `size` bytes from `body` to new blocks, chunk by chunk
   * through the write-behind, appending to `runs` (with their logical block
   * numbers; gaps are holes). Only a partial block is copied (into a fresh
   * buffer); the tail of the last block is zeroed, so nothing of an older
   * filesystem stays inside a file's blocks.
   */
  private async streamInto(runs: FileRun[], size: number, body: AsyncIterable<Buffer | number> | Iterable<Buffer> | undefined): Promise<void> {
    let lblk = 0; // logical block of the next whole block
    let carry: Buffer | undefined; // a partial block being filled
    let carryLen = 0;
    // Blocks [lblk, lblk + n) of `buf`: write the non-zero ones, leave zero ones as holes.
    const blocks = async (buf: Buffer) => {
      const n = buf.length / BLOCK_SIZE;
      let i = 0;
      while (i < n) {
        while (i < n && this.isZeroBlock(buf, i)) i++;
        let j = i;
        while (j < n && !this.isZeroBlock(buf, j)) j++;
        if (j > i) {
          let at = i;
          const got = this.alloc.alloc(j - i);
          if (!got) {
            // Only a sparse file's blocks are not reserved up front (its data may straddle more blocks than it stores).
            this.pendingBlocks = j - i;
            throw new OutOfSpace();
          }
          for (const r of got) {
            // Each block was just probed non-zero: the sparse layer below need not probe it again.
            await this.wb.write(r.start * BLOCK_SIZE, buf.subarray(at * BLOCK_SIZE, (at + r.len) * BLOCK_SIZE), NO_ZERO);
            const prev = runs[runs.length - 1];
            const l = lblk + at;
            if (prev && prev.lblk! + prev.len === l && prev.start + prev.len === r.start) prev.len += r.len;
            else runs.push({ lblk: l, start: r.start, len: r.len });
            at += r.len;
          }
        }
        i = j;
      }
      lblk += n;
    };
    let got = 0;
    if (body) {
      for await (const chunk of body as AsyncIterable<Buffer | number>) {
        if (typeof chunk === 'number') {
          // A hole of `chunk` zero bytes: fill the partial block, skip whole blocks, start the next partial one. O(1).
          if (got + chunk > size) throw new InputError(`ext4: input file is longer than its declared size ${size}`);
          got += chunk;
          let n = chunk;
          if (carry) {
            const k = Math.min(BLOCK_SIZE - carryLen, n);
            carryLen += k; // carry is zero-filled
            n -= k;
            if (carryLen < BLOCK_SIZE) continue;
            await blocks(carry);
            carry = undefined;
          }
          lblk += Math.floor(n / BLOCK_SIZE);
          if (n % BLOCK_SIZE) {
            carry = Buffer.alloc(BLOCK_SIZE);
            carryLen = n % BLOCK_SIZE;
          }
          continue;
        }
        if (got + chunk.length > size) throw new InputError(`ext4: input file is longer than its declared size ${size}`);
        got += chunk.length;
        let p = 0;
        if (carry) {
          const k = Math.min(BLOCK_SIZE - carryLen, chunk.length);
          chunk.copy(carry, carryLen, 0, k);
          carryLen += k;
          p = k;
          if (carryLen < BLOCK_SIZE) continue;
          await blocks(carry);
          carry = undefined;
        }
        const whole = Math.floor((chunk.length - p) / BLOCK_SIZE) * BLOCK_SIZE;
        if (whole) await blocks(chunk.subarray(p, p + whole));
        p += whole;
        if (p < chunk.length) {
          carry = Buffer.alloc(BLOCK_SIZE);
          carryLen = chunk.copy(carry, 0, p);
        }
      }
    }
    if (got !== size) throw new InputError(`ext4: input file ended after ${got} of ${size} bytes (truncated input?)`);
    if (carry) await blocks(carry); // zero-filled past the end
  }

  /**
   * Block i of `buf` all zeros (a hole)? A data block nearly always has a
   * non-zero byte among its first few, found in JS; only the rest costs a
   * native compare (a call per block: ~70 ms per bench image).
   */
  private isZeroBlock(buf: Buffer, i: number): boolean {
    const o = i * BLOCK_SIZE;
    for (let k = o; k < o + 16; k++) if (buf[k] !== 0) return false;
    if (buf[o + BLOCK_SIZE - 1] !== 0) return false;
    return buf.compare(this.zeroBlock, 0, BLOCK_SIZE, o, o + BLOCK_SIZE) === 0;
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
      // Declared sizes only: no body is read here (the source skips its stored bytes), so a
      // sparse entry's holes are never expanded and the work stays per input byte.
      for (let r = await iter.next(); !r.done; r = await iter.next()) {
        const x = r.value;
        if (x.type !== 'hardlink') inodes++;
        dirBytes += 8 + Buffer.byteLength(x.path) + 4;
        if (x.type === 'file') blocks += Math.ceil(Math.min(x.size, x.sparse?.storedSize ?? x.size) / BLOCK_SIZE);
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
      d.sectors += (n + tree.treeBlocks) * (BLOCK_SIZE / 512);
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
      // On a region that reads as zeros, the table past the block of the group's last inode is zeros already.
      const perBlock = BLOCK_SIZE / INODE_SIZE;
      const end = this.opts.regionIsZeroed ? Math.min(ipg, Math.ceil(Math.max(0, used - first + 1) / perBlock) * perBlock) : ipg;
      for (let i = 0; i < end; i += perChunk) {
        const n = Math.min(perChunk, end - i);
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
