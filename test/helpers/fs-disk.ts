/**
 * Disks for reader tests, made by the real tools: filesystem images
 * (mkfs.ext4 -d, mkfs.fat + mcopy, mksquashfs) put into GPT partitions
 * (sgdisk, then dd), so `diskimg ls/cat/diff DISK LABEL:/path` reads them.
 * Also the hostile ones: an ext4 directory cycle (debugfs link) and a FAT32
 * directory cycle (a directory entry's first cluster patched to its
 * grandparent's).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync, statSync, writeSync } from 'node:fs';

const MiB = 1 << 20;

export function sh(cmd: string, args: string[], opts: { input?: string } = {}): Buffer {
  const r = spawnSync(cmd, args, { input: opts.input, maxBuffer: 64 << 20, env: { ...process.env, TZ: 'UTC' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr?.toString().slice(0, 2000)}`);
  return r.stdout;
}

export interface Part {
  /** GPT partition name. */
  name: string;
  /** A filesystem image file. */
  image: string;
}

/** Write a GPT disk at `out` holding each image in its own partition (1 MiB aligned); returns the byte offsets. */
export function gptDisk(out: string, parts: Part[]): number[] {
  const sizes = parts.map((p) => Math.ceil(statSync(p.image).size / MiB));
  const total = 2 + sizes.reduce((a, b) => a + b, 0);
  sh('truncate', ['-s', `${total}M`, out]);
  const args = ['-o'];
  let at = 1;
  const offsets: number[] = [];
  parts.forEach((p, k) => {
    args.push('-n', `${k + 1}:${at * 2048}:${(at + sizes[k]!) * 2048 - 1}`, '-t', `${k + 1}:8300`, '-c', `${k + 1}:${p.name}`);
    offsets.push(at * MiB);
    at += sizes[k]!;
  });
  sh('sgdisk', [...args, out]);
  parts.forEach((p, k) => sh('dd', [`if=${p.image}`, `of=${out}`, 'bs=1M', `seek=${offsets[k]! / MiB}`, 'conv=notrunc,sparse', 'status=none']));
  return offsets;
}

/** A FAT32 directory entry's first cluster (high word at 20, low at 26), for the cycle generator. */
export function fatPatchFirstCluster(img: string, entryOffset: number, cluster: number): void {
  const fd = openSync(img, 'r+');
  try {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(cluster >>> 16);
    writeSync(fd, b, 0, 2, entryOffset + 20);
    b.writeUInt16LE(cluster & 0xffff);
    writeSync(fd, b, 0, 2, entryOffset + 26);
  } finally {
    closeSync(fd);
  }
}

/**
 * The byte offset (in the FAT32 image `img`) of the 8.3 entry named `short83`
 * (11 bytes, space padded, e.g. "B          ") inside the directory starting
 * at cluster `dirCluster`; and the geometry needed to patch it.
 */
export function fatFindEntry(img: string, dirCluster: number, short83: string): { offset: number; cluster: number } {
  const fd = openSync(img, 'r');
  try {
    const bs = Buffer.alloc(512);
    readSync(fd, bs, 0, 512, 0);
    const bps = bs.readUInt16LE(11);
    const spc = bs[13]!;
    const reserved = bs.readUInt16LE(14);
    const nfats = bs[16]!;
    const fatSz = bs.readUInt32LE(36);
    const dataStart = (reserved + nfats * fatSz) * bps;
    const clusterBytes = bps * spc;
    const dir = Buffer.alloc(clusterBytes);
    const at = dataStart + (dirCluster - 2) * clusterBytes;
    readSync(fd, dir, 0, clusterBytes, at);
    for (let o = 0; o < clusterBytes; o += 32) {
      if (dir[o] === 0) break;
      if (dir.toString('latin1', o, o + 11) === short83) {
        return { offset: at + o, cluster: (dir.readUInt16LE(o + 20) << 16) | dir.readUInt16LE(o + 26) };
      }
    }
    throw new Error(`${img}: no entry "${short83}" in the directory at cluster ${dirCluster}`);
  } finally {
    closeSync(fd);
  }
}

/** The root directory's first cluster of a FAT32 image. */
export function fatRootCluster(img: string): number {
  const fd = openSync(img, 'r');
  try {
    const bs = Buffer.alloc(512);
    readSync(fd, bs, 0, 512, 0);
    return bs.readUInt32LE(44);
  } finally {
    closeSync(fd);
  }
}
