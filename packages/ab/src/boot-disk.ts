/**
 * Find the node's boot disk: the one block device whose GPT partitions carry
 * the psyopsOS labels (ESP, slot A, slot B), found as `show` finds them.
 * None or several is an error listing what was seen, so a node with a spare
 * psyopsOS stick plugged in never gets the wrong disk written.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { InputError, PSYOPS_NAMES } from '@diskimg/partitions/internal';
import { openDisk, probePartition } from '@diskimg/diskimage/internal';
import { bootedLabel } from './boot-state.js';

/** The boot disk found by `findBootDisk`: its device path, its psyopsOS partitions, and the booted slot from /proc/cmdline. */
export interface BootDiskInfo {
  disk: string;
  partitions: { label: string; number: number }[];
  /** The booted slot's label from /proc/cmdline, when it names one. */
  booted: string | null;
}

/** Whole disks (not partitions) under /sys/class/block with a non-zero size. */
function wholeDisks(sysBlock: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(sysBlock);
  } catch {
    return [];
  }
  return names
    .filter((n) => !existsSync(`${sysBlock}/${n}/partition`) && !/^(ram|zram|dm-|md|sr|fd)/.test(n))
    .filter((n) => {
      try {
        return Number(readFileSync(`${sysBlock}/${n}/size`, 'utf8').trim()) > 0;
      } catch {
        return false;
      }
    })
    .sort();
}

/** The psyopsOS filesystems a disk carries (by filesystem label, as blkid sees them), or undefined when it is not a psyopsOS disk. */
async function psyopsPartitions(path: string): Promise<BootDiskInfo['partitions'] | undefined> {
  let disk;
  try {
    disk = await openDisk(path);
  } catch {
    return undefined; // no GPT, unreadable, busy: not a candidate
  }
  try {
    const wanted = new Set<string>([PSYOPS_NAMES.esp, PSYOPS_NAMES.secret, PSYOPS_NAMES.a, PSYOPS_NAMES.b]);
    const out: BootDiskInfo['partitions'] = [];
    for (const p of disk.partitions) {
      const label = (await probePartition(p)).label;
      if (label && wanted.has(label) && !out.some((o) => o.label === label)) out.push({ label, number: p.number });
    }
    const has = (l: string) => out.some((p) => p.label === l);
    return has(PSYOPS_NAMES.esp) && has(PSYOPS_NAMES.a) && has(PSYOPS_NAMES.b) ? out : undefined;
  } finally {
    await disk.close();
  }
}

/**
 * Find the running node's psyopsOS boot disk from the partition labels of the disks under /sys/class/block (`diskimg boot-disk`); an `InputError` when none or several match.
 * `retry`: the command the error suggests with the disk named (e.g. `diskimg check DISK --repo URL --pubkey KEY`: what was run, DISK added); omitted, none is suggested.
 */
export async function findBootDisk(o: { sysBlock?: string; devDir?: string; cmdline?: string; retry?: string } = {}): Promise<BootDiskInfo> {
  const sysBlock = o.sysBlock ?? '/sys/class/block';
  const devDir = o.devDir ?? '/dev';
  const found: BootDiskInfo[] = [];
  const seen = wholeDisks(sysBlock);
  for (const name of seen) {
    const parts = await psyopsPartitions(`${devDir}/${name}`);
    if (parts) found.push({ disk: `${devDir}/${name}`, partitions: parts, booted: bootedLabel({ cmdline: o.cmdline }) ?? null });
  }
  if (found.length === 1) return found[0]!;
  if (found.length === 0) {
    throw new InputError(
      `no psyopsOS boot disk found (looked at ${seen.map((n) => `${devDir}/${n}`).join(', ') || 'no block devices'}): none has the filesystem labels ${PSYOPS_NAMES.esp}, ${PSYOPS_NAMES.a} and ${PSYOPS_NAMES.b}${o.retry ? `; name the disk: ${o.retry}` : ''}`,
    );
  }
  throw new InputError(
    `several psyopsOS disks found (${found.map((f) => f.disk).join(', ')}): the labels cannot tell which one booted${o.retry ? `; name the one to use: ${o.retry}` : ''}`,
  );
}
