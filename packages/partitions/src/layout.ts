import { InputError } from './errors.js';
import type { Entropy } from './entropy.js';
import { checkPartitionName, GPT_ENTRY_SIZE, type GptEntry } from './gpt-entry.js';
import { guidFromEntropy, resolveType } from './guid.js';
import type { GptTableSpec } from './table.js';

/**
 * Layout planning: partitions with human sizes → 1 MiB-aligned LBAs and the
 * total image size, for 512- and 4096-byte logical sectors. The entry array
 * size and first usable LBA are computed from the sector size, not assumed.
 */

export const MiB = 1024 * 1024;
export const DEFAULT_ALIGNMENT = MiB;
export const DEFAULT_ENTRY_COUNT = 128;

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1024, kib: 1024, m: MiB, mib: MiB, g: 1024 * MiB, gib: 1024 * MiB, t: 1024 ** 4, tib: 1024 ** 4,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
};

/**
 * Parse a size: bytes (`1048576`), binary units (`128M`, `1.5G`, `1536MiB`,
 * `4K`), decimal units (`100MB`), or `rest`. Must come to whole bytes.
 */
export function parseSize(text: string | number, what = 'size'): number | 'rest' {
  if (typeof text === 'number') {
    if (!Number.isSafeInteger(text) || text < 0) throw new InputError(`${what} ${text}: not a whole number of bytes`);
    return text;
  }
  const t = text.trim();
  if (/^rest$/i.test(t)) return 'rest';
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(t);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new InputError(`${what} "${text}": expected a number with an optional unit (K, M, G, T, KiB, MiB, GiB, TiB, KB, MB, GB, TB) or "rest", e.g. 128M`);
  }
  // Exact arithmetic on the decimal digits so 1.5G is exactly 1610612736.
  const [whole, frac = ''] = m[1]!.split('.');
  const scaled = BigInt(whole! + frac) * BigInt(unit);
  const div = 10n ** BigInt(frac.length);
  if (scaled % div !== 0n) throw new InputError(`${what} "${text}": not a whole number of bytes`);
  const bytes = scaled / div;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new InputError(`${what} "${text}": too large`);
  return Number(bytes);
}

/** One partition asked of `planLayout`: name, type, size (bytes, "64M" or "rest"), start, attributes and GUID. */
export interface PartitionSpec {
  /** GPT name (at most 36 UTF-16 code units). */
  name: string;
  /** Type alias (`esp`, `linux`, …) or GUID. */
  type: string;
  /** Bytes, a size string, or `rest` (last partition only, needs a total size). */
  size: number | string;
  /** Optional explicit start (bytes or size string); must be aligned and after the previous partition. */
  start?: number | string;
  attributes?: bigint;
  /** Fixed unique GUID; otherwise drawn from the Entropy. */
  guid?: string;
}

/** Options of `planLayout`: sector size, total disk size, alignment and GPT entry count. */
export interface LayoutOptions {
  sectorSize?: number;
  /** Total disk size in bytes (or a size string); default: just big enough. */
  totalSize?: number | string;
  alignment?: number;
  entryCount?: number;
}

/** A partition as `planLayout` placed it: first and last LBA, type and GUIDs. */
export interface PlannedPartition {
  number: number;
  name: string;
  typeGuid: string;
  firstLba: number;
  lastLba: number;
  sizeBytes: number;
  attributes: bigint;
  guid?: string;
}

/** The result of `planLayout`: geometry and placed partitions, ready to write. */
export interface LayoutPlan {
  sectorSize: number;
  totalSize: number;
  totalSectors: number;
  alignment: number;
  entryCount: number;
  entrySize: number;
  entryArraySectors: number;
  firstUsableLba: number;
  lastUsableLba: number;
  partitions: PlannedPartition[];
}

/** Sectors taken by a GPT entry array of `entryCount` 128-byte entries. */
export function entryArraySectorsFor(entryCount: number, sectorSize: number): number {
  return Math.ceil((entryCount * GPT_ENTRY_SIZE) / sectorSize);
}

/** Place partitions (sizes, alignment, a last one taking the rest) on a disk of a given size; an `InputError` when they do not fit. */
export function planLayout(specs: PartitionSpec[], opts: LayoutOptions = {}): LayoutPlan {
  const sectorSize = opts.sectorSize ?? 512;
  if (sectorSize !== 512 && sectorSize !== 4096) throw new InputError(`sector size ${sectorSize}: use 512 or 4096`);
  const alignment = opts.alignment ?? DEFAULT_ALIGNMENT;
  if (alignment < sectorSize || alignment % sectorSize !== 0) {
    throw new InputError(`alignment ${alignment}: must be a multiple of the ${sectorSize}-byte sector size`);
  }
  const entryCount = opts.entryCount ?? DEFAULT_ENTRY_COUNT;
  // UEFI requires room for at least 16 KiB of entries (128 × 128 bytes).
  if (!Number.isInteger(entryCount) || entryCount * GPT_ENTRY_SIZE < 16384) {
    throw new InputError(`entry count ${entryCount}: GPT needs at least ${16384 / GPT_ENTRY_SIZE} entries`);
  }
  if (specs.length === 0) throw new InputError('layout: no partitions given');
  if (specs.length > entryCount) throw new InputError(`layout: ${specs.length} partitions, the GPT holds at most ${entryCount}`);

  const arraySectors = entryArraySectorsFor(entryCount, sectorSize);
  const firstUsableLba = 2 + arraySectors;
  const backupSectors = 1 + arraySectors;
  const alignSectors = alignment / sectorSize;
  const alignUp = (lba: number) => Math.ceil(lba / alignSectors) * alignSectors;

  let totalSectors: number | undefined;
  if (opts.totalSize !== undefined) {
    const t = parseSize(opts.totalSize, 'total size');
    if (t === 'rest') throw new InputError('total size: "rest" is not a size');
    if (t % sectorSize !== 0) throw new InputError(`total size ${t}: not a multiple of the ${sectorSize}-byte sector size`);
    totalSectors = t / sectorSize;
    if (totalSectors < firstUsableLba + backupSectors + 1) throw new InputError(`total size ${t} bytes: too small for a GPT`);
  }
  const lastUsable = totalSectors === undefined ? undefined : totalSectors - 1 - backupSectors;

  const partitions: PlannedPartition[] = [];
  let next = firstUsableLba; // first free LBA
  specs.forEach((s, i) => {
    const number = i + 1;
    const label = `partition ${number} (${s.name})`;
    checkPartitionName(s.name);
    const typeGuid = resolveType(s.type);
    let first = alignUp(next);
    if (s.start !== undefined) {
      const st = parseSize(s.start, `${label} start`);
      if (st === 'rest') throw new InputError(`${label}: start cannot be "rest"`);
      if (st % alignment !== 0) throw new InputError(`${label}: start ${st} is not on a ${alignment}-byte boundary`);
      const lba = st / sectorSize;
      if (lba < next) {
        const prev = partitions[partitions.length - 1];
        throw new InputError(
          prev
            ? `${label}: start ${st} overlaps partition ${prev.number} (${prev.name}), which ends at byte ${(prev.lastLba + 1) * sectorSize}`
            : `${label}: start ${st} lies inside the primary GPT (first usable byte ${firstUsableLba * sectorSize})`,
        );
      }
      first = lba;
    }
    const size = parseSize(s.size, `${label} size`);
    let sectors: number;
    if (size === 'rest') {
      if (i !== specs.length - 1) throw new InputError(`${label}: size "rest" is only allowed for the last partition`);
      if (lastUsable === undefined) throw new InputError(`${label}: size "rest" needs a total size`);
      sectors = lastUsable - first + 1;
      if (sectors <= 0) throw new InputError(`${label}: no space left for "rest" (the other partitions fill the disk)`);
    } else {
      if (size === 0) throw new InputError(`${label}: size is 0; give a positive size such as 128M`);
      if (size % sectorSize !== 0) throw new InputError(`${label}: size ${size} is not a multiple of the ${sectorSize}-byte sector size`);
      sectors = size / sectorSize;
    }
    const last = first + sectors - 1;
    partitions.push({ number, name: s.name, typeGuid, firstLba: first, lastLba: last, sizeBytes: sectors * sectorSize, attributes: s.attributes ?? 0n, guid: s.guid });
    next = last + 1;
  });

  const end = partitions[partitions.length - 1]!.lastLba + 1; // first LBA after the partitions
  if (totalSectors === undefined) {
    // Just big enough: the backup GPT after the last partition, rounded up to the alignment.
    totalSectors = alignUp(end + backupSectors);
  } else if (end - 1 > lastUsable!) {
    const need = alignUp(end + backupSectors) * sectorSize;
    throw new InputError(`layout needs ${need} bytes (${fmtBytes(need)}) but the disk is ${totalSectors * sectorSize} bytes (${fmtBytes(totalSectors * sectorSize)}); make the partitions smaller or the disk larger`);
  }
  return {
    sectorSize,
    totalSize: totalSectors * sectorSize,
    totalSectors,
    alignment,
    entryCount,
    entrySize: GPT_ENTRY_SIZE,
    entryArraySectors: arraySectors,
    firstUsableLba,
    lastUsableLba: totalSectors - 1 - backupSectors,
    partitions,
  };
}

/**
 * The GPT for a plan, with the disk GUID and partition GUIDs drawn from
 * `entropy` (seeded → the same GUIDs every time).
 */
export function gptFromPlan(plan: LayoutPlan, entropy: Entropy): GptTableSpec {
  const entries: GptEntry[] = plan.partitions.map((p) => ({
    typeGuid: p.typeGuid,
    uniqueGuid: p.guid ?? guidFromEntropy(entropy.bytes(`gpt-partition-guid:${p.number}:${p.name}`, 16)),
    startingLba: p.firstLba,
    endingLba: p.lastLba,
    attributes: p.attributes,
    name: p.name,
  }));
  return {
    sectorSize: plan.sectorSize,
    totalSectors: plan.totalSectors,
    diskGuid: guidFromEntropy(entropy.bytes('gpt-disk-guid', 16)),
    firstUsableLba: plan.firstUsableLba,
    lastUsableLba: plan.lastUsableLba,
    entryCount: plan.entryCount,
    entrySize: plan.entrySize,
    entries,
  };
}

/** "1.5 GiB", "128 MiB", "512 B". */
export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`;
}
