import type { CommandModule } from 'yargs';
import type { DiskSummary } from '@diskimg/diskimage/internal';
import type { DiskInspection } from '@diskimg/ab/internal';
import { fmtBytes } from '@diskimg/partitions/internal';
import { describeBootState } from './boot-common.js';
import { displayText, printJson } from '../output.js';

interface ShowArgs {
  disk: string;
  json?: boolean;
}

export const showCommand: CommandModule<object, ShowArgs> = {
  command: 'show <disk>',
  describe: "show an image file or block device: GPT (header used, partitions, types, GUIDs, attributes), filesystems (type, label, UUID), each slot's version from its minisig and the OS inside it (/squashfs: os-release PRETTY_NAME, VERSION_ID, installed packages), the ESP signature, grub.cfg default, grubenv and the boot state (default, trial and tries left, last failed trial, next boot)",
  builder: (y) => y.positional('disk', { type: 'string', demandOption: true, describe: 'image file or block device' }),
  handler: async (argv) => {
    const { inspectDisk } = await import('@diskimg/ab/internal');
    const summary = await inspectDisk(argv.disk, { os: true });
    if (argv.json) {
      printJson(summary);
      return;
    }
    const s = summary;
    process.stdout.write(
      `${displayText(s.device)}: GPT, ${s.sectorSize}-byte sectors, ${s.totalSectors} sectors (${fmtBytes(s.sizeBytes)}), disk GUID ${s.diskGuid}\n` +
        `header: ${s.header} (LBA ${s.header === 'primary' ? s.primaryHeader.lba : s.backupHeader.lba}); ` +
        `primary ${s.primaryHeader.ok ? 'ok' : 'DAMAGED'}, backup at LBA ${s.backupHeader.lba} ${s.backupHeader.ok ? 'ok' : 'DAMAGED'}; ` +
        `usable LBAs ${s.firstUsableLba}..${s.lastUsableLba}\n`,
    );
    for (const w of s.warnings) process.stdout.write(`warning: ${displayText(w)}\n`);
    // Also on stderr, so a damaged disk is noticed even when stdout is piped away.
    for (const w of s.warnings) process.stderr.write(`diskimg: warning: ${displayText(w)}\n`);
    printTable(s);
    printInspection(s);
  },
};

const meta = (m: Record<string, string>) =>
  ['version', 'kernel', 'alpine', 'architecture', 'type', 'filename']
    .filter((k) => m[k] !== undefined)
    .map((k) => `${k}=${m[k]}`)
    .join(' ');

/** Filesystems, slots and ESP contents (from @diskimg/ab inspectDisk). */
export function printInspection(s: DiskInspection): void {
  const out: string[] = ['', 'filesystems:'];
  for (const p of s.partitions) {
    const f = p.filesystem;
    const parts = [`  ${p.number} ${p.name || '-'}: ${f.type}`];
    if (f.label !== undefined) parts.push(`label ${f.label}`);
    if (f.uuid !== undefined) parts.push(`uuid ${f.uuid}`);
    if (f.error) parts.push(`ERROR ${f.error}`);
    out.push(parts.join(', '));
  }
  out.push('slots:');
  for (const sl of s.slots) {
    const where = sl.partition === null ? 'missing' : `partition ${sl.partition}`;
    const signed = sl.signature ? meta(sl.signature.metadata) || sl.signature.trustedComment : 'no signature';
    const what = sl.error ? `ERROR ${sl.error}` : sl.unverified ? `UNVERIFIED (written with --no-verify; its signature file claims: ${signed})` : signed;
    out.push(`  ${sl.slot.toUpperCase()} ${sl.label} (${where}): ${what}`);
    if (sl.os) out.push(`    os: ${describeOs(sl.os)}`);
  }
  const e = s.esp;
  out.push(`ESP ${e.label} (${e.partition === null ? 'missing' : `partition ${e.partition}`}):`);
  if (e.error) out.push(`  ERROR ${e.error}`);
  else {
    out.push(
      `  signature: ${e.signature ? meta(e.signature.metadata) || e.signature.trustedComment : 'MISSING (no /psyopsESP.tar.minisig: this ESP payload was not verified when written)'}`,
    );
    if (e.grubCfg) {
      out.push(`  grub.cfg: default ${e.grubCfg.defaultLabel ?? '(none)'}${e.grubCfg.default !== null ? ` (set default=${e.grubCfg.default})` : ''}`);
      if (e.grubCfg.info) out.push(`  neuralupgrade-info: ${Object.entries(e.grubCfg.info).map(([k, v]) => `${k}=${v}`).join(' ')}`);
      for (const w of e.grubCfg.warnings) out.push(`  grub.cfg warning: ${w}`);
    } else out.push('  grub.cfg: none');
    if (e.grubenv) out.push(`  grubenv: ${Object.entries(e.grubenv).map(([k, v]) => `${k}=${v}`).join(' ') || '(empty)'}`);
    if (e.boot) out.push('  boot:', ...describeBootState(e.boot, '    '));
    for (const x of e.errors) out.push(`  ERROR ${x}`);
  }
  // Each line escaped on its own: a newline inside a label stays inside its line.
  process.stdout.write(`${out.map(displayText).join('\n')}\n`);
}

/** One line for the OS a slot's /squashfs holds. */
function describeOs(o: NonNullable<DiskInspection['slots'][number]['os']>): string {
  if (o.rootfs === 'missing') return 'no /squashfs';
  if (o.rootfs !== 'ok') return `${o.rootfs === 'unsupported' ? 'UNSUPPORTED' : 'ERROR'} ${o.error ?? ''}`.trim();
  const name = o.prettyName ?? 'no /etc/os-release';
  const ver = o.versionId !== null ? ` (VERSION_ID ${o.versionId})` : '';
  const pk = o.packages === null ? 'no apk database' : `${o.packages} packages`;
  return `${name}${ver}, ${pk}`;
}

/** The partition table as aligned columns on stdout. */
export function printTable(s: DiskSummary): void {
  const rows = [
    ['#', 'name', 'type', 'first LBA', 'last LBA', 'size', 'GUID', 'attributes'],
    ...s.partitions.map((p) => [
      String(p.number),
      displayText(p.name),
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
