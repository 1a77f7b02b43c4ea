import { FormatError, InputError, PathError, UsageError, buildTime } from '@diskimg/partitions/internal';
import type { Device } from '../device/device.js';
import { decodeBootSector, geometry, type BootSector, type Geometry } from './boot-sector.js';
import { decodeFsInfo, encodeFsInfo } from './fsinfo.js';
import { FatTable, FatWindow } from './fat.js';
import { ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_VOLUME_ID, DIRENT_SIZE, encodeDirent, encodeFatTime, makeDirent, type Dirent } from './dirent.js';
import type { SourceFile } from '../source/tree.js';
import { DirBuffer, encodeEntryRun, nameFor, splitPath, type Fat32Entry, type SlotEntry } from './dir.js';

export interface WriteOptions {
  /** Last-write time in seconds; default SOURCE_DATE_EPOCH or now. */
  mtime?: number;
  /** Byte length of `data` when it is a stream (required then). */
  size?: number;
}

export type FileData = Uint8Array | AsyncIterable<Uint8Array>;

const MiB = 2 ** 20;
const fmtMiB = (b: number) => (b / MiB).toFixed(1).replace(/\.0$/, '');
const STAGE = 1 << 20;
const IN_FLIGHT = 3;
/** A FAT directory holds at most 65536 32-byte entries (2 MiB; fatgen103 §6). */
export const MAX_DIR_SLOTS = 65536;

/**
 * An existing FAT32 filesystem on a Device (a partition region or an image
 * of just the filesystem): read it, and edit it in place keeping both FATs
 * and FSInfo consistent. Writes happen in an order that leaves the volume
 * valid after a crash at any write, at worst with lost clusters.
 */
export class Fat32Volume {
  readonly geometry: Geometry;
  private fsInfoValid: boolean;
  /** writeData's stage buffers and their writes in flight, kept across calls. */
  private writer: { stages: Buffer[]; pending: (Promise<void> | undefined)[]; cur: number; failed?: { e: unknown } } | undefined;

  private constructor(
    readonly dev: Device,
    readonly bootSector: BootSector,
    private readonly table: FatTable | FatWindow,
    fsInfoValid: boolean,
  ) {
    this.geometry = geometry(bootSector);
    this.fsInfoValid = fsInfoValid;
  }

  /** The in-memory FAT (not available on a volume opened read-only). */
  get fat(): FatTable {
    if (this.table instanceof FatWindow) throw new UsageError('FAT volume was opened read-only; open it without readOnly to edit');
    return this.table;
  }

  get readOnly(): boolean {
    return this.table instanceof FatWindow;
  }

  private chainOf(first: number, what: string): Promise<number[]> | number[] {
    return this.table.chain(first, what);
  }

  /**
   * Open a FAT32 volume. Writable (default): the whole FAT is loaded (4 bytes
   * per cluster: 1 MiB for a 128 MiB ESP). `readOnly`: FAT entries are read on
   * demand through a small window, so listing or reading a file of a huge
   * volume costs a few MiB whatever its size.
   */
  static async open(dev: Device, opts: { readOnly?: boolean } = {}): Promise<Fat32Volume> {
    if (dev.size < 512) throw new FormatError('FAT32 boot sector', `device of ${dev.size} bytes is too small for a FAT32 volume`);
    const head = Buffer.alloc(512);
    await dev.read(0, head);
    const bps0 = head.readUInt16LE(11);
    let sector0 = head;
    if (bps0 > 512 && bps0 <= 4096 && dev.size >= bps0) {
      sector0 = Buffer.alloc(bps0);
      await dev.read(0, sector0);
    }
    const bs = decodeBootSector(sector0, dev.size);
    const g = geometry(bs);
    const mirroringOff = (bs.BPB_ExtFlags & 0x80) !== 0;
    const active = mirroringOff ? bs.BPB_ExtFlags & 0x0f : 0;
    if (opts.readOnly) return new Fat32Volume(dev, bs, new FatWindow(dev, g, active), false);
    const fat = await FatTable.load(dev, g, active);
    let fsInfoValid = false;
    if (bs.BPB_FSInfo > 0 && bs.BPB_FSInfo < bs.BPB_RsvdSecCnt) {
      const fi = Buffer.alloc(bs.BPB_BytsPerSec);
      await dev.read(bs.BPB_FSInfo * bs.BPB_BytsPerSec, fi);
      try {
        const info = decodeFsInfo(fi);
        fsInfoValid = true;
        if (fat.isValidCluster(info.FSI_Nxt_Free)) fat.nextFree = info.FSI_Nxt_Free;
      } catch {
        /* an absent FSInfo is legal; we then never write one */
      }
    }
    return new Fat32Volume(dev, bs, fat, fsInfoValid);
  }

  /** The label from the BPB, trimmed ("" when unlabeled). */
  get label(): string {
    const l = this.bootSector.BS_VolLab.trimEnd();
    return l === 'NO NAME' ? '' : l;
  }

  /**
   * The label as blkid reports it: the root directory's volume-label entry
   * when there is one (Windows updates only that), else the BPB's.
   */
  async readLabel(): Promise<string> {
    const root = await this.loadDir(this.geometry.rootCluster);
    for (let i = 0; i < root.slots; i++) {
      const s = root.buf.subarray(i * DIRENT_SIZE, (i + 1) * DIRENT_SIZE);
      if (s[0] === 0) break;
      if (s[0] !== 0xe5 && (s[11] & 0x3f) === ATTR_VOLUME_ID) return s.toString('latin1', 0, 11).trimEnd();
    }
    return this.label;
  }

  get volumeId(): number {
    return this.bootSector.BS_VolID;
  }

  get freeBytes(): number {
    return this.fat.freeCount * this.geometry.clusterSize;
  }

  clusterOffset(c: number): number {
    return this.geometry.dataOffset + (c - 2) * this.geometry.clusterSize;
  }

  // ---- reading -------------------------------------------------------------

  /** Read a directory (all its clusters) starting at `cluster`. */
  async loadDir(cluster: number): Promise<DirBuffer> {
    const chain = await this.chainOf(cluster, `directory at cluster ${cluster}`);
    const cs = this.geometry.clusterSize;
    const buf = Buffer.alloc(chain.length * cs);
    for (const [i, run, len] of runs(chain)) await this.dev.read(this.clusterOffset(run), buf.subarray(i * cs, (i + len) * cs));
    return new DirBuffer(cluster, chain, buf, this.geometry.bytesPerSector);
  }

  /** Walk `parts`; returns the directory holding the last part and the entry (if any). */
  private async walk(path: string, parts: string[]): Promise<{ dir: DirBuffer; entry?: SlotEntry; parents: number[] }> {
    let dir = await this.loadDir(this.geometry.rootCluster);
    const parents = [dir.cluster];
    for (let i = 0; i < parts.length - 1; i++) {
      const e = dir.find(parts[i]);
      if (!e) throw new PathError('ENOENT', `${path}: no such directory "${parts.slice(0, i + 1).join('/')}" on the FAT volume`);
      if (!e.isDirectory) throw new PathError('ENOTDIR', `${path}: "${parts.slice(0, i + 1).join('/')}" is a file, not a directory`);
      dir = await this.loadDir(e.firstCluster || this.geometry.rootCluster);
      parents.push(dir.cluster);
    }
    const entry = parts.length ? dir.find(parts[parts.length - 1]) : undefined;
    return { dir, entry, parents };
  }

  private rootEntry(): Fat32Entry {
    return { name: '', shortName: '', isDirectory: true, size: 0, firstCluster: this.geometry.rootCluster, mtime: 0, attr: ATTR_DIRECTORY };
  }

  /**
   * How many leading directories of `path`'s parent exist (one walk, linear
   * in depth): what mkdir would have to make is the rest. undefined when one
   * of them is a file.
   */
  async existingParents(path: string): Promise<number | undefined> {
    const parts = splitPath(path).slice(0, -1);
    let dir = await this.loadDir(this.geometry.rootCluster);
    for (let i = 0; i < parts.length; i++) {
      const e = dir.find(parts[i]);
      if (!e) return i;
      if (!e.isDirectory) return undefined;
      dir = await this.loadDir(e.firstCluster || this.geometry.rootCluster);
    }
    return parts.length;
  }

  /** stat; undefined when the path does not exist. */
  async lookup(path: string): Promise<Fat32Entry | undefined> {
    const parts = splitPath(path);
    if (parts.length === 0) return this.rootEntry();
    try {
      return strip((await this.walk(path, parts)).entry);
    } catch (e) {
      if (e instanceof PathError && (e.code === 'ENOENT' || e.code === 'ENOTDIR')) return undefined;
      throw e;
    }
  }

  async stat(path: string): Promise<Fat32Entry> {
    const e = await this.lookup(path);
    if (!e) throw new PathError('ENOENT', `${path}: no such file or directory on the FAT volume`);
    return e;
  }

  /** Entries of a directory in on-disk order (no "." / ".." / volume label). */
  async readdir(path: string): Promise<Fat32Entry[]> {
    const e = await this.stat(path);
    if (!e.isDirectory) throw new PathError('ENOTDIR', `${path}: not a directory`);
    const dir = await this.loadDir(e.firstCluster || this.geometry.rootCluster);
    return dir.entries.map((x) => strip(x)!);
  }

  /** Stream a file's bytes (reads up to 1 MiB at a time). */
  async *readFile(path: string): AsyncGenerator<Buffer> {
    const e = await this.stat(path);
    if (e.isDirectory) throw new PathError('EISDIR', `${path}: is a directory`);
    const chain = await this.chainOf(e.firstCluster, path);
    const cs = this.geometry.clusterSize;
    if (chain.length < Math.ceil(e.size / cs)) throw new FormatError('FAT32 directory entry', `${path}: size ${e.size} exceeds its cluster chain (${chain.length} clusters)`);
    let left = e.size;
    const maxRun = Math.max(1, Math.floor(STAGE / cs));
    for (const [, first, len] of runs(chain, maxRun)) {
      if (left <= 0) break;
      const n = Math.min(len * cs, left);
      const buf = Buffer.alloc(n);
      await this.dev.read(this.clusterOffset(first), buf);
      left -= n;
      yield buf;
    }
  }

  /**
   * Whole small file in memory (grub.cfg, grubenv), at most `maxBytes`
   * (default 16 MiB): a damaged or hostile entry claiming gigabytes is an
   * error, not an allocation.
   */
  async readFileBuffer(path: string, maxBytes = 16 * MiB): Promise<Buffer> {
    const e = await this.stat(path);
    if (!e.isDirectory && e.size > maxBytes) throw new InputError(`${path}: ${e.size} bytes on the FAT volume, more than the ${maxBytes} expected`);
    const parts: Buffer[] = [];
    for await (const b of this.readFile(path)) parts.push(b);
    return Buffer.concat(parts);
  }

  // ---- writing -------------------------------------------------------------

  /**
   * Stream `size` bytes from `data` into `clusters` (picked, not yet linked),
   * zero-padding the last cluster so the image is deterministic. With
   * `behind`, the last writes may still be in flight on return (populate
   * overlaps them with the next file); `settleWrites` waits for them.
   */
  async writeData(clusters: number[], data: FileData | SourceFile, size: number, what: string, opts: { behind?: boolean } = {}): Promise<void> {
    const cs = this.geometry.clusterSize;
    // Up to IN_FLIGHT stages are being written while the next one fills, so
    // reading the input and writing the device overlap; memory stays bounded.
    // The stages live as long as the volume: fresh megabyte buffers per file
    // cost page faults and GC. Bytes past `fill` are never written.
    const w = (this.writer ??= { stages: [], pending: [], cur: 0 });
    const stageLen = Math.max(1, Math.floor(STAGE / cs)) * cs;
    let stage = (w.stages[w.cur] ??= Buffer.allocUnsafeSlow(stageLen));
    let fill = 0;
    let next = 0; // index into clusters of the stage's first cluster
    let total = 0;
    const spill = async (final: boolean) => {
      const n = final ? Math.ceil(fill / cs) : fill / cs;
      if (n === 0) return;
      if (final) stage.fill(0, fill, n * cs);
      const writes: Promise<void>[] = [];
      for (let i = 0; i < n; ) {
        let j = i + 1;
        while (j < n && clusters[next + j] === clusters[next + j - 1] + 1) j++;
        // writes are issued in order (the crash tests count them); only their completion overlaps
        writes.push(this.dev.write(this.clusterOffset(clusters[next + i]), stage.subarray(i * cs, j * cs)));
        i = j;
      }
      w.pending[w.cur] = Promise.all(writes).then(
        () => undefined,
        (e) => void (w.failed ??= { e }),
      );
      next += n;
      fill = 0;
      w.cur = (w.cur + 1) % IN_FLIGHT;
      if (w.pending[w.cur]) await w.pending[w.cur];
      if (w.failed) throw w.failed.e;
      stage = w.stages[w.cur] ??= Buffer.allocUnsafeSlow(stageLen);
    };
    try {
      if (w.failed) throw w.failed.e;
      if (isSourceFile(data)) {
        // Read straight into the stage (no chunk buffers, one copy less). The
        // last read asks for one byte more, to see whether the file grew.
        for (;;) {
          const rem = size - total;
          const want = Math.min(stage.length - fill, rem + 1);
          const { bytesRead } = await data.read(stage, fill, want, total);
          if (bytesRead > rem) throw new InputError(`${what}: more data than its declared size of ${size} bytes (file grew while being read?)`);
          if (bytesRead === 0 && rem > 0) throw new InputError(`${what}: got ${total} bytes, expected ${size} (file shrank while being read?)`);
          fill += bytesRead;
          total += bytesRead;
          // a regular file's short read is its end
          if (want === rem + 1 && bytesRead === rem) break;
          if (fill === stage.length) await spill(false);
        }
      } else {
        const chunks: AsyncIterable<Uint8Array> | Uint8Array[] = data instanceof Uint8Array ? [data] : data;
        for await (const chunk of chunks) {
          if (total + chunk.length > size) throw new InputError(`${what}: more data than its declared size of ${size} bytes`);
          total += chunk.length;
          let off = 0;
          while (off < chunk.length) {
            const n = Math.min(chunk.length - off, stage.length - fill);
            stage.set(chunk.subarray(off, off + n), fill);
            fill += n;
            off += n;
            if (fill === stage.length) await spill(false);
          }
        }
        if (total !== size) throw new InputError(`${what}: got ${total} bytes, expected ${size} (input truncated?)`);
      }
      await spill(true);
    } catch (e) {
      await this.settleWrites().catch(() => {});
      throw e;
    }
    if (!opts.behind) await this.settleWrites();
  }

  /** Wait for data writes `writeData` left in flight; throws the first that failed. */
  async settleWrites(): Promise<void> {
    const w = this.writer;
    if (!w) return;
    await Promise.all(w.pending);
    w.pending = [];
    const failed = w.failed;
    w.failed = undefined;
    if (failed) throw failed.e;
  }

  private clustersFor(size: number): number {
    return Math.ceil(size / this.geometry.clusterSize);
  }

  private spaceError(path: string, needClusters: number): InputError {
    return new InputError(
      `${path}: needs ${fmtMiB(needClusters * this.geometry.clusterSize)} MiB, volume has ${fmtMiB(this.freeBytes)} MiB free; free space or use a larger ESP`,
    );
  }

  /**
   * Write changed sectors of a directory, one sector per write. New entries
   * go last sector first (the short entry before its long-name entries), and
   * removals first sector first (long-name entries before the short entry):
   * either way a crash between the sectors leaves a valid 8.3 entry, never
   * orphaned long-name entries.
   */
  private async commitDir(dir: DirBuffer, order: 'adding' | 'removing' = 'removing'): Promise<void> {
    const bps = this.geometry.bytesPerSector;
    const cs = this.geometry.clusterSize;
    for (const s of [...dir.dirtySectors].sort((a, b) => (order === 'adding' ? b - a : a - b))) {
      const byte = s * bps;
      const c = dir.clusters[Math.floor(byte / cs)];
      await this.dev.write(this.clusterOffset(c) + (byte % cs), dir.buf.subarray(byte, byte + bps));
    }
    dir.dirtySectors.clear();
  }

  /** Rewrite FSInfo's free count and next-free hint from the in-memory FAT. */
  async writeFsInfo(): Promise<void> {
    if (!this.fsInfoValid) return;
    const bps = this.geometry.bytesPerSector;
    const next = this.fat.isValidCluster(this.fat.nextFree) ? this.fat.nextFree : 0xffffffff;
    const buf = Buffer.alloc(bps);
    await this.dev.read(this.bootSector.BPB_FSInfo * bps, buf);
    // keep whatever else the sector holds; rewrite only the two counters
    encodeFsInfo({ FSI_Free_Count: this.fat.freeCount, FSI_Nxt_Free: next }, bps).copy(buf, 484, 484, 496);
    await this.dev.write(this.bootSector.BPB_FSInfo * bps, buf);
  }

  /**
   * Place a new entry in `dir`, growing the directory by zeroed clusters
   * (linked into its chain and the FAT flushed) when it is full.
   */
  private async addEntry(dir: DirBuffer, name: string, d: Dirent, path: string): Promise<void> {
    const sn = nameFor(name, dir.taken, path);
    const need = DirBuffer.slotsFor(name, sn.needsLfn);
    let slot = dir.findFree(need);
    if (slot < 0) {
      const cs = this.geometry.clusterSize;
      const grow = Math.ceil((need * DIRENT_SIZE) / cs);
      const picked = this.fat.pick(grow);
      if (!picked) throw this.spaceError(path, grow);
      for (const c of picked) await this.dev.write(this.clusterOffset(c), Buffer.alloc(cs));
      this.fat.link(picked);
      this.fat.set(dir.clusters[dir.clusters.length - 1], picked[0]);
      await this.fat.flush(this.dev);
      await this.dev.flush();
      dir.grow(picked, cs);
      slot = dir.findFree(need);
    }
    if (slot + need > MAX_DIR_SLOTS) throw new InputError(`${path}: the directory would exceed FAT's ${MAX_DIR_SLOTS} entries`);
    dir.place(slot, name, d, sn);
    await this.commitDir(dir, 'adding');
  }

  /** Directory-growth clusters an insertion of `name` may need (for up-front space checks). */
  private growthFor(dir: DirBuffer, name: string): number {
    const slots = Math.ceil(name.length / 13) + 1;
    return dir.findFree(slots) < 0 ? Math.ceil((slots * DIRENT_SIZE) / this.geometry.clusterSize) : 0;
  }

  private dataSize(data: FileData, opts: WriteOptions, path: string): number {
    const size = data instanceof Uint8Array ? data.length : opts.size;
    if (size === undefined) throw new InputError(`${path}: streaming write needs its size up front`);
    if (size > 0xffffffff) throw new InputError(`${path}: ${size} bytes; FAT32 files are at most 4 GiB - 1`);
    return size;
  }

  /** Create or replace a regular file. Replacing goes through replaceFile (crash-safe). */
  async writeFile(path: string, data: FileData, opts: WriteOptions = {}): Promise<void> {
    void this.fat; // throws UsageError when opened read-only, before any write
    const parts = splitPath(path);
    if (parts.length === 0) throw new InputError(`${path}: is the root directory`);
    const { dir, entry } = await this.walk(path, parts);
    if (entry) return this.replaceFile(path, data, opts);
    const name = parts[parts.length - 1];
    nameFor(name, dir.taken, path); // validate before touching anything
    const size = this.dataSize(data, opts, path);
    const n = this.clustersFor(size);
    if (n + this.growthFor(dir, name) > this.fat.freeCount) throw this.spaceError(path, n + this.growthFor(dir, name));
    const clusters = this.fat.pick(n)!;
    await this.writeData(clusters, data, size, path);
    this.fat.link(clusters);
    await this.commitFile(path, clusters, size, opts);
  }

  /**
   * Reserve clusters for `size` bytes: picked and chained in the in-memory FAT
   * only (nothing is written), so later picks skip them. The caller streams
   * the data in with writeData and makes the file with commitFile; a volume
   * dropped before that leaves those clusters free on disk.
   */
  reserve(size: number, path: string): number[] {
    if (size > 0xffffffff) throw new InputError(`${path}: ${size} bytes; FAT32 files are at most 4 GiB - 1`);
    const n = this.clustersFor(size);
    const clusters = this.fat.pick(n);
    if (!clusters) throw this.spaceError(path, n);
    this.fat.link(clusters);
    return clusters;
  }

  /**
   * Make `path` the file whose `size` bytes are already in `clusters` (from
   * reserve + writeData), crash-safe: the chain into every FAT, flush; then
   * the directory entry (new, or one sector switching an existing file's
   * first cluster and size), flush; then the old chain freed. A crash leaves
   * the old or the new file whole and at worst lost clusters.
   */
  async commitFile(path: string, clusters: number[], size: number, opts: { mtime?: number } = {}): Promise<void> {
    await this.beforeWrite();
    const parts = splitPath(path);
    if (parts.length === 0) throw new InputError(`${path}: is the root directory`);
    const { dir, entry } = await this.walk(path, parts);
    if (entry?.isDirectory) throw new PathError('EISDIR', `${path}: is a directory, not a file`);
    const oldChain = entry ? this.fat.chain(entry.firstCluster, path) : [];
    await this.fat.flush(this.dev);
    await this.dev.flush();
    const mtime = opts.mtime ?? buildTime();
    if (entry) {
      const t = encodeFatTime(mtime);
      dir.update(entry, { ...entry.dirent, firstCluster: clusters[0] ?? 0, DIR_FileSize: size, DIR_WrtDate: t.date, DIR_WrtTime: t.time, DIR_LstAccDate: t.date, DIR_Attr: entry.dirent.DIR_Attr | ATTR_ARCHIVE });
      await this.commitDir(dir);
    } else {
      await this.addEntry(dir, parts[parts.length - 1], makeDirent(Buffer.alloc(11), ATTR_ARCHIVE, 0, clusters[0] ?? 0, size, mtime), path);
    }
    await this.dev.flush();
    if (oldChain.length) {
      this.fat.release(oldChain);
      await this.fat.flush(this.dev);
    }
    await this.writeFsInfo();
    await this.dev.flush();
  }

  /**
   * Replace an existing file's content, crash-safe: (1) new data into free
   * clusters and their chain into every FAT, flush; (2) one sector write that
   * switches the short entry's first cluster and size, flush; (3) free the old
   * chain and update FSInfo. A crash leaves the old or the new file whole and
   * at worst lost clusters.
   */
  async replaceFile(path: string, data: FileData, opts: WriteOptions = {}): Promise<void> {
    void this.fat; // throws UsageError when opened read-only, before any write
    const parts = splitPath(path);
    const { entry } = await this.walk(path, parts);
    if (!entry) throw new PathError('ENOENT', `${path}: no such file on the FAT volume`);
    if (entry.isDirectory) throw new PathError('EISDIR', `${path}: is a directory, not a file`);
    const size = this.dataSize(data, opts, path);
    const n = this.clustersFor(size);
    if (n > this.fat.freeCount) throw this.spaceError(path, n);
    const clusters = this.fat.pick(n)!;
    await this.writeData(clusters, data, size, path);
    this.fat.link(clusters);
    await this.commitFile(path, clusters, size, opts);
  }

  /** Delete a file or an empty directory. */
  async unlink(path: string): Promise<void> {
    void this.fat; // throws UsageError when opened read-only, before any write
    await this.beforeWrite();
    const parts = splitPath(path);
    if (parts.length === 0) throw new InputError(`${path}: cannot delete the root directory`);
    const { dir, entry } = await this.walk(path, parts);
    if (!entry) throw new PathError('ENOENT', `${path}: no such file or directory on the FAT volume`);
    const chain = this.fat.chain(entry.firstCluster, path);
    if (entry.isDirectory && entry.firstCluster) {
      const sub = await this.loadDir(entry.firstCluster);
      if (sub.entries.length) throw new InputError(`${path}: directory not empty`);
    }
    dir.remove(entry);
    await this.commitDir(dir);
    await this.dev.flush();
    this.fat.release(chain);
    await this.fat.flush(this.dev);
    await this.writeFsInfo();
    await this.dev.flush();
  }

  /**
   * Create a directory (and missing parents with `recursive`). One walk from
   * the root whatever the depth (no recursion, no lookup per level); the
   * missing directories are made as one crash-safe step: their clusters
   * (each holding ".", ".." and the next one's entry) and their FAT chains
   * first, then the one entry that links the top one into its existing
   * parent. A cut before that entry leaves lost clusters only.
   */
  async mkdir(path: string, opts: { recursive?: boolean; mtime?: number } = {}): Promise<void> {
    void this.fat; // throws UsageError when opened read-only, before any write
    const parts = splitPath(path);
    if (parts.length === 0) {
      if (opts.recursive) return;
      throw new InputError(`${path}: the root directory exists`);
    }
    let dir = await this.loadDir(this.geometry.rootCluster);
    let i = 0;
    for (; i < parts.length; i++) {
      const e = dir.find(parts[i]);
      if (!e) break;
      const last = i === parts.length - 1;
      if (last && !(opts.recursive && e.isDirectory)) throw new InputError(`${path}: already exists`);
      if (!e.isDirectory) throw new PathError('ENOTDIR', `${path}: "${parts.slice(0, i + 1).join('/')}" is a file, not a directory`);
      if (last) return;
      dir = await this.loadDir(e.firstCluster || this.geometry.rootCluster);
    }
    if (i < parts.length - 1 && !opts.recursive) throw new PathError('ENOENT', `${path}: no such directory "${parts.slice(0, i + 1).join('/')}" on the FAT volume`);
    await this.makeDirs(dir, parts.slice(i), opts.mtime ?? buildTime(), path);
  }

  /** The chain of new directories `names` (each inside the one before) below `dir`; see mkdir. */
  private async makeDirs(dir: DirBuffer, names: string[], mtime: number, path: string): Promise<void> {
    await this.beforeWrite();
    const cs = this.geometry.clusterSize;
    nameFor(names[0], dir.taken, path);
    // Each new directory's content: ".", ".." and the entry of the next one.
    const runsOf = names.map((_, j) => {
      if (j === names.length - 1) return undefined;
      const sn = nameFor(names[j + 1], new Set(['.          ', '..         ']), path);
      return { sn, run: encodeEntryRun(names[j + 1], makeDirent(sn.name11, ATTR_DIRECTORY, sn.ntRes, 0, 0, mtime), sn) };
    });
    const sizes = runsOf.map((r) => Math.max(1, Math.ceil((2 * DIRENT_SIZE + (r?.run.length ?? 0)) / cs)));
    const need = sizes.reduce((a, b) => a + b, 0) + this.growthFor(dir, names[0]);
    if (need > this.fat.freeCount) throw this.spaceError(path, need);
    const chains = sizes.map((n) => {
      const c = this.fat.pick(n)!;
      this.fat.link(c);
      return c;
    });
    let parent = dir.cluster === this.geometry.rootCluster ? 0 : dir.cluster;
    for (let j = 0; j < names.length; j++) {
      const buf = Buffer.alloc(sizes[j] * cs);
      dirCluster(chains[j][0], parent, mtime, 2 * DIRENT_SIZE).copy(buf, 0);
      const r = runsOf[j];
      if (r) {
        r.run.copy(buf, 2 * DIRENT_SIZE);
        const at = 2 * DIRENT_SIZE + r.run.length - DIRENT_SIZE; // the short entry
        buf.writeUInt16LE(chains[j + 1][0] >>> 16, at + 20); // DIR_FstClusHI
        buf.writeUInt16LE(chains[j + 1][0] & 0xffff, at + 26); // DIR_FstClusLO
      }
      let k = 0;
      for (const [, first, len] of runs(chains[j])) {
        await this.dev.write(this.clusterOffset(first), buf.subarray(k * cs, (k + len) * cs));
        k += len;
      }
      parent = chains[j][0];
    }
    await this.fat.flush(this.dev);
    await this.dev.flush();
    await this.addEntry(dir, names[0], makeDirent(Buffer.alloc(11), ATTR_DIRECTORY, 0, chains[0][0], 0, mtime), path);
    await this.dev.flush();
    await this.writeFsInfo();
    await this.dev.flush();
  }

  /**
   * Remove the empty directories above `path` (a file already removed),
   * deepest first, stopping at the first that is not empty or that `keep`
   * names (given the components from the root). One walk: linear in depth.
   */
  async removeEmptyParents(path: string, keep: (parts: string[]) => boolean = () => false): Promise<string[]> {
    void this.fat;
    const parts = splitPath(path).slice(0, -1);
    const dirs: DirBuffer[] = [await this.loadDir(this.geometry.rootCluster)];
    for (const p of parts) {
      const e = dirs[dirs.length - 1].find(p);
      if (!e?.isDirectory) return [];
      dirs.push(await this.loadDir(e.firstCluster || this.geometry.rootCluster));
    }
    // The highest directory whose subtree is only the empty chain down to the file's directory.
    let top = parts.length + 1;
    for (let i = parts.length; i > 0; i--) {
      if (dirs[i].entries.length > (i === parts.length ? 0 : 1) || keep(parts.slice(0, i))) break;
      top = i;
    }
    if (top > parts.length) return [];
    // One crash-safe step: the top one's entry goes (the chain below becomes unreachable), then every cluster is freed.
    await this.beforeWrite();
    const parent = dirs[top - 1];
    parent.remove(parent.find(parts[top - 1])!);
    await this.commitDir(parent);
    await this.dev.flush();
    for (let i = top; i <= parts.length; i++) this.fat.release(dirs[i].clusters);
    await this.fat.flush(this.dev);
    await this.writeFsInfo();
    await this.dev.flush();
    const removed: string[] = [];
    for (let i = parts.length; i >= top; i--) removed.push(`/${parts.slice(0, i).join('/')}`);
    return removed;
  }

  /** Rename or move; an existing file at `to` is replaced. */
  async rename(from: string, to: string): Promise<void> {
    void this.fat; // throws UsageError when opened read-only, before any write
    await this.beforeWrite();
    const fp = splitPath(from);
    const tp = splitPath(to);
    if (fp.length === 0 || tp.length === 0) throw new InputError(`${from} -> ${to}: cannot rename the root directory`);
    const src = await this.walk(from, fp);
    if (!src.entry) throw new PathError('ENOENT', `${from}: no such file or directory on the FAT volume`);
    const dst = await this.walk(to, tp);
    const sameDir = dst.dir.cluster === src.dir.cluster;
    if (src.entry.isDirectory && dst.parents.includes(src.entry.firstCluster)) {
      throw new InputError(`${from} -> ${to}: cannot move a directory into itself`);
    }
    const name = tp[tp.length - 1];
    let replaced: number[] = [];
    const target = dst.entry && !(sameDir && dst.entry.slot === src.entry.slot) ? dst.entry : undefined;
    if (target) {
      if (target.isDirectory || src.entry.isDirectory) throw new InputError(`${to}: already exists`);
      replaced = this.fat.chain(target.firstCluster, to);
    }
    const dir = sameDir ? src.dir : dst.dir;
    // Validate the new name and space before any write.
    nameFor(name, dir.taken, to);
    if (!target && !sameDir && this.growthFor(dir, name) > this.fat.freeCount) throw this.spaceError(to, this.growthFor(dir, name));
    const moved = src.entry;
    const freeBefore = this.fat.freeCount;
    if (target) dir.remove(dir.find(name)!);
    if (sameDir) dir.remove(dir.entries.find((e) => e.slot === moved.slot)!);
    await this.addEntry(dir, name, { ...moved.dirent }, to);
    if (!sameDir) {
      await this.dev.flush();
      src.dir.remove(src.dir.entries.find((e) => e.slot === moved.slot)!);
      await this.commitDir(src.dir);
      if (moved.isDirectory && moved.firstCluster) {
        // the moved directory's ".." must name its new parent (0 for the root)
        const sub = await this.loadDir(moved.firstCluster);
        const dotdot = sub.buf.subarray(DIRENT_SIZE, 2 * DIRENT_SIZE);
        const parent = dir.cluster === this.geometry.rootCluster ? 0 : dir.cluster;
        dotdot.writeUInt16LE(parent >>> 16, 20);
        dotdot.writeUInt16LE(parent & 0xffff, 26);
        sub.dirtySectors.add(0);
        await this.commitDir(sub);
      }
    }
    await this.dev.flush();
    if (replaced.length) {
      this.fat.release(replaced);
      await this.fat.flush(this.dev);
    }
    // Also without a replaced file: a directory that grew by a cluster changed the free count.
    if (replaced.length || this.fat.freeCount !== freeBefore) {
      await this.writeFsInfo();
      await this.dev.flush();
    }
  }

  /**
   * Make every FAT copy equal to the active one (the one this volume reads):
   * a write cut between copies (kill -9, power loss) leaves them different,
   * and fsck.fat reports "FATs differ" until something rewrites them. The
   * active copy is written first by every flush, so it is the newest, and
   * either copy is consistent with the directories (a chain reaches the
   * directories only after both copies have it). Only differing sectors are
   * written; a cut here leaves work for the next run. Returns their number.
   * Runs once per volume, before its first edit; nothing when mirroring is
   * off (BPB_ExtFlags bit 7: the other copies are not kept).
   */
  async repairFatCopies(): Promise<number> {
    void this.fat;
    if (this.fatsChecked) return 0;
    this.fatsChecked = true;
    const g = this.geometry;
    if (g.numFats < 2 || (this.bootSector.BPB_ExtFlags & 0x80) !== 0) return 0;
    const active = 0;
    const bps = g.bytesPerSector;
    const chunk = Math.max(bps, Math.floor(STAGE / bps) * bps);
    const a = Buffer.alloc(chunk);
    const b = Buffer.alloc(chunk);
    let fixed = 0;
    for (let off = 0; off < g.fatBytes; off += chunk) {
      const len = Math.min(chunk, g.fatBytes - off);
      await this.dev.read(g.fatOffset + active * g.fatBytes + off, a.subarray(0, len));
      for (let copy = 0; copy < g.numFats; copy++) {
        if (copy === active) continue;
        const base = g.fatOffset + copy * g.fatBytes + off;
        await this.dev.read(base, b.subarray(0, len));
        for (let s = 0; s < len; s += bps) {
          const sa = a.subarray(s, s + bps);
          if (sa.equals(b.subarray(s, s + bps))) continue;
          await this.dev.write(base + s, sa);
          fixed++;
        }
      }
    }
    if (fixed) await this.dev.flush();
    return fixed;
  }

  private fatsChecked = false;

  private async beforeWrite(): Promise<void> {
    if (!this.fatsChecked) await this.repairFatCopies();
  }

  async flush(): Promise<void> {
    if (this.table instanceof FatTable && this.table.hasChanges) await this.fat.flush(this.dev);
    await this.dev.flush();
  }
}

function isSourceFile(d: FileData | SourceFile): d is SourceFile {
  return !(d instanceof Uint8Array) && typeof (d as SourceFile).read === 'function' && !(Symbol.asyncIterator in d);
}

/** A fresh directory cluster holding "." and "..". */
export function dirCluster(self: number, parent: number, mtime: number, clusterSize: number): Buffer {
  const buf = Buffer.alloc(clusterSize);
  encodeDirent(makeDirent(Buffer.from('.          ', 'latin1'), ATTR_DIRECTORY, 0, self, 0, mtime), buf, 0);
  encodeDirent(makeDirent(Buffer.from('..         ', 'latin1'), ATTR_DIRECTORY, 0, parent, 0, mtime), buf, DIRENT_SIZE);
  return buf;
}

function strip(e: SlotEntry | undefined): Fat32Entry | undefined {
  if (!e) return undefined;
  const { name, shortName, isDirectory, size, firstCluster, mtime, attr } = e;
  return { name, shortName, isDirectory, size, firstCluster, mtime, attr };
}

/** Runs of consecutive clusters: [index in list, first cluster, length], each at most `max` long. */
export function* runs(clusters: number[], max = Infinity): Generator<[number, number, number]> {
  for (let i = 0; i < clusters.length; ) {
    let j = i + 1;
    while (j < clusters.length && clusters[j] === clusters[j - 1] + 1 && j - i < max) j++;
    yield [i, clusters[i], j - i];
    i = j;
  }
}
