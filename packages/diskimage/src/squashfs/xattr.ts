/**
 * Extended attributes. At xattr_id_table_start: squashfs_xattr_id_table
 * (xattr_table_start u64, xattr_ids u32, unused u32) then u64 positions of
 * metadata blocks of squashfs_xattr_id entries (xattr ref u64, count u32,
 * size u32). An inode's xattr index picks one id entry; its ref points into
 * the key/value area: squashfs_xattr_entry (type u16, size u16, name without
 * prefix) then squashfs_xattr_val (vsize u32, value). With type bit 0x100 the
 * value is out of line: an 8-byte reference to a value stored once elsewhere.
 */
import { FormatError } from '@diskimg/partitions/internal';
import type { Device } from '../device/device.js';
import { MetaCursor, readTableEntry, type MetadataReader } from './metadata.js';

const PREFIXES = ['user.', 'trusted.', 'security.'];
const SQUASHFS_XATTR_VALUE_OOL = 0x100;
/** The kernel's limit on one value (XATTR_SIZE_MAX) and a cap on names per inode. */
const MAX_VALUE = 65536;
const MAX_COUNT = 4096;

export class XattrTable {
  private readonly blocks = new Map<number, number>();
  private constructor(
    private readonly dev: Device,
    private readonly meta: MetadataReader,
    private readonly kvStart: number,
    private readonly idsStart: number,
    private readonly count: number,
  ) {}

  static async open(dev: Device, meta: MetadataReader, at: number, bytesUsed: number): Promise<XattrTable> {
    const S = 'squashfs xattr id table';
    if (at + 16 > bytesUsed) throw new FormatError(S, `at ${at} runs past the image`);
    const b = Buffer.alloc(16);
    await dev.read(at, b);
    const kv = b.readBigUInt64LE(0);
    const count = b.readUInt32LE(8);
    if (kv >= BigInt(bytesUsed)) throw new FormatError(S, `xattr_table_start ${kv} lies outside the image`);
    if (count * 16 > bytesUsed) throw new FormatError(S, `${count} ids cannot fit the image`);
    return new XattrTable(dev, meta, Number(kv), at + 16, count);
  }

  /** name → value of xattr index `idx`, in stored order. */
  async get(idx: number, structure: string): Promise<Map<string, Buffer>> {
    const S = `${structure} xattrs`;
    const id = await readTableEntry(this.dev, this.meta, this.idsStart, this.count, 16, idx, 'squashfs xattr id table', this.blocks);
    const ref = id.readBigUInt64LE(0);
    const n = id.readUInt32LE(8);
    if (n > MAX_COUNT) throw new FormatError(S, `${n} attributes (max ${MAX_COUNT})`);
    const c = new MetaCursor(this.meta, this.pos(ref), S);
    const out = new Map<string, Buffer>();
    for (let k = 0; k < n; k++) {
      const e = await c.bytes(4);
      const type = e.readUInt16LE(0);
      const nsize = e.readUInt16LE(2);
      const prefix = PREFIXES[type & 0xff];
      if (prefix === undefined || (type & ~0x1ff) !== 0) throw new FormatError(S, `unknown xattr type ${type}`);
      if (nsize > 255) throw new FormatError(S, `xattr name of ${nsize} bytes`);
      const name = prefix + (await c.bytes(nsize)).toString('latin1');
      const vsize = (await c.bytes(4)).readUInt32LE(0);
      let value: Buffer;
      if (type & SQUASHFS_XATTR_VALUE_OOL) {
        if (vsize !== 8) throw new FormatError(S, `out-of-line value reference of ${vsize} bytes`);
        const vref = (await c.bytes(8)).readBigUInt64LE(0);
        const vc = new MetaCursor(this.meta, this.pos(vref), S);
        const len = (await vc.bytes(4)).readUInt32LE(0);
        if (len > MAX_VALUE) throw new FormatError(S, `value of ${len} bytes (max ${MAX_VALUE})`);
        value = Buffer.from(await vc.bytes(len));
      } else {
        if (vsize > MAX_VALUE) throw new FormatError(S, `value of ${vsize} bytes (max ${MAX_VALUE})`);
        value = Buffer.from(await c.bytes(vsize));
      }
      out.set(Buffer.from(name, 'latin1').toString('utf8'), value);
    }
    return out;
  }

  private pos(ref: bigint): { block: number; offset: number } {
    return { block: this.kvStart + Number(ref >> 16n), offset: Number(ref & 0xffffn) };
  }
}
