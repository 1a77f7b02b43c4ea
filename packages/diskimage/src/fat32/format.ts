import { InputError, buildTime, makeEntropy, type Entropy } from '@diskimg/partitions/internal';
import type { Device } from '../device/device.js';
import { encodeBootSector, geometry, type BootSector } from './boot-sector.js';
import { encodeFsInfo } from './fsinfo.js';
import { FatTable, FAT_EOC } from './fat.js';
import { ATTR_VOLUME_ID, encodeDirent, makeDirent } from './dirent.js';

export interface FormatOptions {
  /** Volume label, at most 11 characters (stored upper case). Default: none ("NO NAME"). */
  label?: string;
  /** Source of the volume ID (purpose "fat32-volume-id"); random when absent. */
  entropy?: Entropy;
  /** Logical sector size; default the device's (512 or 4096). */
  sectorSize?: number;
  /** BPB_HiddSec: the partition's start in sectors (0 for a bare image). */
  hiddenSectors?: number;
  /** Timestamp of the label entry, seconds; default SOURCE_DATE_EPOCH or now. */
  now?: number;
}

/** FAT32 must have at least this many clusters (fatgen103 §3.5); fewer is FAT16 by definition. */
export const MIN_CLUSTERS = 65525;
const MAX_CLUSTERS = 0x0ffffff5;
export const RESERVED_SECTORS = 32;
const NUM_FATS = 2;
export const MEDIA_FIXED = 0xf8;

/**
 * Cluster size as mkfs.fat (dosfstools 4.2) picks it for FAT32, which in turn
 * follows Microsoft's format table: ≤ 260 MiB 512 B, ≤ 8 GiB 4 KiB, ≤ 16 GiB
 * 8 KiB, ≤ 32 GiB 16 KiB, above 32 KiB — never smaller than one sector.
 */
export function defaultClusterSize(volumeBytes: number, sectorSize: number): number {
  const mib = Math.ceil(volumeBytes / 2 ** 20);
  const bytes = mib > 32 * 1024 ? 32768 : mib > 16 * 1024 ? 16384 : mib > 8 * 1024 ? 8192 : mib > 260 ? 4096 : 512;
  return Math.max(bytes, sectorSize);
}

/** Smallest volume (bytes) that holds a valid FAT32 with the smallest cluster size for `sectorSize`. */
export function minimumFat32Bytes(sectorSize: number): number {
  const fatSz = Math.ceil(((MIN_CLUSTERS + 2) * 4) / sectorSize);
  return (RESERVED_SECTORS + NUM_FATS * fatSz + MIN_CLUSTERS) * sectorSize;
}

export interface Layout {
  totalSectors: number;
  sectorsPerCluster: number;
  fatSectors: number;
  clusters: number;
}

/** Plan the layout of a FAT32 volume of `bytes`; InputError when FAT32 cannot be that size. */
export function planFat32(bytes: number, sectorSize: number, name = 'FAT32 volume'): Layout {
  if (![512, 1024, 2048, 4096].includes(sectorSize)) throw new InputError(`${name}: sector size ${sectorSize} unsupported; use 512 or 4096`);
  const totalSectors = Math.min(Math.floor(bytes / sectorSize), 0xffffffff);
  const spc = defaultClusterSize(bytes, sectorSize) / sectorSize;
  // FAT size: smallest that covers every cluster it leaves room for; padded so
  // the data region starts on a cluster boundary (as mkfs.fat aligns).
  let fatSectors = 1;
  let clusters = 0;
  for (;;) {
    const data = totalSectors - RESERVED_SECTORS - NUM_FATS * fatSectors;
    clusters = Math.max(0, Math.floor(data / spc));
    const need = Math.ceil(((clusters + 2) * 4) / sectorSize);
    if (need <= fatSectors) break;
    fatSectors = need;
  }
  while ((RESERVED_SECTORS + NUM_FATS * fatSectors) % spc !== 0) fatSectors++;
  clusters = Math.max(0, Math.floor((totalSectors - RESERVED_SECTORS - NUM_FATS * fatSectors) / spc));
  if (clusters < MIN_CLUSTERS) {
    const min = Math.ceil(minimumFat32Bytes(sectorSize) / 2 ** 20);
    throw new InputError(
      `${name}: ${(bytes / 2 ** 20).toFixed(1)} MiB gives ${clusters} clusters of ${spc * sectorSize} bytes; FAT32 needs at least ${MIN_CLUSTERS}, so make it at least ${min} MiB (with ${sectorSize}-byte sectors)`,
    );
  }
  if (clusters > MAX_CLUSTERS) throw new InputError(`${name}: too large for FAT32 with ${spc * sectorSize}-byte clusters`);
  return { totalSectors, sectorsPerCluster: spc, fatSectors, clusters };
}

/** Validate and normalize a volume label (upper case, ≤ 11 characters valid in a short name). */
export function normalizeLabel(label: string): string {
  const up = label.toUpperCase();
  if (up.length === 0 || up.length > 11 || !/^[A-Z0-9 $%'\-_@~`!(){}^#&]+$/.test(up) || up.startsWith(' ')) {
    throw new InputError(`FAT label "${label}": must be 1-11 characters of A-Z, 0-9 or $%'-_@~\`!(){}^#& (no leading space)`);
  }
  return up;
}

/**
 * mkfs: write an empty FAT32 filesystem over the whole device (a partition
 * region). Writes the reserved sectors, both FATs and the root directory
 * cluster; the data region is left as it is.
 */
export async function formatFat32(dev: Device, opts: FormatOptions = {}): Promise<BootSector> {
  const bs = await writeFat32Format(dev, opts);
  await dev.flush();
  return bs;
}

/** formatFat32 without the final flush, for createFat32: populate flushes once, at its end. */
export async function writeFat32Format(dev: Device, opts: FormatOptions = {}): Promise<BootSector> {
  const bps = opts.sectorSize ?? dev.sectorSize;
  const label = opts.label !== undefined ? normalizeLabel(opts.label) : undefined;
  const lay = planFat32(dev.size, bps);
  const entropy = opts.entropy ?? makeEntropy();
  const now = opts.now ?? buildTime();
  const bs: BootSector = {
    BS_OEMName: 'MSWIN4.1',
    BPB_BytsPerSec: bps,
    BPB_SecPerClus: lay.sectorsPerCluster,
    BPB_RsvdSecCnt: RESERVED_SECTORS,
    BPB_NumFATs: NUM_FATS,
    BPB_Media: MEDIA_FIXED,
    BPB_SecPerTrk: 63,
    BPB_NumHeads: 255,
    BPB_HiddSec: opts.hiddenSectors ?? 0,
    BPB_TotSec32: lay.totalSectors,
    BPB_FATSz32: lay.fatSectors,
    BPB_ExtFlags: 0, // FAT mirroring on
    BPB_FSVer: 0,
    BPB_RootClus: 2,
    BPB_FSInfo: 1,
    BPB_BkBootSec: 6,
    BS_DrvNum: 0x80,
    BS_VolID: entropy.bytes('fat32-volume-id', 4).readUInt32LE(0),
    BS_VolLab: (label ?? 'NO NAME').padEnd(11, ' '),
  };
  const g = geometry(bs);
  // Reserved region: boot sector + FSInfo, copies at 6 and 7, zeros elsewhere.
  const reserved = Buffer.alloc(RESERVED_SECTORS * bps);
  const boot = encodeBootSector(bs);
  const fsinfo = encodeFsInfo({ FSI_Free_Count: g.clusterCount - 1, FSI_Nxt_Free: 3 }, bps);
  boot.copy(reserved, 0);
  fsinfo.copy(reserved, bps);
  boot.copy(reserved, 6 * bps);
  fsinfo.copy(reserved, 7 * bps);
  // mkfs.fat and Windows put a boot signature at the end of sector 2 (and its copy 8) too.
  for (const s of [2, 8]) reserved.writeUInt16LE(0xaa55, s * bps + 510);
  await dev.write(0, reserved);

  const fat = FatTable.fresh(g, MEDIA_FIXED);
  fat.set(g.rootCluster, FAT_EOC);
  await fat.flush(dev, true);

  const root = Buffer.alloc(g.clusterSize);
  if (label) encodeDirent(makeDirent(Buffer.from(label.padEnd(11, ' '), 'latin1'), ATTR_VOLUME_ID, 0, 0, 0, now), root, 0);
  await dev.write(g.dataOffset, root);
  return bs;
}
