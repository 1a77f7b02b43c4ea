import {
  describeAttributes,
  guessSectorSize,
  InputError,
  NotFoundError,
  readDiskTable,
  typeAlias,
  typeName,
  type AttributeInfo,
  type DiskTable,
  type GptDiskTable,
  type GptPartition,
} from '@diskimg/partitions/internal';
import { readAt, type Device } from '../device/device.js';
import { FileDevice } from '../device/file.js';
import { Region } from '../device/region.js';

/** A GPT partition of an opened disk. */
export interface DiskPartition extends GptPartition {
  /** Byte offset and size on the device. */
  offset: number;
  size: number;
  /** A bounds-checked window onto the partition. */
  region(): Region;
}

/** An opened disk: its device, partition table and partitions; `close()` it when done. */
export interface Disk {
  device: Device;
  /** The path given to openDisk, if any. */
  path?: string;
  table: GptDiskTable;
  partitions: DiskPartition[];
  /** Closes the device if openDisk opened it. */
  close(): Promise<void>;
}

/** Read the partition table of a device (blank, MBR-only or GPT). Throws FormatError when the GPT is beyond repair. */
export function readDeviceTable(dev: Device): Promise<DiskTable> {
  const ss = dev.sectorSize;
  return readDiskTable((lba, count) => readAt(dev, lba * ss, count * ss), { sectorSize: ss, totalSectors: Math.floor(dev.size / ss) });
}

/**
 * Open an image file or block device (or wrap a Device) and read its GPT.
 * An image file's sector size is 4096 when the GPT header sits at byte 4096,
 * else 512; a block device's comes from sysfs. Blank and MBR-only disks are
 * InputErrors naming the fix.
 */
export async function openDisk(target: string | Device, opts: { writable?: boolean } = {}): Promise<Disk> {
  let dev: Device;
  const owned = typeof target === 'string';
  if (typeof target === 'string') {
    let f = await FileDevice.open(target, { writable: opts.writable });
    if (!f.isBlockDevice && f.size >= 8192) {
      const ss = guessSectorSize(await readAt(f, 0, 8192), await readAt(f, f.size - 4096, 4096));
      if (ss !== f.sectorSize) {
        await f.close();
        f = await FileDevice.open(target, { writable: opts.writable, sectorSize: ss });
      }
    }
    dev = f;
  } else dev = target;
  const name = typeof target === 'string' ? target : 'device';
  try {
    const table = await readDeviceTable(dev);
    if (table.kind === 'blank') throw new InputError(`${name}: no partition table found (not a disk image?); create one with "diskimg create"`);
    if (table.kind === 'mbr-only') {
      throw new InputError(`${name}: MBR (DOS) partition table, not GPT; diskimg only handles GPT disks (convert with "sgdisk -g" or recreate)`);
    }
    const ss = table.sectorSize;
    const partitions = table.partitions.map((p): DiskPartition => {
      const offset = p.startingLba * ss;
      const size = p.sizeSectors * ss;
      return { ...p, offset, size, region: () => new Region(dev, offset, size, p.name || `partition ${p.number}`) };
    });
    return {
      device: dev,
      path: typeof target === 'string' ? target : undefined,
      table,
      partitions,
      close: async () => {
        if (owned) await dev.close();
      },
    };
  } catch (e) {
    if (owned) await dev.close();
    throw e;
  }
}

/** Reads a partition's filesystem label, or undefined when it has none / is not recognised. */
export type LabelProbe = (p: DiskPartition) => Promise<string | undefined>;

/**
 * Find a partition the way upstream does: by filesystem label first (via
 * `probeLabel`, supplied by the filesystem layers), then by GPT name.
 */
export async function findPartition(disk: Disk, label: string, probeLabel?: LabelProbe): Promise<DiskPartition> {
  if (probeLabel) {
    for (const p of disk.partitions) if ((await probeLabel(p)) === label) return p;
  }
  const byName = disk.partitions.find((p) => p.name === label);
  if (byName) return byName;
  const known = disk.partitions.map((p) => p.name || `#${p.number}`).join(', ');
  throw new NotFoundError(`${disk.path ?? 'disk'}: no partition labelled "${label}" (partitions: ${known})`);
}

/** JSON-able description of a partition (`diskimg show --json`). */
export interface PartitionSummary {
  number: number;
  name: string;
  typeGuid: string;
  typeAlias: string | null;
  typeName: string | null;
  guid: string;
  firstLba: number;
  lastLba: number;
  sizeSectors: number;
  offsetBytes: number;
  sizeBytes: number;
  attributes: AttributeInfo;
}

/** A disk's partition table as plain data: kind, sizes, GUIDs and partitions. */
export interface DiskSummary {
  device: string;
  sizeBytes: number;
  sectorSize: number;
  totalSectors: number;
  table: 'gpt';
  /** Which GPT header the partitions were read from. */
  header: 'primary' | 'backup';
  primaryHeader: { lba: number; ok: boolean; error?: string };
  backupHeader: { lba: number; ok: boolean; error?: string };
  warnings: string[];
  diskGuid: string;
  firstUsableLba: number;
  lastUsableLba: number;
  entryCount: number;
  entrySize: number;
  partitions: PartitionSummary[];
}

/** A plain summary of an open disk's partition table (what `diskimg show --json` prints first). */
export function summarizeDisk(disk: Disk): DiskSummary {
  const t = disk.table;
  const hc = (c: typeof t.primary) => (c.ok ? { lba: c.lba, ok: true } : { lba: c.lba, ok: false, error: c.error });
  return {
    device: disk.path ?? 'device',
    sizeBytes: disk.device.size,
    sectorSize: t.sectorSize,
    totalSectors: t.totalSectors,
    table: 'gpt',
    header: t.used,
    primaryHeader: hc(t.primary),
    backupHeader: hc(t.backup),
    warnings: t.warnings,
    diskGuid: t.header.diskGuid,
    firstUsableLba: t.header.firstUsableLba,
    lastUsableLba: t.header.lastUsableLba,
    entryCount: t.header.numberOfPartitionEntries,
    entrySize: t.header.sizeOfPartitionEntry,
    partitions: disk.partitions.map((p) => ({
      number: p.number,
      name: p.name,
      typeGuid: p.typeGuid,
      typeAlias: typeAlias(p.typeGuid) ?? null,
      typeName: typeName(p.typeGuid) ?? null,
      guid: p.uniqueGuid,
      firstLba: p.startingLba,
      lastLba: p.endingLba,
      sizeSectors: p.sizeSectors,
      offsetBytes: p.offset,
      sizeBytes: p.size,
      attributes: describeAttributes(p.attributes),
    })),
  };
}
