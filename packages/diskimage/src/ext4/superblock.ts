import { FormatError } from '@diskimg/partitions/internal';
import { crc32cRaw } from './crc32c.js';
import { asBuffer, decodeFields, encodeFields, type FieldDef, type StructOf } from './struct.js';
import { RO_COMPAT } from './features.js';

/** The primary superblock lives at byte 1024 of the filesystem, whatever the block size. */
export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;
export const EXT4_SUPER_MAGIC = 0xef53;
/** s_checksum_type value for crc32c. */
export const EXT4_CRC32C_CHKSUM = 1;
const S_CHECKSUM = 0x3fc;

/**
 * struct ext4_super_block (Documentation/filesystems/ext4/super.rst).
 * *_lo/*_hi pairs are combined into one field named without the suffix
 * (s_blocks_count = s_blocks_count_lo + s_blocks_count_hi << 32; times with
 * their 8-bit *_hi extension likewise).
 */
export const SUPERBLOCK_FIELDS = [
  ['s_inodes_count', 0x0, 'u32'],
  ['s_blocks_count', 0x4, 'u32', 0x150, 'u32'],
  ['s_r_blocks_count', 0x8, 'u32', 0x154, 'u32'],
  ['s_free_blocks_count', 0xc, 'u32', 0x158, 'u32'],
  ['s_free_inodes_count', 0x10, 'u32'],
  ['s_first_data_block', 0x14, 'u32'],
  ['s_log_block_size', 0x18, 'u32'],
  ['s_log_cluster_size', 0x1c, 'u32'],
  ['s_blocks_per_group', 0x20, 'u32'],
  ['s_clusters_per_group', 0x24, 'u32'],
  ['s_inodes_per_group', 0x28, 'u32'],
  ['s_mtime', 0x2c, 'u32', 0x275, 'u8'],
  ['s_wtime', 0x30, 'u32', 0x274, 'u8'],
  ['s_mnt_count', 0x34, 'u16'],
  ['s_max_mnt_count', 0x36, 'u16'], // s16 on disk; 0xffff = -1 (no limit)
  ['s_magic', 0x38, 'u16'],
  ['s_state', 0x3a, 'u16'],
  ['s_errors', 0x3c, 'u16'],
  ['s_minor_rev_level', 0x3e, 'u16'],
  ['s_lastcheck', 0x40, 'u32', 0x277, 'u8'],
  ['s_checkinterval', 0x44, 'u32'],
  ['s_creator_os', 0x48, 'u32'],
  ['s_rev_level', 0x4c, 'u32'],
  ['s_def_resuid', 0x50, 'u16'],
  ['s_def_resgid', 0x52, 'u16'],
  ['s_first_ino', 0x54, 'u32'],
  ['s_inode_size', 0x58, 'u16'],
  ['s_block_group_nr', 0x5a, 'u16'],
  ['s_feature_compat', 0x5c, 'u32'],
  ['s_feature_incompat', 0x60, 'u32'],
  ['s_feature_ro_compat', 0x64, 'u32'],
  ['s_uuid', 0x68, 'b16'],
  ['s_volume_name', 0x78, 'b16'],
  ['s_last_mounted', 0x88, 'b64'],
  ['s_algorithm_usage_bitmap', 0xc8, 'u32'],
  ['s_prealloc_blocks', 0xcc, 'u8'],
  ['s_prealloc_dir_blocks', 0xcd, 'u8'],
  ['s_reserved_gdt_blocks', 0xce, 'u16'],
  ['s_journal_uuid', 0xd0, 'b16'],
  ['s_journal_inum', 0xe0, 'u32'],
  ['s_journal_dev', 0xe4, 'u32'],
  ['s_last_orphan', 0xe8, 'u32'],
  ['s_hash_seed', 0xec, 'u32x4'],
  ['s_def_hash_version', 0xfc, 'u8'],
  ['s_jnl_backup_type', 0xfd, 'u8'],
  ['s_desc_size', 0xfe, 'u16'],
  ['s_default_mount_opts', 0x100, 'u32'],
  ['s_first_meta_bg', 0x104, 'u32'],
  ['s_mkfs_time', 0x108, 'u32', 0x276, 'u8'],
  ['s_jnl_blocks', 0x10c, 'u32x17'],
  ['s_min_extra_isize', 0x15c, 'u16'],
  ['s_want_extra_isize', 0x15e, 'u16'],
  ['s_flags', 0x160, 'u32'],
  ['s_raid_stride', 0x164, 'u16'],
  ['s_mmp_interval', 0x166, 'u16'],
  ['s_mmp_block', 0x168, 'u64'],
  ['s_raid_stripe_width', 0x170, 'u32'],
  ['s_log_groups_per_flex', 0x174, 'u8'],
  ['s_checksum_type', 0x175, 'u8'],
  ['s_encryption_level', 0x176, 'u8'],
  ['s_reserved_pad', 0x177, 'u8'],
  ['s_kbytes_written', 0x178, 'u64'],
  ['s_snapshot_inum', 0x180, 'u32'],
  ['s_snapshot_id', 0x184, 'u32'],
  ['s_snapshot_r_blocks_count', 0x188, 'u64'],
  ['s_snapshot_list', 0x190, 'u32'],
  ['s_error_count', 0x194, 'u32'],
  ['s_first_error_time', 0x198, 'u32', 0x278, 'u8'],
  ['s_first_error_ino', 0x19c, 'u32'],
  ['s_first_error_block', 0x1a0, 'u64'],
  ['s_first_error_func', 0x1a8, 'b32'],
  ['s_first_error_line', 0x1c8, 'u32'],
  ['s_last_error_time', 0x1cc, 'u32', 0x279, 'u8'],
  ['s_last_error_ino', 0x1d0, 'u32'],
  ['s_last_error_line', 0x1d4, 'u32'],
  ['s_last_error_block', 0x1d8, 'u64'],
  ['s_last_error_func', 0x1e0, 'b32'],
  ['s_mount_opts', 0x200, 'b64'],
  ['s_usr_quota_inum', 0x240, 'u32'],
  ['s_grp_quota_inum', 0x244, 'u32'],
  ['s_overhead_clusters', 0x248, 'u32'],
  ['s_backup_bgs', 0x24c, 'u32x2'],
  ['s_encrypt_algos', 0x254, 'b4'],
  ['s_encrypt_pw_salt', 0x258, 'b16'],
  ['s_lpf_ino', 0x268, 'u32'],
  ['s_prj_quota_inum', 0x26c, 'u32'],
  ['s_checksum_seed', 0x270, 'u32'],
  ['s_first_error_errcode', 0x27a, 'u8'],
  ['s_last_error_errcode', 0x27b, 'u8'],
  ['s_encoding', 0x27c, 'u16'],
  ['s_encoding_flags', 0x27e, 'u16'],
  ['s_orphan_file_inum', 0x280, 'u32'],
  ['s_reserved', 0x284, 'b376'], // 94 u32, zero
  ['s_checksum', S_CHECKSUM, 'u32'],
] as const satisfies readonly FieldDef[];

export type Superblock = StructOf<typeof SUPERBLOCK_FIELDS>;

/** crc32c(~0, superblock bytes before s_checksum): what metadata_csum stores in s_checksum. */
export function superblockChecksum(bytes: Uint8Array): number {
  return crc32cRaw(0xffffffff, bytes, 0, S_CHECKSUM);
}

function hasMetadataCsum(sb: { s_feature_ro_compat: number }): boolean {
  return (sb.s_feature_ro_compat & RO_COMPAT.metadata_csum) !== 0;
}

export interface DecodeSuperblockOptions {
  /** Skip the s_checksum check (e.g. to inspect a damaged filesystem). */
  ignoreChecksum?: boolean;
}

/**
 * Decode the 1024-byte superblock. Validates the magic, the block size range,
 * and, with metadata_csum, s_checksum_type and s_checksum.
 */
export function decodeSuperblock(bytes: Uint8Array, opts: DecodeSuperblockOptions = {}): Superblock {
  const S = 'ext4 superblock';
  if (bytes.length < SUPERBLOCK_SIZE) throw new FormatError(S, `${bytes.length} bytes, need ${SUPERBLOCK_SIZE}`);
  const b = asBuffer(bytes).subarray(0, SUPERBLOCK_SIZE);
  const sb = decodeFields(SUPERBLOCK_FIELDS, b);
  if (sb.s_magic !== EXT4_SUPER_MAGIC) {
    throw new FormatError(S, `s_magic is 0x${sb.s_magic.toString(16)}, not 0xef53 (not an ext2/3/4 filesystem)`);
  }
  if (sb.s_log_block_size > 6) throw new FormatError(S, `s_log_block_size ${sb.s_log_block_size} out of range (block size 1 KiB to 64 KiB)`);
  if (hasMetadataCsum(sb) && !opts.ignoreChecksum) {
    if (sb.s_checksum_type !== EXT4_CRC32C_CHKSUM) throw new FormatError(S, `s_checksum_type ${sb.s_checksum_type} is not crc32c (1)`);
    const want = superblockChecksum(b);
    if (want !== sb.s_checksum) {
      throw new FormatError(S, `s_checksum mismatch (stored 0x${sb.s_checksum.toString(16)}, computed 0x${want.toString(16)})`);
    }
  }
  return sb;
}

/**
 * Encode a superblock to 1024 bytes. With metadata_csum set in
 * s_feature_ro_compat, s_checksum is computed last (the field's value is ignored).
 */
export function encodeSuperblock(sb: Superblock): Buffer {
  const b = Buffer.alloc(SUPERBLOCK_SIZE);
  encodeFields(SUPERBLOCK_FIELDS, sb, b, 'ext4 superblock');
  if (hasMetadataCsum(sb)) b.writeUInt32LE(superblockChecksum(b), S_CHECKSUM);
  return b;
}

/** Block size in bytes (1024 << s_log_block_size). */
export function blockSize(sb: Pick<Superblock, 's_log_block_size'>): number {
  return 1024 << sb.s_log_block_size;
}

/** Number of block groups. */
export function groupCount(sb: Pick<Superblock, 's_blocks_count' | 's_first_data_block' | 's_blocks_per_group'>): number {
  return Math.ceil((sb.s_blocks_count - sb.s_first_data_block) / sb.s_blocks_per_group);
}
