import type { Device, WriteHint } from './device.js';

const CHUNK = 4096;

/**
 * Write `buf` at device `offset` as runs of its 4 KiB pieces (on the
 * device's grid, not the buffer's), leaving out the pieces `skip(from, to)`
 * (offsets in buf) says need no write. Returns the bytes left out.
 */
export async function writeRuns(dev: Device, offset: number, buf: Uint8Array, skip: (from: number, to: number) => boolean): Promise<number> {
  let skipped = 0;
  let runStart = -1; // start (in buf) of the pending run to write
  let pos = 0;
  while (pos < buf.length) {
    const end = Math.min(buf.length, pos + CHUNK - ((offset + pos) % CHUNK));
    if (skip(pos, end)) {
      skipped += end - pos;
      if (runStart >= 0) await dev.write(offset + runStart, buf.subarray(runStart, pos));
      runStart = -1;
    } else if (runStart < 0) runStart = pos;
    pos = end;
  }
  if (runStart >= 0) await dev.write(offset + runStart, buf.subarray(runStart));
  return skipped;
}

const ZERO = Buffer.alloc(CHUNK);

/**
 * All zeros? Data blocks almost always have a non-zero byte among the first
 * few, which JS finds without a native call (a call per 4 KiB block costs
 * ~0.2 s per image); the rest goes to a native memcmp against a zero block.
 */
function isZero(b: Uint8Array): boolean {
  const probe = Math.min(b.length, 16);
  for (let i = 0; i < probe; i++) if (b[i] !== 0) return false;
  if (b.length > 0 && b[b.length - 1] !== 0) return false;
  return Buffer.compare(b, ZERO.subarray(0, b.length)) === 0;
}

/**
 * For a target known to read as zeros (a freshly created sparse image):
 * writes skip every 4 KiB-aligned chunk that is all zeros, so zeroed
 * journals, inode tables and directory padding stay holes in the file.
 *
 * Only correct while nothing this device wrote is later overwritten with
 * zeros (a skipped zero write would leave the old bytes): true for building
 * a new image, where each block is written once. Never use it on a reused
 * file or a block device. A write hinted `noZeroPieces` (the ext4 writer's
 * data, probed for holes already) goes through unprobed.
 */
export class SparseWriteDevice implements Device {
  readonly size: number;
  readonly sectorSize: number;
  constructor(private readonly inner: Device) {
    this.size = inner.size;
    this.sectorSize = inner.sectorSize;
  }
  read(offset: number, buf: Uint8Array): Promise<void> {
    return this.inner.read(offset, buf);
  }
  async write(offset: number, buf: Uint8Array, hint?: WriteHint): Promise<void> {
    // The writer probed every block already (ext4 data): no zero piece to leave out, so no second probe.
    if (hint?.noZeroPieces) return this.inner.write(offset, buf);
    await writeRuns(this.inner, offset, buf, (from, to) => isZero(buf.subarray(from, to)));
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
