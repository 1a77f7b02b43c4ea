/**
 * Issue 13/14, start-up: what `--version`, `status` and `--help` load, and that status' fast path
 * (packages/cli/src/fast.ts, no yargs) answers exactly as the yargs path does. No timings here
 * (bench/startup.bench.ts measures them); the checks are on what gets loaded:
 *
 * - the rule of packages/cli/src/commands/index.ts: no command module imports package logic
 *   (@diskimg/ab, @diskimg/diskimage) or costly node modules at its top level;
 * - in the bundle, node's modules that a run loaded (`process.moduleLoadList`, via a --import
 *   probe): `--version` and `status` load no http, tls, crypto, child_process, zlib (--version)
 *   and no assert, which only yargs uses (so the probe sees whether yargs was initialised; the
 *   `--help --` run shows it does);
 * - the top-level help's fast path (fast.ts fastTopHelp, help-text.ts): help-text.ts is what yargs
 *   prints, and `--help` prints byte for byte what yargs does, also where yargs' output differs
 *   (terminal widths, another locale, a bad SOURCE_DATE_EPOCH) and the fast path must step aside.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runCli } from './helpers/cli.js';
import { TOP_HELP } from '../packages/cli/src/help-text.js';
import { needTools } from './helpers/skip.js';

const work = mkdtempSync(join(tmpdir(), 'startup-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

test('command modules import their package code in the handler, not at the top', (t) => {
  const dir = join(repoRoot, 'packages/cli/src/commands');
  // Any entry of the two packages: "/internal" and its narrower subpaths too.
  const costly = /^(@diskimg\/(ab|diskimage)(\/.*)?|node:(crypto|child_process|http|https|tls|zlib|net))$/;
  const bad: string[] = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
    const src = readFileSync(join(dir, f), 'utf8');
    // Top-level static imports that bring values (`import type` is erased).
    for (const m of src.matchAll(/^import\s+(?!type\b)[^;]*?from\s+'([^']+)';/gms)) if (costly.test(m[1]!)) bad.push(`${f}: ${m[0].replace(/\s+/g, ' ')}`);
  }
  t.deepEqual(bad, [], 'import these with `await import()` in the handler (see commands/index.ts)');
});

let bundlePath: string | undefined;
function bundle(): string {
  if (bundlePath) return bundlePath;
  const out = join(work, 'diskimg.mjs');
  const b = spawnSync(process.execPath, [join(repoRoot, 'scripts/bundle.mjs'), '--outfile', out, '--quiet'], { cwd: repoRoot, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`bundle: ${b.stderr}`);
  return (bundlePath = out);
}

/** A small image with both slots and a default: what status reads. */
let imagePath: string | undefined;
function image(): string {
  if (imagePath) return imagePath;
  const os = join(work, 'os');
  spawnSync('mkdir', ['-p', os]);
  for (const f of ['kernel', 'initramfs']) writeFileSync(join(os, f), `${f}\n`);
  const tar = spawnSync('tar', ['-C', os, '-cf', join(work, 'os.tar'), '.']);
  if (tar.status !== 0) throw new Error(`tar: ${tar.stderr}`);
  const img = join(work, 'st.img');
  const c = spawnSync(process.execPath, [bundle(), 'create', img, '--os-tar', join(work, 'os.tar'), '--no-verify', '--no-bootloader', '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '16M', '--seed', 'startup', '--quiet'], {
    encoding: 'utf8',
    env: { ...process.env, SOURCE_DATE_EPOCH: '1764374400' },
  });
  if (c.status !== 0) throw new Error(`create: ${c.stderr}`);
  return (imagePath = img);
}

/** node's own modules a run of the bundle loaded. */
function loaded(args: string[]): { modules: Set<string>; status: number | null; stdout: string } {
  const probe = join(work, 'probe.mjs');
  const out = join(work, `loaded-${args.join('_').replace(/\W/g, '')}.txt`);
  writeFileSync(
    probe,
    "import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(process.env.PROBE_OUT, process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)).join('\\n')));\n",
  );
  const r = spawnSync(process.execPath, ['--import', probe, bundle(), ...args], { encoding: 'utf8', env: { ...process.env, PROBE_OUT: out } });
  return { modules: new Set(readFileSync(out, 'utf8').split('\n')), status: r.status, stdout: r.stdout };
}

test('bundle: --version and status load neither yargs nor the modules they do not use', (t) => {
  if (!needTools(t, 'tar')) return;
  const img = image();
  // (net is not listed: a piped stdout is a net.Socket.)
  const never = ['http', 'https', 'tls', 'crypto', 'child_process', 'assert'];
  const v = loaded(['--version']);
  t.is(v.status, 0);
  t.deepEqual([...never, 'zlib', 'fs/promises'].filter((m) => v.modules.has(m)), [], '--version');
  const s = loaded(['status', img, '--booted-label', 'psyopsOS-A']);
  t.is(s.stdout, 'psyopsOS-A UNVERIFIED ok\n');
  t.deepEqual(never.filter((m) => s.modules.has(m)), [], 'status');
  // --help has its own fast path (no yargs either).
  const h = loaded(['--help']);
  t.is(h.status, 0);
  t.is(h.stdout, TOP_HELP);
  t.false(h.modules.has('assert'), '--help: yargs loaded');
  // The control: the yargs path does load assert, so its absence above means something.
  const y = loaded(['--help', '--']);
  t.is(y.status, 0);
  t.true(y.modules.has('assert'), '--help -- (yargs) should load assert; the probe proves nothing otherwise');
});

/** English, no SOURCE_DATE_EPOCH: the environment the fast help path answers in. */
function plainEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C' };
  for (const k of ['LC_MESSAGES', 'LANG', 'LANGUAGE', 'SOURCE_DATE_EPOCH']) delete env[k];
  return { ...env, ...extra };
}

test('help-text.ts is what yargs prints for --help (else: pnpm run help:update)', async (t) => {
  // A trailing `--` keeps the fast path out: this is yargs, from source.
  const r = await runCli(['--help', '--'], { env: plainEnv() });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, TOP_HELP, 'packages/cli/src/help-text.ts is stale: run pnpm run help:update');
});

test('--help and help: the fast path prints, fails and exits exactly as yargs', async (t) => {
  const run = (args: string[], env: NodeJS.ProcessEnv) => {
    const r = spawnSync(process.execPath, [bundle(), ...args], { encoding: 'utf8', env });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const envs: [string, NodeJS.ProcessEnv][] = [
    ['C', plainEnv()],
    ['en_GB', plainEnv({ LC_ALL: '', LANG: 'en_GB.UTF-8' })],
    ['de_DE', plainEnv({ LC_ALL: '', LANG: 'de_DE.UTF-8' })],
    ['bad SOURCE_DATE_EPOCH', plainEnv({ SOURCE_DATE_EPOCH: 'x' })],
    ['SOURCE_DATE_EPOCH', plainEnv({ SOURCE_DATE_EPOCH: '1764374400' })],
  ];
  for (const [name, env] of envs)
    for (const args of [['--help'], ['help']]) {
      const fast = run(args, env);
      t.deepEqual(fast, run([...args, '--'], env), `bundle ${args.join(' ')} (${name})`);
    }
  t.is(run(['--help'], plainEnv({ SOURCE_DATE_EPOCH: 'x' })).code, 2, 'a bad SOURCE_DATE_EPOCH is bad usage, with --help too');
  // From source, yargs translates (the bundle carries no locale files): German stays German.
  const de = plainEnv({ LC_ALL: '', LANG: 'de_DE.UTF-8' });
  const src = await runCli(['--help'], { env: de });
  t.is(src.code, 0);
  t.is(src.stdout, (await runCli(['--help', '--'], { env: de })).stdout, 'source --help (de_DE)');
  t.notRegex(src.stdout, /^Commands:/m, 'yargs should have translated (the check proves nothing otherwise)');
});

test('--help on a terminal: yargs wraps to its width below 100 columns; the fast path prints the same', (t) => {
  if (!needTools(t, 'script', 'stty')) return;
  // script(1) gives the CLI a terminal of the given width (stdout.columns).
  const onTty = (cols: number, args: string[]) =>
    spawnSync('script', ['-qec', `stty cols ${cols}; exec ${[process.execPath, bundle(), ...args].map((a) => `'${a}'`).join(' ')}`, '/dev/null'], { encoding: 'utf8', env: plainEnv() });
  for (const cols of [60, 99, 100, 160]) {
    const fast = onTty(cols, ['--help']);
    const slow = onTty(cols, ['--help', '--']);
    t.is(fast.status, 0, `${cols} columns: ${fast.stderr}`);
    t.is(fast.stdout, slow.stdout, `${cols} columns`);
    if (cols >= 100) t.is(fast.stdout, TOP_HELP.replace(/\n/g, '\r\n'), `${cols} columns: the static text`);
  }
  t.not(onTty(60, ['--help']).stdout, TOP_HELP.replace(/\n/g, '\r\n'), '60 columns wraps otherwise (the check proves nothing otherwise)');
});

test('status: the fast path prints, fails and exits exactly as the yargs path', (t) => {
  if (!needTools(t, 'tar')) return;
  const img = image();
  const notDisk = join(work, 'not-a-disk');
  writeFileSync(notDisk, 'hello\n');
  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, [bundle(), ...args], { encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const cases = [
    ['status', img],
    ['status', img, '--booted-label', 'psyopsOS-A'],
    ['status', img, '--booted-label=psyopsOS-B'],
    ['status', img, '--booted-label', 'psyopsOS-B', '--json'],
    ['status', img, '--json', '-q'],
    ['status', join(work, 'missing.img')],
    ['status', notDisk, '--booted-label', 'psyopsOS-A'],
    ['status', work],
  ];
  for (const args of cases) {
    // A trailing `--` is not in the fast path's grammar: the same command through yargs.
    const slow = run([...args, '--']);
    const fast = run(args);
    t.deepEqual(fast, slow, args.join(' '));
  }
  t.is(run(['status', img, '--booted-label', 'psyopsOS-B']).code, 1, 'B is not the default: exit 1');
  // A bad SOURCE_DATE_EPOCH is bad usage on every path.
  const sde = spawnSync(process.execPath, [bundle(), 'status', img], { encoding: 'utf8', env: { ...process.env, SOURCE_DATE_EPOCH: 'x' } });
  t.is(sde.status, 2);
});
