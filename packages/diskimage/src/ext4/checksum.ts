import { crc32cRaw, crc32cU32 } from './crc32c.js';
import { INCOMPAT, RO_COMPAT } from './features.js';

/**
 * The metadata_csum checksums, as the kernel (fs/ext4) and e2fsprogs
 * (lib/ext2fs/csum.c) compute them. All are raw crc32c (no final inversion).
 */

/**
 * The filesystem checksum seed: s_checksum_seed when metadata_csum_seed is
 * set (so the UUID can change), else crc32c(~0, s_uuid).
 */
export function csumSeed(sb: { s_feature_incompat: number; s_checksum_seed: number; s_uuid: Uint8Array }): number {
  if (sb.s_feature_incompat & INCOMPAT.metadata_csum_seed) return sb.s_checksum_seed >>> 0;
  return crc32cRaw(0xffffffff, sb.s_uuid);
}

export function hasMetadataCsum(sb: { s_feature_ro_compat: number }): boolean {
  return (sb.s_feature_ro_compat & RO_COMPAT.metadata_csum) !== 0;
}

/** Per-inode seed used by inode, extent, directory and xattr checksums: crc32c(crc32c(seed, ino), gen). */
export function inodeCsumSeed(seed: number, ino: number, gen: number): number {
  return crc32cU32(crc32cU32(seed, ino), gen);
}

/** Offsets inside struct ext4_inode of the two checksum halves. */
export const I_CHECKSUM_LO = 0x7c;
export const I_CHECKSUM_HI = 0x82;
export const GOOD_OLD_INODE_SIZE = 128;

/** Does the inode's extra space reach i_checksum_hi (i_extra_isize ≥ 4)? */
export function inodeHasChecksumHi(raw: Uint8Array): boolean {
  if (raw.length <= GOOD_OLD_INODE_SIZE) return false;
  const extra = raw[0x80]! | (raw[0x81]! << 8);
  return extra >= 4;
}

/**
 * Full 32-bit inode checksum over `raw` (the whole on-disk inode, s_inode_size
 * bytes) with both checksum fields taken as zero. When the inode has no room
 * for i_checksum_hi only the low 16 bits are stored.
 */
export function inodeChecksum(seed: number, ino: number, gen: number, raw: Uint8Array): number {
  const zero = new Uint8Array(2);
  let c = inodeCsumSeed(seed, ino, gen);
  c = crc32cRaw(c, raw, 0, I_CHECKSUM_LO);
  c = crc32cRaw(c, zero);
  c = crc32cRaw(c, raw, I_CHECKSUM_LO + 2, Math.min(GOOD_OLD_INODE_SIZE, raw.length));
  if (raw.length > GOOD_OLD_INODE_SIZE) {
    c = crc32cRaw(c, raw, GOOD_OLD_INODE_SIZE, I_CHECKSUM_HI);
    let off = I_CHECKSUM_HI;
    if (inodeHasChecksumHi(raw)) {
      c = crc32cRaw(c, zero);
      off += 2;
    }
    c = crc32cRaw(c, raw, off, raw.length);
  }
  return c >>> 0;
}

/** bg_checksum offset inside a group descriptor. */
export const BG_CHECKSUM = 0x1e;

/**
 * Group descriptor checksum (bg_checksum, 16 bits). metadata_csum:
 * crc32c(seed, le32 group ‖ desc with bg_checksum zeroed) & 0xffff.
 * gdt_csum (uninit_bg) without metadata_csum: crc16(~0, uuid ‖ le32 group ‖ desc
 * before bg_checksum ‖ rest of a 64-bit desc).
 */
export function groupDescChecksum(
  kind: 'crc32c' | 'crc16',
  seedOrUuid: number | Uint8Array,
  group: number,
  desc: Uint8Array,
): number {
  const g = new Uint8Array([group & 0xff, (group >>> 8) & 0xff, (group >>> 16) & 0xff, (group >>> 24) & 0xff]);
  if (kind === 'crc32c') {
    let c = crc32cRaw(seedOrUuid as number, g);
    c = crc32cRaw(c, desc, 0, BG_CHECKSUM);
    c = crc32cRaw(c, new Uint8Array(2));
    c = crc32cRaw(c, desc, BG_CHECKSUM + 2, desc.length);
    return c & 0xffff;
  }
  let c = crc16(0xffff, seedOrUuid as Uint8Array);
  c = crc16(c, g);
  c = crc16(c, desc, 0, BG_CHECKSUM);
  if (desc.length > BG_CHECKSUM + 2) c = crc16(c, desc, BG_CHECKSUM + 2, desc.length);
  return c & 0xffff;
}

/** Block or inode bitmap checksum: crc32c(seed, the bitmap's meaningful bytes). Caller stores lo 16 bits, and hi 16 with 64-byte descriptors. */
export function bitmapChecksum(seed: number, bitmap: Uint8Array, bytes: number): number {
  return crc32cRaw(seed, bitmap, 0, bytes);
}

/** Directory leaf block checksum (struct ext4_dir_entry_tail.det_checksum) over the block before the 12-byte tail. */
export function dirLeafChecksum(inodeSeed: number, block: Uint8Array): number {
  return crc32cRaw(inodeSeed, block, 0, block.length - 12);
}

/** Extent block checksum (struct ext4_extent_tail) over the header and eh_max entries. */
export function extentBlockChecksum(inodeSeed: number, block: Uint8Array, ehMax: number): number {
  return crc32cRaw(inodeSeed, block, 0, 12 + 12 * ehMax);
}

/**
 * htree node checksum (struct dx_tail.dt_checksum): over the block up to the
 * last used dx_entry, then dt_reserved, then a zero checksum.
 */
export function dxNodeChecksum(inodeSeed: number, block: Uint8Array, countOffset: number, count: number, tailOffset: number): number {
  let c = crc32cRaw(inodeSeed, block, 0, countOffset + count * 8);
  c = crc32cRaw(c, block, tailOffset, tailOffset + 4);
  c = crc32cRaw(c, new Uint8Array(4));
  return c >>> 0;
}

/** CRC-16 (ANSI, reflected 0xA001) as e2fsprogs' ext2fs_crc16, for gdt_csum (uninit_bg). */
const CRC16 = new Uint16Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
  CRC16[n] = c;
}
export function crc16(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = crc & 0xffff;
  for (let i = start; i < end; i++) c = (CRC16[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)) & 0xffff;
  return c;
}
