import { lstat, opendir, readlink } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '@diskimg/partitions';
import type { TreeEntry } from './tree.js';

/**
 * Walk a directory as TreeEntry values: parents before children, names sorted
 * (byte order) so the result is deterministic. Hard links (same dev+ino seen
 * twice) become "hardlink" entries pointing at the first path.
 */
export async function* readDirTree(root: string): AsyncGenerator<TreeEntry> {
  let st;
  try {
    st = await lstat(root);
  } catch {
    throw new InputError(`${root}: no such directory`);
  }
  if (!st.isDirectory()) throw new InputError(`${root}: not a directory`);
  const seen = new Map<string, string>();
  yield statEntry('', st);
  yield* walk(root, '', seen);
}

function statEntry(path: string, st: import('node:fs').Stats): TreeEntry {
  return {
    path,
    type: 'directory',
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtime: st.mtimeMs / 1000,
    atime: st.atimeMs / 1000,
    ctime: st.ctimeMs / 1000,
    size: 0,
  };
}

async function* walk(abs: string, rel: string, seen: Map<string, string>): AsyncGenerator<TreeEntry> {
  const names: string[] = [];
  for await (const d of await opendir(abs)) names.push(d.name);
  names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const name of names) {
    const a = join(abs, name);
    const r = rel ? `${rel}/${name}` : name;
    const st = await lstat(a);
    const e = statEntry(r, st);
    if (st.isDirectory()) {
      yield e;
      yield* walk(a, r, seen);
      continue;
    }
    const key = `${st.dev}:${st.ino}`;
    if (!st.isDirectory() && st.nlink > 1 && seen.has(key)) {
      yield { ...e, type: 'hardlink', linkname: seen.get(key)! };
      continue;
    }
    if (st.nlink > 1) seen.set(key, r);
    if (st.isFile()) {
      yield { ...e, type: 'file', size: st.size, body: createReadStream(a, { highWaterMark: 1 << 20 }) };
    } else if (st.isSymbolicLink()) {
      yield { ...e, type: 'symlink', linkname: await readlink(a) };
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      // Linux encodes dev_t as major (bits 8-19, 32-43) and minor (bits 0-7, 20-31).
      const rdev = st.rdev;
      yield { ...e, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: (rdev >> 8) & 0xfff, devminor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) };
    } else if (st.isFIFO()) {
      yield { ...e, type: 'fifo' };
    } // sockets are skipped: no archive format carries them
  }
}
