import { FormatError, InputError } from '@diskimg/partitions';
import { parseGrubCfg } from './parse.js';
import { quoteString } from './script.js';

/**
 * Change the default slot of an existing grub.cfg (ours or upstream's) by
 * editing only the `set default=` line and the info line's
 * `default_boot_label=`; every other byte stays as it was, so a file written
 * by upstream's neuralupgrade keeps its own layout and settings.
 */
export function setGrubCfgDefault(text: string, label: string, name = 'grub.cfg'): string {
  const cfg = parseGrubCfg(text, name);
  // GRUB's `set default` names a menu entry by title: use the title of the entry that boots the slot.
  const entry = cfg.slots.find((s) => (s.psyopsos ?? s.searchLabel) === label);
  if (!entry) {
    const known = cfg.slots.map((s) => s.psyopsos ?? s.searchLabel).join(', ') || 'none';
    throw new InputError(`${name}: no menu entry boots slot ${label} (slots: ${known})`);
  }
  const lines = text.split('\n');
  let depth = 0;
  let lastSet = -1;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i].trim();
    // Only a top-level `set default` decides the default (one inside a menuentry runs too late).
    if (depth === 0 && /^set\s+default=/.test(l)) lastSet = i;
    depth += (l.match(/\{/g)?.length ?? 0) - (l.match(/\}/g)?.length ?? 0);
  }
  if (lastSet < 0) throw new FormatError(name, 'has no top-level "set default=" line to change');
  const indent = lines[lastSet].match(/^\s*/)![0];
  lines[lastSet] = `${indent}set default=${quoteString(entry.title)}`;
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith('# neuralupgrade-info: ')) {
      lines[i] = lines[i].replace(/default_boot_label=\S*/, `default_boot_label=${label}`);
    }
  }
  return lines.join('\n');
}
