/**
 * --http-timeout, --min-rate and --stall-window (issue 26.5): the limits of every HTTP(S) transfer
 * a command makes (tarballs, signatures, pointers). Added to the commands that can download by
 * one line in index.ts (withHttpOptions); validated before the handler runs (bad value: exit 2),
 * then set for the whole process (setHttpLimits), so every download of the command obeys them.
 */
import type { Argv, CommandModule } from 'yargs';
import { InputError, parseSize, UsageError } from '@diskimg/partitions/internal';

/** The commands that read a repository or a URL. */
export const HTTP_COMMANDS = ['update', 'update-esp', 'check', 'self-update', 'serve', 'create', 'releases'];

/** Built-in defaults, as in diskimage's DEFAULT_HTTP_LIMITS (kept here so --help loads no package). */
export const HTTP_OPTION_DEFAULTS = { timeout: 3600, minRate: '1K', window: 60 };
const DEFAULTS = HTTP_OPTION_DEFAULTS;

interface HttpArgs {
  'http-timeout'?: string;
  'min-rate'?: string;
  'stall-window'?: string;
}

/** Seconds as given (decimals allowed), or a usage error naming the option. */
function seconds(v: string, option: string, zeroMeans?: string): number {
  const n = /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n) || n > 7 * 86400 || (n === 0 && !zeroMeans)) {
    throw new UsageError(`${option} ${v}: a number of seconds, ${zeroMeans ? `0 (${zeroMeans}) ` : 'more than 0 '}up to 604800 (a week), e.g. ${option} 60`);
  }
  return n;
}

/** The limits the options give, in the units http.ts takes; undefined fields keep the defaults. */
export function httpLimitsFrom(a: HttpArgs): { deadlineMs?: number; minRate?: number; stallWindowMs?: number } {
  const out: { deadlineMs?: number; minRate?: number; stallWindowMs?: number } = {};
  if (a['http-timeout'] !== undefined) out.deadlineMs = Math.round(seconds(String(a['http-timeout']), '--http-timeout', 'no limit') * 1000);
  if (a['stall-window'] !== undefined) out.stallWindowMs = Math.round(seconds(String(a['stall-window']), '--stall-window') * 1000);
  if (a['min-rate'] !== undefined) {
    let n: number | 'rest';
    try {
      n = parseSize(String(a['min-rate']), '--min-rate');
    } catch (e) {
      if (e instanceof InputError) throw new UsageError(`--min-rate ${a['min-rate']}: bytes per second, a number with an optional unit (K, M, KB, …), e.g. 1K (0 = no stall rule)`);
      throw e;
    }
    if (n === 'rest') throw new UsageError('--min-rate rest: give bytes per second, e.g. 1K (0 = no stall rule)');
    out.minRate = n;
  }
  return out;
}

/** `command` with the three options, checked up front and applied before its handler runs. */
export function withHttpOptions(command: CommandModule<any, any>): CommandModule<any, any> {
  return {
    ...command,
    builder: (y: Argv) => {
      const b = typeof command.builder === 'function' ? (command.builder as (y: Argv) => Argv)(y) : y;
      return b
        .option('http-timeout', { type: 'string', describe: `HTTP(S): each download (one file, its resumes included) must end within this many seconds (default ${DEFAULTS.timeout}; 0 = no limit)` })
        .option('min-rate', { type: 'string', describe: `HTTP(S): fewer bytes per second than this over a --stall-window is a stalled connection, resumed as a failed attempt (default ${DEFAULTS.minRate}; 0 = off)` })
        .option('stall-window', { type: 'string', describe: `HTTP(S): seconds of waiting over which --min-rate is measured (default ${DEFAULTS.window})` })
        .middleware((a: HttpArgs) => void httpLimitsFrom(a), true); // validate before anything else runs
    },
    handler: async (argv: any) => {
      const limits = httpLimitsFrom(argv);
      if (Object.keys(limits).length) {
        const { setHttpLimits } = await import('@diskimg/diskimage/internal');
        setHttpLimits(limits);
      }
      return command.handler(argv);
    },
  };
}

/** Wrap every command of HTTP_COMMANDS in `commands` (index.ts calls this once, last). */
export function addHttpOptions(commands: CommandModule<any, any>[]): void {
  for (const [i, c] of commands.entries()) {
    const name = typeof c.command === 'string' ? c.command.split(' ')[0] : undefined;
    if (name && HTTP_COMMANDS.includes(name)) commands[i] = withHttpOptions(c);
  }
}
