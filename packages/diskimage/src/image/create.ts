import { stat } from 'node:fs/promises';
import { InputError, makeEntropy, type Entropy } from '@diskimg/partitions';
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
}

export interface CreateSummary extends DiskSummary {
  output: string;
  target: 'file' | 'block-device';
}

/**
 * Lay out a psyopsOS disk: plan first (so bad input writes nothing), then a
 * sparse image file or the block device, then the partition table.
 * Filesystems are written by later stages.
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
      await writePartitionTable(dev, plan, entropy);
      await dev.flush();
    } finally {
      await dev.close();
    }
  } else {
    if (st && !st.isFile()) throw new InputError(`${opts.output}: exists and is not a regular file or block device`);
    target = 'file';
    const plan = psyopsLayout({ ...sizes, sectorSize: opts.sectorSize ?? PSYOPS_DEFAULTS.sectorSize });
    const dev = await FileDevice.create(opts.output, plan.totalSize, plan.sectorSize);
    try {
      await writePartitionTable(dev, plan, entropy, { assumeZeroed: true });
      await dev.flush();
    } finally {
      await dev.close();
    }
  }
  const disk = await openDisk(opts.output);
  try {
    return { output: opts.output, target, ...summarizeDisk(disk) };
  } finally {
    await disk.close();
  }
}
