import { FormatError } from '@diskimg/partitions/internal';

/**
 * A tiny table-driven little/big-endian struct codec shared by the ext4
 * structure modules, so each module is its spec's field table and nothing else.
 *
 * A field is [name, offset, kind] or, for values split across two places on
 * disk (ext4's *_lo / *_hi pairs), [name, loOffset, loKind, hiOffset, hiKind]:
 * the decoded value is lo + hi * 2^(bits of lo). Numbers are plain JS numbers;
 * 64-bit values above 2^53 lose precision (no real filesystem reaches them).
 */
export type NumKind = 'u8' | 'u16' | 'u32' | 'u64' | 'be16' | 'be32' | 'be64';
export type Kind = NumKind | `b${number}` | `u32x${number}`;
export type FieldDef =
  | readonly [name: string, offset: number, kind: Kind]
  | readonly [name: string, offset: number, kind: NumKind, hiOffset: number, hiKind: NumKind];

type ValueOf<K> = K extends `u32x${number}` ? number[] : K extends NumKind ? number : Buffer;
export type StructOf<F extends readonly FieldDef[]> = { -readonly [D in F[number] as D[0]]: ValueOf<D[2]> };

const WIDTH: Record<NumKind, number> = { u8: 1, u16: 2, u32: 4, u64: 8, be16: 2, be32: 4, be64: 8 };

export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function readNum(b: Buffer, off: number, k: NumKind): number {
  switch (k) {
    case 'u8': return b[off]!;
    case 'u16': return b.readUInt16LE(off);
    case 'u32': return b.readUInt32LE(off);
    case 'u64': return b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 2 ** 32;
    case 'be16': return b.readUInt16BE(off);
    case 'be32': return b.readUInt32BE(off);
    case 'be64': return b.readUInt32BE(off) * 2 ** 32 + b.readUInt32BE(off + 4);
  }
}

function writeNum(b: Buffer, off: number, k: NumKind, v: number): void {
  switch (k) {
    case 'u8': b[off] = v; return;
    case 'u16': b.writeUInt16LE(v, off); return;
    case 'u32': b.writeUInt32LE(v, off); return;
    case 'u64': b.writeUInt32LE(v % 2 ** 32, off); b.writeUInt32LE(Math.floor(v / 2 ** 32), off + 4); return;
    case 'be16': b.writeUInt16BE(v, off); return;
    case 'be32': b.writeUInt32BE(v, off); return;
    case 'be64': b.writeUInt32BE(Math.floor(v / 2 ** 32), off); b.writeUInt32BE(v % 2 ** 32, off + 4); return;
  }
}

function bitsOf(k: NumKind): number {
  return WIDTH[k] * 8;
}

/** Decode the fields of `defs` that lie inside `b` (fields past its end are left out by the caller's choice of table). */
export function decodeFields<F extends readonly FieldDef[]>(defs: F, b: Buffer): StructOf<F> {
  const out: Record<string, unknown> = {};
  for (const d of defs) {
    const [name, off, kind] = d;
    if (kind.startsWith('u32x')) {
      const n = Number(kind.slice(4));
      const arr: number[] = [];
      for (let i = 0; i < n; i++) arr.push(b.readUInt32LE(off + 4 * i));
      out[name] = arr;
    } else if (kind in WIDTH) {
      let v = readNum(b, off, kind as NumKind);
      if (d.length === 5) v += readNum(b, d[3], d[4]) * 2 ** bitsOf(kind as NumKind);
      out[name] = v;
    } else {
      const n = Number(kind.slice(1));
      out[name] = Buffer.from(b.subarray(off, off + n));
    }
  }
  return out as StructOf<F>;
}

/** Encode `value`'s fields into `b`, checking each fits; `structure` names the struct in errors. */
export function encodeFields<F extends readonly FieldDef[]>(defs: F, value: StructOf<F>, b: Buffer, structure: string): void {
  const v = value as Record<string, unknown>;
  for (const d of defs) {
    const [name, off, kind] = d;
    const x = v[name];
    if (kind.startsWith('u32x')) {
      const n = Number(kind.slice(4));
      const arr = (x ?? []) as number[];
      if (arr.length > n) throw new FormatError(structure, `${name} has ${arr.length} entries, at most ${n} fit`);
      for (let i = 0; i < n; i++) {
        const e = arr[i] ?? 0;
        checkFits(structure, `${name}[${i}]`, e, 32);
        b.writeUInt32LE(e, off + 4 * i);
      }
    } else if (kind in WIDTH) {
      const k = kind as NumKind;
      const num = x === undefined ? 0 : (x as number);
      const loBits = bitsOf(k);
      if (d.length === 5) {
        checkFits(structure, name, num, loBits + bitsOf(d[4]));
        const lo = num % 2 ** loBits;
        writeNum(b, off, k, lo);
        writeNum(b, d[3], d[4], Math.floor(num / 2 ** loBits));
      } else {
        checkFits(structure, name, num, loBits);
        writeNum(b, off, k, num);
      }
    } else {
      const n = Number(kind.slice(1));
      const src = (x ?? Buffer.alloc(0)) as Uint8Array;
      if (src.length > n) throw new FormatError(structure, `${name} is ${src.length} bytes, at most ${n} fit`);
      b.fill(0, off, off + n);
      b.set(src, off);
    }
  }
}

function checkFits(structure: string, name: string, v: number, bits: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= 2 ** bits || v > Number.MAX_SAFE_INTEGER) {
    throw new FormatError(structure, `${name} = ${String(v)} does not fit in ${bits} bits`);
  }
}

/** A NUL-padded byte field as a string (labels, last-mounted path). */
export function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return Buffer.from(b.subarray(0, end < 0 ? b.length : end)).toString('utf8');
}

/** A string as a NUL-padded byte field of `n` bytes; throws if it does not fit. */
export function toCString(s: string, n: number, structure: string, field: string): Buffer {
  const src = Buffer.from(s, 'utf8');
  if (src.length > n) throw new FormatError(structure, `${field} "${s}" is ${src.length} bytes, at most ${n} fit`);
  const out = Buffer.alloc(n);
  src.copy(out);
  return out;
}
