import type { Device } from './device.js';

const CHUNK = 4096;

/**
 * Reads before it writes and writes only the 4 KiB pieces whose bytes differ.
 * USB sticks and SD cards write slowly and wear out; reads are cheap. With a
 * deterministic filesystem layout, re-applying the same update writes almost
 * nothing. Counts what it wrote and what it skipped.
 */
export class SkipUnchangedDevice implements Device {
  readonly size: number;
  readonly sectorSize: number;
  written = 0;
  skipped = 0;

  constructor(private readonly inner: Device) {
    this.size = inner.size;
    this.sectorSize = inner.sectorSize;
  }

  read(offset: number, buf: Uint8Array): Promise<void> {
    return this.inner.read(offset, buf);
  }

  async write(offset: number, buf: Uint8Array): Promise<void> {
    // A buffer per call: callers keep several writes in flight (WriteBehind).
    const old = Buffer.allocUnsafe(buf.length);
    await this.inner.read(offset, old);
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    let runStart = -1; // start (in buf) of the pending run of changed pieces
    let pos = 0;
    while (pos < b.length) {
      // Pieces follow the device's 4 KiB grid, not the buffer's start.
      const end = Math.min(b.length, pos + CHUNK - ((offset + pos) % CHUNK));
      const same = b.compare(old, pos, end, pos, end) === 0;
      if (same) {
        this.skipped += end - pos;
        if (runStart >= 0) await this.flushRun(offset, b, runStart, pos);
        runStart = -1;
      } else if (runStart < 0) runStart = pos;
      pos = end;
    }
    if (runStart >= 0) await this.flushRun(offset, b, runStart, b.length);
  }

  private async flushRun(offset: number, b: Buffer, from: number, to: number): Promise<void> {
    await this.inner.write(offset + from, b.subarray(from, to));
    this.written += to - from;
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
