import { InputError } from '@diskimg/partitions/internal';
import { checkLongName } from '../fat32/shortname.js';
import type { TreeEntry } from './tree.js';

/**
 * The one input-validation layer between a tree source (tar, directory) and
 * a filesystem writer: every writer (createExt4, populateFat32, update-esp)
 * passes its entries through `validateTree`, so what one accepts the others
 * accept too. It refuses, with one line naming the entry:
 * - paths that are not normalized (empty, ".", ".." components, NUL, a
 *   leading "/"), longer than PATH_MAX - 1 bytes, or with a name the target
 *   cannot hold (ext4: 255 bytes; FAT: its long-name rules);
 * - symlink targets that are empty, hold NUL, or are longer than PATH_MAX - 1;
 * - the same path twice (a directory may repeat: the later attributes win),
 *   on FAT also two case variants of one path; a path below a non-directory;
 *   a hard link to something not earlier in the input or to a directory;
 * - sizes, owners and device numbers the target cannot store.
 * Memory: one small node per path component (a trie), never a full path per
 * entry; work per entry is linear in its path's length.
 */

export type TargetFs = 'ext4' | 'fat32';

/** Options of `validateTree` / `TreeValidator`. */
export interface ValidateOptions {
  fs: TargetFs;
  /** Names the input in error messages (the tar file, the directory). */
  inputName: string;
  /** A regular file larger than this is refused before its body is read (e.g. the FAT volume's size). */
  maxFileBytes?: number;
  /** The declared sizes of all files together may not exceed this. */
  maxTotalBytes?: number;
  /** Directories the writer creates itself (ext4: lost+found). */
  builtinDirs?: string[];
}

/** PATH_MAX (4096) less the terminating NUL: the longest path a Linux program can open in one call. */
export const MAX_PATH_BYTES = 4095;
/** ext4's name_len is one byte. */
export const EXT4_MAX_NAME_BYTES = 255;
/** Extents address 2^32 blocks of 4 KiB. */
export const EXT4_MAX_FILE_BYTES = 2 ** 44 - 4096;
export const FAT32_MAX_FILE_BYTES = 0xffffffff;
/** Linux dev_t: 12-bit major, 20-bit minor (what ext4's new encoding holds). */
const MAX_MAJOR = 0xfff;
const MAX_MINOR = 0xfffff;

interface Node {
  /** The name as the input spelled it (FAT keys are upper-cased). */
  name: string;
  dir: boolean;
  kids?: Map<string, Node>;
}

/** Checks entries one by one, remembering the tree seen so far. */
export class TreeValidator {
  private readonly root: Node = { name: '', dir: true, kids: new Map() };
  private total = 0;

  constructor(private readonly o: ValidateOptions) {
    for (const d of o.builtinDirs ?? []) {
      const { parent, name } = this.walk(d, true)!;
      parent.kids!.set(this.key(name), { name, dir: true, kids: new Map() });
    }
  }

  private key(name: string): string {
    return this.o.fs === 'fat32' ? name.toUpperCase() : name;
  }

  private fail(path: string, why: string): never {
    throw new InputError(`${this.o.inputName}: "${shorten(path) || '/'}" ${why}`);
  }

  /** The components of a normalized path, each checked for the target. */
  private parts(path: string, what: string): string[] {
    if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES) {
      this.fail(path, `${what} is ${Buffer.byteLength(path, 'utf8')} bytes long; at most ${MAX_PATH_BYTES} (PATH_MAX) are accepted, shorten it`);
    }
    const parts = path.split('/');
    for (const p of parts) {
      if (p === '' || p === '.' || p === '..') this.fail(path, `${what} has an empty, "." or ".." component; rebuild the archive with plain relative paths`);
      if (p.includes('\0')) this.fail(path, `${what} contains a NUL byte`);
      if (this.o.fs === 'ext4') {
        const n = Buffer.byteLength(p, 'utf8');
        if (n > EXT4_MAX_NAME_BYTES) this.fail(path, `has a name of ${n} bytes; ext4 allows at most ${EXT4_MAX_NAME_BYTES}, shorten it`);
      } else checkLongName(p, `${this.o.inputName}: "${shorten(path)}"`);
    }
    return parts;
  }

  /** Find (create: implicit parent directories, as tar allows) the node at `path`'s parent; returns it and the last name. */
  private walk(path: string, create: boolean): { parent: Node; name: string } | undefined {
    const parts = path.split('/');
    let n = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      const k = this.key(parts[i]!);
      let c = n.kids!.get(k);
      if (!c) {
        if (!create) return undefined;
        c = { name: parts[i]!, dir: true, kids: new Map() };
        n.kids!.set(k, c);
      }
      if (!c.dir) this.fail(path, `is below "${parts.slice(0, i + 1).join('/')}", which is not a directory`);
      n = c;
    }
    return { parent: n, name: parts[parts.length - 1]! };
  }

  /** Throw InputError if the target filesystem must not receive `e` after the entries seen so far. */
  check(e: TreeEntry): void {
    const path = e.path;
    const isDir = e.type === 'directory';
    if (typeof path !== 'string') this.fail(String(path), 'has no path');
    if (path.startsWith('/')) this.fail(path, 'is an absolute path; make the archive relative (tar -C DIR .)');
    this.checkNumbers(e);
    if (path === '') {
      if (!isDir) this.fail(path, `is the root but a ${e.type}, not a directory`);
      return;
    }
    this.parts(path, 'path');
    if (e.type === 'symlink') {
      const t = e.linkname ?? '';
      const n = Buffer.byteLength(t, 'utf8');
      if (n === 0) this.fail(path, 'is a symlink with an empty target');
      if (t.includes('\0')) this.fail(path, 'is a symlink whose target contains a NUL byte');
      if (n > MAX_PATH_BYTES) this.fail(path, `is a symlink whose target is ${n} bytes; at most ${MAX_PATH_BYTES} (PATH_MAX) are accepted`);
    }
    if (e.type === 'hardlink') {
      const t = e.linkname ?? '';
      if (t === '' || t.startsWith('/')) this.fail(path, `is a hard link to "${t}", which is not a path inside the input`);
      this.parts(t, 'hard link target');
      const at = this.walk(t, false);
      const target = at?.parent.kids!.get(this.key(at.name));
      if (!target) this.fail(path, `is a hard link to "${t}", which is not earlier in the input`);
      if (target.dir) this.fail(path, `is a hard link to "${t}", a directory`);
    }
    const { parent, name } = this.walk(path, true)!;
    const k = this.key(name);
    const old = parent.kids!.get(k);
    if (old) {
      if (old.dir && isDir) return; // a directory listed again (or after an implicit parent): its attributes win
      if (old.dir !== isDir) this.fail(path, 'is both a file and a directory in the input; remove one');
      if (old.name !== name) this.fail(path, `clashes with "${old.name}"; FAT names are case-insensitive, rename one`);
      this.fail(path, 'appears twice in the input; remove the duplicate');
    }
    parent.kids!.set(k, isDir ? { name, dir: true, kids: new Map() } : { name, dir: false });
  }

  private checkNumbers(e: TreeEntry): void {
    const p = e.path;
    const u32 = (v: number, what: string) => {
      if (!Number.isSafeInteger(v) || v < 0 || v > 0xffffffff) this.fail(p, `has ${what} ${v}; it must be 0..4294967295`);
    };
    u32(e.uid, 'uid');
    u32(e.gid, 'gid');
    if (!Number.isInteger(e.mode) || e.mode < 0) this.fail(p, `has mode ${e.mode}`);
    for (const k of ['mtime', 'atime', 'ctime'] as const) {
      const v = e[k];
      if (v !== undefined && !Number.isFinite(v)) this.fail(p, `has ${k} ${v}`);
    }
    if (e.type === 'file') {
      const max = Math.min(this.o.fs === 'ext4' ? EXT4_MAX_FILE_BYTES : FAT32_MAX_FILE_BYTES, this.o.maxFileBytes ?? Infinity);
      if (!Number.isSafeInteger(e.size) || e.size < 0) this.fail(p, `has size ${e.size}; the archive is damaged`);
      if (e.size > max) this.fail(p, `is ${e.size} bytes; ${this.o.maxFileBytes !== undefined && this.o.maxFileBytes <= max ? 'larger than the target' : this.o.fs === 'ext4' ? 'ext4 files are at most 16 TiB' : 'FAT32 files are at most 4 GiB - 1'} (${max} bytes); remove it from the payload`);
      this.total += e.size;
      if (this.o.maxTotalBytes !== undefined && this.total > this.o.maxTotalBytes) {
        this.fail(p, `brings the payload's files to ${this.total} bytes, more than the target's ${this.o.maxTotalBytes}; use a smaller payload`);
      }
    }
    if (e.type === 'char' || e.type === 'block') {
      const ma = e.devmajor ?? 0;
      const mi = e.devminor ?? 0;
      if (!Number.isSafeInteger(ma) || ma < 0 || ma > MAX_MAJOR || !Number.isSafeInteger(mi) || mi < 0 || mi > MAX_MINOR) {
        this.fail(p, `is a device ${ma}:${mi}; Linux device numbers are at most ${MAX_MAJOR}:${MAX_MINOR}`);
      }
    }
  }
}

function shorten(s: string): string {
  return s.length > 200 ? `${s.slice(0, 100)}…(${s.length} characters)` : s;
}

/** Pass `tree` through, refusing (InputError) at the first entry the target must not receive; the refused entry's body is never read. */
export async function* validateTree(tree: AsyncIterable<TreeEntry>, o: ValidateOptions): AsyncGenerator<TreeEntry> {
  const v = new TreeValidator(o);
  for await (const e of tree) {
    v.check(e);
    yield e;
  }
}
