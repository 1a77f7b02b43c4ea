/**
 * The fast path for `diskimg status` (issue 13/14: a shell prompt runs it at every prompt, on small
 * nodes): the command lines a prompt uses are read here by hand, and the handler runs without
 * importing yargs (a third of the start-up) or any other command. Only what is fully understood is
 * taken: anything else (another option, `--help`, an option twice, a second positional, an option
 * value that starts with "-") returns undefined and goes to yargs, so errors and help stay the ones
 * yargs gives.
 */
export interface FastStatusArgs {
  disk?: string;
  bootedLabel?: string;
  json?: boolean;
  quiet?: boolean;
}

/** `status [DISK] [--booted-label L | --booted-label=L] [--json] [--quiet | -q]`, each at most once, in any order. */
export function fastStatusArgs(argv: readonly string[]): FastStatusArgs | undefined {
  if (argv[0] !== 'status') return undefined;
  const out: FastStatusArgs = {};
  const seen = new Set<string>();
  const once = (name: string) => {
    if (seen.has(name)) return false;
    seen.add(name);
    return true;
  };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') {
      if (!once('json')) return undefined;
      out.json = true;
    } else if (a === '--quiet' || a === '-q') {
      if (!once('quiet')) return undefined;
      out.quiet = true;
    } else if (a === '--booted-label' || a.startsWith('--booted-label=')) {
      const value = a === '--booted-label' ? argv[++i] : a.slice('--booted-label='.length);
      if (value === undefined || !plain(value) || !once('booted-label')) return undefined;
      out.bootedLabel = value;
    } else if (plain(a) && !/^\d/.test(a)) {
      // DISK: a path. yargs reads a number-looking word otherwise than a string: leave those to it.
      if (!once('disk')) return undefined;
      out.disk = a;
    } else return undefined;
  }
  return out;
}

/** A value yargs takes as it is: non-empty, not an option, nothing it would split or expand. */
const plain = (v: string) => v !== '' && !v.startsWith('-');

/**
 * The fast path for the top-level help (`diskimg --help`, `diskimg help`): the text yargs prints,
 * kept in help-text.ts (scripts/help-text.mjs writes it; test/startup.test.ts checks it equals
 * yargs' output), printed without loading yargs or any command. Only when yargs would print those
 * very bytes: it wraps to min(100, terminal width) (cli.ts), so a terminal narrower than 100
 * columns goes to yargs; it translates into the locale of LC_ALL/LC_MESSAGES/LANG/LANGUAGE, so
 * anything but English (en*, C, POSIX, unset) goes to yargs; a set SOURCE_DATE_EPOCH is checked
 * (bad usage) before yargs runs, so it goes to yargs too.
 */
export function fastTopHelp(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, columns: number | undefined = process.stdout.columns): boolean {
  if (argv.length !== 1 || (argv[0] !== '--help' && argv[0] !== 'help')) return false;
  if ((columns ?? 100) < 100) return false;
  if (env.SOURCE_DATE_EPOCH !== undefined && env.SOURCE_DATE_EPOCH !== '') return false;
  // yargs' own guess (yargs-factory kGuessLocale), then its y18n lookup: English is the built-in text.
  const locale = (env.LC_ALL || env.LC_MESSAGES || env.LANG || env.LANGUAGE || 'en_US').replace(/[.:].*/, '');
  return /^(en([_-].*)?|C|POSIX)$/.test(locale);
}
