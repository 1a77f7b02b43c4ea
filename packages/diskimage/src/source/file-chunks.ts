import { open, type FileHandle } from 'node:fs/promises';

/**
 * Read a file as a stream of chunks from a fixed ring of reused buffers, with
 * one read ahead in flight: no fresh Buffer per read (what
 * `createReadStream` allocates, and most of the GC of `create` and `update`).
 *
 * Ownership rule (who may hold a chunk until when): chunk k lives in ring
 * buffer k mod `buffers`; the read of chunk k + `buffers` into that buffer
 * starts when chunk k + `buffers` - 1 is yielded. So a chunk (and every
 * subarray of it) stays valid while at most `buffers` - 2 later chunks have
 * been yielded, and no longer. Whoever holds a chunk past that must copy it.
 *
 * The holders in our pipelines, at most, for the OS tarball in `create`:
 * the tar reader's current and leftover buffer (2) + the read ahead (1) +
 * the tee's window (`teeTree` maxAhead, 4 items, each within one chunk) +
 * two ext4 WriteBehinds with MAX_INFLIGHT (3) direct writes each that no
 * longer sit in the tee window (6) = 13; `update` (one writer, no tee,
 * hashing synchronously) holds fewer. DEFAULT_BUFFERS leaves a margin over
 * that; a consumer that holds more must copy. Small pieces (pax records, names,
 * partial blocks, FAT stages, WriteBehind's gathered writes) are copied
 * already.
 *
 * Tests set `poisonReleased` (or DISKIMG_POOL_POISON=1): a buffer is filled
 * with POISON_BYTE and the event loop turns once before it is reused, so a
 * write still reading a recycled chunk puts poison on disk, where the
 * content checks find it.
 */
// The rule counts chunks, not bytes: 16 × 512 KiB holds as many as 16 × 1 MiB did, in 8 MiB
// instead of 16 (many-file create peak RSS -8 MiB). 256 KiB saved 4 MiB more but cost ~10 % CPU
// on create's big files (bench/README.md, issue 14).
export const DEFAULT_CHUNK = 512 * 1024;
export const DEFAULT_BUFFERS = 16;
export const POISON_BYTE = 0xdb;

export const chunkPoolDebug = { poisonReleased: process.env.DISKIMG_POOL_POISON === '1' };

export interface FileChunksOptions {
  chunkSize?: number;
  /** Ring size; at least 2. */
  buffers?: number;
}

/** Chunks of the file at `path` (or an open handle, closed at the end), in order; see the ownership rule above. */
export async function* readFileChunks(src: string | FileHandle, opts: FileChunksOptions = {}): AsyncGenerator<Buffer> {
  const size = opts.chunkSize ?? DEFAULT_CHUNK;
  const n = opts.buffers ?? DEFAULT_BUFFERS;
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`readFileChunks: buffers must be an integer ≥ 2, not ${n}`);
  const fh = typeof src === 'string' ? await open(src, 'r') : src;
  const ring: Buffer[] = [];
  let k = 0;
  const readInto = async (i: number): Promise<Buffer> => {
    let b = ring[i];
    if (!b) b = ring[i] = Buffer.allocUnsafeSlow(size);
    else if (chunkPoolDebug.poisonReleased) {
      b.fill(POISON_BYTE);
      await new Promise<void>((r) => setImmediate(r));
    }
    let got = 0;
    // Fill the whole buffer (short reads happen on pipes and some filesystems), so chunks keep their size.
    while (got < size) {
      const { bytesRead } = await fh.read(b, got, size - got, null);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return b.subarray(0, got);
  };
  let ahead: Promise<Buffer> | undefined;
  try {
    ahead = readInto(k % n);
    for (;;) {
      const c = await ahead;
      ahead = undefined;
      if (c.length === 0) return;
      k++;
      ahead = readInto(k % n);
      ahead.catch(() => {}); // surfaced at the next await
      yield c;
    }
  } finally {
    await ahead?.catch(() => {});
    await fh.close();
  }
}
