/**
 * FAT32 ESP populate: our library (dist build, plain node) against
 * `mkfs.fat -C -F32` + `mcopy -s` on the same tree, in the same run. Both end
 * with the image on disk (we fdatasync; the anchor gets `sync FILE`).
 * Workload (temp dir): 128 MiB ESP, EFI/BOOT/BOOTX64.EFI 4 MiB, 200 small
 * files in 10 subdirectories, one 60 MiB incompressible file.
 * Besides the whole-process row, the populate script reports node's start-up,
 * the library import and the createFat32 call itself, timed inside the process.
 * Run: node --import=tsx bench/fat32.bench.ts (after pnpm build); BENCH_RUNS=N (default 3).
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bestOf, measure, report } from './lib.js';

const MiB = 2 ** 20;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'packages/diskimage/dist/index.js');
const PARTITIONS = join(ROOT, 'packages/partitions/dist/index.js');

/** Incompressible, deterministic bytes (AES-128-CTR keystream keyed by name). */
function bytes(name: string, n: number): Buffer {
  const k = createHash('sha256').update(`fat32-bench\0${name}`).digest();
  return createCipheriv('aes-128-ctr', k.subarray(0, 16), k.subarray(16, 32)).update(Buffer.alloc(n));
}

function makeWorkload(dir: string): void {
  const w = (p: string, b: Buffer) => {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), b);
  };
  w('EFI/BOOT/BOOTX64.EFI', bytes('bootx64', 4 * MiB));
  for (let i = 0; i < 200; i++) w(`grub/mod${i % 10}/module number ${i}.mod`, bytes(`small${i}`, 1000 + ((i * 7919) % 30000)));
  w('grub/grub.cfg', Buffer.from('set timeout=1\n'));
  w('big/payload-60MiB.bin', bytes('big', 60 * MiB));
}

if (!existsSync(DIST)) {
  console.error(`bench/fat32: ${DIST} missing; run pnpm build first`);
  process.exit(1);
}
const tmp = mkdtempSync(join(tmpdir(), 'fat32-bench-'));
const src = join(tmp, 'src');
makeWorkload(src);
const ours = join(tmp, 'ours.img');
const theirs = join(tmp, 'mkfs.img');
const script = join(tmp, 'populate.mjs');
const timings = join(tmp, 'timings.json');
// Times inside the process: node's start-up (until the script runs), the
// library's import, and the populate itself (FileDevice.create + createFat32,
// which ends with fdatasync, + close) — the part comparable to mkfs.fat + mcopy + sync.
writeFileSync(
  script,
  `const start = performance.now();
const { FileDevice, readDirTree, createFat32 } = await import(${JSON.stringify(DIST)});
const { makeEntropy } = await import(${JSON.stringify(PARTITIONS)});
const imported = performance.now();
const dev = await FileDevice.create(process.argv[2], 128 * 2 ** 20);
await createFat32(dev, readDirTree(process.argv[3]), { label: 'PSYOPSOSEFI', entropy: makeEntropy('bench') });
await dev.close();
const done = performance.now();
(await import('node:fs')).writeFileSync(process.argv[4], JSON.stringify({ startupMs: start, importMs: imported - start, populateMs: done - imported }));
`,
);

const runs = Number(process.env.BENCH_RUNS ?? 3);
const inProcess: { startupMs: number; importMs: number; populateMs: number }[] = [];
const rows = [
  bestOf(runs, () => {
    rmSync(theirs, { force: true });
    return measure('mkfs.fat -C + mcopy -s + sync', `mkfs.fat -C -F32 -n PSYOPSOSEFI ${theirs} 131072 >/dev/null && mcopy -s -i ${theirs} ${src}/* ::/ && sync ${theirs}`, { output: theirs });
  }),
  bestOf(runs, () => {
    rmSync(ours, { force: true });
    const m = measure('diskimg populate (node, dist)', `node ${script} ${ours} ${src} ${timings}`, { output: ours });
    inProcess.push(JSON.parse(readFileSync(timings, 'utf8')));
    return m;
  }),
];
report('FAT32: 128 MiB ESP, 4 MiB BOOTX64.EFI + 200 small files + 60 MiB file', rows, 'mkfs.fat -C + mcopy -s + sync');
const ratio = rows[1].wallS / rows[0].wallS;
console.log(`\nwall ratio ours / mkfs.fat+mcopy: ${ratio.toFixed(2)}; peak RSS ours ${rows[1].maxRssMiB.toFixed(1)} MiB vs ${rows[0].maxRssMiB.toFixed(1)} MiB`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pick = (k: keyof (typeof inProcess)[number]) => inProcess.map((x) => x[k]);
const pop = pick('populateMs');
console.log(
  `in-process (${runs} runs, min / median ms): node start-up ${Math.min(...pick('startupMs')).toFixed(0)} / ${median(pick('startupMs')).toFixed(0)}, ` +
    `import of the library ${Math.min(...pick('importMs')).toFixed(0)} / ${median(pick('importMs')).toFixed(0)}, ` +
    `populate (createFat32 incl. fdatasync) ${Math.min(...pop).toFixed(0)} / ${median(pop).toFixed(0)}`,
);
console.log(`populate ratio (in-process, best) ours / mkfs.fat+mcopy+sync wall: ${(Math.min(...pop) / 1000 / rows[0].wallS).toFixed(2)}`);
const fsck = spawnSync('fsck.fat', ['-n', ours], { encoding: 'utf8' });
console.log(`fsck.fat -n on our image: exit ${fsck.status}: ${fsck.stdout.trim().split('\n').pop()}`);
rmSync(tmp, { recursive: true, force: true });
