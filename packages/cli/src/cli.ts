import type { Argv } from 'yargs';
import { DiskimgError, UsageError, sourceDateEpoch } from '@diskimg/partitions/internal';
import { displayText, exitOnSignals, guardHumanStderr, guardHumanStdout, quietOnClosedPipe } from './output.js';
import { fastStatusArgs } from './fast.js';
import { COMPLETION_FLAG, commandSpecs, complete } from './completion.js';

/**
 * Everything but `--version` (main.ts). `status` in the forms a shell prompt uses (fast.ts) goes
 * straight to its handler, without yargs; any other command line goes to yargs, which is imported
 * here, with the command list, only then.
 */
export async function runCli(argv: string[]): Promise<number> {
  let code = 0;
  quietOnClosedPipe();
  guardHumanStderr(); // warnings and errors quote input: no raw control or bidi characters
  const detachSignals = exitOnSignals();
  try {
    checkSourceDateEpoch();
    const fast = fastStatusArgs(argv);
    if (argv[0] === COMPLETION_FLAG) await printCompletions(argv.slice(1));
    else if (fast) {
      const { runStatus } = await import('./commands/status.js');
      await runStatus(fast);
    } else await (await makeParser(argv)).parseAsync();
    // A command may end "not ok" without an error (status: 1 when the slot is not confirmed).
    if (typeof process.exitCode === 'number') code = process.exitCode;
  } catch (err) {
    code = reportError(err);
  } finally {
    detachSignals();
  }
  return code;
}

/** The options every command takes. */
function globalOptions(y: Argv): Argv {
  return y
    .option('json', { type: 'boolean', describe: 'print one JSON document on stdout', global: true })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'no progress and no warnings on stderr (errors still)', global: true });
}

/** What completion knows: every command's options and positionals, from their yargs definitions. */
export async function completionSpecs(): ReturnType<typeof commandSpecs> {
  const { commands } = await import('./commands/index.js');
  return commandSpecs(commands, globalOptions);
}

/** `diskimg --get-yargs-completions WORDS…` (the completion script's call): one candidate a line. */
async function printCompletions(words: string[]): Promise<void> {
  const found = complete(await completionSpecs(), words);
  if (found.length > 0) process.stdout.write(found.join('\n') + '\n');
}

/** The yargs parser with every command registered (commands/index.ts). */
async function makeParser(argv: string[]): Promise<Argv> {
  const [{ default: yargs }, { commands }] = await Promise.all([import('yargs'), import('./commands/index.js')]);
  const args = joinDashValues(argv);
  quietYargsVersionWarning();
  const parser = yargs(args)
    .scriptName('diskimg')
    .usage('$0 <command> [options]');
  globalOptions(parser)
    .middleware(((_argv: unknown, y: Argv) => rejectRepeats(args, y)) as never, true)
    // Human stdout never carries raw control or bidi characters (cat's bytes and --json excepted).
    .middleware((a) => {
      if (!a.json && a._[0] !== 'cat' && a._[0] !== 'completion') guardHumanStdout();
    })
    .strict()
    .demandCommand(1, 'name a command')
    .recommendCommands()
    .completion('completion', 'print a bash/zsh completion script (diskimg completion >> ~/.bashrc)')
    .help()
    .version(false)
    .wrap(Math.min(100, process.stdout.columns ?? 100))
    .epilogue('Sizes: K, M, G, T (also KiB, MiB, GiB, TiB) are powers of 1024; KB, MB, GB, TB are powers of 1000. Exit: 0 ok, 1 failure, 2 bad usage. diskimg --version prints the version (in the one-file bundle with its git commit).')
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(msg);
    });
  for (const c of commands) parser.command(c);
  skipHelpCache(parser);
  return parser;
}

/**
 * Before a command's handler runs, yargs renders that command's whole help (usage.js
 * cacheHelpMessage) so that a failing handler could show it; our .fail() never shows help, so
 * the render was wasted: ~60 ms of cliui and string-width on every command run. The hook is a
 * yargs internal (the version is pinned in package.json); without it only the time changes.
 */
function skipHelpCache(parser: Argv): void {
  const internal = (parser as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } }).getInternalMethods?.();
  const usage = internal?.getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
}

/**
 * `update --repo … --version V` and `push --repo … --version V` take a `--version` of their own;
 * yargs then warns on stderr that "version" is reserved, which breaks the one-line-on-stderr rule.
 * Drop that one warning (the global --version still works: it is only recognised alone).
 */
function quietYargsVersionWarning(): void {
  const emit = process.emitWarning;
  if ((emit as { diskimg?: boolean }).diskimg) return;
  const filtered = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    const text = typeof warning === 'string' ? warning : warning.message;
    if (/^"version" is a reserved word/.test(text)) return;
    return (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  (filtered as { diskimg?: boolean }).diskimg = true;
  process.emitWarning = filtered;
}

/** SOURCE_DATE_EPOCH is an input like any option: a bad value is bad usage, before anything runs. */
function checkSourceDateEpoch(): void {
  try {
    sourceDateEpoch();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/**
 * `--os-tar -` means standard input, but yargs reads a lone "-" as a
 * positional: hand it over as `--os-tar=-`. Likewise a value that starts
 * with "-" and a digit (`--slot-size -5M`) is the option's value, not flags.
 */
function joinDashValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    if (/^--[a-z][a-z-]*$/.test(a) && next !== undefined && (next === '-' || /^-\d/.test(next))) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/**
 * A single-valued option given twice (`--slot-size 64M --slot-size 64M`,
 * `--verify --no-verify`) is a usage error naming it; only options declared
 * as arrays (`--trusted`) may repeat.
 */
function rejectRepeats(args: string[], y: Argv): void {
  const opts = (y as unknown as { getOptions(): { array: string[]; alias: Record<string, string[]> } }).getOptions();
  const arrays = new Set(opts.array);
  const canonical = new Map<string, string>();
  for (const [name, aliases] of Object.entries(opts.alias ?? {})) for (const a of aliases) canonical.set(a, name);
  const seen = new Map<string, string>();
  for (const a of args) {
    if (a === '--') break;
    const m = /^--(?:no-)?([a-zA-Z][\w-]*)(?:=|$)/.exec(a) ?? /^-([a-zA-Z])$/.exec(a);
    if (!m) continue;
    const name = canonical.get(m[1]!) ?? m[1]!;
    if (arrays.has(name)) continue;
    const prev = seen.get(name);
    if (prev !== undefined) throw new UsageError(`${prev === a.split('=')[0] ? prev : `${prev} and ${a.split('=')[0]}`}: option given more than once; give it once`);
    seen.set(name, a.split('=')[0]!);
  }
}

/** What a system error code means for the user, and what to do about it. */
const ERRNO: Record<string, [string, string]> = {
  ENOENT: ['no such file or directory', 'check the path'],
  ENOTDIR: ['a component of the path is not a directory', 'check the path'],
  EISDIR: ['is a directory', 'give a file'],
  EACCES: ['permission denied', 'check its permissions or run as a user allowed to use it'],
  EPERM: ['operation not permitted', 'check its permissions or run as a user allowed to use it'],
  EROFS: ['read-only filesystem', 'write somewhere writable'],
  ENOSPC: ['no space left on device', 'free some space or write somewhere else'],
  EDQUOT: ['disk quota exceeded', 'free some space or write somewhere else'],
  EFBIG: ['file too large for its filesystem', 'make it smaller or write to another filesystem'],
  EEXIST: ['already exists', 'remove it or choose another name'],
  EBUSY: ['device or resource busy', 'stop what is using it (unmount it) and try again'],
  EIO: ['input/output error', 'the device may be failing; check dmesg'],
  EMFILE: ['too many open files', 'raise the limit (ulimit -n)'],
  ENXIO: ['no such device', 'check that the device is attached'],
  ENODEV: ['no such device', 'check that the device is attached'],
  ENAMETOOLONG: ['name too long', 'use a shorter path'],
  ELOOP: ['too many levels of symbolic links', 'check the symbolic links on the path'],
};

/** One line for a system error: the path it is about, what it means, what to do. */
export function describeSystemError(e: NodeJS.ErrnoException): string {
  const known = ERRNO[e.code!];
  const where = e.path ? `${e.path}: ` : '';
  if (!known) return `${where}${e.message.replace(/\s*\n\s*/g, ' ')}`;
  const during = e.path ? '' : e.syscall ? ` (during ${e.syscall})` : '';
  return `${where}${known[0]}${during}; ${known[1]}`;
}

function reportError(err: unknown): number {
  if (err instanceof UsageError) {
    // yargs messages can span lines ("Invalid values:\n  Argument: …"): keep errors to one line.
    process.stderr.write(`diskimg: ${displayText(err.message.replace(/\s*\n\s*/g, ' ').trim())} (see diskimg --help)\n`);
    return 2;
  }
  if (err instanceof DiskimgError) {
    // Messages quote input (names, labels, paths): escaped, and so one line whatever they quote.
    process.stderr.write(`diskimg: ${displayText(err.message)}\n`);
    return 1;
  }
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && e.message) {
    // System errors (EACCES, ENOSPC, …) are the user's to fix: one line, no stack.
    process.stderr.write(`diskimg: ${displayText(describeSystemError(e))}\n`);
    return 1;
  }
  process.stderr.write(`diskimg: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
  return 1;
}
