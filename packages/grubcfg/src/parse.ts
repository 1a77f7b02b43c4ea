import { FormatError } from '@diskimg/partitions/internal';
import { tokenize, type Command } from './script.js';
import { findCountingBlock } from './counting.js';

/** A menu entry read back from grub.cfg. */
export interface GrubMenuEntry {
  title: string;
  /** slot: boots /kernel with psyopsos=; efi-program: chainloads a file; other: anything else (welcome, footer). */
  kind: 'slot' | 'efi-program' | 'other';
  /** The filesystem label from `search … --label L --set root`, when present. */
  searchLabel?: string;
  /** `psyopsos=` value on the kernel command line (slot entries). */
  psyopsos?: string;
  kernel?: string;
  /** Kernel command line words after the kernel path. */
  cmdline?: string[];
  initrd?: string;
  chainloader?: string;
}

/** grub.cfg as `parseGrubCfg` understands it: the default, menu entries with their slot labels, and the info line. */
export interface ParsedGrubCfg {
  /** Fields of the `# neuralupgrade-info:` line (as upstream reads them), when present. */
  info?: {
    fields: Record<string, string>;
    last_updated?: string;
    default_boot_label?: string;
    extra_programs: string[];
  };
  /** The value of the last top-level `set default=`. */
  default?: string;
  timeout?: number;
  entries: GrubMenuEntry[];
  /** The entries that boot an OS slot, in menu order. */
  slots: GrubMenuEntry[];
  /**
   * The slot label GRUB boots by default: the slot `set default` selects (by title or index),
   * else the info line's default_boot_label.
   */
  defaultLabel?: string;
  /** Inconsistencies worth showing (e.g. the info line and `set default` disagree). */
  warnings: string[];
  /** True when the file has the boot counting block (between its BEGIN/END marker comments). */
  countingBlock: boolean;
}

const INFO_PREFIX = '# neuralupgrade-info: ';

/** Parse the neuralupgrade-info line's space-separated key=value fields (a value keeps any further '='). */
export function parseInfoLine(line: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const tok of line.slice(INFO_PREFIX.length).trim().split(/\s+/)) {
    const eq = tok.indexOf('=');
    if (eq > 0) fields[tok.slice(0, eq)] = tok.slice(eq + 1);
  }
  return fields;
}

/**
 * Parse a grub.cfg written by us or by upstream's neuralupgrade. `name` names
 * the file in errors. Throws FormatError when braces do not balance or when
 * nothing in it looks like a psyopsOS grub.cfg.
 */
export function parseGrubCfg(text: string, name = 'grub.cfg'): ParsedGrubCfg {
  const result: ParsedGrubCfg = { entries: [], slots: [], countingBlock: findCountingBlock(text) !== undefined, warnings: [] };
  for (const line of text.split('\n')) {
    if (line.startsWith(INFO_PREFIX)) {
      const fields = parseInfoLine(line.replace(/\r$/, ''));
      result.info = {
        fields,
        last_updated: fields.last_updated,
        default_boot_label: fields.default_boot_label,
        extra_programs: fields.extra_programs ? fields.extra_programs.split(',').filter((p) => p !== '') : [],
      };
      break;
    }
  }

  const cmds = tokenize(text);
  let depth = 0;
  let current: { entry: GrubMenuEntry; depth: number } | undefined;
  for (const cmd of cmds) {
    const w = cmd.words.map((x) => x.value);
    if (w[0] === '}') {
      if (depth === 0) throw new FormatError(name, `line ${cmd.line}: '}' without an open block`);
      if (current && current.depth === depth) {
        finishEntry(current.entry);
        result.entries.push(current.entry);
        current = undefined;
      }
      depth--;
      continue;
    }
    if (w[w.length - 1] === '{') {
      if ((w[0] === 'menuentry' || w[0] === 'submenu') && w.length >= 3 && !current) {
        current = { entry: { title: w[1]!, kind: 'other' }, depth: depth + 1 };
      }
      depth++;
      continue;
    }
    if (current) {
      readEntryCommand(current.entry, cmd);
      continue;
    }
    if (depth === 0) readTopCommand(result, cmd);
  }
  if (depth !== 0) throw new FormatError(name, `a '{' block is not closed at the end of the file`);

  result.slots = result.entries.filter((e) => e.kind === 'slot');
  if (!result.info && result.slots.length === 0) {
    throw new FormatError(name, 'no neuralupgrade-info line and no psyopsOS menu entry: not a psyopsOS grub.cfg');
  }
  // What GRUB boots is decided by `set default` (a title or a menu index); the info line is
  // upstream's record of it. When they disagree GRUB wins, and we say so.
  const byInfo = result.info?.default_boot_label;
  let bySet: string | undefined;
  if (result.default !== undefined) {
    const d = result.default;
    const entry = /^\d+$/.test(d) ? result.entries[Number(d)] : result.entries.find((e) => e.title === d);
    if (entry?.kind === 'slot') bySet = entry.psyopsos;
  }
  result.defaultLabel = bySet ?? byInfo;
  if (bySet && byInfo && bySet !== byInfo) {
    result.warnings.push(`${name}: set default selects ${bySet} but the neuralupgrade-info line says ${byInfo}; GRUB boots ${bySet}`);
  }
  return result;
}

function readTopCommand(result: ParsedGrubCfg, cmd: Command): void {
  const w = cmd.words;
  if (w[0]?.value !== 'set' || w.length !== 2) return;
  const v = w[1]!.value;
  const eq = v.indexOf('=');
  if (eq < 0) return;
  const key = v.slice(0, eq);
  const val = v.slice(eq + 1);
  if (key === 'default' && !w[1]!.expands) result.default = val;
  if (key === 'timeout' && /^\d+$/.test(val)) result.timeout = Number(val);
}

function readEntryCommand(e: GrubMenuEntry, cmd: Command): void {
  const w = cmd.words.map((x) => x.value);
  switch (w[0]) {
    case 'search': {
      const i = w.indexOf('--label');
      const j = w.indexOf('-l');
      const k = i >= 0 ? i : j;
      if (k >= 0 && w[k + 1] !== undefined) e.searchLabel = w[k + 1];
      break;
    }
    case 'linux':
    case 'linuxefi':
      e.kernel = w[1];
      e.cmdline = w.slice(2);
      for (const a of e.cmdline) if (a.startsWith('psyopsos=')) e.psyopsos = a.slice('psyopsos='.length);
      break;
    case 'initrd':
    case 'initrdefi':
      e.initrd = w.slice(1).join(' ');
      break;
    case 'chainloader':
      e.chainloader = w[w.length - 1];
      break;
  }
}

function finishEntry(e: GrubMenuEntry): void {
  if (e.kernel !== undefined && e.psyopsos !== undefined) e.kind = 'slot';
  else if (e.chainloader !== undefined) e.kind = 'efi-program';
}
