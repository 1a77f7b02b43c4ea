// findBootDisk over a fake /sys/class/block whose "devices" are image files: one psyopsOS disk is
// found with its partitions; none or two are errors that list what was seen.
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from './build.js';
import { findBootDisk } from './boot-disk.js';

const dir = mkdtempSync(join(tmpdir(), 'diskimg-bootdisk-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function fakeBlock(disks: string[]): { sysBlock: string; devDir: string } {
  const root = mkdtempSync(join(dir, 'sys-'));
  for (const d of disks) {
    mkdirSync(join(root, 'block', d), { recursive: true });
    writeFileSync(join(root, 'block', d, 'size'), '2048\n');
  }
  mkdirSync(join(root, 'block', 'sda1'));
  writeFileSync(join(root, 'block', 'sda1', 'partition'), '1\n'); // a partition: never a candidate
  return { sysBlock: join(root, 'block'), devDir: join(root, 'dev') };
}

test('one psyopsOS disk among others is found; none or two is an error listing them', async (t) => {
  const os = join(dir, 'os');
  mkdirSync(os);
  writeFileSync(join(os, 'kernel'), 'k');
  writeFileSync(join(os, 'initramfs'), 'i');
  const tar = join(dir, 'os.tar');
  const { spawnSync } = await import('node:child_process');
  spawnSync('tar', ['-C', os, '-cf', tar, '.']);
  const img = join(dir, 'disk.img');
  await buildImage({ output: img, osTar: tar, noVerify: true, espSize: '33M', secretSize: '8M', slotSize: '8M', seed: 'bd' });
  const f = fakeBlock(['sdb', 'sdc', 'loop0']);
  mkdirSync(f.devDir);
  copyFileSync(img, join(f.devDir, 'sdc'));
  writeFileSync(join(f.devDir, 'sdb'), Buffer.alloc(1 << 20)); // blank disk
  const r = await findBootDisk({ ...f, cmdline: 'BOOT_IMAGE=/kernel psyopsos=psyopsOS-B quiet' });
  t.is(r.disk, join(f.devDir, 'sdc'));
  t.deepEqual(r.partitions, [
    { label: 'PSYOPSOSEFI', number: 1 },
    { label: 'psyops-secret', number: 2 },
    { label: 'psyopsOS-A', number: 3 },
    { label: 'psyopsOS-B', number: 4 },
  ]);
  t.is(r.booted, 'psyopsOS-B');
  copyFileSync(img, join(f.devDir, 'sdb'));
  await t.throwsAsync(findBootDisk(f), { message: /several psyopsOS disks found \(.*sdb, .*sdc\)/ });
  rmSync(join(f.devDir, 'sdb'));
  rmSync(join(f.devDir, 'sdc'));
  await t.throwsAsync(findBootDisk(f), { message: /no psyopsOS boot disk found \(looked at .*loop0, .*sdb, .*sdc\)/ });
});
