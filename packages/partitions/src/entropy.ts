import { createHash, randomBytes } from 'node:crypto';

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
 * SOURCE_DATE_EPOCH (seconds) if set and valid, else undefined.
 * Timestamps from inputs are clamped to it; "now" becomes it.
 */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new Error(`SOURCE_DATE_EPOCH=${v}: not a whole number of seconds`);
  return Number(v);
}

/** The build's "now" in seconds: SOURCE_DATE_EPOCH or the clock. */
export function buildTime(env: NodeJS.ProcessEnv = process.env): number {
  return sourceDateEpoch(env) ?? Math.floor(Date.now() / 1000);
}

/** Clamp an input timestamp (seconds) to SOURCE_DATE_EPOCH, as reproducible-builds.org asks. */
export function clampTime(t: number, epoch: number | undefined): number {
  return epoch !== undefined && t > epoch ? epoch : t;
}
