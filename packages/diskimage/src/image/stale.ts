/**
 * Temporary files named after the process that writes them (`.NAME.partial-PID`,
 * `.NAME.self-update-PID.mjs`, …): a process killed by SIGKILL or a power cut leaves
 * its file behind; the next run removes the files of processes that no longer exist.
 * Never a live process's file (another user's included).
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** True when a process with this id exists (EPERM: it does, another user's). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove the files in `dir` whose names `pattern` matches with a process id as its
 * first group, when that process is gone. Our own id counts as gone (a file of ours
 * not yet created is a dead namesake's) unless `keepOwn`. Returns the names removed.
 * A directory that cannot be read or a file that cannot be removed is left as it is.
 */
export function removeDeadPidFiles(dir: string, pattern: RegExp, opts: { keepOwn?: boolean } = {}): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (!Number.isSafeInteger(pid) || pid <= 0) continue;
    if (pid === process.pid ? opts.keepOwn : isProcessAlive(pid)) continue;
    try {
      rmSync(join(dir, name), { force: true });
      removed.push(name);
    } catch {
      /* not ours to remove (permissions): left in place */
    }
  }
  return removed;
}

/** A RegExp matching exactly `prefix` + digits + `suffix` (the digits as group 1). */
export function pidFilePattern(prefix: string, suffix = ''): RegExp {
  const q = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${q(prefix)}(\\d+)${q(suffix)}$`);
}
