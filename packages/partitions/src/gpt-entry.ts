import { crc32 } from 'node:zlib';
import { FormatError, InputError } from './errors.js';
import { ZERO_GUID, guidFromBytes, guidToBytes } from './guid.js';

/** GPT partition entry field offsets (UEFI spec 2.10, table 5.22). */
export const GPT_ENTRY = {
  PartitionTypeGUID: 0,
  UniquePartitionGUID: 16,
  StartingLBA: 32, // u64
  EndingLBA: 40, // u64, inclusive
  Attributes: 48, // u64
  PartitionName: 56, // 72 bytes: 36 UTF-16LE code units
} as const;
export const GPT_ENTRY_SIZE = 128;
export const GPT_NAME_UNITS = 36;

export interface GptEntry {
  typeGuid: string;
  uniqueGuid: string;
  startingLba: number;
  endingLba: number;
  /** All 64 bits, kept as is. */
  attributes: bigint;
  name: string;
}

/** Attribute bits named by the UEFI spec (0–2) and ChromeOS (48–56, GUID-specific range). */
export const GPT_ATTR = {
  RequiredPartition: 0,
  NoBlockIOProtocol: 1,
  LegacyBIOSBootable: 2,
} as const;
export const CHROMEOS_ATTR = { priorityShift: 48, triesShift: 52, successfulBit: 56 } as const;

export function isUnused(e: GptEntry): boolean {
  return e.typeGuid === ZERO_GUID;
}

/** Throws InputError unless `name` fits the 36 UTF-16 code units of an entry (and has no NUL). */
export function checkPartitionName(name: string): void {
  if (name.length > GPT_NAME_UNITS) {
    throw new InputError(`partition name "${name}": ${name.length} UTF-16 code units, GPT allows at most ${GPT_NAME_UNITS}; shorten it`);
  }
  if (name.includes('\0')) throw new InputError(`partition name ${JSON.stringify(name)}: contains a NUL character`);
}

/** Encode one entry into `size` bytes (128 × 2^n; bytes past 128 stay zero). */
export function encodeGptEntry(e: GptEntry, size = GPT_ENTRY_SIZE): Buffer {
  checkPartitionName(e.name);
  const b = Buffer.alloc(size);
  guidToBytes(e.typeGuid).copy(b, GPT_ENTRY.PartitionTypeGUID);
  guidToBytes(e.uniqueGuid).copy(b, GPT_ENTRY.UniquePartitionGUID);
  b.writeBigUInt64LE(BigInt(e.startingLba), GPT_ENTRY.StartingLBA);
  b.writeBigUInt64LE(BigInt(e.endingLba), GPT_ENTRY.EndingLBA);
  b.writeBigUInt64LE(BigInt.asUintN(64, e.attributes), GPT_ENTRY.Attributes);
  // Code units, not code points: a lone surrogate round-trips like any other unit.
  for (let i = 0; i < e.name.length; i++) b.writeUInt16LE(e.name.charCodeAt(i), GPT_ENTRY.PartitionName + 2 * i);
  return b;
}

export function decodeGptEntry(bytes: Uint8Array, offset = 0): GptEntry {
  if (offset < 0 || offset + GPT_ENTRY_SIZE > bytes.length) {
    throw new FormatError('GPT partition entry', `needs ${GPT_ENTRY_SIZE} bytes at offset ${offset}, have ${bytes.length}`);
  }
  const b = Buffer.from(bytes.buffer, bytes.byteOffset + offset, GPT_ENTRY_SIZE);
  let name = '';
  for (let i = 0; i < GPT_NAME_UNITS; i++) {
    const u = b.readUInt16LE(GPT_ENTRY.PartitionName + 2 * i);
    if (u === 0) break;
    name += String.fromCharCode(u);
  }
  return {
    typeGuid: guidFromBytes(b, GPT_ENTRY.PartitionTypeGUID),
    uniqueGuid: guidFromBytes(b, GPT_ENTRY.UniquePartitionGUID),
    startingLba: lba(b, GPT_ENTRY.StartingLBA, 'StartingLBA'),
    endingLba: lba(b, GPT_ENTRY.EndingLBA, 'EndingLBA'),
    attributes: b.readBigUInt64LE(GPT_ENTRY.Attributes),
    name,
  };
}

/** The whole entry array (`count` entries of `size` bytes); missing entries are encoded unused. */
export function encodeEntryArray(entries: GptEntry[], count: number, size = GPT_ENTRY_SIZE): Buffer {
  if (entries.length > count) throw new InputError(`${entries.length} partitions do not fit a GPT of ${count} entries`);
  const b = Buffer.alloc(count * size);
  entries.forEach((e, i) => encodeGptEntry(e, size).copy(b, i * size));
  return b;
}

/** Decode `count` entries of `size` bytes; unused entries are kept so indexes are partition numbers - 1. */
export function decodeEntryArray(bytes: Uint8Array, count: number, size = GPT_ENTRY_SIZE): GptEntry[] {
  if (bytes.length < count * size) throw new FormatError('GPT partition entry array', `needs ${count * size} bytes, got ${bytes.length}`);
  const out: GptEntry[] = [];
  for (let i = 0; i < count; i++) {
    // An unused entry may hold garbage LBAs: only decode fully when its type is set.
    const typeGuid = guidFromBytes(bytes, i * size);
    if (typeGuid === ZERO_GUID) {
      out.push({ typeGuid, uniqueGuid: ZERO_GUID, startingLba: 0, endingLba: 0, attributes: 0n, name: '' });
    } else out.push(decodeGptEntry(bytes, i * size));
  }
  return out;
}

/** CRC32 of the entry array as the header stores it. */
export function entryArrayCrc32(array: Uint8Array): number {
  return crc32(array);
}

/** Named view of an attribute word, for display and JSON. */
export interface AttributeInfo {
  /** The 64 bits as 0x-prefixed 16-digit hex. */
  raw: string;
  requiredPartition: boolean;
  noBlockIOProtocol: boolean;
  legacyBIOSBootable: boolean;
  /** Set bits in the type-specific range 48–63. */
  guidSpecificBits: number[];
  /** Set bits in the reserved range 3–47 (kept, shown raw). */
  reservedBits: number[];
  /** The ChromeOS kernel fields packed into 48–56. */
  chromeos: { priority: number; tries: number; successful: boolean };
  /** Flag names as sfdisk prints them ("RequiredPartition LegacyBIOSBootable GUID:48,49"). */
  flags: string[];
}

export function describeAttributes(a: bigint): AttributeInfo {
  const bit = (n: number) => ((a >> BigInt(n)) & 1n) === 1n;
  const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i).filter(bit);
  const guidSpecificBits = range(48, 63);
  const flags: string[] = [];
  if (bit(GPT_ATTR.RequiredPartition)) flags.push('RequiredPartition');
  if (bit(GPT_ATTR.NoBlockIOProtocol)) flags.push('NoBlockIOProtocol');
  if (bit(GPT_ATTR.LegacyBIOSBootable)) flags.push('LegacyBIOSBootable');
  if (guidSpecificBits.length) flags.push(`GUID:${guidSpecificBits.join(',')}`);
  return {
    raw: `0x${BigInt.asUintN(64, a).toString(16).padStart(16, '0')}`,
    requiredPartition: bit(GPT_ATTR.RequiredPartition),
    noBlockIOProtocol: bit(GPT_ATTR.NoBlockIOProtocol),
    legacyBIOSBootable: bit(GPT_ATTR.LegacyBIOSBootable),
    guidSpecificBits,
    reservedBits: range(3, 47),
    chromeos: chromeosFields(a),
    flags,
  };
}

export function chromeosFields(a: bigint): { priority: number; tries: number; successful: boolean } {
  return {
    priority: Number((a >> BigInt(CHROMEOS_ATTR.priorityShift)) & 0xfn),
    tries: Number((a >> BigInt(CHROMEOS_ATTR.triesShift)) & 0xfn),
    successful: ((a >> BigInt(CHROMEOS_ATTR.successfulBit)) & 1n) === 1n,
  };
}

/** Replace the ChromeOS fields in `a`, keeping every other bit. */
export function withChromeosFields(a: bigint, f: { priority: number; tries: number; successful: boolean }): bigint {
  if (!Number.isInteger(f.priority) || f.priority < 0 || f.priority > 15) throw new InputError(`ChromeOS priority ${f.priority}: must be 0..15`);
  if (!Number.isInteger(f.tries) || f.tries < 0 || f.tries > 15) throw new InputError(`ChromeOS tries ${f.tries}: must be 0..15`);
  const mask = (0xffn << 48n) | (1n << 56n);
  return (
    (BigInt.asUintN(64, a) & ~mask) |
    (BigInt(f.priority) << 48n) |
    (BigInt(f.tries) << 52n) |
    ((f.successful ? 1n : 0n) << 56n)
  );
}

function lba(b: Buffer, off: number, field: string): number {
  const v = b.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError('GPT partition entry', `${field} ${v} is too large`);
  return Number(v);
}
