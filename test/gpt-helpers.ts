// Shared by test/gpt*.test.ts: real-tool runners and the sfdisk ↔ diskimg comparison.
import type { ExecutionContext } from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, needTools, ranTool, skipOrFail } from './helpers/skip.js';

export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** Unless every tool is installed: skipOrFail (fails in strict mode) and false. */
export { needTools };

export function run(cmd: string, args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { code: r.status ?? 1, out: r.stdout, err: r.stderr };
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Streaming SHA-256 of a file (images can be larger than a Buffer). */
export async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function scratch(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'diskimg-gpt-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Attach an image as a loop device with the given logical sector size; undefined (after skipOrFail) when not possible. */
export function losetup(t: ExecutionContext, img: string, sectorSize: number, partscan = false): string | undefined {
  if (!needTools(t, 'losetup')) return undefined;
  if (!isRoot) {
    skipOrFail(t, 'losetup needs root', { tool: 'root' });
    return undefined;
  }
  const r = run('losetup', ['-b', String(sectorSize), ...(partscan ? ['-P'] : []), '-f', '--show', img]);
  if (r.code !== 0) {
    skipOrFail(t, `losetup failed: ${r.err.trim()}`, { tool: 'loop-device' });
    return undefined;
  }
  ranTool(t, 'loop-device');
  return r.out.trim();
}

/**
 * The node of partition `n` of loop device `loop` (`/dev/loop0p2`): from the kernel's scan
 * (losetup -P), else after `partx -a`; undefined after skipOrFail('loop-partscan') when neither.
 */
export function loopPartition(t: ExecutionContext, loop: string, n: number): string | undefined {
  const node = `${loop}p${n}`;
  if (!existsSync(node)) run('partx', ['-a', loop]);
  for (let i = 0; i < 50 && !existsSync(node); i++) spawnSync('sleep', ['0.1']);
  if (!existsSync(node)) {
    skipOrFail(t, `no ${node}: no partition scan for loop devices (losetup -P, partx -a)`, { tool: 'loop-partscan' });
    return undefined;
  }
  ranTool(t, 'loop-partscan');
  return node;
}

export function detach(loop: string): void {
  run('losetup', ['-d', loop]);
}

/**
 * sfdisk --json and diskimg show --json must agree on every field sfdisk
 * reports: disk GUID, first/last usable LBA, sector size, and per partition
 * number, start, size, type GUID, unique GUID, name and attribute flags.
 */
export function assertAgreesWithSfdisk(t: ExecutionContext, sfdisk: any, ours: any): void {
  const pt = sfdisk.partitiontable;
  t.is(pt.label, 'gpt');
  t.is(pt.id, ours.diskGuid);
  t.is(pt.firstlba, ours.firstUsableLba);
  t.is(pt.lastlba, ours.lastUsableLba);
  t.is(pt.sectorsize, ours.sectorSize);
  t.is(pt.partitions.length, ours.partitions.length);
  pt.partitions.forEach((sp: any, i: number) => {
    const p = ours.partitions[i];
    t.is(Number(/(\d+)$/.exec(sp.node)![1]), p.number, `partition ${i} number`);
    t.is(sp.start, p.firstLba);
    t.is(sp.size, p.sizeSectors);
    t.is(sp.start + sp.size - 1, p.lastLba);
    t.is(sp.type, p.typeGuid);
    t.is(sp.uuid, p.guid);
    t.is(sp.name ?? '', p.name);
    t.is(sp.attrs ?? '', p.attributes.flags.join(' '));
  });
}
