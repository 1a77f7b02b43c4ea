import { crc32 } from 'node:zlib';
import { FormatError, InputError } from './errors.js';
import { guidFromBytes, guidToBytes } from './guid.js';

/** GPT header field offsets (UEFI spec 2.10, table 5.21). */
export const GPT_HEADER = {
  Signature: 0, // "EFI PART"
  Revision: 8, // u32, 0x00010000
  HeaderSize: 12, // u32, 92
  HeaderCRC32: 16, // u32, over HeaderSize bytes with this field zeroed
  Reserved: 20, // u32, must be 0
  MyLBA: 24, // u64
  AlternateLBA: 32, // u64
  FirstUsableLBA: 40, // u64
  LastUsableLBA: 48, // u64
  DiskGUID: 56, // 16 bytes
  PartitionEntryLBA: 72, // u64
  NumberOfPartitionEntries: 80, // u32
  SizeOfPartitionEntry: 84, // u32, 128 × 2^n
  PartitionEntryArrayCRC32: 88, // u32
} as const;

export const GPT_SIGNATURE = Buffer.from('EFI PART', 'latin1');
export const GPT_REVISION = 0x00010000;
export const GPT_HEADER_SIZE = 92;
/** Guard against absurd headers (fuzzed or hostile) before allocating an entry array. */
export const MAX_ENTRY_ARRAY_BYTES = 4 * 1024 * 1024;

export interface GptHeader {
  revision: number;
  headerSize: number;
  myLba: number;
  alternateLba: number;
  firstUsableLba: number;
  lastUsableLba: number;
  diskGuid: string;
  partitionEntryLba: number;
  numberOfPartitionEntries: number;
  sizeOfPartitionEntry: number;
  partitionEntryArrayCrc32: number;
}

/** Encode a header into one logical sector (`sectorSize` bytes, the rest zero); the CRC is filled last. */
export function encodeGptHeader(h: GptHeader, sectorSize: number): Buffer {
  if (h.headerSize < GPT_HEADER_SIZE || h.headerSize > sectorSize) {
    throw new InputError(`GPT header: HeaderSize ${h.headerSize} must be ${GPT_HEADER_SIZE}..${sectorSize}`);
  }
  const b = Buffer.alloc(sectorSize);
  GPT_SIGNATURE.copy(b, GPT_HEADER.Signature);
  b.writeUInt32LE(h.revision >>> 0, GPT_HEADER.Revision);
  b.writeUInt32LE(h.headerSize, GPT_HEADER.HeaderSize);
  b.writeBigUInt64LE(BigInt(h.myLba), GPT_HEADER.MyLBA);
  b.writeBigUInt64LE(BigInt(h.alternateLba), GPT_HEADER.AlternateLBA);
  b.writeBigUInt64LE(BigInt(h.firstUsableLba), GPT_HEADER.FirstUsableLBA);
  b.writeBigUInt64LE(BigInt(h.lastUsableLba), GPT_HEADER.LastUsableLBA);
  guidToBytes(h.diskGuid).copy(b, GPT_HEADER.DiskGUID);
  b.writeBigUInt64LE(BigInt(h.partitionEntryLba), GPT_HEADER.PartitionEntryLBA);
  b.writeUInt32LE(h.numberOfPartitionEntries >>> 0, GPT_HEADER.NumberOfPartitionEntries);
  b.writeUInt32LE(h.sizeOfPartitionEntry >>> 0, GPT_HEADER.SizeOfPartitionEntry);
  b.writeUInt32LE(h.partitionEntryArrayCrc32 >>> 0, GPT_HEADER.PartitionEntryArrayCRC32);
  b.writeUInt32LE(crc32(b.subarray(0, h.headerSize)), GPT_HEADER.HeaderCRC32);
  return b;
}

/** Cheap test: does this sector start with "EFI PART"? */
export function hasGptSignature(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && Buffer.from(bytes.buffer, bytes.byteOffset, 8).equals(GPT_SIGNATURE);
}

/**
 * Decode and validate a header sector: signature, size, CRC, reserved field,
 * entry size, and internal consistency of the LBAs. Throws FormatError naming
 * the field. Checks against the disk (MyLBA, bounds) are the table reader's job.
 */
export function decodeGptHeader(bytes: Uint8Array): GptHeader {
  const S = 'GPT header';
  if (bytes.length < GPT_HEADER_SIZE) throw new FormatError(S, `needs ${GPT_HEADER_SIZE} bytes, got ${bytes.length}`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (!hasGptSignature(b)) throw new FormatError(S, 'Signature is not "EFI PART"');
  const headerSize = b.readUInt32LE(GPT_HEADER.HeaderSize);
  if (headerSize < GPT_HEADER_SIZE || headerSize > b.length) {
    throw new FormatError(S, `HeaderSize ${headerSize} out of range ${GPT_HEADER_SIZE}..${b.length}`);
  }
  const stored = b.readUInt32LE(GPT_HEADER.HeaderCRC32);
  const copy = Buffer.from(b.subarray(0, headerSize));
  copy.writeUInt32LE(0, GPT_HEADER.HeaderCRC32);
  const actual = crc32(copy);
  if (stored !== actual) throw new FormatError(S, `HeaderCRC32 mismatch (stored ${hex32(stored)}, computed ${hex32(actual)})`);
  if (b.readUInt32LE(GPT_HEADER.Reserved) !== 0) throw new FormatError(S, 'Reserved field is not zero');
  const revision = b.readUInt32LE(GPT_HEADER.Revision);
  if (revision >>> 16 !== 1) throw new FormatError(S, `Revision ${hex32(revision)} is not 1.x`);
  const h: GptHeader = {
    revision,
    headerSize,
    myLba: u64(b, GPT_HEADER.MyLBA, 'MyLBA'),
    alternateLba: u64(b, GPT_HEADER.AlternateLBA, 'AlternateLBA'),
    firstUsableLba: u64(b, GPT_HEADER.FirstUsableLBA, 'FirstUsableLBA'),
    lastUsableLba: u64(b, GPT_HEADER.LastUsableLBA, 'LastUsableLBA'),
    diskGuid: guidFromBytes(b, GPT_HEADER.DiskGUID),
    partitionEntryLba: u64(b, GPT_HEADER.PartitionEntryLBA, 'PartitionEntryLBA'),
    numberOfPartitionEntries: b.readUInt32LE(GPT_HEADER.NumberOfPartitionEntries),
    sizeOfPartitionEntry: b.readUInt32LE(GPT_HEADER.SizeOfPartitionEntry),
    partitionEntryArrayCrc32: b.readUInt32LE(GPT_HEADER.PartitionEntryArrayCRC32),
  };
  const es = h.sizeOfPartitionEntry;
  if (es < 128 || (es & (es - 1)) !== 0) throw new FormatError(S, `SizeOfPartitionEntry ${es} is not 128 × 2^n`);
  if (h.numberOfPartitionEntries * es > MAX_ENTRY_ARRAY_BYTES) {
    throw new FormatError(S, `entry array of ${h.numberOfPartitionEntries} × ${es} bytes is implausibly large`);
  }
  if (h.firstUsableLba > h.lastUsableLba + 1) {
    throw new FormatError(S, `FirstUsableLBA ${h.firstUsableLba} is beyond LastUsableLBA ${h.lastUsableLba}`);
  }
  if (h.myLba === h.alternateLba) throw new FormatError(S, `MyLBA and AlternateLBA are both ${h.myLba}`);
  return h;
}

/** Number of logical sectors the entry array occupies. */
export function entryArraySectors(h: Pick<GptHeader, 'numberOfPartitionEntries' | 'sizeOfPartitionEntry'>, sectorSize: number): number {
  return Math.ceil((h.numberOfPartitionEntries * h.sizeOfPartitionEntry) / sectorSize);
}

function u64(b: Buffer, off: number, field: string): number {
  const v = b.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError('GPT header', `${field} ${v} is too large`);
  return Number(v);
}

export function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}
