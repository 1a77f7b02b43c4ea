#!/usr/bin/env node
/**
 * `pnpm run bundle`: the one-file CLI for nodes, dist/diskimg.mjs (esbuild, ESM, node >= 20, no
 * node_modules, no native addons). `--outfile FILE` writes elsewhere (tests).
 *
 * Reproducible: the output depends only on the sources and the git commit it is built from (no
 * timestamps, no absolute paths: esbuild names modules relative to the repository root). The commit
 * (`git rev-parse HEAD`, with "-dirty" when tracked files differ from it; DISKIMG_COMMIT overrides,
 * "unknown" outside git) is built in and shown by `--version`.
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const oi = args.indexOf('--outfile');
const outfile = resolve(oi >= 0 ? args[oi + 1] : resolve(root, 'dist/diskimg.mjs'));

function commit() {
  if (process.env.DISKIMG_COMMIT) return process.env.DISKIMG_COMMIT;
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return dirty ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}

await build({
  absWorkingDir: root,
  entryPoints: ['packages/cli/src/bundle.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  conditions: ['source'],
  legalComments: 'none',
  // Less to parse at every start (about half the bytes); names are kept for readable stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  define: { __DISKIMG_COMMIT__: JSON.stringify(commit()) },
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __diskimgRequire } from 'node:module'; const require = __diskimgRequire(import.meta.url);",
  },
  logLevel: args.includes('--quiet') ? 'error' : 'warning',
});
chmodSync(outfile, 0o755);
if (!args.includes('--quiet')) process.stderr.write(`${outfile}: ${statSync(outfile).size} bytes, commit ${commit()}\n`);
