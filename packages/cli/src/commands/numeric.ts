import { UsageError } from '@diskimg/partitions/internal';
import { MAX_TRIES } from '@diskimg/grubcfg/internal';

/**
 * `--tries N` (update, set-next, push): a string, parsed by parseTries first thing in the
 * handler, before anything is read or written, and named as typed (`--tries abc`, not NaN).
 */
export function triesOption(describe: string) {
  return { type: 'string', describe } as const;
}

/** A whole number 0..MAX_TRIES (9: GRUB counts with an if/elif ladder), or a UsageError; undefined: the library default. */
export function parseTries(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const s = String(v);
  const n = /^\d{1,2}$/.test(s) ? Number(s) : NaN;
  if (!(n >= 0 && n <= MAX_TRIES)) {
    throw new UsageError(`--tries ${JSON.stringify(s)}: a whole number from 0 (switch the default, no trial) to ${MAX_TRIES} (GRUB counts with an if/elif ladder)`);
  }
  return n;
}

/**
 * A whole-number option given as a string (`--keep`): a UsageError naming what was typed
 * (yargs' `type: 'number'` turns `abc` into NaN, and the error would then say NaN).
 */
export function parseWhole(option: string, v: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  const n = /^\d{1,15}$/.test(String(v)) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`${option} ${JSON.stringify(String(v))}: a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ' up'}`);
  return n;
}
