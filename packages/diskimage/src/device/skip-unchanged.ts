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
    // Callers keep several writes in flight (WriteBehind): each call takes its own buffer for the
    // old bytes from a free list and gives it back when done (no fresh 1 MiB Buffer per write).
    const old = this.take(buf.length);
    try {
      await this.inner.read(offset, old);
      const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
      // Unchanged as a whole (the common case on a re-apply): one native compare, no per-4 KiB loop.
      const skipped = b.equals(old) ? buf.length : await writeRuns(this.inner, offset, b, (from, to) => b.compare(old, from, to, from, to) === 0);
      this.skipped += skipped;
      this.written += buf.length - skipped;
    } finally {
      this.give(old);
    }
  }

  private readonly free: Buffer[] = [];
  private take(n: number): Buffer {
    const i = this.free.findIndex((f) => f.length >= n);
    return i < 0 ? Buffer.allocUnsafeSlow(Math.max(n, 64 * 1024)).subarray(0, n) : this.free.splice(i, 1)[0]!.subarray(0, n);
  }
  private give(b: Buffer): void {
    if (this.free.length < 8) this.free.push(Buffer.from(b.buffer, b.byteOffset, b.buffer.byteLength - b.byteOffset));
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
