import test from 'ava';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { InputError, makeEntropy } from '@diskimg/partitions/internal';
import { FileDevice } from '../device/file.js';
import { Region } from '../device/region.js';
import { readDirTree } from '../source/dir.js';
import { readTarTree } from '../source/tar.js';
import { createFat32, populateFat32 } from './populate.js';
import { formatFat32, planFat32 } from './format.js';
import { Fat32Volume } from './volume.js';
import { fsckProblems, has, makeTree, run, sha256File, tmp } from './test-util.js';

const EPOCH = 1700000000;
const MiB = 2 ** 20;

async function build(img: string, src: string, sectorSize: number, sizeMiB: number, seed = 'seed') {
  const dev = await FileDevice.create(img, sizeMiB * MiB, sectorSize);
  try {
    await createFat32(dev, readDirTree(src), { label: 'PSYOPSOSEFI', entropy: makeEntropy(seed), sourceDateEpoch: EPOCH, now: EPOCH });
  } finally {
    await dev.close();
  }
}

for (const [ss, size] of [[512, 40], [4096, 260]] as const) {
  test(`format + populate (${ss}-byte sectors): fsck.fat clean, mtools and blkid read it`, async (t) => {
    const src = makeTree();
    const d = tmp();
    const img = join(d, 'esp.img');
    await build(img, src, ss, size);
    t.deepEqual(fsckProblems(img), []);
    // mtools copies the whole tree out; diff -r against the source must be empty.
    const out = join(d, 'out');
    mkdirSync(out);
    const m = run('mcopy', ['-s', '-n', '-i', img, '::/', out]);
    t.is(m.status, 0, m.out);
    const diff = run('diff', ['-r', src, out]);
    t.is(diff.status, 0, diff.out);
    const dir = run('mdir', ['-i', img, '::/']);
    t.regex(dir.out, /Volume in drive : is PSYOPSOSEFI/);
    t.regex(dir.out, /MAKEFILE\s+5 2023-11-14\s+22:13\s+Makefile/);
    if (has('blkid')) {
      const b = run('blkid', ['-o', 'value', '-s', 'LABEL', img]);
      t.is(b.out.trim(), 'PSYOPSOSEFI');
    }
    // Our reader agrees with the source too.
    const dev = await FileDevice.open(img);
    const vol = await Fat32Volume.open(dev);
    t.deepEqual(await vol.readFileBuffer('/efi/boot/bootx64.efi'), readFileSync(join(src, 'EFI/BOOT/BOOTX64.EFI')));
    t.is((await vol.stat('/Makefile')).mtime, EPOCH);
    await dev.close();
    rmSync(d, { recursive: true, force: true });
    rmSync(src, { recursive: true, force: true });
  });
}

/** Why the kernel cannot loop-mount FAT here (not root, or no vfat in this kernel), or undefined. */
function loopMountUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  const fsList = (() => { try { return readFileSync('/proc/filesystems', 'utf8'); } catch { return ''; } })();
  if (/\bvfat\b/.test(fsList)) return undefined;
  // Not loaded: a module the kernel can load on mount will do.
  if (run('modprobe', ['-n', 'vfat']).status === 0) return undefined;
  return 'this kernel has no vfat (not in /proc/filesystems, no module)';
}
const noLoop = loopMountUnavailable();

for (const [ss, size] of [[512, 40], [4096, 260]] as const) {
  // Reported as skipped (not as a pass) where the kernel cannot mount it.
  const loopTest = noLoop ? test.skip : test;
  loopTest(`loop mount (${ss}-byte sectors): the kernel's vfat reads the tree we wrote${noLoop ? ` — skipped: ${noLoop}` : ''}`, async (t) => {
    const src = makeTree();
    const d = tmp();
    const img = join(d, 'esp.img');
    await build(img, src, ss, size);
    const mnt = join(d, 'mnt');
    mkdirSync(mnt);
    const mo = run('mount', ['-o', 'loop,ro', '-t', 'vfat', img, mnt]);
    t.is(mo.status, 0, mo.out);
    if (mo.status === 0) {
      const dm = run('diff', ['-r', src, mnt]);
      run('umount', [mnt]);
      t.is(dm.status, 0, dm.out);
    }
    rmSync(d, { recursive: true, force: true });
    rmSync(src, { recursive: true, force: true });
  });
}

test('cluster size and minimum size follow mkfs.fat; too small is refused with the smallest valid size', (t) => {
  // dosfstools 4.2 for the same sizes: 512 B clusters up to 260 MiB, 4 KiB above; never below a sector.
  t.is(planFat32(40 * MiB, 512).sectorsPerCluster, 1);
  t.is(planFat32(128 * MiB, 512).sectorsPerCluster, 1);
  t.is(planFat32(300 * MiB, 512).sectorsPerCluster, 8);
  t.is(planFat32(300 * MiB, 4096).sectorsPerCluster, 1);
  t.throws(() => planFat32(32 * MiB, 512), { instanceOf: InputError, message: /at least 33 MiB/ });
  t.throws(() => planFat32(128 * MiB, 4096), { instanceOf: InputError, message: /at least 257 MiB \(with 4096-byte sectors\)/ });
  t.notThrows(() => planFat32(33 * MiB, 512));
  t.notThrows(() => planFat32(257 * MiB, 4096));
  if (!has('mkfs.fat')) return;
  const d = tmp();
  for (const mib of [40, 300]) {
    const img = join(d, `m${mib}.img`);
    run('mkfs.fat', ['-C', '-F', '32', img, String(mib * 1024)]);
    const spc = readFileSync(img).subarray(0, 512)[13];
    t.is(planFat32(mib * MiB, 512).sectorsPerCluster, spc, `${mib} MiB`);
  }
  rmSync(d, { recursive: true, force: true });
});

test('tar and directory sources give the same bytes; same seed + SOURCE_DATE_EPOCH is deterministic', async (t) => {
  const src = makeTree();
  const d = tmp();
  await build(join(d, 'a.img'), src, 512, 40);
  await build(join(d, 'b.img'), src, 512, 40);
  t.is(sha256File(join(d, 'a.img')), sha256File(join(d, 'b.img')));
  await build(join(d, 'c.img'), src, 512, 40, 'other-seed');
  t.not(sha256File(join(d, 'a.img')), sha256File(join(d, 'c.img')), 'volume ID follows the seed');
  // The tar stream of the same tree (sorted like the directory walk) gives the same image.
  const tarBytes = execFileSync('tar', ['-C', src, '--sort=name', '-cf', '-', '.'], { maxBuffer: 64 * MiB });
  const dev = await FileDevice.create(join(d, 't.img'), 40 * MiB);
  await createFat32(dev, readTarTree(Readable.from([tarBytes]), 'esp.tar'), { label: 'PSYOPSOSEFI', entropy: makeEntropy('seed'), sourceDateEpoch: EPOCH, now: EPOCH });
  await dev.close();
  t.deepEqual(fsckProblems(join(d, 't.img')), []);
  t.is(sha256File(join(d, 't.img')), sha256File(join(d, 'a.img')));
  rmSync(d, { recursive: true, force: true });
  rmSync(src, { recursive: true, force: true });
});

test('bad input: too-large payload, unholdable names, case clashes, symlinks', async (t) => {
  const d = tmp();
  const mk = async (name: string) => {
    const dev = await FileDevice.create(join(d, name), 34 * MiB);
    await formatFat32(dev, { label: 'ESP', entropy: makeEntropy('x'), now: EPOCH });
    return dev;
  };
  const big = tmp();
  writeFileSync(join(big, 'huge.bin'), Buffer.alloc(40 * MiB, 1));
  let dev = await mk('a.img');
  const e1 = await t.throwsAsync(populateFat32(dev, readDirTree(big), { inputName: 'esp-dir' }), { instanceOf: InputError });
  t.regex(e1!.message, /^esp-dir: payload needs at least 40 MiB \(at huge\.bin\), volume has 3[23](\.\d)? MiB free/);
  await dev.close();
  t.deepEqual(fsckProblems(join(d, 'a.img')), [], 'metadata untouched after the refusal');

  const weird = tmp();
  writeFileSync(join(weird, 'a:b'), 'x');
  dev = await mk('b.img');
  await t.throwsAsync(populateFat32(dev, readDirTree(weird), { inputName: 'esp-dir' }), { instanceOf: InputError, message: /FAT cannot hold ":"/ });
  await dev.close();

  const clash = tmp();
  writeFileSync(join(clash, 'README'), 'x');
  writeFileSync(join(clash, 'readme'), 'y');
  dev = await mk('c.img');
  await t.throwsAsync(populateFat32(dev, readDirTree(clash)), { instanceOf: InputError, message: /case-insensitive/ });
  await dev.close();

  const links = tmp();
  writeFileSync(join(links, 'f'), 'x');
  symlinkSync('f', join(links, 'l'));
  dev = await mk('d.img');
  await t.throwsAsync(populateFat32(dev, readDirTree(links)), { instanceOf: InputError, message: /"l": FAT cannot hold a symlink/ });
  await dev.close();
  dev = await mk('e.img');
  const skipped: string[] = [];
  await populateFat32(dev, readDirTree(links), { onSkip: (p) => skipped.push(p) });
  await dev.close();
  t.deepEqual(skipped, ['l']);
  t.deepEqual(fsckProblems(join(d, 'e.img')), []);
  for (const x of [d, big, weird, clash, links]) rmSync(x, { recursive: true, force: true });
});

test('hard links become copies; archives without directory entries get implicit directories; a partition region at an offset', async (t) => {
  const src = tmp('fat32src-');
  mkdirSync(join(src, 'EFI/BOOT'), { recursive: true });
  writeFileSync(join(src, 'EFI/BOOT/BOOTX64.EFI'), Buffer.alloc(5000, 3));
  linkSync(join(src, 'EFI/BOOT/BOOTX64.EFI'), join(src, 'EFI/BOOT/grubx64.efi'));
  const d = tmp();
  // The volume lives inside a disk image at 1 MiB, as a partition does.
  const img = join(d, 'disk.img');
  const disk = await FileDevice.create(img, 42 * MiB);
  const part = new Region(disk, MiB, 40 * MiB, 'PSYOPSOSEFI');
  const vol = await createFat32(part, readDirTree(src), { label: 'PSYOPSOSEFI', entropy: makeEntropy('r'), sourceDateEpoch: EPOCH, now: EPOCH });
  t.deepEqual(await vol.readFileBuffer('/EFI/BOOT/grubx64.efi'), Buffer.alloc(5000, 3));
  await disk.close();
  const raw = readFileSync(img);
  t.true(raw.subarray(0, MiB).every((b) => b === 0) && raw.subarray(41 * MiB).every((b) => b === 0), 'nothing written outside the partition');
  const m = run('mdir', ['-b', '-i', `${img}@@${MiB}`, '::/EFI/BOOT']);
  t.is(m.status, 0, m.out);
  t.deepEqual(m.out.trim().split('\n').sort(), ['::/EFI/BOOT/BOOTX64.EFI', '::/EFI/BOOT/grubx64.efi']);
  const out = join(d, 'g.efi');
  t.is(run('mcopy', ['-i', `${img}@@${MiB}`, '::/EFI/BOOT/grubx64.efi', out]).status, 0);
  t.deepEqual(readFileSync(out), Buffer.alloc(5000, 3));
  writeFileSync(join(d, 'part.img'), raw.subarray(MiB, 41 * MiB));
  t.deepEqual(fsckProblems(join(d, 'part.img')), []);

  // Only file entries in the archive: parents are created implicitly.
  const tarBytes = execFileSync('tar', ['-C', src, '-cf', '-', 'EFI/BOOT/BOOTX64.EFI']);
  const dev = await FileDevice.create(join(d, 't.img'), 40 * MiB);
  const v2 = await createFat32(dev, readTarTree(Readable.from([tarBytes]), 'esp.tar'), { sourceDateEpoch: EPOCH });
  t.is((await v2.stat('/efi/boot/bootx64.efi')).size, 5000);
  await dev.close();
  t.deepEqual(fsckProblems(join(d, 't.img')), []);
  rmSync(d, { recursive: true, force: true });
  rmSync(src, { recursive: true, force: true });
});

test('a host file that grew or shrank between the walk and the copy is an InputError naming it (TreeEntry.open path)', async (t) => {
  const d = tmp();
  const f = join(d, 'f.bin');
  writeFileSync(f, Buffer.alloc(3000, 7));
  const [, entry] = await (async () => {
    const all = [];
    for await (const e of readDirTree(d)) if (e.path === '' || e.path === 'f.bin') all.push(e);
    return all;
  })();
  t.truthy(entry.open, 'readDirTree offers open() for regular files');
  for (const [declared, re] of [[2999, /more data than its declared size of 2999 bytes \(file grew/], [3001, /got 3000 bytes, expected 3001 \(file shrank/]] as const) {
    const dev = await FileDevice.create(join(d, `esp-${declared}.img`), 40 * MiB);
    await formatFat32(dev, { entropy: makeEntropy('g') });
    async function* tree() {
      yield { ...entry, size: declared };
    }
    const e = await t.throwsAsync(populateFat32(dev, tree(), { inputName: 'esp-dir' }), { instanceOf: InputError, message: re });
    t.regex(e!.message, /^esp-dir: f\.bin: /);
    await dev.close();
  }
  rmSync(d, { recursive: true, force: true });
});
