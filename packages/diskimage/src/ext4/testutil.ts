/**
 * Shared helpers for the ext4 writer tests: real tools (e2fsck, debugfs,
 * dumpe2fs, diff) as the judges, and input trees. Test-only; not exported.
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, symlinkSync, linkSync, chmodSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { makeEntropy } from '@diskimg/partitions/internal';
import { FileDevice } from '../device/file.js';
import type { TreeEntry } from '../source/tree.js';
import { createExt4, type CreateExt4Options, type CreateExt4Summary } from './create.js';

export const MiB = 2 ** 20;
export const EPOCH = 1_700_000_000;
export const haveE2fs = spawnSync('e2fsck', ['-V']).status === 0 && spawnSync('debugfs', ['-V']).status === 0;
export const isRoot = process.getuid?.() === 0;

export function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `ext4-${prefix}-`));
}

/** Create an image file of `bytes` (sparse) and write a filesystem into it. */
export async function makeImage(
  img: string,
  bytes: number,
  entries: AsyncIterable<TreeEntry> | undefined,
  opts: Partial<CreateExt4Options> = {},
): Promise<CreateExt4Summary> {
  const dev = await FileDevice.create(img, bytes);
  try {
    return await createExt4(dev, entries, { label: 'test', entropy: makeEntropy('seed'), now: EPOCH, sourceDateEpoch: EPOCH, ...opts });
  } finally {
    await dev.close();
  }
}

/** e2fsck -fn: exit status and anything beyond the five pass lines and the summary. */
export function fsck(img: string): { status: number | null; extra: string[]; out: string } {
  const r = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
  const extra = lines.filter((l) => !/^Pass [1-5]: /.test(l) && !/^e2fsck \d/.test(l) && !/^[^:]+: \d+\/\d+ files \(.*\), \d+\/\d+ blocks$/.test(l));
  return { status: r.status, extra, out: lines.join('\n') };
}

export function debugfs(img: string, cmd: string): string {
  return execFileSync('debugfs', ['-R', cmd, img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * MiB });
}

/** debugfs rdump of the whole tree, then diff -r against `src` (no dereferencing; lost+found ignored). */
export function rdumpDiff(img: string, src: string): string {
  const out = tmp('rdump');
  try {
    execFileSync('debugfs', ['-R', `rdump / ${out}`, img], { stdio: 'ignore' });
    const r = spawnSync('diff', ['-r', '--no-dereference', '-x', 'lost+found', src, out], { encoding: 'utf8' });
    return r.status === 0 ? '' : r.stdout + r.stderr;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

export interface Stat {
  mode: number;
  type: string;
  uid: number;
  gid: number;
  links: number;
  size: number;
  mtime: number;
  atime: number;
  ctime: number;
  crtime: number;
  flags: number;
  blockcount: number;
  extents?: string;
}

/** Parse `debugfs -R 'stat PATH'`. */
export function stat(img: string, path: string): Stat {
  const s = debugfs(img, `stat "${path}"`);
  const num = (re: RegExp) => Number(re.exec(s)?.[1]);
  const time = (k: string) => parseInt(new RegExp(`${k}: 0x([0-9a-f]+)`).exec(s)?.[1] ?? 'NaN', 16);
  return {
    type: /Type: (\S+)/.exec(s)?.[1] ?? '?',
    mode: parseInt(/Mode:\s+(\d+)/.exec(s)?.[1] ?? 'NaN', 8),
    uid: num(/User:\s+(\d+)/),
    gid: num(/Group:\s+(\d+)/),
    links: num(/Links: (\d+)/),
    size: num(/Size: (\d+)/),
    mtime: time(' mtime'),
    atime: time(' atime'),
    ctime: time(' ctime'),
    crtime: time('crtime'),
    flags: parseInt(/Flags: 0x([0-9a-f]+)/.exec(s)?.[1] ?? 'NaN', 16),
    blockcount: num(/Blockcount: (\d+)/),
    extents: /EXTENTS:\n(.*)/.exec(s)?.[1],
  };
}

export function dumpe2fsHeader(img: string): string {
  return execFileSync('dumpe2fs', ['-h', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

function write(path: string, data: Buffer | string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
}

/** Deterministic pseudo-random bytes (xorshift), fast enough for tens of MiB. */
export function prng(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n + 4);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b.subarray(0, n);
}

/**
 * A small OS-like tree with the awkward cases: nested dirs, empty file, a file
 * spanning several blocks, short and long symlinks, hard links, setuid/setgid/sticky.
 */
export function makeOsTree(root: string, scale = 1): void {
  write(join(root, 'boot/vmlinuz-lts'), prng(2 * MiB * scale + 123, 1));
  write(join(root, 'boot/initramfs-lts'), prng(3 * MiB * scale + 7, 2));
  write(join(root, 'boot/config-lts'), 'CONFIG_EXT4_FS=y\n'.repeat(5000));
  for (let i = 0; i < 200; i++) write(join(root, `boot/dtbs/vendor${i % 7}/board-${i}.dtb`), prng(1000 + i * 37, 100 + i));
  write(join(root, 'etc/hostname'), 'psyopsos\n');
  write(join(root, 'etc/empty'), '');
  write(join(root, 'bin/busybox'), prng(900_000, 3));
  chmodSync(join(root, 'bin/busybox'), 0o4755);
  write(join(root, 'bin/sg'), 'x');
  chmodSync(join(root, 'bin/sg'), 0o2711);
  mkdirSync(join(root, 'tmp'), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  mkdirSync(join(root, 'var/empty/dir'), { recursive: true });
  symlinkSync('busybox', join(root, 'bin/sh'));
  symlinkSync('../boot/' + 'd'.repeat(40) + '/' + 'e'.repeat(40) + '/vmlinuz-lts-with-a-long-name', join(root, 'bin/long-link'));
  symlinkSync('/' + 'x'.repeat(59), join(root, 'bin/sixty'));
  linkSync(join(root, 'bin/busybox'), join(root, 'bin/ls'));
  linkSync(join(root, 'bin/busybox'), join(root, 'etc/busybox-hard'));
  write(join(root, 'psyopsOS-A'), 'psyopsOS-A');
}

/** `n` files spread over directories of `perDir` entries. */
export function makeManyFiles(root: string, n: number, perDir: number): void {
  for (let i = 0; i < n; i++) {
    const d = join(root, `d${Math.floor(i / perDir)}`);
    if (i % perDir === 0) mkdirSync(d, { recursive: true });
    const fd = openSync(join(d, `file-with-a-longish-name-${i}.txt`), 'w');
    writeSync(fd, `file ${i}\n`.repeat(i % 50));
    closeSync(fd);
  }
}

