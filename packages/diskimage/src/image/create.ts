import { stat, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InputError, makeEntropy, type Entropy, type LayoutPlan } from '@diskimg/partitions';
import type { Device } from '../device/device.js';
import { Region } from '../device/region.js';
import { SparseWriteDevice } from '../device/sparse.js';
import { FileDevice } from '../device/file.js';
import { psyopsLayout, PSYOPS_DEFAULTS } from './layout.js';
import { writePartitionTable } from './write.js';
import { openDisk, summarizeDisk, type DiskSummary } from './disk.js';
import { assertNotMounted } from './mounts.js';

export interface CreateImageOptions {
  /** Image file to create (or overwrite), or a block device that is not in use. */
  output: string;
  espSize?: string | number;
  secretSize?: string | number;
  slotSize?: string | number;
  /** 512 (default) or 4096; for a block device it must match the device. */
  sectorSize?: number;
  /** Derive every GUID from this seed (byte-identical output). */
  seed?: string;
  /** Overrides `seed` (tests). */
  entropy?: Entropy;
  /**
   * Writes the filesystems, given the device and the plan (partition byte
   * ranges via planRegions). Runs before the partition table is written, so
   * a failure leaves no table that points at half-written partitions.
   * `fresh`: the target is a new sparse file that reads as zeros (writers may
   * skip zeroing), not a reused block device.
   */
  fill?: (dev: Device, plan: LayoutPlan, ctx: { fresh: boolean }) => Promise<void>;
}

export interface CreateSummary extends DiskSummary {
  output: string;
  target: 'file' | 'block-device';
}

/** Bounds-checked regions of the planned partitions, keyed by GPT name. */
export function planRegions(dev: Device, plan: LayoutPlan): Map<string, Region> {
  const ss = plan.sectorSize;
  return new Map(plan.partitions.map((p) => [p.name, new Region(dev, p.firstLba * ss, p.sizeBytes, p.name)]));
}

/**
 * Lay out a psyopsOS disk: plan first (so bad input writes nothing), then
 * fill the partitions, then write the partition table last.
 *
 * An image file is built under a temporary name beside OUTPUT and renamed
 * over it only when complete: a failure leaves no partial image and keeps
 * whatever OUTPUT held before. A block device gets its old GPT headers
 * wiped first, so a failure leaves a blank disk, never a table pointing at
 * half-written filesystems.
 */
export async function createImage(opts: CreateImageOptions): Promise<CreateSummary> {
  const entropy = opts.entropy ?? makeEntropy(opts.seed);
  const st = await stat(opts.output).catch(() => undefined);
  const sizes = { espSize: opts.espSize, secretSize: opts.secretSize, slotSize: opts.slotSize };
  let target: CreateSummary['target'];
  if (st?.isBlockDevice()) {
    target = 'block-device';
    assertNotMounted(opts.output);
    const dev = await FileDevice.open(opts.output, { writable: true });
    try {
      if (opts.sectorSize !== undefined && opts.sectorSize !== dev.sectorSize) {
        throw new InputError(`${opts.output}: the device has ${dev.sectorSize}-byte sectors; drop --sector-size or use ${dev.sectorSize}`);
      }
      const plan = psyopsLayout({ ...sizes, sectorSize: dev.sectorSize, totalSize: dev.size });
      if (opts.fill) {
        await wipeTable(dev);
        await opts.fill(dev, plan, { fresh: false });
        await dev.flush();
      }
      await writePartitionTable(dev, plan, entropy);
      await dev.flush();
    } finally {
      await dev.close();
    }
  } else {
    if (st && !st.isFile()) throw new InputError(`${opts.output}: exists and is not a regular file or block device`);
    target = 'file';
    const plan = psyopsLayout({ ...sizes, sectorSize: opts.sectorSize ?? PSYOPS_DEFAULTS.sectorSize });
    const tmp = join(dirname(opts.output), `.${basename(opts.output)}.partial-${process.pid}`);
    const dev = await FileDevice.create(tmp, plan.totalSize, plan.sectorSize);
    try {
      // A fresh file reads as zeros: zero blocks need no write and stay holes.
      await opts.fill?.(new SparseWriteDevice(dev), plan, { fresh: true });
      await writePartitionTable(dev, plan, entropy, { assumeZeroed: true });
      await dev.flush();
      await dev.close();
      await rename(tmp, opts.output);
    } catch (e) {
      await dev.close().catch(() => {});
      await rm(tmp, { force: true });
      throw e;
    }
  }
  const disk = await openDisk(opts.output);
  try {
    return { output: opts.output, target, ...summarizeDisk(disk) };
  } finally {
    await disk.close();
  }
}

/** Zero the protective MBR, primary GPT header and the backup header (last sector). */
async function wipeTable(dev: Device): Promise<void> {
  const ss = dev.sectorSize;
  await dev.write(0, Buffer.alloc(2 * ss));
  await dev.write(dev.size - ss, Buffer.alloc(ss));
  await dev.flush();
}
