/**
 * .xz decoding (xz/LZMA2 with every BCJ filter and delta; checks none, CRC32, CRC64, SHA-256)
 * through liblzma's decoder built to a standalone wasm with no imports (xz-shim.c, built by
 * scripts/build-xz-wasm.sh from Debian's xz-utils source with Debian's emscripten; the bytes are
 * embedded in xz-wasm.generated.ts so the one-file bundle carries them).
 *
 * Synchronous: the module is compiled on first use and instantiated synchronously. Input is fed
 * and output taken in ≤ 1 MiB pieces, so wasm memory stays near the decoder's dictionary size; an
 * instance whose memory grew past INSTANCE_KEEP_BYTES (a big-dictionary stream) is dropped after
 * use, because wasm memory never shrinks.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { FormatError, InputError, UnsupportedFormatError } from '@diskimg/partitions/internal';
import { XZ_WASM_BASE64 } from './xz-wasm.generated.js';

/**
 * Decoder memory cap (liblzma's memlimit). 96 MiB admits every xz preset (-9/-9e use a 64 MiB
 * dictionary, ~65 MiB to decode); SquashFS xz blocks use a dictionary of at most the block size (≤ 1 MiB).
 */
export const XZ_MEMLIMIT = 96 << 20;
/** Input and output pieces crossing into wasm memory. */
const CHUNK = 1 << 20;
/** Keep the instance for the next call only while its memory is at most this big. */
const INSTANCE_KEEP_BYTES = 32 << 20;

// lzma_ret values (liblzma's base.h)
const LZMA_OK = 0;
const LZMA_STREAM_END = 1;
const LZMA_UNSUPPORTED_CHECK = 3;
const LZMA_MEM_ERROR = 5;
const LZMA_MEMLIMIT_ERROR = 6;
const LZMA_FORMAT_ERROR = 7;
const LZMA_OPTIONS_ERROR = 8;
const LZMA_DATA_ERROR = 9;
const LZMA_BUF_ERROR = 10;

/** The slice of the WebAssembly JS API we use (the project's TypeScript libs do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface Exports {
  memory: { buffer: ArrayBuffer };
  _initialize(): void;
  xzd_new(memlimit: number): number;
  xzd_code(s: number, inPtr: number, inLen: number, outPtr: number, outLen: number, finish: number): number;
  xzd_avail_in(s: number): number;
  xzd_avail_out(s: number): number;
  xzd_end(s: number): void;
  xzd_malloc(n: number): number;
  xzd_free(p: number): void;
}

interface Wasm {
  x: Exports;
  inBuf: number;
  outBuf: number;
  /** Decoders alive in this instance (the instance is dropped only when none are). */
  live: number;
}

let module: object | undefined;
let current: Wasm | undefined;

function wasm(): Wasm {
  if (current) return current;
  module ??= new WA.Module(Buffer.from(XZ_WASM_BASE64, 'base64'));
  const x = new WA.Instance(module, {}).exports as Exports;
  x._initialize();
  const inBuf = x.xzd_malloc(CHUNK);
  const outBuf = x.xzd_malloc(CHUNK);
  if (!inBuf || !outBuf) throw new Error('xz: cannot allocate the decoder buffers in wasm memory');
  current = { x, inBuf, outBuf, live: 0 };
  return current;
}

function release(w: Wasm): void {
  w.live--;
  if (w.live === 0 && current === w && w.x.memory.buffer.byteLength > INSTANCE_KEEP_BYTES) current = undefined;
}

/** A typed error for an lzma_ret that is neither LZMA_OK nor LZMA_STREAM_END. */
function lzmaError(ret: number, what: string): Error {
  switch (ret) {
    case LZMA_UNSUPPORTED_CHECK:
      return new UnsupportedFormatError(what, 'uses an integrity check type this decoder does not know (it reads none, CRC32, CRC64 and SHA-256)');
    case LZMA_MEM_ERROR:
    case LZMA_MEMLIMIT_ERROR:
      return new UnsupportedFormatError(what, `needs more than ${XZ_MEMLIMIT >> 20} MiB of decoder memory (dictionary too large); decompress it with the xz tool`);
    case LZMA_FORMAT_ERROR:
      return new FormatError(what, 'not an .xz stream (no xz stream header magic)');
    case LZMA_OPTIONS_ERROR:
      return new UnsupportedFormatError(what, 'uses a filter or filter option this decoder does not support (it reads LZMA2, delta and the x86, PowerPC, IA-64, ARM, ARM-Thumb, ARM64 and SPARC BCJ filters)');
    case LZMA_DATA_ERROR:
      return new FormatError(what, 'corrupt data (a header, a check or the compressed data does not match); the file is damaged');
    case LZMA_BUF_ERROR:
      return new FormatError(what, 'truncated (the input ends inside the stream); the file is incomplete');
    default:
      return new Error(`${what}: liblzma returned unexpected code ${ret} (a bug in the xz decoder)`);
  }
}

/**
 * One liblzma decoder in the wasm instance. `feed` runs the decoder over `input` (finish: no more
 * input follows) and hands each output piece to `sink` (a view of wasm memory, valid only during
 * the call); returns true at the end of the (last concatenated) stream.
 */
class Decoder {
  readonly #w: Wasm;
  #s: number;
  #done = false;

  constructor(readonly what: string) {
    this.#w = wasm();
    this.#s = this.#w.x.xzd_new(XZ_MEMLIMIT);
    if (!this.#s) throw lzmaError(LZMA_MEM_ERROR, what);
    this.#w.live++;
  }

  feed(input: Uint8Array, finish: boolean, outCap: number, sink: (piece: Uint8Array) => void): boolean {
    if (this.#done) {
      if (input.length) throw new FormatError(this.what, 'data after the end of the .xz stream');
      return true;
    }
    const { x, inBuf, outBuf } = this.#w;
    const cap = Math.max(1, Math.min(CHUNK, outCap));
    if (!input.length && !finish) return false;
    let off = 0;
    let idle = 0;
    for (;;) {
      const n = Math.min(CHUNK, input.length - off);
      new Uint8Array(x.memory.buffer, inBuf, n).set(input.subarray(off, off + n));
      const last = off + n === input.length;
      let inPos = 0;
      // drain this input piece
      for (;;) {
        const ret = x.xzd_code(this.#s, inBuf + inPos, n - inPos, outBuf, cap, finish && last ? 1 : 0);
        const used = n - inPos - x.xzd_avail_in(this.#s);
        const made = cap - x.xzd_avail_out(this.#s);
        inPos += used;
        if (made) sink(new Uint8Array(x.memory.buffer, outBuf, made));
        if (ret === LZMA_STREAM_END) {
          this.#done = true;
          if (inPos < n || !last) throw new FormatError(this.what, 'data after the end of the .xz stream');
          return true;
        }
        if (ret !== LZMA_OK) throw lzmaError(ret, this.what);
        if (used === 0 && made === 0) {
          // liblzma answers LZMA_BUF_ERROR on the second call without progress; this is a backstop
          if (++idle > 2) throw lzmaError(LZMA_BUF_ERROR, this.what);
        } else idle = 0;
        // more output may be pending while the output piece came back full; at the end of the
        // input, LZMA_FINISH calls go on until LZMA_STREAM_END or an error
        if (made === cap) continue;
        if (inPos === n && !(finish && last)) break;
      }
      off += n;
      if (last) return false;
    }
  }

  end(): void {
    if (!this.#s) return;
    this.#w.x.xzd_end(this.#s);
    this.#s = 0;
    release(this.#w);
  }
}

/** Rejects a maxOutput that is not a count of bytes. */
function checkMax(maxOutput: number): void {
  if (!Number.isSafeInteger(maxOutput) || maxOutput < 0) throw new InputError(`xz: the output limit must be a non-negative integer number of bytes, not ${maxOutput}`);
}

/**
 * The decoded size a single-stream .xz says it has (the sum of its Index records), or undefined
 * when the input is not laid out as exactly one stream. Only a hint to size the result in one
 * allocation (fresh pages cost more than decoding them here); liblzma checks the Index against the
 * blocks, so a lying Index still ends in a FormatError.
 */
function indexedSize(b: Uint8Array): number | undefined {
  const end = b.length;
  if (end < 32 || b[end - 2] !== 0x59 || b[end - 1] !== 0x5a) return undefined; // footer magic "YZ"
  const backwardSize = ((b[end - 8]! | (b[end - 7]! << 8) | (b[end - 6]! << 16)) + b[end - 5]! * 2 ** 24 + 1) * 4;
  let p = end - 12 - backwardSize;
  if (p < 12 || b[p] !== 0x00) return undefined; // Index Indicator
  p++;
  const vli = (): number | undefined => {
    let v = 0;
    for (let i = 0; i < 9 && p < end; i++) {
      const c = b[p++]!;
      v += (c & 0x7f) * 2 ** (7 * i);
      if (!(c & 0x80)) return v;
    }
    return undefined;
  };
  const count = vli();
  if (count === undefined || count > backwardSize) return undefined;
  let blocks = 0;
  let size = 0;
  for (let i = 0; i < count; i++) {
    const unpadded = vli();
    const uncompressed = vli();
    if (unpadded === undefined || uncompressed === undefined) return undefined;
    blocks += Math.ceil(unpadded / 4) * 4;
    size += uncompressed;
  }
  // one stream from byte 0: header, blocks, Index, footer
  return 12 + blocks + backwardSize + 12 === end && Number.isSafeInteger(size) ? size : undefined;
}

/**
 * Decodes one complete .xz stream (as in a SquashFS xz block; concatenated streams and stream
 * padding are accepted, as `xz -d` does). Throws UnsupportedFormatError for an unsupported filter,
 * check type or a dictionary over XZ_MEMLIMIT, FormatError for damaged, truncated or trailing data,
 * and FormatError rather than return more than maxOutput bytes.
 */
export function xzDecompress(input: Uint8Array, maxOutput: number): Uint8Array {
  checkMax(maxOutput);
  const what = 'xz stream';
  const hint = indexedSize(input);
  // the result in one piece when the Index gives its size, else collected in pieces
  let whole = hint !== undefined && hint <= maxOutput ? new Uint8Array(hint) : undefined;
  let at = 0;
  const pieces: Uint8Array[] = [];
  let total = 0;
  const d = new Decoder(what);
  try {
    d.feed(input, true, maxOutput + 1, (piece) => {
      total += piece.length;
      if (total > maxOutput) throw new FormatError(what, `decodes to more than ${maxOutput} bytes (the limit for this stream)`);
      if (whole && at + piece.length <= whole.length) {
        whole.set(piece, at);
        at += piece.length;
        return;
      }
      if (whole) pieces.push(whole.subarray(0, at));
      whole = undefined;
      pieces.push(piece.slice());
    });
  } finally {
    d.end();
  }
  if (whole) return at === whole.length ? whole : whole.slice(0, at);
  if (pieces.length === 1) return pieces[0]!;
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of pieces) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * A Transform decoding a whole .xz file (concatenated streams and padding included) chunk by
 * chunk, in constant memory. Errors as xzDecompress; `maxOutput` (default unlimited) caps the
 * total output. `name` names the input in error messages.
 */
export class XzDecompressStream extends Transform {
  readonly #d: Decoder;
  readonly #max: number;
  #total = 0;

  constructor(opts: { name?: string; maxOutput?: number } = {}) {
    super();
    this.#max = opts.maxOutput ?? Number.MAX_SAFE_INTEGER;
    checkMax(this.#max);
    this.#d = new Decoder(opts.name ? `${opts.name}: xz stream` : 'xz stream');
  }

  #run(input: Uint8Array, finish: boolean): void {
    this.#d.feed(input, finish, CHUNK, (piece) => {
      this.#total += piece.length;
      if (this.#total > this.#max) throw new FormatError(this.#d.what, `decodes to more than ${this.#max} bytes (the limit for this stream)`);
      this.push(Buffer.from(piece));
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.#run(chunk, false);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.#run(new Uint8Array(0), true);
      this.#d.end();
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#d.end();
    cb(err);
  }
}
