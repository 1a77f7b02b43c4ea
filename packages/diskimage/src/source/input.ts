/**
 * The inputs of `diskimg update`: `--os-tar FILE|URL|-` as one pull-based byte stream (no
 * temporary copy, no second pass: the caller writes each chunk to the partition and feeds the
 * signature hash with it), and `--os-sig FILE|URL` as a small buffer.
 *
 * HTTP(S) is in http.ts; it resumes a dropped transfer with Range requests but never restarts one
 * that has delivered bytes, because those bytes are already consumed downstream.
 */
import { createReadStream, fstatSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { InputError } from '@diskimg/partitions/internal';
import { openHttp, type HttpOptions } from './http.js';
import { readFileChunks } from './file-chunks.js';

/** An opened update input: its name, the byte stream, its size when known, and transfer statistics. */
export interface UpdateInput {
  /** How the user named it: the path, "standard input", or the URL (credentials stripped). */
  name: string;
  /** The bytes, in order, exactly once each, as they arrive; back-pressured (pull-based). Iterate once. */
  stream: AsyncIterable<Buffer>;
  /** Total size when known (file size, Content-Length), else undefined. */
  size?: number;
  /** Bytes delivered so far, and how many times an HTTP transfer was resumed. */
  readonly stats: { bytes: number; resumes: number };
}

/** Options of `openUpdateInput`: standard input, timeouts, resume attempts, proxies and progress. */
export interface OpenInputOptions extends HttpOptions {
  /** What "-" reads; default process.stdin. */
  stdin?: NodeJS.ReadableStream;
  /** Give up connecting (DNS, TCP, proxy CONNECT, TLS) after this long; default 30000. */
  connectTimeoutMs?: number;
  /** No byte for this long while one is wanted = a dropped connection; default 60000. */
  idleTimeoutMs?: number;
  /** Most resume attempts over the whole transfer; default 10. */
  maxResumes?: number;
  /** Wait before each resume attempt; default 1000. */
  retryDelayMs?: number;
  /** Where HTTP(S)_PROXY and NO_PROXY are read; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Called after each chunk is delivered. */
  onProgress?: (bytes: number, total?: number) => void;
  /**
   * For a file: read into a ring of reused buffers (readFileChunks), so a chunk is valid only
   * while at most DEFAULT_BUFFERS - 2 later chunks have been delivered (file-chunks.ts). Only
   * for consumers that copy or finish with each chunk within that bound (update's tar → ext4
   * path); a consumer that keeps chunks (collects a payload) leaves it off.
   */
  reuseBuffers?: boolean;
}

const FILE_CHUNK = 1 << 20;

/** True for an http:// or https:// URL (inputs that are downloaded rather than opened). */
export function isUrl(spec: string): boolean {
  return /^https?:\/\//i.test(spec);
}

/** Open `spec` ("-" = standard input, http(s):// = download, else a file) for streaming. */
export async function openUpdateInput(spec: string, opts: OpenInputOptions = {}): Promise<UpdateInput> {
  const stats = { bytes: 0, resumes: 0 };
  if (isUrl(spec)) {
    const dl = await openHttp(spec, opts, stats, opts.onProgress);
    return { name: dl.name, stream: dl.stream, size: dl.size, stats };
  }
  if (spec === '-') {
    const stdin = opts.stdin ?? process.stdin;
    return { name: 'standard input', stream: counted(stdin as AsyncIterable<Buffer>, stats, undefined, opts.onProgress, 'standard input'), size: stdinSize(stdin), stats };
  }
  const st = await statFile(spec);
  if (opts.reuseBuffers) {
    return { name: spec, stream: counted(readFileChunks(spec, { chunkSize: FILE_CHUNK }), stats, st.size, opts.onProgress, spec), size: st.size, stats };
  }
  const rs = createReadStream(spec, { highWaterMark: FILE_CHUNK });
  rs.on('error', () => {}); // surfaced through the iterator
  return { name: spec, stream: counted(rs, stats, st.size, opts.onProgress, spec), size: st.size, stats };
}

/**
 * A small input (the .minisig) read whole: a file or a URL, at most `maxBytes` (default 1 MiB).
 * Standard input is refused: it carries the tarball.
 */
export async function readSmallInput(spec: string, opts: { maxBytes?: number } & OpenInputOptions = {}): Promise<Buffer> {
  const max = opts.maxBytes ?? FILE_CHUNK;
  if (spec === '-') throw new InputError('the signature cannot come from standard input; pass it as a file or URL');
  const tooBig = (name: string) => new InputError(`${name}: larger than ${max} bytes; not a signature file`);
  if (!isUrl(spec)) {
    const st = await statFile(spec);
    if (st.size > max) throw tooBig(spec);
    return readFile(spec);
  }
  const input = await openUpdateInput(spec, { ...opts, onProgress: undefined });
  const it = input.stream[Symbol.asyncIterator]();
  if (input.size !== undefined && input.size > max) {
    await it.return?.();
    throw tooBig(input.name);
  }
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for (let r = await it.next(); !r.done; r = await it.next()) {
      n += r.value.length;
      if (n > max) throw tooBig(input.name);
      parts.push(r.value);
    }
  } finally {
    await it.return?.();
  }
  return Buffer.concat(parts, n);
}

async function statFile(path: string): Promise<Stats> {
  let st: Stats;
  try {
    st = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`${path}: no such file`);
    if (code === 'EACCES') throw new InputError(`${path}: permission denied`);
    throw new InputError(`${path}: cannot open (${code ?? (e as Error).message})`);
  }
  if (st.isDirectory()) throw new InputError(`${path}: is a directory, not a file`);
  return st;
}

/** When stdin is process.stdin redirected from a regular file, its size is known. */
function stdinSize(stdin: NodeJS.ReadableStream): number | undefined {
  if (stdin !== process.stdin) return undefined;
  try {
    const st = fstatSync(0);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

/** Pass chunks through, counting them; read errors become one-line InputErrors naming the input. */
async function* counted(
  src: AsyncIterable<Buffer | string>,
  stats: { bytes: number },
  total: number | undefined,
  onProgress: OpenInputOptions['onProgress'],
  name: string,
): AsyncGenerator<Buffer> {
  try {
    for await (const c of src) {
      const chunk = typeof c === 'string' ? Buffer.from(c) : c;
      stats.bytes += chunk.length;
      onProgress?.(stats.bytes, total);
      yield chunk;
    }
  } catch (e) {
    if (e instanceof InputError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new InputError(`${name}: read error after ${stats.bytes} bytes (${err.code ?? err.message})`);
  }
}
