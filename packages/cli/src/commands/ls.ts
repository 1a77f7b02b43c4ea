import type { CommandModule } from 'yargs';
import { displayText, printJson } from '../output.js';
import type { FsEntry } from '@diskimg/diskimage/internal';

interface LsArgs {
  disk: string;
  spec: string;
  json?: boolean;
  xattrs?: boolean;
  long?: boolean;
  dereference?: boolean;
}

const TYPE_CHAR: Record<FsEntry['type'], string> = {
  file: '-', directory: 'd', symlink: 'l', char: 'c', block: 'b', fifo: 'p', socket: 's', unknown: '?',
};

/** "drwxr-xr-x" from st_mode, with setuid/setgid/sticky as ls shows them. */
export function modeString(type: FsEntry['type'], mode: number): string {
  const rwx = (bits: number, special: boolean, ch: string) =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  return (
    TYPE_CHAR[type] +
    rwx((mode >> 6) & 7, (mode & 0o4000) !== 0, 's') +
    rwx((mode >> 3) & 7, (mode & 0o2000) !== 0, 's') +
    rwx(mode & 7, (mode & 0o1000) !== 0, 't')
  );
}

/** getfattr's rendering: "text" when printable, else 0s + base64. */
function xattrText(v: Buffer): string {
  const t = v.toString('utf8').replace(/\0$/, '');
  return /^[\x20-\x7e]*$/.test(t) && !t.includes('"') && Buffer.from(t).length >= v.length - 1 ? `"${t}"` : `0s${v.toString('base64')}`;
}

const fmtTime = (s: number) => new Date(s * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');

export const lsCommand: CommandModule<object, LsArgs> = {
  command: 'ls <disk> <spec>',
  describe:
    'list a directory (or one file) inside a partition, without mounting: LABEL:/path, LABEL a filesystem label or GPT name ' +
    '(exact, else ignoring case when that names one partition) or a partition number (3:/etc); ' +
    'IMAGE!/path looks inside a SquashFS image file (psyopsOS-A:/squashfs!/etc)',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', demandOption: true, describe: 'image file or block device' })
      .positional('spec', { type: 'string', demandOption: true, describe: 'LABEL:/path, e.g. psyopsOS-A:/, PSYOPSOSEFI:/grub or psyopsOS-A:/squashfs!/etc' })
      .option('xattrs', { type: 'boolean', describe: 'also show extended attributes and POSIX ACLs (ext4, SquashFS), as getfattr -d does' })
      .option('long', { alias: 'l', type: 'boolean', describe: 'long listing: mode, links, owner, group, size, time, name' })
      .option('dereference', { alias: 'L', type: 'boolean', describe: 'a symbolic link given as the path is followed (default: listed as the link, as ls -d)' }),
  handler: async (argv) => {
    const { withFilesystem } = await import('@diskimg/diskimage/internal');
    const { label, path, isDir, entries } = await withFilesystem(argv.disk, argv.spec, async (fs, inner, label, shown) => {
      const path = inner;
      const opts = { xattrs: !!argv.xattrs };
      // The path itself, as ls does: a symlink is the link, unless -L (or it names a directory with a trailing "/").
      const follow = argv.dereference || (argv.spec.endsWith('/') && path !== '/');
      const st = await (follow ? fs.stat(path, opts) : fs.lstat(path, opts));
      const isDir = st.type === 'directory';
      const entries = isDir ? (await fs.readdir(path, opts)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) : [st];
      return { label, path: shown, isDir, entries };
    });
    if (argv.json) {
      printJson({ disk: argv.disk, label, path, directory: isDir, entries });
      return;
    }
    const width = (f: (e: FsEntry) => string | number) => Math.max(1, ...entries.map((e) => String(f(e)).length));
    // Devices show "major, minor" where files show their size, as ls -l does.
    const sizeOf = (e: FsEntry) => (e.rdev ? `${e.rdev.major}, ${String(e.rdev.minor).padStart(3)}` : String(e.size));
    const [w, wl, wu, wg] = [width(sizeOf), width((e) => e.links), width((e) => e.uid), width((e) => e.gid)];
    const owner = (e: FsEntry) => (argv.long ? ` ${String(e.links).padStart(wl)} ${String(e.uid).padEnd(wu)} ${String(e.gid).padEnd(wg)}` : '');
    const lines = entries.map(
      (e) =>
        `${modeString(e.type, e.mode)}${owner(e)} ${sizeOf(e).padStart(w)} ${fmtTime(e.mtime)} ${displayText(e.name)}${e.target !== undefined ? ` -> ${displayText(e.target)}` : ''}` +
        Object.entries(e.xattrs ?? {})
          .map(([k, v]) => `\n    ${displayText(k)}=${xattrText(Buffer.from(v, 'base64'))}`)
          .join(''),
    );
    if (lines.length) process.stdout.write(`${lines.join('\n')}\n`);
  },
};
