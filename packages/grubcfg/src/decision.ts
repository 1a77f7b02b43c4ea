import type { GrubMenuEntry, ParsedGrubCfg } from './parse.js';
import { ENV_FAILED, ENV_TRIAL, ENV_TRIES, MAX_TRIES } from './counting.js';
import { loadEnv, saveEnv } from './envblk.js';

/**
 * A model of what GRUB does at boot with a grub.cfg we wrote (or upstream's)
 * and the ESP's grubenv: which menu entry boots without a keypress, why, and
 * the grubenv bytes GRUB's save_env writes back. Pure. It follows GRUB 2.06's
 * rules: `default` is a title or a 0-based index and a default that names no
 * entry means entry 0; load_env/save_env as in envblk.ts; and the counting
 * block's script (counting.ts) step by step. The QEMU test
 * (boot-counting.test.ts) checks it against the real GRUB, state by state.
 */

export type BootReason =
  /** The confirmed default (grub.cfg `set default`): no trial, no counting block, or no usable grubenv. */
  | 'default'
  /** The trial slot; GRUB counted the try in grubenv first. */
  | 'trial'
  /** The trial has no tries left (or names no slot): GRUB records psyopsos_failed, the default boots. */
  | 'fell-back';

/** What GRUB will boot next (`predictBoot`) and why. */
export interface BootDecision {
  /** The slot label (psyopsos=) that boots, or undefined when the chosen entry is not a slot. */
  label?: string;
  entry?: GrubMenuEntry;
  reason: BootReason;
  /** On a trial boot: the slot GRUB boots instead when the trial's entry fails to load (`fallback`). */
  fallbackLabel?: string;
  /** The trial slot GRUB gave up on this boot (reason fell-back). */
  failed?: string;
  /**
   * The whole grubenv block GRUB writes back this boot; undefined when it
   * writes nothing (no counting block, no trial, or save_env failed).
   */
  writeBack?: Buffer;
  /** Why the grubenv was not used, when it was not. */
  envNote?: string;
}

function select(cfg: ParsedGrubCfg, ref: string | undefined): GrubMenuEntry | undefined {
  if (ref === undefined || ref === '') return cfg.entries[0];
  const byIndex = /^\d+$/.test(ref) ? cfg.entries[Number(ref)] : undefined;
  return byIndex ?? cfg.entries.find((e) => e.title === ref) ?? cfg.entries[0];
}

/** The label the counting block matches psyopsos_trial against (as withCountingBlock renders it). */
export function slotEntryLabel(e: GrubMenuEntry): string {
  return e.psyopsos ?? e.searchLabel ?? e.title;
}

const slotOf = (e: GrubMenuEntry | undefined) => (e?.kind === 'slot' ? e.psyopsos : undefined);

/**
 * What GRUB boots next. `env` is the raw /grub/grubenv file (undefined: no
 * such file). The block's steps: load_env of trial and tries (failure: the
 * default); no trial: the default; a known slot with tries 1..9: save tries-1,
 * and only when that save succeeded boot the trial; else record the failure
 * (save failed=trial, delete trial and tries) and boot the default.
 */
export function predictBoot(cfg: ParsedGrubCfg, env?: Uint8Array): BootDecision {
  const def = select(cfg, cfg.default);
  const base: BootDecision = { label: slotOf(def), entry: def, reason: 'default' };
  if (!cfg.countingBlock) return base;
  const vars = loadEnv(env, [ENV_TRIAL, ENV_TRIES]);
  if (!vars) return { ...base, envNote: env === undefined ? 'no grubenv file' : 'not a GRUB environment block (load_env fails)' };
  const trial = vars.get(ENV_TRIAL);
  if (trial === undefined || trial === '') return base;
  // Several entries with one label: the block's `if`s run in order, the last match wins.
  const entry = cfg.slots.filter((s) => slotEntryLabel(s) === trial).pop();
  const tries = vars.get(ENV_TRIES);
  const n = tries !== undefined && /^[1-9]$/.test(tries) && Number(tries) <= MAX_TRIES ? Number(tries) : 0;
  if (entry && n > 0) {
    const writeBack = saveEnv(env, [[ENV_TRIES, String(n - 1)]]);
    if (!writeBack) return { ...base, envNote: 'save_env fails (damaged or full block): the trial does not boot' };
    const chosen = select(cfg, entry.title);
    return { label: slotOf(chosen), entry: chosen, reason: 'trial', fallbackLabel: base.label, writeBack };
  }
  const writeBack = saveEnv(env, [
    [ENV_FAILED, trial],
    [ENV_TRIAL, undefined],
    [ENV_TRIES, undefined],
  ]);
  return { ...base, reason: 'fell-back', failed: trial, writeBack, envNote: writeBack ? undefined : 'save_env fails (damaged or full block)' };
}
