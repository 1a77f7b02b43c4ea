import test from 'ava';
import fc from 'fast-check';
import { FormatError } from '@diskimg/partitions/internal';
import { crc32c, crc32cRaw } from './crc32c.js';
import { decodeSuperblock, encodeSuperblock, superblockChecksum } from './superblock.js';
import { decodeGroupDesc, encodeGroupDesc } from './group-desc.js';
import { decodeInode, encodeInode, encodeInodeTime, inodeTime } from './inode.js';
import { decodeExtentNode, encodeExtentNode, type ExtentLeaf, type ExtentIndex } from './extent.js';
import { decodeDirBlock, encodeDirBlock, packDirEntries } from './dirent.js';
import { decodeJournalSuperblock, encodeJournalSuperblock, journalSuperblockChecksum } from './journal-superblock.js';
import { featureNames, featureWords } from './features.js';
import { blockMapPath } from './blockmap.js';

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((u) => Buffer.from(u));

test('crc32c: standard check value and slicing-by-8 equals bytewise on any split', (t) => {
  t.is(crc32c(Buffer.from('123456789')), 0xe3069283);
  const bytewise = (c: number, d: Uint8Array) => {
    for (const x of d) {
      c ^= x;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    }
    return c >>> 0;
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), (d, seed, cut) => {
      const k = d.length ? cut % d.length : 0;
      const split = crc32cRaw(crc32cRaw(seed, d, 0, k), d, k);
      return crc32cRaw(seed, d) === bytewise(seed >>> 0, d) && split === crc32cRaw(seed, d);
    }),
  );
});

/** Keep 64-bit (and lo+hi) values under 2^53 so they survive a JS number. */
function tame(b: Buffer, u64: number[], hi32: number[]): void {
  for (const o of u64) {
    b[o + 6] &= 0x1f;
    b[o + 7] = 0;
  }
  for (const o of hi32) {
    b[o + 2] &= 0x1f;
    b[o + 3] = 0;
  }
}

test('superblock: random bytes round-trip byte for byte (checksum filled when metadata_csum)', (t) => {
  fc.assert(
    fc.property(bytes(1024), fc.boolean(), (b, csum) => {
      b.writeUInt16LE(0xef53, 0x38);
      b.writeUInt32LE(b[0x18]! % 7, 0x18);
      tame(b, [0x168, 0x178, 0x188, 0x1a0, 0x1d8], [0x150, 0x154, 0x158]);
      const ro = b.readUInt32LE(0x64);
      b.writeUInt32LE(csum ? (ro | 0x400) >>> 0 : (ro & ~0x400) >>> 0, 0x64);
      if (csum) {
        b[0x175] = 1;
        b.writeUInt32LE(superblockChecksum(b), 0x3fc);
      }
      const sb = decodeSuperblock(b);
      return encodeSuperblock(sb).equals(b);
    }),
  );
  const bad = encodeSuperblock(decodeSuperblock(Buffer.concat([Buffer.alloc(0x38), Buffer.from([0x53, 0xef]), Buffer.alloc(1024 - 0x3a)])));
  bad.writeUInt32LE(0x400, 0x64);
  bad[0x175] = 1;
  t.throws(() => decodeSuperblock(bad), { instanceOf: FormatError, message: /ext4 superblock: s_checksum mismatch/ });
  bad.writeUInt16LE(0x1234, 0x38);
  t.throws(() => decodeSuperblock(bad), { instanceOf: FormatError, message: /s_magic/ });
});

test('group descriptor: 32/64/128-byte round-trip with crc32c and crc16 checksums', (t) => {
  fc.assert(
    fc.property(fc.constantFrom(32, 64, 128), bytes(128), fc.nat(), fc.nat({ max: 1e6 }), bytes(16), (size, raw, seed, group, uuid) => {
      const b = raw.subarray(0, size);
      if (size > 64) b.fill(0, 64);
      if (size >= 64) tame(b, [], [0x20, 0x24, 0x28, 0x34]);
      for (const [kind, opts] of [
        ['c', { group, csumSeed: seed }],
        ['u', { group, uuid }],
      ] as const) {
        const gd = decodeGroupDesc(b, { group });
        const enc = encodeGroupDesc(gd, { ...opts, size });
        const back = decodeGroupDesc(enc, opts);
        if (!encodeGroupDesc(back, { ...opts, size }).equals(enc)) return false;
        // Everything but bg_checksum is the input.
        if (!enc.subarray(0, 0x1e).equals(b.subarray(0, 0x1e)) || !enc.subarray(0x20).equals(b.subarray(0x20))) return false;
        void kind;
      }
      return true;
    }),
  );
  const enc = encodeGroupDesc(decodeGroupDesc(Buffer.alloc(64)), { group: 3, csumSeed: 7 });
  t.throws(() => decodeGroupDesc(enc, { group: 4, csumSeed: 7 }), { message: /ext4 group descriptor 4: bg_checksum mismatch/ });
});

test('inode: random 128/256/512-byte inodes round-trip with the checksum', (t) => {
  fc.assert(
    fc.property(fc.constantFrom(128, 256, 512), bytes(512), fc.nat(), fc.integer({ min: 1, max: 2 ** 32 - 1 }), (size, raw, seed, ino) => {
      const b = raw.subarray(0, size);
      tame(b, [], [0x6c]);
      if (size > 128) b.writeUInt16LE(b.readUInt16LE(0x80) % (size - 128 + 1), 0x80);
      const i = decodeInode(b);
      const signed = encodeInode(i, { inodeSize: size, csum: { csumSeed: seed, ino } });
      const back = decodeInode(signed, { csumSeed: seed, ino });
      const again = encodeInode(back, { inodeSize: size, csum: { csumSeed: seed, ino } });
      const plain = encodeInode(i, { inodeSize: size });
      return again.equals(signed) && plain.equals(b);
    }),
  );
  const i = decodeInode(Buffer.alloc(256));
  i.i_mode = 0o100644;
  const enc = encodeInode(i, { csum: { csumSeed: 1, ino: 12 } });
  t.notThrows(() => decodeInode(enc, { csumSeed: 1, ino: 12 }));
  t.throws(() => decodeInode(enc, { csumSeed: 1, ino: 13 }), { instanceOf: FormatError, message: 'ext4 inode 13: checksum mismatch' });
  for (const s of [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 5, -5, -(2 ** 31)]) {
    const { lo, extra } = encodeInodeTime(s, 123);
    t.deepEqual(inodeTime(lo, extra, true), { sec: s, nsec: 123 }, `time ${s}`);
  }
});

const leaf: fc.Arbitrary<ExtentLeaf> = fc.boolean().chain((uninit) =>
  fc.record({
    ee_block: fc.nat({ max: 2 ** 32 - 1 }),
    ee_len: fc.integer({ min: 1, max: uninit ? 32767 : 32768 }),
    ee_start: fc.nat({ max: 2 ** 48 - 1 }),
    uninit: fc.constant(uninit),
  }),
);
const index: fc.Arbitrary<ExtentIndex> = fc.record({ ei_block: fc.nat({ max: 2 ** 32 - 1 }), ei_leaf: fc.nat({ max: 2 ** 48 - 1 }), ei_unused: fc.constant(0) });

test('extent nodes: i_block and tree blocks round-trip; tail checksum verified', (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom(60, 1024, 4096),
      fc.nat({ max: 5 }),
      fc.array(leaf, { maxLength: 4 }),
      fc.array(index, { maxLength: 4 }),
      fc.nat(),
      (size, depth, leaves, indexes, seed) => {
        const node = { eh_depth: depth, eh_generation: 0, leaves: depth ? [] : leaves, indexes: depth ? indexes : [] };
        const csum = { csumSeed: seed, ino: 12, gen: 99 };
        const enc = encodeExtentNode(node, size, csum);
        const dec = decodeExtentNode(enc, { csum });
        return (
          JSON.stringify({ ...node }) === JSON.stringify({ eh_depth: dec.eh_depth, eh_generation: dec.eh_generation, leaves: dec.leaves, indexes: dec.indexes }) &&
          encodeExtentNode(dec, size, csum).equals(enc)
        );
      },
    ),
  );
  const blk = encodeExtentNode({ eh_depth: 0, eh_generation: 0, leaves: [{ ee_block: 0, ee_len: 5, ee_start: 100, uninit: false }], indexes: [] }, 1024, { csumSeed: 1, ino: 12, gen: 0 });
  t.throws(() => decodeExtentNode(blk, { csum: { csumSeed: 1, ino: 12, gen: 1 }, structure: 'ext4 inode 12 extent block 7' }), {
    message: /ext4 inode 12 extent block 7: checksum mismatch/,
  });
  blk[0] = 0;
  t.throws(() => decodeExtentNode(blk), { message: /eh_magic/ });
});

const name = fc.uint8Array({ minLength: 1, maxLength: 255 }).map((u) => Buffer.from(u.map((x) => (x === 0 || x === 0x2f ? 0x61 : x))));

test('directory blocks: pack, stretch, tail checksum; decode → encode gives the same bytes', (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom(1024, 4096, 65536),
      fc.array(fc.record({ inode: fc.integer({ min: 1, max: 2 ** 32 - 1 }), name, file_type: fc.nat({ max: 7 }) }), { minLength: 1, maxLength: 40 }),
      fc.boolean(),
      (bs, entries, withCsum) => {
        const csum = withCsum ? { csumSeed: 5, ino: 2, gen: 0 } : undefined;
        for (const chunk of packDirEntries(entries, bs, withCsum)) {
          const enc = encodeDirBlock(chunk, bs, csum);
          const dec = decodeDirBlock(enc, { csum });
          if (dec.tail !== withCsum || dec.entries.length !== chunk.length) return false;
          if (!dec.entries.every((e, i) => e.name.equals(chunk[i]!.name) && e.inode === chunk[i]!.inode)) return false;
          if (!encodeDirBlock(dec.entries, bs, csum).equals(enc)) return false;
        }
        return true;
      },
    ),
  );
  const blk = encodeDirBlock([{ inode: 2, name: '.', file_type: 2 }], 1024, { csumSeed: 5, ino: 2, gen: 0 });
  t.throws(() => decodeDirBlock(blk, { csum: { csumSeed: 5, ino: 3, gen: 0 }, structure: 'ext4 directory inode 3 block 0' }), { message: /checksum mismatch/ });
  blk.writeUInt16LE(1000, 4);
  t.throws(() => decodeDirBlock(blk), { instanceOf: FormatError });
});

test('journal superblock: random bytes round-trip with checksum v3', (t) => {
  fc.assert(
    fc.property(bytes(1024), (b) => {
      b.writeUInt32BE(0xc03b3998, 0);
      b.writeUInt32BE(4, 4);
      b.writeUInt32BE((b.readUInt32BE(0x28) | 0x10) >>> 0, 0x28);
      b[0x50] = 4;
      b.writeUInt32BE(journalSuperblockChecksum(b), 0xfc);
      return encodeJournalSuperblock(decodeJournalSuperblock(b)).equals(b);
    }),
  );
  const b = encodeJournalSuperblock(decodeJournalSuperblock(Buffer.concat([Buffer.from('c03b399800000004', 'hex'), Buffer.alloc(1016)])));
  b[0x28 + 3] = 0x10;
  b[0x50] = 4;
  t.throws(() => decodeJournalSuperblock(b), { instanceOf: FormatError, message: /jbd2 journal superblock: s_checksum mismatch/ });
});

test('features: names ↔ words', (t) => {
  const w = featureWords(['has_journal', 'extent', '64bit', 'metadata_csum', 'dir_index']);
  t.deepEqual(featureNames(w), ['has_journal', 'dir_index', 'extent', '64bit', 'metadata_csum']);
  t.deepEqual(featureNames({ s_feature_compat: 0, s_feature_incompat: 0x80000000, s_feature_ro_compat: 0 }), ['FEATURE_I31']);
});

test('block map paths', (t) => {
  t.deepEqual(blockMapPath(11, 1024), [0, 11]);
  t.deepEqual(blockMapPath(12, 1024), [1, 0]);
  t.deepEqual(blockMapPath(12 + 256, 1024), [2, 0, 0]);
  t.deepEqual(blockMapPath(12 + 256 + 65536 + 257, 1024), [3, 0, 1, 1]);
  t.is(blockMapPath(12 + 256 + 65536 + 256 ** 3, 1024), undefined);
});
