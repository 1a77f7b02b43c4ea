import { FormatError } from '@diskimg/partitions/internal';
import { crc32cRaw } from './crc32c.js';
import { asBuffer, decodeFields, encodeFields, type FieldDef, type StructOf } from './struct.js';

/** jbd2 block header magic and block types. */
export const JBD2_MAGIC_NUMBER = 0xc03b3998;
export const JBD2_SUPERBLOCK_V1 = 3;
export const JBD2_SUPERBLOCK_V2 = 4;
export const JOURNAL_SUPERBLOCK_SIZE = 1024;

/** s_feature_incompat bits. */
export const JBD2_FEATURE_INCOMPAT_REVOKE = 0x1;
export const JBD2_FEATURE_INCOMPAT_64BIT = 0x2;
export const JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT = 0x4;
export const JBD2_FEATURE_INCOMPAT_CSUM_V2 = 0x8;
export const JBD2_FEATURE_INCOMPAT_CSUM_V3 = 0x10;
export const JBD2_FEATURE_INCOMPAT_FAST_COMMIT = 0x20;
/** s_checksum_type for crc32c. */
export const JBD2_CRC32C_CHKSUM = 4;
const S_CHECKSUM = 0xfc;

/** journal_superblock_t (include/linux/jbd2.h), all big-endian. */
export const JOURNAL_SUPERBLOCK_FIELDS = [
  ['h_magic', 0x0, 'be32'],
  ['h_blocktype', 0x4, 'be32'],
  ['h_sequence', 0x8, 'be32'],
  ['s_blocksize', 0xc, 'be32'],
  ['s_maxlen', 0x10, 'be32'],
  ['s_first', 0x14, 'be32'],
  ['s_sequence', 0x18, 'be32'],
  ['s_start', 0x1c, 'be32'],
  ['s_errno', 0x20, 'be32'], // s32 on disk
  ['s_feature_compat', 0x24, 'be32'],
  ['s_feature_incompat', 0x28, 'be32'],
  ['s_feature_ro_compat', 0x2c, 'be32'],
  ['s_uuid', 0x30, 'b16'],
  ['s_nr_users', 0x40, 'be32'],
  ['s_dynsuper', 0x44, 'be32'],
  ['s_max_transaction', 0x48, 'be32'],
  ['s_max_trans_data', 0x4c, 'be32'],
  ['s_checksum_type', 0x50, 'u8'],
  ['s_padding2', 0x51, 'b3'],
  ['s_num_fc_blks', 0x54, 'be32'],
  ['s_head', 0x58, 'be32'],
  ['s_padding', 0x5c, 'b160'], // 40 × u32
  ['s_checksum', S_CHECKSUM, 'be32'],
  ['s_users', 0x100, 'b768'], // 48 × 16-byte UUIDs
] as const satisfies readonly FieldDef[];

export type JournalSuperblock = StructOf<typeof JOURNAL_SUPERBLOCK_FIELDS>;

function hasCsum(j: { s_feature_incompat: number; h_blocktype: number }): boolean {
  return j.h_blocktype === JBD2_SUPERBLOCK_V2 && (j.s_feature_incompat & (JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3)) !== 0;
}

/** crc32c(~0, the 1024-byte superblock with s_checksum zeroed), as jbd2_superblock_csum. */
export function journalSuperblockChecksum(bytes: Uint8Array): number {
  let c = crc32cRaw(0xffffffff, bytes, 0, S_CHECKSUM);
  c = crc32cRaw(c, new Uint8Array(4));
  return crc32cRaw(c, bytes, S_CHECKSUM + 4, JOURNAL_SUPERBLOCK_SIZE);
}

/** Decode a jbd2 superblock (the first 1024 bytes of the journal's first block); validates magic, type and the v2/v3 checksum. */
export function decodeJournalSuperblock(bytes: Uint8Array): JournalSuperblock {
  const S = 'jbd2 journal superblock';
  if (bytes.length < JOURNAL_SUPERBLOCK_SIZE) throw new FormatError(S, `${bytes.length} bytes, need ${JOURNAL_SUPERBLOCK_SIZE}`);
  const b = asBuffer(bytes).subarray(0, JOURNAL_SUPERBLOCK_SIZE);
  const j = decodeFields(JOURNAL_SUPERBLOCK_FIELDS, b);
  if (j.h_magic !== JBD2_MAGIC_NUMBER) throw new FormatError(S, `h_magic is 0x${j.h_magic.toString(16)}, not 0xc03b3998`);
  if (j.h_blocktype !== JBD2_SUPERBLOCK_V1 && j.h_blocktype !== JBD2_SUPERBLOCK_V2) throw new FormatError(S, `h_blocktype ${j.h_blocktype} is not a superblock (3 or 4)`);
  if (hasCsum(j)) {
    if (j.s_checksum_type !== JBD2_CRC32C_CHKSUM && (j.s_feature_incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3)) {
      throw new FormatError(S, `s_checksum_type ${j.s_checksum_type} is not crc32c (4)`);
    }
    const want = journalSuperblockChecksum(b);
    if (want !== j.s_checksum) throw new FormatError(S, `s_checksum mismatch (stored 0x${j.s_checksum.toString(16)}, computed 0x${want.toString(16)})`);
  }
  return j;
}

/** Encode a jbd2 superblock (1024 bytes); with CSUM_V2/V3 on a v2 superblock, s_checksum is computed last. */
export function encodeJournalSuperblock(j: JournalSuperblock): Buffer {
  const b = Buffer.alloc(JOURNAL_SUPERBLOCK_SIZE);
  encodeFields(JOURNAL_SUPERBLOCK_FIELDS, j, b, 'jbd2 journal superblock');
  if (hasCsum(j)) b.writeUInt32BE(journalSuperblockChecksum(b), S_CHECKSUM);
  return b;
}
