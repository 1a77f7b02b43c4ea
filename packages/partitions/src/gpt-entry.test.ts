import test from 'ava';
import fc from 'fast-check';
import {
  chromeosFields,
  decodeEntryArray,
  decodeGptEntry,
  describeAttributes,
  encodeEntryArray,
  encodeGptEntry,
  withChromeosFields,
  type GptEntry,
} from './gpt-entry.js';
import { guidFromBytes } from './guid.js';
import { FormatError, InputError } from './errors.js';

const guid = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => guidFromBytes(b));
const lba = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
// Any UTF-16 code units except NUL, including lone surrogates: names are stored as code units.
// Half the time a string of whole characters, astral ones (surrogate pairs) included.
const name = fc.oneof(
  fc.array(fc.integer({ min: 1, max: 0xffff }), { maxLength: 36 }).map((u) => String.fromCharCode(...u)),
  fc.string({ unit: 'grapheme', maxLength: 36 }).filter((s) => s.length <= 36 && !s.includes('\0')),
);
const entry: fc.Arbitrary<GptEntry> = fc.record({
  typeGuid: guid,
  uniqueGuid: guid,
  startingLba: lba,
  endingLba: lba,
  attributes: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  name,
});

test('entries round-trip, all 64 attribute bits kept', (t) => {
  fc.assert(
    fc.property(entry, fc.constantFrom(128, 256), (e, size) => {
      const b = encodeGptEntry(e, size);
      t.is(b.length, size);
      t.deepEqual(decodeGptEntry(b), e);
    }),
  );
});

test('a 36-unit name fits exactly; 37 is an InputError, never an overflow', (t) => {
  const e: GptEntry = { typeGuid: guidFromBytes(Buffer.alloc(16, 1)), uniqueGuid: guidFromBytes(Buffer.alloc(16, 2)), startingLba: 2048, endingLba: 4095, attributes: 0n, name: 'x'.repeat(36) };
  const arr = encodeEntryArray([e, { ...e, name: 'next' }], 128);
  const back = decodeEntryArray(arr, 128);
  t.is(back[0]!.name, 'x'.repeat(36));
  t.is(back[1]!.name, 'next');
  t.is(back[1]!.typeGuid, e.typeGuid); // the long name did not spill into entry 2
  const err = t.throws(() => encodeGptEntry({ ...e, name: 'y'.repeat(37) }), { instanceOf: InputError });
  t.regex(err!.message, /37 UTF-16 code units.*at most 36/);
  t.throws(() => encodeGptEntry({ ...e, name: 'a\0b' }), { instanceOf: InputError });
  // UTF-16: an emoji is two code units, so 18 of them fill the name.
  const emoji = encodeGptEntry({ ...e, name: '😀'.repeat(18) });
  t.deepEqual(emoji.subarray(56, 128), Buffer.from('😀'.repeat(18), 'utf16le'), 'each emoji is its two UTF-16 units');
  t.is(decodeGptEntry(emoji).name, '😀'.repeat(18));
  t.throws(() => encodeGptEntry({ ...e, name: '😀'.repeat(18) + 'a' }), { instanceOf: InputError });
});

test('named attribute bits and ChromeOS fields', (t) => {
  const a = (1n << 0n) | (1n << 2n) | (1n << 60n) | (1n << 10n);
  const d = describeAttributes(a);
  t.true(d.requiredPartition);
  t.false(d.noBlockIOProtocol);
  t.true(d.legacyBIOSBootable);
  t.deepEqual(d.reservedBits, [10]);
  t.deepEqual(d.flags, ['RequiredPartition', 'LegacyBIOSBootable', 'GUID:60']);
  t.is(d.raw, '0x1000000000000405');
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.nat(15), fc.nat(15), fc.boolean(), (base, priority, tries, successful) => {
      const v = withChromeosFields(base, { priority, tries, successful });
      t.deepEqual(chromeosFields(v), { priority, tries, successful });
      const keep = ~((0x1ffn) << 48n) & ((1n << 64n) - 1n);
      t.is(v & keep, base & keep);
    }),
  );
  t.throws(() => withChromeosFields(0n, { priority: 16, tries: 0, successful: false }), { instanceOf: InputError });
});

test('decoding short or random bytes only throws FormatError', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(300), (bytes, off) => {
      try {
        decodeGptEntry(bytes, off);
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
      }
      try {
        decodeEntryArray(bytes, 2);
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
      }
    }),
  );
  t.pass();
});
