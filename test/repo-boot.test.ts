/**
 * The update repository end to end under QEMU + OVMF + GRUB (issue 12): the builder `publish`es
 * releases (signed with a key made by the real minisign CLI, which also verifies the published
 * pointer), a real nginx serves the directory, and the node runs exactly the README's commands:
 * `check` (exit 10) → `update --repo URL` → boot: GRUB boots the new slot with the new initramfs →
 * `check` (11: on trial) → `mark-good` → `check` (0: up to date). One boot (10–35 s).
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliResult } from './helpers/cli.js';
import { getBootFixtures, needBoot, skipReason } from './helpers/fixtures.js';
import { bootImage, parseInitReport } from './helpers/qemu.js';
import { startNginx } from './helpers/nginx.js';
import { skipOrFail } from './helpers/skip.js';
import { have } from './helpers/update.js';

const skip = skipReason() ?? (have('minisign') ? undefined : 'minisign not installed (apt-get install minisign)');
const work = mkdtempSync(join(tmpdir(), 'repo-boot-'));
const closers: (() => Promise<void>)[] = [];
test.after.always(async () => {
  for (const c of closers) await c();
  rmSync(work, { recursive: true, force: true });
});

const ENV = { SOURCE_DATE_EPOCH: '1764374400', http_proxy: '', HTTP_PROXY: '', no_proxy: '', NO_PROXY: '' };
const SMALL = ['--esp-size', '64M', '--secret-size', '16M', '--slot-size', '64M', '--seed', 'repo-boot'];
const VA = '20261101-000000';
const VB = '20261201-000000';
const ESP = '20261101-000000';

async function diskimg(t: ExecutionContext, args: string[], code = 0): Promise<CliResult> {
  const r = await runCli(args, { env: ENV });
  t.is(r.code, code, `diskimg ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r;
}

test.serial('publish → check (10) → update --repo over nginx → QEMU boots the new version → check (11) → mark-good → check (0)', async (t) => {
  if (!needBoot(t, skip)) return;
  const f = getBootFixtures();
  const www = join(work, 'www');
  const repo = join(www, 'deaddrop');
  mkdirSync(repo, { recursive: true });
  const nginx = await startNginx(work, www);
  if (typeof nginx === 'string') return void skipOrFail(t, nginx, { tool: 'nginx' });
  closers.push(() => nginx.stop());
  const url = `http://127.0.0.1:${nginx.port}/deaddrop/`;
  const pub = join(work, 'psyops.pub');
  const key = join(work, 'psyops.key');
  execFileSync('minisign', ['-G', '-W', '-p', pub, '-s', key], { stdio: 'ignore' });

  // ---- builder: the first release and the ESP, an image made from them, then a newer release ----
  await diskimg(t, ['publish', '--repo', repo, '--os-tar', f.osTarA, '--seckey', key, '--version', VA, '--trusted', 'kernel=6.1', 'alpine=3.20']);
  await diskimg(t, ['publish', '--repo', repo, '--esp-tar', f.espTar, '--seckey', key, '--version', ESP]);
  const osA = join(repo, `psyopsOS.x86_64.${VA}.tar`);
  const esp = join(repo, `psyopsESP.x86_64-uefi.${ESP}.tar`);
  const img = join(work, 'node.img');
  await diskimg(t, ['create', img, '--os-tar', osA, '--esp-tar', esp, '--pubkey', pub, ...SMALL]);
  const p = await diskimg(t, ['publish', '--repo', repo, '--os-tar', f.osTarB, '--seckey', key, '--version', VB, '--trusted', 'kernel=6.1', 'alpine=3.20', '--keep', '2', '--json']);
  t.is(p.json.previous, VA);
  // The real minisign verifies the new tarball against the pointer (the pointer is its signature).
  const m = spawnSync('minisign', ['-V', '-p', pub, '-m', join(repo, `psyopsOS.x86_64.${VB}.tar`), '-x', join(repo, 'psyopsOS.x86_64.latest.tar.minisig')], { encoding: 'utf8' });
  t.is(m.status, 0, m.stdout + m.stderr);
  t.regex(m.stdout, new RegExp(`Trusted comment: type=psyopsOS filename=psyopsOS.x86_64.${VB}.tar version=${VB} architecture=x86_64 kernel=6.1 alpine=3.20`));

  // ---- node: check, update, boot, confirm ----
  const c1 = await diskimg(t, ['check', img, '--repo', url, '--pubkey', pub, '--booted-label', 'psyopsOS-A'], 10);
  t.regex(c1.stdout, new RegExp(`update available: ${VB} \\(booted ${VA}\\)`));
  t.regex(c1.stdout, new RegExp(`esp: ${ESP}, repository ${ESP}: up to date`));
  const u = await diskimg(t, ['update', img, '--slot', 'inactive', '--repo', url, '--pubkey', pub, '--booted-label', 'psyopsOS-A', '--json']);
  t.is(u.json.release.filename, `psyopsOS.x86_64.${VB}.tar`);
  t.true(u.json.release.verified);
  t.is(u.json.target.label, 'psyopsOS-B');
  t.is(u.json.newVersion, VB);
  t.is(u.json.armed.trial.label, 'psyopsOS-B');
  t.deepEqual(u.json.warnings, []);

  const boot = await bootImage(img);
  t.log(`boot: ${(boot.durationMs / 1000).toFixed(1)} s`);
  const tail = boot.log.split('\n').slice(-25).join('\n');
  t.false(boot.timedOut || boot.panicked, tail);
  const rep = parseInitReport(boot.log);
  t.is(rep.psyopsos, 'psyopsOS-B', tail);
  t.is(rep.version, f.versionB, tail); // B's initramfs, from the tarball update --repo wrote

  // GRUB counted the boot (save_env); the slot is on trial until mark-good.
  const st = await diskimg(t, ['status', img, '--booted-label', 'psyopsOS-B'], 1);
  t.regex(st.stdout, new RegExp(`psyopsOS-B ${VB} TRIAL 2/3`));
  const c2 = await diskimg(t, ['check', img, '--repo', url, '--pubkey', pub, '--booted-label', 'psyopsOS-B'], 11);
  t.regex(c2.stdout, /boot pending: psyopsOS-B is on trial/);
  await diskimg(t, ['mark-good', img, '--booted-label', 'psyopsOS-B']);
  const c3 = await diskimg(t, ['check', img, '--repo', url, '--pubkey', pub, '--booted-label', 'psyopsOS-B'], 0);
  t.regex(c3.stdout, new RegExp(`up to date: ${VB}`));
  t.regex(c3.stdout, new RegExp(`other: psyopsOS-A ${VA}`));
});
