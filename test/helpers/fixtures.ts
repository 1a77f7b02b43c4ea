/**
 * Boot-test fixtures, built once by test/fixtures/build.sh with real tools and cached under
 * .cache/fixtures/boot-<hash of build.sh>/ (a changed script rebuilds). Concurrent ava workers
 * serialise on a flock inside the script, so the first one builds and the others reuse.
 * Also runs test/fixtures/upstream-image.sh: a reference image made the upstream way.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { qemuSkipReason } from './qemu.js';
import { ranTool, skipOrFail, type SkipContext } from './skip.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES_SRC = join(REPO_ROOT, 'test', 'fixtures');
const BUILD_SH = join(FIXTURES_SRC, 'build.sh');
const UPSTREAM_SH = join(FIXTURES_SRC, 'upstream-image.sh');

export interface BootFixtures {
  /** The cache directory holding everything below. */
  dir: string;
  /** vmlinuz from the linux-image-*-cloud-amd64 .deb. */
  kernel: string;
  /** Busybox initramfs (gzip newc cpio) whose /etc/psyops-version is `versionA` / `versionB`. */
  initramfsA: string;
  initramfsB: string;
  /** OS tarballs (kernel, initramfs, modloop, squashfs, System.map, config, boot/dtbs/x.dtb); B has initramfsB. */
  osTarA: string;
  osTarB: string;
  /** ESP payload: EFI/BOOT/BOOTX64.EFI (standalone GRUB → ($PSYOPSOSEFI)/grub/grub.cfg) + manifest.json. */
  espTar: string;
  espDir: string;
  /** Hand-written upstream-layout grub.cfg, default psyopsOS-A (grubCfgB: default psyopsOS-B). */
  grubCfgReference: string;
  grubCfgA: string;
  grubCfgB: string;
  /** `VERSION=A-…` / `VERSION=B-…`: what /init prints from /etc/psyops-version. */
  versionA: string;
  versionB: string;
  /** e.g. `linux-image-6.1.0-57-cloud-amd64 6.1.192-3`. */
  kernelPackage: string;
  /** e.g. `2.06-13+deb12u2`. */
  grubVersion: string;
}

function haveCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Tools build.sh needs, as command → Debian package. */
const BUILD_TOOLS: Record<string, string> = {
  'apt-get': 'apt', 'dpkg-deb': 'dpkg', cpio: 'cpio', busybox: 'busybox-static', 'grub-mkimage': 'grub-common', flock: 'util-linux',
};
/** Tools upstream-image.sh needs. */
const IMAGE_TOOLS: Record<string, string> = {
  sgdisk: 'gdisk', fdisk: 'fdisk', 'mkfs.fat': 'dosfstools', 'fsck.fat': 'dosfstools', mcopy: 'mtools', mdir: 'mtools',
  'mkfs.ext4': 'e2fsprogs', e2fsck: 'e2fsprogs',
};

function missingTools(tools: Record<string, string>): string | undefined {
  const missing = Object.entries(tools).filter(([c]) => !haveCommand(c));
  if (missing.length === 0) return undefined;
  return `missing ${missing.map(([c]) => c).join(', ')} (apt-get install ${[...new Set(missing.map(([, p]) => p))].join(' ')})`;
}

export function fixturesDir(): string {
  const hash = createHash('sha256').update(readFileSync(BUILD_SH)).digest('hex').slice(0, 12);
  return join(REPO_ROOT, '.cache', 'fixtures', `boot-${hash}`);
}

let cached: BootFixtures | undefined;
let buildError: string | undefined;

/** Build (or reuse) the fixtures. Throws with the script's last stderr lines when it fails. */
export function getBootFixtures(): BootFixtures {
  if (cached) return cached;
  if (buildError) throw new Error(buildError);
  const dir = fixturesDir();
  if (!existsSync(join(dir, 'done'))) {
    const missing = missingTools(BUILD_TOOLS);
    if (missing) throw new Error((buildError = `boot fixtures: ${missing}`));
    if (!existsSync('/usr/lib/grub/x86_64-efi/linux.mod')) {
      throw new Error((buildError = 'boot fixtures: GRUB x86_64-efi modules missing (apt-get install grub-efi-amd64-bin)'));
    }
    const r = spawnSync('bash', [BUILD_SH, dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 15 * 60_000 });
    if (r.status !== 0 || !existsSync(join(dir, 'done'))) {
      const tail = `${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim().split('\n').slice(-5).join(' | ');
      throw new Error((buildError = `boot fixtures: build.sh failed (exit ${r.status}): ${tail}`));
    }
  }
  const env = Object.fromEntries(
    readFileSync(join(dir, 'versions.env'), 'utf8').trim().split('\n').map((l) => {
      const m = /^(\w+)='(.*)'$/.exec(l);
      if (!m) throw new Error(`boot fixtures: bad line in ${dir}/versions.env: ${l}`);
      return [m[1], m[2]];
    }),
  );
  const f = (n: string) => join(dir, n);
  cached = {
    dir,
    kernel: f('vmlinuz'),
    initramfsA: f('initramfs-A.cpio.gz'),
    initramfsB: f('initramfs-B.cpio.gz'),
    osTarA: f('psyopsOS.A.tar'),
    osTarB: f('psyopsOS.B.tar'),
    espTar: f('psyopsESP.tar'),
    espDir: f('esp'),
    grubCfgReference: f('grub-A.cfg'),
    grubCfgA: f('grub-A.cfg'),
    grubCfgB: f('grub-B.cfg'),
    versionA: env.VERSION_A,
    versionB: env.VERSION_B,
    kernelPackage: env.KERNEL_PACKAGE,
    grubVersion: env.GRUB_VERSION,
  };
  return cached;
}

/**
 * Why boot tests cannot run here (a missing tool, no OVMF, or a fixture build that failed, e.g.
 * apt-get download offline), or undefined when they can. Builds the fixtures as a side effect.
 * Pass `{ image: true }` when the test also builds a reference image with upstream-image.sh.
 */
export function skipReason(opts: { image?: boolean; qemu?: boolean } = {}): string | undefined {
  if (opts.qemu !== false) {
    const q = qemuSkipReason();
    if (q) return q;
  }
  if (opts.image) {
    const m = missingTools(IMAGE_TOOLS);
    if (m) return `reference image: ${m}`;
  }
  try {
    getBootFixtures();
  } catch (e) {
    return (e as Error).message;
  }
  return undefined;
}

/** The strict-mode condition a skipReason() message is about. */
export function bootSkipTool(reason: string): string {
  if (/qemu|OVMF/i.test(reason)) return 'qemu';
  if (/^reference image:/.test(reason)) return 'upstream-image-tools';
  const tool = /^(\S+) not installed/.exec(reason);
  if (tool) return tool[1]!;
  return 'boot-fixtures'; // a build tool missing or build.sh failed (e.g. apt-get download offline: network)
}

/**
 * `reason` from skipReason() (computed once per file): undefined → true (recorded as a check with
 * `ran`, default qemu); else skipOrFail (fails in strict mode) and false.
 */
export function needBoot(t: SkipContext, reason: string | undefined, ran = 'qemu'): boolean {
  if (reason === undefined) {
    ranTool(t, ran);
    return true;
  }
  skipOrFail(t, reason, { tool: bootSkipTool(reason) });
  return false;
}

export interface UpstreamImageOptions {
  /** OS tarballs for slot A and B (B defaults to A). */
  osTarA: string;
  osTarB?: string;
  espTar: string;
  grubCfg: string;
  secretTar?: string;
  /** Partition sizes in MiB (defaults 64 or 260 with 4 KiB sectors / 16 / 64). */
  espMiB?: number;
  secretMiB?: number;
  slotMiB?: number;
  sectorSize?: 512 | 4096;
  /** Partitioner: sgdisk (default for 512), parted (upstream's exact commands), fdisk (4096). */
  partitioner?: 'sgdisk' | 'parted' | 'fdisk';
  /** Passed to mkfs.ext4 -O, e.g. `^metadata_csum_seed` or `casefold`. */
  ext4Features?: string;
}

/** Byte offset and size of a partition in an image built by buildUpstreamImage (the script's math). */
export function upstreamLayout(o: Pick<UpstreamImageOptions, 'espMiB' | 'secretMiB' | 'slotMiB' | 'sectorSize'> = {}) {
  const MiB = 2 ** 20;
  const esp = o.espMiB ?? (o.sectorSize === 4096 ? 260 : 64);
  const secret = o.secretMiB ?? 16;
  const slot = o.slotMiB ?? 64;
  return {
    esp: { offset: 1 * MiB, size: esp * MiB },
    secret: { offset: (1 + esp) * MiB, size: secret * MiB },
    a: { offset: (1 + esp + secret) * MiB, size: slot * MiB },
    b: { offset: (1 + esp + secret + slot) * MiB, size: slot * MiB },
    imageSize: (1 + esp + secret + 2 * slot + 1) * MiB,
  };
}

/** Build a reference image with upstream's recipe and real tools (sparse, rootless). */
export function buildUpstreamImage(out: string, o: UpstreamImageOptions): void {
  const args = [UPSTREAM_SH, '-o', out, '-E', o.espTar, '-a', o.osTarA, '-g', o.grubCfg];
  if (o.osTarB) args.push('-b', o.osTarB);
  if (o.secretTar) args.push('-x', o.secretTar);
  if (o.espMiB !== undefined) args.push('-e', String(o.espMiB));
  if (o.secretMiB !== undefined) args.push('-y', String(o.secretMiB));
  if (o.slotMiB !== undefined) args.push('-s', String(o.slotMiB));
  if (o.sectorSize) args.push('-S', String(o.sectorSize));
  if (o.partitioner) args.push('-t', o.partitioner);
  if (o.ext4Features) args.push('-O', o.ext4Features);
  const r = spawnSync('bash', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`upstream-image.sh failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
}
