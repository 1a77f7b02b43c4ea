// Bad input and damaged disks: one-line errors, exit codes, nothing written; backup GPT fallback.
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, writeSync, closeSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, type CliResult } from './helpers/cli.js';
import { needTools, run, scratch, sh, sha256 } from './gpt-helpers.js';
import { InputError, planLayout } from '../packages/partitions/src/index.js';
import { psyopsLayout } from '../packages/diskimage/src/index.js';

const s = scratch();
test.after.always(() => s.cleanup());
const SMALL = ['--esp-size', '8M', '--secret-size', '1M', '--slot-size', '16M'];

function oneLineError(t: ExecutionContext, r: CliResult, code: number, re: RegExp): void {
  t.is(r.code, code, r.stderr);
  t.is(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0]!, /^diskimg: /);
  t.regex(lines[0]!, re);
}

async function smallImage(name: string, extra: string[] = []): Promise<string> {
  const img = join(s.dir, name);
  const r = await runCli(['create', '--layout-only', img, '--seed', name, ...SMALL, ...extra]);
  if (r.code !== 0) throw new Error(r.stderr);
  return img;
}

function patch(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, offset);
  closeSync(fd);
}

test('library: a 37-character partition name or a layout larger than the disk is an InputError', (t) => {
  const e1 = t.throws(() => planLayout([{ name: 'n'.repeat(37), type: 'linux', size: '1M' }]), { instanceOf: InputError });
  t.regex(e1!.message, /^partition name "n{37}": 37 UTF-16 code units, GPT allows at most 36; shorten it$/);
  const e2 = t.throws(() => psyopsLayout({ totalSize: '1G' }), { instanceOf: InputError });
  t.regex(e2!.message, /^layout needs 3491758080 bytes \(3\.3 GiB\) but the disk is 1073741824 bytes/);
  t.false(e2!.message.includes('\n'));
});

test('create with a 0-size partition: one-line error, existing target untouched', async (t) => {
  const img = await smallImage('zero.img');
  const before = await sha256(img);
  oneLineError(t, await runCli(['create', '--layout-only', img, '--esp-size', '0']), 1, /size is 0/);
  oneLineError(t, await runCli(['create', '--layout-only', img, '--slot-size', '12Q']), 1, /slot|size "12Q"/);
  oneLineError(t, await runCli(['create', '--layout-only', img, '--secret-size', '1000']), 1, /multiple of the 512-byte sector size/);
  t.is(await sha256(img), before);
});

test('usage errors exit 2 with one line', async (t) => {
  oneLineError(t, await runCli(['create']), 2, /see diskimg --help/);
  oneLineError(t, await runCli(['create', '--layout-only', join(s.dir, 'u.img'), '--sector-size', '1024']), 2, /sector-size/);
  oneLineError(t, await runCli(['show', join(s.dir, 'u.img'), '--bogus']), 2, /bogus/);
  oneLineError(t, await runCli(['frobnicate']), 2, /frobnicate/);
  const help = await runCli(['create', '--layout-only', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /--esp-size/);
});

test('show on things that are not disks: one-line error, exit 1, file untouched', async (t) => {
  const rnd = join(s.dir, 'random.bin');
  writeFileSync(rnd, randomBytes(1 << 20));
  const txt = join(s.dir, 'notes.txt');
  writeFileSync(txt, 'this is a text file, not a disk\n'.repeat(1000));
  const tiny = join(s.dir, 'tiny.txt');
  writeFileSync(tiny, 'hello\n');
  for (const f of [rnd, txt, tiny]) {
    const before = await sha256(f);
    oneLineError(t, await runCli(['show', f]), 1, /no partition table|too small/);
    oneLineError(t, await runCli(['show', f, '--json']), 1, /no partition table|too small/);
    t.is(await sha256(f), before);
  }
  oneLineError(t, await runCli(['show', join(s.dir, 'missing.img')]), 1, /no such file/);
  const dir = join(s.dir, 'adir');
  mkdirSync(dir);
  oneLineError(t, await runCli(['show', dir]), 1, /directory/);
  oneLineError(t, await runCli(['create', '--layout-only', dir]), 1, /not a regular file/);
});

test('show on an MBR-only disk made by sfdisk: one-line "not supported" error', async (t) => {
  if (!needTools(t, 'sfdisk')) return;
  const img = join(s.dir, 'dos.img');
  sh('truncate', ['-s', '32M', img]);
  const r = run('sh', ['-c', `printf 'label: dos\\n,8M,L\\n,,L\\n' | sfdisk -q ${img}`]);
  t.is(r.code, 0, r.err);
  const before = await sha256(img);
  oneLineError(t, await runCli(['show', img]), 1, /MBR \(DOS\) partition table, not GPT/);
  t.is(await sha256(img), before);
});

for (const [what, offset] of [
  ['header', 512 + 16], // HeaderCRC32 of the primary header
  ['entry array', 1024 + 56], // name of partition 1 in the primary entry array
] as const) {
  test(`damaged primary ${what}: show lists the partitions from the backup and says so; sgdisk -v sees a problem`, async (t) => {
    const good = await smallImage(`damage-${offset}.img`);
    const img = join(s.dir, `damaged-${offset}.img`);
    copyFileSync(good, img);
    patch(img, offset, Buffer.from([0x5a, 0xa5]));
    const want = (await runCli(['show', good, '--json'])).json;
    const r = await runCli(['show', img, '--json']);
    t.is(r.code, 0, r.stderr);
    t.is(r.json.header, 'backup');
    t.false(r.json.primaryHeader.ok);
    t.regex(r.json.warnings[0], /primary GPT at LBA 1 is damaged .*using the backup/);
    t.deepEqual(r.json.partitions, want.partitions);
    const human = await runCli(['show', img]);
    t.is(human.code, 0);
    t.regex(human.stdout, /header: backup/);
    t.regex(human.stdout, /^warning: primary GPT at LBA 1 is damaged/m);
    t.regex(human.stdout, /psyopsOS-B/);
    t.regex(human.stderr, /warning/);
    if (!needTools(t, 'sgdisk')) return;
    const v = run('sgdisk', ['-v', img]);
    // sgdisk loads the backup too, so it may end with "No problems found"; it still flags the damage.
    t.regex(v.out + v.err, /corrupt GPT|Main (header|partition table): ERROR|Identified \d+ problems/);
  });
}

test('damaged primary and backup: one-line FormatError', async (t) => {
  const img = await smallImage('both.img');
  const size = (await runCli(['show', img, '--json'])).json.sizeBytes;
  patch(img, 512 + 16, Buffer.from([1]));
  patch(img, size - 512 + 16, Buffer.from([1]));
  oneLineError(t, await runCli(['show', img]), 1, /GPT: both headers are damaged/);
});
