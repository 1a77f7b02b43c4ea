/**
 * The export (lookup) table: the inode reference of every inode number, so
 * an inode can be found by number (NFS export; we use it to find a
 * directory's parent after following a symbolic link).
 */
import type { Device } from '../device/device.js';
import { readTableEntry, type MetadataReader } from './metadata.js';

export class ExportTable {
  private readonly blocks = new Map<number, number>();
  constructor(
    private readonly dev: Device,
    private readonly meta: MetadataReader,
    private readonly start: number,
    private readonly count: number,
  ) {}
  /** The inode reference of inode number `n` (1-based). */
  async ref(n: number): Promise<bigint> {
    return (await readTableEntry(this.dev, this.meta, this.start, this.count, 8, n - 1, 'squashfs export table', this.blocks)).readBigUInt64LE(0);
  }
}
