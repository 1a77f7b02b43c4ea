/**
 * The one small I/O interface every filesystem writer and reader goes through.
 * Offsets and lengths are byte counts (plain numbers, safe to 8 PiB).
 */
export interface Device {
  /** Total size in bytes. */
  readonly size: number;
  /** Logical sector size in bytes (512 or 4096). */
  readonly sectorSize: number;
  /** Fill `buf` from `offset`; short reads past the end throw. */
  read(offset: number, buf: Uint8Array): Promise<void>;
  /** Write all of `buf` at `offset`; a layer that cannot use `hint` ignores it (a wrapper passes it on). */
  write(offset: number, buf: Uint8Array, hint?: WriteHint): Promise<void>;
  /** Make previous writes durable (fdatasync for files and block devices). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * What a writer already knows about a write's bytes, so a lower layer can
 * skip work it would otherwise redo (SparseWriteDevice's zero probe).
 */
export interface WriteHint {
  /** Every 4 KiB piece of the buffer on the device's 4 KiB grid holds a non-zero byte (the ext4 writer probed each block for holes). */
  noZeroPieces?: boolean;
}

/** Read `length` bytes at `offset` into a fresh buffer. */
export async function readAt(dev: Device, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  await dev.read(offset, buf);
  return buf;
}
