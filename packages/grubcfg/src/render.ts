import { ESP_PATHS, InputError, PSYOPS_NAMES } from '@diskimg/partitions/internal';
import { quoteString, quoteWord } from './script.js';

/**
 * grub.cfg in psyopsOS's layout. The text follows upstream's neuralupgrade
 * template (psyopsOS/neuralupgrade/.../grubuefi/grub_cfg.py) line for line, so
 * that with the same inputs our output equals upstream's byte for byte and
 * upstream's tool can read a disk we wrote (it reads the `neuralupgrade-info`
 * comment line).
 */

/** Upstream's base kernel parameters: early printk and console on screen and serial. */
export const DEFAULT_KERNEL_PARAMS = 'earlyprintk=dbgp console=tty0 console=ttyS0,115200';
export const DEFAULT_TIMEOUT = 5;
export const DEFAULT_ESP_LABEL = PSYOPS_NAMES.esp;
/** Where the ESP holds grubenv (DESIGN.md §2). */
export const GRUBENV_PATH = ESP_PATHS.grubenv;

/** Options of `renderGrubCfg`: default slot, kernel parameters, timeout, ESP label and extra programs. */
export interface RenderGrubCfgOptions {
  /** Filesystem labels of the OS slots, in menu order (upstream: A then B). */
  slots: readonly string[];
  /** Label of the slot booted by default; must be one of `slots`. */
  defaultLabel: string;
  /** Seconds since the epoch (callers pass SOURCE_DATE_EPOCH / buildTime()); written as UTC YYYYMMDD-HHMMSS. */
  lastUpdated: number;
  /** Menu timeout in seconds (upstream: 5). */
  timeout?: number;
  /** Kernel parameters after `ro psyopsos=<label>`; replaces DEFAULT_KERNEL_PARAMS. */
  kernelParams?: string;
  /**
   * Extra EFI programs on the ESP, path → menu title, in menu order: the
   * `extra_programs` object of the ESP payload's /manifest.json.
   */
  extraPrograms?: Readonly<Record<string, string>> | ReadonlyArray<readonly [string, string]>;
  /** Label of the ESP, searched by the chainloader entries. */
  espLabel?: string;
}

/** The `neuralupgrade-info` fields, as upstream writes and reads them. */
export interface NeuralupgradeInfo {
  last_updated: string;
  default_boot_label: string;
  extra_programs: string[];
}

/** UTC YYYYMMDD-HHMMSS, upstream's timestamp format (firmware/timestamp.py). */
export function formatTimestamp(epochSeconds: number): string {
  if (!Number.isFinite(epochSeconds) || epochSeconds < 0) {
    throw new InputError(`grub.cfg last_updated=${epochSeconds}: not a time in seconds since 1970`);
  }
  const d = new Date(Math.floor(epochSeconds) * 1000);
  const p = (v: number, w = 2) => String(v).padStart(w, '0');
  return (
    `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`
  );
}

/** The info comment line (without newline). Values never contain blanks, so upstream's split() parser reads it. */
export function formatInfoLine(info: NeuralupgradeInfo): string {
  return (
    `# neuralupgrade-info: last_updated=${info.last_updated} ` +
    `default_boot_label=${info.default_boot_label} extra_programs=${info.extra_programs.join(',')}`
  );
}

// Labels appear unquoted in `search --label`, on the kernel command line and in the info line.
const LABEL = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

function checkLabel(what: string, label: string): void {
  if (!LABEL.test(label)) {
    throw new InputError(
      `grub.cfg ${what} ${JSON.stringify(label)}: labels must be letters, digits and . _ + - (as in psyopsOS-A)`,
    );
  }
}

function normalizePrograms(p: RenderGrubCfgOptions['extraPrograms']): Array<[string, string]> {
  if (p === undefined) return [];
  const list: Array<[string, string]> = Array.isArray(p)
    ? p.map(([a, b]) => [a, b] as [string, string])
    : Object.entries(p as Record<string, string>);
  for (const [path, title] of list) {
    // The info line joins paths with ',' and upstream's reader splits on blanks and '='.
    if (!/^\/[^\s,=\0]*$/.test(path) || path.length < 2) {
      throw new InputError(
        `manifest.json extra_programs ${JSON.stringify(path)}: the path must be absolute on the ESP, without blanks, ',' or '='`,
      );
    }
    if (typeof title !== 'string' || title === '' || /[\n\r\0]/.test(title)) {
      throw new InputError(`manifest.json extra_programs[${JSON.stringify(path)}]: the title must be a non-empty single line`);
    }
  }
  return list;
}

/**
 * Split kernel parameters the way the kernel does (blanks separate, double
 * quotes group and are removed): `foo="a b"` is one parameter `foo=a b`.
 * GRUB's linux command re-quotes a parameter that holds a space when it builds
 * the command line, so the kernel sees foo="a b" again.
 */
export function splitKernelParams(params: string): string[] {
  if (/[\n\r\0]/.test(params)) {
    throw new InputError('kernel parameters: must be a single line (use spaces between parameters)');
  }
  const out: string[] = [];
  let cur = '';
  let inQuote = false;
  let any = false;
  for (const ch of params) {
    if (ch === '"') {
      inQuote = !inQuote;
      any = true;
    } else if (!inQuote && (ch === ' ' || ch === '\t')) {
      if (any) out.push(cur);
      cur = '';
      any = false;
    } else {
      cur += ch;
      any = true;
    }
  }
  if (inQuote) throw new InputError(`kernel parameters ${JSON.stringify(params)}: a double quote is not closed`);
  if (any) out.push(cur);
  return out;
}

/**
 * GRUB 2.06's `linux` command builds the kernel command line with a backslash before every `'`,
 * `"` and `\` of an argument (grub_create_loader_cmdline), and the kernel does not undo it: seen
 * under QEMU, `psyquote=it's` arrived as `psyquote=it\'s`. No quoting in grub.cfg avoids that, so
 * such a parameter is refused rather than passed on changed.
 */
function checkKernelParam(p: string): string {
  if (/['"\\]/.test(p)) {
    throw new InputError(
      `kernel parameter ${JSON.stringify(p)}: GRUB's linux command would pass ' " and \\ to the kernel with a backslash before them; leave them out (double quotes may group a value with spaces: foo="a b")`,
    );
  }
  return p;
}

function menuentry(title: string, body: string[]): string {
  return `menuentry ${quoteString(title)} {\n${body.map((l) => `    ${l}\n`).join('')}}\n`;
}

/** Render grub.cfg. Pure: the same options give the same bytes. */
export function renderGrubCfg(opts: RenderGrubCfgOptions): string {
  const slots = [...opts.slots];
  if (slots.length === 0) throw new InputError('grub.cfg: no OS slots to boot');
  for (const s of slots) checkLabel('slot label', s);
  if (new Set(slots).size !== slots.length) throw new InputError(`grub.cfg: slot labels repeat (${slots.join(', ')})`);
  checkLabel('default label', opts.defaultLabel);
  if (!slots.includes(opts.defaultLabel)) {
    throw new InputError(`grub.cfg default label ${opts.defaultLabel}: not one of the slots (${slots.join(', ')})`);
  }
  const espLabel = opts.espLabel ?? DEFAULT_ESP_LABEL;
  checkLabel('ESP label', espLabel);
  const timeout = opts.timeout ?? DEFAULT_TIMEOUT;
  if (!Number.isInteger(timeout) || timeout < 0) {
    throw new InputError(`grub.cfg timeout ${timeout}: must be a whole number of seconds >= 0`);
  }
  const params = splitKernelParams(opts.kernelParams ?? DEFAULT_KERNEL_PARAMS).map((p) => quoteWord(checkKernelParam(p)));
  const programs = normalizePrograms(opts.extraPrograms);
  const updated = formatTimestamp(opts.lastUpdated);

  const header =
    '# psyopsOS grub.cfg\n' +
    '# This file is generated by neuralupgrade and will be overwritten on the next update.\n' +
    '\n' +
    '#### The next line is used by neuralupgrade to show information about the current configuration.\n' +
    formatInfoLine({
      last_updated: updated,
      default_boot_label: opts.defaultLabel,
      extra_programs: programs.map(([p]) => p),
    }) +
    '\n####\n' +
    '\n' +
    '# Should be one of the labels defined below\n' +
    `set default="${opts.defaultLabel}"\n` +
    '\n' +
    `set timeout=${timeout}\n` +
    '\n' +
    'insmod all_video\n' +
    'set gfxmode=auto\n' +
    'serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1\n' +
    'terminal_input console serial\n' +
    'terminal_output console serial\n' +
    '\n' +
    '# This is slow and uselessly verbose\n' +
    '#set debug=all\n' +
    '\n' +
    menuentry(`Welcome to psyopsOS. GRUB configuration last updated: ${updated}`, [
      `echo ${quoteString(`Welcome to psyopsOS. GRUB configuration last updated: ${updated}`)}`,
    ]) +
    menuentry('----------------------------------------', ['echo "----------------------------------------"']);

  const sections = [header];
  for (const label of slots) {
    sections.push(
      menuentry(label, [
        `search --no-floppy --label ${label} --set root`,
        ['linux /kernel ro', `psyopsos=${label}`, ...params].join(' '),
        'initrd /initramfs',
      ]),
    );
  }
  for (const [path, title] of programs) {
    sections.push(
      menuentry(title, [
        'insmod part_gpt',
        'insmod fat',
        'insmod chain',
        `search --no-floppy --label ${espLabel} --set root`,
        `chainloader ${quoteWord(path)}`,
      ]),
    );
  }
  sections.push(
    [
      menuentry('UEFI fwsetup', ['fwsetup']),
      menuentry('Reboot', ['reboot']),
      menuentry('Poweroff', ['halt']),
      menuentry('Exit GRUB', ['exit']),
    ].join('\n'),
  );
  // Upstream joins its sections with a blank line after each one's final newline.
  return sections.join('\n\n');
}

/** Read manifest.json's `extra_programs` (upstream's ESP manifest); absent means none. */
export function extraProgramsFromManifest(json: string, name = '/manifest.json'): Array<[string, string]> {
  let m: unknown;
  try {
    m = JSON.parse(json);
  } catch (e) {
    throw new InputError(`${name}: not valid JSON (${(e as Error).message})`);
  }
  if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new InputError(`${name}: expected a JSON object`);
  const ep = (m as Record<string, unknown>).extra_programs;
  if (ep === undefined) return [];
  if (ep === null || typeof ep !== 'object' || Array.isArray(ep)) {
    throw new InputError(`${name}: extra_programs must be an object of "/path.efi": "Menu title"`);
  }
  const out: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(ep as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new InputError(`${name}: extra_programs[${JSON.stringify(k)}] must be a string title`);
    out.push([k, v]);
  }
  return normalizePrograms(out);
}
