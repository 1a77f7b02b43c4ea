/**
 * Issue 13, the one-file bundle: `scripts/bundle.mjs` (pnpm run bundle) is reproducible (two
 * builds, same bytes), says its version and commit, and runs alone in an empty directory outside
 * the repository (no node_modules above it): --version, show, ls, cat, update of an image file
 * with --booted-label, mark-good. The images and keys are made by the CLI from the repository.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { repoRoot, runCli } from './helpers/cli.js';
import { needTools, skipOrFail } from './helpers/skip.js';
import { have, writeOsTar } from './helpers/update.js';

const work = mkdtempSync(join(tmpdir(), 'bundle-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const ENV = { SOURCE_DATE_EPOCH: '1764374400' };
const SMALL = ['--esp-size', '40M', '--secret-size', '8M', '--slot-size', '32M', '--seed', 'bundle'];

function bundle(out: string): void {
  const b = spawnSync(process.execPath, [join(repoRoot, 'scripts/bundle.mjs'), '--outfile', out, '--quiet'], { cwd: repoRoot, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`bundle: ${b.stderr}`);
}

/** No node_modules in DIR or any directory above it. */
function noNodeModulesAbove(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules'))) return false;
    if (dirname(d) === d) return true;
  }
}

test('the bundle is reproducible and says its version and commit', (t) => {
  const a = join(work, 'a', 'diskimg.mjs');
  const b = join(work, 'b', 'diskimg.mjs');
  bundle(a);
  bundle(b);
  t.true(readFileSync(a).equals(readFileSync(b)), 'two builds of the same commit differ');
  const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).stdout.trim();
  const v = spawnSync(process.execPath, [a, '--version'], { encoding: 'utf8' });
  t.is(v.status, 0, v.stderr);
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'packages/cli/package.json'), 'utf8')).version as string;
  t.is(v.stdout, `${pkg} (git ${head}${/-dirty/.test(v.stdout) ? '-dirty' : ''})\n`);
  t.true(readFileSync(a, 'utf8').startsWith('#!/usr/bin/env node\n'));
  const direct = spawnSync(a, ['--version'], { encoding: 'utf8' });
  t.is(direct.stdout, v.stdout, 'runs as ./diskimg.mjs too (shebang, mode 755)');
});

test('the bundle alone in an empty directory: --version, show, ls, cat, update, mark-good', async (t) => {
  if (!needTools(t, 'sfdisk', 'tar')) return;
  // Inputs made with the CLI from the repository.
  const ok = async (args: string[]) => {
    const r = await runCli(args, { env: ENV });
    if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')}: ${r.stderr}`);
  };
  await ok(['keygen', '--out', join(work, 'k')]);
  const sign = (f: string, v: string) =>
    ok(['sign', f, '--seckey', join(work, 'k.key'), '--trusted', 'type=psyopsOS', '--trusted', `version=${v}`, '--trusted', `filename=psyopsOS.x86_64.${v}.tar`, '--trusted', 'architecture=x86_64']);
  const v1 = writeOsTar(join(work, 'v1.tar'), { kernel: 'kernel one\n', 'etc-version': '20251129-000000' });
  const v2 = writeOsTar(join(work, 'v2.tar'), { kernel: 'kernel two\n', 'etc-version': '20251201-000000' });
  await sign(v1, '20251129-000000');
  await sign(v2, '20251201-000000');

  const elsewhere = mkdtempSync(join(tmpdir(), 'diskimg-bundle-alone-'));
  try {
    t.true(noNodeModulesAbove(elsewhere), `${elsewhere} has node_modules above it; the test proves nothing there`);
    const exe = join(elsewhere, 'diskimg.mjs');
    bundle(join(work, 'c', 'diskimg.mjs'));
    copyFileSync(join(work, 'c', 'diskimg.mjs'), exe);
    for (const f of ['v1.tar', 'v1.tar.minisig', 'v2.tar', 'v2.tar.minisig', 'k.pub']) copyFileSync(join(work, f), join(elsewhere, f));
    const run = (...args: string[]) => spawnSync(process.execPath, [exe, ...args], { cwd: elsewhere, encoding: 'utf8', env: { ...process.env, ...ENV } });
    const good = (...args: string[]) => {
      const r = run(...args);
      t.is(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    t.regex(good('--version'), /^\d+\.\d+\.\d+ \(git [0-9a-f]{40}(-dirty)?\)\n$/);
    good('create', 'x.img', '--os-tar', 'v1.tar', '--pubkey', 'k.pub', '--no-bootloader', ...SMALL);
    t.regex(good('show', 'x.img'), /psyopsOS-B/);
    t.regex(good('ls', 'x.img', 'psyopsOS-A:/'), /kernel/);
    t.is(good('cat', 'x.img', 'psyopsOS-A:/kernel'), 'kernel one\n');
    const u = JSON.parse(good('update', 'x.img', '--slot', 'inactive', '--os-tar', 'v2.tar', '--pubkey', 'k.pub', '--booted-label', 'psyopsOS-A', '--json', '--quiet'));
    t.is(u.target.label, 'psyopsOS-B');
    t.true(u.verified);
    t.is(good('cat', 'x.img', 'psyopsOS-B:/kernel'), 'kernel two\n');
    const st = run('status', 'x.img', '--booted-label', 'psyopsOS-B');
    t.regex(st.stdout, /psyopsOS-B .*TRIAL/, st.stderr);
    good('mark-good', 'x.img', '--booted-label', 'psyopsOS-B');
    t.regex(good('status', 'x.img', '--booted-label', 'psyopsOS-B'), /psyopsOS-B .* ok/);
  } finally {
    rmSync(elsewhere, { recursive: true, force: true });
  }
});
