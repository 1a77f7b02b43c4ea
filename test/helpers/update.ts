/**
 * Helpers shared by the `diskimg update` tests: the partitions of an image as sfdisk sees them,
 * sha256 digests of the GPT areas and of each partition (read by range, so large images are not
 * loaded whole), a partition extracted with dd, files read from the ESP with mtools, and the slot
 * check by real readers (e2fsck -fn clean, debugfs rdump equal to the tarball, blkid's label).
 */
import type { ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, fstatSync, mkdirSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const have = (c: string): boolean => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
export const isRoot = process.getuid?.() === 0;

/** Run a tool; its stdout, or throw with its exit code and output. */
export function run(cmd: string, args: string[], input?: Buffer | string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 64 << 20, env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

export interface Part {
  name: string;
  /** Byte offset and size. */
  start: number;
  size: number;
}

/** The GPT's partitions as sfdisk reads them (512-byte sectors). */
export function partitions(img: string): Part[] {
  const j = JSON.parse(run('sfdisk', ['--json', img]));
  return j.partitiontable.partitions.map((p: any) => ({ name: p.name, start: p.start * 512, size: p.size * 512 }));
}

export function partition(img: string, name: string): Part {
  const p = partitions(img).find((x) => x.name === name);
  if (!p) throw new Error(`${img}: no partition named ${name}`);
  return p;
}

/** sha256 of `size` bytes at `start` of a file, read in 4 MiB pieces. */
export function shaRange(file: string, start: number, size: number): string {
  const fd = openSync(file, 'r');
  try {
    const h = createHash('sha256');
    const buf = Buffer.alloc(4 << 20);
    for (let off = start, end = start + size; off < end; ) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, end - off), off);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      off += n;
    }
    return h.digest('hex');
  } finally {
    closeSync(fd);
  }
}

export function fileSha(file: string): string {
  const fd = openSync(file, 'r');
  const size = fstatSync(fd).size;
  closeSync(fd);
  return shaRange(file, 0, size);
}

/** sha256 of the GPT areas and of each partition: gpt-primary, gpt-backup, p1 ESP, p2 secret, p3 A, p4 B (less those in `skip`). */
export function digests(img: string, skip: string[] = []): Record<string, string> {
  const fd = openSync(img, 'r');
  const total = fstatSync(fd).size;
  closeSync(fd);
  const out: Record<string, string> = { 'gpt-primary': shaRange(img, 0, 1 << 20), 'gpt-backup': shaRange(img, total - 33 * 512, 33 * 512) };
  partitions(img).forEach((p, i) => {
    if (!skip.includes(`p${i + 1}`)) out[`p${i + 1}`] = shaRange(img, p.start, p.size);
  });
  return out;
}

/** Partition `name` copied out to a (sparse) file in `dir`. */
export function extract(img: string, name: string, dir: string): string {
  const p = partition(img, name);
  const out = join(dir, `${name}-${Math.random().toString(36).slice(2)}.part`);
  run('dd', [`if=${img}`, `of=${out}`, 'bs=1M', 'iflag=skip_bytes,count_bytes', `skip=${p.start}`, `count=${p.size}`, 'conv=sparse', 'status=none']);
  return out;
}

/** A file from the ESP (partition PSYOPSOSEFI) read by mtools. */
export function espFile(img: string, path: string): Buffer {
  const esp = partition(img, 'PSYOPSOSEFI');
  const r = spawnSync('mcopy', ['-n', '-i', `${img}@@${esp.start}`, `::${path}`, '-'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' }, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`mcopy ::${path}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** Deterministic tar of a directory's contents. */
export function tarDir(dir: string, out: string): string {
  run('tar', ['--sort=name', '--mtime=@1764374400', '--owner=0', '--group=0', '--numeric-owner', '-C', dir, '-cf', out, '.']);
  return out;
}

/** An OS tree (kernel, initramfs, modloop, squashfs, System.map, boot/dtbs) as a tarball at `out`. */
export function writeOsTar(out: string, files: Record<string, string | Buffer>): string {
  const dir = `${out}.d`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'boot/dtbs'), { recursive: true });
  const all: Record<string, string | Buffer> = {
    kernel: 'kernel\n',
    initramfs: 'initramfs\n',
    modloop: 'modloop\n',
    squashfs: 'squashfs\n',
    'System.map': 'map\n',
    'boot/dtbs/x.dtb': 'dtb',
    ...files,
  };
  for (const [p, d] of Object.entries(all)) writeFileSync(join(dir, p), d);
  tarDir(dir, out);
  rmSync(dir, { recursive: true, force: true });
  return out;
}

/**
 * The slot `label` of `img` checked by real readers: e2fsck -fn clean, debugfs rdump equal to the
 * tarball plus the slot's own files (/LABEL, /psyopsOS.tar.minisig = `sig`, lost+found), and blkid
 * -p finds the label. Scratch files go to `dir` and are removed.
 */
export function checkSlot(t: ExecutionContext, img: string, label: string, tar: string, dir: string, sig = `${tar}.minisig`): void {
  const part = extract(img, label, dir);
  const id = Math.random().toString(36).slice(2);
  const dump = join(dir, `dump-${id}`);
  const want = join(dir, `want-${id}`);
  try {
    const r = spawnSync('e2fsck', ['-fn', part], { encoding: 'utf8' });
    t.is(r.status, 0, `${label}: ${r.stdout}${r.stderr}`);
    mkdirSync(dump);
    mkdirSync(want);
    run('debugfs', ['-R', `rdump / ${dump}`, part]);
    run('tar', ['-C', want, '-xf', tar]);
    writeFileSync(join(want, label), label);
    copyFileSync(sig, join(want, 'psyopsOS.tar.minisig'));
    mkdirSync(join(want, 'lost+found'));
    const d = spawnSync('diff', ['-r', want, dump], { encoding: 'utf8' });
    t.is(d.status, 0, d.stdout + d.stderr);
    t.is(run('blkid', ['-p', '-s', 'LABEL', '-o', 'value', part]).trim(), label);
  } finally {
    for (const p of [part, dump, want]) rmSync(p, { recursive: true, force: true });
  }
}

/** blkid -p's view of partition `name`: exit code and output (2 = nothing found). */
export function blkidPartition(img: string, name: string, dir: string): { status: number | null; out: string } {
  const part = extract(img, name, dir);
  try {
    const r = spawnSync('blkid', ['-p', part], { encoding: 'utf8' });
    return { status: r.status, out: r.stdout + r.stderr };
  } finally {
    rmSync(part, { force: true });
  }
}

/** grubenv's variables as text (the block without its # padding). */
export function grubenvText(img: string): string {
  return espFile(img, '/grub/grubenv').toString('latin1').replace(/#+$/, '');
}

/** What grubenv holds after an update of B that started writing and did not finish (update stages B before its first byte). */
export const GRUBENV_B_STAGED = '# GRUB Environment Block\n# WARNING: Do not edit this file by tools other than grub-editenv!!!\npsyopsos_staged=psyopsOS-B\n';
