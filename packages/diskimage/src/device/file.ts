import { open, stat, type FileHandle } from 'node:fs/promises';
import { readFileSync, existsSync } from 'node:fs';
import { basename } from 'node:path';
import { InputError } from '@diskimg/partitions/internal';
import type { Device } from './device.js';

/** A device backed by an image file or a block device node. */
export class FileDevice implements Device {
  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    readonly size: number,
    readonly sectorSize: number,
    readonly isBlockDevice: boolean,
  ) {}

  /**
   * Create (or truncate) a sparse image file of `size` bytes. Nothing is
   * written: ftruncate leaves holes, so the file allocates only what is
   * later written.
   */
  static async create(path: string, size: number, sectorSize = 512): Promise<FileDevice> {
    const fh = await open(path, 'w+');
    try {
      await fh.truncate(size);
    } catch (e) {
      await fh.close().catch(() => {});
      throw e;
    }
    return new FileDevice(fh, path, size, sectorSize, false);
  }

  /**
   * Open an existing image file or block device. For block devices the size
   * and logical sector size come from sysfs (Linux); for files the sector
   * size is `sectorSize` (default 512).
   */
  static async open(path: string, opts: { writable?: boolean; sectorSize?: number } = {}): Promise<FileDevice> {
    let st;
    try {
      st = await stat(path);
    } catch {
      throw new InputError(`${path}: no such file or device`);
    }
    if (st.isDirectory()) throw new InputError(`${path}: is a directory, not a disk image or block device`);
    const fh = await open(path, opts.writable ? 'r+' : 'r');
    if (st.isBlockDevice()) {
      const { size, sectorSize } = blockDeviceGeometry(path);
      return new FileDevice(fh, path, size, sectorSize, true);
    }
    return new FileDevice(fh, path, st.size, opts.sectorSize ?? 512, false);
  }

  async read(offset: number, buf: Uint8Array): Promise<void> {
    let done = 0;
    while (done < buf.length) {
      const { bytesRead } = await this.fh.read(buf, done, buf.length - done, offset + done);
      if (bytesRead === 0) throw new InputError(`${this.path}: read past end at byte ${offset + done}`);
      done += bytesRead;
    }
  }

  async write(offset: number, buf: Uint8Array): Promise<void> {
    if (offset + buf.length > this.size) {
      throw new InputError(`${this.path}: write of ${buf.length} bytes at ${offset} past end (${this.size})`);
    }
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, done, buf.length - done, offset + done);
      done += bytesWritten;
    }
  }

  async flush(): Promise<void> {
    await this.fh.datasync();
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Size and logical sector size of a Linux block device from sysfs. */
export function blockDeviceGeometry(path: string): { size: number; sectorSize: number } {
  const name = basename(path);
  const sys = `/sys/class/block/${name}`;
  if (!existsSync(`${sys}/size`)) throw new InputError(`${path}: block device not found in /sys/class/block`);
  // sysfs "size" is always in 512-byte units, whatever the logical sector size.
  const sectors512 = Number(readFileSync(`${sys}/size`, 'utf8').trim());
  const lbsPath = existsSync(`${sys}/queue/logical_block_size`)
    ? `${sys}/queue/logical_block_size`
    : `${sys}/../queue/logical_block_size`; // a partition inherits its disk's
  const sectorSize = existsSync(lbsPath) ? Number(readFileSync(lbsPath, 'utf8').trim()) : 512;
  return { size: sectors512 * 512, sectorSize };
}
