// diskimg ls / cat on a reference image made by real tools (sgdisk, mkfs.fat + mcopy, mkfs.ext4 -d):
// every directory listing agrees with mdir / debugfs, every file is byte-identical to what mcopy /
// debugfs rdump extract. The library walk covers every file; the CLI is run on a representative set.
import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findFilesystemPartition, openDisk, openFilesystem, type Disk, type FsEntry, type FsReader } from '../packages/diskimage/src/index.js';
import { repoRoot } from './helpers/cli.js';
import { sh, useInspectImage, type InspectImage } from './helpers/inspect-image.js';

const execFileP = promisify(execFile);
const ready = useInspectImage(test);

/** The CLI with stdout as bytes. */
async function cli(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  try {
    const r = await execFileP(process.execPath, ['--import=tsx', '--conditions=source', 'packages/cli/src/run.ts', ...args], {
      cwd: repoRoot, encoding: 'buffer', maxBuffer: 64 << 20,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr.toString() };
  } catch (e: any) {
    if (typeof e.code !== 'number') throw e;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr.toString() };
  }
}

function oneLineError(t: any, r: { code: number; stdout: Buffer; stderr: string }, re: RegExp): void {
  t.is(r.code, 1, r.stderr);
  t.is(r.stdout.length, 0);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, /^diskimg: /);
  t.regex(r.stderr, re);
}

async function withFs<T>(img: string, label: string, f: (fs: FsReader, disk: Disk) => Promise<T>): Promise<T> {
  const disk = await openDisk(img);
  try {
    return await f(await openFilesystem(await findFilesystemPartition(disk, label)), disk);
  } finally {
    await disk.close();
  }
}

async function readAll(fs: FsReader, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of fs.readFile(path)) parts.push(b);
  return Buffer.concat(parts);
}

const join2 = (dir: string, name: string) => (dir === '/' ? `/${name}` : `${dir}/${name}`);
const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** mdir's listing of a directory: name (long name, else the 8.3 name as shown), <DIR> or size. */
function mdir(img: string, offset: number, path: string): { name: string; dir: boolean; size: number }[] {
  const out = sh('mdir', ['-i', `${img}@@${offset}`, `::${path}`]).toString('utf8');
  const rows: { name: string; dir: boolean; size: number }[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*(<DIR>|\d+)\s+\d{4}-\d\d-\d\d\s+\d+:\d\d\s?(.*)$/.exec(line.slice(12));
    if (!m || line.startsWith(' ')) continue;
    const short = line.slice(0, 8).trim();
    const ext = line.slice(9, 12).trim();
    const name = m[2]!.trim() || (ext ? `${short}.${ext}` : short);
    if (name === '.' || name === '..') continue;
    rows.push({ name, dir: m[1] === '<DIR>', size: m[1] === '<DIR>' ? 0 : Number(m[1]) });
  }
  return rows.sort(byName);
}

/** debugfs ls -p of a directory: /ino/mode/uid/gid/name/size/. */
function debugfsLs(img: string, offset: number, path: string): { name: string; mode: number; uid: number; gid: number; size: number | null }[] {
  const out = sh('debugfs', ['-R', `ls -p "${path}"`, `${img}?offset=${offset}`]).toString('utf8');
  const rows = [];
  for (const line of out.split('\n')) {
    const m = /^\/(\d+)\/([0-7]+)\/(\d+)\/(\d+)\/(.*)\/(\d*)\/$/.exec(line);
    if (!m || m[1] === '0' || m[5] === '.' || m[5] === '..') continue; // inode 0: an unused dirent
    rows.push({ name: m[5]!, mode: parseInt(m[2]!, 8), uid: Number(m[3]), gid: Number(m[4]), size: m[6] === '' ? null : Number(m[6]) });
  }
  return rows.sort(byName);
}

/** Walk every directory with our reader; call `check` for each listing. Returns regular file paths. */
async function walk(fs: FsReader, check: (dir: string, entries: FsEntry[]) => void): Promise<string[]> {
  const files: string[] = [];
  const todo = ['/'];
  while (todo.length) {
    const dir = todo.shift()!;
    const entries = (await fs.readdir(dir)).sort(byName);
    check(dir, entries);
    for (const e of entries) {
      if (e.type === 'directory') todo.push(join2(dir, e.name));
      else if (e.type === 'file') files.push(join2(dir, e.name));
    }
  }
  return files;
}

test('FAT32 ESP: every directory listing matches mdir, every file matches mcopy byte for byte', async (t) => {
  const r = ready(t);
  if (!r) return;
  const off = r.layout.esp.offset;
  const out = join(r.dir, 'mcopy-out');
  mkdirSync(out);
  sh('mcopy', ['-s', '-n', '-m', '-i', `${r.img}@@${off}`, '::/*', out]);
  let dirs = 0;
  await withFs(r.img, 'PSYOPSOSEFI', async (fs) => {
    const files = await walk(fs, (dir, entries) => {
      dirs++;
      t.deepEqual(entries.map((e) => ({ name: e.name, dir: e.type === 'directory', size: e.size })), mdir(r.img, off, dir), dir);
    });
    t.true(files.length > 125, `${files.length} files`);
    for (const f of files) t.true(readFileSync(join(out, f)).equals(await readAll(fs, f)), f);
  });
  t.true(dirs >= 5);
});

for (const [label, part] of [['psyopsOS-A', 'a'], ['psyopsOS-B', 'b'], ['psyops-secret', 'secret']] as const) {
  test(`ext4 ${label}: every listing matches debugfs ls -p (names, modes, owners, sizes), every file matches debugfs rdump`, async (t) => {
    const r = ready(t);
    if (!r) return;
    const off = r.layout[part].offset;
    const out = join(r.dir, `rdump-${part}`);
    mkdirSync(out);
    sh('debugfs', ['-R', `rdump / ${out}`, `${r.img}?offset=${off}`]);
    await withFs(r.img, label, async (fs) => {
      const files = await walk(fs, (dir, entries) => {
        const want = debugfsLs(r.img, off, dir);
        t.deepEqual(entries.map((e) => e.name), want.map((w) => w.name), dir);
        entries.forEach((e, i) => {
          const w = want[i]!;
          t.is(e.mode, w.mode, `${dir}/${e.name} mode`);
          t.deepEqual([e.uid, e.gid], [w.uid, w.gid]);
          if (w.size !== null) t.is(e.size, w.size, `${dir}/${e.name} size`);
        });
      });
      if (part === 'secret') t.deepEqual(files, []);
      else t.true(files.length > 185, `${files.length} files`);
      for (const f of files) t.true(readFileSync(join(out, f)).equals(await readAll(fs, f)), f);
    });
  });
}

test('CLI ls: long listing and --json agree with debugfs and mdir; file paths and symlinks', async (t) => {
  const r = ready(t);
  if (!r) return;
  const [human, json, esp, one] = await Promise.all([
    cli(['ls', r.img, 'psyopsOS-A:/']),
    cli(['ls', r.img, 'psyopsOS-A:/boot', '--json']),
    cli(['ls', r.img, 'psyopsosefi:/', '--json']), // FAT label in any case
    cli(['ls', r.img, 'psyopsOS-A:/boot/vmlinuz']), // a symlink to a file: the file, like ls
  ]);
  t.is(human.code, 0, human.stderr);
  const lines = human.stdout.toString('utf8').trimEnd().split('\n');
  t.deepEqual(lines.map((l) => /^\S+ +\d+ \S+ \S+ (.*)$/.exec(l)![1]!.replace(/ -> .*$/, '')), debugfsLs(r.img, r.layout.a.offset, '/').map((e) => e.name));
  t.true(lines.includes(`-rw-r--r-- ${'3145733'.padStart(7)} 2025-11-29 00:00:00 modloop`), lines.join('\n'));
  t.true(lines.some((l) => /^lrwxrwxrwx +6 .* abc -> \/a\/b\/c$/.test(l)), lines.join('\n'));
  t.true(lines.some((l) => /^drwx------ .* lost\+found$/.test(l)));
  t.is(json.code, 0, json.stderr);
  const j = JSON.parse(json.stdout.toString('utf8'));
  t.true(j.directory);
  t.deepEqual(j.entries.map((e: any) => e.name).sort(), debugfsLs(r.img, r.layout.a.offset, '/boot').map((e) => e.name));
  t.is(j.entries.find((e: any) => e.name === 'vmlinuz').target, '../kernel');
  t.is(esp.code, 0, esp.stderr);
  t.deepEqual(
    JSON.parse(esp.stdout.toString('utf8')).entries.map((e: any) => ({ name: e.name, dir: e.type === 'directory', size: e.size })).sort(byName),
    mdir(r.img, r.layout.esp.offset, '/'),
  );
  t.is(one.code, 0, one.stderr);
  // A symlink given as the path is listed as the link (ls -d); -L follows it.
  t.regex(one.stdout.toString('utf8'), /^lrwxrwxrwx 9 2025-11-29 00:00:00 vmlinuz -> \.\.\/kernel\n$/);
  const followed = await cli(['ls', '-L', r.img, 'psyopsOS-A:/boot/vmlinuz']);
  t.regex(followed.stdout.toString('utf8'), /^-rw-r--r-- 300017 2025-11-29 00:00:00 vmlinuz\n$/);
});

test('CLI cat: streams files byte-identical to debugfs dump and mcopy (binary, multi-MiB, empty, unicode names, through symlinks)', async (t) => {
  const r = ready(t);
  if (!r) return;
  const dump = (off: number, path: string) => {
    const f = join(r.dir, `dump-${Math.random().toString(36).slice(2)}`);
    sh('debugfs', ['-R', `dump "${path}" ${f}`, `${r.img}?offset=${off}`]);
    return readFileSync(f);
  };
  const cases: [string, () => Buffer][] = [
    ['psyopsOS-A:/modloop', () => dump(r.layout.a.offset, '/modloop')],
    ['psyopsOS-B:/boot/vmlinuz', () => dump(r.layout.b.offset, '/kernel')],
    ['psyopsOS-A:/résumé-ünïcødé.txt', () => dump(r.layout.a.offset, '/résumé-ünïcødé.txt')],
    ['psyopsOS-A:/empty', () => Buffer.alloc(0)],
    ['psyopsOS-A:/abc/d/deep.txt', () => dump(r.layout.a.offset, '/a/b/c/d/deep.txt')],
    ['PSYOPSOSEFI:/EFI/BOOT/BOOTX64.EFI', () => sh('mcopy', ['-n', '-i', `${r.img}@@${r.layout.esp.offset}`, '::/EFI/BOOT/BOOTX64.EFI', '-'])],
    ['PSYOPSOSEFI:/memtest86plus-long-file-name.efi', () => sh('mcopy', ['-n', '-i', `${r.img}@@${r.layout.esp.offset}`, '::/memtest86plus-long-file-name.efi', '-'])],
    ['PSYOPSOSEFI:/grub/grubenv', () => sh('mcopy', ['-n', '-i', `${r.img}@@${r.layout.esp.offset}`, '::/grub/grubenv', '-'])],
  ];
  const results = await Promise.all(cases.map(([spec]) => cli(['cat', r.img, spec])));
  cases.forEach(([spec, want], i) => {
    t.is(results[i]!.code, 0, `${spec}: ${results[i]!.stderr}`);
    t.is(results[i]!.stderr, '');
    t.true(results[i]!.stdout.equals(want()), spec);
  });
  t.is(results[0]!.stdout.length, 3 * 2 ** 20 + 5);
});

test('bad specs and paths: one-line errors, exit 1', async (t) => {
  const r = ready(t);
  if (!r) return;
  const [nolabel, nocolon, missing, missingEsp, catDir, catDirEsp, notDir] = await Promise.all([
    cli(['ls', r.img, 'psyopsOS-C:/']),
    cli(['cat', r.img, '/kernel']),
    cli(['cat', r.img, 'psyopsOS-A:/nope']),
    cli(['ls', r.img, 'PSYOPSOSEFI:/grub/nope']),
    cli(['cat', r.img, 'psyopsOS-A:/boot']),
    cli(['cat', r.img, 'PSYOPSOSEFI:/EFI']),
    cli(['ls', r.img, 'psyopsOS-A:/kernel/x']),
  ]);
  oneLineError(t, nolabel, /no partition labelled "psyopsOS-C" \(labels: PSYOPSOSEFI, psyops-secret, psyopsOS-A, psyopsOS-B\)/);
  oneLineError(t, nocolon, /"\/kernel": expected LABEL:\/path/);
  oneLineError(t, missing, /psyopsOS-A:\/nope: no such file or directory$/m);
  oneLineError(t, missingEsp, /PSYOPSOSEFI:\/grub\/nope: no such file or directory$/m);
  oneLineError(t, catDir, /psyopsOS-A:\/boot: is a directory$/m);
  oneLineError(t, catDirEsp, /PSYOPSOSEFI:\/EFI: is a directory$/m);
  oneLineError(t, notDir, /psyopsOS-A:\/kernel\/x: not a directory$/m);
  // Labels ignoring case work on ext4 as on FAT (test/ls-options.test.ts); an unknown one is still an error.
  oneLineError(t, await cli(['ls', r.img, 'psyopsos-c:/']), /no partition labelled "psyopsos-c"/);
});

/** A sparse copy of the reference image with `bytes` written at `offset`. */
function damaged(r: InspectImage, name: string, offset: number, bytes: Buffer): string {
  const img = join(r.dir, name);
  sh('cp', ['--sparse=always', r.img, img]);
  const fd = openSync(img, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
  return img;
}

test('corrupt filesystems: zeroed ext4 superblock, bad superblock checksum, zeroed FAT boot sector: one-line errors, exit 1', async (t) => {
  const r = ready(t);
  if (!r) return;
  const zeroSb = damaged(r, 'zero-sb.img', r.layout.a.offset + 1024, Buffer.alloc(1024));
  const badCsum = damaged(r, 'bad-csum.img', r.layout.a.offset + 1024 + 0x20, Buffer.from([0x55])); // s_blocks_per_group
  const zeroBoot = damaged(r, 'zero-boot.img', r.layout.esp.offset, Buffer.alloc(512));
  // e2fsck and fsck.fat agree these are broken.
  t.not(run0('e2fsck', ['-fn', `${zeroSb}?offset=${r.layout.a.offset}`]), 0);
  const [a, b, c, d] = await Promise.all([
    cli(['ls', zeroSb, 'psyopsOS-A:/']),
    cli(['cat', badCsum, 'psyopsOS-A:/kernel']),
    cli(['ls', zeroBoot, 'PSYOPSOSEFI:/']),
    cli(['ls', zeroSb, 'psyopsOS-B:/boot']),
  ]);
  oneLineError(t, a, /psyopsOS-A \(partition 3\): no FAT32 or ext4 filesystem found/);
  oneLineError(t, b, /ext4 superblock: s_checksum mismatch/);
  oneLineError(t, c, /PSYOPSOSEFI \(partition 1\): no FAT32 or ext4 filesystem found/);
  t.is(d.code, 0, d.stderr); // the other slot is unaffected
});

function run0(cmd: string, args: string[]): number {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status ?? -1;
}

test('cat into a pipe closed early (| head -c): exit 0, nothing on stderr', async (t) => {
  const r = ready(t);
  if (!r) return;
  const out = await execFileP('bash', ['-c', `set -o pipefail; "${process.execPath}" --import=tsx --conditions=source packages/cli/src/run.ts cat '${r.img}' psyopsOS-A:/modloop | head -c 10 | wc -c`], {
    cwd: repoRoot,
  });
  t.is(out.stdout.trim(), '10');
  t.is(out.stderr, '');
});
