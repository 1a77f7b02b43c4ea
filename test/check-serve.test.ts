/**
 * Issues 26.10, 27.3, 27.6: `check`, `serve` and `status` share one decision (packages/ab/src/
 * decision.ts), and the commands our messages suggest work when pasted. On image files with a
 * repository directory written by `publish`; `serve` queried with real curl; GRUB's fall-back
 * record written by grub-editenv and mtools; every suggested command is run by `sh` as printed
 * (a shell function `diskimg` runs this checkout's CLI; DISK is filled in where the hint asks
 * for the disk).
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runCli, type CliResult } from './helpers/cli.js';
import { needTools, skipOrFail } from './helpers/skip.js';

const work = mkdtempSync(join(tmpdir(), 'check-serve-'));
const children = new Set<ChildProcess>();
test.after.always(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});
const A = 'psyopsOS-A';
const B = 'psyopsOS-B';
const V1 = '20251101-000000';
const V2 = '20251201-000000';
const V3 = '20260101-000000';
const ENV = { SOURCE_DATE_EPOCH: '1764374400' };
const RUN = join(repoRoot, 'packages/cli/src/run.ts');

const cli = (args: string[]): Promise<CliResult> => runCli(args, { env: ENV });
async function ok(args: string[]): Promise<CliResult> {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r;
}

/** Run a suggested command line as printed, with `diskimg` being this checkout's CLI. */
function paste(line: string): CliResult {
  const r = spawnSync('sh', ['-c', `diskimg() { "$DISKIMG_NODE" --import=tsx --conditions=source "$DISKIMG_RUN" "$@"; }\n${line}`], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, ...ENV, DISKIMG_LAST_UPDATE: '', DISKIMG_NODE: process.execPath, DISKIMG_RUN: RUN },
  });
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}
/** The command a line suggests: what follows `marker` up to the closing quote (or the end). */
function hinted(text: string, marker: string): string {
  const i = text.indexOf(marker);
  if (i < 0) throw new Error(`no "${marker}" in: ${text}`);
  const rest = text.slice(i + marker.length);
  const m = /^"([^"]+)"/.exec(rest) ?? /^(.+)$/m.exec(rest);
  return m![1]!.trim();
}

interface Setup {
  pub: string;
  key: string;
  v: Record<string, string>;
  /** OS V2 and ESP V2. */
  repo: string;
  /** OS V1 only: rolled back. */
  old: string;
  /** OS V3. */
  r3: string;
}
let setupP: Promise<Setup> | undefined;
function setup(): Promise<Setup> {
  setupP ??= (async () => {
    await ok(['keygen', '--out', join(work, 'k')]);
    const key = join(work, 'k.key');
    const os = join(work, 'os');
    mkdirSync(os);
    writeFileSync(join(os, 'initramfs'), 'i');
    const v: Record<string, string> = {};
    for (const ver of [V1, V2, V3]) {
      writeFileSync(join(os, 'kernel'), `kernel ${ver}`);
      v[ver] = join(work, `${ver}.tar`);
      spawnSync('tar', ['-C', os, '-cf', v[ver]!, '.']);
      await ok(['sign', v[ver]!, '--seckey', key, '--trusted', 'type=psyopsOS', `filename=psyopsOS.x86_64.${ver}.tar`, `version=${ver}`, 'architecture=x86_64']);
    }
    const esp = join(work, 'esp');
    mkdirSync(join(esp, 'EFI/BOOT'), { recursive: true });
    writeFileSync(join(esp, 'EFI/BOOT/BOOTX64.EFI'), 'efi');
    const espTar = join(work, 'esp.tar');
    spawnSync('tar', ['-C', esp, '-cf', espTar, '.']);
    const dirs = { repo: join(work, 'repo'), old: join(work, 'old'), r3: join(work, 'r3') };
    for (const d of Object.values(dirs)) mkdirSync(d);
    await ok(['publish', '--repo', dirs.repo, '--os-tar', v[V2]!, '--seckey', key, '--version', V2]);
    await ok(['publish', '--repo', dirs.repo, '--esp-tar', espTar, '--seckey', key, '--version', V2]);
    await ok(['publish', '--repo', dirs.old, '--os-tar', v[V1]!, '--seckey', key, '--version', V1]);
    await ok(['publish', '--repo', dirs.r3, '--os-tar', v[V3]!, '--seckey', key, '--version', V3]);
    return { pub: join(work, 'k.pub'), key, v, ...dirs };
  })();
  return setupP;
}

let imgs = 0;
/** A fresh image: both slots V1, A the confirmed default, no ESP payload (so no ESP version). */
async function image(): Promise<string> {
  const s = await setup();
  const base = join(work, 'base.img');
  if (imgs === 0) await ok(['create', base, '--os-tar', s.v[V1]!, '--pubkey', s.pub, '--no-bootloader', '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '16M', '--seed', 'cs']);
  const img = join(work, `d${imgs++}.img`);
  copyFileSync(base, img);
  return img;
}

interface Served {
  url: string;
  stop: () => Promise<void>;
}
function serve(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, ['--import=tsx', '--conditions=source', RUN, 'serve', ...args, '--listen', '127.0.0.1:0'], {
    cwd: repoRoot,
    env: { ...process.env, ...ENV, DISKIMG_LAST_UPDATE: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  let err = '';
  const exited = new Promise<void>((resolve) => child.on('exit', () => (children.delete(child), resolve())));
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString('utf8');
      const m = /on (http:\/\/\S+\/) /.exec(err);
      if (m) resolve({ url: m[1]!, stop: () => (child.kill('SIGTERM'), exited) });
    });
    void exited.then(() => reject(new Error(`serve exited before listening: ${err}`)));
  });
}
function curl(url: string): { code: number; body: string; json?: any } {
  const r = spawnSync('curl', ['-sS', '-o', '-', '-w', '\n%{http_code}', url], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`curl ${url}: ${r.stderr}`);
  const i = r.stdout.lastIndexOf('\n');
  const body = r.stdout.slice(0, i);
  let json: any;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  return { code: Number(r.stdout.slice(i + 1)), body, json };
}

/** GRUB's fall-back write, by GRUB's own grub-editenv on the ESP's grubenv (mtools in and out). */
async function fallBack(img: string, from: string): Promise<void> {
  const show = (await ok(['show', img, '--json'])).json;
  const esp = show.partitions.find((p: { name: string }) => p.name === 'PSYOPSOSEFI');
  const at = `${img}@@${esp.offsetBytes}`;
  const env = join(work, `grubenv-${imgs}`);
  const sh = (c: string, a: string[]) => {
    const r = spawnSync(c, a, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${c} ${a.join(' ')}: ${r.stderr}`);
  };
  sh('mcopy', ['-n', '-i', at, '::/grub/grubenv', env]);
  sh('grub-editenv', [env, 'unset', 'psyopsos_trial', 'psyopsos_tries']);
  sh('grub-editenv', [env, 'set', `psyopsos_failed=${from}`]);
  sh('mcopy', ['-o', '-n', '-i', at, env, '::/grub/grubenv']);
}

/** check --json on `img` and serve's /health (and page) for the same disk and repository: they must agree. */
async function both(t: ExecutionContext, img: string, repo: string, serveArgs: string[] = []) {
  const { pub } = await setup();
  const c = await cli(['check', img, '--repo', repo, '--pubkey', pub, '--json']);
  const s = await serve([img, '--repo', repo, '--pubkey', pub, ...serveArgs]);
  try {
    const h = curl(`${s.url}health`).json;
    const page = curl(s.url).body;
    const agree = () => {
      t.is(h.repo.status, c.json.status, 'serve and check decide alike');
      t.is(h.repo.os.decision, c.json.decision.os);
      t.is(h.repo.esp.decision, c.json.decision.esp);
      t.is(h.repo.repositoryOlder, c.json.repositoryOlder);
    };
    return { c, h, page, agree };
  } finally {
    await s.stop();
  }
}

test.serial("26.10: a repository whose latest is older than the booted version is exit 13 (repositoryOlder), never up to date; serve says so", async (t) => {
  if (!needTools(t, 'curl', 'tar')) return;
  const { v, pub, old, repo } = await setup();
  const img = await image();
  await ok(['update', img, '--slot', 'b', '--os-tar', v[V2]!, '--pubkey', pub, '--booted-label', A]);
  await ok(['mark-good', img, '--booted-label', B]);
  const c = await cli(['check', img, '--repo', old, '--pubkey', pub]);
  t.is(c.code, 13, c.stdout + c.stderr);
  t.regex(c.stdout, new RegExp(`repository older: its latest is ${V1}, older than the booted ${V2}`));
  const { c: cj, h, page, agree } = await both(t, img, old);
  t.is(cj.code, 13);
  t.is(h.repo.os.updateAvailable, false);
  agree();
  t.like(cj.json, { status: 'repository-older', exitCode: 13, repositoryOlder: true, decision: { os: 'repository-older', esp: 'none' } });
  t.like(h.repo, { status: 'repository-older', repositoryOlder: true, os: { latest: V1, updateAvailable: false, decision: 'repository-older' } });
  t.regex(page, /latest 20251101-000000 \(OLDER than the booted version/);
  // The ESP pointer older than the ESP: the same exit code.
  await ok(['update-esp', img, '--repo', repo, '--pubkey', pub]);
  const espOld = join(work, 'esp-old');
  mkdirSync(espOld);
  for (const f of ['psyopsOS.x86_64.latest.tar.minisig', `psyopsOS.x86_64.${V2}.tar`, `psyopsOS.x86_64.${V2}.tar.minisig`]) copyFileSync(join(repo, f), join(espOld, f));
  await ok(['publish', '--repo', espOld, '--esp-tar', join(work, 'esp.tar'), '--seckey', (await setup()).key, '--version', V1]);
  const e = await cli(['check', img, '--repo', espOld, '--pubkey', pub, '--json']);
  t.is(e.code, 13, e.stdout);
  t.like(e.json, { status: 'repository-older', repositoryOlder: true, decision: { os: 'up-to-date', esp: 'repository-older' } });
});

test.serial('27.3: serve decides at each request against the disk as it is (the cache holds only the repository), agrees with check, and shows the answer\'s age', async (t) => {
  if (!needTools(t, 'curl', 'tar')) return;
  const { v, pub, repo } = await setup();
  const img = await image();
  // No --booted-label: the image's current slot, as check reads it too.
  const s = await serve([img, '--repo', repo, '--pubkey', pub, '--repo-cache', '3600']);
  try {
    const h1 = curl(`${s.url}health`).json;
    t.like(h1, { booted: { label: A, version: V1 }, repo: { os: { latest: V2, updateAvailable: true } } });
    // A newer version than the repository's is written to B and armed: the disk now stands on B (V3).
    await ok(['update', img, '--slot', 'b', '--os-tar', v[V3]!, '--pubkey', pub, '--booted-label', A]);
    const h2 = curl(`${s.url}health`).json;
    t.is(h2.repo.checkedAt, h1.repo.checkedAt, 'the repository answer is reused');
    // Not "update available" for V2 while V3 runs (the stale answer of issue 27.3).
    t.like(h2, { booted: { label: B, version: V3 }, repo: { os: { latest: V2, updateAvailable: false } } });
    t.like(h1.repo, { status: 'update-available', os: { decision: 'available' } });
    t.true(Number.isInteger(h2.repo.ageSeconds) && h2.repo.ageSeconds >= 0, JSON.stringify(h2.repo));
    t.like(h2, { booted: { label: B, version: V3 }, repo: { status: 'boot-pending', repositoryOlder: true, os: { latest: V2, updateAvailable: false, decision: 'repository-older' } } });
    t.regex(curl(s.url).body, /checked (\d+s|\d+m \d+s) ago \(20\d\d-/);
  } finally {
    await s.stop();
  }
  const { c, agree } = await both(t, img, repo);
  t.is(c.code, 11, c.json.lines.join('\n'));
  agree();
});

test.serial('27.3: after a fall-back from the version the repository offers, serve says what check says (boot pending, failed before), not "update available"', async (t) => {
  if (!needTools(t, 'curl', 'tar', 'mcopy', 'grub-editenv')) return;
  const { v, pub, r3 } = await setup();
  const img = await image();
  await ok(['update', img, '--slot', 'b', '--os-tar', v[V3]!, '--pubkey', pub, '--booted-label', A]);
  await fallBack(img, B);
  const { c, h, page, agree } = await both(t, img, r3, ['--booted-label', A]);
  t.is(c.code, 11, c.stdout);
  t.is(h.repo.os.updateAvailable, false, 'not "update available" for the version that just failed');
  agree();
  t.like(h, { state: 'fell-back', repo: { status: 'boot-pending', os: { latest: V3, updateAvailable: false, decision: 'failed-before' } } });
  t.regex(page, /latest 20260101-000000 \(not newer than the version that failed its trial here\)/);
  t.notRegex(page, /update available/);
});

test.serial('27.6: the commands check and update suggest run as printed: update-esp with the key and the disk, mark-good with the disk and the slot', async (t) => {
  if (!needTools(t, 'tar')) return;
  const { v, pub, repo } = await setup();
  const img = await image();
  const c = await cli(['check', img, '--repo', repo, '--pubkey', pub]);
  t.is(c.code, 10, c.stdout);
  const espCmd = hinted(c.stdout, ': run ');
  t.is(espCmd, `diskimg update-esp ${img} --repo ${repo} --pubkey ${pub}`);
  const e = paste(espCmd);
  t.is(e.code, 0, e.stderr);
  t.like((await cli(['check', img, '--repo', repo, '--pubkey', pub, '--json'])).json, { esp: { version: V2, updateAvailable: false } });

  const u = await ok(['update', img, '--slot', 'inactive', '--repo', repo, '--pubkey', pub]);
  const afterBoot = hinted(u.stdout, 'confirm with ');
  t.is(afterBoot, `diskimg mark-good ${img} --booted-label ${B}`);
  const c2 = await cli(['check', img, '--repo', repo, '--pubkey', pub]);
  t.is(c2.code, 11, c2.stdout);
  t.is(hinted(c2.stdout, 'confirm it with '), afterBoot);
  // update while B is on trial: refused, naming the same command.
  const refused = await cli(['update', img, '--slot', 'inactive', '--os-tar', v[V3]!, '--pubkey', pub]);
  t.is(refused.code, 1);
  t.is(hinted(refused.stderr, 'confirm the running slot with '), afterBoot);
  const m = paste(afterBoot);
  t.is(m.code, 0, m.stderr);
  t.is((await cli(['status', img, '--booted-label', B])).code, 0);
  t.is((await cli(['check', img, '--repo', repo, '--pubkey', pub])).code, 0);
});

test.serial('27.6: without a disk and no psyopsOS disk here, each command suggests itself with DISK (pasted with DISK filled in, it runs); boot-disk suggests no other command', async (t) => {
  if (!needTools(t, 'tar')) return;
  const { v, pub, repo } = await setup();
  const bd = await cli(['boot-disk']);
  if (bd.code === 0) return skipOrFail(t, `a psyopsOS disk is attached to this machine (${bd.stdout.split('\n')[0]}): commands without DISK would use it`, { tool: 'tools' });
  t.is(bd.code, 1);
  t.is(bd.stderr.trim().split('\n').length, 1, bd.stderr);
  t.regex(bd.stderr, /no psyopsOS boot disk found|several psyopsOS disks found/);
  t.notRegex(bd.stderr, /diskimg (update|boot-disk)|DISK/);
  const cases: [string[], number, string?][] = [
    [['check', '--repo', repo, '--pubkey', pub], 10],
    [['status', '--booted-label', A], 0],
    [['update', '--slot', 'inactive', '--os-tar', v[V2]!, '--pubkey', pub, '--booted-label', A], 0],
    [['update-esp', '--repo', repo, '--pubkey', pub], 0],
    [['rollback', '--booted-label', A], 0],
    [['serve', '--listen', '127.0.0.1:0'], -1],
  ];
  for (const [args, code] of cases) {
    const r = await cli(args);
    t.is(r.code, 1, `${args[0]}: ${r.stderr}`);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    const line = hinted(r.stderr, 'name the disk: ');
    t.is(line, `diskimg ${args[0]} DISK ${args.slice(1).join(' ')}`);
    if (code < 0) continue; // serve would serve: the line is checked, not run
    const img = await image();
    if (args[0] === 'rollback') await ok(['set-next', img, 'b']);
    const p = paste(line.replace('DISK', img));
    t.is(p.code, code, `${line}: ${p.stdout}${p.stderr}`);
  }
});
