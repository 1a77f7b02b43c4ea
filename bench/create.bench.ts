/**
 * Whole-image build (issue 5): `diskimg create` (dist build, plain node) against
 * the anchors, on the same workload in the same run:
 *   genimage          hdimage/gpt + vfat (mkdosfs + mcopy) + ext4 (mke2fs -d), rootless
 *   systemd-repart    --empty=create with Format=/CopyFiles= definitions
 *   manual pipeline   truncate + sgdisk, mkfs.fat -C + mcopy -s, mkfs.ext4 -d into files, dd conv=notrunc,sparse
 *   floor             cp --sparse=always of the payload that must be written (OS tar twice, ESP tar once)
 * Layout everywhere: 1 MiB alignment, 128 MiB ESP (FAT32, PSYOPSOSEFI), 128 MiB empty ext4
 * psyops-secret, two 1536 MiB ext4 slots psyopsOS-A/B from the OS payload. Every run ends with
 * `sync` of its output (ours fdatasyncs itself), so all of them pay for getting the bytes to disk.
 * Workload: bench/workload.ts (~451 MiB OS + ~4 MiB ESP, cached in bench/out/).
 * Run: node --import=tsx bench/create.bench.ts (after pnpm build); BENCH_RUNS=N (default 2) takes
 * the best of N runs each. Targets are printed with PASS/MISS, never asserted.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bestOf, measure, type Measurement } from './lib.js';
import { ensureWorkload } from './workload.js';

const MiB = 2 ** 20;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'packages/cli/bin/diskimg.js');
const ESP_MIB = 128;
const SECRET_MIB = 128;
const SLOT_MIB = 1536;
/** 1 MiB head (GPT + alignment), the partitions, 1 MiB tail (backup GPT, rounded like ours). */
const IMAGE_BYTES = (1 + ESP_MIB + SECRET_MIB + 2 * SLOT_MIB + 1) * MiB;
/** Same ext4 features as ours (Debian's mke2fs.conf ext4 defaults add these three). */
const EXT4_OPTS = '-b 4096 -I 256 -O ^resize_inode,^metadata_csum_seed,^orphan_file';
const RUNS = Number(process.env.BENCH_RUNS ?? 2);

if (!existsSync(join(ROOT, 'packages/cli/dist/main.js'))) {
  console.error('bench/create: packages/cli/dist missing; run pnpm build first');
  process.exit(1);
}
const w = ensureWorkload();
const payload = 2 * w.osBytes + w.espBytes;
const tmp = mkdtempSync(join(tmpdir(), 'create-bench-'));
const out = join(tmp, 'disk.img');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** Bytes allocated on disk by every file under `p` (a file or a directory). */
function allocated(p: string): number {
  const st = statSync(p);
  if (!st.isDirectory()) return st.blocks * 512;
  return readdirSync(p).reduce((a, n) => a + allocated(join(p, n)), 0);
}

/** A line of independent-tool checks on an output image (so an anchor that silently did less shows up). */
function check(img: string): string {
  const v = spawnSync('sgdisk', ['-v', img], { encoding: 'utf8' });
  const parts = spawnSync('sfdisk', ['--json', img], { encoding: 'utf8' });
  const n = parts.status === 0 ? (JSON.parse(parts.stdout).partitiontable.partitions as unknown[]).length : 0;
  return `sgdisk -v ${v.status === 0 && /No problems found/.test(v.stdout) ? 'ok' : 'FAILED'}, ${n} partitions`;
}

interface Row extends Measurement {
  note?: string;
}

/** Measure `script` (fresh `tmp` scratch each time, `outPath` allocated bytes), best of RUNS. */
function run(name: string, script: string, outPath: string, note?: string): Row {
  const m = bestOf(RUNS, () => {
    rmSync(outPath, { recursive: true, force: true });
    const r = measure(name, script, { cwd: tmp, env: { ...process.env, SOURCE_DATE_EPOCH: '1795910400' } });
    r.allocatedBytes = allocated(outPath);
    return r;
  });
  const row: Row = { ...m, note: [note, outPath === out ? check(out) : undefined].filter(Boolean).join('; ') };
  rmSync(outPath, { recursive: true, force: true });
  return row;
}

/** A row that could not run here (printed as n/a). */
function unavailable(name: string, why: string): Row {
  return { name, wallS: NaN, cpuS: NaN, maxRssMiB: NaN, note: `n/a: ${why}` };
}

const rows: Row[] = [];

// 1. ours
rows.push(run('diskimg create (node, dist)',
  `node ${q(CLI)} create ${q(out)} --os-tar ${q(w.osTar)} --esp-tar ${q(w.espTar)} --no-verify --seed bench >/dev/null && sync ${q(out)}`,
  out));

// 2. genimage
if (has('genimage') && has('mke2fs') && has('mcopy')) {
  const g = join(tmp, 'genimage');
  const ext4 = (name: string, label: string, mib: number, src?: string) => `image ${name} {
  ext4 { label = "${label}" use-mke2fs = true extraargs = "${EXT4_OPTS}" }
  size = ${mib}M
  temporary = true
  ${src ? `srcpath = "${src}"` : 'empty = true'}
}`;
  writeFileSync(join(tmp, 'genimage.cfg'), `image esp.vfat {
  vfat { label = "PSYOPSOSEFI" }
  size = ${ESP_MIB}M
  temporary = true
  srcpath = "${w.espTree}"
}
${ext4('secret.ext4', 'psyops-secret', SECRET_MIB)}
${ext4('a.ext4', 'psyopsOS-A', SLOT_MIB, w.osTree)}
${ext4('b.ext4', 'psyopsOS-B', SLOT_MIB, w.osTree)}
image disk.img {
  hdimage { partition-table-type = "gpt" align = 1M }
  partition PSYOPSOSEFI { partition-type-uuid = "U" image = "esp.vfat" }
  partition psyops-secret { partition-type-uuid = "L" image = "secret.ext4" }
  partition psyopsOS-A { partition-type-uuid = "L" image = "a.ext4" }
  partition psyopsOS-B { partition-type-uuid = "L" image = "b.ext4" }
}
`);
  const gOut = join(g, 'out', 'disk.img');
  const script = `rm -rf ${q(g)} && mkdir -p ${q(g)}/root ${q(g)}/in ${q(g)}/out && genimage --config genimage.cfg` +
    ` --rootpath ${q(g)}/root --tmppath ${q(g)}/tmp --inputpath ${q(g)}/in --outputpath ${q(g)}/out >/dev/null 2>&1 && sync ${q(gOut)} && mv ${q(gOut)} ${q(out)}`;
  rows.push(run('genimage (mkdosfs+mcopy, mke2fs -d)', script, out));
  rmSync(g, { recursive: true, force: true });
} else rows.push(unavailable('genimage', 'genimage, mke2fs or mcopy not installed'));

// 3. systemd-repart
{
  const help = has('systemd-repart') ? spawnSync('systemd-repart', ['--help'], { encoding: 'utf8' }).stdout : '';
  const offline = help.includes('--offline');
  // systemd-repart < 253 populates by loop-mounting the new filesystems: it needs root, loop
  // devices and kernel support for each filesystem. Without vfat in the kernel (this machine),
  // the ESP is formatted by repart and filled with mcopy, as the row's note says.
  const vfatMount = offline || /\bvfat$/m.test(spawnSync('cat', ['/proc/filesystems'], { encoding: 'utf8' }).stdout);
  const canLoop = offline || (process.getuid?.() === 0 && existsSync('/dev/loop-control'));
  if (!help) rows.push(unavailable('systemd-repart', 'not installed (apt-get install systemd-repart)'));
  else if (!canLoop) rows.push(unavailable('systemd-repart', 'no --offline (systemd < 253) and no root/loop devices'));
  else {
    const d = join(tmp, 'repart.d');
    mkdirSync(d, { recursive: true });
    const def = (file: string, type: string, label: string, fmt: string, mib: number, copy?: string) =>
      writeFileSync(join(d, file), `[Partition]\nType=${type}\nLabel=${label}\nFormat=${fmt}\n${copy ? `CopyFiles=${copy}:/\n` : ''}` +
        `SizeMinBytes=${mib}M\nSizeMaxBytes=${mib}M\n`);
    def('10-esp.conf', 'esp', 'PSYOPSOSEFI', 'vfat', ESP_MIB, vfatMount ? w.espTree : undefined);
    def('20-secret.conf', 'linux-generic', 'psyops-secret', 'ext4', SECRET_MIB);
    def('30-a.conf', 'linux-generic', 'psyopsOS-A', 'ext4', SLOT_MIB, w.osTree);
    def('40-b.conf', 'linux-generic', 'psyopsOS-B', 'ext4', SLOT_MIB, w.osTree);
    const mcopy = vfatMount ? '' : ` && mcopy -s -i ${q(out)}@@${MiB} ${q(w.espTree)}/* ::/`;
    const script = `systemd-repart --empty=create --size=${IMAGE_BYTES} --dry-run=no ${offline ? '--offline=yes ' : ''}` +
      `--definitions=${q(d)} --seed=0f0e0d0c-0b0a-0908-0706-050403020100 --no-pager --json=off ${q(out)} >/dev/null 2>&1${mcopy} && sync ${q(out)}`;
    const how = offline ? '--offline=yes' : 'loop-mounted';
    rows.push(run(`systemd-repart CopyFiles= (${how}${vfatMount ? '' : ', ESP by mcopy'})`, script, out,
      vfatMount ? undefined : 'no vfat in this kernel: repart formats the ESP, mcopy -s fills it'));
  }
}

// 4. the manual rootless pipeline
{
  const p = join(tmp, 'parts');
  const ext4 = (label: string, file: string, mib: number, src?: string) =>
    `mkfs.ext4 -q -F ${EXT4_OPTS} -L ${label} ${src ? `-d ${q(src)} ` : ''}${q(file)} ${mib}M`;
  const dd = (file: string, seekMiB: number) => `dd if=${q(file)} of=${q(out)} bs=1M seek=${seekMiB} conv=notrunc,sparse status=none`;
  const script = [
    `rm -rf ${q(p)} && mkdir ${q(p)}`,
    `truncate -s ${IMAGE_BYTES} ${q(out)}`,
    `sgdisk -a 2048 -n 1:0:+${ESP_MIB}M -t 1:EF00 -c 1:PSYOPSOSEFI -n 2:0:+${SECRET_MIB}M -t 2:8300 -c 2:psyops-secret` +
      ` -n 3:0:+${SLOT_MIB}M -t 3:8300 -c 3:psyopsOS-A -n 4:0:+${SLOT_MIB}M -t 4:8300 -c 4:psyopsOS-B ${q(out)} >/dev/null`,
    `mkfs.fat -C -F32 -n PSYOPSOSEFI ${q(p)}/esp.img ${ESP_MIB * 1024} >/dev/null`,
    `mcopy -s -i ${q(p)}/esp.img ${q(w.espTree)}/* ::/`,
    ext4('psyops-secret', `${p}/secret.img`, SECRET_MIB),
    ext4('psyopsOS-A', `${p}/a.img`, SLOT_MIB, w.osTree),
    ext4('psyopsOS-B', `${p}/b.img`, SLOT_MIB, w.osTree),
    dd(`${p}/esp.img`, 1),
    dd(`${p}/secret.img`, 1 + ESP_MIB),
    dd(`${p}/a.img`, 1 + ESP_MIB + SECRET_MIB),
    dd(`${p}/b.img`, 1 + ESP_MIB + SECRET_MIB + SLOT_MIB),
    `rm -rf ${q(p)}`,
    `sync ${q(out)}`,
  ].join(' && ');
  rows.push(run('manual: sgdisk, mkfs.fat+mcopy, mkfs.ext4 -d, dd', script, out));
}

// 5. the floor: the payload bytes that must be written, as three sparse copies
{
  const f = join(tmp, 'floor');
  const cp = (src: string, dst: string) => `cp --sparse=always ${q(src)} ${q(`${f}/${dst}`)}`;
  const script = `mkdir ${q(f)} && ${cp(w.osTar, 'a')} && ${cp(w.osTar, 'b')} && ${cp(w.espTar, 'esp')} && sync ${q(f)}/a ${q(f)}/b ${q(f)}/esp`;
  rows.push(run('floor: cp --sparse=always (OS tar x2 + ESP tar)', script, f));
}
rmSync(tmp, { recursive: true, force: true });

// Table and targets.
const ours = rows[0]!;
const floor = rows[rows.length - 1]!;
const anchors = rows.slice(1, -1).filter((r) => Number.isFinite(r.wallS));
const fmt = (n: number | undefined, d = 2) => (n === undefined || !Number.isFinite(n) ? 'n/a' : n.toFixed(d));
const [l1, l5] = loadavg();
console.log(`\n## diskimg create: 4-partition image (${ESP_MIB}M ESP, ${SECRET_MIB}M secret, 2×${SLOT_MIB}M slots), payload ${(payload / MiB).toFixed(1)} MiB`);
console.log(`${new Date().toISOString()}, best of ${RUNS}, load average ${l1!.toFixed(1)} / ${l5!.toFixed(1)} (1/5 min) on ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()} cores`);
console.log('| run | wall s | cpu s | peak RSS MiB | allocated MiB | wall / ours | wall / floor | notes |');
console.log('|---|---:|---:|---:|---:|---:|---:|---|');
for (const r of rows) {
  const alloc = r.allocatedBytes === undefined ? 'n/a' : fmt(r.allocatedBytes / MiB, 1);
  console.log(`| ${r.name} | ${fmt(r.wallS)} | ${fmt(r.cpuS)} | ${fmt(r.maxRssMiB, 1)} | ${alloc} | ${fmt(r.wallS / ours.wallS)} | ${fmt(r.wallS / floor.wallS)} | ${r.note ?? ''} |`);
}
const fastest = anchors.reduce<Row | undefined>((a, r) => (!a || r.wallS < a.wallS ? r : a), undefined);
const allocDev = ours.allocatedBytes === undefined ? NaN : Math.abs(ours.allocatedBytes - payload) / payload;
const targets: [string, boolean, string][] = [
  ['faster than every anchor', !!fastest && ours.wallS < fastest.wallS,
    fastest ? `ours ${fmt(ours.wallS)} s vs fastest anchor ${fastest.name} ${fmt(fastest.wallS)} s (ours / it = ${fmt(ours.wallS / fastest.wallS)})` : 'no anchor ran'],
  ['within 1.5× of the floor', ours.wallS / floor.wallS <= 1.5, `ours / floor = ${fmt(ours.wallS / floor.wallS)}`],
  ['peak RSS < 150 MiB', ours.maxRssMiB < 150, `${fmt(ours.maxRssMiB, 1)} MiB`],
  ['allocated within 5% of the payload', allocDev <= 0.05, `${fmt((ours.allocatedBytes ?? NaN) / MiB, 1)} MiB vs ${fmt(payload / MiB, 1)} MiB (${fmt(allocDev * 100, 1)}%)`],
];
console.log('\n| target | result | measured |');
console.log('|---|---|---|');
for (const [t, ok, m] of targets) console.log(`| ${t} | ${ok ? 'PASS' : 'MISS'} | ${m} |`);
