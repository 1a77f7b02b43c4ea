import { BLOCK_SIZE, DESC_SIZE, FIRST_INO, INODE_SIZE, LOG_GROUPS_PER_FLEX, type Geometry } from './geometry.js';
import { setBits, blockBitmapChecksum, inodeBitmapChecksum, bitmapChecksumField } from './bitmap.js';
import { encodeGroupDesc, BG_INODE_UNINIT, BG_INODE_ZEROED } from './group-desc.js';
import { EXT4_SUPER_MAGIC, EXT4_CRC32C_CHKSUM, type Superblock } from './superblock.js';
import { featureWords, type Feature } from './features.js';
import { EXT4_JOURNAL_INO } from './inode.js';

/**
 * The final per-group metadata and the superblock of a new filesystem, as
 * pure functions of the geometry and what the writer allocated. Blocks are
 * handed out by a forward-only cursor and inodes in order, so "used" is a
 * prefix in both cases.
 */
export const EXT4_FEATURES = [
  'has_journal', 'ext_attr', 'dir_index', 'filetype', 'extent', '64bit', 'flex_bg',
  'sparse_super', 'large_file', 'huge_file', 'dir_nlink', 'extra_isize', 'metadata_csum',
] as const satisfies readonly Feature[];

export interface GroupState {
  /** Every block below this is in use (data, directories, journal, tree blocks). */
  allocatedBelow: number;
  /** Inodes 1..usedInodes are in use. */
  usedInodes: number;
  /** Directories among this group's inodes. */
  dirs: number;
  csumSeed: number;
  /** Inode tables of empty groups were zeroed too (ITABLE_ZEROED on every group). */
  zeroedInodeTables: boolean;
}

export interface BuiltGroup {
  blockBitmap: Buffer;
  inodeBitmap: Buffer;
  /** The 64-byte descriptor with its checksum. */
  desc: Buffer;
  freeBlocks: number;
}

export function buildGroup(geo: Geometry, g: number, st: GroupState): BuiltGroup {
  const gp = geo.groups[g]!;
  const ipg = geo.inodesPerGroup;
  // Block bitmap: used = below the cursor, or fixed metadata; padding past a short last group is set.
  const bb = Buffer.alloc(BLOCK_SIZE);
  const end = gp.start + gp.blocks;
  const below = Math.min(end, st.allocatedBelow) - gp.start;
  if (below > 0) setBits(bb, 0, below);
  for (const [s, e] of geo.metadata) {
    const a = Math.max(s, gp.start);
    const b = Math.min(e, end);
    if (a < b) setBits(bb, a - gp.start, b - gp.start);
  }
  if (gp.blocks < geo.blocksPerGroup) setBits(bb, gp.blocks, BLOCK_SIZE * 8);
  const freeBlocks = gp.blocks - popcount(bb, gp.blocks);
  // Inode bitmap: bits past inodes_per_group are padding, set as mke2fs does.
  const ib = Buffer.alloc(BLOCK_SIZE);
  const usedHere = Math.max(0, Math.min(ipg, st.usedInodes - g * ipg));
  setBits(ib, 0, usedHere);
  setBits(ib, ipg, BLOCK_SIZE * 8);
  // A group without inodes stays INODE_UNINIT with its whole table unused (exact bg_itable_unused, as mke2fs);
  // its table is zeroed (ITABLE_ZEROED) only on request, otherwise the kernel's lazyinit zeroes it on first rw mount.
  let flags = 0;
  if (usedHere === 0) flags |= BG_INODE_UNINIT;
  if (usedHere > 0 || st.zeroedInodeTables) flags |= BG_INODE_ZEROED;
  const desc = encodeGroupDesc(
    {
      bg_block_bitmap: gp.blockBitmap,
      bg_inode_bitmap: gp.inodeBitmap,
      bg_inode_table: gp.inodeTable,
      bg_free_blocks_count: freeBlocks,
      bg_free_inodes_count: ipg - usedHere,
      bg_used_dirs_count: st.dirs,
      bg_flags: flags,
      bg_exclude_bitmap: 0,
      bg_block_bitmap_csum: bitmapChecksumField(blockBitmapChecksum(st.csumSeed, bb, geo.blocksPerGroup), DESC_SIZE),
      bg_inode_bitmap_csum: bitmapChecksumField(inodeBitmapChecksum(st.csumSeed, ib, ipg), DESC_SIZE),
      bg_itable_unused: ipg - usedHere,
      bg_checksum: 0,
      bg_reserved: 0,
    },
    { group: g, csumSeed: st.csumSeed, size: DESC_SIZE },
  );
  return { blockBitmap: bb, inodeBitmap: ib, desc, freeBlocks };
}

export interface SuperblockState {
  freeBlocks: number;
  freeInodes: number;
  now: number;
  uuid: Buffer;
  hashSeed: Buffer;
  label: Buffer;
  /** The journal inode's i_block and size, copied into s_jnl_blocks (EXT3_JNL_BACKUP_BLOCKS). */
  journalIblock: Buffer;
  journalSize: number;
}

/** The superblock fields mke2fs 1.47 sets for our feature list (s_block_group_nr 0; the caller sets it per backup). */
export function buildSuperblock(geo: Geometry, st: SuperblockState): Superblock {
  const jnl: number[] = [];
  for (let i = 0; i < 15; i++) jnl.push(st.journalIblock.readUInt32LE(i * 4));
  jnl.push(Math.floor(st.journalSize / 2 ** 32), st.journalSize % 2 ** 32);
  const sb: Record<string, unknown> = {
    s_inodes_count: geo.inodesCount,
    s_blocks_count: geo.blocksCount,
    s_r_blocks_count: geo.reservedBlocks,
    s_free_blocks_count: st.freeBlocks,
    s_free_inodes_count: st.freeInodes,
    s_first_data_block: 0,
    s_log_block_size: Math.log2(BLOCK_SIZE) - 10,
    s_log_cluster_size: Math.log2(BLOCK_SIZE) - 10,
    s_blocks_per_group: geo.blocksPerGroup,
    s_clusters_per_group: geo.blocksPerGroup,
    s_inodes_per_group: geo.inodesPerGroup,
    s_mtime: 0,
    s_wtime: st.now,
    s_mnt_count: 0,
    s_max_mnt_count: 0xffff, // -1: no mount-count check
    s_magic: EXT4_SUPER_MAGIC,
    s_state: 1, // clean
    s_errors: 1, // continue
    s_minor_rev_level: 0,
    s_lastcheck: st.now,
    s_checkinterval: 0,
    s_creator_os: 0, // Linux
    s_rev_level: 1, // dynamic
    s_def_resuid: 0,
    s_def_resgid: 0,
    s_first_ino: FIRST_INO,
    s_inode_size: INODE_SIZE,
    s_block_group_nr: 0,
    ...featureWords([...EXT4_FEATURES]),
    s_uuid: st.uuid,
    s_volume_name: st.label,
    s_last_mounted: Buffer.alloc(0),
    s_journal_inum: EXT4_JOURNAL_INO,
    s_hash_seed: [0, 4, 8, 12].map((o) => st.hashSeed.readUInt32LE(o)),
    s_def_hash_version: 1, // half_md4, as mke2fs
    s_jnl_backup_type: 1, // EXT3_JNL_BACKUP_BLOCKS
    s_desc_size: DESC_SIZE,
    s_default_mount_opts: 0x0004 | 0x0008, // user_xattr, acl (mke2fs.conf default_mntopts)
    s_mkfs_time: st.now,
    s_jnl_blocks: jnl,
    s_min_extra_isize: 32,
    s_want_extra_isize: 32,
    s_flags: 0x1, // signed_directory_hash
    s_log_groups_per_flex: LOG_GROUPS_PER_FLEX,
    s_checksum_type: EXT4_CRC32C_CHKSUM,
  };
  return sb as unknown as Superblock;
}

const POP = new Uint8Array(256).map((_, i) => {
  let c = 0;
  for (let x = i; x; x >>= 1) c += x & 1;
  return c;
});

function popcount(b: Buffer, bits: number): number {
  let c = 0;
  const full = bits >>> 3;
  for (let i = 0; i < full; i++) c += POP[b[i]!]!;
  for (let i = full * 8; i < bits; i++) if (b[i >>> 3]! & (1 << (i & 7))) c++;
  return c;
}
