import type { CommandModule } from 'yargs';
import type { ApkPackage } from '@diskimg/ab/internal';
import { InputError, PSYOPS_NAMES, UsageError } from '@diskimg/partitions/internal';
import { printJson, displayText } from '../output.js';

interface PackagesArgs {
  disk: string;
  slot?: string;
  json?: boolean;
  diff?: boolean;
}

export const packagesCommand: CommandModule<object, PackagesArgs> = {
  command: 'packages <disk> [slot]',
  describe: "the Alpine packages installed in a slot's root filesystem (/squashfs: /lib/apk/db/installed), with versions; --diff: what changes from slot A to slot B",
  builder: (y) =>
    y
      .positional('disk', { type: 'string', demandOption: true, describe: 'image file or block device' })
      .positional('slot', { type: 'string', describe: 'a or b (default: both)' })
      .option('diff', { type: 'boolean', describe: 'compare the two slots: added, removed and changed packages (A → B)' }),
  handler: async (argv) => {
    const slot = argv.slot?.toLowerCase();
    if (slot !== undefined && slot !== 'a' && slot !== 'b') throw new UsageError(`slot "${argv.slot}": expected a or b`);
    if (argv.diff && slot !== undefined) throw new UsageError('--diff compares both slots: give no slot');
    const slots: ('a' | 'b')[] = slot ? [slot] : ['a', 'b'];
    const { findFilesystemPartition, openDisk, openFilesystem } = await import('@diskimg/diskimage/internal');
    const { diffPackages, installedPackages, openSlotRoot, SLOT_ROOT_IMAGE, APK_INSTALLED } = await import('@diskimg/ab/internal');
    const disk = await openDisk(argv.disk);
    const lists: Partial<Record<'a' | 'b', ApkPackage[]>> = {};
    try {
      for (const s of slots) {
        const label = PSYOPS_NAMES[s];
        const fs = await openFilesystem(await findFilesystemPartition(disk, label));
        const root = await openSlotRoot(fs);
        if (!root) throw new InputError(`${label}:${SLOT_ROOT_IMAGE}: no root filesystem image in slot ${s.toUpperCase()} (write an OS tarball with "diskimg update")`);
        const pk = await installedPackages(root);
        if (!pk) throw new InputError(`${label}:${SLOT_ROOT_IMAGE}!${APK_INSTALLED}: no apk database (not an Alpine root filesystem)`);
        lists[s] = pk;
      }
    } finally {
      await disk.close();
    }
    if (argv.diff) {
      const d = diffPackages(lists.a!, lists.b!);
      if (argv.json) {
        printJson({ disk: argv.disk, from: PSYOPS_NAMES.a, to: PSYOPS_NAMES.b, ...d });
        return;
      }
      const lines = [
        ...d.removed.map((p) => `- ${p.name} ${p.version}`),
        ...d.added.map((p) => `+ ${p.name} ${p.version}`),
        ...d.changed.map((c) => `~ ${c.name} ${c.from} -> ${c.to}`),
      ].sort((x, y) => (x.slice(2) < y.slice(2) ? -1 : x.slice(2) > y.slice(2) ? 1 : 0));
      process.stdout.write(lines.length ? `${lines.map(displayText).join('\n')}\n` : '');
      return;
    }
    if (argv.json) {
      printJson({ disk: argv.disk, slots: Object.fromEntries(slots.map((s) => [s, { label: PSYOPS_NAMES[s], packages: lists[s] }])) });
      return;
    }
    const out: string[] = [];
    for (const s of slots) {
      if (slots.length > 1) out.push(`${PSYOPS_NAMES[s]}:`);
      for (const p of lists[s]!) out.push(`${slots.length > 1 ? '  ' : ''}${p.name} ${p.version}`);
    }
    process.stdout.write(out.length ? `${out.map(displayText).join('\n')}\n` : '');
  },
};
