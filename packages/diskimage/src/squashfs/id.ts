/** The id table: u32 uids/gids that inodes name by 16-bit index (SquashFS keeps each distinct id once). */
import type { Device } from '../device/device.js';
import { readTableEntry, type MetadataReader } from './metadata.js';

export class IdTable {
  private readonly blocks = new Map<number, number>();
  private readonly ids = new Map<number, number>();
  constructor(
    private readonly dev: Device,
    private readonly meta: MetadataReader,
    private readonly start: number,
    private readonly count: number,
  ) {}
  async get(index: number): Promise<number> {
    let v = this.ids.get(index);
    if (v === undefined) {
      v = (await readTableEntry(this.dev, this.meta, this.start, this.count, 4, index, 'squashfs id table', this.blocks)).readUInt32LE(0);
      this.ids.set(index, v);
    }
    return v;
  }
}
