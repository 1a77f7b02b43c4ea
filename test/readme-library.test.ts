/**
 * Issue 13, the README's "Use as a library": every ```ts block under that heading is written into
 * a temporary directory inside the workspace (so `@diskimg/*` resolve as for any sibling package),
 * compiled with `tsc --strict --noEmit`, then run in order with tsx against small real inputs
 * (keys and signatures made by the CLI, tarballs by tar). What they produce is checked by real
 * tools: e2fsck -fn and debugfs on the ext4 image and on the disk's slots, minisign on the
 * signature. So the examples cannot rot.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './helpers/cli.js';
import { needTools, ranTool } from './helpers/skip.js';
import { checkSlot, extract, run } from './helpers/update.js';
import { HEADING, makeReadmeInputs, readmeLibraryBlocks } from './helpers/readme.js';

// Inside packages/cli: its node_modules has every @diskimg package (the workspace root's has only the CLI).
const work = mkdtempSync(join(repoRoot, 'packages', 'cli', '.readme-library-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const ENV = { SOURCE_DATE_EPOCH: '1764374400' };

test('the README library examples compile with tsc --strict and run; e2fsck, debugfs and minisign check their output', async (t) => {
  if (!needTools(t, 'tar', 'e2fsck', 'debugfs', 'sfdisk', 'blkid', 'minisign', 'mksquashfs', 'unsquashfs')) return;
  const blocks = readmeLibraryBlocks();
  t.true(blocks.length >= 6, `only ${blocks.length} ts blocks under "${HEADING}"`);

  await makeReadmeInputs(work, ENV);

  // ---- compile (strict), then run each block in order ----
  writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'readme-library-examples', private: true, type: 'module' }));
  writeFileSync(
    join(work, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'ES2022', lib: ['ES2023'], module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], customConditions: ['source'] },
      include: ['example-*.ts'],
    }),
  );
  blocks.forEach((code, i) => writeFileSync(join(work, `example-${i + 1}.ts`), code));
  const tsc = spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(work, 'tsconfig.json')], { cwd: work, encoding: 'utf8' });
  t.is(tsc.status, 0, `tsc: ${tsc.stdout}${tsc.stderr}`);
  const out: string[] = [];
  for (let i = 0; i < blocks.length; i++) {
    const r = spawnSync(process.execPath, ['--import=tsx', '--conditions=source', `example-${i + 1}.ts`], { cwd: work, encoding: 'utf8', env: { ...process.env, ...ENV } });
    t.is(r.status, 0, `example ${i + 1}: ${r.stderr}`);
    if (r.status !== 0) return;
    out.push(r.stdout);
  }

  // 1. ext4 from a tar stream: e2fsck clean, debugfs reads the files back.
  const ext4 = join(work, 'rootfs.ext4');
  const fsck = spawnSync('e2fsck', ['-fn', ext4], { encoding: 'utf8' });
  t.is(fsck.status, 0, fsck.stdout + fsck.stderr);
  t.is(run('debugfs', ['-R', 'cat /etc/hostname', ext4]), 'node1\n');
  t.is(run('debugfs', ['-R', 'cat /README', ext4]), 'from a tar stream\n'.repeat(1000));
  t.is(run('blkid', ['-p', '-s', 'LABEL', '-o', 'value', ext4]).trim(), 'rootfs');
  t.regex(out[0]!, /^rootfs\.ext4: \d+ files, \d+ of \d+ blocks used\n$/);
  // 2. the disk: slot A holds os.tar (e2fsck, debugfs rdump, blkid).
  const img = join(work, 'disk.img');
  checkSlot(t, img, 'psyopsOS-A', join(work, 'os.tar'), work);
  t.regex(out[1]!, /^disk\.img: psyopsOS-A \d+ files, psyopsOS-B \d+ files; boots psyopsOS-A\n$/);
  // 3. the file read from slot A is what debugfs reads there.
  const partA = extract(img, 'psyopsOS-A', work);
  t.is(readFileSync(join(work, 'kernel-from-A'), 'utf8'), run('debugfs', ['-R', 'cat /kernel', partA]));
  t.is(readFileSync(join(work, 'kernel-from-A'), 'utf8'), 'kernel one\n');
  rmSync(partA);
  t.regex(out[2]!, /^psyopsOS-A: .*\bkernel\b.*\n$/);
  // 4. /etc/os-release inside slot A's /squashfs: what unsquashfs extracts from the same image.
  t.is(out[3], `psyopsOS-A (squashfs): ${/PRETTY_NAME="(.*)"/.exec(run('unsquashfs', ['-cat', join(work, 'root.sqfs'), '/etc/os-release']))![1]}\n`);
  // 5. the signature: minisign agrees.
  const m = spawnSync('minisign', ['-V', '-m', join(work, 'os-v2.tar'), '-p', join(work, 'release.pub')], { encoding: 'utf8' });
  t.is(m.status, 0, m.stderr);
  const trusted = /Trusted comment: (.*)/.exec(m.stdout)?.[1];
  t.is(out[4], `os-v2.tar: good signature by key ${/key ([0-9A-F]{1,16})\n/.exec(readFileSync(join(work, 'release.pub'), 'utf8'))![1]!.padStart(16, '0')}; trusted comment: ${trusted}\nversion 20251201-000000\n`);
  // 6. the update: slot B now holds os-v2.tar, on trial.
  checkSlot(t, img, 'psyopsOS-B', join(work, 'os-v2.tar'), work);
  t.is(out[5], 'psyopsOS-B: 20251129-000000 -> 20251201-000000; next boot: psyopsOS-B on trial (3 tries)\n');
  ranTool(t, 'tsc');
});
