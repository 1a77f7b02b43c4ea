// openFilesystem's one read interface over FAT32 (made by mkfs.fat + mcopy) and ext4 (mkfs.ext4 -d):
// the same calls, the same one-line "LABEL:/path: …" errors on both.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '@diskimg/partitions/internal';
import { FileDevice } from '../device/file.js';
import { Region } from '../device/region.js';
import type { DiskPartition } from './disk.js';
import { normalizePath, openFilesystem, parseFsSpec, type FsReader } from './fs.js';
import { needTools, type SkipContext } from '../../../../test/helpers/skip.js';

const dir = mkdtempSync(join(tmpdir(), 'diskimg-fs-'));
const opened: FileDevice[] = [];
test.after.always(async () => {
  for (const d of opened) await d.close();
  rmSync(dir, { recursive: true, force: true });
});
const have = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }).status === 0;
const ok = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
};

/** A stand-in partition covering a whole filesystem image. */
async function partition(file: string, name: string): Promise<DiskPartition> {
  const dev = await FileDevice.open(file);
  opened.push(dev);
  return { number: 1, name, offset: 0, size: dev.size, region: () => new Region(dev, 0, dev.size, name) } as unknown as DiskPartition;
}

const tree = join(dir, 'tree');
mkdirSync(join(tree, 'sub'), { recursive: true });
writeFileSync(join(tree, 'small.txt'), 'hello\n');
writeFileSync(join(tree, 'big.bin'), Buffer.alloc(3 << 20, 7));
writeFileSync(join(tree, 'sub', 'x'), 'x');

async function readers(t: SkipContext): Promise<['fat32' | 'ext4', FsReader][]> {
  const out: ['fat32' | 'ext4', FsReader][] = [];
  if (needTools(t, 'mkfs.ext4')) {
    const f = join(dir, 'e.img');
    ok('mkfs.ext4', ['-q', '-L', 'EXT', '-d', tree, f, '16M']);
    out.push(['ext4', await openFilesystem(await partition(f, 'gpt-ext'))]);
  }
  if (needTools(t, 'mkfs.fat', 'mcopy')) {
    const f = join(dir, 'f.img');
    ok('mkfs.fat', ['-F32', '-n', 'FAT', '-C', f, String(40 * 1024)]);
    ok('mcopy', ['-s', '-i', f, join(tree, 'small.txt'), join(tree, 'big.bin'), join(tree, 'sub'), '::/']);
    out.push(['fat32', await openFilesystem(await partition(f, 'gpt-fat'))]);
  }
  return out;
}

test('both filesystems: readdir, stat, streamed readFile, readFileBuffer, and the same errors', async (t) => {
  const rs = await readers(t);
  for (const [type, fs] of rs) {
    t.is(fs.type, type);
    const label = type === 'ext4' ? 'EXT' : 'FAT';
    t.is(fs.name, label, 'named by the filesystem label, not the GPT name');
    const names = (await fs.readdir('/')).map((e) => e.name).filter((n) => n !== 'lost+found').sort();
    t.deepEqual(names, ['big.bin', 'small.txt', 'sub']);
    t.like(await fs.stat('sub/'), { name: 'sub', type: 'directory' });
    t.like(await fs.stat('//small.txt'), { name: 'small.txt', type: 'file', size: 6, mode: 0o100644 });
    let chunks = 0;
    let total = 0;
    for await (const c of fs.readFile('/big.bin')) {
      chunks++;
      total += c.length;
      t.true(c.length <= 1 << 20);
    }
    t.is(total, 3 << 20);
    t.true(chunks >= 3, 'streamed in chunks');
    t.is((await fs.readFileBuffer('/small.txt', 6)).toString(), 'hello\n');
    const e = async (p: Promise<unknown>, msg: string) => {
      const err = await t.throwsAsync(p, { instanceOf: InputError });
      t.is(err?.message, msg);
    };
    await e(fs.readFileBuffer('/big.bin', 1000), `${label}:/big.bin: 3145728 bytes, larger than the 1000 expected`);
    await e(fs.stat('/nope'), `${label}:/nope: no such file or directory`);
    await e(fs.readdir('/sub/nope'), `${label}:/sub/nope: no such file or directory`);
    await e(fs.readdir('/small.txt'), `${label}:/small.txt: not a directory`);
    await e((async () => { for await (const _ of fs.readFile('/sub')) void _; })(), `${label}:/sub: is a directory`);
  }
});

test('parseFsSpec and normalizePath', (t) => {
  t.deepEqual(parseFsSpec('psyopsOS-A:/boot/'), { label: 'psyopsOS-A', path: '/boot' });
  t.deepEqual(parseFsSpec('PSYOPSOSEFI:'), { label: 'PSYOPSOSEFI', path: '/' });
  t.deepEqual(parseFsSpec('a:b:c'), { label: 'a', path: '/b:c' });
  t.throws(() => parseFsSpec('/kernel'), { instanceOf: InputError, message: /expected LABEL:\/path/ });
  t.throws(() => parseFsSpec(':/kernel'), { instanceOf: InputError });
  t.is(normalizePath(''), '/');
  t.is(normalizePath('./a//b/./c/'), '/a/b/c');
});
