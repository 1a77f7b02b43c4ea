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
  const { runCli } = await import('./cli.js');
  return runCli(argv);
}
