import test from 'ava';
import { makeEntropy, InputError } from '@diskimg/partitions/internal';
import { MemoryDevice } from '../device/memory.js';
import { FaultDevice } from '../device/fault.js';
import { psyopsLayout, PSYOPS_NAMES } from './layout.js';
import { writePartitionTable } from './write.js';
import { findPartition, openDisk, summarizeDisk } from './disk.js';

const SMALL = { espSize: '8M', secretSize: '1M', slotSize: '16M' };

for (const sectorSize of [512, 4096]) {
  test(`${sectorSize}: psyopsOS layout written and read back; regions are the partitions`, async (t) => {
    const plan = psyopsLayout({ ...SMALL, sectorSize });
    t.deepEqual(plan.partitions.map((p) => p.name), ['PSYOPSOSEFI', 'psyops-secret', 'psyopsOS-A', 'psyopsOS-B']);
    const dev = new MemoryDevice(plan.totalSize, sectorSize);
    const spec = await writePartitionTable(dev, plan, makeEntropy('t'));
    const disk = await openDisk(dev);
    const s = summarizeDisk(disk);
    t.is(s.header, 'primary');
    t.is(s.diskGuid, spec.diskGuid);
    t.deepEqual(s.partitions.map((p) => [p.typeAlias, p.offsetBytes, p.sizeBytes]), [
      ['esp', 1 << 20, 8 << 20],
      ['linux', 9 << 20, 1 << 20],
      ['linux', 10 << 20, 16 << 20],
      ['linux', 26 << 20, 16 << 20],
    ]);
    const a = await findPartition(disk, PSYOPS_NAMES.a);
    const r = a.region();
    t.is(r.start, 10 << 20);
    t.is(r.size, 16 << 20);
    await t.throwsAsync(findPartition(disk, 'nope'), { instanceOf: InputError, message: /no partition labelled "nope"/ });
    // The label probe is asked first: a filesystem label beats a GPT name.
    const probed = await findPartition(disk, 'psyopsOS-A', async (p) => (p.number === 4 ? 'psyopsOS-A' : undefined));
    t.is(probed.number, 4);
  });
}

test('on a zeroed target only sectors that hold data are written (the image stays sparse)', async (t) => {
  const plan = psyopsLayout(SMALL);
  const dev = new FaultDevice(new MemoryDevice(plan.totalSize, 512));
  await writePartitionTable(dev, plan, makeEntropy('t'), { assumeZeroed: true });
  const last = plan.totalSectors - 1;
  // MBR+header+first entry sector in one run; the backup array's first sector; the backup header.
  t.deepEqual(dev.log.map((w) => [w.offset / 512, w.length / 512]), [[0, 1], [1, 1], [2, 1], [last - 32, 1], [last, 1]]);
  const dev2 = new FaultDevice(new MemoryDevice(plan.totalSize, 512));
  await writePartitionTable(dev2, plan, makeEntropy('t'));
  t.deepEqual(dev2.log.map((w) => [w.offset / 512, w.length / 512]), [[0, 1], [1, 1], [2, 32], [last - 32, 32], [last, 1]]);
});

test('a device that does not match the plan is refused before writing', async (t) => {
  const plan = psyopsLayout(SMALL);
  const dev = new FaultDevice(new MemoryDevice(plan.totalSize + 4096, 512));
  await t.throwsAsync(writePartitionTable(dev, plan, makeEntropy('t')), { instanceOf: InputError });
  const dev4k = new FaultDevice(new MemoryDevice(plan.totalSize, 4096));
  await t.throwsAsync(writePartitionTable(dev4k, plan, makeEntropy('t')), { instanceOf: InputError });
  t.is(dev.writes + dev4k.writes, 0);
});

test('blank and MBR-only devices are InputErrors naming the fix', async (t) => {
  await t.throwsAsync(openDisk(new MemoryDevice(1 << 20)), { instanceOf: InputError, message: /no partition table found/ });
  const mbr = new MemoryDevice(1 << 20);
  mbr.data[510] = 0x55;
  mbr.data[511] = 0xaa;
  mbr.data[446 + 4] = 0x83;
  await t.throwsAsync(openDisk(mbr), { instanceOf: InputError, message: /MBR \(DOS\) partition table, not GPT/ });
});
