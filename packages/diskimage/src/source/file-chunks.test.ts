import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeEntropy } from '@diskimg/partitions/internal';
import { FileDevice } from '../device/file.js';
import type { Device } from '../device/device.js';
import { createExt4 } from '../ext4/create.js';
import { MiB, EPOCH, tmp, prng, fsck, rdumpDiff } from '../ext4/testutil.js';
import { chunkPoolDebug, DEFAULT_BUFFERS, POISON_BYTE, readFileChunks } from './file-chunks.js';
import { openTarFile } from './tar.js';
import { teeEach } from './tee.js';
import { needTools } from '../../../../test/helpers/skip.js';

// Every test of this file runs with poisoned releases (the suite sets DISKIMG_POOL_POISON=1 too).
chunkPoolDebug.poisonReleased = true;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('readFileChunks delivers the file exactly, in ring-sized chunks, and closes it', async (t) => {
  const dir = tmp('chunks');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const size of [0, 1, 4095, 4096, 3 * 4096 + 17]) {
    const data = prng(size, size + 1);
    const f = join(dir, `f${size}`);
    writeFileSync(f, data);
    const h = createHash('sha256');
    const lens: number[] = [];
    for await (const c of readFileChunks(f, { chunkSize: 4096, buffers: 2 })) {
      h.update(c);
      lens.push(c.length);
    }
    t.is(h.digest('hex'), sha(data), `size ${size}`);
    t.true(lens.slice(0, -1).every((l) => l === 4096));
  }
  await t.throwsAsync(async () => {
    for await (const _ of readFileChunks(join(dir, 'absent'))) void _;
  }, { code: 'ENOENT' });
});

test('the ownership rule: a chunk is intact while buffers - 2 later chunks are out, poisoned after that', async (t) => {
  const dir = tmp('chunks');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const data = prng(64 * 1024, 7);
  const f = join(dir, 'f');
  writeFileSync(f, data);
  const buffers = 4;
  const held: { i: number; c: Buffer; copy: Buffer }[] = [];
  let i = 0;
  let poisoned = 0;
  for await (const c of readFileChunks(f, { chunkSize: 1024, buffers })) {
    held.push({ i, c, copy: Buffer.from(c) });
    for (const h of held) {
      const later = i - h.i; // chunks yielded after h
      if (later <= buffers - 2) t.true(h.c.equals(h.copy), `chunk ${h.i} changed with ${later} later chunks out`);
      else if (h.c.every((b) => b === POISON_BYTE)) poisoned++;
    }
    i++;
  }
  // The detector works: chunks held past the bound read as poison.
  t.true(poisoned > 0);
});

/** Writes complete late, as on a busy disk, so in-flight writes still read their chunks while the reader goes on. */
class SlowDevice implements Device {
  readonly size: number;
  readonly sectorSize: number;
  constructor(private readonly inner: Device) {
    this.size = inner.size;
    this.sectorSize = inner.sectorSize;
  }
  read(offset: number, buf: Uint8Array) {
    return this.inner.read(offset, buf);
  }
  async write(offset: number, buf: Uint8Array) {
    await new Promise((r) => setTimeout(r, 3));
    await this.inner.write(offset, buf);
  }
  flush() {
    return this.inner.flush();
  }
  close() {
    return this.inner.close();
  }
}

/** The create pipeline (tar → tee → two ext4 writers with write-behind) over a slow device; each slot checked by e2fsck and debugfs rdump. */
async function teeIntoTwoSlots(dir: string, tar: string, src: string, buffers: number | undefined): Promise<string[]> {
  const imgs = [join(dir, `a${buffers}.img`), join(dir, `b${buffers}.img`)];
  const devs = await Promise.all(imgs.map((p) => FileDevice.create(p, 128 * MiB)));
  try {
    await teeEach(
      openTarFile(tar, buffers ? { buffers } : undefined),
      devs.map((d, i) => (tree) => createExt4(new SlowDevice(d), tree, { label: `s${i}`, entropy: makeEntropy('seed'), now: EPOCH, sourceDateEpoch: EPOCH })),
    );
  } finally {
    await Promise.all(devs.map((d) => d.close()));
  }
  return imgs.map((img) => {
    const f = fsck(img);
    return f.status !== 0 ? `e2fsck ${f.status}: ${f.out}` : rdumpDiff(img, src);
  });
}

test('create-style pipeline from reused buffers: both slots hold the payload byte for byte (real e2fsck, debugfs rdump, diff)', async (t) => {
  if (!needTools(t, 'tar', 'e2fsck', 'debugfs', 'diff')) return;
  const dir = tmp('chunks-tee');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  mkdirSync(join(src, 'd'), { recursive: true });
  // Large files (direct writes from the chunks, several in flight) and small ones (gathered copies) mixed.
  for (let i = 0; i < 6; i++) writeFileSync(join(src, `big${i}`), prng((3 + i) * MiB + 123 * i, 100 + i));
  for (let i = 0; i < 300; i++) writeFileSync(join(src, 'd', `s${i}`), prng(100 + ((i * 977) % 9000), 1000 + i));
  const tar = join(dir, 'p.tar');
  execFileSync('tar', ['-cf', tar, '--format=gnu', '--sort=name', '--owner=0', '--group=0', '-C', src, '.']);

  t.deepEqual(await teeIntoTwoSlots(dir, tar, src, undefined), ['', ''], `default ring (${DEFAULT_BUFFERS})`);
  // The same pipeline with a ring below its holding depth corrupts a slot: the poison check would catch a broken rule.
  const broken = await teeIntoTwoSlots(dir, tar, src, 3);
  t.true(broken.some((d) => d !== ''), 'a 3-buffer ring must show poisoned data');
});
