/**
 * Which filesystem a partition holds, with its label and UUID as blkid
 * reports them, from the existing codecs (FAT32 boot sector, ext4 superblock).
 * Probing never throws for unrecognised or damaged content: it says so.
 */
import { UnsupportedFormatError } from '@diskimg/partitions/internal';
import { readAt, type Device } from '../device/device.js';
import { decodeSuperblock, SUPERBLOCK_OFFSET } from '../ext4/superblock.js';
import { decodePendingMarker } from '../ext4/pending.js';
import { cString } from '../ext4/struct.js';
import { decodeBootSector } from '../fat32/boot-sector.js';
import { Fat32Volume } from '../fat32/volume.js';
import type { DiskPartition, LabelProbe } from './disk.js';

/** `incomplete`: an ext4 slot whose write was interrupted or is running (ext4/pending.ts); label is the one it will have. */
export type FsType = 'fat32' | 'ext4' | 'incomplete' | 'unknown';

/** What a partition holds: filesystem type, label and UUID. */
export interface FsProbe {
  type: FsType;
  /** Filesystem label; absent when the filesystem has none. */
  label?: string;
  /** blkid's UUID: "XXXX-XXXX" (FAT volume ID) or the ext4 s_uuid. */
  uuid?: string;
  /** Set when a signature was found but the structure is damaged (the filesystem cannot be read). */
  error?: string;
}

const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Standard (big-endian) text form of a 16-byte UUID, as blkid prints ext4's. */
function uuidText(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** FAT volume ID as blkid prints it ("5053-4F53"). */
export function fatUuid(volId: number): string {
  const h = volId.toString(16).toUpperCase().padStart(8, '0');
  return `${h.slice(0, 4)}-${h.slice(4)}`;
}

async function probeExt4(region: Device): Promise<FsProbe | undefined> {
  if (region.size < SUPERBLOCK_OFFSET + 1024) return undefined;
  const raw = await readAt(region, SUPERBLOCK_OFFSET, 1024);
  let sb;
  try {
    sb = decodeSuperblock(raw, { ignoreChecksum: true });
  } catch {
    const pending = decodePendingMarker(raw);
    if (pending) return { type: 'incomplete', label: pending.label, error: 'incomplete: a slot write was interrupted (or is running)' };
    return undefined; // no ext magic: not ext2/3/4
  }
  const out: FsProbe = { type: 'ext4' };
  const label = cString(sb.s_volume_name);
  if (label) out.label = label;
  if (Buffer.from(sb.s_uuid).some((x) => x !== 0)) out.uuid = uuidText(sb.s_uuid);
  try {
    decodeSuperblock(raw);
  } catch (e) {
    out.error = errMsg(e);
  }
  return out;
}

async function probeFat32(region: Device): Promise<FsProbe | undefined> {
  if (region.size < 512) return undefined;
  const head = await readAt(region, 0, 512);
  let bs;
  try {
    bs = decodeBootSector(head, region.size);
  } catch (e) {
    // A FAT12/16 volume is recognised but not readable: say so rather than "unknown" silently.
    if (e instanceof UnsupportedFormatError) return { type: 'unknown', error: errMsg(e) };
    return undefined;
  }
  const out: FsProbe = { type: 'fat32' };
  if (bs.BS_VolID) out.uuid = fatUuid(bs.BS_VolID);
  const bpbLabel = bs.BS_VolLab.trimEnd();
  try {
    // blkid prefers the root directory's label entry (what Windows and fatlabel update).
    const vol = await Fat32Volume.open(region);
    const l = await vol.readLabel();
    if (l && l !== 'NO NAME') out.label = l;
  } catch (e) {
    if (bpbLabel && bpbLabel !== 'NO NAME') out.label = bpbLabel;
    out.error = errMsg(e);
  }
  return out;
}

/** Identify the filesystem on `region` (a partition). */
export async function probeFilesystem(region: Device): Promise<FsProbe> {
  try {
    return (await probeExt4(region)) ?? (await probeFat32(region)) ?? { type: 'unknown' };
  } catch (e) {
    // An I/O error (e.g. a truncated image) is reported, not thrown.
    return { type: 'unknown', error: errMsg(e) };
  }
}

const probeCache = new WeakMap<DiskPartition, Promise<FsProbe>>();

/** probeFilesystem of a partition, cached per opened disk. */
export function probePartition(p: DiskPartition): Promise<FsProbe> {
  let r = probeCache.get(p);
  if (!r) {
    r = probeFilesystem(p.region());
    probeCache.set(p, r);
  }
  return r;
}

/** The LabelProbe for findPartition: the filesystem label, found as blkid finds it. */
export const probeLabel: LabelProbe = async (p) => (await probePartition(p)).label;
