/**
 * SquashFS reader (issue 17): listing a ~15,000-entry root and reading /etc/os-release +
 * /lib/apk/db/installed, ours (library, in this process: a fresh reader per run, so caches start
 * cold) against `unsquashfs -lln` and `unsquashfs -cat` (child processes) in the same run, with
 * ratios. The image is built once per run with mksquashfs into a temp dir: 150 directories × 100
 * files (some 4–40 KiB), an apk database of 600 packages, -comp xz when our xz decoder works, else
 * gzip (printed). Ours also reports device reads (metadata blocks + data blocks) for the two files.
 * Run: node --import=tsx --conditions=source bench/squashfs.bench.ts. Nothing is asserted.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { FileDevice, openSquashfs, type SquashfsInode, type SquashfsReader } from '../packages/diskimage/src/index.js';
import { xzDecompress } from '../packages/diskimage/src/compress/xz.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'sqfs-bench-'));
try {
  const root = join(dir, 'root');
  for (let d = 0; d < 150; d++) {
    const p = join(root, 'usr', `d${d}`);
    mkdirSync(p, { recursive: true });
    for (let f = 0; f < 100; f++) writeFileSync(join(p, `file-${f}.so`), f % 10 === 0 ? Buffer.alloc(4096 * (1 + (f % 10)), d) : `${d}/${f}\n`);
  }
  mkdirSync(join(root, 'etc'));
  mkdirSync(join(root, 'lib/apk/db'), { recursive: true });
  writeFileSync(join(root, 'etc/os-release'), 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n');
  let db = '';
  for (let k = 0; k < 600; k++) db += `C:Q1${k}=\nP:pkg-${k}\nV:1.${k}-r0\nA:x86_64\nS:1000\nI:4000\nT:package ${k}\nF:usr/lib\nR:lib${k}.so\nZ:Q1x=\n\n`;
  writeFileSync(join(root, 'lib/apk/db/installed'), db);
  let comp = 'gzip';
  try {
    const p = spawnSync('xz', ['-c'], { input: 'p' }).stdout;
    if (Buffer.from(xzDecompress(p, 10)).toString() === 'p') comp = 'xz';
  } catch {
    // the xz decoder is not built in this tree: gzip
  }
  const img = join(dir, 'root.sqfs');
  spawnSync('mksquashfs', [root, img, '-comp', comp, '-noappend', '-quiet', '-no-progress'], { stdio: 'inherit' });

  const time = async (f: () => Promise<unknown> | unknown) => {
    let best = Infinity;
    for (let k = 0; k < RUNS; k++) {
      const t0 = performance.now();
      await f();
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  };
  let entries = 0;
  const listOurs = async () => {
    const dev = await FileDevice.open(img);
    const fs = await openSquashfs(dev);
    entries = 0;
    const rec = async (d: SquashfsInode, path: string) => {
      for (const e of await fs.readdirInode(d, path)) {
        entries++;
        await fs.statInode(e.inode);
        if (e.inode.type === 'directory') await rec(e.inode, `${path}/${e.name}`);
      }
    };
    await rec(fs.root, '');
    await dev.close();
  };
  let reads = 0;
  const readOurs = async () => {
    const dev = await FileDevice.open(img);
    const fs: SquashfsReader = await openSquashfs(dev);
    for (const p of ['/etc/os-release', '/lib/apk/db/installed']) for await (const _ of fs.readFile(p)) void _;
    reads = fs.meta.reads + fs.dataReads;
    await dev.close();
  };
  const run = (args: string[]) => () => {
    const r = spawnSync('unsquashfs', args, { maxBuffer: 256 << 20 });
    if (r.status !== 0) throw new Error(`unsquashfs ${args.join(' ')}: ${r.stderr}`);
  };
  const tList = await time(listOurs);
  const uList = await time(run(['-lln', img]));
  const tRead = await time(readOurs);
  const uRead = await time(run(['-cat', img, '/etc/os-release', '/lib/apk/db/installed']));
  const f = (ms: number) => `${ms.toFixed(1)} ms`;
  console.log(`squashfs bench: ${comp} image, ${entries} entries, best of ${RUNS}, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`  list all (readdir + stat)   ours ${f(tList).padStart(10)}   unsquashfs -lln ${f(uList).padStart(10)}   ours/unsquashfs ${(tList / uList).toFixed(2)}`);
  console.log(`  read os-release + apk db    ours ${f(tRead).padStart(10)}   unsquashfs -cat ${f(uRead).padStart(10)}   ours/unsquashfs ${(tRead / uRead).toFixed(2)}   (${reads} device reads)`);
  console.log('  (ours in-process, cold reader per run; unsquashfs includes its process start)');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
