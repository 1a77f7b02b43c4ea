import { lstat, opendir, readlink } from 'node:fs/promises';
import { closeSync, lstatSync, openSync, readSync, type BigIntStats } from 'node:fs';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { InputError } from '@diskimg/partitions/internal';
import type { SourceFile, TreeEntry } from './tree.js';
import { readFileChunks } from './file-chunks.js';

/** Options of `readDirTree`. */
export interface ReadDirOptions {
  /** Told once when the tree's extended attributes cannot be read. */
  onWarning?: (msg: string) => void;
}

/**
 * Walk a directory as TreeEntry values: parents before children, names sorted
 * (byte order) so the result is deterministic. Hard links (same dev+ino seen
 * twice) become "hardlink" entries pointing at the first path. Times carry
 * their nanoseconds.
 *
 * Extended attributes (and POSIX ACLs, file capabilities): Node has no
 * xattr call, and a native addon would need a compiler on every build
 * host, so they are read with one `getfattr -R -P -d -m - -h -e base64`
 * over the tree (Debian package attr). When getfattr cannot be started
 * (not installed, or EACCES: not executable, or a PATH directory this user
 * cannot search) the tree is read without them and `onWarning` says so once.
 */
export async function* readDirTree(root: string, opts: ReadDirOptions = {}): AsyncGenerator<TreeEntry> {
  let st;
  try {
    st = await lstat(root, { bigint: true });
  } catch {
    throw new InputError(`${root}: no such directory`);
  }
  if (!st.isDirectory()) throw new InputError(`${root}: not a directory`);
  const xattrs = await readTreeXattrs(root, opts);
  const seen = new Map<string, string>();
  yield withXattrs(statEntry('', st), xattrs);
  yield* walk(root, seen, xattrs);
}

function withXattrs(e: TreeEntry, all: Map<string, Map<string, Buffer>>): TreeEntry {
  const x = all.get(e.path);
  if (x?.size) e.xattrs = x;
  return e;
}

/** Every extended attribute under `root`, by relative path ("" for root itself). */
async function readTreeXattrs(root: string, opts: ReadDirOptions): Promise<Map<string, Map<string, Buffer>>> {
  const abs = resolve(root);
  let notRun = '';
  const out = await new Promise<string | undefined>((res, rej) => {
    execFile('getfattr', ['-R', '-P', '-d', '-m', '-', '-h', '-e', 'base64', '--absolute-names', abs], { maxBuffer: 1 << 30, encoding: 'latin1' }, (err, stdout, stderr) => {
      // Not started at all (a string code from spawn: ENOENT not installed, EACCES a PATH entry
      // this user cannot search or a file it cannot execute, …) is "no getfattr here"; only an
      // exit status from getfattr itself is an error about the tree.
      const code = (err as NodeJS.ErrnoException | null)?.code;
      if (typeof code === 'string') {
        notRun = code;
        return res(undefined);
      }
      if (err) return rej(new InputError(`${root}: cannot read extended attributes: ${(stderr || err.message).trim().split('\n')[0]}`));
      res(stdout);
    });
  });
  const all = new Map<string, Map<string, Buffer>>();
  if (out === undefined) {
    opts.onWarning?.(`${root}: extended attributes, ACLs and file capabilities not read (getfattr could not be run: ${notRun}; install the attr package, on a PATH this user can search)`);
    return all;
  }
  let cur: Map<string, Buffer> | undefined;
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: ')) {
      const p = Buffer.from(unescapeGetfattr(line.slice(8)), 'latin1').toString('utf8');
      const rel = p === abs ? '' : p.startsWith(abs + '/') ? p.slice(abs.length + 1) : undefined;
      cur = rel === undefined ? undefined : new Map();
      if (cur) all.set(rel!, cur);
      continue;
    }
    if (!cur || line === '') continue;
    const eq = line.indexOf('=');
    const name = Buffer.from(unescapeGetfattr(eq < 0 ? line : line.slice(0, eq)), 'latin1').toString('utf8');
    const v = eq < 0 ? '' : line.slice(eq + 1);
    cur.set(name, v.startsWith('0s') ? Buffer.from(v.slice(2), 'base64') : Buffer.from(v.replace(/^"|"$/g, ''), 'latin1'));
  }
  return all;
}

/** getfattr writes unprintable bytes as \ooo and a backslash as \\. */
function unescapeGetfattr(s: string): string {
  return s.replace(/\\([0-7]{3}|\\)/g, (_, o: string) => (o === '\\' ? '\\' : String.fromCharCode(parseInt(o, 8))));
}

const NS = 1_000_000_000n;

function statEntry(path: string, st: BigIntStats): TreeEntry {
  const t = (ns: bigint) => {
    const sec = ns >= 0n ? ns / NS : -((-ns + NS - 1n) / NS);
    return [Number(sec), Number(ns - sec * NS)] as const;
  };
  const [mtime, mtimeNs] = t(st.mtimeNs);
  const [atime, atimeNs] = t(st.atimeNs);
  const [ctime, ctimeNs] = t(st.ctimeNs);
  return {
    path,
    type: 'directory',
    mode: Number(st.mode) & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtime,
    mtimeNs,
    atime,
    atimeNs,
    ctime,
    ctimeNs,
    size: 0,
  };
}

/**
 * Depth first, parents before children, names sorted: with an explicit stack
 * of open directories, not recursion (nested generators overflow the stack
 * and cost a hop per level for every entry).
 */
async function* walk(root: string, seen: Map<string, string>, xattrs: Map<string, Map<string, Buffer>>): AsyncGenerator<TreeEntry> {
  const list = async (abs: string, rel: string) => {
    const names: string[] = [];
    for await (const d of await opendir(abs)) names.push(d.name);
    names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return { abs, rel, names, i: 0 };
  };
  const stack = [await list(root, '')];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    if (top.i >= top.names.length) {
      stack.pop();
      continue;
    }
    const name = top.names[top.i++]!;
    const { abs, rel } = top;
    const a = join(abs, name);
    const r = rel ? `${rel}/${name}` : name;
    const st = lstatSync(a, { bigint: true }); // see openSourceFile
    const e = withXattrs(statEntry(r, st), xattrs);
    if (st.isDirectory()) {
      yield e;
      stack.push(await list(a, r));
      continue;
    }
    const key = `${st.dev}:${st.ino}`;
    if (!st.isDirectory() && st.nlink > 1n && seen.has(key)) {
      yield { ...e, type: 'hardlink', linkname: seen.get(key)! };
      continue;
    }
    if (st.nlink > 1n) seen.set(key, r);
    if (st.isFile()) {
      // Both lazy: nothing is opened unless the writer reads the file one way or the other.
      yield { ...e, type: 'file', size: Number(st.size), body: readFileChunks(a), open: async () => openSourceFile(a) };
    } else if (st.isSymbolicLink()) {
      yield { ...e, type: 'symlink', linkname: await readlink(a) };
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      // Linux encodes dev_t as major (bits 8-19, 32-43) and minor (bits 0-7, 20-31).
      const rdev = Number(st.rdev);
      yield { ...e, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: (rdev >> 8) & 0xfff, devminor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) };
    } else if (st.isFIFO()) {
      yield { ...e, type: 'fifo' };
    } // sockets are skipped: no archive format carries them
  }
}

/**
 * A host file read with synchronous positional reads. A read from a local
 * file (page cache) takes microseconds; through the libuv threadpool each
 * call costs a thread hand-off both ways, which for hundreds of small ESP
 * files was most of populate's time on a busy machine. The device writes
 * stay asynchronous, so they still overlap the reads.
 */
function openSourceFile(path: string): SourceFile {
  const fd = openSync(path, 'r');
  return {
    read: async (buffer, offset, length, position) => ({ bytesRead: readSync(fd, buffer, offset, length, position) }),
    close: async () => closeSync(fd),
  };
}
