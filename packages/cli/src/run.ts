// Source entry point (tests, development): node --import=tsx --conditions=source packages/cli/src/run.ts …
import { main } from './main.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
