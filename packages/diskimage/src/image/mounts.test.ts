import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetyError } from '@diskimg/partitions/internal';
import { assertNotMounted, mountsOf } from './mounts.js';

/** A fake /sys/class/block with sdz (partitions sdz1, sdz2; dm-7 stacked on sdz2) and sdy. */
function fakeSystem(mounts: string, swaps = 'Filename Type Size Used Priority\n') {
  const root = mkdtempSync(join(tmpdir(), 'mounts-'));
  const sys = join(root, 'block');
  for (const d of ['sdz/sdz1', 'sdz/sdz2', 'sdz/holders', 'sdz1/holders', 'sdz2/holders/dm-7', 'dm-7/holders', 'sdy/holders']) mkdirSync(join(sys, d), { recursive: true });
  writeFileSync(join(sys, 'sdz/sdz1/partition'), '1\n');
  writeFileSync(join(sys, 'sdz/sdz2/partition'), '2\n');
  writeFileSync(join(root, 'mounts'), mounts);
  writeFileSync(join(root, 'swaps'), swaps);
  return { where: { mounts: join(root, 'mounts'), swaps: join(root, 'swaps'), sysBlock: sys }, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

test('a mounted partition, a stacked device or swap on the disk counts as in use; other disks do not', (t) => {
  const f = fakeSystem('/dev/sdy1 / ext4 rw 0 0\n/dev/sdz1 /boot\\040efi vfat rw 0 0\n/dev/dm-7 /srv ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n', 'Filename Type\n/dev/sdz2 partition 100 0 -2\n');
  try {
    t.deepEqual(mountsOf('/dev/sdz', f.where), ['/dev/sdz1 on /boot efi', '/dev/dm-7 on /srv', '/dev/sdz2 (swap)']);
    t.deepEqual(mountsOf('/dev/sdx', f.where), []);
    t.throws(() => assertNotMounted('/dev/sdz', f.where), { instanceOf: SafetyError, message: /^\/dev\/sdz: in use \(.*\); unmount it first$/ });
  } finally {
    f.cleanup();
  }
});

test('mountinfo: a mount found by major:minor whatever its source is called (bind mounts, /dev/root)', (t) => {
  const f = fakeSystem('/dev/root / ext4 rw 0 0\n');
  try {
    writeFileSync(join(f.where.sysBlock, 'sdz/sdz1/dev'), '8:17\n');
    writeFileSync(join(f.where.sysBlock, 'sdz1/dev'), '8:17\n');
    const info = join(f.where.sysBlock, '..', 'mountinfo');
    writeFileSync(
      info,
      '22 1 8:17 / / rw,relatime shared:1 - ext4 /dev/root rw\n' +
        '40 22 8:17 /srv/data /mnt/bind rw,relatime shared:1 - ext4 /dev/root rw\n' +
        '41 22 8:33 / /other rw - ext4 /dev/sdc1 rw\n',
    );
    t.deepEqual(mountsOf('/dev/sdz', { ...f.where, mountinfo: info }), ['/dev/root on /', '/dev/root on /mnt/bind']);
    t.deepEqual(mountsOf('/dev/sdz', f.where), [], 'without mountinfo the renamed source is not recognised');
  } finally {
    f.cleanup();
  }
});
