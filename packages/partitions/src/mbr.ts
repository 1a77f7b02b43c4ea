import { FormatError } from './errors.js';

/**
 * Master Boot Record (UEFI spec 5.2.1 legacy MBR, 5.2.3 protective MBR).
 * Always the first 512 bytes of LBA 0, whatever the logical sector size.
 */
export const MBR_SIZE = 512;
const PARTITION_RECORD = 446; // 4 records of 16 bytes
const SIGNATURE = 510; // 0x55 0xAA
/** OSType of the protective partition that covers a GPT disk. */
export const GPT_PROTECTIVE_TYPE = 0xee;

export interface MbrPartitionRecord {
  bootIndicator: number;
  startingChs: number; // 24-bit packed CHS, kept raw
  osType: number;
  endingChs: number;
  startingLba: number;
  sizeInLba: number;
}

export interface Mbr {
  bootCode: Buffer; // bytes 0..439
  uniqueMbrDiskSignature: number;
  partitions: MbrPartitionRecord[]; // always 4, empty ones have osType 0
}

/** What LBA 0 says about the disk. */
export type MbrKind =
  /** no 0x55AA signature */
  | 'none'
  /** one 0xEE record (and nothing else): a GPT disk */
  | 'protective'
  /** 0xEE record plus other records: GPT with a hybrid MBR */
  | 'hybrid'
  /** signature and ordinary records, no 0xEE: an MBR-only (DOS) disk */
  | 'mbr'
  /** signature but no records at all */
  | 'empty';

/** The protective MBR for a GPT disk of `totalSectors` logical sectors. */
export function encodeProtectiveMbr(totalSectors: number): Buffer {
  const b = Buffer.alloc(MBR_SIZE);
  encodeRecord(b, PARTITION_RECORD, {
    bootIndicator: 0,
    startingChs: 0x000200, // head 0, sector 2, cylinder 0: the CHS of LBA 1
    osType: GPT_PROTECTIVE_TYPE,
    endingChs: 0xffffff, // spec: CHS of the last LBA, or 0xFFFFFF when it does not fit (it never does here)
    startingLba: 1,
    // Spec: size of the disk minus one, or 0xFFFFFFFF when that is too large.
    sizeInLba: Math.min(totalSectors - 1, 0xffffffff),
  });
  b[SIGNATURE] = 0x55;
  b[SIGNATURE + 1] = 0xaa;
  return b;
}

export function encodeMbr(m: Mbr): Buffer {
  const b = Buffer.alloc(MBR_SIZE);
  Buffer.from(m.bootCode).copy(b, 0, 0, 440);
  b.writeUInt32LE(m.uniqueMbrDiskSignature >>> 0, 440);
  for (let i = 0; i < 4; i++) encodeRecord(b, PARTITION_RECORD + 16 * i, m.partitions[i] ?? emptyRecord());
  b[SIGNATURE] = 0x55;
  b[SIGNATURE + 1] = 0xaa;
  return b;
}

/** Decode an MBR; throws FormatError when the 0x55AA signature is missing. */
export function decodeMbr(bytes: Uint8Array): Mbr {
  if (bytes.length < MBR_SIZE) throw new FormatError('MBR', `needs ${MBR_SIZE} bytes, got ${bytes.length}`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, MBR_SIZE);
  if (b[SIGNATURE] !== 0x55 || b[SIGNATURE + 1] !== 0xaa) throw new FormatError('MBR', 'boot signature 0x55AA missing');
  const partitions: MbrPartitionRecord[] = [];
  for (let i = 0; i < 4; i++) {
    const o = PARTITION_RECORD + 16 * i;
    partitions.push({
      bootIndicator: b[o]!,
      startingChs: b.readUIntLE(o + 1, 3),
      osType: b[o + 4]!,
      endingChs: b.readUIntLE(o + 5, 3),
      startingLba: b.readUInt32LE(o + 8),
      sizeInLba: b.readUInt32LE(o + 12),
    });
  }
  return { bootCode: Buffer.from(b.subarray(0, 440)), uniqueMbrDiskSignature: b.readUInt32LE(440), partitions };
}

/** Classify LBA 0 without throwing (except for a short buffer). */
export function mbrKind(bytes: Uint8Array): MbrKind {
  let m: Mbr;
  try {
    m = decodeMbr(bytes);
  } catch (e) {
    if (bytes.length >= MBR_SIZE) return 'none';
    throw e;
  }
  const used = m.partitions.filter((p) => p.osType !== 0);
  if (used.length === 0) return 'empty';
  const prot = used.filter((p) => p.osType === GPT_PROTECTIVE_TYPE);
  if (prot.length === 0) return 'mbr';
  return used.length === prot.length ? 'protective' : 'hybrid';
}

function emptyRecord(): MbrPartitionRecord {
  return { bootIndicator: 0, startingChs: 0, osType: 0, endingChs: 0, startingLba: 0, sizeInLba: 0 };
}

function encodeRecord(b: Buffer, o: number, r: MbrPartitionRecord): void {
  b[o] = r.bootIndicator & 0xff;
  b.writeUIntLE(r.startingChs & 0xffffff, o + 1, 3);
  b[o + 4] = r.osType & 0xff;
  b.writeUIntLE(r.endingChs & 0xffffff, o + 5, 3);
  b.writeUInt32LE(r.startingLba >>> 0, o + 8);
  b.writeUInt32LE(r.sizeInLba >>> 0, o + 12);
}
