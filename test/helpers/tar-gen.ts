/**
 * A small tar writer for hostile-input tests: ustar headers, a pax `path` record when the path
 * does not fit, and file bodies given as bytes or as a count of zero bytes (streamed, so a test can
 * declare a 1 GiB file and gzip it without holding it). Optionally gzip-compressed (level 1).
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';
import type { Writable } from 'node:stream';

export interface GenEntry {
  path: string;
  /** Body bytes; or `zeros` bytes of zeros. */
  data?: Buffer;
  zeros?: number;
  type?: 'file' | 'directory';
}

function header(name: string, size: number, flag: string): Buffer {
  const h = Buffer.alloc(512);
  const put = (s: string, off: number, len: number) => h.write(s.slice(0, len), off, len, 'latin1');
  const oct = (n: number, len: number) => n.toString(8).padStart(len - 1, '0');
  put(name, 0, 100);
  put(`${oct(flag === '5' ? 0o755 : 0o644, 8)}\0`, 100, 8);
  put(`${oct(0, 8)}\0`, 108, 8);
  put(`${oct(0, 8)}\0`, 116, 8);
  put(`${oct(size, 12)}\0`, 124, 12);
  put(`${oct(1764374400, 12)}\0`, 136, 12);
  put('        ', 148, 8);
  put(flag, 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return h;
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (`${len}${body}`.length !== len) len = Buffer.byteLength(`${len}${body}`);
  return Buffer.from(`${len}${body}`, 'utf8');
}

const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

/** Write `entries` as a tar stream to `out`, awaiting back-pressure. */
export async function writeTar(out: Writable, entries: Iterable<GenEntry>): Promise<void> {
  const put = async (b: Buffer) => {
    if (!out.write(b)) await once(out, 'drain');
  };
  for (const e of entries) {
    const dir = e.type === 'directory';
    const size = dir ? 0 : (e.data?.length ?? e.zeros ?? 0);
    const name = dir && !e.path.endsWith('/') ? `${e.path}/` : e.path;
    if (Buffer.byteLength(name) > 100) {
      const rec = paxRecord('path', name);
      await put(header('PaxHeader', rec.length, 'x'));
      await put(rec);
      await put(pad(rec.length));
    }
    await put(header(Buffer.byteLength(name) > 100 ? name.slice(-90) : name, size, dir ? '5' : '0'));
    if (e.data) await put(e.data);
    else if (e.zeros) {
      const z = Buffer.alloc(1 << 20);
      for (let left = e.zeros; left > 0; left -= z.length) await put(left >= z.length ? z : z.subarray(0, left));
    }
    await put(pad(size));
  }
  await put(Buffer.alloc(1024));
}

/** `entries` as a tar file (gzip level 1 when `gzip`). */
export async function makeTar(file: string, entries: Iterable<GenEntry>, opts: { gzip?: boolean } = {}): Promise<string> {
  const fileOut = createWriteStream(file);
  const done = once(fileOut, 'close');
  if (opts.gzip) {
    const gz = createGzip({ level: 1 });
    gz.pipe(fileOut);
    await writeTar(gz, entries);
    gz.end();
  } else {
    await writeTar(fileOut, entries);
    fileOut.end();
  }
  await done;
  return file;
}
