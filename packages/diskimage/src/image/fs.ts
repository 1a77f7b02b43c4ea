/**
 * One small read-only interface over the filesystems a psyopsOS disk holds
 * (FAT32 and ext4), for `diskimg ls` / `cat` / `show`. Paths are named
 * "LABEL:/path" in errors, which are one-line InputErrors for bad paths and
 * the readers' FormatErrors for damaged structures.
 */
import { FormatError, InputError, NotFoundError, PathError, UnsupportedFormatError, type PathErrorCode } from '@diskimg/partitions/internal';
import { openExt4, Ext4FileDevice, type Ext4Reader, type Ext4Stat } from '../ext4/reader.js';
import type { Device } from '../device/device.js';
import { openSquashfs, SquashfsFileDevice, type SquashfsReader, type SquashfsStat } from '../squashfs/reader.js';
import { isSquashfs } from '../squashfs/superblock.js';
import type { SquashfsInode } from '../squashfs/inode.js';
import { Fat32Volume } from '../fat32/volume.js';
import type { Fat32Entry } from '../fat32/dir.js';
import { findPartition, openDisk, type Disk, type DiskPartition } from './disk.js';
import { probePartition, probeLabel, type FsProbe } from './probe.js';
import { nameFromBytes, nameFromUtf16, nameIsEscaped, nameToBytes, nameToUtf16 } from './names.js';

/** The kinds of `FsEntry`. */
export type FsEntryType = 'file' | 'directory' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket' | 'unknown';

/** A file, directory or link in a filesystem read by `FsReader`. */
export interface FsEntry {
  /**
   * The name: exact when it is UTF-8 without a backslash; otherwise with bytes
   * that are not UTF-8 as `\xHH` and a backslash as `\\` (image/names.ts), a
   * form paths accept back, and the exact bytes in `nameBase64`.
   */
  name: string;
  /** The name's bytes (FAT: WTF-8 of the long name), base64, when `name` holds escapes. */
  nameBase64?: string;
  type: FsEntryType;
  size: number;
  /** st_mode: type and permission bits (FAT: synthesised, 0755 directories, 0644 files, 0444 read-only). */
  mode: number;
  /** Last modification, seconds since the epoch (UTC). */
  mtime: number;
  uid: number;
  gid: number;
  /** Hard link count (FAT: 1). */
  links: number;
  /** Symbolic link target, shown as `name` is (bytes that are not UTF-8 as `\xHH`, `\` as `\\`). */
  target?: string;
  /** The target's bytes, base64, when `target` holds escapes (as `nameBase64`). */
  targetBase64?: string;
  /** Device number of a character or block device (ext4, SquashFS). */
  rdev?: { major: number; minor: number };
  /** Extended attributes by full name, values base64 (ext4 only, when asked for: readdir/stat with { xattrs: true }). */
  xattrs?: Record<string, string>;
}

/** Options of `FsReader.readdir` and `stat` (extended attributes). */
export interface FsReadOptions {
  /** Also return each entry's extended attributes (and POSIX ACLs, as system.posix_acl_*). */
  xattrs?: boolean;
}

/** Read-only access to a FAT32 or ext4 filesystem in a partition: list, stat and stream files. */
export interface FsReader {
  type: 'fat32' | 'ext4' | 'squashfs';
  /** What errors call the filesystem: its label, else the GPT name. */
  name: string;
  readdir(path: string, opts?: FsReadOptions): Promise<FsEntry[]>;
  /** stat, following symbolic links. */
  stat(path: string, opts?: FsReadOptions): Promise<FsEntry>;
  /** stat of the path itself: a symbolic link is described, not followed (as `ls -d`). */
  lstat(path: string, opts?: FsReadOptions): Promise<FsEntry>;
  /** A regular file's bytes, streamed in chunks of at most 1 MiB. */
  readFile(path: string): AsyncIterable<Buffer>;
  /** A small regular file in memory; an InputError when it is larger than maxBytes. */
  readFileBuffer(path: string, maxBytes: number): Promise<Buffer>;
  /** A read-only Device over a regular file (random access, nothing copied out): ext4 and SquashFS. */
  openFile?(path: string): Promise<Device>;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const FAT_ATTR_READ_ONLY = 0x01;

/** "/a/b" for any of "a/b", "/a//b/", "" (the root is "/"). */
export function normalizePath(path: string): string {
  return `/${path.split('/').filter((p) => p !== '' && p !== '.').join('/')}`;
}

const baseName = (path: string) => normalizePath(path).split('/').pop() ?? '';

/** "\\xHH" escapes in a shown path back to the UTF-16 names the FAT volume compares. */
const fatPath = (p: string) => (p.includes('\\') ? p.split('/').map(nameToUtf16).join('/') : p);

/** The exact bytes beside an escaped name. */
function withRawName(e: FsEntry): FsEntry {
  if (nameIsEscaped(e.name)) e.nameBase64 = nameToBytes(e.name).toString('base64');
  return e;
}

/** A symbolic link's target, with its exact bytes beside it when the shown form holds escapes. */
function withTarget(e: FsEntry, target: string | undefined): FsEntry {
  if (target === undefined) return e;
  e.target = target;
  if (nameIsEscaped(target)) e.targetBase64 = nameToBytes(target).toString('base64');
  return e;
}

function fatEntry(e: Fat32Entry, name = nameFromUtf16(e.name)): FsEntry {
  const ro = (e.attr & FAT_ATTR_READ_ONLY) !== 0;
  const perm = e.isDirectory ? (ro ? 0o555 : 0o755) : ro ? 0o444 : 0o644;
  return withRawName({
    name,
    type: e.isDirectory ? 'directory' : 'file',
    size: e.isDirectory ? 0 : e.size,
    mode: (e.isDirectory ? S_IFDIR : S_IFREG) | perm,
    mtime: e.mtime,
    uid: 0,
    gid: 0,
    links: 1,
  });
}

class FatReader implements FsReader {
  readonly type = 'fat32' as const;
  constructor(
    private readonly vol: Fat32Volume,
    readonly name: string,
  ) {}

  private async need(path: string): Promise<Fat32Entry> {
    const e = await this.vol.lookup(fatPath(normalizePath(path)));
    if (!e) throw new PathError('ENOENT', `${this.name}:${normalizePath(path)}: no such file or directory`);
    return e;
  }

  async readdir(path: string): Promise<FsEntry[]> {
    const p = normalizePath(path);
    const e = await this.need(p);
    if (!e.isDirectory) throw new PathError('ENOTDIR', `${this.name}:${p}: not a directory`);
    return (await this.vol.readdir(fatPath(p))).map((x) => fatEntry(x));
  }

  async stat(path: string): Promise<FsEntry> {
    return fatEntry(await this.need(path), baseName(path));
  }

  /** FAT has no symbolic links: the same as stat. */
  lstat(path: string): Promise<FsEntry> {
    return this.stat(path);
  }

  async *readFile(path: string): AsyncGenerator<Buffer> {
    const p = normalizePath(path);
    const e = await this.need(p);
    if (e.isDirectory) throw new PathError('EISDIR', `${this.name}:${p}: is a directory`);
    yield* this.vol.readFile(fatPath(p));
  }

  async readFileBuffer(path: string, maxBytes: number): Promise<Buffer> {
    return await bufferOf(this, path, maxBytes);
  }
}

function b64(m: Map<string, Buffer>): Record<string, string> {
  const o: Record<string, string> = {};
  for (const [k, v] of [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) o[k] = v.toString('base64');
  return o;
}

function ext4Entry(s: Ext4Stat, name: string, target?: string): FsEntry {
  const e: FsEntry = withRawName({ name, type: s.type, size: s.size, mode: s.mode, mtime: s.mtime, uid: s.uid, gid: s.gid, links: s.links });
  withTarget(e, target);
  if (s.rdev) e.rdev = { ...s.rdev };
  return e;
}

/** The ext4 reader's words for each path error, restated as "LABEL:/path: …". */
const PATH_REASONS: Record<PathErrorCode, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  ENOTREG: 'not a regular file',
  ELOOP: 'too many levels of symbolic links',
};

class Ext4FsReader implements FsReader {
  readonly type = 'ext4' as const;
  constructor(
    private readonly fs: Ext4Reader,
    readonly name: string,
  ) {}

  /** Run a path operation, restating the reader's path errors as "LABEL:/path: …". */
  private async at<T>(path: string, op: (p: string) => Promise<T>): Promise<T> {
    const p = normalizePath(path);
    try {
      return await op(p);
    } catch (e) {
      // Restate the reader's path errors with the partition's name, keeping the code;
      // damage names the path too (the reader only knows inode numbers).
      if (e instanceof PathError) throw new PathError(e.code, `${this.name}:${p}: ${PATH_REASONS[e.code]}`);
      throw withPath(e, `${this.name}:${p}`);
    }
  }

  async readdir(path: string, opts: FsReadOptions = {}): Promise<FsEntry[]> {
    return await this.at(path, async (p) => {
      const out: FsEntry[] = [];
      for (const d of await this.fs.readdir(p)) {
        if (d.name === '.' || d.name === '..') continue;
        const i = await this.fs.inode(d.ino);
        const st = this.fs.statInode(d.ino, i);
        const target = st.type === 'symlink' ? nameFromBytes(await this.fs.readlinkInode(d.ino, i)) : undefined;
        const e = ext4Entry(st, d.name, target);
        if (opts.xattrs) e.xattrs = b64(await this.fs.xattrsInode(d.ino, i));
        out.push(e);
      }
      return out;
    });
  }

  async stat(path: string, opts: FsReadOptions = {}): Promise<FsEntry> {
    return await this.at(path, async (p) => {
      const e = ext4Entry(await this.fs.stat(p), baseName(p));
      if (opts.xattrs) e.xattrs = b64(await this.fs.xattrsInode(...(await this.inodeOf(p))));
      return e;
    });
  }

  async lstat(path: string, opts: FsReadOptions = {}): Promise<FsEntry> {
    return await this.at(path, async (p) => {
      const [ino, i] = await this.inodeOf(p, false);
      const st = this.fs.statInode(ino, i);
      const e = ext4Entry(st, baseName(p), st.type === 'symlink' ? nameFromBytes(await this.fs.readlinkInode(ino, i)) : undefined);
      if (opts.xattrs) e.xattrs = b64(await this.fs.xattrsInode(ino, i));
      return e;
    });
  }

  private async inodeOf(p: string, follow = true): Promise<[number, Awaited<ReturnType<Ext4Reader['inode']>>]> {
    const ino = await this.fs.lookup(p, follow);
    return [ino, await this.fs.inode(ino)];
  }

  async *readFile(path: string): AsyncGenerator<Buffer> {
    const p = normalizePath(path);
    const st = await this.stat(p);
    if (st.type === 'directory') throw new PathError('EISDIR', `${this.name}:${p}: is a directory`);
    if (st.type !== 'file') throw new PathError('ENOTREG', `${this.name}:${p}: not a regular file (${st.type})`);
    yield* chunksAt(this.fs.readFile(p), (next) => this.at(p, next));
  }

  async readFileBuffer(path: string, maxBytes: number): Promise<Buffer> {
    return await bufferOf(this, path, maxBytes);
  }

  async openFile(path: string): Promise<Device> {
    return await this.at(path, async (p) => {
      const [ino, i] = await this.inodeOf(p);
      if (this.fs.statInode(ino, i).type !== 'file') throw new PathError('ENOTREG', `${this.name}:${p}: not a regular file`);
      return new Ext4FileDevice(this.fs, ino, i, `${this.name}:${p}`);
    });
  }
}

function squashfsEntry(s: SquashfsStat, name: string, target?: string): FsEntry {
  const e: FsEntry = withRawName({ name, type: s.type, size: s.size, mode: s.mode, mtime: s.mtime, uid: s.uid, gid: s.gid, links: s.links });
  withTarget(e, target);
  if (s.rdev) e.rdev = { ...s.rdev };
  return e;
}

/**
 * A SquashFS image (the slot's /squashfs, /modloop) as an FsReader. `name` is
 * where it lives ("psyopsOS-A:/squashfs!"), so errors read
 * "psyopsOS-A:/squashfs!/etc/x: no such file or directory".
 */
export class SquashfsFsReader implements FsReader {
  readonly type = 'squashfs' as const;
  constructor(
    readonly fs: SquashfsReader,
    readonly name: string,
  ) {}

  private async at<T>(path: string, op: (p: string) => Promise<T>): Promise<T> {
    const p = normalizePath(path);
    try {
      return await op(p);
    } catch (e) {
      if (e instanceof PathError) throw new PathError(e.code, `${this.name}${p}: ${PATH_REASONS[e.code]}`);
      throw withPath(e, `${this.name}${p}`, this.name); // the SquashFS reader's own errors name the image and path
    }
  }

  private async entry(i: SquashfsInode, name: string, opts: FsReadOptions): Promise<FsEntry> {
    const e = squashfsEntry(await this.fs.statInode(i), name, i.symlink && nameFromBytes(i.symlink));
    if (opts.xattrs) e.xattrs = b64(await this.fs.xattrsInode(i));
    return e;
  }

  async readdir(path: string, opts: FsReadOptions = {}): Promise<FsEntry[]> {
    return await this.at(path, async (p) => {
      const out: FsEntry[] = [];
      for (const d of await this.fs.readdir(p)) out.push(await this.entry(d.inode, d.name, opts));
      return out;
    });
  }

  async stat(path: string, opts: FsReadOptions = {}): Promise<FsEntry> {
    return await this.at(path, async (p) => {
      const i = await this.fs.lookup(p, true);
      const e = await this.entry(i, baseName(p), opts);
      delete e.target;
      delete e.targetBase64;
      return e;
    });
  }

  async lstat(path: string, opts: FsReadOptions = {}): Promise<FsEntry> {
    return await this.at(path, async (p) => await this.entry(await this.fs.lookup(p, false), baseName(p), opts));
  }

  async *readFile(path: string): AsyncGenerator<Buffer> {
    const p = normalizePath(path);
    yield* chunksAt(this.fs.readFile(p), (next) => this.at(p, next));
  }

  async readFileBuffer(path: string, maxBytes: number): Promise<Buffer> {
    return await bufferOf(this, path, maxBytes);
  }

  async openFile(path: string): Promise<Device> {
    return await this.at(path, async (p) => {
      const i = await this.fs.lookup(p, true);
      if (i.type !== 'file') throw new PathError('ENOTREG', `${this.name}${p}: not a regular file`);
      return new SquashfsFileDevice(this.fs, i, `${this.name}${p}`);
    });
  }
}

/** Does `path` name a regular file that starts with the SquashFS magic? */
export async function isSquashfsFile(fs: FsReader, path: string): Promise<boolean> {
  if (!fs.openFile) return false;
  let st: FsEntry;
  try {
    st = await fs.stat(path);
  } catch (e) {
    if (e instanceof PathError) return false;
    throw e;
  }
  if (st.type !== 'file' || st.size < 96) return false;
  const dev = await fs.openFile(path);
  const head = Buffer.alloc(4);
  await dev.read(0, head);
  return isSquashfs(head);
}

/** Open the SquashFS image at `path` inside `fs` (read through fs.openFile: nothing is copied out). */
export async function openSquashfsIn(fs: FsReader, path: string, shownAs = `${fs.name}:${normalizePath(path)}`): Promise<SquashfsFsReader> {
  if (!fs.openFile) throw new InputError(`${shownAs}: a ${fs.type} filesystem cannot hold an image we read in place`);
  const dev = await fs.openFile(path);
  const name = `${shownAs}!`;
  return new SquashfsFsReader(await openSquashfs(dev, { name }), name);
}

/** Separator between the path of a SquashFS image file and a path inside it. */
export const NESTED_SEPARATOR = '!';

/**
 * Resolve a path that may reach into SquashFS images: "/squashfs!/etc/os-release".
 * Contract (see docs/DESIGN.md): a path that exists as written is taken as
 * written (so a literal "!" in a name is always reachable); otherwise it is
 * split at the first "!" whose left part is a regular file starting with the
 * SquashFS magic, and the right part is resolved inside that image, again
 * by this rule (images inside images). Anything else is the plain path, and
 * its error is the filesystem's own ("no such file or directory").
 */
export async function resolveNested(fs: FsReader, path: string, shown: string): Promise<{ fs: FsReader; path: string }> {
  const p = normalizePath(path);
  if (!p.includes(NESTED_SEPARATOR)) return { fs, path: p };
  try {
    await fs.lstat(p);
    return { fs, path: p };
  } catch (e) {
    if (!(e instanceof PathError)) throw e;
  }
  for (let k = p.indexOf(NESTED_SEPARATOR); k >= 0; k = p.indexOf(NESTED_SEPARATOR, k + 1)) {
    const outer = normalizePath(p.slice(0, k));
    if (outer === '/' || !(await isSquashfsFile(fs, outer))) continue;
    const inner = await openSquashfsIn(fs, outer, `${shown}${outer}`);
    return await resolveNested(inner, p.slice(k + 1), `${shown}${outer}!`);
  }
  return { fs, path: p };
}

/** A FormatError restated with the path it was met on in front ("rd:/a/b: ext4 inode 17: …"); others as they are. */
function withPath(e: unknown, where: string, named = where): unknown {
  if (!(e instanceof FormatError) || e.message.startsWith(named)) return e;
  const Err = e instanceof UnsupportedFormatError ? UnsupportedFormatError : FormatError;
  return new Err(`${where}: ${e.structure}`, e.message.slice(e.structure.length + 2));
}

/** Yields `chunks`, each step run through `at`, so a path error while reading names the path as the reader does. */
async function* chunksAt(chunks: AsyncIterable<Buffer>, at: (next: () => Promise<IteratorResult<Buffer>>) => Promise<IteratorResult<Buffer>>): AsyncGenerator<Buffer> {
  const it = chunks[Symbol.asyncIterator]();
  for (;;) {
    const r = await at(() => it.next());
    if (r.done) return;
    yield r.value;
  }
}

async function bufferOf(r: FsReader, path: string, maxBytes: number): Promise<Buffer> {
  const p = normalizePath(path);
  const st = await r.stat(p);
  if (st.type === 'file' && st.size > maxBytes) throw new InputError(`${r.name}:${p}: ${st.size} bytes, larger than the ${maxBytes} expected`);
  const parts: Buffer[] = [];
  let n = 0;
  for await (const b of r.readFile(p)) {
    n += b.length;
    if (n > maxBytes) throw new InputError(`${r.name}:${p}: larger than the ${maxBytes} bytes expected`);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

/** Open the filesystem of a partition for reading. Throws a one-line error when it holds none we can read. */
export async function openFilesystem(p: DiskPartition, probe?: FsProbe): Promise<FsReader> {
  const pr = probe ?? (await probePartition(p));
  const name = pr.label || p.name || `partition ${p.number}`;
  if (pr.type === 'ext4') return new Ext4FsReader(await openExt4(p.region(), { name }), name);
  if (pr.type === 'fat32') return new FatReader(await Fat32Volume.open(p.region()), name);
  if (pr.type === 'incomplete') {
    throw new InputError(`${name} (partition ${p.number}): incomplete: a slot write was interrupted (or is running); write it again with "diskimg update"`);
  }
  if (pr.error) throw new FormatError(`${name}`, pr.error);
  throw new InputError(`${name} (partition ${p.number}): no FAT32 or ext4 filesystem found (unformatted or damaged)`);
}

/**
 * Find a partition by filesystem label (exact), then GPT name, then either of
 * them ignoring case (when that names one partition), then by number.
 * An unknown label is a NotFoundError listing the labels present.
 */
export async function findFilesystemPartition(disk: Disk, label: string): Promise<DiskPartition> {
  try {
    return await findPartition(disk, label, probeLabel);
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
  }
  const probes = await Promise.all(disk.partitions.map((p) => probePartition(p)));
  // Then ignoring case, on every filesystem alike (FAT labels are upper case, but users type them in
  // any case), as long as only one partition answers; then a partition number ("3").
  const fold = (x: string | undefined) => x?.toLowerCase();
  const hits = disk.partitions.filter((p, k) => fold(probes[k]!.label) === fold(label) || fold(p.name) === fold(label));
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) {
    throw new InputError(`${disk.path ?? 'disk'}: "${label}" matches partitions ${hits.map((p) => p.number).join(' and ')} ignoring case; write the label exactly`);
  }
  if (/^\d+$/.test(label)) {
    const byNumber = disk.partitions.find((p) => p.number === Number(label));
    if (byNumber) return byNumber;
  }
  const names = new Set<string>();
  disk.partitions.forEach((p, k) => {
    if (probes[k]!.label) names.add(probes[k]!.label!);
    if (p.name) names.add(p.name);
  });
  throw new NotFoundError(`${disk.path ?? 'disk'}: no partition labelled "${label}" (labels: ${[...names].join(', ') || 'none'})`);
}

/** Parse "LABEL:/path" (path defaults to "/"). */
export function parseFsSpec(spec: string): { label: string; path: string } {
  const c = spec.indexOf(':');
  if (c <= 0) throw new InputError(`"${spec}": expected LABEL:/path, e.g. psyopsOS-A:/ or PSYOPSOSEFI:/grub/grub.cfg`);
  return { label: spec.slice(0, c), path: normalizePath(spec.slice(c + 1)) };
}

/**
 * Open DISK and the filesystem named by "LABEL:/path", run `fn` on it, close
 * the disk (the CLI's ls and cat). A path reaching into a SquashFS image
 * ("LABEL:/squashfs!/etc", see resolveNested) gets that image's reader and
 * the path inside it; `shown` is the whole path as given (normalized).
 */
export async function withFilesystem<T>(diskPath: string, spec: string, fn: (fs: FsReader, path: string, label: string, shown: string) => Promise<T>): Promise<T> {
  const { label, path } = parseFsSpec(spec);
  const disk = await openDisk(diskPath);
  try {
    const outer = await openFilesystem(await findFilesystemPartition(disk, label));
    const r = await resolveNested(outer, path, `${label}:`);
    return await fn(r.fs, r.path, label, path);
  } finally {
    await disk.close();
  }
}
