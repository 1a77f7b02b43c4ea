/**
 * What a new user meets in the demo (issue 26.22, 26.23; 26.23 at the end).
 *
 * 26.22: a directory input (--esp-dir, --secret-dir) is read with getfattr for its extended
 * attributes. When getfattr cannot be started, whatever the reason spawn gives (ENOENT: not
 * installed; EACCES: a PATH entry the user cannot search, as with `su USER -c` keeping root's
 * PATH, or a getfattr that is not executable), the build goes on without xattrs and warns once;
 * it used to fail with "cannot read extended attributes: spawn getfattr EACCES".
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  // push reads its (required) --pubkey before ssh is started
  t.is((await runCli(['keygen', '--out', join(work, 'push-key')])).code, 0);
  for (const [why, path] of [['EACCES', noexec], ['ENOENT', empty]] as const) {
    const r = await runCli(['push', '/dev/sdx', '--ssh', 'root@node', '--os-tar', tar, '--pubkey', join(work, 'push-key.pub')], { env: { PATH: path } });
    t.is(r.code, 1, `${why}: ${r.stderr}`);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, new RegExp(`^diskimg: ssh: the ssh client could not be run \\(${why}`), why);
  }
});

/**
 * 26.23: the demo's slot carries a real SquashFS (fixtures/demo/os/squashfs, made by
 * fixtures/demo/make-squashfs.sh), so `show` prints the OS line instead of
 * "os: ERROR psyopsOS-A:/squashfs: not a SquashFS image", and `ls …/squashfs!/etc` and
 * `packages` work. The demo script itself is run (from source, its setup skipped).
 */
test('the demo: show prints no ERROR line; ls through /squashfs! and packages work; unsquashfs agrees with the committed image', async (t) => {
  if (!needTools(t, 'tar', 'unsquashfs', 'sha256sum')) return;
  const sq = join(repoRoot, 'fixtures', 'demo', 'os', 'squashfs');
  const sum = spawnSync('sha256sum', [sq], { encoding: 'utf8' }).stdout.split(' ')[0];
  t.is(`${sum} os/squashfs\n`, readFileSync(join(repoRoot, 'fixtures', 'demo', 'squashfs.sha256'), 'utf8'), 'fixtures/demo/os/squashfs is not what make-squashfs.sh recorded');
  for (const f of ['etc/os-release', 'lib/apk/db/installed']) {
    t.is(spawnSync('unsquashfs', ['-cat', sq, f], { encoding: 'utf8' }).stdout, readFileSync(join(repoRoot, 'fixtures', 'demo', 'squashfs-root', f), 'utf8'), f);
  }
  const out = join(work, 'demo-out');
  const r = spawnSync('bash', ['scripts/demo.sh'], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, DEMO_OUT: out, DEMO_SKIP_SETUP: '1', DISKIMG_CLI: `${process.execPath} --import=tsx --conditions=source packages/cli/src/run.ts` },
  });
  t.is(r.status, 0, r.stderr);
  t.notRegex(r.stdout + r.stderr, /ERROR/);
  t.regex(r.stdout, /^ {4}os: Alpine Linux v3\.20 \(diskimg demo\) \(VERSION_ID 3\.20\.3\), 3 packages$/m);
  t.is(r.stdout.match(/^ {4}os: Alpine/gm)?.length, 2, 'both slots');
  t.regex(r.stdout, / os-release\n/);
  t.regex(r.stdout, /^busybox 1\.36\.1-r29$/m);
});

/**
 * 27.8: docs/try-qemu.md's script is not booted here (the boot tests own QEMU boots); it must
 * parse, reuse test/fixtures/build.sh, and the doc must name it. shellcheck too, where installed.
 */
test('scripts/demo-qemu.sh parses (bash -n; shellcheck when installed) and docs/try-qemu.md runs it', (t) => {
  const script = join(repoRoot, 'scripts', 'demo-qemu.sh');
  const n = spawnSync('bash', ['-n', script], { encoding: 'utf8' });
  t.is(n.status, 0, n.stderr);
  const text = readFileSync(script, 'utf8');
  t.regex(text, /bash test\/fixtures\/build\.sh /);
  t.regex(text, /fixtures\/demo\/os\/squashfs/);
  t.regex(readFileSync(join(repoRoot, 'docs', 'try-qemu.md'), 'utf8'), /bash scripts\/demo-qemu\.sh/);
  if (spawnSync('sh', ['-c', 'command -v shellcheck']).status === 0) {
    const sc = spawnSync('shellcheck', [script], { encoding: 'utf8' });
    t.is(sc.status, 0, sc.stdout);
  } else t.log('shellcheck not installed: only bash -n ran');
});
