/**
 * Block decompressors by SquashFS compression id. Every one is told the most
 * it may produce (a metadata block 8 KiB, a data block block_size) and turns
 * any failure, including a would-be overrun, into a FormatError, never a
 * RangeError or a huge allocation.
 */
/// <reference path="../compress/lz4js.d.ts" />
// (lz4js ships no types; the reference lets any compile that reaches this file, e.g. README examples, see them)
import { inflateSync } from 'node:zlib';
import { FormatError, UnsupportedFormatError } from '@diskimg/partitions/internal';
import { Decompress as ZstdStream } from 'fzstd';
import lz4 from 'lz4js';
import { xzDecompress } from '../compress/xz.js';
import type { Compression } from './superblock.js';

export type Decompressor = (input: Buffer, maxOutput: number, where: string) => Buffer;

function wrap(name: string, f: (input: Buffer, max: number) => Uint8Array): Decompressor {
  return (input, max, where) => {
    let out: Uint8Array;
    try {
      out = f(input, max);
    } catch (e) {
      if (e instanceof FormatError) throw new (e instanceof UnsupportedFormatError ? UnsupportedFormatError : FormatError)(where, e.message);
      throw new FormatError(where, `${name} data is corrupt (${(e as Error).message ?? e})`);
    }
    if (out.length > max) throw new FormatError(where, `${name} block expands past ${max} bytes`);
    return Buffer.from(out.buffer, out.byteOffset, out.length);
  };
}

const gzip = wrap('gzip', (input, max) => inflateSync(input, { maxOutputLength: max }));

/**
 * Frame_Content_Size of a zstd frame header (RFC 8878 3.1.1.1), so a frame
 * that claims more than a block is refused before fzstd allocates for it.
 * mksquashfs and gensquashfs always write it.
 */
function zstdContentSize(b: Buffer): number {
  if (b.length < 6 || b.readUInt32LE(0) !== 0xfd2fb528) throw new Error('no zstd frame magic');
  const fhd = b[4]!;
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const at = 5 + (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]!;
  const size = [single ? 1 : 0, 2, 4, 8][fcsFlag]!;
  if (size === 0) throw new Error('frame without a content size');
  if (b.length < at + size) throw new Error('truncated frame header');
  if (size === 1) return b[at]!;
  if (size === 2) return b.readUInt16LE(at) + 256;
  if (size === 4) return b.readUInt32LE(at);
  return Number(b.readBigUInt64LE(at));
}

const zstd = wrap('zstd', (input, max) => {
  const n = zstdContentSize(input);
  if (n > max) throw new Error(`frame content size ${n} exceeds ${max}`);
  // Streamed, counting: further frames after the first cannot grow the output past the cap either.
  const parts: Uint8Array[] = [];
  let total = 0;
  const z = new ZstdStream((chunk) => {
    total += chunk.length;
    if (total > max) throw new Error(`expands past ${max} bytes`);
    parts.push(chunk.slice());
  });
  z.push(input, true);
  if (total !== n) throw new Error(`${total} bytes, the frame says ${n}`);
  return Buffer.concat(parts, total);
});

const lz4Block = wrap('lz4', (input, max) => {
  // SquashFS stores raw LZ4 blocks (no frame). lz4js does not bound its writes:
  // decode into a slack buffer and refuse anything that reached the slack.
  const dst = new Uint8Array(max + 1);
  const n = (lz4 as { decompressBlock(s: Uint8Array, d: Uint8Array, si: number, sl: number, di: number): number }).decompressBlock(input, dst, 0, input.length, 0);
  if (!Number.isInteger(n) || n < 0) throw new Error('bad block');
  if (n > max) throw new Error(`expands past ${max} bytes`);
  return dst.subarray(0, n);
});

const xz = wrap('xz', (input, max) => xzDecompress(input, max));

export function decompressorFor(c: Compression): Decompressor {
  switch (c) {
    case 'gzip': return gzip;
    case 'zstd': return zstd;
    case 'lz4': return lz4Block;
    case 'xz': return xz;
    default:
      return (_i, _m, where) => {
        throw new UnsupportedFormatError(where, `unsupported compression ${c} (diskimg reads gzip, xz, zstd and lz4 SquashFS images; rebuild with mksquashfs -comp xz)`);
      };
  }
}
