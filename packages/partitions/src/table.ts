import { FormatError, InputError } from './errors.js';
import { decodeGptHeader, encodeGptHeader, entryArraySectors, hasGptSignature, hex32, GPT_HEADER_SIZE, GPT_REVISION, type GptHeader } from './gpt-header.js';
import { decodeEntryArray, encodeEntryArray, entryArrayCrc32, isUnused, GPT_ENTRY_SIZE, type GptEntry } from './gpt-entry.js';
import { decodeMbr, encodeProtectiveMbr, mbrKind, type Mbr, type MbrKind } from './mbr.js';

/**
 * A whole disk's partition table: read (validate both GPT headers and their
 * entry arrays, fall back to the backup) and encode (protective MBR, primary
 * and backup GPT). Pure: I/O is a sector-reading callback.
 */

/** Returns `count` logical sectors starting at `lba`. Only called within the disk. */
export type SectorReader = (lba: number, count: number) => Promise<Uint8Array> | Uint8Array;

export interface Geometry {
  sectorSize: number;
  totalSectors: number;
}

/** One header's verdict. */
export interface HeaderCheck {
  lba: number;
  ok: boolean;
  /** Why it is not usable (when !ok). */
  error?: string;
  header?: GptHeader;
  entries?: GptEntry[];
}

/** A used entry with its 1-based partition number (its index in the array + 1). */
export interface GptPartition extends GptEntry {
  number: number;
  sizeSectors: number;
}

/** A partition table read by `readDiskTable`: GPT (headers, partitions) or MBR, with the disk's geometry. */
export type DiskTable =
  | ({ kind: 'blank'; mbr: MbrKind } & Geometry)
  | ({ kind: 'mbr-only'; mbr: Mbr } & Geometry)
  | ({
      kind: 'gpt';
      mbr: MbrKind;
      /** Which header (and entry array) the partitions come from. */
      used: 'primary' | 'backup';
      header: GptHeader;
      primary: HeaderCheck;
      backup: HeaderCheck;
      partitions: GptPartition[];
      /** One-line problems found (damaged backup, primary/backup disagree, …). */
      warnings: string[];
    } & Geometry);

export type GptDiskTable = Extract<DiskTable, { kind: 'gpt' }>;

/** Read a disk's partition table (GPT, with both headers checked, or MBR) through a sector reader. */
export async function readDiskTable(read: SectorReader, geo: Geometry): Promise<DiskTable> {
  const { sectorSize, totalSectors } = geo;
  if (sectorSize !== 512 && sectorSize !== 4096) throw new InputError(`sector size ${sectorSize}: only 512 and 4096 are supported`);
  if (totalSectors < 3) {
    throw new FormatError('disk', `${totalSectors * sectorSize} bytes (${totalSectors} sectors) is too small to hold a partition table`);
  }
  const sector = async (lba: number, count = 1): Promise<Uint8Array> => {
    const b = await read(lba, count);
    if (b.length < count * sectorSize) throw new FormatError('disk', `short read at LBA ${lba}`);
    return b;
  };
  const lba0 = await sector(0);
  const kind0 = mbrKind(lba0);

  const primary = await checkHeader(sector, geo, 1, 'primary');
  let backupLba = totalSectors - 1;
  if (primary.ok && primary.header!.alternateLba < totalSectors) backupLba = primary.header!.alternateLba;
  const backup = await checkHeader(sector, geo, backupLba, 'backup');

  if (!primary.ok && !backup.ok) {
    const sig1 = hasGptSignature(await sector(1));
    const sigN = hasGptSignature(await sector(totalSectors - 1));
    if (!sig1 && !sigN) {
      if (kind0 === 'mbr') return { kind: 'mbr-only', mbr: decodeMbr(lba0), sectorSize, totalSectors };
      if (kind0 === 'none' || kind0 === 'empty') return { kind: 'blank', mbr: kind0, sectorSize, totalSectors };
    }
    throw new FormatError('GPT', `both headers are damaged (primary: ${primary.error}; backup: ${backup.error})${await truncationHint(sector, geo)}`);
  }

  const warnings: string[] = [];
  const used = primary.ok ? 'primary' : 'backup';
  const chosen = primary.ok ? primary : backup;
  if (!primary.ok) warnings.push(`primary GPT at LBA 1 is damaged (${primary.error}); using the backup at LBA ${backup.lba}`);
  if (!backup.ok) warnings.push(`backup GPT at LBA ${backup.lba} is damaged (${backup.error})`);
  if (primary.ok && backup.ok) {
    const p = primary.header!;
    const q = backup.header!;
    if (
      p.diskGuid !== q.diskGuid ||
      p.firstUsableLba !== q.firstUsableLba ||
      p.lastUsableLba !== q.lastUsableLba ||
      p.partitionEntryArrayCrc32 !== q.partitionEntryArrayCrc32 ||
      p.alternateLba !== q.myLba ||
      q.alternateLba !== p.myLba
    ) {
      warnings.push('primary and backup GPT headers disagree; using the primary');
    }
  }
  if (primary.ok && primary.header!.alternateLba < totalSectors - 1) {
    warnings.push(`backup GPT is at LBA ${primary.header!.alternateLba}, not at the end of the disk (LBA ${totalSectors - 1}); was the disk enlarged? (sgdisk -e moves it)`);
  }
  if (chosen.header!.alternateLba >= totalSectors) {
    warnings.push(`${used} GPT header's AlternateLBA ${chosen.header!.alternateLba} is beyond the end of the disk (${totalSectors} sectors)`);
  }
  if (kind0 === 'none' || kind0 === 'empty') warnings.push('no protective MBR in LBA 0');
  else if (kind0 === 'mbr') warnings.push('LBA 0 holds an MBR without a protective 0xEE partition');

  const partitions: GptPartition[] = [];
  chosen.entries!.forEach((e, i) => {
    if (!isUnused(e)) partitions.push({ ...e, number: i + 1, sizeSectors: e.endingLba - e.startingLba + 1 });
  });
  return { kind: 'gpt', mbr: kind0, used, header: chosen.header!, primary, backup, partitions, warnings, sectorSize, totalSectors };
}

/** When an intact primary header places the disk's end beyond its size: say the disk (file) looks cut short. */
async function truncationHint(sector: (lba: number) => Promise<Uint8Array>, geo: Geometry): Promise<string> {
  try {
    const h = decodeGptHeader(await sector(1));
    const want = Math.max(h.alternateLba, h.lastUsableLba) + 1;
    if (want <= geo.totalSectors) return '';
    return `; the disk looks truncated: its primary GPT header expects at least ${want} sectors (${want * geo.sectorSize} bytes), it has ${geo.totalSectors} (${geo.totalSectors * geo.sectorSize} bytes)`;
  } catch {
    return '';
  }
}

async function checkHeader(
  sector: (lba: number, count?: number) => Promise<Uint8Array>,
  geo: Geometry,
  lba: number,
  which: 'primary' | 'backup',
): Promise<HeaderCheck> {
  try {
    const h = decodeGptHeader(await sector(lba));
    const { totalSectors, sectorSize } = geo;
    const bad = (msg: string) => new FormatError(`${which} GPT header`, msg);
    if (h.myLba !== lba) throw bad(`MyLBA is ${h.myLba} but the header sits at LBA ${lba}`);
    if (h.lastUsableLba >= totalSectors) throw bad(`LastUsableLBA ${h.lastUsableLba} is beyond the end of the disk (${totalSectors} sectors)`);
    if (h.firstUsableLba < 2) throw bad(`FirstUsableLBA ${h.firstUsableLba} overlaps the MBR/primary header`);
    const n = entryArraySectors(h, sectorSize);
    const a0 = h.partitionEntryLba;
    const a1 = a0 + n - 1;
    if (a0 < 1 || a1 >= totalSectors) throw bad(`entry array LBAs ${a0}..${a1} lie outside the disk`);
    if (n > 0 && a0 <= h.lastUsableLba && a1 >= h.firstUsableLba) throw bad(`entry array LBAs ${a0}..${a1} overlap the usable area`);
    if (a0 <= lba && lba <= a1) throw bad(`entry array LBAs ${a0}..${a1} overlap the header`);
    const array = n > 0 ? await sector(a0, n) : new Uint8Array(0);
    const bytes = array.subarray(0, h.numberOfPartitionEntries * h.sizeOfPartitionEntry);
    const crc = entryArrayCrc32(bytes);
    if (crc !== h.partitionEntryArrayCrc32) {
      throw bad(`PartitionEntryArrayCRC32 mismatch (stored ${hex32(h.partitionEntryArrayCrc32)}, computed ${hex32(crc)})`);
    }
    const entries = decodeEntryArray(bytes, h.numberOfPartitionEntries, h.sizeOfPartitionEntry);
    const used = entries.map((e, i) => ({ e, n: i + 1 })).filter(({ e }) => !isUnused(e));
    for (const { e, n: num } of used) {
      if (e.startingLba > e.endingLba) throw bad(`partition ${num}: StartingLBA ${e.startingLba} > EndingLBA ${e.endingLba}`);
      if (e.startingLba < h.firstUsableLba || e.endingLba > h.lastUsableLba) {
        throw bad(`partition ${num}: LBAs ${e.startingLba}..${e.endingLba} outside the usable area ${h.firstUsableLba}..${h.lastUsableLba}`);
      }
    }
    const sorted = [...used].sort((x, y) => x.e.startingLba - y.e.startingLba);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.e.startingLba <= sorted[i - 1]!.e.endingLba) throw bad(`partitions ${sorted[i - 1]!.n} and ${sorted[i]!.n} overlap`);
    }
    return { lba, ok: true, header: h, entries };
  } catch (e) {
    if (e instanceof FormatError) return { lba, ok: false, error: e.message };
    throw e;
  }
}

/** Read from a byte buffer holding a whole disk (tests, fuzzing). */
export function readDiskTableFromBytes(bytes: Uint8Array, sectorSize: number): Promise<DiskTable> {
  const totalSectors = Math.floor(bytes.length / sectorSize);
  return readDiskTable((lba, count) => bytes.subarray(lba * sectorSize, (lba + count) * sectorSize), { sectorSize, totalSectors });
}

/**
 * Guess the logical sector size of an image file from its first 8 KiB (and,
 * optionally, its last 4 KiB): 4096 when a GPT signature sits at byte 4096
 * (LBA 1 of 4K sectors) and not at byte 512, or, with the primary gone, when
 * the backup signature sits 4096 bytes before the end and not 512; else 512.
 */
export function guessSectorSize(first8k: Uint8Array, last4k?: Uint8Array): 512 | 4096 {
  const sig = (b: Uint8Array | undefined, o: number) => !!b && o >= 0 && b.length >= o + 8 && hasGptSignature(b.subarray(o, o + 8));
  if (sig(first8k, 512)) return 512;
  if (sig(first8k, 4096)) return 4096;
  if (last4k && last4k.length === 4096 && !sig(last4k, 4096 - 512) && sig(last4k, 0)) return 4096;
  return 512;
}

/** Everything needed to encode a GPT disk. */
export interface GptTableSpec {
  sectorSize: number;
  totalSectors: number;
  diskGuid: string;
  firstUsableLba: number;
  lastUsableLba: number;
  entryCount: number;
  entrySize?: number;
  /** Entries in partition-number order; an unused slot may be left out only at the end. */
  entries: GptEntry[];
}

/** One run of sectors to write. */
export interface SectorWrite {
  lba: number;
  bytes: Buffer;
  what: string;
}

/**
 * The sectors of a GPT disk in write order: protective MBR, primary header,
 * primary entry array, backup entry array, backup header (last LBA).
 */
export function encodeGptDisk(spec: GptTableSpec): SectorWrite[] {
  const { sectorSize, totalSectors, entryCount } = spec;
  const entrySize = spec.entrySize ?? GPT_ENTRY_SIZE;
  const array = encodeEntryArray(spec.entries, entryCount, entrySize);
  const arraySectors = entryArraySectors({ numberOfPartitionEntries: entryCount, sizeOfPartitionEntry: entrySize }, sectorSize);
  const arrayPadded = Buffer.alloc(arraySectors * sectorSize);
  array.copy(arrayPadded);
  const last = totalSectors - 1;
  const backupArrayLba = last - arraySectors;
  if (spec.firstUsableLba < 2 + arraySectors || spec.lastUsableLba >= backupArrayLba) {
    throw new InputError(`GPT: usable LBAs ${spec.firstUsableLba}..${spec.lastUsableLba} overlap the entry arrays`);
  }
  const base = {
    revision: GPT_REVISION,
    headerSize: GPT_HEADER_SIZE,
    firstUsableLba: spec.firstUsableLba,
    lastUsableLba: spec.lastUsableLba,
    diskGuid: spec.diskGuid,
    numberOfPartitionEntries: entryCount,
    sizeOfPartitionEntry: entrySize,
    partitionEntryArrayCrc32: entryArrayCrc32(array),
  };
  const mbr = Buffer.alloc(sectorSize);
  encodeProtectiveMbr(totalSectors).copy(mbr);
  return [
    { lba: 0, bytes: mbr, what: 'protective MBR' },
    { lba: 1, bytes: encodeGptHeader({ ...base, myLba: 1, alternateLba: last, partitionEntryLba: 2 }, sectorSize), what: 'primary GPT header' },
    { lba: 2, bytes: arrayPadded, what: 'primary GPT entry array' },
    { lba: backupArrayLba, bytes: arrayPadded, what: 'backup GPT entry array' },
    {
      lba: last,
      bytes: encodeGptHeader({ ...base, myLba: last, alternateLba: 1, partitionEntryLba: backupArrayLba }, sectorSize),
      what: 'backup GPT header',
    },
  ];
}
