/**
 * Hostile tarballs, written header by header (tar-stream refuses to write malformed ones):
 * sparse entries declaring huge sizes, absurd pax paths, NUL in link targets, case-variant
 * duplicates, base-256 negatives, oversized metadata records. Every archive also holds a valid
 * `kernel` and `initramfs` first, so a refusal is due to the hostile entry, not to a missing file.
 */

const BLOCK = 512;

export interface HeaderFields {
  name: string | Buffer;
  type?: string; // typeflag, default '0'
  size?: number;
  /** Raw 12-byte size field (base-256 tricks); overrides `size`. */
  sizeField?: Buffer;
  mode?: number;
  linkname?: string | Buffer;
  /** 'ustar' (POSIX, default) or 'gnu' ("ustar  \0"). */
  magic?: 'ustar' | 'gnu';
  prefix?: string;
}

function octal(n: number, width: number): Buffer {
  const b = Buffer.alloc(width);
  b.write(n.toString(8).padStart(width - 1, '0'), 0, 'latin1');
  return b;
}

/** One 512-byte header with a correct checksum. */
export function header(f: HeaderFields): Buffer {
  const h = Buffer.alloc(BLOCK);
  Buffer.from(f.name).copy(h, 0, 0, 100);
  octal(f.mode ?? 0o644, 8).copy(h, 100);
  octal(0, 8).copy(h, 108);
  octal(0, 8).copy(h, 116);
  (f.sizeField ?? octal(f.size ?? 0, 12)).copy(h, 124);
  octal(1764374400, 12).copy(h, 136);
  h.write(f.type ?? '0', 156, 'latin1');
  if (f.linkname !== undefined) Buffer.from(f.linkname).copy(h, 157, 0, 100);
  if (f.magic === 'gnu') h.write('ustar  \0', 257, 'latin1');
  else h.write('ustar\x0000', 257, 'latin1');
  if (f.prefix) h.write(f.prefix, 345, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

function padded(data: Buffer): Buffer {
  const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return Buffer.concat([data, Buffer.alloc(pad)]);
}

/** A pax record "LEN key=value\n" (LEN counts itself). */
export function paxRecord(key: string, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** A pax extended header (type x, or g for global) carrying `records`. */
export function pax(records: Array<[string, string | Buffer]>, type: 'x' | 'g' = 'x'): Buffer {
  const data = Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
  return Buffer.concat([header({ name: 'PaxHeaders/x', type, size: data.length }), padded(data)]);
}

/** A regular file entry with its data. */
export function file(name: string | Buffer, data: string | Buffer, more: Partial<HeaderFields> = {}): Buffer {
  const d = Buffer.from(data);
  return Buffer.concat([header({ name, size: d.length, ...more }), padded(d)]);
}

export function dir(name: string): Buffer {
  return header({ name, type: '5', mode: 0o755 });
}

export function symlink(name: string, target: string | Buffer): Buffer {
  return header({ name, type: '2', linkname: target, mode: 0o777 });
}

/** The two files every OS payload needs, so only the hostile part can be refused. */
export const BOOT_FILES = Buffer.concat([file('kernel', 'kernel\n'), file('initramfs', 'initramfs\n'), dir('EFI/'), dir('EFI/BOOT/'), file('EFI/BOOT/BOOTX64.EFI', 'efi\n')]);

/** The archive: the parts, then the two zero blocks. */
export function tar(...parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, Buffer.alloc(2 * BLOCK)]);
}

/**
 * A GNU sparse file, pax format 1.0 (GNU tar --sparse): the map "count\n(offset\nlength\n)*"
 * padded to 512 bytes at the start of the stored data, then the data regions.
 */
export function sparse10(name: string, realSize: number | string, regions: Array<[number, number]>): Buffer {
  const map = Buffer.from(`${regions.length}\n${regions.map(([o, l]) => `${o}\n${l}\n`).join('')}`);
  const data = Buffer.alloc(regions.reduce((a, [, l]) => a + l, 0), 0x61);
  const stored = Buffer.concat([padded(map), data]);
  return Buffer.concat([
    pax([
      ['GNU.sparse.major', '1'],
      ['GNU.sparse.minor', '0'],
      ['GNU.sparse.name', name],
      ['GNU.sparse.realsize', String(realSize)],
    ]),
    header({ name: `GNUSparseFile.0/${name}`, size: stored.length }),
    padded(stored),
  ]);
}

/** A GNU sparse file, pax format 0.1: the map in GNU.sparse.map. */
export function sparse01(name: string, realSize: number | string, map: string, data: Buffer): Buffer {
  return Buffer.concat([
    pax([
      ['GNU.sparse.major', '0'],
      ['GNU.sparse.minor', '1'],
      ['GNU.sparse.name', name],
      ['GNU.sparse.size', String(realSize)],
      ['GNU.sparse.map', map],
    ]),
    header({ name: `GNUSparseFile.0/${name}`, size: data.length }),
    padded(data),
  ]);
}

/** A base-256 12-byte numeric field holding `v` (negative: two's complement, first byte 0xff). */
export function base256(v: bigint, width = 12): Buffer {
  const b = Buffer.alloc(width);
  let x = v < 0n ? (1n << BigInt(8 * width)) + v : v;
  for (let i = width - 1; i >= 0; i--) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  if (v >= 0n) b[0] = b[0]! | 0x80;
  return b;
}

/** The named hostile archives: each must be refused with one line, quickly, in bounded memory. */
export function hostileTars(): Record<string, Buffer> {
  const deep = Array.from({ length: 20_000 }, () => 'a').join('/') + '/f';
  return {
    // 26.1: sparse entries declaring 1 TiB and 2^53-1 bytes (after the slot overflows, nothing may expand them)
    'sparse-huge': tar(BOOT_FILES, sparse10('big1', 2 ** 40, [[0, 512]]), sparse10('big2', Number.MAX_SAFE_INTEGER, [[2 ** 40, 512]]), sparse01('big3', 2 ** 40, `0,512,${2 ** 39},512`, Buffer.alloc(1024, 0x62))),
    // 1 GiB of holes each (fits a slot's size check when holes are not counted as data): never expanded
    'sparse-holes': tar(BOOT_FILES, ...Array.from({ length: 40 }, (_, i) => sparse10(`hole${i}`, 2 ** 30, [[2 ** 30 - 512, 512]]))),
    // a sparse map declaring 2^53-1 regions
    'sparse-count': tar(BOOT_FILES, Buffer.concat([pax([['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0'], ['GNU.sparse.name', 'c'], ['GNU.sparse.realsize', '1024']]), header({ name: 'c', size: 512 }), padded(Buffer.from(`${Number.MAX_SAFE_INTEGER}\n0\n1\n`))])),
    // 26.2: a pax path of 20,000 components
    'deep-path': tar(BOOT_FILES, pax([['path', deep]]), file('ignored', 'x')),
    // 26.11: a symlink target with NUL
    'symlink-nul': tar(BOOT_FILES, pax([['linkpath', Buffer.from('target\0evil')]]), symlink('link', 'x')),
    // 26.11: two case variants of one FAT path
    'case-variants': tar(BOOT_FILES, dir('efi/'), dir('efi/boot/'), file('efi/boot/bootx64.efi', 'evil efi\n')),
    // a file and a directory at one path
    'file-dir': tar(BOOT_FILES, file('etc', 'x'), file('etc/passwd', 'root\n')),
    // a negative base-256 size
    'negative-size': tar(BOOT_FILES, header({ name: 'neg', sizeField: base256(-5n) })),
    // a pax header declaring 1 GiB (only its header is there)
    'pax-huge': tar(BOOT_FILES, header({ name: 'PaxHeaders/x', type: 'x', size: 2 ** 30 })),
    // a GNU long name declaring 2^53-1 bytes, in base-256
    'longname-huge': tar(BOOT_FILES, header({ name: '././@LongLink', type: 'L', sizeField: base256(BigInt(Number.MAX_SAFE_INTEGER)), magic: 'gnu' })),
    // a symlink target longer than any path
    'symlink-long': tar(BOOT_FILES, pax([['linkpath', 'x'.repeat(5000)]]), symlink('link', 'x')),
  };
}
