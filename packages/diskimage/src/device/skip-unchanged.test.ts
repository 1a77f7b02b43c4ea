import test from 'ava';
import fc from 'fast-check';
import { MemoryDevice } from './memory.js';
import { SkipUnchangedDevice } from './skip-unchanged.js';

test('skip-unchanged: the device ends byte-identical to plain writes; only changed 4 KiB pieces are written, and counted', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 1 << 15, maxLength: 1 << 15 }),
      fc.array(fc.record({ off: fc.nat((1 << 15) - 1), len: fc.nat(9000), same: fc.boolean(), seed: fc.nat(255) }), { maxLength: 8 }),
      async (initial, writes) => {
        const plain = new MemoryDevice(1 << 15, 512, Buffer.from(initial));
        const inner = new MemoryDevice(1 << 15, 512, Buffer.from(initial));
        let innerWritten = 0;
        const spy = Object.assign(Object.create(inner), { write: async (o: number, b: Uint8Array) => { innerWritten += b.length; await inner.write(o, b); } });
        const dev = new SkipUnchangedDevice(spy);
        let total = 0;
        for (const w of writes) {
          const len = Math.min(w.len, plain.size - w.off);
          // Either the bytes already there (nothing to write) or new ones.
          const buf = w.same ? Buffer.from(plain.data.subarray(w.off, w.off + len)) : Buffer.alloc(len, w.seed);
          await plain.write(w.off, buf);
          await dev.write(w.off, buf);
          total += len;
          if (w.same) t.is(dev.written + dev.skipped, total);
        }
        t.true(plain.data.equals(inner.data));
        t.is(innerWritten, dev.written);
        t.is(dev.written + dev.skipped, total);
      },
    ),
  );
});
