/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8.
 * Node has no crc32c; ext4 and jbd2 checksum everything with it.
 *
 * ext4 uses the *raw* form: no pre- or post-inversion inside the function;
 * the caller passes the running value (ext4 starts from ~0 = 0xFFFFFFFF and
 * never inverts at the end). `crc32cRaw` is that form; `crc32c` is the
 * standard one (init ~0, final xor ~0) for test vectors.
 */
const T = new Uint32Array(8 * 256);
(() => {
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    T[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = T[n]!;
    for (let s = 1; s < 8; s++) {
      c = T[c & 0xff]! ^ (c >>> 8);
      T[s * 256 + n] = c >>> 0;
    }
  }
})();

/** Raw CRC-32C update of `crc` over `data[start, end)` (ext4's crc32c_le / ext2fs_crc32c_le). */
export function crc32cRaw(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = crc >>> 0;
  let i = start;
  // Bytes until 8 remain are handled 8 at a time with the 8 tables.
  const end8 = end - ((end - i) & 7);
  while (i < end8) {
    const lo = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c =
      T[7 * 256 + (lo & 0xff)]! ^
      T[6 * 256 + ((lo >>> 8) & 0xff)]! ^
      T[5 * 256 + ((lo >>> 16) & 0xff)]! ^
      T[4 * 256 + (lo >>> 24)]! ^
      T[3 * 256 + data[i + 4]!]! ^
      T[2 * 256 + data[i + 5]!]! ^
      T[1 * 256 + data[i + 6]!]! ^
      T[data[i + 7]!]!;
    i += 8;
  }
  while (i < end) c = T[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

/** Standard CRC-32C of `data` (e.g. crc32c("123456789") = 0xE3069283). */
export function crc32c(data: Uint8Array): number {
  return (crc32cRaw(0xffffffff, data) ^ 0xffffffff) >>> 0;
}

/** Raw CRC-32C over a little-endian u32 (ext4 mixes inode numbers, groups, generations in this way). */
export function crc32cU32(crc: number, value: number): number {
  const b = new Uint8Array(4);
  b[0] = value & 0xff;
  b[1] = (value >>> 8) & 0xff;
  b[2] = (value >>> 16) & 0xff;
  b[3] = (value >>> 24) & 0xff;
  return crc32cRaw(crc, b);
}
