import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { InputError } from '@diskimg/partitions/internal';
import { readFileChunks, type FileChunksOptions } from './file-chunks.js';
import { expandHoles, normalizeEntryPath, type TreeEntry, type EntryType } from './tree.js';
import { aclIsMinimal, decodeAclXattr, parseAclText, encodeAclXattr, XATTR_ACL_ACCESS, XATTR_ACL_DEFAULT } from './acl.js';

/**
 * A streaming tar reader (ustar, pax, GNU, star) written for what an image
 * must keep: pax records are parsed as bytes, so binary xattr values
 * (SCHILY.xattr.*) survive, which tar-stream's string decoding did not.
 *
 * Understood: typeflags 0/\0/7 (file), 1, 2, 3, 4, 5, 6, x (pax), g (global
 * pax, applies to every later entry), L and K (GNU long name / link), D (GNU
 * dump dir: a directory), V (volume label: skipped); base-256 numbers
 * (GNU/star) in every numeric field; the ustar prefix.
 * pax keys: path, linkpath, size, uid, gid, uname, gname, mtime, atime, ctime
 * (fractions kept to the nanosecond), SCHILY.xattr.NAME (raw bytes),
 * LIBARCHIVE.xattr.NAME (URL-encoded name, base64 value),
 * SCHILY.acl.access / SCHILY.acl.default (text; used when the binary
 * system.posix_acl_* xattr is absent), SCHILY.devmajor/devminor.
 * Ignored as information only: comment, charset, hdrcharset, SCHILY.dev,
 * SCHILY.ino, SCHILY.nlink, LIBARCHIVE.creationtime, LIBARCHIVE.symlinktype,
 * GNU.volume.*.
 * GNU sparse files in pax format 1.0 and 0.1 (GNU tar --sparse, bsdtar): the
 * entry's `sparse.runs` gives data and holes (the ext4 writer keeps the holes
 * without ever expanding them), `body` the whole file with zeros (FAT).
 * Bounds (work per input byte): metadata records ≤ MAX_META, sparse maps ≤
 * MAX_SPARSE_REGIONS, 64 global pax records, no negative sizes.
 * Refused with an InputError naming the entry: sparse format 0.0 and old GNU
 * type S, multi-volume parts (M), NFSv4 ACLs (SCHILY.acl.ace), file
 * flags (SCHILY.fflags), and any other typeflag.
 */

const BLOCK = 512;
/**
 * pax / long-name payloads are metadata: paths (PATH_MAX), link targets and
 * xattrs (ext4 keeps one 4 KiB block of them). A bigger one is a broken or
 * hostile archive, refused before its bytes are read.
 */
export const MAX_META = 1 << 20;
/** Global pax records apply to every later entry (each entry's work grows with them): a few are plenty. */
const MAX_GLOBAL_RECORDS = 64;
/** A GNU sparse map line is one decimal number (at most 16 digits for a safe integer). */
const MAX_SPARSE_LINE = 32;
/** Data regions of one sparse file (each becomes at least one extent). */
export const MAX_SPARSE_REGIONS = 65536;

/** Peek the first bytes; gunzip when they are gzip's magic (1f 8b). */
async function* maybeGunzip(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const rest = (async function* () {
    try {
      yield first.value;
      for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
    } finally {
      await it.return?.(undefined); // close the source (a file handle) when the reader stops early
    }
  })();
  if (first.value.length >= 2 && first.value[0] === 0x1f && first.value[1] === 0x8b) {
    yield* Readable.from(rest).pipe(createGunzip());
  } else {
    yield* rest;
  }
}

/** Exact reads over an async chunk stream, without copying file bodies. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const c = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    this.buf = this.buf.length ? Buffer.concat([this.buf, c]) : c;
    return true;
  }

  /** Exactly n bytes; fewer only at the end of the stream. Pieces are joined once (no re-copy per chunk). */
  async read(n: number): Promise<Buffer> {
    if (this.buf.length < n && !this.done) {
      const parts = [this.buf];
      let have = this.buf.length;
      while (have < n) {
        const r = await this.it.next();
        if (r.done) {
          this.done = true;
          break;
        }
        const c = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
        parts.push(c);
        have += c.length;
      }
      this.buf = Buffer.concat(parts, have);
    }
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  /** n bytes as the chunks they arrive in. Throws on a short stream. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!this.buf.length && !(await this.fill())) throw new Error('unexpected end of archive inside a file');
      const k = Math.min(left, this.buf.length);
      const out = this.buf.subarray(0, k);
      this.buf = this.buf.subarray(k);
      left -= k;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.chunks(n)) {
      /* discard */
    }
  }

  async close(): Promise<void> {
    await this.it.return?.(undefined);
  }
}

/** An octal field, or a GNU/star base-256 one (high bit of the first byte set; 0xff = negative). */
export function parseNumeric(f: Buffer, what: string): number {
  if (f.length && f[0]! & 0x80) {
    const neg = f[0] === 0xff;
    let v = 0;
    // Two's complement for negatives: -(~bytes + 1).
    for (let i = 0; i < f.length; i++) v = v * 256 + (neg ? 255 - f[i]! : i === 0 ? f[i]! & 0x7f : f[i]!);
    if (neg) v = -(v + 1);
    if (!Number.isSafeInteger(v)) throw new Error(`invalid tar header: base-256 ${what} out of range`);
    return v;
  }
  const s = f.toString('latin1').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new Error(`invalid tar header: ${what} "${s}" is not octal`);
  return parseInt(s, 8);
}

function cstr(b: Buffer): Buffer {
  const z = b.indexOf(0);
  return z < 0 ? b : b.subarray(0, z);
}

/** A pax time "[-]S[.F]" as whole seconds and nanoseconds (exact, no float rounding). */
export function parsePaxTime(v: string, what: string): { sec: number; ns: number } {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(v.trim());
  if (!m) throw new InputError(`${what}: bad pax time "${v}"`);
  const int = Number(m[2]);
  const frac = Number(((m[3] ?? '') + '000000000').slice(0, 9));
  if (m[1] === '-') return frac ? { sec: -int - 1, ns: 1e9 - frac } : { sec: -int, ns: 0 };
  return { sec: int, ns: frac };
}

/** pax extended header records: "LEN key=value\n", values as raw bytes. */
export function parsePaxRecords(data: Buffer, what: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let o = 0;
  while (o < data.length) {
    if (data[o] === 0) break; // NUL padding
    const sp = data.indexOf(0x20, o);
    const len = sp < 0 ? NaN : Number(data.toString('latin1', o, sp));
    if (!Number.isInteger(len) || len <= sp - o + 1 || o + len > data.length || data[o + len - 1] !== 0x0a) {
      throw new InputError(`${what}: malformed pax extended header record at byte ${o}`);
    }
    const rec = data.subarray(sp + 1, o + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new InputError(`${what}: pax record without "key=value" at byte ${o}`);
    out.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1)));
    o += len;
  }
  return out;
}

const TYPES: Record<string, EntryType> = { '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'directory', '6': 'fifo', D: 'directory' };
const IGNORED_KEYS = new Set(['comment', 'charset', 'hdrcharset', 'SCHILY.dev', 'SCHILY.ino', 'SCHILY.nlink', 'SCHILY.filetype', 'LIBARCHIVE.creationtime', 'LIBARCHIVE.symlinktype', 'SCHILY.realsize', 'SCHILY.offset']);

/**
 * Stream a tar archive (plain or gzip) as TreeEntry values. `inputName` names
 * the input in error messages. Each file body must be consumed before asking
 * for the next entry (what is left unread is skipped): memory stays flat.
 */
export async function* readTarTree(input: Readable | AsyncIterable<Buffer>, inputName: string): AsyncGenerator<TreeEntry> {
  const r = new ByteReader(maybeGunzip(input as AsyncIterable<Buffer>)[Symbol.asyncIterator]());
  let count = 0;
  let global = new Map<string, Buffer>();
  let pax: Map<string, Buffer> | undefined;
  let longName: Buffer | undefined;
  let longLink: Buffer | undefined;
  try {
    for (;;) {
      const h = await r.read(BLOCK);
      if (h.length === 0) break; // end without the zero blocks: accepted, as GNU tar does
      if (h.length < BLOCK) throw new Error('unexpected end of archive in a header');
      if (h.every((b) => b === 0)) break; // end-of-archive marker
      checkChecksum(h);
      count++;
      const flag = String.fromCharCode(h[156]!);
      const size = parseNumeric(h.subarray(124, 136), 'size');
      if (size < 0) throw new Error(`invalid tar header: negative size ${size}`);
      const where = () => `${inputName}: entry "${(longName ? cstr(longName) : cstr(h.subarray(0, 100))).toString('utf8')}"`;
      const meta = async () => {
        if (size > MAX_META) throw new InputError(`${where()}: ${size}-byte metadata record; the archive is damaged`);
        const d = await r.read(size);
        if (d.length < size) throw new Error('unexpected end of archive in a metadata record');
        await r.skip(pad(size));
        return d;
      };
      if (flag === 'x') {
        pax = parsePaxRecords(await meta(), `${inputName}: pax header`);
        continue;
      }
      if (flag === 'g') {
        global = new Map([...global, ...parsePaxRecords(await meta(), `${inputName}: global pax header`)]);
        if (global.size > MAX_GLOBAL_RECORDS) throw new InputError(`${inputName}: more than ${MAX_GLOBAL_RECORDS} global pax records; the archive is damaged`);
        continue;
      }
      if (flag === 'L') {
        longName = cstr(await meta());
        continue;
      }
      if (flag === 'K') {
        longLink = cstr(await meta());
        continue;
      }
      if (flag === 'V') {
        await r.skip(size + pad(size));
        pax = longName = longLink = undefined;
        continue;
      }
      const type = TYPES[flag];
      if (!type) {
        const what = flag === 'S' ? 'an old-GNU-format sparse file' : flag === 'M' ? 'a multi-volume continuation' : flag === 'N' ? 'an old GNU long-name record' : `type "${flag}"`;
        throw new InputError(`${where()} is ${what}, which diskimg does not write; re-create the archive without it (GNU tar: no --sparse)`);
      }
      const rec = new Map([...global, ...(pax ?? [])]);
      const str = (k: string) => rec.get(k)?.toString('utf8');
      const gnu = h.toString('latin1', 257, 265) === 'ustar  \0';
      const prefix = !gnu ? cstr(h.subarray(345, 500)) : Buffer.alloc(0);
      const nameBytes = longName ?? (prefix.length ? Buffer.concat([prefix, Buffer.from('/'), cstr(h.subarray(0, 100))]) : cstr(h.subarray(0, 100)));
      const rawName = str('GNU.sparse.name') ?? str('path') ?? nameBytes.toString('utf8');
      const rawLink = str('linkpath') ?? (longLink ?? cstr(h.subarray(157, 257))).toString('utf8');
      pax = longName = longLink = undefined;
      const bodySize = rec.has('size') ? num(str('size')!, 'size') : size;
      if (rawName.length > MAX_META || rawLink.length > MAX_META) throw new InputError(`${where()}: name or link target over ${MAX_META} bytes; the archive is damaged`);
      const path = normalizeEntryPath(rawName, inputName);
      const label = `${inputName}: "${path || '/'}"`;
      const sparse = sparseFormat(rec, label);
      for (const k of rec.keys()) {
        if (k === 'SCHILY.acl.ace') throw new InputError(`${label} has an NFSv4 ACL (SCHILY.acl.ace), which ext4 cannot hold; remove it from the payload`);
        if (k === 'SCHILY.fflags' && rec.get(k)!.length) throw new InputError(`${label} has file flags "${str(k)}" (SCHILY.fflags), which diskimg does not write; clear them (chattr) before archiving`);
      }
      const e: TreeEntry = {
        path,
        type,
        mode: parseNumeric(h.subarray(100, 108), 'mode') & 0o7777,
        uid: rec.has('uid') ? num(str('uid')!, 'uid') : parseNumeric(h.subarray(108, 116), 'uid'),
        gid: rec.has('gid') ? num(str('gid')!, 'gid') : parseNumeric(h.subarray(116, 124), 'gid'),
        mtime: parseNumeric(h.subarray(136, 148), 'mtime'),
        size: type === 'file' ? (sparse ? sparse.realSize : bodySize) : 0,
      };
      const uname = str('uname') ?? cstr(h.subarray(265, 297)).toString('utf8');
      const gname = str('gname') ?? cstr(h.subarray(297, 329)).toString('utf8');
      if (uname) e.uname = uname;
      if (gname) e.gname = gname;
      for (const k of ['mtime', 'atime', 'ctime'] as const) {
        const v = str(k);
        if (v === undefined) continue;
        const t = parsePaxTime(v, label);
        e[k] = t.sec;
        e[`${k}Ns`] = t.ns;
      }
      if (type === 'symlink') e.linkname = rawLink;
      if (type === 'hardlink') e.linkname = normalizeEntryPath(rawLink, inputName);
      if (type === 'char' || type === 'block') {
        e.devmajor = rec.has('SCHILY.devmajor') ? num(str('SCHILY.devmajor')!, 'devmajor') : parseNumeric(h.subarray(329, 337), 'devmajor');
        e.devminor = rec.has('SCHILY.devminor') ? num(str('SCHILY.devminor')!, 'devminor') : parseNumeric(h.subarray(337, 345), 'devminor');
      }
      const x = xattrsOf(rec, label);
      if (x.size) e.xattrs = x;
      // A hard link's data (if any, pax "hardlink with data") and a directory's dump are not file bodies.
      const dataSize = type === 'file' ? bodySize : flag === '1' || flag === 'D' || type === 'directory' ? bodySize : 0;
      if (type === 'file') {
        let consumed = 0;
        const stored = async function* () {
          for await (const c of r.chunks(bodySize)) {
            consumed += c.length;
            yield c;
          }
        };
        const mapped = <T>(src: () => AsyncGenerator<T>) =>
          (async function* () {
            try {
              yield* src();
            } catch (err) {
              throw tarError(err, inputName);
            }
          })();
        // Lazy: only the one the writer iterates reads the stored bytes.
        const body = mapped(() => (sparse ? expandHoles(sparseRuns(stored(), sparse, label)) : stored()));
        e.body = body;
        let runs: AsyncGenerator<Buffer | number> | undefined;
        if (sparse) e.sparse = { storedSize: bodySize, runs: () => (runs ??= mapped(() => sparseRuns(stored(), sparse, label))) };
        yield e;
        // Skip what the consumer left unread, then the padding.
        await body.return(undefined);
        await runs?.return(undefined);
        await r.skip(bodySize - consumed + pad(bodySize));
      } else {
        await r.skip(dataSize + pad(dataSize));
        yield e;
      }
    }
  } catch (err) {
    throw tarError(err, inputName);
  } finally {
    await r.close().catch(() => {});
  }
  if (count === 0) throw new InputError(`${inputName}: empty archive (no tar entries)`);
}

interface Sparse {
  realSize: number;
  /** The map from the pax header (0.1); 1.0 keeps it at the start of the data. */
  map?: [number, number][];
}

/**
 * GNU sparse files in pax archives (what GNU tar --sparse and bsdtar write
 * for files with holes): 1.0 (map at the start of the data) and 0.1 (map in
 * GNU.sparse.map). 0.0 repeats pax keys and is refused.
 */
function sparseFormat(rec: Map<string, Buffer>, label: string): Sparse | undefined {
  const s = (k: string) => rec.get(k)?.toString('utf8');
  if (![...rec.keys()].some((k) => k.startsWith('GNU.sparse.'))) return undefined;
  const realSize = s('GNU.sparse.realsize') ?? s('GNU.sparse.size');
  if (realSize === undefined) throw new InputError(`${label}: GNU sparse file without GNU.sparse.realsize`);
  const size = num(realSize, 'GNU.sparse.realsize');
  if (s('GNU.sparse.major') === '1' && s('GNU.sparse.minor') === '0') return { realSize: size };
  const map = s('GNU.sparse.map');
  if (map !== undefined) {
    const pairs: [number, number][] = [];
    let pending: number | undefined;
    for (let o = 0; o <= map.length; ) {
      const comma = map.indexOf(',', o);
      const end = comma < 0 ? map.length : comma;
      if (end - o > MAX_SPARSE_LINE) throw new InputError(`${label}: damaged GNU.sparse.map`);
      const v = num(map.slice(o, end), 'GNU.sparse.map');
      if (pending === undefined) pending = v;
      else {
        pairs.push([pending, v]);
        pending = undefined;
        if (pairs.length > MAX_SPARSE_REGIONS) throw new InputError(`${label}: GNU sparse map of more than ${MAX_SPARSE_REGIONS} regions; diskimg does not write such a file`);
      }
      o = end + 1;
    }
    if (pending !== undefined) throw new InputError(`${label}: odd GNU.sparse.map`);
    return { realSize: size, map: pairs };
  }
  throw new InputError(`${label} is a GNU sparse file in format 0.0, which diskimg does not read; re-create it with --sparse-version=1.0 or without --sparse`);
}

/**
 * The stored data of a sparse file → its content as data chunks and holes
 * (a number: that many zero bytes). Work is per stored byte and per map
 * entry, never per byte of a hole.
 */
async function* sparseRuns(data: AsyncGenerator<Buffer>, sp: Sparse, label: string): AsyncGenerator<Buffer | number> {
  let pending: Buffer = Buffer.alloc(0);
  const next = async (): Promise<boolean> => {
    const r = await data.next();
    if (r.done) return false;
    pending = pending.length ? Buffer.concat([pending, r.value]) : r.value;
    return true;
  };
  let map = sp.map;
  if (!map) {
    // 1.0: decimal lines "count\n", then offset\n size\n pairs, padded to 512 bytes.
    map = [];
    let count = -1;
    let first: number | undefined;
    let used = 0; // bytes of the map read so far
    while (count < 0 || map.length < count) {
      const nl = pending.indexOf(0x0a);
      if (nl < 0) {
        // A line is one number: a long one is damage, and keeping only the unread part bounds the copying.
        if (pending.length > MAX_SPARSE_LINE || !(await next())) throw new InputError(`${label}: truncated or damaged GNU sparse map`);
        continue;
      }
      const v = num(pending.toString('latin1', 0, nl), 'sparse map');
      pending = pending.subarray(nl + 1);
      used += nl + 1;
      if (count < 0) {
        count = v;
        if (count > MAX_SPARSE_REGIONS) throw new InputError(`${label}: GNU sparse map of ${count} regions; diskimg reads at most ${MAX_SPARSE_REGIONS}`);
      } else if (first === undefined) first = v;
      else {
        map.push([first, v]);
        first = undefined;
      }
    }
    let skip = pad(used);
    while (skip > 0) {
      if (!pending.length && !(await next())) throw new InputError(`${label}: truncated GNU sparse map`);
      const k = Math.min(skip, pending.length);
      pending = pending.subarray(k);
      skip -= k;
    }
  }
  let at = 0;
  for (const [off, len] of map) {
    if (off < at || off + len > sp.realSize) throw new InputError(`${label}: GNU sparse map out of order or past the file's size`);
    if (off > at) yield off - at;
    let left = len;
    while (left > 0) {
      if (!pending.length && !(await next())) throw new InputError(`${label}: sparse data shorter than its map`);
      const k = Math.min(left, pending.length);
      yield pending.subarray(0, k);
      pending = pending.subarray(k);
      left -= k;
    }
    at = off + len;
  }
  if (sp.realSize > at) yield sp.realSize - at;
  while (await next()) pending = Buffer.alloc(0); // stored padding past the last region
}

function pad(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

function num(v: string, what: string): number {
  if (!/^\d+$/.test(v.trim())) throw new InputError(`pax ${what} "${v}" is not a number`);
  const n = Number(v.trim());
  if (!Number.isSafeInteger(n)) throw new InputError(`pax ${what} "${v}" out of range`);
  return n;
}

function checkChecksum(h: Buffer): void {
  const stored = parseNumeric(h.subarray(148, 156), 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  if (stored !== unsigned && stored !== signed) throw new Error('invalid tar header (checksum mismatch)');
}

/** xattrs from SCHILY.xattr.* (raw), LIBARCHIVE.xattr.* (URL-encoded name, base64 value), and text ACLs. */
function xattrsOf(rec: Map<string, Buffer>, label: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [k, v] of rec) {
    if (k.startsWith('LIBARCHIVE.xattr.')) {
      let name: string;
      try {
        name = decodeURIComponent(k.slice('LIBARCHIVE.xattr.'.length));
      } catch {
        throw new InputError(`${label}: bad xattr name in pax key "${k}"`);
      }
      out.set(name, Buffer.from(v.toString('latin1'), 'base64'));
    }
  }
  for (const [k, v] of rec) {
    if (k.startsWith('SCHILY.xattr.')) {
      const name = k.slice('SCHILY.xattr.'.length);
      if (!out.has(name)) out.set(name, v);
    }
  }
  for (const [key, xname] of [['SCHILY.acl.access', XATTR_ACL_ACCESS], ['SCHILY.acl.default', XATTR_ACL_DEFAULT]] as const) {
    const text = rec.get(key);
    if (text === undefined || out.has(xname)) continue;
    if (!text.length) continue;
    out.set(xname, encodeAclXattr(parseAclText(text.toString('utf8'), `${label} ${key}`)));
  }
  // An access ACL of user::, group::, other:: is the mode itself; the kernel stores none.
  const acc = out.get(XATTR_ACL_ACCESS);
  if (acc && aclIsMinimal(decodeAclXattr(acc, `${label} ${XATTR_ACL_ACCESS}`))) out.delete(XATTR_ACL_ACCESS);
  return out;
}

/** Map stream errors (from the archive or inside a file body) to one-line InputErrors. */
function tarError(err: unknown, inputName: string): Error {
  if (err instanceof InputError) return err;
  const msg = (err as Error).message;
  if (/unexpected end|premature|truncat|invalid tar header|incorrect header check|unexpected eof/i.test(msg)) {
    return new InputError(`${inputName}: truncated or corrupt tar stream (${msg}); check the download or re-create the archive`);
  }
  return new InputError(`${inputName}: cannot read tar: ${msg}`);
}

/**
 * Open a tar file by path (use "-" for standard input). A file is read into a
 * ring of reused buffers: a body chunk is valid only as long as the ownership
 * rule in file-chunks.ts says (the consumers in build.ts stay within it);
 * `chunks` sets the ring (tests).
 */
export function openTarFile(path: string, chunks?: FileChunksOptions): AsyncGenerator<TreeEntry> {
  if (path === '-') return readTarTree(process.stdin, 'standard input');
  return readTarTree(readFileChunks(path, chunks), path);
}
