/**
 * Many-file payload (issue 14): one 1.5 GiB slot from a generated tarball of ~15,600 entries
 * (15,000 small files, ~500 MB; bench/workload.ts `ensureManyFileTars`), ours (`createExt4` from
 * the tar, dist build, plain node, fdatasync) against `tar -xf` of the same tarball into a
 * directory + `mkfs.ext4 -d` of it (same features) + sync, in the same run. Then ours again from
 * the tarball with twice the entries (~31,000) for the memory target.
 * Targets: wall ≤ 1.0× unpack + mkfs.ext4 -d; peak RSS ≤ 100 MiB, flat as the entries double
 * (spread ≤ 10 % of the smaller).
 * Run: node --import=tsx bench/manyfiles.bench.ts (after pnpm build). BENCH_RUNS=N (default 2), best wall.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bestOf, measure, report } from './lib.js';
import { ensureManyFileTars } from './workload.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'packages/diskimage/dist/index.js');
const PARTITIONS = join(ROOT, 'packages/partitions/dist/index.js');
const CLI_MAIN = join(ROOT, 'packages/cli/dist/main.js');
const OUT = join(ROOT, 'bench/out/manyfiles');
const RUNS = Number(process.env.BENCH_RUNS ?? 2);

if (!existsSync(DIST)) {
  console.error(`bench/manyfiles: ${DIST} missing; run pnpm build first`);
  process.exit(1);
}
const { many, many2x } = ensureManyFileTars();
mkdirSync(OUT, { recursive: true });
const ours = join(OUT, 'ours.img');
const theirs = join(OUT, 'mkfs.img');
const tree = join(OUT, 'tree');
const script = join(OUT, 'create.mjs');
writeFileSync(
  script,
  // The V8 flags the CLI sets for create (SMALL_HEAP_V8_FLAGS in packages/cli/src/main.ts); BENCH_V8_DEFAULT=1 leaves them off.
  `${process.env.BENCH_V8_DEFAULT === '1' ? '' : `(await import('node:v8')).setFlagsFromString((await import(${JSON.stringify(CLI_MAIN)})).SMALL_HEAP_V8_FLAGS);\n`}import { FileDevice, openTarFile, createExt4 } from ${JSON.stringify(DIST)};
import { makeEntropy } from ${JSON.stringify(PARTITIONS)};
const dev = await FileDevice.create(process.argv[2], 1536 * 2 ** 20);
await createExt4(dev, openTarFile(process.argv[3]), { label: 'psyopsOS-A', entropy: makeEntropy('bench'), now: 1700000000 });
await dev.flush();
await dev.close();
`,
);
const load0 = loadavg();
const mkfs = `mkdir ${tree} && tar -xf ${many.tar} -C ${tree} && mkfs.ext4 -q -F -b 4096 -I 256 -L psyopsOS-A -O ^resize_inode,^metadata_csum_seed,^orphan_file -d ${tree} ${theirs} 1536M && sync`;
const oursRow = (name: string, tar: string) =>
  bestOf(RUNS, () => {
    rmSync(ours, { force: true });
    spawnSync('sync');
    return measure(name, `node ${script} ${ours} ${tar}`, { output: ours });
  });
const rows = [
  bestOf(RUNS, () => {
    rmSync(theirs, { force: true });
    rmSync(tree, { recursive: true, force: true });
    spawnSync('sync');
    const m = measure('tar -xf + mkfs.ext4 -d TREE + sync', mkfs, { output: theirs });
    rmSync(tree, { recursive: true, force: true });
    return m;
  }),
  oursRow(`diskimg createExt4 from tar (${many.entries} entries)`, many.tar),
];
const fsck1 = spawnSync('e2fsck', ['-fn', ours], { encoding: 'utf8' });
rows.push(oursRow(`diskimg createExt4 from tar (${many2x.entries} entries)`, many2x.tar));
const fsck2 = spawnSync('e2fsck', ['-fn', ours], { encoding: 'utf8' });
const load1 = loadavg();
report(`many files: 1.5 GiB slot from ${many.entries} entries (${(many.bytes / 2 ** 20).toFixed(0)} MiB tar); ${many2x.entries} entries (${(many2x.bytes / 2 ** 20).toFixed(0)} MiB) for memory`, rows, 'tar -xf + mkfs.ext4 -d TREE + sync');
console.log(`\nload average ${load0.map((l) => l.toFixed(1)).join(' / ')} → ${load1.map((l) => l.toFixed(1)).join(' / ')} (1/5/15 min) on ${cpus().length} cores`);
const [anchor, o1, o2] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0]];
const ratio = o1.wallS / anchor.wallS;
const spread = Math.abs(o2.maxRssMiB - o1.maxRssMiB);
console.log(`| target | result | measured |\n|---|---|---|`);
console.log(`| wall ≤ 1.0× unpack + mkfs.ext4 -d | ${ratio <= 1 ? 'PASS' : 'MISS'} | ${o1.wallS.toFixed(2)} s / ${anchor.wallS.toFixed(2)} s = ${ratio.toFixed(2)} (CPU ${o1.cpuS.toFixed(2)} vs ${anchor.cpuS.toFixed(2)} s) |`);
console.log(`| peak RSS ≤ 100 MiB | ${Math.max(o1.maxRssMiB, o2.maxRssMiB) <= 100 ? 'PASS' : 'MISS'} | ${o1.maxRssMiB.toFixed(1)} / ${o2.maxRssMiB.toFixed(1)} MiB |`);
console.log(`| flat as entries double (spread ≤ 10 %) | ${spread <= 0.1 * Math.min(o1.maxRssMiB, o2.maxRssMiB) ? 'PASS' : 'MISS'} | spread ${spread.toFixed(1)} MiB |`);
console.log(`e2fsck -fn on ours: exit ${fsck1.status} / ${fsck2.status}: ${fsck2.stdout.trim().split('\n').pop()}`);
rmSync(ours, { force: true });
rmSync(theirs, { force: true });
