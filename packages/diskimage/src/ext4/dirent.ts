import { FormatError } from '@diskimg/partitions/internal';
import { dirLeafChecksum, dxNodeChecksum, inodeCsumSeed } from './checksum.js';
import { asBuffer } from './struct.js';

/** ext4_dir_entry_2.file_type values (with the filetype feature). */
export const FT_UNKNOWN = 0;
export const FT_REG_FILE = 1;
export const FT_DIR = 2;
export const FT_CHRDEV = 3;
export const FT_BLKDEV = 4;
export const FT_FIFO = 5;
export const FT_SOCK = 6;
export const FT_SYMLINK = 7;
/** file_type of the 12-byte checksum tail (struct ext4_dir_entry_tail). */
export const FT_DIR_CSUM = 0xde;
export const DIR_TAIL_SIZE = 12;
export const EXT4_NAME_LEN = 255;

/** struct ext4_dir_entry_2. An entry with inode 0 is unused space (kept so a block re-encodes to the same bytes). */
export interface DirEntry {
  inode: number;
  /** Bytes from this entry to the next (decoded; 65536 in a 64 KiB block). */
  rec_len: number;
  /** Meaningful only with the filetype feature. */
  file_type: number;
  name: Buffer;
}

/** What a directory block's checksum needs: fs seed, directory inode number and generation. */
export interface DirChecksumOptions {
  csumSeed: number;
  ino: number;
  gen: number;
}

/** Smallest rec_len for a name of `nameLen` bytes (8-byte header, 4-byte aligned). */
export function dirEntrySize(nameLen: number): number {
  return (8 + nameLen + 3) & ~3;
}

function recLenFromDisk(raw: number, blockSize: number): number {
  if (blockSize >= 65536) {
    if (raw === 65535 || raw === 0) return blockSize;
    return (raw & 65532) | ((raw & 3) << 16);
  }
  return raw;
}

function recLenToDisk(len: number, blockSize: number): number {
  if (blockSize >= 65536) {
    if (len === 65536) return 65535;
    if (len > 65536) return (len & 65532) | ((len >>> 16) & 3);
  }
  return len;
}

/** Does `block` end in a struct ext4_dir_entry_tail? */
export function hasDirTail(block: Uint8Array): boolean {
  const b = asBuffer(block);
  const o = b.length - DIR_TAIL_SIZE;
  return o >= 0 && b.readUInt32LE(o) === 0 && b.readUInt16LE(o + 4) === DIR_TAIL_SIZE && b[o + 6] === 0 && b[o + 7] === FT_DIR_CSUM;
}

export interface DecodedDirBlock {
  entries: DirEntry[];
  /** The block ends in a checksum tail. */
  tail: boolean;
}

/**
 * Decode a linear directory block (or an htree leaf). Validates every
 * rec_len and name_len; with `csum`, requires the tail and verifies its
 * checksum. `structure` names the block in errors.
 */
export function decodeDirBlock(block: Uint8Array, opts: { csum?: DirChecksumOptions; structure?: string } = {}): DecodedDirBlock {
  const S = opts.structure ?? 'ext4 directory block';
  const b = asBuffer(block);
  const bs = b.length;
  const tail = hasDirTail(b);
  if (opts.csum) {
    if (!tail) throw new FormatError(S, 'no checksum tail (metadata_csum needs one)');
    const want = dirLeafChecksum(inodeCsumSeed(opts.csum.csumSeed, opts.csum.ino, opts.csum.gen), b);
    const stored = b.readUInt32LE(bs - 4);
    if (want !== stored) throw new FormatError(S, `checksum mismatch (stored 0x${stored.toString(16)}, computed 0x${want.toString(16)})`);
  }
  const end = tail ? bs - DIR_TAIL_SIZE : bs;
  const entries: DirEntry[] = [];
  let off = 0;
  // Each step advances by rec_len ≥ 8, so the loop ends within bs/8 steps.
  while (off < end) {
    if (off + 8 > end) throw new FormatError(S, `directory entry at offset ${off} runs past the end`);
    const inode = b.readUInt32LE(off);
    const rec_len = recLenFromDisk(b.readUInt16LE(off + 4), bs);
    const name_len = b[off + 6]!;
    const file_type = b[off + 7]!;
    if (rec_len < 8 || rec_len % 4 !== 0) throw new FormatError(S, `rec_len ${rec_len} at offset ${off} is not a multiple of 4 of at least 8`);
    if (off + rec_len > end) throw new FormatError(S, `rec_len ${rec_len} at offset ${off} runs past the end of the block`);
    if (8 + name_len > rec_len) throw new FormatError(S, `name_len ${name_len} at offset ${off} exceeds rec_len ${rec_len}`);
    entries.push({ inode, rec_len, file_type, name: Buffer.from(b.subarray(off + 8, off + 8 + name_len)) });
    off += rec_len;
  }
  return { entries, tail };
}

/**
 * Pack entries into one directory block of `blockSize` bytes. Each entry
 * takes its rec_len when given (≥ its minimum size), else its minimum; the
 * last one stretches to the end of the space. With `csum` (metadata_csum),
 * the 12-byte tail with its checksum ends the block. Throws if they do not fit.
 */
export function encodeDirBlock(
  entries: ReadonlyArray<{ inode: number; name: Uint8Array | string; file_type: number; rec_len?: number }>,
  blockSize: number,
  csum?: DirChecksumOptions,
): Buffer {
  const S = 'ext4 directory block';
  const b = Buffer.alloc(blockSize);
  const end = csum ? blockSize - DIR_TAIL_SIZE : blockSize;
  let off = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const name = typeof e.name === 'string' ? Buffer.from(e.name, 'utf8') : e.name;
    if (name.length > EXT4_NAME_LEN) throw new FormatError(S, `name of ${name.length} bytes exceeds ${EXT4_NAME_LEN}`);
    const min = dirEntrySize(name.length);
    let rec = e.rec_len !== undefined && e.rec_len >= min ? e.rec_len : min;
    if (i === entries.length - 1) rec = end - off;
    if (rec < min || off + rec > end) throw new FormatError(S, `${entries.length} entries do not fit in a ${blockSize}-byte block`);
    b.writeUInt32LE(e.inode >>> 0, off);
    b.writeUInt16LE(recLenToDisk(rec, blockSize), off + 4);
    b[off + 6] = name.length;
    b[off + 7] = e.file_type;
    b.set(name, off + 8);
    off += rec;
  }
  if (entries.length === 0) {
    // An empty block is one unused entry spanning the space.
    b.writeUInt16LE(recLenToDisk(end, blockSize), 4);
  }
  if (csum) writeDirTail(b, csum);
  return b;
}

/** Write the tail (and its checksum) into the last 12 bytes of a directory block. */
export function writeDirTail(block: Buffer, csum: DirChecksumOptions): void {
  const o = block.length - DIR_TAIL_SIZE;
  block.writeUInt32LE(0, o);
  block.writeUInt16LE(DIR_TAIL_SIZE, o + 4);
  block[o + 6] = 0;
  block[o + 7] = FT_DIR_CSUM;
  block.writeUInt32LE(dirLeafChecksum(inodeCsumSeed(csum.csumSeed, csum.ino, csum.gen), block), o + 8);
}

/**
 * Split entries (in order) into as many blocks' worth as needed, each fitting
 * `blockSize` (minus the tail with metadata_csum). Use with encodeDirBlock.
 */
export function packDirEntries<E extends { name: Uint8Array | string }>(entries: readonly E[], blockSize: number, withTail: boolean): E[][] {
  const space = blockSize - (withTail ? DIR_TAIL_SIZE : 0);
  const out: E[][] = [];
  let cur: E[] = [];
  let used = 0;
  for (const e of entries) {
    const len = typeof e.name === 'string' ? Buffer.byteLength(e.name) : e.name.length;
    const sz = dirEntrySize(len);
    if (used + sz > space && cur.length) {
      out.push(cur);
      cur = [];
      used = 0;
    }
    cur.push(e);
    used += sz;
  }
  if (cur.length) out.push(cur);
  return out;
}

/* ---------------------------------------------------------------------------
 * htree (dir_index): dx_root in a directory's block 0, dx_node in interior
 * blocks. The reader walks every block linearly, so it only needs to recognise
 * these blocks, check their checksum, and skip them.
 */

export interface DxEntry {
  hash: number;
  block: number;
}

export interface DxRoot {
  hash_version: number;
  info_length: number;
  indirect_levels: number;
  unused_flags: number;
  limit: number;
  count: number;
  /** entries[0].hash is 0 (implicit on disk). */
  entries: DxEntry[];
}

export interface DxNode {
  limit: number;
  count: number;
  entries: DxEntry[];
}

/** dx_root_info starts after "." (12 bytes) and ".." (header + 2-byte name, padded to 12). */
const DX_ROOT_INFO = 24;

function decodeDxEntries(b: Buffer, countOffset: number, S: string, csum: DirChecksumOptions | undefined) {
  const limit = b.readUInt16LE(countOffset);
  const count = b.readUInt16LE(countOffset + 2);
  const tailSpace = csum ? 8 : 0;
  const maxLimit = Math.floor((b.length - countOffset - tailSpace) / 8);
  if (limit === 0 || limit > maxLimit) throw new FormatError(S, `dx limit ${limit} out of range (at most ${maxLimit})`);
  if (count === 0 || count > limit) throw new FormatError(S, `dx count ${count} out of range (limit ${limit})`);
  if (csum) {
    const tailOff = countOffset + limit * 8;
    if (tailOff + 8 > b.length) throw new FormatError(S, 'no room for the dx tail');
    const want = dxNodeChecksum(inodeCsumSeed(csum.csumSeed, csum.ino, csum.gen), b, countOffset, count, tailOff);
    const stored = b.readUInt32LE(tailOff + 4);
    if (want !== stored) throw new FormatError(S, `htree checksum mismatch (stored 0x${stored.toString(16)}, computed 0x${want.toString(16)})`);
  }
  const entries: DxEntry[] = [{ hash: 0, block: b.readUInt32LE(countOffset + 4) }];
  for (let i = 1; i < count; i++) {
    const o = countOffset + 8 * i;
    entries.push({ hash: b.readUInt32LE(o), block: b.readUInt32LE(o + 4) });
  }
  return { limit, count, entries };
}

/** Decode a dx_root block (a directory's block 0 with EXT4_INDEX_FL). */
export function decodeDxRoot(block: Uint8Array, opts: { csum?: DirChecksumOptions; structure?: string } = {}): DxRoot {
  const S = opts.structure ?? 'ext4 htree root';
  const b = asBuffer(block);
  if (b.length < 64) throw new FormatError(S, 'block too small');
  // "." then ".." spanning the rest of the block.
  if (b.readUInt16LE(4) !== 12 || b[6] !== 1 || b[8] !== 0x2e) throw new FormatError(S, 'first entry is not "."');
  if (b[12 + 6] !== 2 || b[12 + 8] !== 0x2e || b[12 + 9] !== 0x2e) throw new FormatError(S, 'second entry is not ".."');
  const reserved = b.readUInt32LE(DX_ROOT_INFO);
  const hash_version = b[DX_ROOT_INFO + 4]!;
  const info_length = b[DX_ROOT_INFO + 5]!;
  const indirect_levels = b[DX_ROOT_INFO + 6]!;
  const unused_flags = b[DX_ROOT_INFO + 7]!;
  if (reserved !== 0) throw new FormatError(S, `dx_root_info.reserved_zero is ${reserved}`);
  if (info_length !== 8) throw new FormatError(S, `dx_root_info.info_length is ${info_length}, not 8`);
  if (indirect_levels > 2) throw new FormatError(S, `indirect_levels ${indirect_levels} exceeds 2 (3 with large_dir)`);
  const rest = decodeDxEntries(b, DX_ROOT_INFO + info_length, S, opts.csum);
  return { hash_version, info_length, indirect_levels, unused_flags, ...rest };
}

/** Is this block a dx_node (an empty fake dirent spanning the block)? */
export function isDxNodeBlock(block: Uint8Array): boolean {
  const b = asBuffer(block);
  return b.readUInt32LE(0) === 0 && recLenFromDisk(b.readUInt16LE(4), b.length) === b.length && b[6] === 0;
}

/** Decode a dx_node block (interior htree node). */
export function decodeDxNode(block: Uint8Array, opts: { csum?: DirChecksumOptions; structure?: string } = {}): DxNode {
  const S = opts.structure ?? 'ext4 htree node';
  const b = asBuffer(block);
  if (!isDxNodeBlock(b)) throw new FormatError(S, 'not an htree node (fake dirent missing)');
  return decodeDxEntries(b, 8, S, opts.csum);
}

