/**
 * The fragment table: squashfs_fragment_entry (start_block u64, size u32 with
 * the uncompressed bit 24, unused u32) for the blocks that pack the tails of
 * many small files.
 */
import { FormatError } from '@diskimg/partitions/internal';
import type { Device } from '../device/device.js';
import { readTableEntry, type MetadataReader } from './metadata.js';

export interface FragmentEntry {
  start_block: number;
  size: number;
}

export class FragmentTable {
  private readonly blocks = new Map<number, number>();
  constructor(
    private readonly dev: Device,
    private readonly meta: MetadataReader,
    private readonly start: number,
    private readonly count: number,
  ) {}
  async get(index: number): Promise<FragmentEntry> {
    const S = 'squashfs fragment table';
    const b = await readTableEntry(this.dev, this.meta, this.start, this.count, 16, index, S, this.blocks);
    const v = b.readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(S, `fragment ${index} at ${v} lies outside the image`);
    return { start_block: Number(v), size: b.readUInt32LE(8) };
  }
}
