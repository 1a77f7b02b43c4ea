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
 *   --help run shows it does).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './helpers/cli.js';
import { needTools } from './helpers/skip.js';

const work = mkdtempSync(join(tmpdir(), 'startup-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

test('command modules import their package code in the handler, not at the top', (t) => {
  const dir = join(repoRoot, 'packages/cli/src/commands');
  const costly = /^(@diskimg\/(ab|diskimage)|node:(crypto|child_process|http|https|tls|zlib|net))$/;
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
  t.is(s.stdout, 'psyopsOS-A - ok\n');
  t.deepEqual(never.filter((m) => s.modules.has(m)), [], 'status');
  // The control: the yargs path does load assert, so its absence above means something.
  const h = loaded(['--help']);
  t.is(h.status, 0);
  t.true(h.modules.has('assert'), '--help (yargs) should load assert; the probe proves nothing otherwise');
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
