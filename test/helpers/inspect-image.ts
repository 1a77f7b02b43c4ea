/**
 * A psyopsOS reference image for ls / cat / show tests, made with real tools only: trees with
 * awkward content (multi-block directories, long and mixed-case FAT names, symlinks, empty and
 * multi-MiB files), OS and ESP tarballs signed with the real `minisign` CLI (slot B unsigned),
 * a grubenv from `grub-editenv`, assembled by test/fixtures/upstream-image.sh (sgdisk, mkfs.fat +
 * mcopy, mkfs.ext4 -d).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, copyFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildUpstreamImage, upstreamLayout } from './fixtures.js';
import { needTools, type SkipContext } from './skip.js';

export const TOOLS = ['sgdisk', 'mkfs.fat', 'mcopy', 'mdir', 'mkfs.ext4', 'debugfs', 'blkid', 'minisign', 'grub-editenv', 'tar'];

export function missingTools(tools = TOOLS): string[] {
  return tools.filter((c) => spawnSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }).status !== 0);
}

export function sh(cmd: string, args: string[], opts: { input?: string } = {}): Buffer {
  const r = spawnSync(cmd, args, { input: opts.input, maxBuffer: 256 << 20, env: { ...process.env, LC_ALL: 'C', TZ: 'UTC', MTOOLS_SKIP_CHECK: '1' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr?.toString().trim()}`);
  return r.stdout;
}

export const OS_META = {
  type: 'psyopsOS',
  filename: 'psyopsOS.x86_64.20251129-101112.tar',
  version: '20251129-101112',
  kernel: '6.6.58-0-lts',
  alpine: '3.20',
  architecture: 'x86_64',
};
export const ESP_META = { type: 'psyopsESP', filename: 'psyopsESP.x86_64-uefi.20251128-090807.tar', version: '20251128-090807' };
export const GRUBENV = { boot_count: '2', custom_var: 'hello world' };

export function grubCfg(defaultLabel: string): string {
  const entry = (l: string) => `menuentry "${l}" {\n    search --no-floppy --label ${l} --set root\n    linux /kernel ro psyopsos=${l} console=ttyS0,115200\n    initrd /initramfs\n}\n`;
  return [
    '# psyopsOS grub.cfg',
    `# neuralupgrade-info: last_updated=20251129-000000 default_boot_label=${defaultLabel} extra_programs=`,
    `set default="${defaultLabel}"`,
    'set timeout=1',
    '',
    entry('psyopsOS-A') + entry('psyopsOS-B'),
    'menuentry "Reboot" {\n    reboot\n}\n',
  ].join('\n');
}

function file(p: string, data: Buffer | string): void {
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, data);
}

function osTree(root: string, tag: string): void {
  file(join(root, 'kernel'), randomBytes(300_000 + 17));
  file(join(root, 'initramfs'), randomBytes(1_200_000));
  file(join(root, 'modloop'), randomBytes(3 * 2 ** 20 + 5));
  file(join(root, 'System.map'), `map ${tag}\n`.repeat(5000));
  file(join(root, 'empty'), '');
  file(join(root, 'notes with spaces.txt'), `slot ${tag}\n`);
  file(join(root, 'résumé-ünïcødé.txt'), 'utf-8 name\n');
  for (let i = 0; i < 180; i++) file(join(root, 'boot', 'dtbs', `board-with-a-longish-name-${String(i).padStart(3, '0')}.dtb`), randomBytes(i * 37));
  file(join(root, 'a', 'b', 'c', 'd', 'deep.txt'), 'deep\n');
  symlinkSync('../kernel', join(root, 'boot', 'vmlinuz'));
  symlinkSync('/a/b/c', join(root, 'abc'));
}

function espTree(root: string): void {
  file(join(root, 'EFI', 'BOOT', 'BOOTX64.EFI'), randomBytes(700_001));
  file(join(root, 'memtest86plus-long-file-name.efi'), randomBytes(150_000));
  file(join(root, 'manifest.json'), '{"extra_programs": {}}\n');
  file(join(root, 'Readme.TXT'), 'mixed case\n');
  file(join(root, 'UPPER.TXT'), 'upper\n');
  file(join(root, 'lower.txt'), 'lower\n');
  for (let i = 0; i < 120; i++) file(join(root, 'grub', 'x86_64-efi', `module${i}.mod`), randomBytes(i * 101));
  mkdirSync(join(root, 'empty-dir'), { recursive: true });
}

function tarOf(dir: string, out: string): void {
  sh('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@1764374400', '-cf', out, '-C', dir, '.']);
}

export interface InspectImage {
  dir: string;
  img: string;
  layout: ReturnType<typeof upstreamLayout>;
  pubkey: string;
  seckey: string;
  /** Slot A's OS tarball as signed (psyopsOS.tar + psyopsOS.tar.minisig next to it); the ESP's likewise. */
  osTar: string;
  espTarSigned: string;
  /** The trees as they went into the slots / ESP (including the .minisig files). */
  treeA: string;
  treeB: string;
  treeEsp: string;
  cleanup(): void;
}

/** Build the image (about 210 MiB sparse) in a fresh temp directory. */
export function buildInspectImage(opts: { defaultLabel?: string; partitioner?: 'sgdisk' | 'parted' | 'fdisk'; sectorSize?: 512 | 4096 } = {}): InspectImage {
  const dir = mkdtempSync(join(tmpdir(), 'diskimg-inspect-'));
  const pub = join(dir, 'key.pub');
  const sec = join(dir, 'key.sec');
  sh('minisign', ['-G', '-W', '-f', '-p', pub, '-s', sec]);
  const sign = (f: string, meta: Record<string, string>) =>
    sh('minisign', ['-S', '-s', sec, '-m', f, '-t', Object.entries(meta).map(([k, v]) => `${k}=${v}`).join(' ')]);

  const treeA = join(dir, 'A');
  const treeB = join(dir, 'B');
  const treeEsp = join(dir, 'esp');
  osTree(treeA, 'A');
  osTree(treeB, 'B');
  espTree(treeEsp);
  // Slot A: psyopsOS.tar signed with minisign, its .minisig next to the extracted contents.
  tarOf(treeA, join(dir, 'psyopsOS.tar'));
  sign(join(dir, 'psyopsOS.tar'), OS_META);
  copyFileSync(join(dir, 'psyopsOS.tar.minisig'), join(treeA, 'psyopsOS.tar.minisig'));
  // ESP: psyopsESP.tar signed the same way, plus a grubenv made by grub-editenv.
  tarOf(treeEsp, join(dir, 'psyopsESP.tar'));
  sign(join(dir, 'psyopsESP.tar'), ESP_META);
  copyFileSync(join(dir, 'psyopsESP.tar.minisig'), join(treeEsp, 'psyopsESP.tar.minisig'));
  const env = join(treeEsp, 'grub', 'grubenv');
  sh('grub-editenv', [env, 'create']);
  sh('grub-editenv', [env, 'set', ...Object.entries(GRUBENV).map(([k, v]) => `${k}=${v}`)]);
  for (const t of [treeA, treeEsp]) utimesSync(t, 1764374400, 1764374400);
  const slotA = join(dir, 'slotA.tar');
  const slotB = join(dir, 'slotB.tar');
  const espTar = join(dir, 'esp.tar');
  tarOf(treeA, slotA);
  tarOf(treeB, slotB); // slot B: no signature
  tarOf(treeEsp, espTar);
  const cfg = join(dir, 'grub.cfg');
  writeFileSync(cfg, grubCfg(opts.defaultLabel ?? 'psyopsOS-B'));
  copyFileSync(cfg, join(treeEsp, 'grub', 'grub.cfg')); // what the script puts there
  // The side files upstream-image.sh adds, so the trees mirror the slots.
  writeFileSync(join(treeA, 'psyopsOS-A'), 'psyopsOS-A\n');
  writeFileSync(join(treeB, 'psyopsOS-B'), 'psyopsOS-B\n');
  const img = join(dir, 'ref.img');
  buildUpstreamImage(img, { osTarA: slotA, osTarB: slotB, espTar, grubCfg: cfg, partitioner: opts.partitioner, sectorSize: opts.sectorSize });
  return {
    dir, img, layout: upstreamLayout({ sectorSize: opts.sectorSize }), pubkey: pub, seckey: sec, treeA, treeB, treeEsp,
    osTar: join(dir, 'psyopsOS.tar'), espTarSigned: join(dir, 'psyopsESP.tar'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Register ava hooks that build one inspect image for the whole test file (or note why not) and
 * clean it up; returns `ready(t)`, which gives the image or logs the skip reason and passes.
 */
export function useInspectImage(
  test: { before: (fn: () => void) => void; after: { always: (fn: () => void) => void } },
  opts: Parameters<typeof buildInspectImage>[0] = {},
): (t: SkipContext) => InspectImage | undefined {
  let ref: InspectImage | undefined;
  let missing: string[] = [];
  test.before(() => {
    missing = missingTools();
    if (!missing.length) ref = buildInspectImage(opts);
  });
  test.after.always(() => ref?.cleanup());
  return (t) => {
    // needTools records the checks (or skipOrFail: fails in strict mode).
    if (!needTools(t, ...TOOLS) || !ref) return undefined;
    return ref;
  };
}
