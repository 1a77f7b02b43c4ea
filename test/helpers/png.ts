/**
 * A small PNG decoder for screenshots (Chromium's --screenshot): 8-bit RGB or
 * RGBA, not interlaced. Chunks are walked by length, the IDAT data
 * concatenated and inflated (node:zlib), then each scanline unfiltered
 * (PNG spec §9: None, Sub, Up, Average, Paeth). Enough to count pixels of a colour.
 */
import { inflateSync } from 'node:zlib';

export interface Png {
  width: number;
  height: number;
  /** RGBA, 4 bytes per pixel, row by row. */
  rgba: Buffer;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function decodePng(file: Buffer): Png {
  if (!file.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG (signature)');
  let off = 8;
  let width = 0;
  let height = 0;
  let colourType = -1;
  const idat: Buffer[] = [];
  while (off + 8 <= file.length) {
    const len = file.readUInt32BE(off);
    const type = file.toString('latin1', off + 4, off + 8);
    const data = file.subarray(off + 8, off + 8 + len);
    off += 12 + len; // length, type, data, CRC
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8]!;
      colourType = data[9]!;
      const interlace = data[12]!;
      if (depth !== 8 || (colourType !== 2 && colourType !== 6) || interlace !== 0) {
        throw new Error(`PNG: bit depth ${depth}, colour type ${colourType}, interlace ${interlace}: only 8-bit RGB/RGBA, not interlaced`);
      }
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
  }
  if (!width || !idat.length) throw new Error('PNG: no IHDR or IDAT');
  const bpp = colourType === 6 ? 4 : 3;
  const stride = width * bpp;
  const raw = inflateSync(Buffer.concat(idat));
  if (raw.length < height * (stride + 1)) throw new Error(`PNG: ${raw.length} bytes of image data, expected ${height * (stride + 1)}`);
  const cur = Buffer.alloc(stride);
  let prev = Buffer.alloc(stride);
  const rgba = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    const base = y * (stride + 1);
    const filter = raw[base]!;
    for (let i = 0; i < stride; i++) {
      const x = raw[base + 1 + i]!;
      const a = i >= bpp ? cur[i - bpp]! : 0;
      const b = prev[i]!;
      const c = i >= bpp ? prev[i - bpp]! : 0;
      let v: number;
      switch (filter) {
        case 0: v = x; break;
        case 1: v = x + a; break;
        case 2: v = x + b; break;
        case 3: v = x + ((a + b) >> 1); break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          v = x + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default:
          throw new Error(`PNG: row ${y} has filter type ${filter}`);
      }
      cur[i] = v & 0xff;
    }
    for (let px = 0; px < width; px++) {
      const o = (y * width + px) * 4;
      rgba[o] = cur[px * bpp]!;
      rgba[o + 1] = cur[px * bpp + 1]!;
      rgba[o + 2] = cur[px * bpp + 2]!;
      rgba[o + 3] = bpp === 4 ? cur[px * bpp + 3]! : 255;
    }
    prev = Buffer.from(cur);
  }
  return { width, height, rgba };
}

/** How many pixels are within `tolerance` (per channel) of the colour "#rrggbb". */
export function countColour(png: Png, hex: string, tolerance = 8): number {
  const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  let n = 0;
  for (let o = 0; o < png.rgba.length; o += 4) {
    if (Math.abs(png.rgba[o]! - want[0]!) <= tolerance && Math.abs(png.rgba[o + 1]! - want[1]!) <= tolerance && Math.abs(png.rgba[o + 2]! - want[2]!) <= tolerance) n++;
  }
  return n;
}
