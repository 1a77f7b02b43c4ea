#!/usr/bin/env node
/**
 * `pnpm run bundle`: the one-file CLI for nodes, dist/diskimg.mjs (esbuild, ESM, node >= 20, no
 * node_modules, no native addons). `--outfile FILE` writes elsewhere (tests).
 *
 * Reproducible: the output depends only on the sources, the git commit it is built from and the
 * Node.js version that runs this script (see lazyBuiltins); no timestamps, no absolute paths
 * (esbuild names modules relative to the repository root). The commit
 * (`git rev-parse HEAD`, with "-dirty" when tracked files differ from it; DISKIMG_COMMIT overrides,
 * "unknown" outside git) is built in and shown by `--version`.
 *
 * The release version (how `publish --bundle` names it and `self-update` orders it) is on the line
 * after the shebang, `// diskimg-release: YYYYMMDD-HHMMSS` (packages/ab/src/repo/bundle-release.ts):
 * DISKIMG_RELEASE if set, else SOURCE_DATE_EPOCH, else the commit's committer time (UTC); none
 * outside git (then `publish --bundle` needs --version).
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { builtinModules, createRequire } from 'node:module';
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

/** YYYYMMDD-HHMMSS (UTC) of a Unix time, as release versions are written. */
function stamp(epoch) {
  return new Date(epoch * 1000).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

function release() {
  if (process.env.DISKIMG_RELEASE) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_+-]{0,63}$/.test(process.env.DISKIMG_RELEASE)) throw new Error(`DISKIMG_RELEASE=${process.env.DISKIMG_RELEASE}: letters, digits, "_", "+", "-" (YYYYMMDD-HHMMSS)`);
    return process.env.DISKIMG_RELEASE;
  }
  if (process.env.SOURCE_DATE_EPOCH && /^\d+$/.test(process.env.SOURCE_DATE_EPOCH)) return stamp(Number(process.env.SOURCE_DATE_EPOCH));
  try {
    const t = execFileSync('git', ['log', '-1', '--format=%ct', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return /^\d+$/.test(t) ? stamp(Number(t)) : undefined;
  } catch {
    return undefined;
  }
}
const rel = release();
/**
 * Node's own modules are loaded when the code that uses them first runs, not at start-up: an ESM
 * bundle would hoist every `import … from 'node:tls'` (http, tls, zlib, crypto, child_process …)
 * to its top, and loading them costs more than `--version` or `status` itself (crypto alone
 * ~10 ms). Each becomes a small CommonJS stand-in that esbuild evaluates lazily; its exports are
 * getters that `require` the real module on first use, so importing one (every module of a
 * package is initialised when the package is) costs nothing until a function of it is called.
 * Modules whose export is itself a function or class (events, stream, assert) are required at
 * once: `extends EventEmitter` needs the real thing. The export names are node's own, sorted, as
 * the node that builds sees them: the bytes depend on the commit and the Node.js version that builds.
 */
const require = createRequire(import.meta.url);
function builtinStandIn(name) {
  const spec = JSON.stringify(`node:${name}`);
  const real = require(`node:${name}`);
  if (typeof real === 'function') return `module.exports = require(${spec});\n`;
  const names = Object.keys(real).filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k)).sort();
  return (
    `let real;\nconst load = () => (real ??= require(${spec}));\n` +
    `for (const k of ${JSON.stringify(names)}) Object.defineProperty(exports, k, { enumerable: true, get: () => load()[k] });\n`
  );
}

const lazyBuiltins = {
  name: 'lazy-node-builtins',
  setup(b) {
    b.onResolve({ filter: /^[a-z_/:]+$/ }, (a) => {
      const name = a.path.replace(/^node:/, '');
      if (!builtinModules.includes(name)) return undefined;
      // The require inside the stand-in is node's own (the banner's createRequire).
      if (a.namespace === 'node-builtin') return { path: a.path, external: true };
      return { path: name, namespace: 'node-builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (a) => ({ contents: builtinStandIn(a.path), loader: 'js' }));
  },
};

/**
 * string-width (yargs' and cliui's) builds an `Intl.Segmenter` when it is imported: loading ICU's
 * break data costs ~20 ms of every start-up that evaluates yargs (each command run), though only
 * help and error output ever measure a string. Here it is built on the first measurement; the
 * function is otherwise the same. The build fails if the line is not found (a new string-width):
 * then look again.
 */
const SEGMENTER_LINE = 'const segmenter = new Intl.Segmenter();';
const lazySegmenter = {
  name: 'lazy-intl-segmenter',
  setup(b) {
    b.onLoad({ filter: /[\\/]string-width[\\/]index\.js$/ }, async (a) => {
      const src = await readFile(a.path, 'utf8');
      if (!src.includes(SEGMENTER_LINE)) throw new Error(`${a.path}: no "${SEGMENTER_LINE}" line; update scripts/bundle.mjs (lazySegmenter)`);
      const lazy = 'let segmenter_;\nconst segmenter = { segment: (s) => (segmenter_ ??= new Intl.Segmenter()).segment(s) };';
      return { contents: src.replace(SEGMENTER_LINE, lazy), loader: 'js', resolveDir: dirname(a.path) };
    });
  },
};

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
  plugins: [lazyBuiltins, lazySegmenter],
  define: { __DISKIMG_COMMIT__: JSON.stringify(commit()) },
  banner: {
    js: `#!/usr/bin/env node\n${rel ? `// diskimg-release: ${rel}\n` : ''}import { createRequire as __diskimgRequire } from 'node:module'; const require = __diskimgRequire(import.meta.url);`,
  },
  logLevel: args.includes('--quiet') ? 'error' : 'warning',
});
chmodSync(outfile, 0o755);
if (!args.includes('--quiet')) process.stderr.write(`${outfile}: ${statSync(outfile).size} bytes, commit ${commit()}, release ${rel ?? '(none)'}\n`);
