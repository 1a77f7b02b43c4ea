import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, symlinkSync, readFileSync, linkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { InputError } from '@diskimg/partitions/internal';
import { readTarTree } from './tar.js';
import { readDirTree } from './dir.js';
import type { TreeEntry } from './tree.js';

function makeTree(): string {
  const d = mkdtempSync(join(tmpdir(), 'src-'));
  mkdirSync(join(d, 'boot/dtbs'), { recursive: true });
  writeFileSync(join(d, 'kernel'), 'K'.repeat(100_000));
  writeFileSync(join(d, 'boot/dtbs/a.dtb'), 'dtb');
  symlinkSync('kernel', join(d, 'vmlinuz'));
  linkSync(join(d, 'kernel'), join(d, 'kernel.hard'));
  return d;
}

async function collect(it: AsyncIterable<TreeEntry>) {
  const out: { path: string; type: string; data?: string; linkname?: string }[] = [];
  for await (const e of it) {
    let data: string | undefined;
    if (e.body) {
      const chunks: Buffer[] = [];
      for await (const c of e.body) chunks.push(c);
      data = Buffer.concat(chunks).toString();
    }
    out.push({ path: e.path, type: e.type, data, linkname: e.linkname });
  }
  return out;
}

test('tar (plain and gzip) and directory sources agree', async (t) => {
  const d = makeTree();
  const tarBytes = execFileSync('tar', ['-C', d, '--sort=name', '-cf', '-', '.']);
  const plain = await collect(readTarTree(Readable.from([tarBytes]), 'os.tar'));
  const gz = await collect(readTarTree(Readable.from([gzipSync(tarBytes)]), 'os.tar.gz'));
  t.deepEqual(gz, plain);
  const kernel = plain.find((e) => e.path === 'kernel');
  t.is(kernel?.data?.length, 100_000);
  t.is(plain.find((e) => e.path === 'vmlinuz')?.linkname, 'kernel');
  t.is(plain.find((e) => e.path === 'kernel.hard')?.type, 'hardlink');
  const dir = await collect(readDirTree(d));
  t.deepEqual(dir.map((e) => e.path).sort(), plain.map((e) => e.path).sort());
  t.is(dir.find((e) => e.path === 'kernel.hard')?.linkname, 'kernel');
});

test('tar source rejects escapes and truncation with InputError naming the input', async (t) => {
  const d = makeTree();
  const tarBytes = execFileSync('tar', ['-C', d, '-cf', '-', '.']);
  const err = await t.throwsAsync(collect(readTarTree(Readable.from([tarBytes.subarray(0, 5000)]), 'cut.tar')), { instanceOf: InputError });
  t.regex(err!.message, /^cut\.tar: /);
  const evil = execFileSync('tar', ['-C', d, '--transform', 's,^\\./kernel$,../kernel,', '-cf', '-', './kernel'], { });
  const e2 = await t.throwsAsync(collect(readTarTree(Readable.from([evil]), 'evil.tar')), { instanceOf: InputError });
  t.regex(e2!.message, /\.\./);
  readFileSync(join(d, 'kernel'));
});
