import test from 'ava';
import fc from 'fast-check';
import { parseSize, planLayout, gptFromPlan, MiB } from './layout.js';
import { makeEntropy } from './entropy.js';
import { InputError } from './errors.js';

test('sizes', (t) => {
  t.is(parseSize('128M'), 128 * MiB);
  t.is(parseSize('1.5G'), 1536 * MiB);
  t.is(parseSize('1536MiB'), 1536 * MiB);
  t.is(parseSize('4k'), 4096);
  t.is(parseSize('100MB'), 100e6);
  t.is(parseSize('4096'), 4096);
  t.is(parseSize('rest'), 'rest');
  for (const bad of ['', '12X', '-1M', '1.3K', 'M', '1..5G', '1e9']) t.throws(() => parseSize(bad), { instanceOf: InputError }, bad);
});

test('512-byte sectors: 32 entry sectors, first usable 34, partitions on 1 MiB', (t) => {
  const p = planLayout([
    { name: 'a', type: 'esp', size: '128M' },
    { name: 'b', type: 'linux', size: '1.5G' },
  ]);
  t.is(p.entryArraySectors, 32);
  t.is(p.firstUsableLba, 34);
  t.deepEqual(p.partitions.map((x) => [x.firstLba, x.lastLba]), [[2048, 264191], [264192, 3409919]]);
  // backup GPT (33 sectors) after the last partition, rounded up to 1 MiB
  t.is(p.totalSize, (1 + 128 + 1536 + 1) * MiB);
  t.is(p.lastUsableLba, p.totalSectors - 34);
});

test('4096-byte sectors: 4 entry sectors, first usable 6, partitions on 1 MiB', (t) => {
  const p = planLayout([{ name: 'a', type: 'esp', size: '128M' }, { name: 'b', type: 'linux', size: 'rest' }], { sectorSize: 4096, totalSize: '1G' });
  t.is(p.entryArraySectors, 4);
  t.is(p.firstUsableLba, 6);
  t.is(p.partitions[0]!.firstLba, 256);
  t.is(p.partitions[1]!.firstLba, 256 + 32768);
  t.is(p.partitions[1]!.lastLba, p.totalSectors - 6);
  t.is(p.lastUsableLba, p.totalSectors - 6);
});

test('impossible layouts are InputErrors with a clear message', (t) => {
  const L = (specs: Parameters<typeof planLayout>[0], o?: Parameters<typeof planLayout>[1]) => () => planLayout(specs, o);
  t.throws(L([{ name: 'a', type: 'linux', size: '2G' }], { totalSize: '1G' }), { instanceOf: InputError, message: /layout needs .* but the disk is/ });
  t.throws(L([{ name: 'a', type: 'linux', size: 0 }]), { instanceOf: InputError, message: /size is 0/ });
  t.throws(L([{ name: 'a', type: 'linux', size: '0M' }]), { instanceOf: InputError, message: /size is 0/ });
  t.throws(L([{ name: 'a', type: 'linux', size: '4M' }, { name: 'b', type: 'linux', size: '4M', start: '2M' }]), { instanceOf: InputError, message: /overlaps partition 1/ });
  t.throws(L(Array.from({ length: 129 }, (_, i) => ({ name: `p${i}`, type: 'linux', size: '1M' }))), { instanceOf: InputError, message: /at most 128/ });
  t.throws(L([{ name: 'a', type: 'linux', size: 'rest' }]), { instanceOf: InputError, message: /needs a total size/ });
  t.throws(L([{ name: 'a', type: 'linux', size: 'rest' }, { name: 'b', type: 'linux', size: '1M' }], { totalSize: '1G' }), { instanceOf: InputError, message: /only allowed for the last/ });
  t.throws(L([{ name: 'a', type: 'linux', size: '1023M' }, { name: 'b', type: 'linux', size: 'rest' }], { totalSize: '1G' }), { instanceOf: InputError, message: /no space left/ });
  t.throws(L([{ name: 'x'.repeat(37), type: 'linux', size: '1M' }]), { instanceOf: InputError, message: /at most 36/ });
  t.throws(L([{ name: 'a', type: 'linux', size: '1000' }]), { instanceOf: InputError, message: /multiple of the 512-byte sector/ });
  t.throws(L([{ name: 'a', type: 'linux', size: '1M' }], { sectorSize: 1024 }), { instanceOf: InputError });
  t.throws(L([]), { instanceOf: InputError });
});

test('random layouts: aligned, in order, inside the usable area; same seed, same GUIDs', (t) => {
  fc.assert(
    fc.property(fc.constantFrom(512, 4096), fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 8 }), (ss, kib) => {
      const specs = kib.map((k, i) => ({ name: `p${i}`, type: 'linux', size: k * 4096 }));
      const p = planLayout(specs, { sectorSize: ss });
      let prev = p.firstUsableLba - 1;
      for (const x of p.partitions) {
        t.is((x.firstLba * ss) % MiB, 0);
        t.true(x.firstLba > prev);
        t.true(x.lastLba <= p.lastUsableLba);
        prev = x.lastLba;
      }
      t.deepEqual(gptFromPlan(p, makeEntropy('s')), gptFromPlan(p, makeEntropy('s')));
    }),
  );
});
