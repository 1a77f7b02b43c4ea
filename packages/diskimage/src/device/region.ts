import { SafetyError } from '@diskimg/partitions/internal';
import type { Device, WriteHint } from './device.js';

/**
 * A bounds-checked window of a device (a partition). Offsets are relative to
 * the window; any access that would leave it throws before touching the disk.
 */
export class Region implements Device {
  readonly sectorSize: number;
  constructor(
    readonly parent: Device,
    readonly start: number,
    readonly size: number,
    readonly name = 'region',
  ) {
    if (start < 0 || size < 0 || start + size > parent.size) {
      throw new SafetyError(`${name}: window ${start}+${size} lies outside the device (${parent.size} bytes)`);
    }
    this.sectorSize = parent.sectorSize;
  }

  private check(offset: number, length: number, op: string): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + length > this.size) {
      throw new SafetyError(`${this.name}: ${op} of ${length} bytes at ${offset} is outside the partition (${this.size} bytes)`);
    }
  }

  async read(offset: number, buf: Uint8Array): Promise<void> {
    this.check(offset, buf.length, 'read');
    return await this.parent.read(this.start + offset, buf);
  }

  async write(offset: number, buf: Uint8Array, hint?: WriteHint): Promise<void> {
    this.check(offset, buf.length, 'write');
    // The hint speaks of the 4 KiB grid: it still holds on the parent's only if the window starts on it.
    return await this.parent.write(this.start + offset, buf, this.start % 4096 === 0 ? hint : undefined);
  }

  flush(): Promise<void> {
    return this.parent.flush();
  }

  /** Closing a region does not close its parent. */
  async close(): Promise<void> {}
}
