import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { createReadStream } from 'node:fs';
import * as tar from 'tar-stream';
import { InputError } from '@diskimg/partitions';
import { normalizeEntryPath, type TreeEntry, type EntryType } from './tree.js';

const typeMap: Record<string, EntryType | undefined> = {
  file: 'file',
  'contiguous-file': 'file',
  directory: 'directory',
  symlink: 'symlink',
  link: 'hardlink',
  'character-device': 'char',
  'block-device': 'block',
  fifo: 'fifo',
};

/** Peek the first bytes; gunzip when they are gzip's magic (1f 8b). */
async function* maybeGunzip(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const rest = (async function* () {
    yield first.value;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  })();
  if (first.value.length >= 2 && first.value[0] === 0x1f && first.value[1] === 0x8b) {
    yield* Readable.from(rest).pipe(createGunzip());
  } else {
    yield* rest;
  }
}

/**
 * Stream a tar archive (plain or gzip) as TreeEntry values. `inputName` names
 * the input in error messages. Each file body must be consumed before asking
 * for the next entry (tar-stream's own back-pressure guarantees flat memory).
 */
export async function* readTarTree(input: Readable | AsyncIterable<Buffer>, inputName: string): AsyncGenerator<TreeEntry> {
  const extract = tar.extract();
  const source = Readable.from(maybeGunzip(input as AsyncIterable<Buffer>));
  source.on('error', (e) => extract.destroy(e));
  source.pipe(extract);
  let count = 0;
  try {
    for await (const entry of extract) {
      count++;
      const h = entry.header;
      const type = typeMap[h.type ?? 'file'];
      if (!type) {
        // pax headers are consumed by tar-stream; anything else unknown is skipped, not guessed at.
        entry.resume();
        continue;
      }
      const path = normalizeEntryPath(h.name, inputName);
      const e: TreeEntry = {
        path,
        type,
        mode: (h.mode ?? (type === 'directory' ? 0o755 : 0o644)) & 0o7777,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        mtime: h.mtime ? h.mtime.getTime() / 1000 : 0,
        size: type === 'file' ? (h.size ?? 0) : 0,
      };
      const pax = h.pax as Record<string, string> | undefined;
      if (pax?.atime) e.atime = Number(pax.atime);
      if (pax?.ctime) e.ctime = Number(pax.ctime);
      if (type === 'symlink') e.linkname = h.linkname ?? '';
      if (type === 'hardlink') e.linkname = normalizeEntryPath(h.linkname ?? '', inputName);
      if (type === 'char' || type === 'block') {
        e.devmajor = h.devmajor ?? 0;
        e.devminor = h.devminor ?? 0;
      }
      if (type === 'file') {
        e.body = guardBody(entry as AsyncIterable<Buffer>, inputName);
        yield e;
        entry.resume(); // drain whatever the consumer left unread
      } else {
        entry.resume();
        yield e;
      }
    }
  } catch (err) {
    throw tarError(err, inputName);
  }
  if (count === 0) throw new InputError(`${inputName}: empty archive (no tar entries)`);
}

/** Map stream errors (from the archive or inside a file body) to one-line InputErrors. */
function tarError(err: unknown, inputName: string): Error {
  if (err instanceof InputError) return err;
  const msg = (err as Error).message;
  if (/unexpected end|premature|truncat|invalid tar header|incorrect header check|unexpected eof/i.test(msg)) {
    return new InputError(`${inputName}: truncated or corrupt tar stream (${msg}); check the download or re-create the archive`);
  }
  return new InputError(`${inputName}: cannot read tar: ${msg}`);
}

async function* guardBody(body: AsyncIterable<Buffer>, inputName: string): AsyncGenerator<Buffer> {
  try {
    yield* body;
  } catch (err) {
    throw tarError(err, inputName);
  }
}

/** Open a tar file by path (use "-" for standard input). */
export function openTarFile(path: string): AsyncGenerator<TreeEntry> {
  const stream = path === '-' ? process.stdin : createReadStream(path, { highWaterMark: 1 << 20 });
  stream.on('error', () => {}); // surfaced through the iterator
  return readTarTree(stream, path === '-' ? 'standard input' : path);
}
