import test from 'ava';
import fc from 'fast-check';
import { decodeGptHeader, encodeGptHeader, GPT_HEADER, type GptHeader } from './gpt-header.js';
import { guidFromBytes } from './guid.js';
import { FormatError } from './errors.js';

const header: fc.Arbitrary<GptHeader> = fc
  .record({
    myLba: fc.integer({ min: 1, max: 2 ** 40 }),
    alternateLba: fc.integer({ min: 1, max: 2 ** 40 }),
    firstUsableLba: fc.integer({ min: 2, max: 2 ** 30 }),
    span: fc.integer({ min: -1, max: 2 ** 30 }),
    diskGuid: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => guidFromBytes(b)),
    partitionEntryLba: fc.integer({ min: 2, max: 2 ** 40 }),
    numberOfPartitionEntries: fc.integer({ min: 0, max: 1024 }),
    sizeOfPartitionEntry: fc.constantFrom(128, 256, 512),
    partitionEntryArrayCrc32: fc.integer({ min: 0, max: 0xffffffff }),
    headerSize: fc.integer({ min: 92, max: 512 }),
  })
  .filter((r) => r.myLba !== r.alternateLba)
  .map(({ span, ...r }) => ({ ...r, revision: 0x00010000, lastUsableLba: r.firstUsableLba + span }));

test('headers round-trip for 512 and 4096-byte sectors', (t) => {
  fc.assert(
    fc.property(header, fc.constantFrom(512, 4096), (h, ss) => {
      const b = encodeGptHeader(h, ss);
      t.is(b.length, ss);
      t.deepEqual(decodeGptHeader(b), h);
    }),
  );
});

test('any flipped byte inside the header is caught (CRC or field checks)', (t) => {
  const h: GptHeader = {
    revision: 0x00010000, headerSize: 92, myLba: 1, alternateLba: 999, firstUsableLba: 34, lastUsableLba: 966,
    diskGuid: guidFromBytes(Buffer.alloc(16, 7)), partitionEntryLba: 2, numberOfPartitionEntries: 128, sizeOfPartitionEntry: 128, partitionEntryArrayCrc32: 0x12345678,
  };
  const good = encodeGptHeader(h, 512);
  fc.assert(
    fc.property(fc.nat(91), fc.integer({ min: 1, max: 255 }), (i, x) => {
      const b = Buffer.from(good);
      b[i]! ^= x;
      t.throws(() => decodeGptHeader(b), { instanceOf: FormatError });
    }),
  );
  // Bytes past HeaderSize are not covered by the CRC (the spec says so).
  const b = Buffer.from(good);
  b[200] = 1;
  t.notThrows(() => decodeGptHeader(b));
  const crcOff = GPT_HEADER.HeaderCRC32;
  b.writeUInt32LE(0, crcOff);
  t.throws(() => decodeGptHeader(b), { instanceOf: FormatError, message: /HeaderCRC32 mismatch/ });
});

test('decoding random or truncated bytes only throws FormatError', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      // Put the signature in front half the time so the deeper checks run.
      const b = Buffer.from(bytes);
      if (b.length >= 8 && b[0]! & 1) b.write('EFI PART', 0, 'latin1');
      try {
        decodeGptHeader(b);
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
      }
    }),
    { numRuns: 2000 },
  );
  t.pass();
});
