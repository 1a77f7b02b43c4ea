import { FormatError } from '@diskimg/partitions/internal';
import { bitmapChecksum } from './checksum.js';

/**
 * Block and inode bitmaps: one bit per cluster / inode of a group, bit i of
 * byte i>>3 is (1 << (i & 7)). The metadata_csum checksum covers the
 * meaningful bytes only (clusters_per_group/8 or inodes_per_group/8), even in
 * the last, shorter group; the high 16 bits live in the descriptor only when
 * it is 64 bytes.
 */
export function testBit(bitmap: Uint8Array, i: number): boolean {
  return (bitmap[i >>> 3]! & (1 << (i & 7))) !== 0;
}

export function setBit(bitmap: Uint8Array, i: number): void {
  bitmap[i >>> 3] = bitmap[i >>> 3]! | (1 << (i & 7));
}

export function clearBit(bitmap: Uint8Array, i: number): void {
  bitmap[i >>> 3] = bitmap[i >>> 3]! & ~(1 << (i & 7));
}

/** Set bits [start, end). */
export function setBits(bitmap: Uint8Array, start: number, end: number): void {
  for (let i = start; i < end; i++) setBit(bitmap, i);
}

/** Number of set bits among the first `n`. */
export function countBits(bitmap: Uint8Array, n: number): number {
  let c = 0;
  for (let i = 0; i < n; i++) if (testBit(bitmap, i)) c++;
  return c;
}

/** crc32c of a block bitmap (bg_block_bitmap_csum). */
export function blockBitmapChecksum(csumSeed: number, bitmap: Uint8Array, clustersPerGroup: number): number {
  return bitmapChecksum(csumSeed, bitmap, clustersPerGroup >>> 3);
}

/** crc32c of an inode bitmap (bg_inode_bitmap_csum). */
export function inodeBitmapChecksum(csumSeed: number, bitmap: Uint8Array, inodesPerGroup: number): number {
  return bitmapChecksum(csumSeed, bitmap, inodesPerGroup >>> 3);
}

/** Compare a stored bitmap checksum (lo 16 bits, plus hi 16 with ≥ 64-byte descriptors) with the computed one; throws FormatError. */
export function verifyBitmapChecksum(what: 'block' | 'inode', group: number, stored: number, computed: number, descSize: number): void {
  const mask = descSize >= 64 ? 0xffffffff : 0xffff;
  if ((stored & mask) >>> 0 !== (computed & mask) >>> 0) {
    throw new FormatError(
      `ext4 ${what} bitmap of group ${group}`,
      `checksum mismatch (stored 0x${(stored >>> 0).toString(16)}, computed 0x${((computed & mask) >>> 0).toString(16)})`,
    );
  }
}

/** The value to store in bg_*_bitmap_csum for a descriptor of `descSize` bytes. */
export function bitmapChecksumField(computed: number, descSize: number): number {
  return descSize >= 64 ? computed >>> 0 : computed & 0xffff;
}
