import { createHash, randomBytes } from 'node:crypto';
import { InputError } from './errors.js';

/**
 * Where every UUID, serial and hash seed comes from. With a seed the bytes are
 * derived (SHA-256 of seed and purpose), so the same seed gives the same image;
 * without one they are random.
 */
export interface Entropy {
  /** `n` bytes for `purpose` (e.g. "gpt-disk-guid", "ext4-uuid:psyopsOS-A"). */
  bytes(purpose: string, n: number): Buffer;
  readonly seeded: boolean;
}

/** Entropy for UUIDs and serials: random, or derived from `seed` so that the same inputs give the same bytes. */
export function makeEntropy(seed?: string): Entropy {
  if (seed === undefined) return { bytes: (_p, n) => randomBytes(n), seeded: false };
  return {
    seeded: true,
    bytes(purpose, n) {
      const out = Buffer.alloc(n);
      for (let i = 0, off = 0; off < n; i++) {
        const h = createHash('sha256').update(`diskimg\0${seed}\0${purpose}\0${i}`).digest();
        off += h.copy(out, off);
      }
      return out;
    },
  };
}

/**
 * The SOURCE_DATE_EPOCH values every format we write can hold: FAT32 dates run
 * from 1980-01-01 to 2107-12-31 (2-second steps); ext4 (256-byte inodes) holds
 * 1901–2446, grub.cfg's last_updated needs a four-digit year. FAT's range is
 * the narrowest.
 */
export const SOURCE_DATE_EPOCH_MIN = 315532800; // 1980-01-01T00:00:00Z
export const SOURCE_DATE_EPOCH_MAX = 4354819198; // 2107-12-31T23:59:58Z

/**
 * SOURCE_DATE_EPOCH (seconds) if set and valid, else undefined.
 * Timestamps from inputs are clamped to it; "now" becomes it.
 * A value that is not a whole number in the range above is an InputError.
 */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  const range = `${SOURCE_DATE_EPOCH_MIN}..${SOURCE_DATE_EPOCH_MAX} (1980-01-01 to 2107-12-31 UTC, what FAT32 can record)`;
  if (!/^\d+$/.test(v)) throw new InputError(`SOURCE_DATE_EPOCH=${v}: not a whole number of seconds; give one in ${range}`);
  const n = Number(v);
  if (n < SOURCE_DATE_EPOCH_MIN || n > SOURCE_DATE_EPOCH_MAX) throw new InputError(`SOURCE_DATE_EPOCH=${v}: out of range; give one in ${range}`);
  return n;
}

/** The build's "now" in seconds: SOURCE_DATE_EPOCH or the clock. */
export function buildTime(env: NodeJS.ProcessEnv = process.env): number {
  return sourceDateEpoch(env) ?? Math.floor(Date.now() / 1000);
}

/** Clamp an input timestamp (seconds) to SOURCE_DATE_EPOCH, as reproducible-builds.org asks. */
export function clampTime(t: number, epoch: number | undefined): number {
  return epoch !== undefined && t > epoch ? epoch : t;
}
