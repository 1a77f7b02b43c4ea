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
  /** Write all of `buf` at `offset`. */
  write(offset: number, buf: Uint8Array): Promise<void>;
  /** Make previous writes durable (fdatasync for files and block devices). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Read `length` bytes at `offset` into a fresh buffer. */
export async function readAt(dev: Device, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  await dev.read(offset, buf);
  return buf;
}
