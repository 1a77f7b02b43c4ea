import test from 'ava';
import { nameFromBytes, nameFromUtf16, nameIsEscaped, nameToBytes, nameToUtf16 } from './names.js';

test('names: UTF-8 is itself, other bytes \\xHH, a backslash \\\\; every form reads back to its bytes', (t) => {
  const cases: [Buffer, string][] = [
    [Buffer.from('plain é 😀'), 'plain é 😀'],
    [Buffer.from('a\xff', 'latin1'), 'a\\xff'],
    [Buffer.from('a\xfe', 'latin1'), 'a\\xfe'],
    [Buffer.from('back\\slash'), 'back\\\\slash'],
    [Buffer.from('lit\\xff'), 'lit\\\\xff'],
    [Buffer.from([0xed, 0xa0, 0x80]), '\\xed\\xa0\\x80'], // a surrogate is not UTF-8
    [Buffer.from([0xc0, 0xaf]), '\\xc0\\xaf'], // overlong
    [Buffer.from([0xe2, 0x82]), '\\xe2\\x82'], // truncated
    [Buffer.from('\ufffd'), '\ufffd'], // a real U+FFFD stays
  ];
  for (const [raw, shown] of cases) {
    t.is(nameFromBytes(raw), shown);
    t.deepEqual(nameToBytes(shown), raw);
    t.is(nameIsEscaped(shown), shown.includes('\\'));
  }
  // Every byte string round-trips (a seeded sweep of short names).
  let x = 7;
  for (let k = 0; k < 2000; k++) {
    const b = Buffer.alloc(1 + (k % 6));
    for (let j = 0; j < b.length; j++) b[j] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    t.deepEqual(nameToBytes(nameFromBytes(b)), b);
  }
  // A backslash not starting an escape stays as typed.
  t.deepEqual(nameToBytes('a\\b\\x4'), Buffer.from('a\\b\\x4'));
});

test('FAT names: lone surrogates shown as their WTF-8 bytes and mapped back', (t) => {
  for (const s of ['plain', 'lone-\ud800.txt', 'x\udfffy', '\ud83d\ude00 pair']) t.is(nameToUtf16(nameFromUtf16(s)), s);
  t.is(nameFromUtf16('lone-\ud800.txt'), 'lone-\\xed\\xa0\\x80.txt');
  t.is(nameFromUtf16('\ud83d\ude00'), '\ud83d\ude00');
});
