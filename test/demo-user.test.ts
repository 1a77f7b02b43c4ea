/**
 * What a new user meets in the demo (issue 26.22, 26.23).
 *
 * 26.22: a directory input (--esp-dir, --secret-dir) is read with getfattr for its extended
 * attributes. When getfattr cannot be started, whatever the reason spawn gives (ENOENT: not
 * installed; EACCES: a PATH entry the user cannot search, as with `su USER -c` keeping root's
 * PATH, or a getfattr that is not executable), the build goes on without xattrs and warns once;
 * it used to fail with "cannot read extended attributes: spawn getfattr EACCES".
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runCli } from './helpers/cli.js';
import { needTools } from './helpers/skip.js';

const work = mkdtempSync(join(tmpdir(), 'diskimg-demo-user-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

test('getfattr that cannot be started (EACCES, ENOENT) is a warning, not an error: create from --esp-dir/--secret-dir succeeds', async (t) => {
  if (!needTools(t, 'tar')) return;
  const osTar = join(work, 'os.tar');
  t.is(spawnSync('tar', ['-C', join(repoRoot, 'fixtures', 'demo', 'os'), '-cf', osTar, '.']).status, 0);
  // EACCES: a getfattr on PATH that cannot be executed (what execve says for an unsearchable PATH entry too).
  const noexec = join(work, 'noexec-bin');
  mkdirSync(noexec);
  writeFileSync(join(noexec, 'getfattr'), '#!/bin/sh\nexit 0\n');
  chmodSync(join(noexec, 'getfattr'), 0o644);
  const empty = join(work, 'empty-bin');
  mkdirSync(empty);
  for (const [why, path] of [['EACCES', noexec], ['ENOENT', empty]] as const) {
    const img = join(work, `${why}.img`);
    const r = await runCli(
      ['create', img, '--os-tar', osTar, '--esp-dir', join(repoRoot, 'fixtures', 'demo', 'esp'), '--secret-dir', join(repoRoot, 'fixtures', 'demo', 'secret'), '--no-verify', '--seed', 'x'],
      { env: { PATH: path, SOURCE_DATE_EPOCH: '1764374400' } },
    );
    t.is(r.code, 0, `${why}: ${r.stderr}`);
    t.notRegex(r.stderr, /cannot read extended attributes|internal error|\n\s+at /, why);
    t.regex(r.stderr, new RegExp(`extended attributes, ACLs and file capabilities not read \\(getfattr could not be run: ${why}`), why);
    const show = await runCli(['show', img]);
    t.is(show.code, 0, show.stderr);
  }
});

test('the same class in push: an ssh that cannot be started (EACCES, ENOENT) is one line, exit 1', async (t) => {
  const noexec = join(work, 'noexec-ssh');
  mkdirSync(noexec);
  writeFileSync(join(noexec, 'ssh'), '#!/bin/sh\nexit 0\n');
  chmodSync(join(noexec, 'ssh'), 0o644);
  const empty = join(work, 'empty-ssh');
  mkdirSync(empty);
  const tar = join(work, 'push.tar');
  writeFileSync(tar, Buffer.alloc(10240));
  writeFileSync(`${tar}.minisig`, 'untrusted comment: x\n');
  for (const [why, path] of [['EACCES', noexec], ['ENOENT', empty]] as const) {
    const r = await runCli(['push', '/dev/sdx', '--ssh', 'root@node', '--os-tar', tar], { env: { PATH: path } });
    t.is(r.code, 1, `${why}: ${r.stderr}`);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, new RegExp(`^diskimg: ssh: the ssh client could not be run \\(${why}`), why);
  }
});
