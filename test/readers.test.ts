// Readers against the real tools (issue 26 items 18–21): images made by mkfs.ext4 -d (with and
// without inline_data), mksquashfs and gensquashfs, put into GPT partitions; our `ls`/`cat` judged
// by debugfs, unsquashfs/rdsquashfs and a kernel loop mount.
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runCli } from './helpers/cli.js';
import { gptDisk, sh } from './helpers/fs-disk.js';
import { isRoot, needRoot, needTools } from './helpers/skip.js';

const MiB = 1 << 20;
const base = mkdtempSync(join(tmpdir(), 'diskimg-readers-'));
process.on('exit', () => rmSync(base, { recursive: true, force: true }));

function bytes(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let o = 0, k = 0; o < n; k++, o += 32) createHash('sha256').update(`${seed}:${k}`).digest().copy(out, o, 0, Math.min(32, n - o));
  return out;
}

/** A tree with a big file, devices (as root) and names that are not UTF-8. */
function makeTree(root: string): void {
  mkdirSync(join(root, 'dev'), { recursive: true });
  mkdirSync(join(root, 'names'), { recursive: true });
  writeFileSync(join(root, 'big'), bytes('big', 24 * MiB + 123));
  writeFileSync(Buffer.from(`${root}/names/a\xff`, 'latin1'), 'ff\n');
  writeFileSync(Buffer.from(`${root}/names/a\xfe`, 'latin1'), 'fe\n');
  writeFileSync(join(root, 'names', 'back\\slash'), 'bs\n');
  if (isRoot) {
    sh('mknod', [join(root, 'dev', 'ttyS0'), 'c', '4', '64']);
    sh('mknod', [join(root, 'dev', 'nvme'), 'b', '259', '70000']);
  }
}

let ext4Disk: Promise<string> | undefined;
/** disk.img: partition "rd-ext4" (mkfs.ext4 -d of makeTree), its filesystem image beside it. */
function ext4Image(): Promise<string> {
  ext4Disk ??= (async () => {
    const root = join(base, 'ext4-root');
    makeTree(root);
    const fs = join(base, 'ext4.fs');
    sh('mkfs.ext4', ['-q', '-F', '-L', 'rd-ext4', '-d', root, fs, '48M']);
    const disk = join(base, 'ext4-disk.img');
    gptDisk(disk, [{ name: 'rd-ext4', image: fs }]);
    return disk;
  })();
  return ext4Disk;
}

test('cat into a slow pipe: no MaxListenersExceededWarning, bytes equal debugfs dump (26.20)', async (t) => {
  if (!needTools(t, 'mkfs.ext4', 'sgdisk', 'debugfs')) return;
  const disk = await ext4Image();
  // A reader that takes its time: every 1 MiB chunk waits for 'drain'.
  const child = spawn(process.execPath, ['--import=tsx', '--conditions=source', 'packages/cli/src/run.ts', 'cat', disk, 'rd-ext4:/big'], { cwd: repoRoot });
  const err: Buffer[] = [];
  child.stderr.on('data', (d: Buffer) => err.push(d));
  const h = createHash('sha256');
  let n = 0;
  child.stdout.on('data', (d: Buffer) => {
    h.update(d);
    n += d.length;
    child.stdout.pause();
    setTimeout(() => child.stdout.resume(), 2);
  });
  const code = await new Promise<number | null>((r) => child.on('close', r));
  const stderr = Buffer.concat(err).toString();
  t.is(code, 0, stderr);
  t.is(stderr, '');
  t.is(n, 24 * MiB + 123);
  const want = createHash('sha256').update(sh('debugfs', ['-R', 'cat /big', join(base, 'ext4.fs')])).digest('hex');
  t.is(h.digest('hex'), want);
});
