import test from 'ava';
import fc from 'fast-check';
import { MemoryDevice } from './memory.js';
import { SparseWriteDevice } from './sparse.js';

test('sparse writes land exactly like plain writes on a zeroed device, skipping zero chunks', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ off: fc.nat(60_000), len: fc.nat(20_000), fill: fc.constantFrom(0, 0, 7), poke: fc.nat() }), { maxLength: 6 }),
      async (writes) => {
        const plain = new MemoryDevice(1 << 17);
        const inner = new MemoryDevice(1 << 17);
        let written = 0;
        const counting = { ...inner, size: inner.size, sectorSize: 512, read: inner.read.bind(inner), flush: async () => {}, close: async () => {},
          write: async (o: number, b: Uint8Array) => { written += b.length; await inner.write(o, b); } };
        const sparse = new SparseWriteDevice(counting);
        let total = 0;
        // Disjoint regions (each block written once, as in a fresh build).
        let cursor = 0;
        for (const w of writes) {
          const off = cursor + (w.off % 5000);
          const buf = Buffer.alloc(w.len, w.fill);
          if (w.len) buf[w.poke % w.len] = 1;
          cursor = off + w.len;
          if (cursor > plain.size) break;
          await plain.write(off, buf);
          await sparse.write(off, buf);
          total += w.len;
        }
        t.true(plain.data.equals(inner.data));
        t.true(written <= total);
      },
    ),
  );
});
