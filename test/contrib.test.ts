/**
 * The node's service files in contrib/: the shell scripts parse (`sh -n`), the systemd units pass
 * `systemd-analyze verify`, and the scripts do what they say against a real repository directory
 * written by `publish`: diskimg-update checks, writes the newer OS into the inactive slot and arms
 * a trial, then refuses to update again while that trial runs; diskimg-health confirms the trial
 * slot only when the health command passes; diskimg-serve serves /health (curl) and stops on SIGTERM.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { repoRoot, runCli } from './helpers/cli.js';
import { needTools, skipOrFail } from './helpers/skip.js';

const work = mkdtempSync(join(tmpdir(), 'contrib-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const CONTRIB = join(repoRoot, 'contrib');
const ENV = { SOURCE_DATE_EPOCH: '1764374400' };
const DISKIMG = `${process.execPath} --import=tsx --conditions=source ${join(repoRoot, 'packages/cli/src/run.ts')}`;
const have = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;

async function ok(args: string[]): Promise<string> {
  const r = await runCli(args, { env: ENV });
  if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('the scripts parse with sh -n; the systemd units pass systemd-analyze verify', (t) => {
  for (const f of ['diskimg-update', 'diskimg-health', 'diskimg-serve', 'openrc/diskimg-health', 'openrc/diskimg-serve', 'openrc/diskimg-update.periodic', 'openrc/diskimg.confd']) {
    const r = spawnSync('sh', ['-n', join(CONTRIB, f)], { encoding: 'utf8' });
    t.is(r.status, 0, `${f}: ${r.stderr}`);
  }
  if (!needTools(t, 'systemd-analyze')) return;
  // The units name the installed path of the scripts; point them at the repository's copies.
  const units = join(work, 'units');
  mkdirSync(units);
  for (const f of readdirSync(join(CONTRIB, 'systemd'))) {
    writeFileSync(join(units, f), readFileSync(join(CONTRIB, 'systemd', f), 'utf8').replaceAll('/usr/libexec/diskimg/', `${CONTRIB}/`));
  }
  const r = spawnSync('systemd-analyze', ['verify', ...readdirSync(units).map((f) => join(units, f))], { encoding: 'utf8' });
  t.is(r.status, 0, r.stdout + r.stderr);
});

function script(name: string, env: Record<string, string>): { code: number | null; out: string } {
  const r = spawnSync('sh', [join(CONTRIB, name)], { encoding: 'utf8', env: { ...process.env, ...ENV, DISKIMG, DISKIMG_MAX_DELAY: '0', DISKIMG_HEALTH_DELAY: '0', ...env } });
  return { code: r.status, out: r.stdout + r.stderr };
}

test.serial('diskimg-update applies a newer release once, not again during the trial; diskimg-health confirms only a healthy trial', async (t) => {
  const os = join(work, 'os');
  mkdirSync(os);
  writeFileSync(join(os, 'kernel'), 'k1');
  writeFileSync(join(os, 'initramfs'), 'i1');
  const v1 = join(work, 'v1.tar');
  spawnSync('tar', ['-C', os, '-cf', v1, '.']);
  writeFileSync(join(os, 'kernel'), 'k2');
  const v2 = join(work, 'v2.tar');
  spawnSync('tar', ['-C', os, '-cf', v2, '.']);
  await ok(['keygen', '--out', join(work, 'k')]);
  const repo = join(work, 'repo');
  mkdirSync(repo);
  const pub = join(work, 'k.pub');
  await ok(['publish', '--repo', repo, '--os-tar', v1, '--seckey', join(work, 'k.key'), '--version', '20251101-000000']);
  const img = join(work, 'node.img');
  await ok(['sign', v1, '--seckey', join(work, 'k.key'), '--trusted', 'type=psyopsOS', 'filename=psyopsOS.x86_64.20251101-000000.tar', 'version=20251101-000000', 'architecture=x86_64']);
  await ok(['create', img, '--os-tar', v1, '--pubkey', pub, '--no-bootloader', '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '16M']);
  const env = { DISKIMG_REPO: repo, DISKIMG_PUBKEY: pub, DISKIMG_DISK: `${img} --booted-label psyopsOS-A` };

  const upToDate = script('diskimg-update', env);
  t.is(upToDate.code, 0, upToDate.out);
  t.notRegex(upToDate.out, /diskimg-update: update: /);

  await ok(['publish', '--repo', repo, '--os-tar', v2, '--seckey', join(work, 'k.key'), '--version', '20251201-000000']);
  const first = script('diskimg-update', env);
  t.is(first.code, 0, first.out);
  t.regex(first.out, /diskimg-update: update: /);
  const trial = await runCli(['status', img, '--booted-label', 'psyopsOS-B']);
  t.is(trial.code, 1, 'status exits non-zero while the slot is on trial');
  t.regex(trial.stdout, /^psyopsOS-B 20251201-000000 TRIAL 3\/3/);

  // A trial is running: no second update, not a byte changed.
  const sha = () => createHash('sha256').update(readFileSync(img)).digest('hex');
  const before = sha();
  const second = script('diskimg-update', { ...env, DISKIMG_DISK: `${img} --booted-label psyopsOS-B` });
  t.is(second.code, 0, second.out);
  t.regex(second.out, /a boot is pending/);
  t.is(sha(), before);

  // Health: a failing command leaves the trial; a passing one confirms B.
  const healthEnv = { DISKIMG_DISK: `${img} --booted-label psyopsOS-B` };
  const sick = script('diskimg-health', { ...healthEnv, DISKIMG_HEALTH_CMD: 'false' });
  t.is(sick.code, 1, sick.out);
  t.is(sha(), before);
  const well = script('diskimg-health', { ...healthEnv, DISKIMG_HEALTH_CMD: 'true' });
  t.is(well.code, 0, well.out);
  t.regex(well.out, /mark-good/);
  t.regex(await ok(['status', img, '--booted-label', 'psyopsOS-B']), /psyopsOS-B 20251201-000000 ok/);

  // A repository rolled back to the older release (issue 26.10): exit 13, logged, nothing written.
  const old = join(work, 'old');
  mkdirSync(old);
  await ok(['publish', '--repo', old, '--os-tar', v1, '--seckey', join(work, 'k.key'), '--version', '20251101-000000']);
  const confirmed = sha();
  const back = script('diskimg-update', { ...env, DISKIMG_REPO: old, DISKIMG_DISK: `${img} --booted-label psyopsOS-B` });
  t.is(back.code, 13, back.out);
  t.regex(back.out, /older than what this node runs/);
  t.is(sha(), confirmed);
});

test.serial('diskimg-update and the ESP: exit 12 is only logged by default; with DISKIMG_UPDATE_ESP=yes the signed ESP update is applied, forward only, once', async (t) => {
  const dir = join(work, 'esp-policy');
  mkdirSync(join(dir, 'os'), { recursive: true });
  writeFileSync(join(dir, 'os', 'kernel'), 'k');
  writeFileSync(join(dir, 'os', 'initramfs'), 'i');
  const osTar = join(dir, 'os.tar');
  spawnSync('tar', ['-C', join(dir, 'os'), '-cf', osTar, '.']);
  const espTars: string[] = [];
  for (const v of ['1', '2']) {
    const d = join(dir, `esp${v}`);
    mkdirSync(join(d, 'EFI', 'BOOT'), { recursive: true });
    writeFileSync(join(d, 'EFI', 'BOOT', 'BOOTX64.EFI'), `grub ${v}`);
    espTars.push(join(dir, `esp${v}.tar`));
    spawnSync('tar', ['-C', d, '-cf', espTars.at(-1)!, '.']);
  }
  await ok(['keygen', '--out', join(dir, 'k')]);
  const pub = join(dir, 'k.pub');
  const repo = join(dir, 'repo');
  mkdirSync(repo);
  const E1 = '20251101-000000';
  const E2 = '20251201-000000';
  await ok(['publish', '--repo', repo, '--os-tar', osTar, '--seckey', join(dir, 'k.key'), '--version', E1]);
  await ok(['publish', '--repo', repo, '--esp-tar', espTars[0]!, '--seckey', join(dir, 'k.key'), '--version', E1]);
  const img = join(dir, 'node.img');
  await ok(['create', img, '--pubkey', pub, '--os-tar', join(repo, `psyopsOS.x86_64.${E1}.tar`), '--esp-tar', join(repo, `psyopsESP.x86_64-uefi.${E1}.tar`), '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '16M']);
  await ok(['publish', '--repo', repo, '--esp-tar', espTars[1]!, '--seckey', join(dir, 'k.key'), '--version', E2]);
  const env = { DISKIMG_REPO: repo, DISKIMG_PUBKEY: pub, DISKIMG_DISK: img }; // an image file: the slot GRUB boots next is the booted one
  const espVersion = async () => (await runCli(['show', img, '--json'], { env: ENV })).json.esp?.signature?.version ?? JSON.stringify((await runCli(['show', img, '--json'], { env: ENV })).json.esp);
  const sha = () => createHash('sha256').update(readFileSync(img)).digest('hex');

  // Default: only logged, not a byte changed.
  const before = sha();
  const off = script('diskimg-update', env);
  t.is(off.code, 0, off.out);
  t.regex(off.out, /only the ESP is behind: run diskimg update-esp --repo by hand \(or set DISKIMG_UPDATE_ESP=yes\)/);
  t.is(sha(), before);

  // Opted in: update-esp --repo runs (signed, the latest), then check says up to date.
  const on = script('diskimg-update', { ...env, DISKIMG_UPDATE_ESP: 'yes', DISKIMG_HTTP_OPTS: '--http-timeout 60' });
  t.is(on.code, 0, on.out);
  t.regex(on.out, /diskimg-update: update-esp: [^]*updated the ESP on .*: 20251101-000000 -> 20251201-000000/);
  t.regex(JSON.stringify(await espVersion()), /20251201-000000/);
  const again = script('diskimg-update', { ...env, DISKIMG_UPDATE_ESP: 'yes' });
  t.is(again.code, 0, again.out);
  t.notRegex(again.out, /update-esp:/);
  t.regex(again.out, /\(exit 0\)/);

  // A failed update-esp is the script's failure (exit 1, logged), never "exit 0".
  await ok(['publish', '--repo', repo, '--esp-tar', espTars[0]!, '--seckey', join(dir, 'k.key'), '--version', '20251215-000000']);
  writeFileSync(join(repo, 'psyopsESP.x86_64-uefi.20251215-000000.tar'), 'not the signed bytes');
  const bad = script('diskimg-update', { ...env, DISKIMG_UPDATE_ESP: 'yes' });
  t.is(bad.code, 1, bad.out);
  t.regex(bad.out, /update-esp failed \(exit 1\): diskimg: /);
});

test.serial('diskimg-update: a failed OS update exits with its code (it exited 0: $? after an if is 0)', async (t) => {
  const dir = join(work, 'os-fail');
  mkdirSync(join(dir, 'os'), { recursive: true });
  writeFileSync(join(dir, 'os', 'kernel'), 'k');
  writeFileSync(join(dir, 'os', 'initramfs'), 'i');
  const osTar = join(dir, 'os.tar');
  spawnSync('tar', ['-C', join(dir, 'os'), '-cf', osTar, '.']);
  await ok(['keygen', '--out', join(dir, 'k')]);
  const repo = join(dir, 'repo');
  mkdirSync(repo);
  await ok(['publish', '--repo', repo, '--os-tar', osTar, '--seckey', join(dir, 'k.key'), '--version', '20251101-000000']);
  const img = join(dir, 'node.img');
  await ok(['create', img, '--pubkey', join(dir, 'k.pub'), '--os-tar', join(repo, 'psyopsOS.x86_64.20251101-000000.tar'), '--no-bootloader', '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '16M']);
  await ok(['publish', '--repo', repo, '--os-tar', osTar, '--seckey', join(dir, 'k.key'), '--version', '20251201-000000']);
  writeFileSync(join(repo, 'psyopsOS.x86_64.20251201-000000.tar'), 'not the signed bytes');
  const r = script('diskimg-update', { DISKIMG_REPO: repo, DISKIMG_PUBKEY: join(dir, 'k.pub'), DISKIMG_DISK: `${img} --booted-label psyopsOS-A` });
  t.is(r.code, 1, r.out);
  t.regex(r.out, /update failed \(exit 1\): diskimg: /);
});

test.serial('diskimg-serve: the settings reach diskimg serve; /health answers (curl); SIGTERM through the exec ends it with 0', async (t) => {
  if (!needTools(t, 'curl')) return;
  const dir = join(work, 'serve');
  mkdirSync(dir);
  mkdirSync(join(dir, 'os'));
  writeFileSync(join(dir, 'os', 'kernel'), 'k');
  writeFileSync(join(dir, 'os', 'initramfs'), 'i');
  const tar = join(dir, 'os.tar');
  spawnSync('tar', ['-C', join(dir, 'os'), '-cf', tar, '.']);
  const img = join(dir, 'node.img');
  await ok(['create', img, '--os-tar', tar, '--no-verify', '--no-bootloader', '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '16M']);
  const child = spawn('sh', [join(CONTRIB, 'diskimg-serve')], {
    env: { ...process.env, ...ENV, DISKIMG, DISKIMG_DISK: `${img} --booted-label psyopsOS-A`, DISKIMG_SERVE_LISTEN: '127.0.0.1:0' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString('utf8');
      const m = /on (http:\/\/\S+\/) /.exec(err);
      if (m) resolve(m[1]!);
    });
    void exit.then((c) => reject(new Error(`diskimg-serve exited ${c}: ${err}`)));
  });
  t.regex(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const r = spawnSync('curl', ['-sS', '-w', '\n%{http_code}', `${url}health`], { encoding: 'utf8' });
  t.regex(r.stdout, /\n200$/, r.stderr);
  t.like(JSON.parse(r.stdout.slice(0, r.stdout.lastIndexOf('\n'))), { state: 'confirmed', booted: { label: 'psyopsOS-A' } });
  child.kill('SIGTERM');
  t.is(await exit, 0, err);
});
