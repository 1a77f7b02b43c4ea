import type { Device, WriteHint } from './device.js';

/**
 * Passes everything through and counts the bytes written, for progress
 * reports. `onWrite` gets the running total after each write.
 */
export class CountingDevice implements Device {
  readonly size: number;
  readonly sectorSize: number;
  written = 0;
  constructor(private readonly inner: Device, private readonly onWrite?: (total: number) => void) {
    this.size = inner.size;
    this.sectorSize = inner.sectorSize;
  }
  read(offset: number, buf: Uint8Array): Promise<void> {
    return this.inner.read(offset, buf);
  }
  async write(offset: number, buf: Uint8Array, hint?: WriteHint): Promise<void> {
    await this.inner.write(offset, buf, hint);
    this.written += buf.length;
    this.onWrite?.(this.written);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
