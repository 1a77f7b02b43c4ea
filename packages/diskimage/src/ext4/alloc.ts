/**
 * Streaming block allocator for a fresh filesystem: one cursor that only moves
 * forward, handing out contiguous runs and stepping over the fixed metadata
 * (superblock/GDT backups, flex-group bitmaps and inode tables). Because it
 * never frees, "used" is simply "below the cursor, or metadata".
 */
export interface Run {
  start: number;
  len: number;
}

export class BlockAllocator {
  private cursor: number;
  /** Index of the first metadata range ending after the cursor. */
  private mi = 0;
  private freeLeft: number;

  constructor(
    readonly blocksCount: number,
    /** Sorted, merged, non-overlapping [start, end) ranges never handed out. */
    private readonly metadata: readonly (readonly [number, number])[],
    firstBlock = 0,
  ) {
    this.cursor = firstBlock;
    let meta = 0;
    for (const [s, e] of metadata) meta += Math.max(0, Math.min(e, blocksCount) - Math.max(s, firstBlock));
    this.freeLeft = blocksCount - firstBlock - meta;
    this.skipMetadata();
  }

  /** Blocks still available. */
  get free(): number {
    return this.freeLeft;
  }

  /** Next block the allocator would hand out (everything below it is in use). */
  get position(): number {
    return this.cursor;
  }

  private skipMetadata(): void {
    while (this.mi < this.metadata.length && this.metadata[this.mi]![1] <= this.cursor) this.mi++;
    const m = this.metadata[this.mi];
    if (m && m[0] <= this.cursor) {
      this.cursor = m[1];
      this.mi++;
      this.skipMetadata();
    }
  }

  /** Take `n` blocks as runs in ascending order; null (nothing taken) if fewer are free. */
  alloc(n: number): Run[] | null {
    if (n > this.freeLeft) return null;
    const runs: Run[] = [];
    let left = n;
    while (left > 0) {
      const m = this.metadata[this.mi];
      const limit = m ? m[0] : this.blocksCount;
      const len = Math.min(left, limit - this.cursor);
      const prev = runs[runs.length - 1];
      if (prev && prev.start + prev.len === this.cursor) prev.len += len;
      else runs.push({ start: this.cursor, len });
      this.cursor += len;
      left -= len;
      this.skipMetadata();
    }
    this.freeLeft -= n;
    return runs;
  }

  /** Is block `b` in use (allocated or metadata)? */
  isUsed(b: number): boolean {
    if (b < this.cursor) return true;
    return isMetadata(this.metadata, b);
  }
}

/** Binary search in sorted [start, end) ranges. */
export function isMetadata(ranges: readonly (readonly [number, number])[], b: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [s, e] = ranges[mid]!;
    if (b < s) hi = mid - 1;
    else if (b >= e) lo = mid + 1;
    else return true;
  }
  return false;
}
