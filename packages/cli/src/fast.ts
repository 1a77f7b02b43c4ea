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
