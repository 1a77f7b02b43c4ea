import { InputError } from '@diskimg/partitions/internal';
import { DEFAULT_ESP_LABEL, GRUBENV_PATH } from './render.js';
import { quoteString } from './script.js';

/**
 * Boot counting (docs/boot-counting.md): grub.cfg's `set default` is the last
 * confirmed slot; the ESP's grubenv holds a trial. This module renders the
 * GRUB script block that runs the trial and puts it into a grub.cfg.
 */

/** grubenv variables. GRUB reads TRIAL and TRIES and writes TRIES and FAILED; ARMED is ours only. */
export const ENV_TRIAL = 'psyopsos_trial';
export const ENV_TRIES = 'psyopsos_tries';
export const ENV_FAILED = 'psyopsos_failed';
/** The number of tries the trial was armed with (for `status`: "TRIAL 2/3"). GRUB never loads it. */
export const ENV_ARMED = 'psyopsos_armed';
/**
 * A slot known not to be proven (its trial ended without a confirm, or its fallback was
 * acknowledged): rollback never makes it the default. Ours only; GRUB never loads it.
 */
export const ENV_BAD = 'psyopsos_bad';
/**
 * A slot `update` wrote (or began to write) and nobody has tried yet: not proven, so rollback
 * never makes it the default, but not failed either (check/update offer it again). Ours only.
 */
export const ENV_STAGED = 'psyopsos_staged';
export const COUNTING_VARS = [ENV_TRIAL, ENV_TRIES, ENV_ARMED, ENV_FAILED, ENV_BAD, ENV_STAGED] as const;

/** GRUB has no arithmetic: the block counts down with an if/elif ladder, so at most 9 tries. */
export const MAX_TRIES = 9;
/** Boot tries a trial slot gets unless told otherwise. */
export const DEFAULT_TRIES = 3;

export const COUNTING_BEGIN = '# BEGIN psyopsOS boot counting';
export const COUNTING_END = '# END psyopsOS boot counting';

/** Options of `renderCountingBlock`. */
export interface CountingBlockOptions {
  /**
   * The slots the block can try: filesystem label (the trial's name), menu entry title (what
   * `default` takes) and 0-based menu index (what GRUB 2.06's `fallback` takes: it reads no titles).
   */
  slots: ReadonlyArray<{ label: string; title: string; index: number }>;
  /** Label of the ESP holding /grub/grubenv. */
  espLabel?: string;
}

/**
 * The counting block. It must come after `set default=` (it reads the
 * confirmed default from it) and before the menu entries. A missing, empty
 * or damaged grubenv makes load_env fail or find no trial: the default boots.
 */
export function renderCountingBlock(opts: CountingBlockOptions): string {
  const esp = opts.espLabel ?? DEFAULT_ESP_LABEL;
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(esp)) throw new InputError(`boot counting: ESP label ${JSON.stringify(esp)} must be letters, digits and . _ + -`);
  const env = `"(\${psyopsos_esp})${GRUBENV_PATH}"`;
  const v = (name: string) => `"\${${name}}"`;
  const L: string[] = [
    COUNTING_BEGIN,
    '# Written by diskimg (docs/boot-counting.md). `set default` above is the last confirmed',
    `# slot. While the ESP's grubenv names a trial slot (${ENV_TRIAL}), each boot first saves`,
    `# ${ENV_TRIES} one lower, then boots the trial with the default as fallback; with no tries`,
    `# left it records ${ENV_FAILED} and ends the trial, and the default boots. A missing or`,
    '# damaged grubenv, or a save_env that fails, also boots the default.',
    `if search --no-floppy --label ${esp} --set psyopsos_esp; then`,
    `    if load_env --file ${env} --skip-sig ${ENV_TRIAL} ${ENV_TRIES}; then`,
    `        if [ -n ${v(ENV_TRIAL)} ]; then`,
    '            set psyopsos_entry=',
  ];
  for (const s of opts.slots) {
    L.push(`            if [ ${v(ENV_TRIAL)} = ${quoteString(s.label)} ]; then set psyopsos_entry=${quoteString(s.title)}; fi`);
  }
  L.push('            set psyopsos_next=');
  for (let n = MAX_TRIES; n >= 1; n--) {
    L.push(`            ${n === MAX_TRIES ? 'if' : 'elif'} [ ${v(ENV_TRIES)} = ${n} ]; then set psyopsos_next=${n - 1}`);
  }
  L.push(
    '            fi',
    '            if [ -z "${psyopsos_entry}" ]; then set psyopsos_next=; fi',
    '            if [ -n "${psyopsos_next}" ]; then',
    `                set ${ENV_TRIES}="\${psyopsos_next}"`,
    '                # The try is counted on disk before the trial boots, or it does not boot.',
    `                if save_env --file ${env} ${ENV_TRIES}; then`,
    '                    set fallback="${default}"',
    ...opts.slots.map((s) => `                    if [ "\${default}" = ${quoteString(s.title)} ]; then set fallback=${s.index}; fi`),
    '                    set default="${psyopsos_entry}"',
    '                fi',
    '            else',
    `                set ${ENV_FAILED}=${v(ENV_TRIAL)}`,
    `                unset ${ENV_TRIAL}`,
    `                unset ${ENV_TRIES}`,
    `                if save_env --file ${env} ${ENV_FAILED} ${ENV_TRIAL} ${ENV_TRIES}; then true; fi`,
    '            fi',
    '        fi',
    '    fi',
    'fi',
    COUNTING_END,
  );
  return L.join('\n') + '\n';
}

/** Where the block sits in `text`, by its marker lines (end: index after the END line's newline). */
export function findCountingBlock(text: string): { start: number; end: number } | undefined {
  const b = text.search(/^# BEGIN psyopsOS boot counting$/m);
  if (b < 0) return undefined;
  const e = text.slice(b).search(/^# END psyopsOS boot counting$/m);
  if (e < 0) return undefined;
  const endLine = b + e + COUNTING_END.length;
  return { start: b, end: text[endLine] === '\n' ? endLine + 1 : endLine };
}
