/**
 * The shared input-validation layer (validate.ts): what every writer refuses, one line each, and
 * what it lets through (repeated directories, implicit parents, case variants on ext4). Then the
 * ext4 writer on inputs it must take without recursion or expansion, judged by e2fsck: a path
 * 2,000 directories deep, and sparse files whose holes (1 TiB, 16 TiB - 4 KiB) are never expanded.
 */
import test from 'ava';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { InputError } from '@diskimg/partitions/internal';
import type { TreeEntry } from './tree.js';
import { TreeValidator, validateTree, MAX_PATH_BYTES, type ValidateOptions } from './validate.js';
import { readTarTree } from './tar.js';
import { debugfs, fsck, haveE2fs, makeImage, MiB, tmp } from '../ext4/testutil.js';
import { needTools } from '../../../../test/helpers/skip.js';

const base = { mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0 };
const f = (path: string, more: Partial<TreeEntry> = {}): TreeEntry => ({ ...base, path, type: 'file', ...more });
const d = (path: string): TreeEntry => ({ ...base, path, type: 'directory', mode: 0o755 });

function refused(entries: TreeEntry[], o: Partial<ValidateOptions> = {}): string | undefined {
  const v = new TreeValidator({ fs: 'ext4', inputName: 'in.tar', ...o });
  try {
    for (const e of entries) v.check(e);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    if (e.message.includes('\n')) throw new Error(`not one line: ${e.message}`);
    return e.message;
  }
  return undefined;
}

test('refused for every writer, one line naming the input and the entry', (t) => {
  const cases: Array<[string, TreeEntry[], RegExp, Partial<ValidateOptions>?]> = [
    ['symlink target with NUL', [{ ...base, path: 'l', type: 'symlink', linkname: 'a\0b' }], /"l" is a symlink whose target contains a NUL byte/],
    ['empty symlink target', [{ ...base, path: 'l', type: 'symlink', linkname: '' }], /empty target/],
    ['symlink target over PATH_MAX', [{ ...base, path: 'l', type: 'symlink', linkname: 'x'.repeat(MAX_PATH_BYTES + 1) }], /target is 4096 bytes/],
    ['path over PATH_MAX', [f(Array.from({ length: 3000 }, () => 'a').join('/'))], /path is 5999 bytes long; at most 4095/],
    ['".." component', [f('a/../b')], /"\." or "\.\." component/],
    ['empty component', [f('a//b')], /empty/],
    ['NUL in a name', [f('a\0b')], /NUL/],
    ['absolute path', [f('/etc/passwd')], /absolute path/],
    ['ext4 name over 255 bytes', [f('n'.repeat(256))], /name of 256 bytes; ext4 allows at most 255/],
    ['duplicate file', [f('a'), f('a')], /"a" appears twice/],
    ['file then directory', [f('a'), d('a')], /both a file and a directory/],
    ['directory then file', [d('a'), f('a')], /both a file and a directory/],
    ['below a file', [f('a'), f('a/b')], /"a\/b" is below "a", which is not a directory/],
    ['FAT case variants', [d('EFI'), f('EFI/BOOT.EFI'), f('efi/boot.efi')], /"efi\/boot\.efi" clashes with "BOOT\.EFI"; FAT names are case-insensitive/, { fs: 'fat32' }],
    ['FAT invalid character', [f('a:b')], /FAT cannot hold ":"/, { fs: 'fat32' }],
    ['FAT file over 4 GiB', [f('big', { size: 2 ** 32 })], /FAT32 files are at most 4 GiB - 1/, { fs: 'fat32' }],
    ['ext4 file over 16 TiB', [f('big', { size: 2 ** 44 })], /ext4 files are at most 16 TiB/],
    ['negative size', [f('neg', { size: -5 })], /size -5/],
    ['larger than the target', [f('big', { size: 100 })], /larger than the target \(99 bytes\)/, { maxFileBytes: 99 }],
    ['total over the target', [f('a', { size: 60 }), f('b', { size: 60 })], /"b" brings the payload's files to 120 bytes/, { maxTotalBytes: 100 }],
    ['uid over 32 bits', [f('u', { uid: 2 ** 32 })], /uid 4294967296/],
    ['device number out of range', [{ ...base, path: 'dev', type: 'char', devmajor: 4096, devminor: 0 }], /device 4096:0/],
    ['hard link to a later path', [{ ...base, path: 'h', type: 'hardlink', linkname: 'later' }, f('later')], /not earlier in the input/],
    ['hard link to a directory', [d('x'), { ...base, path: 'h', type: 'hardlink', linkname: 'x' }], /a directory/],
    ['a file over a built-in directory', [f('lost+found')], /both a file and a directory/, { builtinDirs: ['lost+found'] }],
    ['root that is not a directory', [f('')], /is the root but a file/],
  ];
  for (const [what, entries, re, o] of cases) {
    const m = refused(entries, o);
    t.truthy(m, `${what}: accepted`);
    t.regex(m ?? '', /^in\.tar: "/, what);
    t.regex(m ?? '', re, what);
  }
});

test('accepted: repeated directories, implicit parents, hard links, case variants on ext4, a path of PATH_MAX bytes 2,000 deep', (t) => {
  const deep = Array.from({ length: 2000 }, () => 'd').join('/');
  const ok: TreeEntry[] = [
    d(''),
    d('a'),
    d('a'),
    f('a/b/c'), // implicit a/b
    d('a/b'),
    f('EFI'),
    f('efi'),
    { ...base, path: 'h', type: 'hardlink', linkname: 'a/b/c' },
    { ...base, path: 'l', type: 'symlink', linkname: '../x' },
    f(`${deep}/${'f'.repeat(MAX_PATH_BYTES - deep.length - 1)}`),
  ];
  t.is(refused(ok), undefined);
  t.regex(refused(ok, { fs: 'fat32' }) ?? '', /"efi" clashes with "EFI"/);
});

test('validateTree stops at the first bad entry without reading its body', async (t) => {
  let read = false;
  const body = (async function* () {
    read = true;
    yield Buffer.alloc(1);
  })();
  const src = (async function* () {
    yield f('a', { size: 1, body: (async function* () { yield Buffer.alloc(1); })() });
    yield f('A', { size: 1, body });
  })();
  const seen: string[] = [];
  const err = await t.throwsAsync(
    (async () => {
      for await (const e of validateTree(src, { fs: 'fat32', inputName: 'x' })) seen.push(e.path);
    })(),
    { instanceOf: InputError },
  );
  t.regex(err!.message, /clashes/);
  t.deepEqual(seen, ['a']);
  t.false(read);
});

/** A tar header with a correct checksum (for sparse entries tar-stream cannot write). */
function hdr(name: string, size: number, type = '0'): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write(type, 156);
  h.write('ustar\x0000', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let s = 0;
  for (const b of h) s += b;
  h.write(s.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}
const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);
function paxRec(k: string, v: string): string {
  const body = ` ${k}=${v}\n`;
  let n = body.length + 1;
  while (String(n).length + body.length !== n) n = String(n).length + body.length;
  return `${n}${body}`;
}
function sparseEntry(name: string, realSize: number, regions: Array<[number, number]>): Buffer {
  const p = Buffer.from(paxRec('GNU.sparse.major', '1') + paxRec('GNU.sparse.minor', '0') + paxRec('GNU.sparse.name', name) + paxRec('GNU.sparse.realsize', String(realSize)));
  const map = Buffer.from(`${regions.length}\n${regions.map(([o, l]) => `${o}\n${l}\n`).join('')}`);
  const stored = Buffer.concat([pad(map), ...regions.map(([, l], i) => Buffer.alloc(l, 0x41 + i))]);
  return Buffer.concat([hdr('PaxHeaders/p', p.length, 'x'), pad(p), hdr(`GNUSparseFile.0/${name}`, stored.length), pad(stored)]);
}

test('ext4: a path 2,000 directories deep and sparse files of 1 TiB and 16 TiB - 4 KiB (holes never expanded): e2fsck clean, data where the map says', async (t) => {
  if (!haveE2fs) return void needTools(t, 'e2fsck', 'debugfs');
  const dir = tmp('validate');
  try {
    const deep = Array.from({ length: 2000 }, (_, i) => (i % 10).toString()).join('/');
    const tar = Buffer.concat([
      hdr('x', 0),
      Buffer.concat([hdr('PaxHeaders/d', Buffer.byteLength(paxRec('path', `${deep}/leaf`)), 'x'), pad(Buffer.from(paxRec('path', `${deep}/leaf`))), hdr('ignored', 4), pad(Buffer.from('deep'))]),
      sparseEntry('tib', 2 ** 40, [[0, 4096], [2 ** 39, 100]]),
      sparseEntry('max', 2 ** 44 - 4096, [[2 ** 44 - 8192, 4096]]),
      Buffer.alloc(1024),
    ]);
    const img = join(dir, 'img');
    const t0 = Date.now();
    await makeImage(img, 64 * MiB, readTarTree((async function* () { yield tar; })(), 't.tar'));
    t.true(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
    const r = fsck(img);
    t.is(r.status, 0, r.out);
    t.regex(debugfs(img, 'stat tib'), /Size: 1099511627776\b/);
    t.regex(debugfs(img, 'stat max'), /Size: 17592186040320\b/);
    t.regex(debugfs(img, `cat ${deep}/leaf`), /^deep$/);
    t.regex(debugfs(img, 'ex tib'), /134217728 - 134217728/); // logical block of offset 2^39
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
