import { ATTR_LONG_NAME, DIRENT_SIZE } from './dirent.js';

/** VFAT long-name entries (fatgen103 §7): 13 UCS-2 units each, stored last-first before the short entry. */

export const LFN_LAST = 0x40;
export const LFN_CHARS = 13;
/** UTF-16 unit offsets of the 13 name characters inside a long-name entry. */
const CHAR_OFFSETS = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/** The checksum of the 11-byte short name that every long-name entry carries (LDIR_Chksum). */
export function lfnChecksum(name11: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + name11[i]) & 0xff;
  return sum;
}

/** Number of long-name entries a name needs. */
export function lfnEntryCount(name: string): number {
  return Math.ceil(name.length / LFN_CHARS);
}

/**
 * Encode the long-name entries for `name` in on-disk order (highest ordinal
 * first), ready to be followed by the short entry.
 */
export function encodeLfnEntries(name: string, name11: Buffer): Buffer {
  const n = lfnEntryCount(name);
  const sum = lfnChecksum(name11);
  const out = Buffer.alloc(n * DIRENT_SIZE);
  for (let k = 0; k < n; k++) {
    const ord = k + 1;
    const e = out.subarray((n - 1 - k) * DIRENT_SIZE);
    e[0] = ord | (ord === n ? LFN_LAST : 0);
    e[11] = ATTR_LONG_NAME;
    e[12] = 0; // LDIR_Type
    e[13] = sum;
    // LDIR_FstClusLO (26) stays 0
    for (let i = 0; i < LFN_CHARS; i++) {
      const idx = k * LFN_CHARS + i;
      // one NUL terminates a name that does not fill the entry; the rest is 0xFFFF
      const u = idx < name.length ? name.charCodeAt(idx) : idx === name.length ? 0 : 0xffff;
      e.writeUInt16LE(u, CHAR_OFFSETS[i]);
    }
  }
  return out;
}

/** The 13 units of one long-name entry, cut at the NUL terminator. */
export function decodeLfnChars(buf: Buffer, off: number): string {
  let s = '';
  for (const o of CHAR_OFFSETS) {
    const u = buf.readUInt16LE(off + o);
    if (u === 0) break;
    s += String.fromCharCode(u);
  }
  return s;
}

/**
 * Assembles a long name while scanning a directory: feed each long-name entry
 * in disk order, then ask for the name that belongs to the short entry.
 * Orphaned or mismatched sequences are dropped, as Linux and Windows do.
 */
export class LfnAssembler {
  private parts: string[] = [];
  private expect = 0;
  private sum = -1;
  start = -1;

  feed(buf: Buffer, off: number, slot: number): void {
    const ord = buf[off];
    const sum = buf[off + 13];
    if (ord & LFN_LAST) {
      this.parts = [];
      this.expect = ord & 0x1f;
      this.sum = sum;
      this.start = slot;
    } else if (this.expect === 0 || (ord & 0x1f) !== this.expect || sum !== this.sum) {
      this.reset();
      return;
    }
    this.parts[(ord & 0x1f) - 1] = decodeLfnChars(buf, off);
    this.expect = (ord & 0x1f) - 1;
    if ((ord & 0x1f) === 0) this.reset();
  }

  /** The long name for this short entry, if a complete matching sequence preceded it. */
  take(name11: Buffer): { name: string; start: number } | undefined {
    const ok = this.sum >= 0 && this.expect === 0 && this.parts.length > 0 && lfnChecksum(name11) === this.sum;
    const r = ok ? { name: this.parts.join(''), start: this.start } : undefined;
    this.reset();
    return r;
  }

  reset(): void {
    this.parts = [];
    this.expect = 0;
    this.sum = -1;
    this.start = -1;
  }
}
