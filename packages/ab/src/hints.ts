/**
 * The commands our messages suggest (issue 27.6): each one complete, so that
 * pasting it works: the disk when the user named one, the repository with its
 * --pubkey (or --no-verify), the booted slot when it was not read from
 * /proc/cmdline. Pure string building.
 */

/** A word for a POSIX shell: as is when plainly safe, else single-quoted. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `diskimg WORDS…`, shell-quoted; undefined, null and false words are left out. */
export function diskimgCommand(...words: (string | undefined | null | false)[]): string {
  return ['diskimg', ...words.filter((w): w is string => typeof w === 'string').map(shellWord)].join(' ');
}

/** How a repository is named to the node's commands: the repository and its key (or --no-verify). */
export interface RepoArgs {
  repo: string;
  pubkey?: string;
  noVerify?: boolean;
  fwtype?: string;
}

/** `diskimg update-esp [DISK] --repo R (--pubkey K | --no-verify) [--fwtype T]`. */
export function updateEspCommand(disk: string | null | undefined, r: RepoArgs): string {
  return diskimgCommand(
    'update-esp',
    disk,
    '--repo',
    r.repo,
    ...(r.noVerify || !r.pubkey ? ['--no-verify'] : ['--pubkey', r.pubkey]),
    ...(r.fwtype ? ['--fwtype', r.fwtype] : []),
  );
}

/**
 * `diskimg mark-good [DISK] [--booted-label L]`: the label is given unless the
 * booted slot comes from /proc/cmdline (a running node finds it there itself).
 */
export function markGoodCommand(disk: string | null | undefined, booted: { label: string | null; source: string }): string {
  return diskimgCommand('mark-good', disk, ...(booted.label && booted.source !== 'cmdline' ? ['--booted-label', booted.label] : []));
}

/** The disk to name in a suggested command: `hintDisk` when given (null: none, found by label), else the disk itself when a path. */
export function hintDiskOf(o: { disk: unknown; hintDisk?: string | null }): string | null {
  if (o.hintDisk !== undefined) return o.hintDisk;
  return typeof o.disk === 'string' ? o.disk : null;
}
