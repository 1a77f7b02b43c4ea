/**
 * Metadata blocks: a 16-bit header (bit 15: stored uncompressed; low 15 bits:
 * bytes on disk) then at most 8 KiB of data once decompressed. Tables (inodes,
 * directories, fragments, ids, xattrs, export) are runs of such blocks, and a
 * read may cross from one block into the next. Blocks are cached (LRU) by
 * their position on disk.
 */
import { FormatError } from '@diskimg/partitions/internal';
import type { Device } from '../device/device.js';
import type { Decompressor } from './compress.js';
import { Lru } from './lru.js';

export const METADATA_SIZE = 8192;
const UNCOMPRESSED = 0x8000;

export interface MetaBlock {
  data: Buffer;
  /** Disk position of the following block. */
  next: number;
}

/** Where a read starts: a block's disk position and an offset inside its decompressed data. */
export interface MetaPos {
  block: number;
  offset: number;
}

export class MetadataReader {
  private readonly cache = new Lru<number, MetaBlock>(256);
  /** Device reads and decompressions made (for the benchmark). */
  reads = 0;
  constructor(
    private readonly dev: Device,
    private readonly end: number,
    private readonly decompress: Decompressor,
  ) {}

  async block(pos: number, structure: string): Promise<MetaBlock> {
    const hit = this.cache.get(pos);
    if (hit) return hit;
    if (!Number.isSafeInteger(pos) || pos < 0 || pos + 2 > this.end) throw new FormatError(structure, `metadata block at ${pos} lies outside the image`);
    const hdr = Buffer.alloc(2);
    await this.dev.read(pos, hdr);
    const h = hdr.readUInt16LE(0);
    const len = h & ~UNCOMPRESSED;
    if (len === 0 || len > METADATA_SIZE) throw new FormatError(structure, `metadata block at ${pos}: ${len} bytes on disk (1..${METADATA_SIZE})`);
    if (pos + 2 + len > this.end) throw new FormatError(structure, `metadata block at ${pos} runs past the image end`);
    const raw = Buffer.alloc(len);
    await this.dev.read(pos + 2, raw);
    this.reads++;
    const data = h & UNCOMPRESSED ? raw : this.decompress(raw, METADATA_SIZE, `${structure} (metadata block at ${pos})`);
    const b = { data, next: pos + 2 + len };
    this.cache.set(pos, b);
    return b;
  }

  /** `length` bytes from `at`, crossing block boundaries; returns the bytes and the position after them. */
  async read(at: MetaPos, length: number, structure: string): Promise<{ data: Buffer; after: MetaPos }> {
    const parts: Buffer[] = [];
    let { block, offset } = at;
    let need = length;
    for (let guard = 0; ; guard++) {
      const b = await this.block(block, structure);
      if (offset > b.data.length) throw new FormatError(structure, `offset ${offset} past the ${b.data.length}-byte metadata block at ${block}`);
      const take = Math.min(need, b.data.length - offset);
      parts.push(b.data.subarray(offset, offset + take));
      need -= take;
      offset += take;
      if (need === 0) {
        // The position after: the next block when this one is used up.
        const after = offset === b.data.length ? { block: b.next, offset: 0 } : { block, offset };
        return { data: parts.length === 1 ? parts[0]! : Buffer.concat(parts), after };
      }
      if (guard > length / 1 + 2) throw new FormatError(structure, 'metadata blocks hold no data');
      block = b.next;
      offset = 0;
    }
  }
}

/**
 * A cursor over a metadata stream, reading fields one after another. It keeps
 * the rest of the current block as a window, so most reads are a subarray and
 * the next block is fetched only when a read crosses into it.
 */
export class MetaCursor {
  private win: Buffer | undefined;
  private next = 0;
  /** The block the window ends in (its disk position and data length). */
  private cur = 0;
  private curLen = 0;
  constructor(
    private readonly meta: MetadataReader,
    private readonly start: MetaPos,
    readonly structure: string,
  ) {}
  async bytes(n: number): Promise<Buffer> {
    if (!this.win) {
      const b = await this.meta.block(this.start.block, this.structure);
      if (this.start.offset > b.data.length) throw new FormatError(this.structure, `offset ${this.start.offset} past the ${b.data.length}-byte metadata block at ${this.start.block}`);
      this.win = b.data.subarray(this.start.offset);
      this.next = b.next;
      this.cur = this.start.block;
      this.curLen = b.data.length;
    }
    if (this.win.length < n) {
      // Collect whole blocks, then join once (a long listing is many blocks).
      const parts = [this.win];
      let have = this.win.length;
      while (have < n) {
        const b = await this.meta.block(this.next, this.structure);
        if (b.data.length === 0) throw new FormatError(this.structure, `empty metadata block at ${this.next}`);
        parts.push(b.data);
        have += b.data.length;
        this.cur = this.next;
        this.curLen = b.data.length;
        this.next = b.next;
      }
      this.win = Buffer.concat(parts, have);
    }
    const r = this.win.subarray(0, n);
    this.win = this.win.subarray(n);
    return r;
  }

  /** Where the next read would start (what is left of the window lies in the last block read). */
  pos(): MetaPos {
    if (!this.win) return { ...this.start };
    if (this.win.length === 0) return { block: this.next, offset: 0 };
    return { block: this.cur, offset: this.curLen - this.win.length };
  }
}

/**
 * Lookup tables (fragments, ids, export): an array of u64 disk positions of
 * metadata blocks at `start`, each block holding 8 KiB of fixed-size entries.
 */
export async function readTableEntry(
  dev: Device,
  meta: MetadataReader,
  start: number,
  count: number,
  entrySize: number,
  index: number,
  structure: string,
  cache: Map<number, number>,
): Promise<Buffer> {
  if (!Number.isInteger(index) || index < 0 || index >= count) throw new FormatError(structure, `index ${index} out of range (0..${count - 1})`);
  const perBlock = METADATA_SIZE / entrySize;
  const k = Math.floor(index / perBlock);
  let pos = cache.get(k);
  if (pos === undefined) {
    const p = Buffer.alloc(8);
    if (start + 8 * (k + 1) > dev.size) throw new FormatError(structure, `table index at ${start} lies outside the image`);
    await dev.read(start + 8 * k, p);
    const v = p.readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(structure, `table block ${k} at ${v} lies outside the image`);
    pos = Number(v);
    cache.set(k, pos);
  }
  const { data } = await meta.read({ block: pos, offset: (index % perBlock) * entrySize }, entrySize, structure);
  return data;
}
