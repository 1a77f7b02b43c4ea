import type { GrubMenuEntry, ParsedGrubCfg } from './parse.js';

/**
 * A model of which menu entry GRUB boots without a keypress, for `show`
 * (next-boot slot) and `--slot inactive`. It follows GRUB's rules for what we
 * render: `default` is a title or a 0-based index; with the boot-once block a
 * non-empty grubenv `next_entry` replaces it for one boot; a default that
 * names no entry falls back to entry 0. The QEMU test (boot-once.test.ts)
 * checks the model against the real GRUB.
 */
export interface BootDecision {
  /** The slot label (psyopsos=) that boots, or undefined when the chosen entry is not a slot. */
  label?: string;
  entry?: GrubMenuEntry;
  /** next_entry: a one-shot choice GRUB clears as it boots; default: the configured default. */
  reason: 'next_entry' | 'default';
}

function select(cfg: ParsedGrubCfg, ref: string | undefined): GrubMenuEntry | undefined {
  if (ref === undefined || ref === '') return cfg.entries[0];
  const byIndex = /^\d+$/.test(ref) ? cfg.entries[Number(ref)] : undefined;
  return byIndex ?? cfg.entries.find((e) => e.title === ref) ?? cfg.entries[0];
}

export function predictBoot(cfg: ParsedGrubCfg, env?: ReadonlyMap<string, string>): BootDecision {
  const next = env?.get('next_entry');
  const oneShot = cfg.bootOnce && next !== undefined && next !== '';
  const entry = select(cfg, oneShot ? next : cfg.default);
  return {
    label: entry?.kind === 'slot' ? entry.psyopsos : undefined,
    entry,
    reason: oneShot ? 'next_entry' : 'default',
  };
}
