import { fastTopHelp } from './fast.js';
import { VERSION_LINE } from './version.js';

/**
 * Exit codes: 0 ok, 1 failure, 2 usage; 129/130/143 after SIGHUP/SIGINT/SIGTERM.
 *
 * Start-up matters (shell prompts, small nodes): this module imports nothing but the version, so
 * `diskimg --version` loads no package and no yargs, nor does `diskimg --help` (the text yargs
 * prints, kept in help-text.ts: fast.ts says when it applies); everything else is in cli.ts,
 * imported only when a command runs.
 */
export async function main(argv: string[]): Promise<number> {
  // `diskimg --version` alone; yargs' own --version would take the option away from
  // `publish/update/check --version V`, which name a release.
  if (argv.length === 1 && argv[0] === '--version') {
    process.stdout.write(`${VERSION_LINE}\n`);
    return 0;
  }
  if (fastTopHelp(argv)) {
    const [{ TOP_HELP }, { quietOnClosedPipe }] = await Promise.all([import('./help-text.js'), import('./output.js')]);
    quietOnClosedPipe();
    process.stdout.write(TOP_HELP);
    return 0;
  }
  // V8's heap sizing for the commands that stream a tarball into filesystems (bench/README.md,
  // issue 14): the young generation stays at its initial 1 MiB semi-spaces (under per-entry churn
  // it doubles up to 16 MiB, ~30 MiB of RSS, for no CPU gain), and the old generation grows to
  // 1.5× its live size before the next full GC (instead of up to 4×: RSS that grew with the entry
  // count). Both flags are read when V8 resizes, so they work when set here (--max-semi-space-size
  // only counts at node's start). Only for those commands: loading node:v8 costs ~4 ms of start-up.
  // An argument that merely equals a command name turns them on too, which is harmless.
  // Not when the input comes over HTTP(S) (`--os-tar URL`, `--repo URL`): node's http client makes
  // small objects per socket read, and a young generation held at 1 MiB then costs ~25 % more CPU
  // (2.3 vs 1.85 s user for the bench's 451 MiB update) to save ~30 MiB (120 vs 90 MiB peak).
  if (smallHeapFor(argv)) {
    (await import('node:v8')).setFlagsFromString(SMALL_HEAP_V8_FLAGS);
  }
  const { runCli } = await import('./cli.js');
  return runCli(argv);
}

/** The V8 flags main() sets for the commands smallHeapFor picks (bench/manyfiles.bench.ts sets the same). */
export const SMALL_HEAP_V8_FLAGS = '--semi-space-growth-factor=1 --heap-growing-percent=50';

/** Whether main() sets the small-heap V8 flags for this command line (see the comment there). */
export function smallHeapFor(argv: readonly string[]): boolean {
  const streamsTar = argv.some((a) => a === 'create' || a === 'update' || a === 'update-esp');
  return streamsTar && !argv.some((a) => /^https?:\/\//i.test(a));
}
