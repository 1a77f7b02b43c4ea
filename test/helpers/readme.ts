/** The README's "Use as a library" examples (test/readme-library.test.ts compiles and runs them; test/public-api.test.ts checks their imports). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './cli.js';

export const HEADING = '## Use as a library';

/** The ```ts blocks between HEADING and the next "## " heading. */
export function readmeLibraryBlocks(readme = readFileSync(join(repoRoot, 'README.md'), 'utf8')): string[] {
  const start = readme.indexOf(`\n${HEADING}\n`);
  if (start < 0) throw new Error(`README.md has no "${HEADING}" section`);
  const rest = readme.slice(start + HEADING.length + 2);
  const end = rest.search(/^## /m);
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

