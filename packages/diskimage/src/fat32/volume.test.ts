import test from 'ava';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { FormatError, InputError, UsageError, makeEntropy } from '@diskimg/partitions/internal';
import { FileDevice } from '../device/file.js';
import { MemoryDevice } from '../device/memory.js';
import { readDirTree } from '../source/dir.js';
import { createFat32 } from './populate.js';
import { Fat32Volume } from './volume.js';
import { fsckProblems, has, makeTree, run, sha256, tmp } from './test-util.js';

const MiB = 2 ** 20;
const EPOCH = 1700000000;

/** Every regular file under `dir`, as volume paths. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    for (const e of require_readdir(p)) {
      const a = join(p, e.name);
      if (e.isDirectory()) walk(a);
      else out.push('/' + relative(dir, a));
    }
  };
  walk(dir);
  return out.sort();
}
import { readdirSync } from 'node:fs';
import { needTools } from '../../../../test/helpers/skip.js';
const require_readdir = (p: string) => readdirSync(p, { withFileTypes: true });

async function walkVolume(vol: Fat32Volume, path = '/'): Promise<string[]> {
  const out: string[] = [];
  for (const e of await vol.readdir(path)) {
    const p = path === '/' ? `/${e.name}` : `${path}/${e.name}`;
    if (e.isDirectory) out.push(...(await walkVolume(vol, p)));
    else out.push(p);
  }
  return out.sort();
}

for (const ss of [512, 4096]) {
  test(`reads a volume made by mkfs.fat -F32 + mmd/mcopy byte-identically (${ss}-byte sectors)`, async (t) => {
    if (!needTools(t, 'mkfs.fat', 'mcopy')) return;
    const src = makeTree(ss === 512 ? 2 * MiB : 300_000);
    const d = tmp();
    const img = join(d, 'mk.img');
    const r = run('mkfs.fat', ['-C', '-F', '32', '-S', String(ss), '-n', 'UPSTREAM', img, String((ss === 512 ? 40 : 260) * 1024)]);
    t.is(r.status, 0, r.out);
    t.is(run('mmd', ['-i', img, '::/extra', '::/extra/Mixed Case Dir']).status, 0);
    const c = run('sh', ['-c', `cd ${src} && mcopy -s -i ${img} * .hidden ::/ && mcopy -i ${img} Makefile "::/extra/Mixed Case Dir/Über lang Näme.TXT"`]);
    t.is(c.status, 0, c.out);
    const dev = await FileDevice.open(img);
    const vol = await Fat32Volume.open(dev, { readOnly: ss === 4096 }); // both FAT paths: whole table and window
    t.is(vol.label, 'UPSTREAM');
    t.is(await vol.readLabel(), 'UPSTREAM');
    const files = listFiles(src);
    t.deepEqual(await walkVolume(vol), [...files, '/extra/Mixed Case Dir/Über lang Näme.TXT'].sort());
    for (const f of files) t.deepEqual(await vol.readFileBuffer(f), readFileSync(join(src, f)), f);
    // case-insensitive lookup, by long and by short name
    t.deepEqual(await vol.readFileBuffer('/GRUB/GRUB.CFG'), readFileSync(join(src, 'grub/grub.cfg')));
    t.deepEqual(await vol.readFileBuffer('/ALONGF~1.TXT'), readFileSync(join(src, 'A long file name with spaces.txt')));
    t.is((await vol.stat('/extra/mixed case dir/über lang näme.txt')).size, readFileSync(join(src, 'Makefile')).length);
    await dev.close();
    rmSync(d, { recursive: true, force: true });
    rmSync(src, { recursive: true, force: true });
  });
}

async function freshVolume(ss: number, src: string, dir: string): Promise<string> {
  const img = join(dir, 'v.img');
  const dev = await FileDevice.create(img, (ss === 512 ? 40 : 260) * MiB, ss);
  await createFat32(dev, readDirTree(src), { label: 'PSYOPSOSEFI', entropy: makeEntropy('s'), sourceDateEpoch: EPOCH, now: EPOCH });
  await dev.close();
  return img;
}

for (const ss of [512, 4096]) {
  test(`edits in place (${ss}-byte sectors) on our volume and on a mkfs.fat one: fsck.fat clean, mtools reads the result`, async (t) => {
    const src = makeTree();
    const d = tmp();
    const ours = await freshVolume(ss, src, d);
    const theirs = join(d, 'mk.img');
    run('mkfs.fat', ['-C', '-F', '32', '-S', String(ss), '-n', 'PSYOPSOSEFI', theirs, String((ss === 512 ? 40 : 260) * 1024)]);
    run('sh', ['-c', `cd ${src} && mcopy -s -i ${theirs} * .hidden ::/`]);
    for (const img of [ours, theirs]) {
      const dev = await FileDevice.open(img, { writable: true, sectorSize: ss });
      const vol = await Fat32Volume.open(dev);
      const newCfg = Buffer.from('set default=1\n'.repeat(500));
      await vol.replaceFile('/grub/grub.cfg', newCfg, { mtime: EPOCH });
      await vol.writeFile('/EFI/BOOT/new file with a long name.efi', Buffer.alloc(100_000, 7), { mtime: EPOCH });
      await vol.mkdir('/new/nested/dirs', { recursive: true, mtime: EPOCH });
      // grow a directory past one cluster
      for (let i = 0; i < 40; i++) await vol.writeFile(`/new/nested/dirs/entry with long name ${i}.txt`, Buffer.from(`${i}`), { mtime: EPOCH });
      await vol.unlink('/readme.md');
      await vol.unlink('/deep/a/b/c/d/e/leaf.TXT');
      await vol.unlink('/deep/a/b/c/d/e');
      await vol.rename('/Makefile', '/makefile'); // case-only rename in place
      await vol.rename('/UPPER.TXT', '/new/moved upper.txt');
      await vol.rename('/many', '/new/nested/many'); // moves a directory: ".." must follow
      await vol.writeFile('/psyopsESP.tar.minisig', Buffer.from('new sig\n'), { mtime: EPOCH }); // existing → replace
      await vol.rename('/MiXeD.Txt', '/empty'); // rename over an existing file
      await dev.close();
      t.deepEqual(fsckProblems(img), [], img);
      const out = join(d, `out-${img === ours ? 'ours' : 'theirs'}`);
      mkdirSync(out);
      t.is(run('mcopy', ['-s', '-n', '-i', img, '::/', out]).status, 0);
      t.deepEqual(readFileSync(join(out, 'grub/grub.cfg')), newCfg);
      t.deepEqual(readFileSync(join(out, 'EFI/BOOT/new file with a long name.efi')), Buffer.alloc(100_000, 7));
      t.is(readFileSync(join(out, 'new/nested/dirs/entry with long name 39.txt'), 'utf8'), '39');
      t.is(readFileSync(join(out, 'new/nested/many/file number 5.data'), 'utf8'), '5\n'.repeat(185));
      t.is(readFileSync(join(out, 'empty'), 'utf8'), 'mixed\n');
      t.is(readFileSync(join(out, 'psyopsESP.tar.minisig'), 'utf8'), 'new sig\n');
      t.is(readFileSync(join(out, 'makefile'), 'utf8'), 'all:\n');
      t.is(readFileSync(join(out, 'new/moved upper.txt'), 'utf8'), 'upper 8.3\n');
      t.false(run('mdir', ['-i', img, '::/readme.md']).status === 0);
      t.regex(run('mdir', ['-b', '-i', img, '::/']).out, /::\/makefile/);
    }
    rmSync(d, { recursive: true, force: true });
    rmSync(src, { recursive: true, force: true });
  });
}

test('refused edits leave the volume byte-identical', async (t) => {
  const src = makeTree();
  const d = tmp();
  const img = await freshVolume(512, src, d);
  const data = readFileSync(img);
  const before = sha256(data);
  const dev = new MemoryDevice(data.length, 512, Buffer.from(data));
  const vol = await Fat32Volume.open(dev);
  const free = vol.freeBytes;
  const e = await t.throwsAsync(vol.writeFile('/big.bin', Buffer.alloc(free + 1)), { instanceOf: InputError });
  t.regex(e!.message, /^\/big\.bin: needs \d+(\.\d)? MiB, volume has \d+(\.\d)? MiB free/);
  await t.throwsAsync(vol.replaceFile('/EFI/BOOT/BOOTX64.EFI', Buffer.alloc(free + 1)), { instanceOf: InputError, message: /needs/ });
  await t.throwsAsync(vol.writeFile('/bad:name', Buffer.from('x')), { instanceOf: InputError, message: /cannot hold ":"/ });
  await t.throwsAsync(vol.writeFile(`/${'x'.repeat(256)}`, Buffer.from('x')), { instanceOf: InputError, message: /at most 255/ });
  await t.throwsAsync(vol.mkdir('/grub'), { instanceOf: InputError, message: /already exists/ });
  await t.throwsAsync(vol.unlink('/deep'), { instanceOf: InputError, message: /not empty/ });
  await t.throwsAsync(vol.unlink('/nope'), { instanceOf: InputError });
  await t.throwsAsync(vol.rename('/deep', '/deep/a/inside'), { instanceOf: InputError, message: /into itself/ });
  await t.throwsAsync(vol.writeFile('/grub/grub.cfg/x', Buffer.from('x')), { instanceOf: InputError, message: /is a file/ });
  t.is(sha256(dev.data), before);
  // A corrupt boot sector is a one-line FormatError.
  const bad = Buffer.from(data);
  bad.writeUInt16LE(3, 11);
  await t.throwsAsync(Fat32Volume.open(new MemoryDevice(bad.length, 512, bad)), { instanceOf: FormatError, message: /^FAT32 boot sector: BPB_BytsPerSec 3/ });
  // A FAT16 volume made by mkfs.fat: "not FAT32", and the file is untouched.
  const f16 = join(d, 'f16.img');
  run('mkfs.fat', ['-C', '-F', '16', f16, String(20 * 1024)]);
  const h16 = sha256(readFileSync(f16));
  const dev16 = await FileDevice.open(f16, { writable: true });
  const err = await t.throwsAsync(Fat32Volume.open(dev16), { instanceOf: FormatError });
  t.regex(err!.message, /^FAT32 boot sector: not FAT32 .*FAT12\/16/);
  t.false(err!.message.includes('\n'));
  await dev16.close();
  t.is(sha256(readFileSync(f16)), h16);
  rmSync(d, { recursive: true, force: true });
  rmSync(src, { recursive: true, force: true });
});

test('read-only open reads through a small FAT window and refuses edits', async (t) => {
  const src = makeTree(3 * MiB);
  const d = tmp();
  const img = await freshVolume(4096, src, d);
  const inner = await FileDevice.open(img, { writable: true, sectorSize: 4096 });
  const g = (await Fat32Volume.open(inner, { readOnly: true })).geometry;
  let fatBytesRead = 0;
  let wrote = false;
  // the same device, counting FAT reads and any write
  const counting = Object.assign(Object.create(inner) as FileDevice, {
    read: (off: number, buf: Uint8Array) => {
      if (off >= g.fatOffset && off < g.fatOffset + g.numFats * g.fatBytes) fatBytesRead += buf.length;
      return inner.read(off, buf);
    },
    write: async () => {
      wrote = true;
    },
  });
  const vol = await Fat32Volume.open(counting, { readOnly: true });
  t.true(vol.readOnly);
  t.deepEqual(await vol.readFileBuffer('/EFI/BOOT/BOOTX64.EFI'), readFileSync(join(src, 'EFI/BOOT/BOOTX64.EFI')));
  t.is((await vol.readdir('/many')).length, 20);
  t.true(fatBytesRead > 0 && fatBytesRead < g.fatBytes, `read ${fatBytesRead} of ${g.fatBytes} FAT bytes`);
  await t.throwsAsync(vol.writeFile('/x', Buffer.from('x')), { instanceOf: UsageError, message: /read-only/ });
  await t.throwsAsync(vol.rename('/Makefile', '/Makefile2'), { instanceOf: UsageError });
  t.false(wrote);
  await inner.close();
  rmSync(d, { recursive: true, force: true });
  rmSync(src, { recursive: true, force: true });
});

for (const ss of [512, 4096]) {
  test(`files of 0, 1, c-1, c, c+1, 2c and 3c bytes (c = cluster size), created then replaced by other sizes: fsck.fat -n silent after each edit, mcopy reads each (${ss})`, async (t) => {
    if (!needTools(t, 'fsck.fat', 'mcopy')) return;
    const { formatFat32 } = await import('./format.js');
    const d = tmp();
    const img = join(d, 'v.img');
    const dev = await FileDevice.create(img, (ss === 512 ? 34 : 258) * MiB, ss);
    await formatFat32(dev, { label: 'EDGE', entropy: makeEntropy('edge'), now: EPOCH });
    const vol = await Fat32Volume.open(dev);
    const c = vol.geometry.clusterSize;
    const sizes = [0, 1, c - 1, c, c + 1, 2 * c, 3 * c];
    const problems: string[] = [];
    const check = (what: string) => {
      const p = fsckProblems(img);
      if (p.length) problems.push(`${what}: ${p.join(' | ')}`);
    };
    for (const [i, n] of sizes.entries()) {
      await vol.writeFile(`/f${i}`, Buffer.alloc(n, 0x41 + i), { mtime: EPOCH });
      check(`create /f${i} (${n} bytes)`);
    }
    for (const [i, n] of sizes.entries()) {
      const m = sizes[(i + 3) % sizes.length]!;
      await vol.replaceFile(`/f${i}`, Buffer.alloc(m, 0x61 + i), { mtime: EPOCH });
      check(`replace /f${i} (${n} → ${m} bytes)`);
    }
    await dev.close();
    t.deepEqual(problems, []);
    for (const [i] of sizes.entries()) {
      const m = sizes[(i + 3) % sizes.length]!;
      const r = run('mcopy', ['-n', '-i', img, `::/f${i}`, join(d, `out${i}`)]);
      t.is(r.status, 0, r.out);
      t.deepEqual(readFileSync(join(d, `out${i}`)), Buffer.alloc(m, 0x61 + i), `/f${i}`);
    }
    rmSync(d, { recursive: true, force: true });
  });
}
