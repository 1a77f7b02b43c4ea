import type { Device } from './device.js';

/** A device in memory, for tests and small scratch work. */
export class MemoryDevice implements Device {
  readonly data: Buffer;
  constructor(readonly size: number, readonly sectorSize = 512, data?: Buffer) {
    this.data = data ?? Buffer.alloc(size);
  }
  async read(offset: number, buf: Uint8Array): Promise<void> {
    if (offset < 0 || offset + buf.length > this.size) throw new RangeError(`memory device: read ${offset}+${buf.length} past ${this.size}`);
    buf.set(this.data.subarray(offset, offset + buf.length));
  }
  async write(offset: number, buf: Uint8Array): Promise<void> {
    if (offset < 0 || offset + buf.length > this.size) throw new RangeError(`memory device: write ${offset}+${buf.length} past ${this.size}`);
    this.data.set(buf, offset);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}
