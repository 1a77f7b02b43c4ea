// inspectDisk never throws for what is inside the partitions: an unformatted (layout-only) disk
// and a disk without psyopsOS partitions are described, with the reason for each missing part.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createImage } from '@diskimg/diskimage/internal';
import { inspectDisk } from './inspect.js';
import { needTools } from '../../../test/helpers/skip.js';

const dir = mkdtempSync(join(tmpdir(), 'diskimg-inspect-unit-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('layout-only disk: every filesystem unknown, slots and ESP report why, nothing throws', async (t) => {
  const img = join(dir, 'layout.img');
  await createImage({ output: img, espSize: '33M', secretSize: '1M', slotSize: '8M', seed: 'inspect' });
  const r = await inspectDisk(img);
  t.deepEqual(r.partitions.map((p) => p.filesystem), [{ type: 'unknown' }, { type: 'unknown' }, { type: 'unknown' }, { type: 'unknown' }]);
  t.deepEqual(r.partitions.map((p) => p.name), ['PSYOPSOSEFI', 'psyops-secret', 'psyopsOS-A', 'psyopsOS-B']);
  t.like(r.slots[0], { slot: 'a', partition: 3, signature: null, version: null });
  t.is(r.slots[0]!.error, 'psyopsOS-A (partition 3): no FAT32 or ext4 filesystem found (unformatted or damaged)');
  t.like(r.esp, { partition: 1, signature: null, grubCfg: null, grubenv: null, nextBoot: null });
  t.regex(r.esp.error ?? '', /PSYOPSOSEFI \(partition 1\): no FAT32 or ext4 filesystem/);
});

test('a GPT disk without psyopsOS partitions (sgdisk): slots and ESP are "no partition labelled …"', async (t) => {
  if (!needTools(t, 'sgdisk')) return;
  const img = join(dir, 'other.img');
  writeFileSync(img, '');
  spawnSync('truncate', ['-s', '20M', img]);
  const s = spawnSync('sgdisk', ['-n1:1M:+8M', '-t1:8300', '-c1:data', img]);
  t.is(s.status, 0);
  const r = await inspectDisk(img);
  t.is(r.partitions.length, 1);
  t.deepEqual(r.slots.map((x) => [x.partition, x.error]), [[null, 'no partition labelled psyopsOS-A'], [null, 'no partition labelled psyopsOS-B']]);
  t.is(r.esp.error, 'no partition labelled PSYOPSOSEFI');
});
