import test from 'ava';
import fc from 'fast-check';
import { encodeGptDisk, guessSectorSize, readDiskTableFromBytes, type GptDiskTable } from './table.js';
import { planLayout, gptFromPlan } from './layout.js';
import { makeEntropy } from './entropy.js';
import { encodeMbr } from './mbr.js';
import { FormatError } from './errors.js';

/** A small GPT disk in memory (sparse layout: 8 MiB). */
function smallDisk(ss: 512 | 4096, seed = 'x'): Buffer {
  const plan = planLayout([{ name: 'one', type: 'esp', size: '2M' }, { name: 'two', type: 'linux', size: 'rest' }], { sectorSize: ss, totalSize: '8M' });
  const disk = Buffer.alloc(plan.totalSize);
  for (const w of encodeGptDisk(gptFromPlan(plan, makeEntropy(seed)))) w.bytes.copy(disk, w.lba * ss);
  return disk;
}

for (const ss of [512, 4096] as const) {
  test(`${ss}: encode then read gives the partitions from the primary`, async (t) => {
    const disk = smallDisk(ss);
    t.is(guessSectorSize(disk.subarray(0, 8192)), ss);
    // with the primary signature gone, the backup at the end still tells
    const noPrimary = Buffer.from(disk.subarray(0, 8192));
    noPrimary.fill(0, ss, ss + 8);
    t.is(guessSectorSize(noPrimary, disk.subarray(disk.length - 4096)), ss);
    const r = (await readDiskTableFromBytes(disk, ss)) as GptDiskTable;
    t.is(r.kind, 'gpt');
    t.is(r.used, 'primary');
    t.deepEqual(r.warnings, []);
    t.deepEqual(r.partitions.map((p) => [p.number, p.name, p.startingLba * ss, p.sizeSectors * ss]), [
      [1, 'one', 1 << 20, 2 << 20],
      [2, 'two', 3 << 20, (8 << 20) - (3 << 20) - (1 + 16384 / ss) * ss],
    ]);
    t.is(r.header.firstUsableLba, 2 + 16384 / ss);
    t.is(r.backup.lba, disk.length / ss - 1);
  });

  test(`${ss}: damaged primary header or entry array → backup used and reported`, async (t) => {
    for (const off of [ss + 20, ss + 60, 2 * ss + 40]) {
      const disk = smallDisk(ss);
      disk[off]! ^= 0xff;
      const r = (await readDiskTableFromBytes(disk, ss)) as GptDiskTable;
      t.is(r.kind, 'gpt');
      t.is(r.used, 'backup');
      t.is(r.partitions.length, 2);
      t.regex(r.warnings[0]!, /primary GPT at LBA 1 is damaged .*using the backup/);
    }
  });

  test(`${ss}: damaged backup → primary used, warning; both damaged → FormatError`, async (t) => {
    const disk = smallDisk(ss);
    disk[disk.length - ss + 30]! ^= 1;
    const r = (await readDiskTableFromBytes(disk, ss)) as GptDiskTable;
    t.is(r.used, 'primary');
    t.regex(r.warnings[0]!, /backup GPT .* is damaged/);
    disk[ss + 30]! ^= 1;
    await t.throwsAsync(readDiskTableFromBytes(disk, ss), { instanceOf: FormatError, message: /both headers are damaged/ });
  });
}

test('an enlarged disk: backup found where the primary says, with a warning', async (t) => {
  const disk = Buffer.concat([smallDisk(512), Buffer.alloc(1 << 20)]);
  const r = (await readDiskTableFromBytes(disk, 512)) as GptDiskTable;
  t.is(r.used, 'primary');
  t.true(r.backup.ok);
  t.regex(r.warnings.join('\n'), /not at the end of the disk/);
});

test('blank, MBR-only and too small', async (t) => {
  t.is((await readDiskTableFromBytes(Buffer.alloc(1 << 20), 512)).kind, 'blank');
  const mbr = Buffer.alloc(1 << 20);
  encodeMbr({ bootCode: Buffer.alloc(440), uniqueMbrDiskSignature: 5, partitions: [
    { bootIndicator: 0, startingChs: 0, osType: 0x83, endingChs: 0, startingLba: 2048, sizeInLba: 10 },
    ...Array.from({ length: 3 }, () => ({ bootIndicator: 0, startingChs: 0, osType: 0, endingChs: 0, startingLba: 0, sizeInLba: 0 })),
  ] }).copy(mbr);
  t.is((await readDiskTableFromBytes(mbr, 512)).kind, 'mbr-only');
  await t.throwsAsync(readDiskTableFromBytes(Buffer.from('hello\n'), 512), { instanceOf: FormatError, message: /too small/ });
});

/** Decoding random, truncated or corrupted disks only ever throws FormatError. */
test('fuzz: readDiskTable throws nothing but FormatError', async (t) => {
  const good = { 512: smallDisk(512), 4096: smallDisk(4096) };
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(512, 4096) as fc.Arbitrary<512 | 4096>,
      fc.oneof(
        // random bytes of random length
        fc.uint8Array({ maxLength: 20000 }).map((b) => ({ kind: 'random', b: Buffer.from(b) })),
        // a valid disk, truncated
        fc.nat().map((n) => ({ kind: 'truncate', n })),
        // a valid disk with bytes changed in the table areas
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean()), { minLength: 1, maxLength: 20 }).map((m) => ({ kind: 'mutate', m })),
      ),
      async (ss, c: any) => {
        let disk: Buffer;
        const base = good[ss];
        if (c.kind === 'random') disk = c.b;
        else if (c.kind === 'truncate') disk = base.subarray(0, c.n % base.length);
        else {
          disk = Buffer.from(base);
          for (const [pos, x, atEnd] of c.m) {
            const span = 3 * ss + 16384;
            const i = atEnd ? disk.length - 1 - (pos % span) : pos % span;
            disk[i]! ^= x;
          }
        }
        try {
          await readDiskTableFromBytes(disk, ss);
        } catch (e) {
          if (!(e instanceof FormatError)) throw e;
        }
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});
