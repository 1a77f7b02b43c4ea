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
