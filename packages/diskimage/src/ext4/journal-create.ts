import { encodeJournalSuperblock, JBD2_MAGIC_NUMBER, JBD2_SUPERBLOCK_V2, type JournalSuperblock } from './journal-superblock.js';

/**
 * The first block of a new internal journal (inode 8), as mke2fs 1.47
 * writes it (ext2fs_create_journal_superblock2): jbd2 v2 superblock,
 * s_first 1, s_sequence 1, s_start 0 (empty: nothing to replay), one user,
 * the filesystem UUID, no journal features (the kernel turns on csum v3 at
 * mount when the filesystem has metadata_csum; mke2fs 1.47.0 leaves it off,
 * as dumpe2fs of a real mkfs.ext4 shows "Journal features: (none)").
 * The caller zeroes the other journal blocks.
 */
export function journalSuperblockBlock(journalBlocks: number, blockSize: number, fsUuid: Buffer): Buffer {
  const j: Record<string, unknown> = {
    h_magic: JBD2_MAGIC_NUMBER,
    h_blocktype: JBD2_SUPERBLOCK_V2,
    h_sequence: 0,
    s_blocksize: blockSize,
    s_maxlen: journalBlocks,
    s_first: 1,
    s_sequence: 1,
    s_start: 0,
    s_nr_users: 1,
    s_uuid: fsUuid,
  };
  const block = Buffer.alloc(blockSize);
  encodeJournalSuperblock(j as unknown as JournalSuperblock).copy(block);
  return block;
}
