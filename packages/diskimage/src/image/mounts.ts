import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { basename } from 'node:path';
import { SafetyError } from '@diskimg/partitions';

/**
 * Kernel block-device names that belong to `name`: itself, its partitions,
 * and whatever is stacked on them (dm-crypt, LVM: the "holders").
 */
function family(name: string, seen = new Set<string>()): Set<string> {
  if (seen.has(name)) return seen;
  seen.add(name);
  const sys = `/sys/class/block/${name}`;
  let kids: string[] = [];
  try {
    kids = readdirSync(sys);
  } catch {
    return seen;
  }
  for (const k of kids) if (k.startsWith(name) && existsSync(`${sys}/${k}/partition`)) family(k, seen);
  try {
    for (const h of readdirSync(`${sys}/holders`)) family(h, seen);
  } catch {
    /* no holders directory */
  }
  return seen;
}

/** Mount points and swap areas that use the block device `devPath` or any of its partitions. */
export function mountsOf(devPath: string): string[] {
  const names = family(basename(realpathSync(devPath)));
  const uses = (src: string) => {
    if (!src.startsWith('/dev/')) return false;
    try {
      return names.has(basename(realpathSync(src)));
    } catch {
      return names.has(basename(src));
    }
  };
  const out: string[] = [];
  const unescape = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  for (const line of readText('/proc/self/mounts').split('\n')) {
    const [src, target] = line.split(' ');
    if (src && target && uses(unescape(src))) out.push(`${unescape(src)} on ${unescape(target)}`);
  }
  for (const line of readText('/proc/swaps').split('\n').slice(1)) {
    const src = line.split(/\s+/)[0];
    if (src && uses(src)) out.push(`${src} (swap)`);
  }
  return out;
}

/** Throws SafetyError when the block device or one of its partitions is mounted or used as swap. */
export function assertNotMounted(devPath: string): void {
  const m = mountsOf(devPath);
  if (m.length) throw new SafetyError(`${devPath}: in use (${m.join('; ')}); unmount it first`);
}

function readText(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}
