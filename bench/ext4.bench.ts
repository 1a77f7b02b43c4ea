/**
 * ext4 slot creation: our writer (dist build, plain node) streaming the OS
 * tarball into a 1.5 GiB slot, against `mkfs.ext4 -d TREE` of the same tree
 * into a file of the same size, in the same run.
 * Workload: bench/workload.ts's ~451 MiB OS payload (kernel 14 MiB,
 * initramfs 24 MiB, modloop 100 MiB, 300 MiB incompressible squashfs,
 * System.map, config, 200 DTBs), the same one create.bench.ts uses.
 * Run: node --import=tsx bench/ext4.bench.ts (after pnpm build).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bestOf, measure, report } from './lib.js';
import { ensureWorkload } from './workload.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'packages/diskimage/dist/index.js');
const PARTITIONS = join(ROOT, 'packages/partitions/dist/index.js');
const OUT = join(ROOT, 'bench/out/ext4');

if (!existsSync(DIST)) {
  console.error(`bench/ext4: ${DIST} missing; run pnpm build first`);
  process.exit(1);
}
// The OS payload shared with create.bench.ts (bench/workload.ts, cached in bench/out/).
const { osTree: TREE, osTar: TAR } = ensureWorkload();
mkdirSync(OUT, { recursive: true });
const ours = join(OUT, 'ours.img');
const theirs = join(OUT, 'mkfs.img');
const script = join(OUT, 'create.mjs');
writeFileSync(
  script,
  `import { FileDevice, openTarFile, createExt4 } from ${JSON.stringify(DIST)};
import { makeEntropy } from ${JSON.stringify(PARTITIONS)};
const dev = await FileDevice.create(process.argv[2], 1536 * 2 ** 20);
await createExt4(dev, openTarFile(process.argv[3]), { label: 'psyopsOS-A', entropy: makeEntropy('bench'), now: 1700000000 });
await dev.flush();
await dev.close();
`,
);

const runs = 3;
// Same feature list as ours (mke2fs.conf's ext4 defaults here lack only these differences).
const mkfs = `mkfs.ext4 -q -F -b 4096 -I 256 -L psyopsOS-A -O ^resize_inode,^metadata_csum_seed,^orphan_file -d ${TREE} ${theirs} 1536M && sync -d ${theirs} 2>/dev/null || sync`;
const rows = [
  bestOf(runs, () => {
    rmSync(theirs, { force: true });
    return measure('mkfs.ext4 -d TREE', mkfs, { output: theirs });
  }),
  bestOf(runs, () => {
    rmSync(ours, { force: true });
    return measure('diskimg createExt4 from tar (node, dist)', `node ${script} ${ours} ${TAR}`, { output: ours });
  }),
];
report('ext4: 1.5 GiB slot from a ~450 MiB OS payload', rows, 'mkfs.ext4 -d TREE');
const ratio = rows[1]!.wallS / rows[0]!.wallS;
console.log(`\nwall ratio ours / mkfs.ext4 -d: ${ratio.toFixed(2)}; CPU ours ${rows[1]!.cpuS.toFixed(2)} s vs ${rows[0]!.cpuS.toFixed(2)} s; peak RSS ours ${rows[1]!.maxRssMiB.toFixed(1)} MiB vs ${rows[0]!.maxRssMiB.toFixed(1)} MiB`);
const fsck = spawnSync('e2fsck', ['-fn', ours], { encoding: 'utf8' });
console.log(`e2fsck -fn on our image: exit ${fsck.status}: ${fsck.stdout.trim().split('\n').pop()}`);
rmSync(ours, { force: true });
rmSync(theirs, { force: true });
