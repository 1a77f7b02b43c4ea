import test from 'ava';
import fc from 'fast-check';
import { guidFromBytes, guidFromEntropy, guidToBytes, resolveType, typeAlias, typeName } from './guid.js';
import { InputError } from './errors.js';

test('ESP type GUID has the mixed-endian byte order of the UEFI spec', (t) => {
  // UEFI spec: C12A7328-F81F-11D2-BA4B-00A0C93EC93B is stored as 28 73 2A C1 1F F8 D2 11 BA 4B 00 A0 C9 3E C9 3B.
  const b = guidToBytes('c12a7328-f81f-11d2-ba4b-00a0c93ec93b');
  t.is(b.toString('hex'), '28732ac11ff8d211ba4b00a0c93ec93b');
  t.is(guidFromBytes(b), 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B');
});

test('GUID bytes round-trip through text', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
      t.deepEqual([...guidToBytes(guidFromBytes(bytes))], [...bytes]);
    }),
  );
});

test('seeded GUIDs are version 4, variant 1', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
      const g = guidFromEntropy(bytes);
      t.regex(g, /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
    }),
  );
});

test('type aliases', (t) => {
  t.is(resolveType('esp'), 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B');
  t.is(resolveType('linux'), '0FC63DAF-8483-4772-8E79-3D69D8477DE4');
  t.is(resolveType('0fc63daf-8483-4772-8e79-3d69d8477de4'), '0FC63DAF-8483-4772-8E79-3D69D8477DE4');
  t.is(typeAlias('c12a7328-f81f-11d2-ba4b-00a0c93ec93b'), 'esp');
  t.is(typeName('0FC63DAF-8483-4772-8E79-3D69D8477DE4'), 'Linux filesystem');
  t.throws(() => resolveType('ext4'), { instanceOf: InputError });
  t.throws(() => guidToBytes('not-a-guid'), { instanceOf: InputError });
});
