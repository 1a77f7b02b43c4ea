/**
 * ext4 slot creation: our writer (dist build, plain node) streaming the OS
 * tarball into a 1.5 GiB slot, against `mkfs.ext4 -d TREE` of the same tree
 * into a file of the same size, in the same run.
 * Workload (~450 MiB, cached in bench/out/ext4/): boot/vmlinuz-lts 14 MiB,
 * boot/initramfs-lts 24 MiB, boot/modloop-lts 100 MiB, boot/System.map,
 * boot/config, 200 DTBs in boot/dtbs/, a 300 MiB incompressible squashfs.
 * Run: node --import=tsx bench/ext4.bench.ts (after pnpm build).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bestOf, measure, report } from './lib.js';

const MiB = 2 ** 20;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'packages/diskimage/dist/index.js');
const PARTITIONS = join(ROOT, 'packages/partitions/dist/index.js');
const OUT = join(ROOT, 'bench/out/ext4');
const TREE = join(OUT, 'tree');
const TAR = join(OUT, 'psyopsOS.tar');

/** Incompressible, deterministic bytes (AES-128-CTR keystream keyed by name). */
function bytes(name: string, n: number): Buffer {
  const k = createHash('sha256').update(`ext4-bench\0${name}`).digest();
  return createCipheriv('aes-128-ctr', k.subarray(0, 16), k.subarray(16, 32)).update(Buffer.alloc(n));
}

function makeWorkload(): void {
  if (existsSync(TAR)) return;
  rmSync(OUT, { recursive: true, force: true });
  const w = (p: string, b: Buffer | string) => {
    mkdirSync(dirname(join(TREE, p)), { recursive: true });
    writeFileSync(join(TREE, p), b);
  };
  w('boot/vmlinuz-lts', bytes('kernel', 14 * MiB));
  w('boot/initramfs-lts', bytes('initramfs', 24 * MiB));
  w('boot/modloop-lts', bytes('modloop', 100 * MiB));
  w('boot/System.map-lts', Array.from({ length: 120_000 }, (_, i) => `ffffffff8${i.toString(16).padStart(7, '0')} T symbol_${i}\n`).join(''));
  w('boot/config-lts', Array.from({ length: 8000 }, (_, i) => `CONFIG_OPTION_${i}=y\n`).join(''));
  for (let i = 0; i < 200; i++) w(`boot/dtbs/vendor${i % 12}/board-${i}.dtb`, bytes(`dtb${i}`, 20_000 + ((i * 7919) % 60_000)));
  for (let off = 0, i = 0; off < 300 * MiB; off += 50 * MiB, i++) {
    // Written in pieces so generating it stays small in memory.
    const piece = bytes(`squashfs${i}`, 50 * MiB);
    if (i === 0) w('squashfs/psyopsOS.squashfs', piece);
    else execFileSync('sh', ['-c', `cat >> ${join(TREE, 'squashfs/psyopsOS.squashfs')}`], { input: piece });
  }
  w('psyopsOS-A', 'psyopsOS-A');
  execFileSync('tar', ['-C', TREE, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-cf', `${TAR}.part`, '.']);
  renameSync(`${TAR}.part`, TAR);
}

if (!existsSync(DIST)) {
  console.error(`bench/ext4: ${DIST} missing; run pnpm build first`);
  process.exit(1);
}
makeWorkload();
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
