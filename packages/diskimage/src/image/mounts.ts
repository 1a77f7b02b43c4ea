import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { basename } from 'node:path';
import { SafetyError } from '@diskimg/partitions/internal';

/**
 * Kernel block-device names that belong to `name`: itself, its partitions,
 * and whatever is stacked on them (dm-crypt, LVM: the "holders").
 */
function family(name: string, sysBlock: string, seen = new Set<string>()): Set<string> {
  if (seen.has(name)) return seen;
  seen.add(name);
  const sys = `${sysBlock}/${name}`;
  let kids: string[] = [];
  try {
    kids = readdirSync(sys);
  } catch {
    return seen;
  }
  for (const k of kids) if (k.startsWith(name) && existsSync(`${sys}/${k}/partition`)) family(k, sysBlock, seen);
  try {
    for (const h of readdirSync(`${sys}/holders`)) family(h, sysBlock, seen);
  } catch {
    /* no holders directory */
  }
  return seen;
}

/** Where mountsOf looks; replaceable for tests. */
export interface MountSources {
  mounts: string;
  swaps: string;
  sysBlock: string;
  /**
   * /proc/self/mountinfo: its major:minor field catches mounts whose source
   * names the device by another path (or none a name can be matched on).
   */
  mountinfo?: string;
}
const SYSTEM: MountSources = { mounts: '/proc/self/mounts', swaps: '/proc/swaps', sysBlock: '/sys/class/block', mountinfo: '/proc/self/mountinfo' };

/** Mount points and swap areas that use the block device `devPath` or any of its partitions. */
export function mountsOf(devPath: string, where: MountSources = SYSTEM): string[] {
  // /dev/disk/by-id/… and /dev/mapper/… are symlinks to the kernel name.
  const kernelName = (p: string) => {
    try {
      return basename(realpathSync(p));
    } catch {
      return basename(p);
    }
  };
  const names = family(kernelName(devPath), where.sysBlock);
  const uses = (src: string) => src.startsWith('/dev/') && names.has(kernelName(src));
  const out: string[] = [];
  const unescape = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  for (const line of readText(where.mounts).split('\n')) {
    const [src, target] = line.split(' ');
    if (src && target && uses(unescape(src))) out.push(`${unescape(src)} on ${unescape(target)}`);
  }
  // The same devices by number: mountinfo's third field is the mounted device's major:minor.
  const numbers = new Set<string>();
  for (const n of names) {
    const d = readText(`${where.sysBlock}/${n}/dev`).trim();
    if (d) numbers.add(d);
  }
  if (where.mountinfo && numbers.size) {
    for (const line of readText(where.mountinfo).split('\n')) {
      const f = line.split(' ');
      const sep = f.indexOf('-');
      if (f.length < 5 || !numbers.has(f[2]!)) continue;
      const entry = `${sep > 0 ? unescape(f[sep + 2] ?? '') : 'device ' + f[2]} on ${unescape(f[4]!)}`;
      if (!out.includes(entry)) out.push(entry);
    }
  }
  for (const line of readText(where.swaps).split('\n').slice(1)) {
    const src = line.split(/\s+/)[0];
    if (src && uses(src)) out.push(`${src} (swap)`);
  }
  return out;
}

/** Throws SafetyError when the block device or one of its partitions is mounted or used as swap. */
export function assertNotMounted(devPath: string, where?: MountSources): void {
  const m = mountsOf(devPath, where);
  if (m.length) throw new SafetyError(`${devPath}: in use (${m.join('; ')}); unmount it first`);
}

function readText(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The kernel's device node for partition `number` of the block device
 * `diskPath` (e.g. /dev/sda, 3 → /dev/sda3; /dev/nvme0n1, 1 → /dev/nvme0n1p1),
 * found through sysfs; undefined when the kernel has no node for it.
 */
export function partitionDevicePath(diskPath: string, number: number, sysBlock = SYSTEM.sysBlock): string | undefined {
  let name: string;
  try {
    name = basename(realpathSync(diskPath));
  } catch {
    name = basename(diskPath);
  }
  let kids: string[] = [];
  try {
    kids = readdirSync(`${sysBlock}/${name}`);
  } catch {
    return undefined;
  }
  for (const k of kids) {
    if (k.startsWith(name) && readText(`${sysBlock}/${name}/${k}/partition`).trim() === String(number)) return `/dev/${k}`;
  }
  return undefined;
}

/**
 * Refuse to edit partition `number` of `diskPath` in place while the kernel
 * has it mounted: its cached view would silently undo our writes (and ours
 * its). Image files are not checked (a loop-mounted image is the user's call).
 */
export function assertPartitionNotMounted(diskPath: string, number: number, where?: MountSources): void {
  const part = partitionDevicePath(diskPath, number, where?.sysBlock);
  if (part) assertNotMounted(part, where);
}
