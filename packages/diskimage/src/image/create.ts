import { lstat, open, realpath, stat, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pidFilePattern, removeDeadPidFiles } from './stale.js';
import { fmtBytes, InputError, makeEntropy, type Entropy, type LayoutPlan } from '@diskimg/partitions/internal';
import type { Device } from '../device/device.js';
import { Region } from '../device/region.js';
import { SparseWriteDevice } from '../device/sparse.js';
import { FileDevice } from '../device/file.js';
import { psyopsLayout, PSYOPS_DEFAULTS } from './layout.js';
import { writePartitionTable } from './write.js';
import { openDisk, summarizeDisk, type DiskSummary } from './disk.js';
import { assertNotMounted } from './mounts.js';

/** Options of `createImage`: the output, the layout, and a callback filling each partition. */
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
  /** Replace an existing OUTPUT that is not a disk image (default: refuse; an image or an empty file is always replaced). */
  force?: boolean;
}

/** What `createImage` wrote: the disk's table and partitions. */
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
  const output = await resolveOutput(opts.output);
  const st = await stat(output).catch(() => undefined);
  const sizes = { espSize: opts.espSize, secretSize: opts.secretSize, slotSize: opts.slotSize };
  let target: CreateSummary['target'];
  if (st?.isBlockDevice()) {
    target = 'block-device';
    assertNotMounted(output);
    const dev = await FileDevice.open(output, { writable: true });
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
    if (st && st.size > 0 && !opts.force && !(await looksLikeImage(output))) {
      throw new InputError(`${opts.output}: exists and is not a disk image (no GPT); give --force to replace it`);
    }
    target = 'file';
    const plan = psyopsLayout({ ...sizes, sectorSize: opts.sectorSize ?? PSYOPS_DEFAULTS.sectorSize });
    await removeStalePartials(output);
    const tmp = partialPath(output);
    let dev: FileDevice | undefined;
    try {
      dev = await FileDevice.create(tmp, plan.totalSize, plan.sectorSize);
      // A fresh file reads as zeros: zero blocks need no write and stay holes.
      await opts.fill?.(new SparseWriteDevice(dev), plan, { fresh: true });
      await writePartitionTable(dev, plan, entropy, { assumeZeroed: true });
      await dev.flush();
      await dev.close();
      dev = undefined;
      await rename(tmp, output);
    } catch (e) {
      await dev?.close().catch(() => {});
      await rm(tmp, { force: true });
      throw outputError(e, opts.output, plan.totalSize);
    }
  }
  const disk = await openDisk(output);
  try {
    return { output: opts.output, target, ...summarizeDisk(disk) };
  } finally {
    await disk.close();
  }
}

/** The temporary name an image file is built under, beside OUTPUT: `.NAME.partial-PID`. */
export function partialPath(output: string, pid = process.pid): string {
  return join(dirname(output), `.${basename(output)}.partial-${pid}`);
}

/**
 * Remove `.NAME.partial-PID` files beside OUTPUT left by processes that no
 * longer exist (killed by SIGKILL or a power cut). A live process's file is kept.
 */
export async function removeStalePartials(output: string): Promise<string[]> {
  return removeDeadPidFiles(dirname(output), pidFilePattern(`.${basename(output)}.partial-`), { keepOwn: true });
}

/**
 * Where to build: OUTPUT, or the file a symbolic link OUTPUT points to (the
 * link stays a link, as with `cp`). Its directory must exist.
 */
async function resolveOutput(output: string): Promise<string> {
  const l = await lstat(output).catch(() => undefined);
  if (l?.isSymbolicLink()) {
    return await realpath(output).catch(() => {
      throw new InputError(`${output}: a symbolic link to a missing file; create its target's directory or give the real path`);
    });
  }
  const dir = dirname(output);
  const d = await stat(dir).catch(() => undefined);
  if (!d) throw new InputError(`${output}: directory ${dir} does not exist; create it first`);
  if (!d.isDirectory()) throw new InputError(`${output}: ${dir} is not a directory`);
  return output;
}

/** A GPT signature ("EFI PART") at LBA 1 with 512- or 4096-byte sectors. */
async function looksLikeImage(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(8);
    for (const ss of [512, 4096]) {
      const { bytesRead } = await fh.read(b, 0, 8, ss);
      if (bytesRead === 8 && b.toString('latin1') === 'EFI PART') return true;
    }
    return false;
  } finally {
    await fh.close();
  }
}

/** System errors while building OUTPUT, said about OUTPUT (never the temporary name) with what to do. */
function outputError(e: unknown, output: string, size: number): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  const dir = dirname(output) === '.' ? 'the current directory' : dirname(output);
  switch (code) {
    case 'EFBIG':
    case 'EINVAL':
      if ((e as NodeJS.ErrnoException).syscall !== 'ftruncate') return e;
      return new InputError(`${output}: an image of ${fmtBytes(size)} is larger than the filesystem holding ${dir} allows for one file; give smaller --esp-size/--secret-size/--slot-size or write it elsewhere`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new InputError(`${output}: no space left on the filesystem holding ${dir} (the sparse image is up to ${fmtBytes(size)}); free some space or write it elsewhere`);
    case 'EACCES':
    case 'EPERM':
      return new InputError(`${output}: permission denied writing in ${dir}; choose a directory you may write to`);
    case 'EROFS':
      return new InputError(`${output}: ${dir} is on a read-only filesystem; write it elsewhere`);
    case 'EIO':
      return new InputError(`${output}: input/output error while writing; the disk holding ${dir} may be failing (check dmesg)`);
    default:
      return e;
  }
}

/** Zero the protective MBR, primary GPT header and the backup header (last sector). */
async function wipeTable(dev: Device): Promise<void> {
  const ss = dev.sectorSize;
  await dev.write(0, Buffer.alloc(2 * ss));
  await dev.write(dev.size - ss, Buffer.alloc(ss));
  await dev.flush();
}
