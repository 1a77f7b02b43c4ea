/**
 * Walk a whole ext4 filesystem with our reader, optionally comparing it with
 * a reference tree on disk (what `debugfs -R 'rdump / DIR'` or the mkfs
 * source produced): every directory's names, every regular file's bytes
 * (SHA-256 of the streams), every symlink's target.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readlinkSync, openSync, readSync, closeSync, readFileSync } from 'node:fs';
import type { Ext4Reader } from '../../packages/diskimage/src/ext4/reader.js';

export interface WalkResult {
  dirs: number;
  files: number;
  symlinks: number;
  other: number;
  bytes: number;
  mismatches: string[];
  /** Stopped early because the byte or entry budget ran out (sparse giants, huge damaged trees). */
  truncated: boolean;
}

const hashBuf = Buffer.allocUnsafe(1 << 20);

function hashFile(path: Buffer): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = hashBuf;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

const join = (a: Buffer, b: Buffer) => Buffer.concat([a, Buffer.from('/'), b]);

/**
 * `ignoreRootNames`: names left out of the root comparison on both sides
 * (lost+found when the reference is the mkfs source tree). Only regular
 * files, directories and symlinks take part in name comparisons (debugfs
 * rdump skips device nodes, FIFOs and sockets).
 */
export async function walkExt4(
  fs: Ext4Reader,
  ref?: string,
  opts: { byteBudget?: number; entryBudget?: number; ignoreRootNames?: string[] } = {},
): Promise<WalkResult> {
  const r: WalkResult = { dirs: 0, files: 0, symlinks: 0, other: 0, bytes: 0, mismatches: [], truncated: false };
  const budget = opts.byteBudget ?? Infinity;
  let entriesLeft = opts.entryBudget ?? Infinity;
  const seenDirs = new Set<number>();
  const note = (m: string) => {
    if (r.mismatches.length < 20) r.mismatches.push(m);
  };
  const visit = async (ino: number, path: Buffer, refPath: Buffer | undefined): Promise<void> => {
    if (seenDirs.has(ino)) return; // a directory cycle in a damaged image
    seenDirs.add(ino);
    r.dirs++;
    const entries = await fs.readdirInode(ino);
    const ours = new Set<string>();
    const subdirs: [number, Buffer, Buffer | undefined][] = [];
    for (const e of entries) {
      if (--entriesLeft < 0) {
        r.truncated = true;
        return;
      }
      if (path.length === 0 && opts.ignoreRootNames?.includes(e.name)) continue;
      const p = join(path, e.rawName);
      const rp = refPath ? join(refPath, e.rawName) : undefined;
      const i = await fs.inode(e.ino);
      const st = fs.statInode(e.ino, i);
      if (st.type === 'file' || st.type === 'directory' || st.type === 'symlink') ours.add(e.rawName.toString('latin1'));
      if (st.type === 'directory') {
        subdirs.push([e.ino, p, rp && safeIsDir(rp) ? rp : undefined]);
      } else if (st.type === 'file') {
        r.files++;
        if (r.bytes + st.size > budget) {
          r.truncated = true;
          continue;
        }
        const h = createHash('sha256');
        let n = 0;
        const small: Buffer[] = [];
        for await (const b of fs.readInodeData(e.ino, i)) {
          h.update(b);
          n += b.length;
          if (n <= 65536) small.push(b);
        }
        r.bytes += n;
        if (n !== st.size) note(`${p.toString()}: read ${n} bytes, size ${st.size}`);
        if (rp) {
          let theirs: string | undefined;
          try {
            theirs = hashFile(rp);
          } catch {
            theirs = undefined;
          }
          if (theirs !== h.digest('hex') && !inlineQuirk(rp, i.i_flags, Buffer.concat(small), n)) note(`${p.toString()}: content differs from the reference`);
        }
      } else if (st.type === 'symlink') {
        r.symlinks++;
        const target = await fs.readlinkInode(e.ino, i);
        if (rp) {
          let theirs: Buffer | undefined;
          try {
            theirs = readlinkSync(rp, { encoding: 'buffer' }) as Buffer;
          } catch {
            theirs = undefined;
          }
          if (!theirs || !theirs.equals(target)) note(`${p.toString()}: symlink target differs`);
        }
      } else r.other++;
    }
    if (refPath) {
      const theirs = new Set(
        (readdirSync(refPath, { encoding: 'buffer' }) as Buffer[])
          .filter((b) => {
            const st = lstatSync(join(refPath, b));
            return st.isFile() || st.isDirectory() || st.isSymbolicLink();
          })
          .map((b) => b.toString('latin1')),
      );
      if (path.length === 0) for (const n of opts.ignoreRootNames ?? []) theirs.delete(n);
      const missing = [...theirs].filter((n) => !ours.has(n));
      const extra = [...ours].filter((n) => !theirs.has(n));
      if (missing.length || extra.length) note(`${path.toString() || '/'}: names differ (missing ${missing.slice(0, 3).join(',')}, extra ${extra.slice(0, 3).join(',')})`);
    }
    for (const [sub, p, rp] of subdirs) await visit(sub, p, rp);
  };
  await visit(2, Buffer.alloc(0), ref ? Buffer.from(ref) : undefined);
  return r;
}

/**
 * debugfs 1.47 dumps an inline_data file's whole inline area (60 bytes and
 * more), not i_size bytes; accept that when our bytes are its prefix and the
 * rest is zeros.
 */
function inlineQuirk(rp: Buffer, flags: number, ours: Buffer, n: number): boolean {
  if (!(flags & 0x10000000) || ours.length !== n) return false;
  let theirs: Buffer;
  try {
    theirs = readFileSync(rp);
  } catch {
    return false;
  }
  return theirs.length > n && theirs.subarray(0, n).equals(ours) && theirs.subarray(n).every((b) => b === 0);
}

function safeIsDir(p: Buffer): boolean {
  try {
    return lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}
