import { FormatError } from '@diskimg/partitions/internal';
import type { Device } from '../device/device.js';
import { endianness } from 'node:os';
import type { Geometry } from './boot-sector.js';

const LITTLE_ENDIAN = endianness() === 'LE';

/** FAT32 entries are 28 bits; the top 4 are reserved and must be preserved (fatgen103 §4). */
export const FAT_MASK = 0x0fffffff;
export const FAT_FREE = 0;
export const FAT_BAD = 0x0ffffff7;
/** Any value ≥ this ends a chain; we write 0x0FFFFFFF like mkfs.fat and Linux. */
export const FAT_EOC_MIN = 0x0ffffff8;
export const FAT_EOC = 0x0fffffff;

export function decodeFatEntry(buf: Buffer, index: number): number {
  return buf.readUInt32LE(index * 4) & FAT_MASK;
}

/** Write `value` into entry `index`, keeping the entry's reserved top 4 bits. */
export function encodeFatEntry(buf: Buffer, index: number, value: number): void {
  const old = buf.readUInt32LE(index * 4);
  buf.writeUInt32LE(((old & 0xf0000000) | (value & FAT_MASK)) >>> 0, index * 4);
}

/**
 * The file allocation table of one volume, held in memory (4 bytes per
 * cluster: 1 MiB for a 128 MiB ESP with 512-byte clusters, 8 MiB for 8 GiB
 * with 4 KiB clusters). Changes are tracked per FAT sector and written to
 * every FAT copy by `flush`, one sector per write, so both copies stay equal
 * and a torn write can never leave half a sector of chain.
 */
export class FatTable {
  private readonly raw: Buffer;
  private readonly dirty = new Set<number>();
  freeCount = 0;
  /** Where the next allocation search starts (FSI_Nxt_Free). */
  nextFree = 2;
  private readonly maxCluster: number;

  private constructor(private readonly g: Geometry, raw: Buffer, freeCount?: number) {
    this.raw = raw;
    this.maxCluster = g.clusterCount + 1;
    this.freeCount = freeCount ?? countFree(raw, this.maxCluster);
  }

  /** A fresh table: entry 0 = media byte, entry 1 = EOC (clean), everything else free. */
  static fresh(g: Geometry, media: number): FatTable {
    const raw = Buffer.alloc(g.fatBytes);
    raw.writeUInt32LE((0x0fffff00 | media) >>> 0, 0);
    raw.writeUInt32LE(0x0fffffff, 4);
    const t = new FatTable(g, raw, g.clusterCount);
    for (let s = 0; s < g.fatBytes / g.bytesPerSector; s++) t.dirty.add(s);
    return t;
  }

  /** Read FAT copy `active` (0 unless BPB_ExtFlags says mirroring is off). */
  static async load(dev: Device, g: Geometry, active = 0): Promise<FatTable> {
    const raw = Buffer.alloc(g.fatBytes);
    const chunk = 1 << 20;
    const base = g.fatOffset + active * g.fatBytes;
    for (let off = 0; off < raw.length; off += chunk) {
      await dev.read(base + off, raw.subarray(off, Math.min(off + chunk, raw.length)));
    }
    return new FatTable(g, raw);
  }

  get(c: number): number {
    return decodeFatEntry(this.raw, c);
  }

  set(c: number, v: number): void {
    const was = this.get(c);
    if (c >= 2) {
      if (was === FAT_FREE && v !== FAT_FREE) this.freeCount--;
      if (was !== FAT_FREE && v === FAT_FREE) {
        this.freeCount++;
        if (c < this.nextFree) this.nextFree = c;
      }
    }
    encodeFatEntry(this.raw, c, v);
    this.dirty.add(Math.floor((c * 4) / this.g.bytesPerSector));
  }

  isValidCluster(c: number): boolean {
    return c >= 2 && c <= this.maxCluster;
  }

  /** The clusters of the chain starting at `first` (empty for 0). Detects loops and bad links. */
  chain(first: number, what = 'cluster chain'): number[] {
    const out: number[] = [];
    if (first === 0) return out;
    let c = first;
    for (;;) {
      if (!this.isValidCluster(c)) throw new FormatError('FAT32 FAT', `${what} points to cluster ${c}, outside 2..${this.maxCluster}`);
      out.push(c);
      if (out.length > this.maxCluster) throw new FormatError('FAT32 FAT', `${what} loops`);
      const n = this.get(c);
      if (n >= FAT_EOC_MIN) return out;
      if (n === FAT_FREE || n === FAT_BAD) throw new FormatError('FAT32 FAT', `${what} runs into a ${n === FAT_FREE ? 'free' : 'bad'} cluster after ${c}`);
      c = n;
    }
  }

  /**
   * Pick `n` free clusters without marking them: the first contiguous run of
   * length n from the hint, else the lowest free clusters (fragmented).
   * Returns undefined when fewer than n are free.
   */
  pick(n: number): number[] | undefined {
    if (n === 0) return [];
    if (n > this.freeCount) return undefined;
    const run = this.findRun(n, this.nextFree) ?? this.findRun(n, 2);
    if (run !== undefined) {
      const out = new Array<number>(n);
      for (let i = 0; i < n; i++) out[i] = run + i;
      return out;
    }
    const out: number[] = [];
    for (let c = 2; c <= this.maxCluster && out.length < n; c++) if (this.get(c) === FAT_FREE) out.push(c);
    return out.length === n ? out : undefined;
  }

  private findRun(n: number, from: number): number | undefined {
    let start = 0;
    let len = 0;
    for (let c = from; c <= this.maxCluster; c++) {
      if (this.get(c) === FAT_FREE) {
        if (len === 0) start = c;
        if (++len === n) return start;
      } else len = 0;
    }
    return undefined;
  }

  /** Mark `clusters` as one chain ending in EOC. */
  link(clusters: number[]): void {
    // set() inlined: a 60 MiB file is 120k entries, all in a few hundred sectors
    const perSector = this.g.bytesPerSector / 4;
    // On little-endian hosts (all we run on) a typed view skips Buffer's per-call checks; elsewhere set().
    const u32 = LITTLE_ENDIAN && this.raw.byteOffset % 4 === 0 ? new Uint32Array(this.raw.buffer, this.raw.byteOffset, this.raw.length >>> 2) : undefined;
    let lastSector = -1;
    for (let i = 0; i < clusters.length; i++) {
      const c = clusters[i];
      const v = i + 1 < clusters.length ? clusters[i + 1] : FAT_EOC;
      if (!u32 || c < 2 || c > this.maxCluster) {
        this.set(c, v);
        continue;
      }
      const old = u32[c];
      if ((old & FAT_MASK) === FAT_FREE) this.freeCount--;
      u32[c] = ((old & 0xf0000000) | (v & FAT_MASK)) >>> 0; // as encodeFatEntry: the reserved top 4 bits kept
      const sector = Math.floor(c / perSector);
      if (sector !== lastSector) this.dirty.add((lastSector = sector));
    }
    if (clusters.length) this.nextFree = Math.max(this.nextFree, clusters[clusters.length - 1] + 1);
  }

  /** Mark every cluster of `clusters` free. */
  release(clusters: number[]): void {
    for (const c of clusters) this.set(c, FAT_FREE);
  }

  get hasChanges(): boolean {
    return this.dirty.size > 0;
  }

  /**
   * Write changed FAT sectors to every copy. `coalesce` groups runs of
   * sectors into large writes (for mkfs/populate, where no crash safety is
   * promised); otherwise each sector is its own write.
   */
  async flush(dev: Device, coalesce = false): Promise<void> {
    const bps = this.g.bytesPerSector;
    // Without coalescing, write the highest sector first: chains are allocated
    // upwards, so any prefix of these writes leaves only whole chain tails
    // (ending in EOC) — lost clusters at worst, never a link into a free cluster.
    const sectors = [...this.dirty].sort((a, b) => (coalesce ? a - b : b - a));
    for (let copy = 0; copy < this.g.numFats; copy++) {
      const base = this.g.fatOffset + copy * this.g.fatBytes;
      for (let i = 0; i < sectors.length; ) {
        let j = i + 1;
        if (coalesce) while (j < sectors.length && sectors[j] === sectors[j - 1] + 1 && j - i < 2048) j++;
        const s = sectors[i];
        await dev.write(base + s * bps, this.raw.subarray(s * bps, sectors[j - 1] * bps + bps));
        i = j;
      }
    }
    this.dirty.clear();
  }
}

/** Free entries among clusters 2..maxCluster (a tight loop: this runs over every entry of the FAT at open). */
function countFree(raw: Buffer, maxCluster: number): number {
  let free = 0;
  for (let off = 8, end = (maxCluster + 1) * 4; off < end; off += 4) {
    // an entry is free when its low 28 bits are zero (the top 4 are reserved)
    if (raw[off] === 0 && raw[off + 1] === 0 && raw[off + 2] === 0 && (raw[off + 3] & 0x0f) === 0) free++;
  }
  return free;
}

const WINDOW_CHUNK = 64 * 1024;

/**
 * Read-only, windowed view of a FAT for reading big volumes: entries are
 * fetched in 64 KiB chunks on demand and at most `budget` chunks are kept
 * (4 MiB by default), whatever the size of the FAT.
 */
export class FatWindow {
  private readonly cache = new Map<number, Buffer>();
  private readonly maxCluster: number;
  private readonly base: number;

  constructor(private readonly dev: Device, private readonly g: Geometry, active = 0, private readonly budget = 64) {
    this.maxCluster = g.clusterCount + 1;
    this.base = g.fatOffset + active * g.fatBytes;
  }

  private async get(c: number): Promise<number> {
    const byte = c * 4;
    const ci = Math.floor(byte / WINDOW_CHUNK);
    let b = this.cache.get(ci);
    if (b) {
      this.cache.delete(ci); // keep Map order = least recently used first
    } else {
      b = Buffer.alloc(Math.min(WINDOW_CHUNK, this.g.fatBytes - ci * WINDOW_CHUNK));
      await this.dev.read(this.base + ci * WINDOW_CHUNK, b);
      if (this.cache.size >= this.budget) this.cache.delete(this.cache.keys().next().value!);
    }
    this.cache.set(ci, b);
    return decodeFatEntry(b, (byte - ci * WINDOW_CHUNK) / 4);
  }

  /** Same contract as FatTable.chain. */
  async chain(first: number, what = 'cluster chain'): Promise<number[]> {
    const out: number[] = [];
    if (first === 0) return out;
    let c = first;
    for (;;) {
      if (c < 2 || c > this.maxCluster) throw new FormatError('FAT32 FAT', `${what} points to cluster ${c}, outside 2..${this.maxCluster}`);
      out.push(c);
      if (out.length > this.maxCluster) throw new FormatError('FAT32 FAT', `${what} loops`);
      const n = await this.get(c);
      if (n >= FAT_EOC_MIN) return out;
      if (n === FAT_FREE || n === FAT_BAD) throw new FormatError('FAT32 FAT', `${what} runs into a ${n === FAT_FREE ? 'free' : 'bad'} cluster after ${c}`);
      c = n;
    }
  }
}
