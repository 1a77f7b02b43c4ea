/**
 * Issue 27.9: README lines pasted by a fresh user. Each block is taken from README.md as written
 * and run by bash (-e) with a fresh, empty HOME (no ~/.local/bin, nothing on PATH but node and
 * the system's bin directories):
 * - "Running the CLI": bundle, install into ~/.local/bin, `diskimg --version`, completion;
 * - the builder half of "The update repository" loop: keygen, publish into a repository that
 *   does not exist yet, create from the published files, publish the next release, and
 *   upstream's minisign verifying the pointer.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot, runCli } from './helpers/cli.js';
import { needTools } from './helpers/skip.js';

const work = mkdtempSync(join(tmpdir(), 'readme-fresh-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const README = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const BASE_PATH = `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`;

/** The first ```sh block after `marker`, its list indentation removed. */
function shBlockAfter(marker: string): string {
  const at = README.indexOf(marker);
  if (at < 0) throw new Error(`README.md: no "${marker}"`);
  const m = /^( *)```sh\n([\s\S]*?)^ *```$/m.exec(README.slice(at));
  if (!m) throw new Error(`README.md: no sh block after "${marker}"`);
  return m[2]!.split('\n').map((l) => l.slice(m[1]!.length)).join('\n');
}

function bash(script: string, cwd: string, env: Record<string, string>) {
  return spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000, env: { LANG: 'C.UTF-8', ...env } });
}

test('README "Running the CLI" works for a user without ~/.local/bin', async (t) => {
  const home = join(work, 'home1');
  mkdirSync(home);
  const block = shBlockAfter('### Running the CLI');
  t.regex(block, /~\/\.local\/bin\/diskimg/);
  const r = bash(block, repoRoot, { HOME: home, PATH: BASE_PATH });
  t.is(r.status, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /^\d+\.\d+\.\d+/m, 'diskimg --version');
  t.true(existsSync(join(home, '.local', 'bin', 'diskimg')));
  t.regex(readFileSync(join(home, '.bashrc'), 'utf8'), /diskimg/);
});

test('README update-repository loop, builder half: pasted as written into a fresh HOME, the repository made by the first publish', async (t) => {
  if (!needTools(t, 'tar', 'minisign')) return;
  const home = join(work, 'home2');
  const bin = join(work, 'bin');
  mkdirSync(home);
  mkdirSync(bin);
  // `diskimg` on PATH: the CLI from source.
  const tsx = fileURLToPath(import.meta.resolve('tsx'));
  writeFileSync(join(bin, 'diskimg'), `#!/bin/sh\nexec "${process.execPath}" --import="${tsx}" --conditions=source "${join(repoRoot, 'packages', 'cli', 'src', 'run.ts')}" "$@"\n`);
  chmodSync(join(bin, 'diskimg'), 0o755);
  // The user's own tarballs (the demo's).
  for (const [dir, name] of [['os', 'psyopsOS.tar'], ['esp', 'psyopsESP.tar']]) {
    t.is(spawnSync('tar', ['-C', join(repoRoot, 'fixtures', 'demo', dir!), '-cf', join(home, name!), '.']).status, 0);
  }
  const block = shBlockAfter('The whole loop, builder to node');
  const builder = block.slice(0, block.indexOf('\n# node'));
  t.regex(builder, /diskimg publish --repo ~\/deaddrop/);
  t.false(existsSync(join(home, 'deaddrop')));
  const r = bash(builder, home, { HOME: home, PATH: `${bin}:${BASE_PATH}` });
  t.is(r.status, 0, r.stdout + r.stderr);
  for (const f of ['psyopsOS.x86_64.20261201-000000.tar', 'psyopsOS.x86_64.latest.tar.minisig', 'psyopsESP.x86_64-uefi.latest.tar.minisig']) t.true(existsSync(join(home, 'deaddrop', f)), f);
  const show = await runCli(['show', join(home, 'node.img')]);
  t.is(show.code, 0, show.stderr);
  t.regex(show.stdout, /version=20261101-000000/);
});

test('publish makes a repository directory that does not exist yet (nested), and refuses a --repo that is a file', async (t) => {
  const key = join(work, 'k');
  t.is((await runCli(['keygen', '--out', key])).code, 0);
  const tar = join(work, 'os-pub.tar');
  t.is(spawnSync('tar', ['-C', join(repoRoot, 'fixtures', 'demo', 'os'), '-cf', tar, '.']).status, 0);
  const repo = join(work, 'new', 'nested', 'repo');
  const r = await runCli(['publish', '--repo', repo, '--os-tar', tar, '--seckey', `${key}.key`, '--version', '20261101-000000']);
  t.is(r.code, 0, r.stderr);
  t.true(existsSync(join(repo, 'psyopsOS.x86_64.latest.tar.minisig')));
  const file = join(work, 'a-file');
  writeFileSync(file, 'x');
  const bad = await runCli(['publish', '--repo', file, '--os-tar', tar, '--seckey', `${key}.key`, '--version', '20261101-000000']);
  t.is(bad.code, 1);
  t.is(bad.stderr, `diskimg: --repo ${file}: not a directory\n`);
  // a refused publish (bad key) makes no directory
  const none = join(work, 'never');
  const refused = await runCli(['publish', '--repo', none, '--os-tar', tar, '--seckey', join(work, 'missing.key'), '--version', '20261101-000000']);
  t.is(refused.code, 1);
  t.false(existsSync(none));
});
