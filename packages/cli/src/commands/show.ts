import type { CommandModule } from 'yargs';
import { openDisk, summarizeDisk, type DiskSummary } from '@diskimg/diskimage';
import { fmtBytes } from '@diskimg/partitions';

interface ShowArgs {
  disk: string;
  json?: boolean;
}

export const showCommand: CommandModule<object, ShowArgs> = {
  command: 'show <disk>',
  describe: 'print the partition table of an image file or block device (GPT header used, partitions, types, GUIDs, attributes)',
  builder: (y) => y.positional('disk', { type: 'string', demandOption: true, describe: 'image file or block device' }),
  handler: async (argv) => {
    const disk = await openDisk(argv.disk);
    let summary: DiskSummary;
    try {
      summary = summarizeDisk(disk);
    } finally {
      await disk.close();
    }
    if (argv.json) {
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      return;
    }
    const s = summary;
    process.stdout.write(
      `${s.device}: GPT, ${s.sectorSize}-byte sectors, ${s.totalSectors} sectors (${fmtBytes(s.sizeBytes)}), disk GUID ${s.diskGuid}\n` +
        `header: ${s.header} (LBA ${s.header === 'primary' ? s.primaryHeader.lba : s.backupHeader.lba}); ` +
        `primary ${s.primaryHeader.ok ? 'ok' : 'DAMAGED'}, backup at LBA ${s.backupHeader.lba} ${s.backupHeader.ok ? 'ok' : 'DAMAGED'}; ` +
        `usable LBAs ${s.firstUsableLba}..${s.lastUsableLba}\n`,
    );
    for (const w of s.warnings) process.stdout.write(`warning: ${w}\n`);
    // Also on stderr, so a damaged disk is noticed even when stdout is piped away.
    for (const w of s.warnings) process.stderr.write(`diskimg: warning: ${w}\n`);
    printTable(s);
  },
};

/** The partition table as aligned columns on stdout. */
export function printTable(s: DiskSummary): void {
  const rows = [
    ['#', 'name', 'type', 'first LBA', 'last LBA', 'size', 'GUID', 'attributes'],
    ...s.partitions.map((p) => [
      String(p.number),
      p.name,
      `${p.typeAlias ?? p.typeName ?? '?'} ${p.typeGuid}`,
      String(p.firstLba),
      String(p.lastLba),
      fmtBytes(p.sizeBytes),
      p.guid,
      p.attributes.raw === '0x0000000000000000' ? '-' : `${p.attributes.raw} ${p.attributes.flags.join(' ')}`.trim(),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(`${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`);
}
