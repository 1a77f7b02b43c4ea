// Entry point of the one-file bundle (scripts/bundle.mjs → dist/diskimg.mjs).
// `--version` answers before the CLI is even initialized: esbuild turns the dynamic import into a
// lazily evaluated module inside the same file, so only what a run needs is evaluated (and
// scripts/bundle.mjs makes node's own modules load on first use). See main.ts and cli.ts for the
// rest of the start-up path (status' fast path, commands importing their code in the handler).
import { VERSION_LINE } from './version.js';

const args = process.argv.slice(2);
if (args.length === 1 && args[0] === '--version') {
  process.stdout.write(`${VERSION_LINE}\n`);
} else {
  const { main } = await import('./main.js');
  process.exitCode = await main(args);
}
