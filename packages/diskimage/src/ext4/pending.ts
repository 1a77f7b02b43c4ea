/**
 * An ext4 filesystem that is being written must not be findable until it is
 * complete and verified: GRUB's `search --label`, blkid and our own probe all
 * look only at the primary superblock (byte 1024 of the partition) and its
 * s_magic. So an update first replaces the primary superblock with a
 * *pending marker* (s_magic 0, so nothing recognises ext4 there, but the
 * label, UUID and hash seed kept so we can still find the slot and keep its
 * identity on a retry), then writes the whole filesystem through
 * PendingSuperblockDevice, which holds back the bytes of the primary
 * superblock, and writes them, with the label, last (`commit`).
 *
 * The backup superblocks (groups 1, 3, 5, 7, 9, 25, …) are written as they
 * come: no reader that finds slots by label looks at them, and e2fsck using
 * one on an interrupted slot is fine (the slot is reported incomplete anyway).
 */
import type { Device, WriteHint } from '../device/device.js';
import { cString } from './struct.js';
import { SUPERBLOCK_OFFSET } from './superblock.js';

const SB_SIZE = 1024;
const S_MAGIC = 0x38;
const S_UUID = 0x68;
const S_VOLUME_NAME = 0x78;
const S_LAST_MOUNTED = 0x88;
const S_HASH_SEED = 0xec;
/** In s_last_mounted of the marker: says what this is to anyone who hexdumps it. */
export const PENDING_MARK = 'diskimg: slot write in progress';

export interface PendingMarker {
  /** The label the slot will have when complete. */
  label: string;
  uuid?: Uint8Array;
  hashSeed?: Uint8Array;
}

/** The 1024 bytes that stand at the primary superblock's place while a slot is written. */
export function encodePendingMarker(m: PendingMarker): Buffer {
  const b = Buffer.alloc(SB_SIZE);
  b.write(m.label, S_VOLUME_NAME, 16, 'utf8');
  b.write(PENDING_MARK, S_LAST_MOUNTED, 64, 'latin1');
  if (m.uuid) Buffer.from(m.uuid).copy(b, S_UUID, 0, 16);
  if (m.hashSeed) Buffer.from(m.hashSeed).copy(b, S_HASH_SEED, 0, 16);
  return b;
}

/** A pending marker (an interrupted or running slot write), or undefined. */
export function decodePendingMarker(raw: Uint8Array): PendingMarker | undefined {
  const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (b.length < SB_SIZE || b.readUInt16LE(S_MAGIC) !== 0) return undefined;
  if (cString(b.subarray(S_LAST_MOUNTED, S_LAST_MOUNTED + 64)) !== PENDING_MARK) return undefined;
  const uuid = Buffer.from(b.subarray(S_UUID, S_UUID + 16));
  const hashSeed = Buffer.from(b.subarray(S_HASH_SEED, S_HASH_SEED + 16));
  const zero = (x: Buffer) => x.every((v) => v === 0);
  return {
    label: cString(b.subarray(S_VOLUME_NAME, S_VOLUME_NAME + 16)),
    uuid: zero(uuid) ? undefined : uuid,
    hashSeed: zero(hashSeed) ? undefined : hashSeed,
  };
}

/**
 * Passes writes through except the primary superblock's 1024 bytes, which it
 * keeps (and serves to reads) until `commit()`. `start()` puts the pending
 * marker in place (and flushes) before anything else is written.
 */
export class PendingSuperblockDevice implements Device {
  readonly size: number;
  readonly sectorSize: number;
  private held: Buffer | undefined;

  constructor(private readonly inner: Device) {
    this.size = inner.size;
    this.sectorSize = inner.sectorSize;
  }

  async start(marker: PendingMarker): Promise<void> {
    await this.inner.write(SUPERBLOCK_OFFSET, encodePendingMarker(marker));
    await this.inner.flush();
  }

  async read(offset: number, buf: Uint8Array): Promise<void> {
    await this.inner.read(offset, buf);
    if (this.held) overlay(offset, buf, this.held);
  }

  async write(offset: number, buf: Uint8Array, hint?: WriteHint): Promise<void> {
    const end = offset + buf.length;
    const sbEnd = SUPERBLOCK_OFFSET + SB_SIZE;
    if (end <= SUPERBLOCK_OFFSET || offset >= sbEnd) return this.inner.write(offset, buf, hint);
    this.held ??= Buffer.alloc(SB_SIZE);
    overlayInto(offset, buf, this.held);
    if (offset < SUPERBLOCK_OFFSET) await this.inner.write(offset, buf.subarray(0, SUPERBLOCK_OFFSET - offset));
    if (end > sbEnd) await this.inner.write(sbEnd, buf.subarray(sbEnd - offset));
  }

  /**
   * Write the held superblock (the filesystem becomes findable by its label)
   * and flush. In two halves, the second first: s_magic, the label and the
   * marker all lie in the first 512 bytes, so a write torn at a 512-byte
   * sector leaves either the marker or the complete superblock, never a
   * findable filesystem with half a superblock.
   */
  async commit(): Promise<void> {
    if (!this.held) throw new Error('PendingSuperblockDevice: no superblock was written');
    await this.inner.flush(); // everything else is on disk before the label appears
    await this.inner.write(SUPERBLOCK_OFFSET + SB_SIZE / 2, this.held.subarray(SB_SIZE / 2));
    await this.inner.flush();
    await this.inner.write(SUPERBLOCK_OFFSET, this.held.subarray(0, SB_SIZE / 2));
    await this.inner.flush();
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Copy the held superblock over the part of `buf` (at device `offset`) that it covers. */
function overlay(offset: number, buf: Uint8Array, held: Buffer): void {
  const from = Math.max(offset, SUPERBLOCK_OFFSET);
  const to = Math.min(offset + buf.length, SUPERBLOCK_OFFSET + SB_SIZE);
  if (from < to) buf.set(held.subarray(from - SUPERBLOCK_OFFSET, to - SUPERBLOCK_OFFSET), from - offset);
}

/** Copy the part of `buf` (at device `offset`) that covers the superblock into `held`. */
function overlayInto(offset: number, buf: Uint8Array, held: Buffer): void {
  const from = Math.max(offset, SUPERBLOCK_OFFSET);
  const to = Math.min(offset + buf.length, SUPERBLOCK_OFFSET + SB_SIZE);
  held.set(buf.subarray(from - offset, to - offset), from - SUPERBLOCK_OFFSET);
}

/**
 * The identity (UUID, hash seed) of whatever stands at the primary
 * superblock's place: a complete ext4 superblock or a pending marker. An
 * update passes it on so the rewritten slot keeps it.
 */
export function slotIdentity(raw: Uint8Array): { uuid?: Buffer; hashSeed?: Buffer } {
  const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (b.length < SB_SIZE) return {};
  const pending = decodePendingMarker(b);
  if (pending) return { uuid: pending.uuid && Buffer.from(pending.uuid), hashSeed: pending.hashSeed && Buffer.from(pending.hashSeed) };
  if (b.readUInt16LE(S_MAGIC) !== 0xef53) return {};
  const nonZero = (x: Buffer) => (x.some((v) => v !== 0) ? Buffer.from(x) : undefined);
  return { uuid: nonZero(b.subarray(S_UUID, S_UUID + 16)), hashSeed: nonZero(b.subarray(S_HASH_SEED, S_HASH_SEED + 16)) };
}
