import type { Device, WriteHint } from './device.js';

/** Thrown by FaultDevice once its write budget is spent: the simulated crash. */
export class PowerCut extends Error {
  override name = 'PowerCut';
}

export interface FaultOptions {
  /** Writes 0..n-1 land; write n (0-based) is the crash. */
  failAtWrite: number;
  /**
   * Tear the crashing write: land only its first `tornSectors` sectors
   * (sector-granular, as a disk tears), then crash. Default 0: nothing lands.
   */
  tornSectors?: number;
}

/**
 * Wraps a device and stops after write N, optionally tearing that write at a
 * sector boundary, so crash-safety tests can replay every prefix of a write
 * sequence. Also records the write log so a test can count the writes of a
 * clean run first.
 */
export class FaultDevice implements Device {
  readonly size: number;
  readonly sectorSize: number;
  writes = 0;
  crashed = false;
  readonly log: { offset: number; length: number }[] = [];

  constructor(private readonly inner: Device, private readonly opts: FaultOptions = { failAtWrite: Infinity }) {
    this.size = inner.size;
    this.sectorSize = inner.sectorSize;
  }

  read(offset: number, buf: Uint8Array): Promise<void> {
    if (this.crashed) throw new PowerCut('device is off');
    return this.inner.read(offset, buf);
  }

  async write(offset: number, buf: Uint8Array, hint?: WriteHint): Promise<void> {
    if (this.crashed) throw new PowerCut('device is off');
    const n = this.writes++;
    if (n === this.opts.failAtWrite) {
      this.crashed = true;
      const torn = Math.min((this.opts.tornSectors ?? 0) * this.sectorSize, buf.length);
      if (torn > 0) await this.inner.write(offset, buf.subarray(0, torn));
      throw new PowerCut(`power cut at write ${n}`);
    }
    this.log.push({ offset, length: buf.length });
    await this.inner.write(offset, buf, hint);
  }

  async flush(): Promise<void> {
    if (this.crashed) throw new PowerCut('device is off');
    await this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
