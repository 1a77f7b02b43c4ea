import { FormatError } from '@diskimg/partitions/internal';
import { extentBlockChecksum, inodeCsumSeed } from './checksum.js';
import { asBuffer } from './struct.js';

/** struct ext4_extent_header magic. */
export const EXT4_EXT_MAGIC = 0xf30a;
/** ee_len above this marks an uninitialized (preallocated, reads as zeros) extent. */
export const EXT_INIT_MAX_LEN = 32768;
export const EXT_UNINIT_MAX_LEN = 32767;
/** Entries that fit in the 60-byte i_block: (60 - 12) / 12. */
export const EXT4_IBLOCK_MAX_ENTRIES = 4;
/** Deepest tree the kernel accepts (EXT4_MAX_EXTENT_DEPTH); e2fsprogs reads deeper ones (it only suggests flattening). */
export const EXT4_MAX_EXTENT_DEPTH = 5;
/** Deepest tree we decode: far beyond any real one, small enough to bound recursion. */
export const EXTENT_DEPTH_LIMIT = 32;

/** struct ext4_extent (leaf), ee_start = ee_start_lo + ee_start_hi << 32, ee_len decoded. */
export interface ExtentLeaf {
  ee_block: number;
  /** Number of blocks (1..32768 initialized, 1..32767 uninitialized). */
  ee_len: number;
  ee_start: number;
  /** Uninitialized extent: allocated, reads as zeros. */
  uninit: boolean;
}

/** struct ext4_extent_idx, ei_leaf = ei_leaf_lo + ei_leaf_hi << 32. */
export interface ExtentIndex {
  ei_block: number;
  ei_leaf: number;
  ei_unused: number;
}

/** struct ext4_extent_header plus its entries (leaves at eh_depth 0, indexes above). */
export interface ExtentNode {
  eh_entries: number;
  eh_max: number;
  eh_depth: number;
  eh_generation: number;
  leaves: ExtentLeaf[];
  indexes: ExtentIndex[];
  /**
   * The raw bytes of the unused entry slots (eh_entries..eh_max), kept by
   * decode so a node re-encodes to the same bytes (real trees leave stale
   * entries there); encode writes zeros when absent.
   */
  unused?: Buffer;
}

/** What a block's extent tail checksum needs. */
export interface ExtentChecksumOptions {
  csumSeed: number;
  ino: number;
  gen: number;
}

/**
 * Decode an extent node from the 60-byte i_block (`inBlock` false) or a full
 * tree block. Validates magic, eh_entries ≤ eh_max and that eh_max fits; for a
 * tree block with `csum`, verifies the ext4_extent_tail checksum.
 * `structure` names the owner in errors (e.g. "ext4 inode 12 extent block 345").
 */
export function decodeExtentNode(bytes: Uint8Array, opts: { csum?: ExtentChecksumOptions; structure?: string } = {}): ExtentNode {
  const S = opts.structure ?? 'ext4 extent node';
  const b = asBuffer(bytes);
  if (b.length < 12) throw new FormatError(S, `${b.length} bytes, too short for an extent header`);
  const magic = b.readUInt16LE(0);
  if (magic !== EXT4_EXT_MAGIC) throw new FormatError(S, `eh_magic is 0x${magic.toString(16)}, not 0xf30a`);
  const eh_entries = b.readUInt16LE(2);
  const eh_max = b.readUInt16LE(4);
  const eh_depth = b.readUInt16LE(6);
  const eh_generation = b.readUInt32LE(8);
  const room = Math.floor((b.length - 12) / 12);
  if (eh_max > room) throw new FormatError(S, `eh_max ${eh_max} exceeds the ${room} entries that fit`);
  if (eh_entries > eh_max) throw new FormatError(S, `eh_entries ${eh_entries} exceeds eh_max ${eh_max}`);
  if (eh_depth > EXTENT_DEPTH_LIMIT) throw new FormatError(S, `eh_depth ${eh_depth} exceeds ${EXTENT_DEPTH_LIMIT}`);
  if (opts.csum && b.length > 60) {
    const tail = 12 + 12 * eh_max;
    if (tail + 4 > b.length) throw new FormatError(S, `no room for the extent tail after eh_max ${eh_max} entries`);
    const want = extentBlockChecksum(inodeCsumSeed(opts.csum.csumSeed, opts.csum.ino, opts.csum.gen), b, eh_max);
    const stored = b.readUInt32LE(tail);
    if (want !== stored) throw new FormatError(S, `checksum mismatch (stored 0x${stored.toString(16)}, computed 0x${want.toString(16)})`);
  }
  const leaves: ExtentLeaf[] = [];
  const indexes: ExtentIndex[] = [];
  for (let i = 0; i < eh_entries; i++) {
    const o = 12 + 12 * i;
    if (eh_depth === 0) {
      const raw = b.readUInt16LE(o + 4);
      const uninit = raw > EXT_INIT_MAX_LEN;
      leaves.push({
        ee_block: b.readUInt32LE(o),
        ee_len: uninit ? raw - EXT_INIT_MAX_LEN : raw,
        ee_start: b.readUInt16LE(o + 6) * 2 ** 32 + b.readUInt32LE(o + 8),
        uninit,
      });
    } else {
      indexes.push({
        ei_block: b.readUInt32LE(o),
        ei_leaf: b.readUInt32LE(o + 4) + b.readUInt16LE(o + 8) * 2 ** 32,
        ei_unused: b.readUInt16LE(o + 10),
      });
    }
  }
  const unused = Buffer.from(b.subarray(12 + 12 * eh_entries, 12 + 12 * eh_max));
  return { eh_entries, eh_max, eh_depth, eh_generation, leaves, indexes, unused };
}

/**
 * Encode an extent node into `size` bytes: 60 for i_block, or the block size
 * for a tree block. eh_entries comes from the entry list; eh_max defaults to
 * what fits (minus the 4-byte tail in a block). With `csum` and a tree block,
 * the tail checksum is written last.
 */
export function encodeExtentNode(
  node: Omit<ExtentNode, 'eh_entries' | 'eh_max'> & { eh_max?: number },
  size: number,
  csum?: ExtentChecksumOptions,
): Buffer {
  const S = 'ext4 extent node';
  const b = Buffer.alloc(size);
  const isBlock = size > 60;
  const room = Math.floor((size - 12 - (isBlock ? 4 : 0)) / 12);
  const eh_max = node.eh_max ?? room;
  if (eh_max > room) throw new FormatError(S, `eh_max ${eh_max} exceeds the ${room} entries that fit in ${size} bytes`);
  const entries = node.eh_depth === 0 ? node.leaves.length : node.indexes.length;
  if (entries > eh_max) throw new FormatError(S, `${entries} entries exceed eh_max ${eh_max}`);
  b.writeUInt16LE(EXT4_EXT_MAGIC, 0);
  b.writeUInt16LE(entries, 2);
  b.writeUInt16LE(eh_max, 4);
  b.writeUInt16LE(node.eh_depth, 6);
  b.writeUInt32LE(node.eh_generation >>> 0, 8);
  for (let i = 0; i < entries; i++) {
    const o = 12 + 12 * i;
    if (node.eh_depth === 0) {
      const e = node.leaves[i]!;
      const max = e.uninit ? EXT_UNINIT_MAX_LEN : EXT_INIT_MAX_LEN;
      if (!(e.ee_len >= 0 && e.ee_len <= max)) throw new FormatError(S, `ee_len ${e.ee_len} out of range (max ${max})`);
      if (!(e.ee_start >= 0 && e.ee_start < 2 ** 48)) throw new FormatError(S, `ee_start ${e.ee_start} does not fit 48 bits`);
      b.writeUInt32LE(e.ee_block >>> 0, o);
      b.writeUInt16LE(e.uninit ? e.ee_len + EXT_INIT_MAX_LEN : e.ee_len, o + 4);
      b.writeUInt16LE(Math.floor(e.ee_start / 2 ** 32), o + 6);
      b.writeUInt32LE(e.ee_start % 2 ** 32, o + 8);
    } else {
      const x = node.indexes[i]!;
      if (!(x.ei_leaf >= 0 && x.ei_leaf < 2 ** 48)) throw new FormatError(S, `ei_leaf ${x.ei_leaf} does not fit 48 bits`);
      b.writeUInt32LE(x.ei_block >>> 0, o);
      b.writeUInt32LE(x.ei_leaf % 2 ** 32, o + 4);
      b.writeUInt16LE(Math.floor(x.ei_leaf / 2 ** 32), o + 8);
      b.writeUInt16LE(x.ei_unused ?? 0, o + 10);
    }
  }
  if (node.unused && node.unused.length === 12 * (eh_max - entries)) b.set(node.unused, 12 + 12 * entries);
  if (csum && isBlock) {
    b.writeUInt32LE(extentBlockChecksum(inodeCsumSeed(csum.csumSeed, csum.ino, csum.gen), b, eh_max), 12 + 12 * eh_max);
  }
  return b;
}
