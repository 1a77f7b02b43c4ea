/**
 * The benchmark payload of issues 4 and 5, generated deterministically and cached under
 * bench/out/workload-v<N>/ (gitignored):
 *   os/      ~452 MiB like a psyopsOS slot: kernel 14 MiB, initramfs 24 MiB, modloop 100 MiB,
 *            squashfs 300 MiB (all incompressible, as the real ones are compressed), System.map
 *            (~5 MiB text), config (~250 KiB text), boot/dtbs/*.dtb (200 files, 8–72 KiB)
 *   os.tar   the same as an uncompressed tar (sorted, uid/gid 0, fixed mtimes)
 *   esp/     EFI/BOOT/BOOTX64.EFI 4 MiB, memtest64.efi 160 KiB, manifest.json naming memtest
 *   esp.tar
 * Bytes come from AES-128-CTR over zeros keyed by the file name and WORKLOAD_SEED: fast and the same
 * on every machine. CLI: `node --import=tsx bench/workload.ts` builds (if needed) and prints the
 * paths as JSON; `--force` rebuilds.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Bump when the content changes, so caches rebuild. */
export const WORKLOAD_VERSION = 1;
export const WORKLOAD_SEED = 'diskimg-bench-workload';
/** mtime of every file and directory: 2026-11-29 00:00:00 UTC. */
export const WORKLOAD_MTIME = 1795910400;

const MiB = 2 ** 20;
const KiB = 1024;

export interface Workload {
  /** Directory with the OS payload (kernel, initramfs, modloop, squashfs, …). */
  osTree: string;
  /** Uncompressed tar of osTree's contents (entries `./kernel`, …). */
  osTar: string;
  /** Directory with the ESP payload (EFI/BOOT/BOOTX64.EFI, memtest64.efi, manifest.json). */
  espTree: string;
  espTar: string;
  /** Sum of the regular files' sizes in osTree / espTree (what a writer must at least write). */
  osBytes: number;
  espBytes: number;
}

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const WORKLOAD_DIR = join(BENCH_DIR, 'out', `workload-v${WORKLOAD_VERSION}`);

/** Pseudorandom stream for `name`: AES-128-CTR keystream (incompressible, ~1 GB/s). */
function keystream(name: string) {
  const d = createHash('sha256').update(`${WORKLOAD_SEED}\0${name}`).digest();
  return createCipheriv('aes-128-ctr', d.subarray(0, 16), d.subarray(16, 32));
}

const ZEROS = Buffer.alloc(MiB);

/** Write `size` incompressible bytes derived from `name` to `path`, 1 MiB at a time. */
export function writeRandomFile(path: string, size: number, name = path): void {
  const c = keystream(name);
  const fd = openSync(path, 'w', 0o644);
  try {
    for (let left = size; left > 0; left -= MiB) {
      const n = Math.min(MiB, left);
      writeSync(fd, c.update(n === MiB ? ZEROS : ZEROS.subarray(0, n)));
    }
  } finally {
    closeSync(fd);
  }
}

/** Deterministic text lines until `size` bytes (System.map / config look-alikes, compressible). */
function writeTextFile(path: string, size: number, line: (i: number) => string): void {
  const fd = openSync(path, 'w', 0o644);
  try {
    let written = 0;
    let chunk: string[] = [];
    let chunkLen = 0;
    for (let i = 0; written + chunkLen < size; i++) {
      const l = line(i);
      chunk.push(l);
      chunkLen += l.length;
      if (chunkLen >= 256 * KiB) { written += writeSync(fd, chunk.join('')); chunk = []; chunkLen = 0; }
    }
    const rest = Buffer.from(chunk.join('')).subarray(0, size - written);
    writeSync(fd, rest);
  } finally {
    closeSync(fd);
  }
}

/** DTB sizes: 8–72 KiB, fixed by index. */
function dtbSize(i: number): number {
  return (8 + ((i * 37) % 65)) * KiB;
}

function buildOsTree(root: string): void {
  mkdirSync(join(root, 'boot', 'dtbs'), { recursive: true });
  writeRandomFile(join(root, 'kernel'), 14 * MiB, 'kernel');
  writeRandomFile(join(root, 'initramfs'), 24 * MiB, 'initramfs');
  writeRandomFile(join(root, 'modloop'), 100 * MiB, 'modloop');
  writeRandomFile(join(root, 'squashfs'), 300 * MiB, 'squashfs');
  writeTextFile(join(root, 'System.map'), 5 * MiB, (i) =>
    `ffffffff${(0x81000000 + i * 16).toString(16).padStart(8, '0')} ${'TtDdBbRr'[i % 8]} psyops_symbol_${i}\n`);
  writeTextFile(join(root, 'config'), 250 * KiB, (i) =>
    i % 7 === 0 ? `# CONFIG_PSYOPS_OPTION_${i} is not set\n` : `CONFIG_PSYOPS_OPTION_${i}=${i % 3 === 0 ? 'm' : 'y'}\n`);
  for (let i = 0; i < 200; i++) {
    const name = `psyops-board-${String(i).padStart(3, '0')}.dtb`;
    writeRandomFile(join(root, 'boot', 'dtbs', name), dtbSize(i), `dtb-${i}`);
  }
}

function buildEspTree(root: string): void {
  mkdirSync(join(root, 'EFI', 'BOOT'), { recursive: true });
  writeRandomFile(join(root, 'EFI', 'BOOT', 'BOOTX64.EFI'), 4 * MiB, 'BOOTX64.EFI');
  writeRandomFile(join(root, 'memtest64.efi'), 160 * KiB, 'memtest64.efi');
  writeFileSync(join(root, 'manifest.json'), JSON.stringify({ extra_programs: { '/memtest64.efi': 'Memtest86+' } }) + '\n');
}

/** Pin modes (0644 files, 0755 dirs, whatever the umask) and every mtime under `root` (children first). */
function pinTimes(root: string): void {
  const m = spawnSync('chmod', ['-R', 'u=rwX,go=rX', root], { encoding: 'utf8' });
  if (m.status !== 0) throw new Error(`workload: chmod failed: ${m.stderr}`);
  const r = spawnSync('find', [root, '-depth', '-exec', 'touch', '-h', '-d', `@${WORKLOAD_MTIME}`, '{}', '+'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`workload: touch failed: ${r.stderr}`);
  utimesSync(root, WORKLOAD_MTIME, WORKLOAD_MTIME);
}

/**
 * Deterministic uncompressed tar (GNU tar: sorted, owner 0, fixed mtime) of `dir`'s contents,
 * leaving out `exclude` (tar --exclude patterns), then any `more` members (tar arguments, e.g.
 * `-C DIR ./file`).
 */
function makeTar(dir: string, out: string, exclude: readonly string[] = [], more: readonly string[] = []): void {
  const r = spawnSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', `--mtime=@${WORKLOAD_MTIME}`,
    '--format=gnu', ...exclude.map((e) => `--exclude=${e}`), '-C', dir, '-cf', out, '.', ...more], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`workload: tar ${out} failed: ${r.stderr}`);
}

/**
 * The build-once protocol every cached payload follows: if `dir` holds a finished build (its
 * `done` file), read it; else build into a private temp directory, write `done` (the JSON `build`
 * returns) and rename it into place, so concurrent callers are safe (a rename that loses the race
 * reads the winner's).
 */
function buildOnce<T>(dir: string, build: (tmp: string) => unknown, read: (dir: string, meta: any) => T): T {
  const done = (d: string) => join(d, 'done');
  const result = () => read(dir, JSON.parse(readFileSync(done(dir), 'utf8')));
  if (existsSync(done(dir))) return result();
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    mkdirSync(tmp, { recursive: true });
    const meta = build(tmp);
    writeFileSync(done(tmp), JSON.stringify(meta) + '\n');
    if (!existsSync(done(dir))) rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir); // fails if another process put a finished one there first
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (existsSync(done(dir))) return result(); // another process won the race
    throw e;
  }
  return result();
}

function sumFiles(dir: string): number {
  const r = spawnSync('find', [dir, '-type', 'f', '-printf', '%s\n'], { encoding: 'utf8' });
  return r.stdout.trim().split('\n').reduce((a, s) => a + Number(s), 0);
}


/**
 * Build the workload once (about 1 GiB on disk with the tars; a few seconds) and return its paths.
 * Built in a private temp directory and renamed into place, so concurrent callers are safe.
 */
export function ensureWorkload(opts: { force?: boolean } = {}): Workload {
  if (opts.force) rmSync(WORKLOAD_DIR, { recursive: true, force: true });
  return buildOnce(
    WORKLOAD_DIR,
    (tmp) => {
      buildOsTree(join(tmp, 'os'));
      buildEspTree(join(tmp, 'esp'));
      pinTimes(join(tmp, 'os'));
      pinTimes(join(tmp, 'esp'));
      makeTar(join(tmp, 'os'), join(tmp, 'os.tar'));
      makeTar(join(tmp, 'esp'), join(tmp, 'esp.tar'));
      return { osBytes: sumFiles(join(tmp, 'os')), espBytes: sumFiles(join(tmp, 'esp')) };
    },
    (dir, meta: { osBytes: number; espBytes: number }) => ({ osTree: join(dir, 'os'), osTar: join(dir, 'os.tar'), espTree: join(dir, 'esp'), espTar: join(dir, 'esp.tar'), ...meta }),
  );
}

export interface SizedOsTar {
  /** Uncompressed tar: the OS tree's kernel/initramfs plus an incompressible `./extra.img`. */
  tar: string;
  /** Its size in bytes. */
  bytes: number;
}

/**
 * Two more OS tarballs for the memory rows of update.bench.ts, built once next to the workload
 * (bench/out/workload-v<N>-sizes/, ~1.2 GiB):
 *   small  ~110 MiB: the OS tree without modloop and squashfs, plus a 60 MiB `./extra.img`
 *   large  ~1 GiB:   the whole OS tree plus a 576 MiB `./extra.img`
 * Same tar options as `os.tar`; the extra file's bytes come from the same keyed stream.
 */
export function ensureSizedOsTars(w: Workload = ensureWorkload()): { small: SizedOsTar; large: SizedOsTar } {
  return buildOnce(
    `${WORKLOAD_DIR}-sizes`,
    (tmp) => {
      for (const [name, mib, exclude] of [['small', 60, ['./modloop', './squashfs']], ['large', 576, []]] as const) {
        const extra = join(tmp, `extra-${name}`);
        mkdirSync(extra, { recursive: true });
        writeRandomFile(join(extra, 'extra.img'), mib * MiB, `extra-${name}`);
        pinTimes(extra);
        makeTar(w.osTree, join(tmp, `${name}.tar`), exclude, ['-C', extra, './extra.img']);
        rmSync(extra, { recursive: true, force: true });
      }
      const size = (f: string) => statSync(join(tmp, f)).size;
      return { small: size('small.tar'), large: size('large.tar') };
    },
    (d, meta: { small: number; large: number }) => ({ small: { tar: join(d, 'small.tar'), bytes: meta.small }, large: { tar: join(d, 'large.tar'), bytes: meta.large } }),
  );
}

export interface ManyFileTar {
  tar: string;
  bytes: number;
  /** tar entries (files + directories). */
  entries: number;
}

/** Small-file sizes: 100 B – 32 KiB, fixed by index (mean ~16 KiB, like /usr of a root filesystem). */
function smallSize(i: number): number {
  return 100 + ((i * 7919) % (32 * KiB));
}

/**
 * The many-file payload of issue 14, generated (never downloaded) once into
 * bench/out/workload-v<N>-many/:
 *   many.tar   ~16,000 entries, ~500 MB: 15,000 small files (100 B – 32 KiB, incompressible) in
 *              600 directories (usr/share/a/dNNN), plus 26 files of 10 MiB (usr/lib/big/)
 *   many2x.tar the same plus another 15,000 small files in 600 more directories (usr/share/b/):
 *              twice the entries, for the "peak RSS flat as the entry count doubles" row
 * Same tar options as `os.tar`.
 */
export function ensureManyFileTars(): { many: ManyFileTar; many2x: ManyFileTar } {
  const dir = `${WORKLOAD_DIR}-many`;
  return buildOnce(
    dir,
    (tmp) => {
      const tree = join(tmp, 'tree');
      const SMALL = 15_000;
      const PER_DIR = 25;
      for (const half of ['a', 'b']) {
        for (let i = 0; i < SMALL; i++) {
          const d = join(tree, 'usr', 'share', half, `d${String(Math.floor(i / PER_DIR)).padStart(3, '0')}`);
          if (i % PER_DIR === 0) mkdirSync(d, { recursive: true });
          writeRandomFile(join(d, `f${String(i).padStart(5, '0')}.dat`), smallSize(i + (half === 'b' ? SMALL : 0)), `many-${half}-${i}`);
        }
      }
      mkdirSync(join(tree, 'usr', 'lib', 'big'), { recursive: true });
      for (let i = 0; i < 26; i++) writeRandomFile(join(tree, 'usr', 'lib', 'big', `blob${String(i).padStart(2, '0')}.bin`), 10 * MiB, `many-big-${i}`);
      pinTimes(tree);
      const tar = (name: string, exclude: string[]): ManyFileTar => {
        makeTar(tree, join(tmp, name), exclude);
        const list = spawnSync('tar', ['-tf', join(tmp, name)], { encoding: 'utf8', maxBuffer: 64 * MiB });
        return { tar: join(dir, name), bytes: statSync(join(tmp, name)).size, entries: list.stdout.trim().split('\n').length };
      };
      const meta = { many: tar('many.tar', ['./usr/share/b']), many2x: tar('many2x.tar', []) };
      rmSync(tree, { recursive: true, force: true });
      return meta;
    },
    (_d, meta: { many: ManyFileTar; many2x: ManyFileTar }) => meta,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const t0 = Date.now();
  const w = ensureWorkload({ force: process.argv.includes('--force') });
  const many = process.argv.includes('--many') ? ensureManyFileTars() : undefined;
  console.log(JSON.stringify({ ...w, many, seconds: (Date.now() - t0) / 1000 }, null, 2));
}
