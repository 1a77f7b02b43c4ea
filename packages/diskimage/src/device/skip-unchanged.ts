import type { Device } from './device.js';
import { writeRuns } from './sparse.js';

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
    const skipped = await writeRuns(this.inner, offset, b, (from, to) => b.compare(old, from, to, from, to) === 0);
    this.skipped += skipped;
    this.written += buf.length - skipped;
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
