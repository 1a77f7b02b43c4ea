import { FormatError, InputError } from '@diskimg/partitions/internal';
import { parseGrubCfg } from './parse.js';
import { quoteString } from './script.js';
import { findCountingBlock, renderCountingBlock } from './counting.js';

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
  // The counting block's own `set default="${psyopsos_entry}"` is not the confirmed default.
  const block = findCountingBlock(text);
  const [blockFirst, blockLast] = block ? lineRange(text, block) : [-1, -1];
  let depth = 0;
  let lastSet = -1;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i].trim();
    // Only a top-level `set default` decides the default (one inside a menuentry runs too late).
    if (depth === 0 && /^set\s+default=/.test(l) && (i < blockFirst || i > blockLast)) lastSet = i;
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

/** First and last line index (0-based) of a character range. */
function lineRange(text: string, r: { start: number; end: number }): [number, number] {
  const first = text.slice(0, r.start).split('\n').length - 1;
  return [first, first + text.slice(r.start, r.end).replace(/\n$/, '').split('\n').length - 1];
}

/**
 * `text` with the current counting block: an existing block (between the
 * markers) is replaced, else the block goes right before the first
 * top-level menu entry. Every other byte stays. Idempotent.
 */
export function withCountingBlock(text: string, opts: { espLabel?: string; name?: string } = {}): string {
  const name = opts.name ?? 'grub.cfg';
  const cfg = parseGrubCfg(text, name);
  const slots = cfg.slots.map((s) => ({ label: s.psyopsos ?? s.searchLabel ?? s.title, title: s.title, index: cfg.entries.indexOf(s) }));
  if (slots.length === 0) throw new FormatError(name, 'has no menu entry that boots a slot: nothing to count tries for');
  const block = renderCountingBlock({ slots, espLabel: opts.espLabel });
  const found = findCountingBlock(text);
  if (found) return text.slice(0, found.start) + block + text.slice(found.end);
  // The block reads `default`, so the last top-level `set default=` must come before it.
  const lines = text.split('\n');
  let depth = 0;
  let lastDefault = -1;
  let firstEntry = -1;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!.trim();
    if (depth === 0 && /^set\s+default=/.test(l)) lastDefault = i;
    if (depth === 0 && firstEntry < 0 && /^(menuentry|submenu)\s/.test(l)) firstEntry = i;
    depth += (l.match(/\{/g)?.length ?? 0) - (l.match(/\}/g)?.length ?? 0);
  }
  if (firstEntry < 0) throw new FormatError(name, 'has no top-level menuentry to put the boot counting block before');
  if (lastDefault < 0 || lastDefault > firstEntry) {
    throw new FormatError(name, 'needs its "set default=" line before the first menuentry to add boot counting');
  }
  lines.splice(firstEntry, 0, ...block.split('\n'));
  return lines.join('\n');
}
