// 4096-byte sectors and block devices, through loop devices (root only; skipOrFail otherwise: fails in strict mode).
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { assertAgreesWithSfdisk, detach, losetup, loopPartition, needTools, run, scratch, sh, sha256 } from './gpt-helpers.js';

const s = scratch();
test.after.always(() => s.cleanup());

for (const [label, args] of [
  ['default', []],
  ['custom', ['--esp-size', '40M', '--secret-size', '4M', '--slot-size', '300M']],
] as const) {
  test(`${label} layout, 4096-byte sectors: sgdisk -v on a 4K loop device finds no problems; sfdisk agrees`, async (t) => {
    if (!needTools(t, 'sgdisk', 'sfdisk')) return;
    const img = join(s.dir, `4k-${label}.img`);
    const c = await runCli(['create', '--layout-only', img, '--sector-size', '4096', '--seed', label, ...args]);
    t.is(c.code, 0, c.stderr);
    const shown = await runCli(['show', img, '--json']);
    t.is(shown.code, 0, shown.stderr);
    t.is(shown.json.sectorSize, 4096);
    t.is(shown.json.firstUsableLba, 6);
    for (const p of shown.json.partitions) t.is((p.firstLba * 4096) % (1 << 20), 0);
    const loop = losetup(t, img, 4096);
    if (!loop) return;
    try {
      const v = run('sgdisk', ['-v', loop]);
      t.regex(v.out, /No problems found/, v.out + v.err);
      const sf = JSON.parse(sh('sfdisk', ['--json', loop]));
      t.is(sf.partitiontable.sectorsize, 4096);
      assertAgreesWithSfdisk(t, sf, shown.json);
      // show on the block device itself (sector size from sysfs)
      const onDev = await runCli(['show', loop, '--json']);
      t.is(onDev.code, 0, onDev.stderr);
      t.deepEqual({ ...onDev.json, device: img }, shown.json);
    } finally {
      detach(loop);
    }
  });
}

test('4096-byte sectors, damaged primary header: show uses the backup; sgdisk -v sees a problem', async (t) => {
  if (!needTools(t, 'sgdisk')) return;
  const img = join(s.dir, '4k-damaged.img');
  t.is((await runCli(['create', '--layout-only', img, '--sector-size', '4096', '--esp-size', '8M', '--secret-size', '1M', '--slot-size', '16M'])).code, 0);
  sh('sh', ['-c', `printf 'XX' | dd of=${img} bs=1 seek=${4096 + 16} conv=notrunc status=none`]);
  const r = await runCli(['show', img, '--json']);
  t.is(r.code, 0, r.stderr);
  t.is(r.json.sectorSize, 4096);
  t.is(r.json.header, 'backup');
  t.is(r.json.partitions.length, 4);
  // Even with the primary's signature gone, the sector size is found from the backup.
  const wiped = join(s.dir, '4k-wiped.img');
  sh('cp', ['--sparse=always', img, wiped]);
  sh('sh', ['-c', `printf 'XXXXXXXX' | dd of=${wiped} bs=1 seek=4096 conv=notrunc status=none`]);
  const w = await runCli(['show', wiped, '--json']);
  t.is(w.code, 0, w.stderr);
  t.is(w.json.sectorSize, 4096);
  t.is(w.json.header, 'backup');
  const loop = losetup(t, img, 4096);
  if (!loop) return;
  try {
    const v = run('sgdisk', ['-v', loop]);
    t.regex(v.out + v.err, /corrupt GPT|Main header: ERROR/);
  } finally {
    detach(loop);
  }
});

test('block device: layout larger than the device is refused with nothing written; a fitting layout fills it', async (t) => {
  if (!needTools(t, 'sgdisk')) return;
  const img = join(s.dir, 'dev64.img');
  sh('truncate', ['-s', '64M', img]);
  sh('sh', ['-c', `printf 'precious' | dd of=${img} bs=1 seek=1000 conv=notrunc status=none`]);
  const loop = losetup(t, img, 512);
  if (!loop) return;
  try {
    const before = await sha256(loop);
    const r = await runCli(['create', '--layout-only', loop]);
    t.is(r.code, 1);
    t.regex(r.stderr, /^diskimg: layout needs 3491758080 bytes \(3\.3 GiB\) but the disk is 67108864 bytes/);
    t.is(r.stderr.trimEnd().split('\n').length, 1);
    const r2 = await runCli(['create', '--layout-only', loop, '--sector-size', '4096']);
    t.is(r2.code, 1);
    t.regex(r2.stderr, /512-byte sectors/);
    t.is(await sha256(loop), before);

    const ok = await runCli(['create', '--layout-only', loop, '--esp-size', '8M', '--secret-size', '1M', '--slot-size', '20M', '--json']);
    t.is(ok.code, 0, ok.stderr);
    t.is(ok.json.target, 'block-device');
    t.is(ok.json.totalSectors, 131072);
    t.is(ok.json.backupHeader.lba, 131071);
    t.regex(run('sgdisk', ['-v', loop]).out, /No problems found/);
  } finally {
    detach(loop);
  }
});

test('block device with a mounted partition (its node from losetup -P or partx -a): create refuses, nothing written', async (t) => {
  if (!needTools(t, 'mkfs.ext4', 'mount', 'umount')) return;
  const img = join(s.dir, 'mounted.img');
  t.is((await runCli(['create', '--layout-only', img, '--esp-size', '8M', '--secret-size', '4M', '--slot-size', '16M'])).code, 0);
  const loop = losetup(t, img, 512, true);
  if (!loop) return;
  const mnt = mkdtempSync(join(s.dir, 'mnt-'));
  let mounted = false;
  try {
    // A mounted *partition* (the case that matters): its node from losetup -P or partx -a.
    const target = loopPartition(t, loop, 2);
    if (!target) return;
    const mk = run('mkfs.ext4', ['-q', '-F', target]);
    t.is(mk.code, 0, `mkfs.ext4 ${target}: ${mk.err}`);
    // read-only so the filesystem itself does not change the device under our hash
    const m = run('mount', ['-o', 'ro', target, mnt]);
    t.is(m.code, 0, `mount ${target}: ${m.err}`);
    if (m.code !== 0) return;
    mounted = true;
    const before = await sha256(loop);
    const r = await runCli(['create', '--layout-only', loop, '--esp-size', '8M', '--secret-size', '4M', '--slot-size', '16M']);
    t.is(r.code, 1);
    t.is(r.stderr, `diskimg: ${loop}: in use (${target} on ${mnt}); unmount it first\n`);
    t.is(await sha256(loop), before);
  } finally {
    if (mounted) run('umount', [mnt]);
    run('partx', ['-d', loop]);
    detach(loop);
    rmSync(mnt, { recursive: true, force: true });
  }
});
