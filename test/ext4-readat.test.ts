// Ext4Reader.readAt / Ext4FileDevice (what a SquashFS image inside a slot is read through): random
// ranges of files in images made by mkfs.ext4 -d (extents with 4 KiB blocks; block maps with 1 KiB
// blocks; inline_data) equal the source files' bytes, holes included.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ext4FileDevice, FileDevice, openExt4 } from '../packages/diskimage/src/index.js';
import { needTools } from './helpers/skip.js';
import { bytes } from './helpers/squashfs.js';

const work = mkdtempSync(join(tmpdir(), 'ext4-readat-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

function source(): string {
  const src = join(work, 'src');
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'big'), bytes('big', 3 * 1048576 + 17));
  writeFileSync(join(src, 'tiny'), 'tiny');
  const fd = openSync(join(src, 'sparse'), 'w');
  writeSync(fd, bytes('a', 5000), 0, 5000, 0);
  writeSync(fd, bytes('b', 70000), 0, 70000, 9 * 1048576 + 3);
  writeSync(fd, Buffer.from('end'), 0, 3, 20 * 1048576 - 3);
  closeSync(fd);
  return src;
}

for (const [name, args] of [
  ['extents, 4 KiB blocks', ['-b', '4096']],
  ['block maps, 1 KiB blocks', ['-b', '1024', '-O', '^extent,^64bit,^flex_bg']],
  ['inline_data', ['-b', '4096', '-O', 'inline_data']],
] as const) {
  test(`ext4 readAt: ${name}: random ranges equal the source (mkfs.ext4 -d)`, async (t) => {
    if (!needTools(t, 'mkfs.ext4')) return;
    const src = source();
    const img = join(work, `${name.replace(/\W+/g, '_')}.img`);
    const r = spawnSync('mkfs.ext4', ['-q', '-F', '-d', src, ...args, img, '64M'], { env: { ...process.env, E2FSPROGS_FAKE_TIME: '1700000000' } });
    t.is(r.status, 0, r.stderr?.toString());
    const dev = await FileDevice.open(img);
    try {
      const fs = await openExt4(dev);
      let seed = 7;
      const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
      for (const f of ['big', 'tiny', 'sparse']) {
        const want = readFileSync(join(src, f));
        const ino = await fs.lookup(`/${f}`);
        const view = new Ext4FileDevice(fs, ino, await fs.inode(ino), f);
        t.is(view.size, want.length);
        const ranges: [number, number][] = [[0, want.length], [want.length - 1, 1], [0, 0]];
        for (let k = 0; k < 40; k++) {
          const o = Math.floor(rnd() * want.length);
          ranges.push([o, Math.min(want.length - o, Math.floor(rnd() * 300000))]);
        }
        for (const [o, n] of ranges) {
          const buf = Buffer.alloc(n, 0xee);
          await view.read(o, buf);
          if (!buf.equals(want.subarray(o, o + n))) t.fail(`${f}: read(${o}, ${n}) differs`);
        }
        await t.throwsAsync(view.read(want.length, Buffer.alloc(1)), { message: /past the end/ });
      }
    } finally {
      await dev.close();
    }
  });
}
