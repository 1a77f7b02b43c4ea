import type { Disk } from '@diskimg/diskimage/internal';
import type { BootState } from '@diskimg/ab/internal';

/**
 * Open DISK, or the node's boot disk (found by partition labels) when it is omitted; run fn, close.
 * The packages are imported here, when a command runs, not when it is registered.
 */
export async function withDisk<T>(path: string | undefined, writable: boolean, fn: (disk: Disk) => Promise<T>): Promise<T> {
  const { openDisk } = await import('@diskimg/diskimage/internal');
  const disk = await openDisk(path ?? (await bootDisk()), { writable });
  try {
    return await fn(disk);
  } finally {
    await disk.close();
  }
}

/** The node's boot disk (found by labels); its error suggests the command that was run, with DISK named. */
export async function bootDisk(): Promise<string> {
  const { findBootDisk, shellWord } = await import('@diskimg/ab/internal/status');
  return (await findBootDisk({ retry: retryWithDisk(shellWord) })).disk;
}

/**
 * The command line that was run, as `diskimg CMD DISK ARGS…` (DISK after the command word), for
 * "name the disk" hints: the user's own words, shell-quoted, so it pastes once DISK is filled in.
 */
export function retryWithDisk(quote: (s: string) => string, argv: string[] = process.argv.slice(2)): string {
  const i = argv.findIndex((a) => !a.startsWith('-'));
  const words = i < 0 ? [...argv, 'DISK'] : [...argv.slice(0, i + 1), 'DISK', ...argv.slice(i + 1)];
  return ['diskimg', ...words.map((w) => (w === 'DISK' ? w : quote(w)))].join(' ');
}

/** The boot state in a few human words, one fact per line (show, set-next, rollback). */
export function describeBootState(s: BootState, indent = ''): string[] {
  const out = [`${indent}default: ${s.defaultLabel ?? '(none)'}`];
  if (s.trial) out.push(`${indent}trial: ${s.trial.label}, ${s.trial.triesLeft}${s.trial.tries !== undefined ? ` of ${s.trial.tries}` : ''} tries left`);
  if (s.failed) out.push(`${indent}last failed trial: ${s.failed}`);
  if (s.bad) out.push(`${indent}marked bad: ${s.bad} (rollback will not make it the default)`);
  if (s.staged) out.push(`${indent}staged: ${s.staged} (written, never tried: rollback will not make it the default; set-next tries it)`);
  out.push(`${indent}next boot: ${s.nextBoot.label ?? '(not a slot)'} (${s.nextBoot.reason})`);
  if (!s.countingBlock && s.trial) out.push(`${indent}warning: grub.cfg has no boot counting block; the trial is ignored (set-next adds it)`);
  if (s.envError) out.push(`${indent}warning: ${s.envError}`);
  return out;
}

export const bootedLabelOption = {
  type: 'string',
  describe: 'the slot this system booted (default: psyopsos= on /proc/cmdline)',
} as const;
