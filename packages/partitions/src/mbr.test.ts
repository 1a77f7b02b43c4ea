import test from 'ava';
import fc from 'fast-check';
import { decodeMbr, encodeMbr, encodeProtectiveMbr, mbrKind, type Mbr } from './mbr.js';
import { FormatError } from './errors.js';

test('protective MBR: one 0xEE record from LBA 1 covering the disk (capped at 2^32-1)', (t) => {
  const m = decodeMbr(encodeProtectiveMbr(6819840));
  t.deepEqual(m.partitions[0], { bootIndicator: 0, startingChs: 0x000200, osType: 0xee, endingChs: 0xffffff, startingLba: 1, sizeInLba: 6819839 });
  t.is(m.partitions.slice(1).every((p) => p.osType === 0), true);
  t.is(decodeMbr(encodeProtectiveMbr(2 ** 40)).partitions[0]!.sizeInLba, 0xffffffff);
  t.is(mbrKind(encodeProtectiveMbr(1000)), 'protective');
});

const rec = fc.record({
  bootIndicator: fc.integer({ min: 0, max: 255 }),
  startingChs: fc.integer({ min: 0, max: 0xffffff }),
  osType: fc.integer({ min: 0, max: 255 }),
  endingChs: fc.integer({ min: 0, max: 0xffffff }),
  startingLba: fc.integer({ min: 0, max: 0xffffffff }),
  sizeInLba: fc.integer({ min: 0, max: 0xffffffff }),
});

test('MBR round-trips', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 440, maxLength: 440 }), fc.integer({ min: 0, max: 0xffffffff }), fc.array(rec, { minLength: 4, maxLength: 4 }), (code, sig, partitions) => {
      const m: Mbr = { bootCode: Buffer.from(code), uniqueMbrDiskSignature: sig, partitions };
      t.deepEqual(decodeMbr(encodeMbr(m)), m);
    }),
  );
});

test('classification and errors', (t) => {
  t.is(mbrKind(Buffer.alloc(512)), 'none');
  const m: Mbr = { bootCode: Buffer.alloc(440), uniqueMbrDiskSignature: 1, partitions: [
    { bootIndicator: 0x80, startingChs: 0, osType: 0x83, endingChs: 0, startingLba: 2048, sizeInLba: 1000 },
    { bootIndicator: 0, startingChs: 0, osType: 0, endingChs: 0, startingLba: 0, sizeInLba: 0 },
    { bootIndicator: 0, startingChs: 0, osType: 0, endingChs: 0, startingLba: 0, sizeInLba: 0 },
    { bootIndicator: 0, startingChs: 0, osType: 0, endingChs: 0, startingLba: 0, sizeInLba: 0 },
  ] };
  t.is(mbrKind(encodeMbr(m)), 'mbr');
  m.partitions[1]!.osType = 0xee;
  t.is(mbrKind(encodeMbr(m)), 'hybrid');
  m.partitions[0]!.osType = 0;
  m.partitions[1]!.osType = 0;
  t.is(mbrKind(encodeMbr(m)), 'empty');
  t.throws(() => decodeMbr(Buffer.alloc(100)), { instanceOf: FormatError });
  t.throws(() => decodeMbr(Buffer.alloc(512)), { instanceOf: FormatError, message: /0x55AA/ });
});
