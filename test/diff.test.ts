// diskimg diff / diffDisks (issue 15) on images built from fixtures/golden/: identical → exit 0 and
// nothing printed; update of slot B → exactly B's changed files and the ESP's grub.cfg / grubenv;
// set-default → only grub.cfg's default lines; one file changed in slot A → exactly that file;
// another --seed → only identifiers; another kernel parameter → the grub.cfg lines; a damaged image →
// exit 2 with one line; against upstream's recipe (mkfs.ext4 -d, mkfs.fat + mcopy) → a readable list
// whose files agree with debugfs and mdir.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, cpSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { diffDisks, diffLines, readSecretKeyFile, signFile, summarizeDifferences, type DiskDifference, type FileDifference } from '../packages/ab/src/index.js';
import { openDisk } from '../packages/diskimage/src/index.js';
import { runCli } from './helpers/cli.js';
import { needTools, skipOrFail } from './helpers/skip.js';
import { buildUpstreamImage } from './helpers/fixtures.js';
import { buildGoldenImages, CACHE_DIR, diskimg, GOLDEN_DIR, makeGoldenInputs, osComment, PUBKEY, SECKEY, SIZES, sparseCopy, tarTree, VERSION_1, type GoldenInputs } from './helpers/golden.js';
import { grubCfg, missingTools } from './helpers/inspect-image.js';

let work = '';
let inputs: GoldenInputs;
let img: Record<string, string> = {};

test.before(async () => {
  mkdirSync(CACHE_DIR, { recursive: true });
  work = mkdtempSync(join(CACHE_DIR, 'diff-test-'));
  inputs = await makeGoldenInputs(join(work, 'inputs'));
  img = await buildGoldenImages(join(work, 'images'), inputs, ['update-b', 'set-default-b', 'layout-only']);
});
test.after.always(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const create = (out: string, extra: string[], osTar = inputs.osV1) =>
  diskimg(['create', out, '--os-tar', osTar, '--esp-tar', inputs.esp, '--secret-tar', inputs.secret, '--pubkey', PUBKEY, ...SIZES, ...extra]);

const files = (d: DiskDifference[]) => d.filter((x): x is FileDifference => x.kind === 'file');
const groups = (d: DiskDifference[]) => [...new Set(d.map((x) => x.group))];

/** Copy partition `name`'s bytes from image `from` into image `to` (same layout). */
async function copyPartition(from: string, to: string, name: string): Promise<void> {
  const disk = await openDisk(from);
  const p = disk.partitions.find((x) => x.name === name)!;
  await disk.close();
  const src = openSync(from, 'r');
  const dst = openSync(to, 'r+');
  const buf = Buffer.alloc(1 << 20);
  try {
    for (let off = 0; off < p.size; off += buf.length) {
      const n = readSync(src, buf, 0, Math.min(buf.length, p.size - off), p.offset + off);
      writeSync(dst, buf, 0, n, p.offset + off);
    }
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

/** Every path under `dir` (relative, with a leading /) and whether it is a directory. */
function treePaths(dir: string, rel = ''): Map<string, 'dir' | 'file' | 'symlink'> {
  const out = new Map<string, 'dir' | 'file' | 'symlink'>();
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const p = `${rel}/${e.name}`;
    out.set(p, e.isDirectory() ? 'dir' : e.isSymbolicLink() ? 'symlink' : 'file');
    if (e.isDirectory()) for (const [k, v] of treePaths(dir, p)) out.set(k, v);
  }
  return out;
}

test('identical images: no differences, exit 0, nothing printed', async (t) => {
  t.deepEqual(await diffDisks(img['default-512']!, img['default-512']!), []);
  const copy = join(work, 'copy.img');
  sparseCopy(img['default-512']!, copy);
  const r = await runCli(['diff', img['default-512']!, copy]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, '');
  t.is(r.stderr, '');
  const j = await runCli(['diff', img['default-512']!, copy, '--json']);
  t.is(j.code, 0);
  t.deepEqual(j.json, { identical: true, summary: { count: 0, categories: {}, verdict: 'identical' }, differences: [] });
});

test('after update of slot B: exactly B\'s changed files, and the ESP\'s grub.cfg and grubenv', async (t) => {
  const d = await diffDisks(img['default-512']!, img['update-b']!);
  t.deepEqual(groups(d), ['1 PSYOPSOSEFI', '4 psyopsOS-B']);
  // Slot B: what differs between the two OS trees, plus the new signature; nothing else about any file.
  const v1 = treePaths(join(GOLDEN_DIR, 'os-v1'));
  const v2 = treePaths(join(GOLDEN_DIR, 'os-v2'));
  const expected: string[] = [];
  for (const p of [...new Set([...v1.keys(), ...v2.keys()])].sort()) {
    if (!v2.has(p)) expected.push(`removed ${p}`);
    else if (!v1.has(p)) expected.push(`added ${p}`);
    else if (v1.get(p) === 'file' && !readFileSync(join(GOLDEN_DIR, 'os-v1', p)).equals(readFileSync(join(GOLDEN_DIR, 'os-v2', p)))) expected.push(`content ${p}`);
  }
  expected.push('content /psyopsOS.tar.minisig');
  const inB = files(d).filter((x) => x.partition === 4);
  t.deepEqual(inB.map((x) => `${x.change} ${x.path}`).sort(), expected.sort());
  t.true(d.filter((x) => x.partition === 4).every((x) => x.kind === 'file'), 'slot B keeps its UUID, hash seed and geometry');
  // ESP: grub.cfg gains the counting block, grubenv the trial.
  const esp = d.filter((x) => x.partition === 1);
  t.deepEqual(files(esp).map((x) => `${x.change} ${x.path}`), ['content /grub/grub.cfg', 'content /grub/grubenv']);
  t.true(esp.some((x) => x.kind === 'grub.cfg' && x.op === '+' && x.text === '# BEGIN psyopsOS boot counting'));
  t.true(esp.filter((x) => x.kind === 'grub.cfg').every((x) => x.kind === 'grub.cfg' && x.op === '+'), 'lines are only added');
  t.deepEqual(
    esp.filter((x) => x.kind === 'grubenv').map((x) => x.kind === 'grubenv' && [x.variable, x.a, x.b]),
    [['psyopsos_armed', null, '3'], ['psyopsos_trial', null, 'psyopsOS-B'], ['psyopsos_tries', null, '3']],
  );
  // Whatever else the ESP reports is the FAT's free space (the grub.cfg grew by a cluster).
  t.deepEqual(esp.filter((x) => x.kind === 'filesystem').map((x) => x.kind === 'filesystem' && x.field), ['freeBytes']);

  const r = await runCli(['diff', img['default-512']!, img['update-b']!]);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stdout, /^4 psyopsOS-B: \+ \/etc\/only-in-v2: 12 bytes$/m);
  t.regex(r.stdout, /^4 psyopsOS-B: - \/etc\/only-in-v1: 14 bytes$/m);
  t.regex(r.stdout, /^4 psyopsOS-B: M \/kernel: content 22 bytes -> 40 bytes$/m);
  t.regex(r.stdout, /^1 PSYOPSOSEFI: grubenv psyopsos_trial: \(none\) -> psyopsOS-B$/m);
  t.regex(r.stdout, /differences \(.*\): contents differ\n$/);
});

test('after set-default b: only grub.cfg\'s default line (and the neuralupgrade-info line naming it)', async (t) => {
  const d = await diffDisks(img['default-512']!, img['set-default-b']!);
  t.deepEqual(files(d).map((x) => `${x.partition} ${x.change} ${x.path}`), ['1 content /grub/grub.cfg']);
  const lines = d.filter((x) => x.kind === 'grub.cfg').map((x) => x.kind === 'grub.cfg' && `${x.op}${x.line} ${x.text}`);
  t.deepEqual(lines, [
    '-5 # neuralupgrade-info: last_updated=20251129-000000 default_boot_label=psyopsOS-A extra_programs=/memtest64.efi',
    '+5 # neuralupgrade-info: last_updated=20251129-000000 default_boot_label=psyopsOS-B extra_programs=/memtest64.efi',
    '-9 set default="psyopsOS-A"',
    '+9 set default="psyopsOS-B"',
  ]);
  t.is(d.length, 5);
});

test('one file changed inside slot A: exactly that file is named', async (t) => {
  // The same OS tree with /config changed (same size), signed by the golden key with v1's trusted
  // comment (so the slot is verified, and its signature file differs only in its signature bytes),
  // and only slot A of that image copied into a copy of the default image.
  const tree = join(work, 'os-changed');
  cpSync(join(GOLDEN_DIR, 'os-v1'), tree, { recursive: true, verbatimSymlinks: true });
  const cfg = readFileSync(join(tree, 'config'), 'utf8');
  writeFileSync(join(tree, 'config'), cfg.replace('CONFIG_EXT4_FS=y', 'CONFIG_EXT4_FS=m'));
  const tar = join(work, 'os-changed.tar');
  await tarTree(tree, tar);
  const other = join(work, 'changed-full.img');
  writeFileSync(`${tar}.minisig`, await signFile(tar, await readSecretKeyFile(SECKEY), osComment(VERSION_1)));
  await diskimg(['create', other, '--os-tar', tar, '--pubkey', PUBKEY, '--esp-tar', inputs.esp, '--secret-tar', inputs.secret, ...SIZES, '--seed', 'golden']);
  const changed = join(work, 'changed-a.img');
  sparseCopy(img['default-512']!, changed);
  await copyPartition(other, changed, 'psyopsOS-A');
  const d = await diffDisks(img['default-512']!, changed);
  t.is(d.length, 2, JSON.stringify(d));
  t.like(d[0], { kind: 'file', group: '3 psyopsOS-A', path: '/config', change: 'content', a: 34, b: 34 });
  t.like(d[1], { kind: 'file', group: '3 psyopsOS-A', path: '/psyopsOS.tar.minisig', change: 'content' });
  const r = await runCli(['diff', img['default-512']!, changed]);
  t.is(r.code, 1);
  t.regex(r.stdout, /^3 psyopsOS-A: M \/config: content 34 bytes, sha256 [0-9a-f]{12} -> [0-9a-f]{12}\n3 psyopsOS-A: M \/psyopsOS\.tar\.minisig: content \d+ bytes, sha256 [0-9a-f]{12} -> [0-9a-f]{12}\n2 differences \(content 2\): contents differ\n$/);
});

test('another --seed: only identifiers (GUIDs, UUIDs, serials, hash seeds) and checksums over them', async (t) => {
  const other = join(work, 'seed2.img');
  await create(other, ['--seed', 'golden-2']);
  const d = await diffDisks(img['default-512']!, other);
  t.true(d.length > 0);
  t.deepEqual([...new Set(d.map((x) => x.category))].sort(), ['checksum', 'identity']);
  const fields = d.map((x) => ('field' in x ? `${x.group} ${x.field}` : `${x.group} ${x.kind}`));
  t.true(fields.includes('gpt diskGuid'));
  t.true(fields.includes('1 PSYOPSOSEFI BS_VolID'));
  for (const n of ['2 psyops-secret', '3 psyopsOS-A', '4 psyopsOS-B']) {
    t.true(fields.includes(`${n} uniqueGuid`), n);
    t.true(fields.includes(`${n} s_uuid`), n);
  }
  t.is(summarizeDifferences(d).verdict, 'only identifiers (GUIDs, UUIDs, serials, hash seeds) differ (and the checksums over them)');
  const r = await runCli(['diff', img['default-512']!, other]);
  t.is(r.code, 1);
  t.regex(r.stdout, /: only identifiers \(GUIDs, UUIDs, serials, hash seeds\) differ \(and the checksums over them\)\n$/);
});

test('a changed kernel parameter: the grub.cfg lines that carry it', async (t) => {
  const other = join(work, 'params.img');
  await create(other, ['--seed', 'golden', '--kernel-params', 'console=ttyS0,115200 quiet']);
  const d = await diffDisks(img['default-512']!, other);
  t.deepEqual(files(d).map((x) => x.path), ['/grub/grub.cfg']);
  const cfg = d.filter((x) => x.kind === 'grub.cfg');
  t.is(cfg.length + 1, d.length);
  t.true(cfg.length >= 4);
  for (const x of cfg) t.regex(x.kind === 'grub.cfg' ? x.text : '', /^\s*linux \/kernel ro psyopsos=psyopsOS-[AB] /);
  t.true(cfg.some((x) => x.kind === 'grub.cfg' && x.op === '+' && x.text.endsWith('console=ttyS0,115200 quiet')));
});

test('a damaged image: exit 2 with one line on stderr', async (t) => {
  const bad = join(work, 'bad-gpt.img');
  sparseCopy(img['default-512']!, bad);
  const fd = openSync(bad, 'r+');
  const size = statSync(bad).size;
  writeSync(fd, Buffer.alloc(512), 0, 512, 512); // primary header
  writeSync(fd, Buffer.alloc(512), 0, 512, size - 512); // backup header
  closeSync(fd);
  const r = await runCli(['diff', img['default-512']!, bad]);
  t.is(r.code, 2);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^diskimg: .*GPT.*\n$/);

  // A damaged ext4 superblock (checksum) in slot A.
  const bad2 = join(work, 'bad-ext4.img');
  sparseCopy(img['default-512']!, bad2);
  const disk = await openDisk(bad2);
  const a = disk.partitions.find((p) => p.name === 'psyopsOS-A')!;
  await disk.close();
  const fd2 = openSync(bad2, 'r+');
  writeSync(fd2, Buffer.from('XX'), 0, 2, a.offset + 1024 + 0x78); // s_volume_name, without fixing s_checksum
  closeSync(fd2);
  const r2 = await runCli(['diff', img['default-512']!, bad2]);
  t.is(r2.code, 2, r2.stdout);
  t.is(r2.stderr.trim().split('\n').length, 1, r2.stderr);
  t.regex(r2.stderr, /^diskimg: .*checksum/i);

  const r3 = await runCli(['diff', img['default-512']!]);
  t.is(r3.code, 2, 'usage');
  const r4 = await runCli(['diff', img['default-512']!, join(work, 'missing.img')]);
  t.is(r4.code, 2);
  t.regex(r4.stderr, /^diskimg: .*ENOENT|no such file/i);
});

test('layout-only vs a full image: every file added; raw bytes compared where structures match', async (t) => {
  const d = await diffDisks(img['layout-only']!, img['default-512']!);
  t.true(files(d).every((x) => x.change === 'added'));
  t.true(files(d).some((x) => x.group === '3 psyopsOS-A' && x.path === '/kernel'));
  t.true(d.some((x) => x.kind === 'filesystem' && x.field === 'type' && x.a === 'unknown' && x.b === 'ext4'));
  // Itself: the structures match, and so do the raw bytes of the (all-zero) partitions and the GPT areas.
  t.deepEqual(await diffDisks(img['layout-only']!, img['layout-only']!), []);
});

test('diffLines: a minimal line diff', (t) => {
  t.deepEqual(diffLines(['a', 'b', 'c'], ['a', 'c', 'd']), [
    { op: '-', line: 2, text: 'b' },
    { op: '+', line: 3, text: 'd' },
  ]);
  t.deepEqual(diffLines([], ['x']), [{ op: '+', line: 1, text: 'x' }]);
});

// ---- against upstream's recipe (real tools) ----------------------------------------------------------

const sh = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1', LC_ALL: 'C' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

/** debugfs's recursive listing: path → size (files) or 'dir' / 'symlink'. */
function debugfsTree(image: string, offset: number, dir = '/'): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of sh('debugfs', ['-R', `ls -p "${dir}"`, `${image}?offset=${offset}`]).split('\n')) {
    const m = /^\/(\d+)\/([0-7]+)\/\d+\/\d+\/(.*)\/(\d*)\/$/.exec(line);
    if (!m || m[1] === '0' || m[3] === '.' || m[3] === '..') continue;
    const p = dir === '/' ? `/${m[3]}` : `${dir}/${m[3]}`;
    const fmt = parseInt(m[2]!, 8) & 0o170000;
    if (fmt === 0o040000) {
      out.set(p, 'dir');
      for (const [k, v] of debugfsTree(image, offset, p)) out.set(k, v);
    } else out.set(p, fmt === 0o120000 ? 'symlink' : m[4]!);
  }
  return out;
}

/** mdir -/ -b: every path; directories end in /. */
function mdirTree(image: string, offset: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of sh('mdir', ['-/', '-b', '-i', `${image}@@${offset}`, '::/']).split('\n')) {
    if (!line.startsWith('::/')) continue;
    const p = line.slice(2);
    out.set(p.endsWith('/') ? p.slice(0, -1) : p, p.endsWith('/') ? 'dir' : 'file');
  }
  return out;
}

test('against an image made by upstream\'s recipe: a readable list; its files agree with debugfs and mdir', async (t) => {
  if (!needTools(t, 'sgdisk', 'mkfs.fat', 'mcopy', 'mdir', 'mkfs.ext4', 'debugfs')) return;
  const cfg = join(work, 'upstream-grub.cfg');
  writeFileSync(cfg, grubCfg('psyopsOS-A'));
  const up = join(work, 'upstream.img');
  buildUpstreamImage(up, { osTarA: inputs.osV1, osTarB: inputs.osV2, espTar: inputs.esp, grubCfg: cfg, secretTar: inputs.secret, espMiB: 40, secretMiB: 8, slotMiB: 32 });

  // Ours vs upstream's, from the same inputs: a list, no crash, every line "GROUP: …".
  const r = await runCli(['diff', img['default-512']!, up]);
  t.is(r.code, 1, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.true(lines.length > 10);
  for (const l of lines.slice(0, -1)) t.regex(l, /^(disk|gpt|[1-4] [\w-]+): \S/);
  t.regex(r.stdout, /^1 PSYOPSOSEFI: fs BS_OEMName: /m);
  t.regex(r.stdout, /^1 PSYOPSOSEFI: - \/psyopsESP\.tar\.minisig: \d+ bytes$/m);
  t.regex(r.stdout, /^3 psyopsOS-A: - \/psyopsOS\.tar\.minisig: \d+ bytes$/m);

  // From nothing (our layout-only image) to upstream's: the files added are what debugfs and mdir list.
  const d = await diffDisks(img['layout-only']!, up);
  const disk = await openDisk(up);
  const parts = disk.partitions.map((p) => ({ n: p.number, offset: p.offset }));
  await disk.close();
  for (const { n, offset } of parts) {
    const added = new Map(
      files(d)
        .filter((x) => x.partition === n && x.change === 'added')
        .map((x) => [x.path, x.type === 'directory' ? 'dir' : x.type === 'symlink' ? 'symlink' : n === 1 ? 'file' : String(x.b)]),
    );
    t.true(files(d).filter((x) => x.partition === n).every((x) => x.change === 'added'), `partition ${n}`);
    const ref = n === 1 ? mdirTree(up, offset) : debugfsTree(up, offset);
    t.deepEqual([...added].sort(), [...ref].sort(), `partition ${n}`);
  }
});

test('bytes that differ where every structure compares equal: the partition and the number of 4 KiB blocks', async (t) => {
  const other = join(work, 'free-space.img');
  sparseCopy(img['default-512']!, other);
  const disk = await openDisk(other);
  const a = disk.partitions.find((p) => p.name === 'psyopsOS-A')!;
  await disk.close();
  const fd = openSync(other, 'r+');
  writeSync(fd, Buffer.alloc(100, 0xaa), 0, 100, a.offset + a.size - 8192 + 10); // a free block near the end
  closeSync(fd);
  const d = await diffDisks(img['default-512']!, other);
  t.deepEqual(d, [{ kind: 'bytes', category: 'content', group: '3 psyopsOS-A', partition: 3, area: 'partition', offset: a.size - 8192 + 10, blocks: 1 }]);
  t.deepEqual(await diffDisks(img['default-512']!, other, { bytes: false }), []);
  const r = await runCli(['diff', img['default-512']!, other]);
  t.is(r.code, 1);
  t.regex(r.stdout, /^3 psyopsOS-A: bytes: 1 block of 4 KiB differ in the partition \(first at byte \d+\), every structure compared equal$/m);
});
