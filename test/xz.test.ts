// The xz decoder (packages/diskimage/src/compress/xz.ts) against the real `xz` CLI: streams made by
// `xz --format=xz` with every check, sampled presets, every BCJ filter and delta, multi-block,
// concatenated and padded streams must decode to the original bytes; damaged streams (truncated,
// seeded fuzz) end in typed errors, where `xz -t` rejects them too. Also: the committed wasm is the
// one the build script recorded (and, with emcc installed, a rebuild is byte-identical), and xz
// blocks that `mksquashfs -comp xz -Xbcj …` writes decode to the file they hold.
import test from 'ava';
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { XzDecompressStream, xzDecompress, XZ_MEMLIMIT } from '../packages/diskimage/src/compress/xz.js';
import { XZ_WASM_BASE64, XZ_WASM_SHA256 } from '../packages/diskimage/src/compress/xz-wasm.generated.js';
import { DiskimgError, FormatError, InputError, UnsupportedFormatError } from '../packages/partitions/src/errors.js';
import { repoRoot } from './helpers/cli.js';
import { haveTool, needCondition, needTools, ranTool } from './helpers/skip.js';
import type { FuzzJob, FuzzResult } from './helpers/xz-fuzz-worker.js';
import { mulberry32 as prng } from './helpers/prng.js';

const GENERATED = join(repoRoot, 'packages/diskimage/src/compress/xz-wasm.generated.ts');
const WORKER = fileURLToPath(new URL('./helpers/xz-fuzz-worker.ts', import.meta.url));

const tmp = mkdtempSync(join(tmpdir(), 'diskimg-xz-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function randomBytes(seed: number, n: number): Buffer {
  const r = prng(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

/**
 * Machine code for every BCJ filter's architecture at once, in 16-byte units: calls to a few
 * fixed absolute targets (so each filter's relative→absolute conversion pays off and the filter
 * really rewrites many instructions): x86 CALL rel32, ARM BL, Thumb BL pairs, ARM64 BL, PowerPC
 * `bl`, SPARC `call`, IA-64 bundles with a branch template, and a little filler.
 */
function bcjRich(seed: number, n: number): Buffer {
  const r = prng(seed);
  const b = Buffer.alloc(n);
  const targets = Array.from({ length: 24 }, () => ((r() * n) & ~15) >>> 0);
  const T = () => targets[(r() * targets.length) | 0]!;
  for (let p = 0; p + 16 <= n; p += 16) {
    const kind = (r() * 8) | 0;
    for (let w = 0; w < 16; w += 4) {
      const pos = p + w;
      switch (kind) {
        case 0: // x86 E8 rel32 (one per unit, rest NOPs)
          if (w === 0) {
            b[pos] = 0xe8;
            b.writeInt32LE((T() - (pos + 5)) | 0, pos + 1);
          } else if (w >= 8) b.writeUInt32LE(0x90909090, pos);
          break;
        case 1: // ARM BL: cond AL, 24-bit word offset from pc+8
          b.writeUInt32LE((0xeb000000 | (((T() - (pos + 8)) >> 2) & 0xffffff)) >>> 0, pos);
          break;
        case 2: { // Thumb BL pair: halfword offset from pc+4, high then low half
          const off = (T() - (pos + 4)) >> 1;
          b.writeUInt16LE(0xf000 | ((off >> 11) & 0x7ff), pos);
          b.writeUInt16LE(0xf800 | (off & 0x7ff), pos + 2);
          break;
        }
        case 3: // ARM64 BL: 26-bit word offset
          b.writeUInt32LE((0x94000000 | (((T() - pos) >> 2) & 0x3ffffff)) >>> 0, pos);
          break;
        case 4: // PowerPC bl (big-endian, AA=0 LK=1)
          b.writeUInt32BE((0x48000001 | ((T() - pos) & 0x03fffffc)) >>> 0, pos);
          break;
        case 5: // SPARC call (big-endian, 30-bit word displacement, small)
          b.writeUInt32BE((0x40000000 | (((T() - pos) >> 2) & 0x3fffffff)) >>> 0, pos);
          break;
        case 6: // IA-64 bundle with template 0x10 (branch slot), random slots
          b.writeUInt32LE((r() * 2 ** 32) >>> 0, pos);
          if (w === 0) b[pos] = (b[pos]! & 0xe0) | 0x10;
          break;
        default: // filler
          b.writeUInt32LE(w === 0 ? 0x8b48e589 : 0, pos);
      }
    }
  }
  return b;
}

/** The inputs: a real executable, a shared library, BCJ-rich machine code and incompressible bytes. */
const EXE = (() => {
  const parts: Buffer[] = [readFileSync('/bin/ls')];
  for (const f of ['/usr/lib/x86_64-linux-gnu/liblzma.so.5', '/lib/x86_64-linux-gnu/liblzma.so.5']) {
    if (existsSync(f)) {
      parts.push(readFileSync(f));
      break;
    }
  }
  parts.push(bcjRich(1, 384 << 10), randomBytes(2, 32 << 10));
  return Buffer.concat(parts);
})();

let seq = 0;
/** `xz ARGS` over `data` (files in tmp, so xz knows nothing we don't). */
function xz(data: Uint8Array, args: string[]): Buffer {
  const f = join(tmp, `in-${seq++}`);
  writeFileSync(f, data);
  const r = spawnSync('xz', ['--format=xz', '--threads=1', '-c', ...args, f], { maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`xz ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The judge: does `xz -dc` accept `stream`, and what does it output? (exit 2 = warning only) */
function xzJudge(stream: Uint8Array): { ok: boolean; warn: boolean; out: Buffer } {
  const f = join(tmp, `judge-${seq++}.xz`);
  writeFileSync(f, stream);
  const all = spawnSync('xz', ['-dc', f], { maxBuffer: 1 << 30 });
  return { ok: all.status === 0, warn: all.status === 2, out: all.stdout };
}

/** The filter chain `xz --robot -lvv` reports for the stream's blocks. */
function xzFilters(stream: Uint8Array): string[] {
  const f = join(tmp, `list-${seq++}.xz`);
  writeFileSync(f, stream);
  const r = spawnSync('xz', ['--robot', '-lvv', f], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.startsWith('block\t')).map((l) => l.split('\t').at(-1)!);
}

function roundTrip(t: any, label: string, data: Buffer, args: string[]): Buffer {
  const stream = xz(data, args);
  const judged = xzJudge(stream);
  t.true(judged.ok, `${label}: xz -dc rejects its own stream`);
  const out = xzDecompress(stream, data.length);
  t.is(out.length, data.length, label);
  t.is(sha(out), sha(data), `${label}: decoded bytes differ from the original`);
  return stream;
}

test('the committed wasm is the one scripts/build-xz-wasm.sh recorded, and imports nothing', (t) => {
  const text = readFileSync(GENERATED, 'utf8');
  const m = /^\/\/ wasm: (\d+) bytes, sha256 ([0-9a-f]{64})$/m.exec(text);
  t.truthy(m, 'the generated module has no "// wasm: N bytes, sha256 X" header line');
  const bytes = Buffer.from(XZ_WASM_BASE64, 'base64');
  t.is(bytes.length, Number(m![1]));
  t.is(sha(bytes), m![2]);
  t.is(XZ_WASM_SHA256, m![2]);
  t.regex(text, /^\/\/ xz-utils: Debian source \S+/m);
  t.regex(text, /^\/\/ emscripten: Debian \S+/m);
  const WA = (globalThis as any).WebAssembly;
  const mod = new WA.Module(bytes);
  t.deepEqual(WA.Module.imports(mod), []);
  t.true(bytes.length <= 100 << 10, `wasm is ${bytes.length} bytes; the target is ≤ 100 KiB`);
  t.log(`wasm: ${bytes.length} bytes, sha256 ${m![2]}`);
});

test('a rebuild with Debian emscripten is byte-identical to the committed wasm', async (t) => {
  const missing = ['emcc', 'dpkg-source'].filter((c) => !haveTool(c));
  const reason = missing.length ? `${missing.join(', ')} not installed (apt-get install emscripten dpkg-dev; CI does not, it is big)` : undefined;
  if (!needCondition(t, reason, 'emscripten')) return;
  t.timeout(60 * 60_000, 'configure runs emcc for every probe');
  const out = join(tmp, 'rebuilt.generated.ts');
  const r = spawnSync('bash', [join(repoRoot, 'scripts/build-xz-wasm.sh'), '--out', out], { encoding: 'utf8', maxBuffer: 64 << 20 });
  t.is(r.status, 0, r.stderr);
  t.is(readFileSync(out, 'utf8'), readFileSync(GENERATED, 'utf8'));
});

test('every BCJ filter (x86, powerpc, ia64, arm, armthumb, arm64, sparc) and delta, as xz writes them', (t) => {
  if (!needTools(t, 'xz')) return;
  const filters: [string, string[], string][] = [
    ['x86', ['--x86', '--lzma2'], 'x86'],
    ['powerpc', ['--powerpc', '--lzma2'], 'powerpc'],
    ['ia64', ['--ia64', '--lzma2'], 'ia64'],
    ['arm', ['--arm', '--lzma2'], 'arm'],
    ['armthumb', ['--armthumb', '--lzma2'], 'armthumb'],
    ['arm64', ['--arm64', '--lzma2'], 'arm64'],
    ['sparc', ['--sparc', '--lzma2'], 'sparc'],
    ['delta', ['--delta=dist=4', '--lzma2'], 'delta'],
    ['x86 with start offset, arm64 after delta', ['--x86=start=4096', '--delta=dist=2', '--lzma2=preset=1'], 'x86'],
  ];
  for (const [label, args, name] of filters) {
    const stream = roundTrip(t, label, EXE, args);
    const chain = xzFilters(stream);
    t.true(chain.length > 0 && chain.every((c) => c.includes(`--${name}`)), `${label}: xz -lvv reports ${chain.join(' | ')}`);
  }
});

test('every integrity check (none, crc32, crc64, sha256) and sampled presets 0..9e', (t) => {
  if (!needTools(t, 'xz')) return;
  for (const check of ['none', 'crc32', 'crc64', 'sha256']) roundTrip(t, `--check=${check}`, EXE, [`--check=${check}`, '-6']);
  const small = EXE.subarray(0, 200 << 10);
  // -7..-9e (16–64 MiB dictionaries, up to 674 MiB to encode) on a smaller input
  for (const p of ['-0', '-1', '-2e', '-3', '-5', '-6e']) roundTrip(t, `preset ${p}`, EXE, [p]);
  for (const p of ['-7', '-9', '-9e']) roundTrip(t, `preset ${p}`, small, [p]);
});

test('multi-block, concatenated and padded streams; empty input', (t) => {
  if (!needTools(t, 'xz')) return;
  roundTrip(t, 'blocks of 64 KiB', EXE, ['--block-size=65536']);
  roundTrip(t, 'block list', EXE, ['--x86', '--lzma2', '--block-list=100000,50000,200000']);
  roundTrip(t, 'empty input', Buffer.alloc(0), []);
  const a = EXE.subarray(0, 300_000);
  const b = EXE.subarray(300_000);
  const sa = xz(a, ['--arm64', '--lzma2=preset=1']);
  const sb = xz(b, ['--check=sha256', '-1']);
  const ab = Buffer.concat([a, b]);
  for (const [label, stream] of [
    ['two concatenated streams', Buffer.concat([sa, sb])],
    ['padding between and after streams', Buffer.concat([sa, Buffer.alloc(8), sb, Buffer.alloc(4)])],
    ['an empty stream between', Buffer.concat([sa, xz(Buffer.alloc(0), []), sb])],
  ] as const) {
    t.true(xzJudge(stream).ok, label);
    t.is(sha(xzDecompress(stream, ab.length)), sha(ab), label);
  }
  // padding that is not a multiple of 4 bytes, and garbage after the stream: xz rejects both, so do we
  for (const [label, stream] of [
    ['3 bytes of padding', Buffer.concat([sa, Buffer.alloc(3)])],
    ['garbage after the stream', Buffer.concat([sa, Buffer.from('garbage!')])],
    ['not an xz stream', randomBytes(3, 4096)],
    ['empty input', Buffer.alloc(0)],
  ] as const) {
    t.false(xzJudge(stream).ok, `${label}: xz -dc accepts it`);
    const e = t.throws(() => xzDecompress(stream, 1 << 30), { instanceOf: FormatError }, label);
    t.regex(e!.message, /^xz stream: /);
  }
});

test('output limit: exactly maxOutput bytes decode, one more byte is a typed error', (t) => {
  if (!needTools(t, 'xz')) return;
  const stream = xz(EXE, ['-1']);
  t.is(xzDecompress(stream, EXE.length).length, EXE.length);
  for (const max of [EXE.length - 1, 0, 1000, 65536]) {
    const e = t.throws(() => xzDecompress(stream, max), { instanceOf: FormatError });
    t.regex(e!.message, new RegExp(`more than ${max} bytes`));
  }
  t.is(xzDecompress(xz(Buffer.alloc(0), []), 0).length, 0);
  t.throws(() => xzDecompress(stream, -1), { instanceOf: InputError });
  t.throws(() => xzDecompress(stream, 1.5), { instanceOf: InputError });
});

test('a dictionary over the memory limit, an unknown check type and an unknown filter: UnsupportedFormatError', (t) => {
  if (!needTools(t, 'xz')) return;
  const data = EXE.subarray(0, 100_000);
  // 128 MiB dictionary: valid (xz decodes it) but over XZ_MEMLIMIT
  const big = xz(data, [`--lzma2=preset=0,dict=${(XZ_MEMLIMIT >> 20) + 32}MiB`]);
  t.true(xzJudge(big).ok);
  const e1 = t.throws(() => xzDecompress(big, data.length), { instanceOf: UnsupportedFormatError });
  t.regex(e1!.message, /MiB of decoder memory/);

  // check type 0x02 (reserved, 4 bytes): header and footer flags patched, their CRC32s recomputed
  const s = Buffer.from(xz(data, ['--check=crc32', '-1']));
  s[7] = 0x02;
  s.writeUInt32LE(crc32(s.subarray(6, 8)), 8);
  const f = s.length - 12;
  s[f + 9] = 0x02;
  s.writeUInt32LE(crc32(s.subarray(f + 4, f + 10)), f);
  t.throws(() => xzDecompress(s, data.length), { instanceOf: UnsupportedFormatError, message: /integrity check type/ });

  // the x86 filter's ID (0x04) in the first block header replaced by 0x0B (RISC-V in xz 5.6, unknown to 5.4)
  const x = Buffer.from(xz(data, ['--x86', '--lzma2=preset=1']));
  const hdr = 12;
  const size = (x[hdr]! + 1) * 4;
  t.is(x[hdr + 1]! & 0xc0, 0, 'no size fields in the block header');
  t.is(x[hdr + 2], 0x04);
  x[hdr + 2] = 0x0b;
  x.writeUInt32LE(crc32(x.subarray(hdr, hdr + size - 4)), hdr + size - 4);
  t.false(xzJudge(x).ok);
  t.throws(() => xzDecompress(x, data.length), { instanceOf: UnsupportedFormatError, message: /filter/ });
});

test('truncated streams: a typed error at every cut, as xz -t says', (t) => {
  if (!needTools(t, 'xz')) return;
  const data = EXE.subarray(0, 64 << 10);
  const stream = xz(data, ['--sparc', '--lzma2=preset=1', '--block-size=16384']);
  const cuts = new Set<number>([1, 5, 6, 11, 12, 13, 20, stream.length - 1, stream.length - 2, stream.length - 12, stream.length - 13]);
  for (let i = 0; i < 40; i++) cuts.add(Math.floor((stream.length * i) / 40));
  cuts.delete(0);
  for (const n of cuts) {
    const cut = stream.subarray(0, n);
    t.throws(() => xzDecompress(cut, data.length), { instanceOf: FormatError }, `cut at ${n}`);
  }
  for (const n of [20, stream.length >> 1, stream.length - 1]) t.false(xzJudge(stream.subarray(0, n)).ok, `xz -dc accepts a cut at ${n}`);
});

test('the streaming decoder (XzDecompressStream) over odd-sized chunks', async (t) => {
  if (!needTools(t, 'xz')) return;
  const stream = Buffer.concat([xz(EXE, ['--armthumb', '--lzma2']), Buffer.alloc(4), xz(EXE.subarray(0, 1000), ['--check=none'])]);
  const want = Buffer.concat([EXE, EXE.subarray(0, 1000)]);
  const chunks = (b: Buffer, n: number) => Readable.from((function* () { for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n); })());
  for (const n of [1 << 20, 4097, 7]) {
    if (n === 7) {
      // tiny chunks: only the first 20 KiB of the stream, then the end (truncated: error)
      const parts: Buffer[] = [];
      const err = await t.throwsAsync(pipeline(chunks(stream.subarray(0, 20 << 10), n), new XzDecompressStream({ name: 'cut.xz' }), async function* (src) {
        for await (const b of src) parts.push(b as Buffer);
      }), { instanceOf: FormatError });
      t.regex(err!.message, /^cut\.xz: xz stream: truncated/);
      t.deepEqual(Buffer.concat(parts), want.subarray(0, Buffer.concat(parts).length));
      continue;
    }
    const parts: Buffer[] = [];
    await pipeline(chunks(stream, n), new XzDecompressStream(), async function* (src) {
      for await (const b of src) parts.push(b as Buffer);
    });
    t.is(sha(Buffer.concat(parts)), sha(want), `chunks of ${n}`);
  }
  await t.throwsAsync(pipeline(chunks(stream, 65536), new XzDecompressStream({ maxOutput: 1000 }), async function* (src) {
    for await (const _ of src);
  }), { instanceOf: FormatError, message: /more than 1000 bytes/ });
});

/** Runs fuzz jobs in a child process; a case that takes longer than `capMs` is a hang (the child is killed). */
class FuzzRunner {
  #c: ChildProcess | undefined;
  #pending: ((r: FuzzResult) => void) | undefined;
  #child(): ChildProcess {
    if (this.#c) return this.#c;
    const c = fork(WORKER, [], { execArgv: ['--import=tsx', '--conditions=source'], serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    c.on('message', (r: FuzzResult) => this.#pending?.(r));
    c.on('exit', (code, sig) => {
      if (this.#c === c) this.#c = undefined;
      this.#pending?.({ id: -1, outcome: 'crash', message: `fuzz child exited (code ${code}, signal ${sig})` });
    });
    return (this.#c = c);
  }
  run(job: FuzzJob, capMs: number): Promise<FuzzResult | 'hang'> {
    const c = this.#child();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending = undefined;
        this.#c = undefined;
        c.kill('SIGKILL');
        resolve('hang');
      }, capMs);
      this.#pending = (r) => {
        clearTimeout(timer);
        this.#pending = undefined;
        resolve(r);
      };
      c.send(job);
    });
  }
  stop(): void {
    this.#pending = undefined;
    this.#c?.kill();
    this.#c = undefined;
  }
}

test('seeded fuzz: damaged streams end in a typed error or in the bytes xz -dc outputs, never a hang', async (t) => {
  if (!needTools(t, 'xz')) return;
  const data = EXE.subarray(0, 48 << 10);
  const bases = [
    xz(data, ['--x86', '--lzma2=preset=1', '--check=crc64']),
    xz(data, ['--arm64', '--lzma2=preset=0', '--check=none']),
    xz(data, ['--delta=dist=4', '--lzma2=preset=1', '--check=sha256', '--block-size=8192']),
    xz(data, ['--ia64', '--lzma2=preset=0', '--check=crc32']),
    // incompressible, no check: LZMA2 stores it in uncompressed chunks, so most flips in the
    // payload leave a valid stream whose output changes: we must output what xz outputs
    xz(randomBytes(11, 16 << 10), ['--lzma2=preset=0', '--check=none']),
  ];
  const runner = new FuzzRunner();
  const counts = { decoded: 0, typed: 0 };
  try {
    let id = 0;
    for (const [bi, base] of bases.entries()) {
      for (let c = 0; c < 60; c++) {
        const seed = 1000 * (bi + 1) + c;
        const r = prng(seed);
        const m = Buffer.from(base);
        const kind = c % 4;
        let input: Buffer = m;
        if (kind === 0) for (let k = 0; k < 1 + ((r() * 3) | 0); k++) m[(r() * m.length) | 0]! ^= 1 << ((r() * 8) | 0);
        else if (kind === 1) for (let k = 0; k < 1 + ((r() * 8) | 0); k++) m[(r() * m.length) | 0] = (r() * 256) | 0;
        else if (kind === 2) input = m.subarray(0, (r() * m.length) | 0);
        else {
          const at = (r() * m.length) | 0;
          input = Buffer.concat([m.subarray(0, at), randomBytes(seed, 1 + ((r() * 16) | 0)), m.subarray(at + ((r() * 16) | 0))]);
        }
        // data.length * 4: a mutated header may claim more; beyond it must be a typed error
        const res = await runner.run({ id: id++, input, maxOutput: data.length * 4 }, 60_000);
        const label = `base ${bi}, seed ${seed} (kind ${kind})`;
        if (res === 'hang') {
          t.fail(`${label}: no answer within the per-case cap of 60 s (a hang)`);
          continue;
        }
        if (res.outcome === 'crash') {
          t.fail(`${label}: untyped error ${res.message}`);
          continue;
        }
        const judge = xzJudge(input);
        if (res.outcome === 'decoded') {
          counts.decoded++;
          // we returned bytes: xz must accept the stream and output the same bytes
          t.true(judge.ok || judge.warn, `${label}: we decoded a stream xz -dc rejects`);
          t.is(res.sha256, sha(judge.out), `${label}: our output differs from xz -dc's`);
        } else {
          counts.typed++;
          // we refused: xz must refuse too (or its output be over our limit)
          t.true(!judge.ok || judge.out.length > data.length * 4, `${label}: xz -dc accepts a stream we refused (${res.name}: ${res.message})`);
        }
      }
    }
  } finally {
    runner.stop();
  }
  ranTool(t, 'xz');
  t.log(`fuzz: ${counts.decoded} decoded as xz does, ${counts.typed} typed errors`);
});

/** Superblock fields (SquashFS 4.0, little-endian) that locate the data blocks. */
function squashfsFirstBlock(img: Buffer): { block: Buffer; compression: number; options: Buffer } {
  if (img.toString('latin1', 0, 4) !== 'hsqs') throw new Error('not a squashfs image');
  const compression = img.readUInt16LE(20);
  const flags = img.readUInt16LE(24);
  const inodeTableStart = Number(img.readBigUInt64LE(64));
  let at = 96;
  let options: Buffer = Buffer.alloc(0);
  if (flags & 0x0400) {
    // COMPRESSOR_OPTIONS: one metadata block (u16 header: length, bit 15 = stored uncompressed)
    const h = img.readUInt16LE(at);
    if (!(h & 0x8000)) throw new Error('compressed compressor options');
    options = img.subarray(at + 2, at + 2 + (h & 0x7fff));
    at += 2 + (h & 0x7fff);
  }
  // one file, one data block, no fragments: the block spans up to the inode table
  return { block: img.subarray(at, inodeTableStart), compression, options };
}

/** The filter IDs in the first xz block header (after the 12-byte stream header). */
function xzBlockFilters(stream: Buffer): number[] {
  const flags = stream[13]!;
  let p = 14;
  const vli = () => {
    let v = 0;
    for (let i = 0; ; i++) {
      const b = stream[p++]!;
      v += (b & 0x7f) * 2 ** (7 * i);
      if (!(b & 0x80)) return v;
    }
  };
  if (flags & 0x40) vli();
  if (flags & 0x80) vli();
  const ids: number[] = [];
  for (let i = 0; i <= (flags & 3); i++) {
    ids.push(vli());
    const propsSize = vli();
    p += propsSize;
  }
  return ids;
}

test('SquashFS xz blocks from mksquashfs -comp xz -Xbcj x86 and -Xbcj arm,armthumb decode to the file', (t) => {
  if (!needTools(t, 'mksquashfs')) return;
  const r = prng(7);
  const armOnly = Buffer.alloc(512 << 10);
  // ARM and Thumb calls to a few targets: the BCJ filters pay off, so mksquashfs picks one
  const targets = Array.from({ length: 16 }, () => ((r() * armOnly.length) & ~3) >>> 0);
  for (let p = 0; p < armOnly.length; p += 4) {
    const T = targets[(r() * 16) | 0]!;
    if ((p >> 12) & 1) {
      const off = (T - (p + 4)) >> 1;
      armOnly.writeUInt16LE(0xf000 | ((off >> 11) & 0x7ff), p);
      armOnly.writeUInt16LE(0xf800 | (off & 0x7ff), p + 2);
    } else armOnly.writeUInt32LE((0xeb000000 | (((T - (p + 8)) >> 2) & 0xffffff)) >>> 0, p);
  }
  const cases: [string, string, Buffer, number[]][] = [
    ['x86', 'x86', Buffer.concat([readFileSync('/bin/ls'), bcjRich(9, 64 << 10)]).subarray(0, 256 << 10), [0x04]],
    ['arm,armthumb', 'arm,armthumb', armOnly, [0x07, 0x08]],
  ];
  for (const [label, bcj, content, expect] of cases) {
    const dir = join(tmp, `sq-${seq++}`);
    mkdirSync(join(dir, 'tree'), { recursive: true });
    writeFileSync(join(dir, 'tree', 'file'), content);
    const img = join(dir, 'img.sqfs');
    const mk = spawnSync('mksquashfs', [join(dir, 'tree'), img, '-comp', 'xz', '-Xbcj', bcj, '-b', '1M', '-no-fragments', '-noappend', '-no-xattrs', '-quiet', '-processors', '1'], { encoding: 'utf8' });
    t.is(mk.status, 0, mk.stderr);
    const { block, compression, options } = squashfsFirstBlock(readFileSync(img));
    t.is(compression, 4, 'xz');
    t.is(options.length, 8, 'xz compressor options: dictionary size, filters');
    const ids = xzBlockFilters(block);
    t.log(`${label}: the block's xz filter chain is ${ids.map((i) => '0x' + i.toString(16)).join(', ')}`);
    t.true(expect.includes(ids[0]!), `${label}: mksquashfs chose filter ${ids[0]} (expected one of ${expect})`);
    t.is(sha(xzDecompress(block, 1 << 20)), sha(content), label);
    // the squashfs-tools reader agrees on the file
    const cat = spawnSync('unsquashfs', ['-cat', img, 'file'], { maxBuffer: 1 << 30 });
    if (cat.status === 0) t.is(sha(cat.stdout), sha(content));
  }
});

test('bad input and errors are DiskimgErrors with one-line messages', (t) => {
  for (const input of [Buffer.alloc(0), Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), randomBytes(5, 100)]) {
    const e = t.throws(() => xzDecompress(input, 100));
    t.true(e instanceof DiskimgError);
    t.false(e!.message.includes('\n'));
  }
});
