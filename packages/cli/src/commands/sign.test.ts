import test from 'ava';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../../../test/helpers/cli.js';
import { needTools } from '../../../../test/helpers/skip.js';

// diskimg keygen / sign / verify end to end through the CLI, cross-checked with the minisign CLI.

const dir = mkdtempSync(join(tmpdir(), 'cli-sign-test-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const p = (f: string) => join(dir, f);

test.serial('keygen → sign --trusted → verify (text and --json) → minisign -V agrees', async (t) => {
  const k = await runCli(['keygen', '--out', p('key'), '--json']);
  t.is(k.code, 0, k.stderr);
  t.is(k.json.publicKeyPath, p('key.pub'));
  t.true(existsSync(p('key.key')));

  writeFileSync(p('psyopsOS.tar'), Buffer.alloc(200_000, 7));
  const s = await runCli(['sign', p('psyopsOS.tar'), '--seckey', p('key.key'), '--trusted', 'type=psyopsOS', '--trusted', 'version=20250308-040402']);
  t.is(s.code, 0, s.stderr);
  t.regex(readFileSync(p('psyopsOS.tar.minisig'), 'utf8'), /^untrusted comment: .*\n.*\ntrusted comment: type=psyopsOS version=20250308-040402\n/);

  const v = await runCli(['verify', p('psyopsOS.tar'), '--pubkey', p('key.pub')]);
  t.is(v.code, 0, v.stderr);
  t.regex(v.stdout, /version: 20250308-040402/);
  const vj = await runCli(['verify', p('psyopsOS.tar'), '--pubkey', p('key.pub'), '--json']);
  t.is(vj.code, 0, vj.stderr);
  t.deepEqual(vj.json.fields, { type: 'psyopsOS', version: '20250308-040402' });
  t.is(vj.json.keyId, k.json.keyId);
  t.is(vj.json.algorithm, 'ED');

  if (!needTools(t, 'minisign')) return; // the cross-check with the real minisign CLI
  const ms = spawnSync('minisign', ['-V', '-p', p('key.pub'), '-m', p('psyopsOS.tar')], { encoding: 'utf8' });
  t.is(ms.status, 0, ms.stderr);
  // And a minisign signature (given with --sig) verifies through the CLI.
  spawnSync('minisign', ['-S', '-s', p('key.key'), '-m', p('psyopsOS.tar'), '-x', p('by-minisign.sig'), '-t', 'type=psyopsESP']);
  const v2 = await runCli(['verify', p('psyopsOS.tar'), '--pubkey', p('key.pub'), '--sig', p('by-minisign.sig'), '--json']);
  t.is(v2.code, 0, v2.stderr);
  t.deepEqual(v2.json.fields, { type: 'psyopsESP' });
});

test.serial('failures: tampered file, missing signature, overwrite refused, bad --trusted — one line on stderr', async (t) => {
  appendFileSync(p('psyopsOS.tar'), 'x');
  const v = await runCli(['verify', p('psyopsOS.tar'), '--pubkey', p('key.pub')]);
  t.is(v.code, 1);
  t.is(v.stdout, '');
  t.regex(v.stderr, /^diskimg: .*psyopsOS\.tar: signature verification failed .*\n$/);

  const m = await runCli(['verify', p('nothing.tar'), '--pubkey', p('key.pub')]);
  t.is(m.code, 1);
  t.regex(m.stderr, /^diskimg: .*nothing\.tar\.minisig: no such signature file; .*\n$/);

  const k = await runCli(['keygen', '--out', p('key')]);
  t.is(k.code, 1);
  t.regex(k.stderr, /already exists; refusing to overwrite/);

  const s = await runCli(['sign', p('psyopsOS.tar'), '--seckey', p('key.key'), '--trusted', 'novalue']);
  t.is(s.code, 2);
  t.regex(s.stderr, /--trusted "novalue": expected KEY=VALUE/);
});
