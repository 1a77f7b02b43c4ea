import { InputError } from '@diskimg/partitions/internal';

/**
 * One entry of an input tree (tar stream or directory), in the order the input
 * gives them. Filesystem writers consume these; they never see tar or fs APIs.
 */
export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/** One entry of a file tree (from a tar stream or a directory): path, type, mode, owner, times, xattrs and, for files, the bytes to stream. */
export interface TreeEntry {
  /** Normalized relative path: no leading "/" or "./", no "." or ".." parts, "" is the root itself. */
  path: string;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky (mask 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /**
   * Seconds since the epoch. When the matching `*Ns` field is set, this is a
   * whole number (floor) and the nanoseconds are exact there; otherwise it may
   * be fractional (a double keeps only about microseconds at today's dates).
   */
  mtime: number;
  atime?: number;
  ctime?: number;
  /** Nanoseconds 0..999999999 of mtime / atime / ctime (pax records, directory stat). */
  mtimeNs?: number;
  atimeNs?: number;
  ctimeNs?: number;
  /** Owner and group names (pax uname/gname, ustar fields), kept for information only: uid/gid are authoritative. */
  uname?: string;
  gname?: string;
  /**
   * Extended attributes by full name ("user.x", "security.capability",
   * "trusted.x"), values as Linux's getxattr returns them: POSIX ACLs as
   * "system.posix_acl_access" / "system.posix_acl_default" in the
   * posix_acl_xattr format (version 2, 8-byte entries).
   */
  xattrs?: Map<string, Buffer>;
  /** Byte length of a regular file's data. */
  size: number;
  /** Symlink target (verbatim) or, for a hard link, the normalized path it links to. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /**
   * A regular file's data. It must be consumed (or `drain`ed) before the next
   * entry is requested: sources stream and never buffer whole files.
   */
  body?: AsyncIterable<Buffer>;
  /**
   * Sparse files (tar GNU sparse) only: the content as data chunks and holes
   * (a number: that many zero bytes), for writers that keep holes; it reads
   * the same stored bytes as `body`, so use one or the other. `storedSize`
   * bounds the data bytes (what the file can need on disk).
   */
  sparse?: { storedSize: number; runs: () => AsyncIterable<Buffer | number> };
  /**
   * Directory sources only: the file opened for positional reads, so a writer
   * that copies whole files can read straight into its own buffers instead
   * of iterating `body` (no chunk buffers, one copy less). Use one or the
   * other: `body` opens nothing until iterated. The caller closes the handle,
   * reads exactly `size` bytes and fails when the file is shorter or longer.
   */
  open?: () => Promise<SourceFile>;
}

/** A host file read by position (node's FileHandle has this shape). */
export interface SourceFile {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/**
 * Normalize an input path to the form of TreeEntry.path. Throws InputError for
 * paths that would escape the root ("..", absolute paths) so no writer ever has
 * to think about it.
 */
export function normalizeEntryPath(raw: string, inputName: string): string {
  if (raw.startsWith('/')) {
    throw new InputError(`${inputName}: entry "${raw}" is an absolute path; make the archive relative (tar -C DIR .)`);
  }
  const parts: string[] = [];
  for (const p of raw.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw new InputError(`${inputName}: entry "${raw}" contains "..", which would escape the root; rebuild the archive without it`);
    if (p.includes('\0')) throw new InputError(`${inputName}: entry "${raw}" contains a NUL byte`);
    parts.push(p);
  }
  return parts.join('/');
}

/** Consume and discard a body (used when a writer skips a file). */
export async function drain(body: AsyncIterable<Buffer> | undefined): Promise<void> {
  if (!body) return;
  for await (const _ of body) {
    /* discard */
  }
}

/** Data chunks and holes (numbers of zero bytes) → plain chunks, holes as zeros: for writers without holes (FAT), whose size checks bound the expansion. */
export async function* expandHoles(runs: AsyncIterable<Buffer | number>): AsyncGenerator<Buffer> {
  for await (const r of runs) {
    if (typeof r !== 'number') yield r;
    else for (let n = r; n > 0; n -= 1 << 20) yield Buffer.alloc(Math.min(n, 1 << 20)); // fresh pieces: consumers may keep them
  }
}
