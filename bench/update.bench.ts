/**
 * `diskimg update` (dist build, plain node) writing a signed OS tarball into slot B of an image,
 * against the ways to get the same bytes there, in the same run:
 *   ours, file          --os-tar FILE (signature checked as the bytes stream)
 *   ours, HTTP          --os-tar/--os-sig http://127.0.0.1:PORT/… from a real nginx; plus curl
 *                       downloading the same URL to /dev/null (the download alone)
 *   ours, re-apply      on a loop block device (read-compare-skip is on there), the same tarball
 *                       twice; and on the file with --skip-unchanged
 *   floor               dd of the tar's bytes onto the partition (conv=notrunc)
 *   upstream's way      (root) loop-mount slot B, tar -xf over the old files, umount
 *   rootless mkfs       mkfs.ext4 -E offset= -d TREE into the image, same features as ours
 *   memory              ours' peak RSS from a ~110 MiB, the ~451 MiB and a ~1 GiB tarball
 * Start: one image made once by `diskimg create` (default sizes, A and B from the same tar signed
 * with an older version, default A). Every run restores that image first (cp --sparse=always,
 * untimed) and ends with its data on disk (`sync` of the image; ours fdatasyncs itself); a global
 * `sync` runs untimed before each run. The key is made by `diskimg keygen`, the signatures by
 * `diskimg sign` with trusted comments `type=psyopsOS version=… architecture=x86_64`.
 * Workload: bench/workload.ts (~451 MiB OS tar; the 110 MiB / 1 GiB tars are cached in bench/out/).
 * Run: node --import=tsx bench/update.bench.ts (after pnpm build); BENCH_RUNS=N (default 2) rounds,
 * each running every row once (interleaved), best wall per row; BENCH_PROFILE=1 adds a CPU profile
 * of ours (file input). Targets are printed with PASS/MISS, never asserted. Rows needing root
 * (loop devices, mount) print n/a without it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNginx } from '../test/helpers/nginx.js';
import { summarizeProfile } from './cpuprofile.js';
import { measure, type Measurement } from './lib.js';
import { ensureSizedOsTars, ensureWorkload } from './workload.js';

const MiB = 2 ** 20;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'packages/cli/bin/diskimg.js');
/** Same ext4 features as ours (Debian's mke2fs.conf ext4 defaults add these three). */
const EXT4_OPTS = '-b 4096 -I 256 -O ^resize_inode,^metadata_csum_seed,^orphan_file';
const RUNS = Number(process.env.BENCH_RUNS ?? 2);
const OLD_VERSION = '20261101-000000';
const NEW_VERSION = '20261129-120000';
const TRUSTED = (v: string) => ['--trusted', 'type=psyopsOS', `version=${v}`, 'architecture=x86_64'];

if (!existsSync(join(ROOT, 'packages/cli/dist/main.js'))) {
  console.error('bench/update: packages/cli/dist missing; run pnpm build first');
  process.exit(1);
}
const isRoot = process.getuid?.() === 0;
const w = ensureWorkload();
const sized = ensureSizedOsTars(w);
const tmp = mkdtempSync(join(tmpdir(), 'update-bench-'));
const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
const sh = (script: string) => spawnSync('sh', ['-c', script], { encoding: 'utf8' });
const has = (cmd: string) => sh(`command -v ${cmd}`).status === 0;
const fmt = (n: number | undefined, d = 2) => (n === undefined || !Number.isFinite(n) ? 'n/a' : n.toFixed(d));

function cli(args: string[]): string {
  const r = spawnSync('node', [CLI, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench/update: diskimg ${args[0]} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

// ---- setup (untimed): key, signatures, the starting image, nginx ----
const key = join(tmp, 'bench');
cli(['keygen', '--out', key]);
const pub = `${key}.pub`;
const www = join(tmp, 'nginx', 'www');
mkdirSync(www, { recursive: true });
const oldSig = join(tmp, 'os-old.tar.minisig');
cli(['sign', w.osTar, '--seckey', `${key}.key`, '--sig', oldSig, ...TRUSTED(OLD_VERSION)]);
// The new signature sits in nginx's root next to a symlink to the tar; file rows pass the same file.
const osTar = join(www, 'os.tar');
symlinkSync(w.osTar, osTar);
const newSig = `${osTar}.minisig`;
cli(['sign', w.osTar, '--seckey', `${key}.key`, '--sig', newSig, ...TRUSTED(NEW_VERSION)]);
const sizedSigs = Object.fromEntries(Object.entries(sized).map(([name, s]) => {
  const sig = join(tmp, `${name}.tar.minisig`);
  cli(['sign', s.tar, '--seckey', `${key}.key`, '--sig', sig, ...TRUSTED(NEW_VERSION)]);
  return [name, sig];
})) as Record<keyof typeof sized, string>;

const base = join(tmp, 'base.img');
cli(['create', base, '--os-tar', w.osTar, '--os-sig', oldSig, '--pubkey', pub, '--esp-tar', w.espTar, '--no-verify-esp', '--seed', 'bench']);
const img = join(tmp, 'disk.img');
const table = JSON.parse(sh(`sfdisk --json ${q(base)}`).stdout).partitiontable as {
  sectorsize: number; partitions: { start: number; size: number; name: string }[];
};
const slotB = table.partitions.find((p) => p.name === 'psyopsOS-B')!;
const B_OFFSET = slotB.start * table.sectorsize;
const B_BYTES = slotB.size * table.sectorsize;

const nginx = await startNginx(join(tmp, 'nginx'), www);
const url = typeof nginx === 'string' ? undefined : `http://127.0.0.1:${nginx.port}/os.tar`;

// ---- rows ----
interface Row extends Measurement {
  note?: string;
  /** bytesWritten / bytesSkipped from ours' --json. */
  written?: number;
  skipped?: number;
}

interface Step {
  name: string;
  /** A function when the script depends on `prepare` (the loop device's name). */
  script: string | (() => string);
  /** ours: its --json result goes here (read after the run). */
  json?: string;
  best?: Row;
  /** Highest peak RSS over all runs (the memory target uses it; the table shows the best-wall run's). */
  maxRssMiB?: number;
  note?: string;
}

interface Task {
  /** Untimed, before the steps (after restoring the image). */
  prepare?: () => void;
  /** Runs one after another on the same image, each measured as its own row. */
  steps: Step[];
  /** Untimed, after the steps (also on failure). */
  cleanup?: () => void;
  /** Check slot B after the last step (e2fsck -fn through a read-only loop device). */
  check?: boolean;
  /** Restore the starting image first (default true). */
  restore?: boolean;
  unavailable?: string;
}

const tasks: Task[] = [];
let jsonCount = 0;
const newJson = () => join(tmp, `res-${jsonCount++}.json`);
const update = (disk: string, tar: string, sig: string, extra = '', json = newJson()) => {
  // --booted-label: the node runs A in every row, so a second run targets B again (the image's
  // next boot is B after the first run).
  return {
    json,
    script: `node ${q(CLI)} update ${q(disk)} --slot inactive --booted-label psyopsOS-A --os-tar ${q(tar)} --os-sig ${q(sig)}` +
      ` --pubkey ${q(pub)} --json ${extra}> ${q(json)} && sync ${q(disk)}`,
  };
};

const NAMES = {
  file: 'ours, file',
  http: 'ours, HTTP (nginx)',
  download: 'download alone (curl -o /dev/null)',
  block1: 'ours, loop block device, 1st (old version in B)',
  block2: 'ours, loop block device, re-apply',
  skip1: 'ours, file --skip-unchanged, 1st',
  skip2: 'ours, file --skip-unchanged, re-apply',
  floor: 'floor: dd of the tar onto slot B + sync',
  upstream: "upstream's way: loop mount, tar -xf over old files, umount",
  mkfs: 'rootless mkfs.ext4 -E offset= -d TREE',
  refHash: 'ref: node reading + BLAKE2b-hashing the tar (1 MiB reads, no writes)',
  refHttp: 'ref: node http.get + BLAKE2b of the download (no writes)',
  small: 'ours, file, ~110 MiB tar (memory)',
  large: 'ours, file, ~1 GiB tar (memory)',
};

tasks.push({ steps: [{ name: NAMES.file, ...update(img, osTar, newSig) }], check: true });

if (url) {
  tasks.push({ steps: [{ name: NAMES.http, ...update(img, url, `${url}.minisig`) }], check: true });
  tasks.push({ restore: false, steps: [{ name: NAMES.download, script: `curl -sS --fail -o /dev/null ${q(url)}` }] });
} else {
  tasks.push({ steps: [{ name: NAMES.http, script: '' }], unavailable: nginx as string });
  tasks.push({ steps: [{ name: NAMES.download, script: '' }], unavailable: nginx as string });
}

// A loop device over the whole image (partitions reached through it, as on a real disk).
let loopDev = '';
const block = [NAMES.block1, NAMES.block2].map((name) => {
  const json = newJson();
  return { name, json, script: () => update(loopDev, osTar, newSig, '', json).script };
});
tasks.push(isRoot && existsSync('/dev/loop-control')
  ? {
      prepare: () => {
        const r = sh(`losetup -f --show ${q(img)}`);
        if (r.status !== 0) throw new Error(`bench/update: losetup: ${r.stderr}`);
        loopDev = r.stdout.trim();
      },
      cleanup: () => {
        if (loopDev) sh(`losetup -d ${q(loopDev)}`);
        loopDev = '';
      },
      steps: block,
      check: true,
    }
  : { steps: block, unavailable: 'needs root and /dev/loop-control' });

tasks.push({
  steps: [
    { name: NAMES.skip1, ...update(img, osTar, newSig, '--skip-unchanged ') },
    { name: NAMES.skip2, ...update(img, osTar, newSig, '--skip-unchanged ') },
  ],
  check: true,
});

tasks.push({
  steps: [{ name: NAMES.floor, script: `dd if=${q(w.osTar)} of=${q(img)} bs=4M seek=${B_OFFSET} oflag=seek_bytes conv=notrunc status=none && sync ${q(img)}`,
    note: 'raw tar bytes, not a filesystem' }],
});

// upstream's way: mount the slot and untar over the old files (plus the signature file ours stores).
{
  const mnt = join(tmp, 'mnt');
  mkdirSync(mnt, { recursive: true });
  let why: string | undefined = isRoot ? undefined : 'needs root (loop devices, mount)';
  if (!why) {
    // Probe once: the kernel must mount our ext4.
    const r = sh(`L=$(losetup -r -f --show -o ${B_OFFSET} --sizelimit ${B_BYTES} ${q(base)}) && { mount -t ext4 -o ro "$L" ${q(mnt)} 2>&1 && umount ${q(mnt)}; s=$?; losetup -d "$L"; exit $s; }`);
    if (r.status !== 0) why = `ext4 mount failed here: ${(r.stdout + r.stderr).trim().split('\n').pop()}`;
  }
  const script = `L=$(losetup -f --show -o ${B_OFFSET} --sizelimit ${B_BYTES} ${q(img)}) && mount -t ext4 "$L" ${q(mnt)}` +
    ` && tar -xf ${q(w.osTar)} -C ${q(mnt)} && cp ${q(newSig)} ${q(mnt)}/psyopsOS.tar.minisig && umount ${q(mnt)} && losetup -d "$L" && sync ${q(img)}`;
  tasks.push({
    steps: [{ name: NAMES.upstream, script, note: 'no signature check; kernel ext4 + loop' }],
    check: true,
    unavailable: why,
    cleanup: () => void sh(`mountpoint -q ${q(mnt)} && umount ${q(mnt)}; losetup -j ${q(img)} -O NAME -n | xargs -r -n1 losetup -d`),
  });
}

tasks.push({
  steps: [{ name: NAMES.mkfs, note: 'no signature check, nothing kept (new UUID)',
    script: `mkfs.ext4 -q -F ${EXT4_OPTS} -L psyopsOS-B -E offset=${B_OFFSET} -d ${q(w.osTree)} ${q(img)} ${B_BYTES / 1024}k && sync ${q(img)}` }],
  check: true,
});

// References (not anchors): what node alone pays to read and hash the bytes, from the file and
// over HTTP (the signature check needs every byte hashed; minisign prehashes with BLAKE2b-512).
{
  const hashFile = `const h=require('crypto').createHash('blake2b512');const s=require('fs').createReadStream(process.argv[1],{highWaterMark:1<<20});` +
    `s.on('data',c=>h.update(c));s.on('end',()=>h.digest())`;
  tasks.push({ restore: false, steps: [{ name: NAMES.refHash, script: `node -e ${q(hashFile)} ${q(w.osTar)}`, note: 'not an anchor' }] });
  const hashHttp = `const h=require('crypto').createHash('blake2b512');require('http').get(process.argv[1],r=>{r.on('data',c=>h.update(c));r.on('end',()=>h.digest())})`;
  tasks.push(url
    ? { restore: false, steps: [{ name: NAMES.refHttp, script: `node -e ${q(hashHttp)} ${q(url)}`, note: 'not an anchor' }] }
    : { steps: [{ name: NAMES.refHttp, script: '' }], unavailable: nginx as string });
}

tasks.push({ steps: [{ name: NAMES.small, ...update(img, sized.small.tar, sizedSigs.small) }], check: true });
tasks.push({ steps: [{ name: NAMES.large, ...update(img, sized.large.tar, sizedSigs.large) }], check: true });

/** e2fsck -fn of slot B through a read-only loop device: "clean, N files" or what failed. */
function checkSlot(): string {
  if (!isRoot) return 'unchecked (no root)';
  const r = sh(`L=$(losetup -r -f --show -o ${B_OFFSET} --sizelimit ${B_BYTES} ${q(img)}) && { e2fsck -fn "$L" 2>&1; s=$?; losetup -d "$L"; exit $s; }`);
  const files = /: (\d+)\/\d+ files/.exec(r.stdout)?.[1];
  return r.status === 0 ? `e2fsck -fn clean, ${files} inodes` : `e2fsck -fn FAILED (${r.status})`;
}

function runAll(): void {
  for (let round = 0; round < RUNS; round++) {
    for (const t of tasks) {
      if (t.unavailable) continue;
      if (t.restore !== false) {
        rmSync(img, { force: true });
        const r = sh(`cp --sparse=always ${q(base)} ${q(img)}`);
        if (r.status !== 0) throw new Error(`bench/update: restore: ${r.stderr}`);
      }
      const ms: Row[] = [];
      try {
        t.prepare?.();
        for (const s of t.steps) {
          spawnSync('sync');
          const m: Row = measure(s.name, typeof s.script === 'string' ? s.script : s.script(), { cwd: tmp });
          if (s.json) {
            const res = JSON.parse(readFileSync(s.json, 'utf8')) as { bytesWritten: number; bytesSkipped: number };
            m.written = res.bytesWritten;
            m.skipped = res.bytesSkipped;
          }
          ms.push(m);
        }
      } finally {
        t.cleanup?.();
      }
      const checked = t.check ? checkSlot() : undefined;
      t.steps.forEach((s, i) => {
        const m = ms[i]!;
        s.maxRssMiB = Math.max(s.maxRssMiB ?? 0, m.maxRssMiB);
        if (!s.best || m.wallS < s.best.wallS) s.best = { ...m, note: [s.note, i === t.steps.length - 1 ? checked : undefined].filter(Boolean).join('; ') };
      });
    }
  }
}

try {
  runAll();
} finally {
  if (typeof nginx !== 'string') await nginx.stop();
}

// ---- table and targets ----
const rows = new Map<string, Row>();
const maxRss = new Map<string, number>();
for (const t of tasks) for (const s of t.steps) {
  maxRss.set(s.name, s.maxRssMiB ?? NaN);
  rows.set(s.name, s.best ?? { name: s.name, wallS: NaN, cpuS: NaN, maxRssMiB: NaN, note: t.unavailable ? `n/a: ${t.unavailable}` : s.note });
}
const row = (k: keyof typeof NAMES) => rows.get(NAMES[k])!;
const ours = row('file');
const floor = row('floor');
const [l1, l5] = loadavg();
console.log(`\n## diskimg update: signed ${(w.osBytes / MiB).toFixed(0)} MiB OS tar (${(statSize(w.osTar) / MiB).toFixed(1)} MiB) into slot B (${B_BYTES / MiB} MiB) of a default image`);
console.log(`${new Date().toISOString()}, best of ${RUNS}, load average ${l1!.toFixed(1)} / ${l5!.toFixed(1)} (1/5 min) on ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()} cores`);
console.log('| run | wall s | cpu s | peak RSS MiB | written MiB (% of slot) | wall / ours file | wall / floor | notes |');
console.log('|---|---:|---:|---:|---:|---:|---:|---|');
for (const r of rows.values()) {
  const wr = r.written === undefined ? '' : `${fmt(r.written / MiB, 1)} (${fmt((100 * r.written) / B_BYTES, 2)}%)`;
  const skip = r.skipped ? `skipped ${fmt(r.skipped / MiB, 1)} MiB unchanged` : undefined;
  console.log(`| ${r.name} | ${fmt(r.wallS)} | ${fmt(r.cpuS)} | ${fmt(r.maxRssMiB, 1)} | ${wr} | ${fmt(r.wallS / ours.wallS)} | ${fmt(r.wallS / floor.wallS)} | ${[skip, r.note].filter(Boolean).join('; ')} |`);
}

function statSize(p: string): number {
  return Number(sh(`stat -L -c %s ${q(p)}`).stdout.trim());
}

const http = row('http');
const dl = row('download');
const httpBound = Math.max(dl.wallS, ours.wallS);
const reapply = row('block2');
// Memory: the highest peak RSS of each size over all runs (GC timing moves it by a few MiB).
const mem = [NAMES.small, NAMES.file, NAMES.large].map((n) => maxRss.get(n)!);
const memOk = mem.every((m) => Number.isFinite(m));
const rssMax = Math.max(...mem);
const rssMin = Math.min(...mem);
const targets: [string, boolean, string][] = [
  ['update from file ≤ 1.2× the floor', ours.wallS / floor.wallS <= 1.2, `ours ${fmt(ours.wallS)} s / floor ${fmt(floor.wallS)} s = ${fmt(ours.wallS / floor.wallS)}`],
  ['from HTTP ≤ 1.1× max(download alone, update from file)', http.wallS / httpBound <= 1.1,
    `HTTP ${fmt(http.wallS)} s / max(${fmt(dl.wallS)}, ${fmt(ours.wallS)}) s = ${fmt(http.wallS / httpBound)}`],
  ['re-apply on a block device writes < 1 % of the slot', reapply.written !== undefined && reapply.written / B_BYTES < 0.01,
    reapply.written === undefined ? 'n/a' : `${fmt(reapply.written / MiB, 2)} MiB of ${B_BYTES / MiB} MiB = ${fmt((100 * reapply.written) / B_BYTES, 3)}%`],
  ['peak RSS ≤ 150 MiB (highest over all runs)', memOk && rssMax <= 150, mem.map((m) => fmt(m, 1)).join(' / ') + ' MiB (~110 MiB / 451 MiB / ~1 GiB tar)'],
  ['peak RSS flat from ~110 MiB to ~1 GiB (spread ≤ 10% of the smallest)', memOk && rssMax - rssMin <= 0.1 * rssMin, `spread ${fmt(rssMax - rssMin, 1)} MiB`],
];
console.log('\n| target | result | measured |');
console.log('|---|---|---|');
for (const [t, ok, m] of targets) console.log(`| ${t} | ${ok ? 'PASS' : 'MISS'} | ${m} |`);

// BENCH_PROFILE=1: a CPU profile of ours (file input), summarized by function.
if (process.env.BENCH_PROFILE) {
  sh(`cp --sparse=always ${q(base)} ${q(img)} && sync`);
  const profDir = join(tmp, 'prof');
  const pr = spawnSync('node', ['--cpu-prof', `--cpu-prof-dir=${profDir}`, CLI, 'update', img, '--slot', 'inactive', '--booted-label', 'psyopsOS-A',
    '--os-tar', osTar, '--os-sig', newSig, '--pubkey', pub], { encoding: 'utf8' });
  const file = pr.status === 0 ? readdirSync(profDir).find((f) => f.endsWith('.cpuprofile')) : undefined;
  if (file) {
    const s = summarizeProfile(join(profDir, file));
    console.log(`\n### Profile: CPU profile of \`diskimg update\` (file input; main thread, ${(s.totalMs / 1000).toFixed(2)} s sampled; see bench/cpuprofile.ts for caveats)`);
    console.log('| self ms | % | function file:line |\n|---:|---:|---|');
    for (const f of s.self) console.log(`| ${f.ms.toFixed(0)} | ${f.pct.toFixed(1)} | ${f.frame} |`);
    console.log('\n| inclusive ms | % | our function file:line |\n|---:|---:|---|');
    for (const f of s.inclusive) console.log(`| ${f.ms.toFixed(0)} | ${f.pct.toFixed(1)} | ${f.frame} |`);
  } else console.log(`\nprofile run failed: ${pr.stderr.trim().split('\n').pop()}`);
}
rmSync(tmp, { recursive: true, force: true });
