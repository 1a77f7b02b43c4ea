/**
 * Helpers for the FAT32 tests (real tools as independent readers). Not used
 * by the library itself.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1', ...opts.env } });
  return { status: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, error: r.error };
}

export function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** Problems fsck.fat -n reports, as lines (empty = clean). */
export function fsckProblems(img: string): string[] {
  const r = run('fsck.fat', ['-n', img]);
  const lines = r.out.split('\n').map((l) => l.trim()).filter(Boolean);
  const problems = lines.filter((l) => !/^fsck\.fat \d/.test(l) && !/: \d+ files, \d+\/\d+ clusters$/.test(l));
  if (r.status !== 0 && problems.length === 0) problems.push(`exit ${r.status}`);
  return problems;
}

export function tmp(prefix = 'fat32-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

export function sha256File(path: string): string {
  return sha256(readFileSync(path));
}

/** A varied source tree: long names, mixed case, 8.3 lower case, deep dirs, empty and multi-cluster files. */
export function makeTree(bigBytes = 300_000): string {
  const d = tmp('fat32src-');
  const w = (p: string, data: string | Buffer) => {
    mkdirSync(join(d, p, '..'), { recursive: true });
    writeFileSync(join(d, p), data);
  };
  let x = 12345;
  const rnd = (n: number) => Buffer.from(Array.from({ length: n }, () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) & 0xff));
  w('EFI/BOOT/BOOTX64.EFI', rnd(bigBytes));
  w('grub/grub.cfg', 'set timeout=1\nmenuentry a { true }\n');
  w('grub/grubenv', '# GRUB Environment Block\n'.padEnd(1024, '#'));
  w('A long file name with spaces.txt', 'long\n');
  w('Makefile', 'all:\n');
  w('readme.md', 'lower 8.3\n');
  w('UPPER.TXT', 'upper 8.3\n');
  w('MiXeD.Txt', 'mixed\n');
  w('.hidden', 'dot\n');
  w('empty', '');
  w('deep/a/b/c/d/e/leaf.TXT', 'deep\n');
  w('name.with.many.dots.tar.gz', 'dots\n');
  w(`${'n'.repeat(200)}.bin`, 'long name\n');
  for (let i = 0; i < 20; i++) w(`many/file number ${i}.data`, `${i}\n`.repeat(i * 37));
  w('psyopsESP.tar.minisig', 'sig\n');
  return d;
}

import type { Device } from '../device/device.js';
import { openSync, writeSync, closeSync } from 'node:fs';

/**
 * Copy-on-write view of a base device, so crash tests can replay many runs
 * on a large image without copying it each time. All I/O must be aligned to
 * `grain` bytes (FAT32 I/O is sector-aligned).
 */
export class CowDevice implements Device {
  readonly size: number;
  readonly sectorSize: number;
  readonly overlay = new Map<number, Buffer>();
  constructor(private readonly base: Device, private readonly grain = 512) {
    this.size = base.size;
    this.sectorSize = base.sectorSize;
  }
  async read(offset: number, buf: Uint8Array): Promise<void> {
    await this.base.read(offset, buf);
    for (let o = 0; o < buf.length; o += this.grain) {
      const ov = this.overlay.get(offset + o);
      if (ov) buf.set(ov.subarray(0, Math.min(this.grain, buf.length - o)), o);
    }
  }
  async write(offset: number, buf: Uint8Array): Promise<void> {
    if (offset % this.grain || buf.length % this.grain) throw new Error(`unaligned write ${offset}+${buf.length}`);
    for (let o = 0; o < buf.length; o += this.grain) this.overlay.set(offset + o, Buffer.from(buf.subarray(o, o + this.grain)));
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  /** Write the overlay into a copy of the base image at `path`; returns a function restoring it from `baseBytesAt`. */
  applyTo(path: string, baseBytesAt: (offset: number, n: number) => Buffer): () => void {
    const fd = openSync(path, 'r+');
    for (const [o, b] of this.overlay) writeSync(fd, b, 0, b.length, o);
    closeSync(fd);
    return () => {
      const fd2 = openSync(path, 'r+');
      for (const [o, b] of this.overlay) writeSync(fd2, baseBytesAt(o, b.length), 0, b.length, o);
      closeSync(fd2);
    };
  }
}
