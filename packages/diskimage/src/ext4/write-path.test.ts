import test from 'ava';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeEntropy } from '@diskimg/partitions/internal';
import type { Device, WriteHint } from '../device/device.js';
import { MemoryDevice } from '../device/memory.js';
import { Region } from '../device/region.js';
import { SparseWriteDevice } from '../device/sparse.js';
import type { TreeEntry } from '../source/tree.js';
import { createExt4 } from './create.js';
import { WriteBehind } from './write-behind.js';
import { MiB, EPOCH, tmp, fsck } from './testutil.js';
import { needTools, ranTool } from '../../../../test/helpers/skip.js';

/** Counts what reaches `inner` and records the hints it got. */
class Probe implements Device {
  written = 0;
  readonly hints: (WriteHint | undefined)[] = [];
  constructor(readonly inner: Device) {}
  get size(): number {
    return this.inner.size;
  }
  get sectorSize(): number {
    return this.inner.sectorSize;
  }
  read(o: number, b: Uint8Array): Promise<void> {
    return this.inner.read(o, b);
  }
  async write(o: number, b: Uint8Array, hint?: WriteHint): Promise<void> {
    this.written += b.length;
    this.hints.push(hint);
    await this.inner.write(o, b);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Passes writes on without their hint: the device below probes everything itself (the old path). */
function stripHints(d: Device): Device {
  return { size: d.size, sectorSize: d.sectorSize, read: (o, b) => d.read(o, b), write: (o, b) => d.write(o, b), flush: () => d.flush(), close: () => d.close() };
}

/** Files with what the hole probe must get right: zero blocks inside, zero tails, partial blocks, small and empty files. */
function tree(): TreeEntry[] {
  // Bodies are made fresh by `feed` (an async iterable is read once; each build reads the tree).
  const file = (path: string, data: Buffer): TreeEntry => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: EPOCH, size: data.length, data } as TreeEntry & { data: Buffer });
  const holey = randomBytes(300 * 1024);
  holey.fill(0, 64 * 1024, 192 * 1024); // 32 zero blocks inside
  // Blocks the JS head probe alone cannot settle: non-zero only in the first bytes, only in the
  // last byte, only in the middle.
  holey.fill(0, 4096 * 5, 4096 * 6);
  holey[4096 * 5 + 3] = 1;
  holey.fill(0, 4096 * 7, 4096 * 8);
  holey[4096 * 8 - 1] = 1;
  holey.fill(0, 4096 * 9, 4096 * 10);
  holey[4096 * 9 + 3000] = 1;
  const entries: TreeEntry[] = [{ path: 'd', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: EPOCH, size: 0 }];
  entries.push(file('d/holey', holey));
  entries.push(file('d/zeros', Buffer.alloc(3 * 4096 + 100)));
  entries.push(file('d/empty', Buffer.alloc(0)));
  for (let i = 0; i < 40; i++) entries.push(file(`d/small${i}`, randomBytes(1 + ((i * 997) % 9000))));
  entries.push(file('d/big', randomBytes(2 * MiB + 123)));
  return entries;
}

async function* feed(entries: TreeEntry[]): AsyncGenerator<TreeEntry> {
  for (const e of entries) {
    const data = (e as TreeEntry & { data?: Buffer }).data;
    // In 1 MiB pieces, as file-chunks hands them over.
    yield data ? { ...e, body: (async function* () { for (let p = 0; p < data.length; p += MiB) yield data.subarray(p, p + MiB); })() } : e;
  }
}

test('ext4 through the sparse device: the writer\'s no-zero hints give the same bytes and the same holes as probing everything', async (t) => {
  const entries = tree();
  const size = 64 * MiB;
  const opts = { label: 'hints', entropy: makeEntropy('hints'), now: EPOCH, sourceDateEpoch: EPOCH };
  // Plain: every byte written, journal zeroed, whole inode tables.
  const plain = new MemoryDevice(size);
  await createExt4(plain, feed(entries), opts);
  // Hinted (the create path): data blocks skip the sparse probe, inode tables stop at the last used block.
  const hintedMem = new MemoryDevice(size);
  const hinted = new Probe(hintedMem);
  await createExt4(new SparseWriteDevice(hinted), feed(entries), { ...opts, regionIsZeroed: true });
  // Probed: the same, but every write probed by the sparse device (no hints reach it).
  const probedMem = new MemoryDevice(size);
  const probed = new Probe(probedMem);
  await createExt4(stripHints(new SparseWriteDevice(probed)), feed(entries), { ...opts, regionIsZeroed: true });

  t.true(hintedMem.data.equals(plain.data), 'hinted build differs from the plain one');
  t.true(probedMem.data.equals(plain.data), 'probed build differs from the plain one');
  t.is(hinted.written, probed.written, 'the hints changed which blocks are written (holes)');

  if (!needTools(t, 'e2fsck')) return;
  const dir = tmp('hints');
  try {
    const img = join(dir, 'fs.img');
    writeFileSync(img, hintedMem.data);
    const r = fsck(img);
    ranTool(t, 'e2fsck');
    t.is(r.status, 0, r.out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a region passes the no-zero hint on only when it starts on the 4 KiB grid', async (t) => {
  const probe = new Probe(new MemoryDevice(64 * 1024));
  const hint = { noZeroPieces: true };
  await new Region(probe, 8192, 16384).write(0, Buffer.alloc(4096, 1), hint);
  await new Region(probe, 512, 16384).write(0, Buffer.alloc(4096, 1), hint);
  t.deepEqual(probe.hints, [hint, undefined]);
});

test('the sparse device writes a hinted buffer whole and still leaves zero pieces of unhinted ones out', async (t) => {
  const probe = new Probe(new MemoryDevice(64 * 1024));
  const sparse = new SparseWriteDevice(probe);
  const buf = Buffer.alloc(3 * 4096, 5);
  buf.fill(0, 4096, 8192);
  await sparse.write(0, buf);
  t.is(probe.written, 2 * 4096);
  await sparse.write(16384, buf, { noZeroPieces: true });
  t.is(probe.written, 2 * 4096 + buf.length);
});

test('the write-behind\'s gathered writes carry the hint only when every piece in them did', async (t) => {
  const probe = new Probe(new MemoryDevice(4 * MiB));
  const wb = new WriteBehind(probe);
  const hint = { noZeroPieces: true };
  await wb.write(0, Buffer.alloc(4096, 1), hint);
  await wb.write(4096, Buffer.alloc(4096, 1), hint);
  await wb.write(1 * MiB, Buffer.alloc(4096, 1), hint); // not adjacent: the first two go out together
  await wb.write(1 * MiB + 4096, Buffer.alloc(4096, 1)); // unhinted piece joins the second gathering
  await wb.write(2 * MiB, Buffer.alloc(128 * 1024, 1), hint); // large: direct, keeps its own hint
  await wb.drain();
  // The first gathering (hinted), the direct write (hinted), the second gathering (mixed) at drain.
  t.deepEqual(probe.hints, [hint, hint, undefined]);
});
