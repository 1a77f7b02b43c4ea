import test from 'ava';
import { MemoryDevice } from './memory.js';
import { Region } from './region.js';
import { FaultDevice, PowerCut } from './fault.js';
import { SafetyError } from '@diskimg/partitions/internal';

test('region refuses access outside its window before touching the device', async (t) => {
  const dev = new MemoryDevice(4096);
  const r = new Region(dev, 1024, 1024, 'p1');
  await r.write(0, Buffer.from('hi'));
  t.is(dev.data.subarray(1024, 1026).toString(), 'hi');
  await t.throwsAsync(r.write(1023, Buffer.alloc(2)), { instanceOf: SafetyError });
  await t.throwsAsync(r.read(-1, Buffer.alloc(1)), { instanceOf: SafetyError });
  t.throws(() => new Region(dev, 4000, 200), { instanceOf: SafetyError });
  t.is(dev.data.subarray(2048).every((b) => b === 0), true);
});

test('fault device stops after write N and can tear at a sector boundary', async (t) => {
  const dev = new MemoryDevice(8192, 512);
  const f = new FaultDevice(dev, { failAtWrite: 1, tornSectors: 1 });
  await f.write(0, Buffer.alloc(512, 1));
  await t.throwsAsync(f.write(1024, Buffer.alloc(1024, 2)), { instanceOf: PowerCut });
  t.is(dev.data[1024], 2);
  t.is(dev.data[1536], 0);
  await t.throwsAsync(f.write(0, Buffer.alloc(1)), { instanceOf: PowerCut });
});
