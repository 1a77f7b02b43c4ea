// INTERIM (files and stdin only); replaced by the HTTP-capable module from the `sources` branch.
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { InputError } from '@diskimg/partitions';

export interface OpenInputOptions { stdin?: NodeJS.ReadableStream }
export interface UpdateInput {
  name: string;
  stream: AsyncIterable<Buffer>;
  size?: number;
  readonly stats: { bytes: number; resumes: number };
}

export async function openUpdateInput(spec: string, opts: OpenInputOptions = {}): Promise<UpdateInput> {
  const stats = { bytes: 0, resumes: 0 };
  if (spec === '-') return { name: 'standard input', stream: count((opts.stdin ?? process.stdin) as AsyncIterable<Buffer>, stats), stats };
  const st = await stat(spec).catch(() => undefined);
  if (!st?.isFile()) throw new InputError(`${spec}: no such file`);
  return { name: spec, stream: count(createReadStream(spec, { highWaterMark: 1 << 20 }), stats), size: st.size, stats };
}

async function* count(src: AsyncIterable<Buffer>, stats: { bytes: number }): AsyncGenerator<Buffer> {
  for await (const c of src) {
    stats.bytes += c.length;
    yield c;
  }
}

export async function readSmallInput(spec: string, opts: { maxBytes: number }): Promise<Buffer> {
  const b = await readFile(spec).catch(() => {
    throw new InputError(`${spec}: no such file`);
  });
  if (b.length > opts.maxBytes) throw new InputError(`${spec}: larger than ${opts.maxBytes} bytes`);
  return b;
}
