import test from 'ava';
import fc from 'fast-check';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError, InputError } from '@diskimg/partitions/internal';
import { decodeBootSector, encodeBootSector, geometry, type BootSector } from './boot-sector.js';
import { decodeFsInfo, encodeFsInfo } from './fsinfo.js';
import { decodeDirent, decodeFatTime, encodeDirent, encodeFatTime, makeDirent, shortDisplayName } from './dirent.js';
import { LfnAssembler, encodeLfnEntries, lfnChecksum } from './lfn.js';
import { checkLongName, makeShortName } from './shortname.js';
import { decodeFatEntry, encodeFatEntry } from './fat.js';
import { has, run, tmp } from './test-util.js';
import { needTools } from '../../../../test/helpers/skip.js';

test('boot sector round-trips random valid values', (t) => {
  fc.assert(
    fc.property(
      fc.record({
        bps: fc.constantFrom(512, 4096),
        spc: fc.constantFrom(1, 2, 4, 8, 16, 32, 64),
        volId: fc.integer({ min: 0, max: 0xffffffff }),
        hidd: fc.integer({ min: 0, max: 0xffffffff }),
        label: fc.stringMatching(/^[A-Z0-9_]{1,11}$/),
      }),
      ({ bps, spc, volId, hidd, label }) => {
        const bs: BootSector = {
          BS_OEMName: 'MSWIN4.1', BPB_BytsPerSec: bps, BPB_SecPerClus: spc, BPB_RsvdSecCnt: 32, BPB_NumFATs: 2, BPB_Media: 0xf8,
          BPB_SecPerTrk: 63, BPB_NumHeads: 255, BPB_HiddSec: hidd, BPB_TotSec32: 32 + 2 * 1000 + spc * 100000, BPB_FATSz32: 1000,
          BPB_ExtFlags: 0, BPB_FSVer: 0, BPB_RootClus: 2, BPB_FSInfo: 1, BPB_BkBootSec: 6, BS_DrvNum: 0x80, BS_VolID: volId,
          BS_VolLab: label.padEnd(11, ' '),
        };
        if (geometry(bs).clusterCount + 2 > (1000 * bps) / 4) return;
        const enc = encodeBootSector(bs);
        const dec = decodeBootSector(enc);
        if (JSON.stringify(dec) !== JSON.stringify(bs)) throw new Error('mismatch');
      },
    ),
  );
  t.pass();
});

test('decodes the boot sector, FSInfo and root entries of a real mkfs.fat volume', (t) => {
  if (!needTools(t, 'mkfs.fat')) return;
  const d = tmp();
  const img = join(d, 'a.img');
  const r = run('mkfs.fat', ['-C', '-F', '32', '-n', 'MYLABEL', '-i', '1234ABCD', img, String(40 * 1024)]);
  t.is(r.status, 0, r.out);
  run('sh', ['-c', `echo hi > ${d}/x && mcopy -i ${img} ${d}/x "::/Hello World.txt"`]);
  const buf = readFileSync(img);
  const bs = decodeBootSector(buf.subarray(0, 512), buf.length);
  t.is(bs.BPB_BytsPerSec, 512);
  t.is(bs.BPB_SecPerClus, 1);
  t.is(bs.BS_VolID, 0x1234abcd);
  t.is(bs.BS_VolLab, 'MYLABEL    ');
  t.is(bs.BPB_BkBootSec, 6);
  const g = geometry(bs);
  t.true(g.clusterCount >= 65525);
  decodeFsInfo(buf.subarray(512, 1024));
  t.deepEqual(decodeBootSector(buf.subarray(6 * 512, 7 * 512)), bs);
  // The root cluster: label entry, then the LFN run and short entry of "Hello World.txt".
  const root = buf.subarray(g.dataOffset, g.dataOffset + 512);
  const asm = new LfnAssembler();
  let found = '';
  for (let i = 0; i < 16; i++) {
    const off = i * 32;
    if (root[off] === 0) break;
    if (root[off + 11] === 0x0f) asm.feed(root, off, i);
    else if (!(root[off + 11] & 0x08)) {
      const de = decodeDirent(root, off);
      found = asm.take(de.DIR_Name)?.name ?? '';
      t.is(shortDisplayName(de), 'HELLOW~1.TXT');
      // our encoder gives byte-identical long-name entries for the same short name
      const ours = encodeLfnEntries('Hello World.txt', de.DIR_Name);
      t.deepEqual(ours, Buffer.from(root.subarray(off - ours.length, off)));
    }
  }
  t.is(found, 'Hello World.txt');
  rmSync(d, { recursive: true, force: true });
});

test('boot sector decode errors name the structure; FAT16 is "not FAT32"', (t) => {
  const bad = Buffer.alloc(512);
  t.throws(() => decodeBootSector(bad), { instanceOf: FormatError, message: /^FAT32 boot sector: signature/ });
  if (!needTools(t, 'mkfs.fat')) return;
  const d = tmp();
  run('mkfs.fat', ['-C', '-F', '16', join(d, 'b.img'), '20480']);
  const f16 = readFileSync(join(d, 'b.img')).subarray(0, 512);
  t.throws(() => decodeBootSector(f16), { instanceOf: FormatError, message: /not FAT32/ });
  rmSync(d, { recursive: true, force: true });
});

test('FSInfo, FAT entry, dirent and FAT time codecs round-trip', (t) => {
  const fi = decodeFsInfo(encodeFsInfo({ FSI_Free_Count: 1234, FSI_Nxt_Free: 99 }, 4096));
  t.deepEqual(fi, { FSI_Free_Count: 1234, FSI_Nxt_Free: 99 });
  const fat = Buffer.alloc(16);
  fat.writeUInt32LE(0xf0000000, 4);
  encodeFatEntry(fat, 1, 0x0fffffff);
  t.is(fat.readUInt32LE(4), 0xffffffff, 'reserved top bits preserved');
  t.is(decodeFatEntry(fat, 1), 0x0fffffff);
  fc.assert(
    fc.property(fc.integer({ min: 315532800, max: 4354819198 }), (s) => {
      const ft = encodeFatTime(s);
      return decodeFatTime(ft.date, ft.time, ft.tenth) === s;
    }),
  );
  const d = makeDirent(Buffer.from('GRUB    CFG', 'latin1'), 0x20, 0x18, 0x123456, 77, 1700000001);
  t.deepEqual(decodeDirent(encodeDirent(d)), d);
  t.is(shortDisplayName(d), 'grub.cfg');
});

test('LFN checksum matches the fatgen103 algorithm on a known alias', (t) => {
  // Independent reference: the rotate-right-and-add loop written out differently.
  const ref = (n: Buffer) => n.reduce((s, b) => (((s >> 1) | ((s & 1) << 7)) + b) & 0xff, 0);
  for (const n of ['HELLOW~1TXT', 'BOOTX64 EFI', 'A          ']) t.is(lfnChecksum(Buffer.from(n, 'latin1')), ref(Buffer.from(n, 'latin1')));
});

test('8.3 aliases follow Linux/Windows rules', (t) => {
  const taken = new Set<string>();
  const s = (name: string) => {
    const r = makeShortName(name, taken);
    taken.add(r.name11.toString('latin1'));
    return [r.name11.toString('latin1'), r.ntRes, r.needsLfn];
  };
  t.deepEqual(s('readme.md'), ['README  MD ', 0x18, false]);
  t.deepEqual(s('UPPER.TXT'), ['UPPER   TXT', 0, false]);
  t.deepEqual(s('Makefile'), ['MAKEFILE   ', 0, true]);
  t.deepEqual(s('MAKEFILE'), ['MAKEFI~1   ', 0, true], 'collision with an existing alias gets a tail');
  t.deepEqual(s('grub.CFG'), ['GRUB    CFG', 0x08, false]);
  t.deepEqual(s('A long file name.txt'), ['ALONGF~1TXT', 0, true]);
  t.deepEqual(s('A long file name2.txt'), ['ALONGF~2TXT', 0, true]);
  t.deepEqual(s('.hidden'), ['HIDDEN~1   ', 0, true]);
  t.deepEqual(s('a+b.c'), ['A_B~1   C  ', 0, true]);
  t.deepEqual(s('x.tar.gz'), ['XTAR~1  GZ ', 0, true]);
  for (let i = 3; i <= 12; i++) s(`A long file name${i}.txt`);
  t.true(taken.has('ALONG~10TXT'));
});

test('names FAT cannot hold are InputErrors', (t) => {
  for (const bad of ['a:b', 'a*', 'q?', 'x\\y', 'tab\there', 'dot.', 'space ', 'x'.repeat(256), '..']) {
    t.throws(() => checkLongName(bad), { instanceOf: InputError }, bad);
  }
  t.notThrows(() => checkLongName('x'.repeat(255)));
  t.notThrows(() => checkLongName('ünïcödé and spaces [1].txt'));
});

test('long-name entries round-trip any valid name up to 255 UTF-16 units', (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 120 }), (raw) => {
      const name = raw.replace(/["*/:<>?\\|\x00-\x1f\x7f]/g, '_').replace(/[. ]+$/, '').slice(0, 255);
      if (!name || name === '.' || name === '..') return;
      const sn = makeShortName(name, new Set());
      const run = encodeLfnEntries(name, sn.name11);
      const asm = new LfnAssembler();
      for (let i = 0; i < run.length / 32; i++) asm.feed(run, i * 32, i);
      const got = asm.take(sn.name11);
      if (got?.name !== name) throw new Error(`${JSON.stringify(name)} -> ${JSON.stringify(got)}`);
    }),
  );
  t.pass();
});
