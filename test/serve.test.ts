/**
 * Issue 13, health at a glance: `diskimg serve` on an image file, run as a child process and
 * queried with real `curl` (status codes, JSON, HEAD) and Debian's headless Chromium (the DOM
 * has the slot and version text; a screenshot, decoded by test/helpers/png.ts, shows green when
 * the slot is confirmed, amber on trial). The disk states come from the CLI (`update` arms a
 * trial) and from GRUB's own tools (grub-editenv writes the fall-back record GRUB writes, mtools
 * puts it on the ESP). The server never writes: the image's bytes are the same after every query.
 */
import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runCli } from './helpers/cli.js';
import { countColour, decodePng } from './helpers/png.js';
import { needTools } from './helpers/skip.js';
import { HEALTH_COLOURS } from '../packages/ab/src/health-page.js';

const work = mkdtempSync(join(tmpdir(), 'serve-'));
const children = new Set<ChildProcess>();
test.after.always(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});
const A = 'psyopsOS-A';
const B = 'psyopsOS-B';
const V1 = '20251101-000000';
const V2 = '20251201-000000';
const ENV = { SOURCE_DATE_EPOCH: '1764374400' };
const CLI = [process.execPath, '--import=tsx', '--conditions=source', join(repoRoot, 'packages/cli/src/run.ts')];

async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await runCli(args, { env: { ...ENV, ...env } });
  if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

interface Setup {
  pub: string;
  key: string;
  v1: string;
  v2: string;
  repo: string;
}
let setupP: Promise<Setup> | undefined;
/** Keys, two signed OS tarballs (V1, V2) and a repository with V2 and an ESP release; made once. */
function setup(): Promise<Setup> {
  setupP ??= (async () => {
    const os = join(work, 'os');
    mkdirSync(os);
    writeFileSync(join(os, 'kernel'), 'k1');
    writeFileSync(join(os, 'initramfs'), 'i1');
    const v1 = join(work, 'v1.tar');
    spawnSync('tar', ['-C', os, '-cf', v1, '.']);
    writeFileSync(join(os, 'kernel'), 'k2');
    const v2 = join(work, 'v2.tar');
    spawnSync('tar', ['-C', os, '-cf', v2, '.']);
    const esp = join(work, 'esp');
    mkdirSync(join(esp, 'EFI/BOOT'), { recursive: true });
    writeFileSync(join(esp, 'EFI/BOOT/BOOTX64.EFI'), 'efi');
    const espTar = join(work, 'esp.tar');
    spawnSync('tar', ['-C', esp, '-cf', espTar, '.']);
    await ok(['keygen', '--out', join(work, 'k')]);
    const key = join(work, 'k.key');
    for (const [f, v] of [[v1, V1], [v2, V2]] as const) {
      await ok(['sign', f, '--seckey', key, '--trusted', 'type=psyopsOS', `filename=psyopsOS.x86_64.${v}.tar`, `version=${v}`, 'architecture=x86_64']);
    }
    const repo = join(work, 'repo');
    mkdirSync(repo);
    await ok(['publish', '--repo', repo, '--os-tar', v2, '--seckey', key, '--version', V2]);
    await ok(['publish', '--repo', repo, '--esp-tar', espTar, '--seckey', key, '--version', V2]);
    return { pub: join(work, 'k.pub'), key, v1, v2, repo };
  })();
  return setupP;
}

/** A fresh image: both slots V1, A the confirmed default, no trial. */
async function image(name: string): Promise<string> {
  const s = await setup();
  const img = join(work, name);
  await ok(['create', img, '--os-tar', s.v1, '--pubkey', s.pub, '--no-bootloader', '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '16M']);
  return img;
}

interface Served {
  url: string;
  stderr: () => string;
  /** Send `signal`, wait for the exit. */
  stop: (signal?: NodeJS.Signals) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Start `diskimg serve ARGS` (--listen 127.0.0.1:0 unless given) and wait for the URL line on stderr. */
function serve(args: string[], env: Record<string, string> = {}, cmd: string[] = [...CLI, 'serve']): Promise<Served> {
  const withListen = args.some((a) => a.startsWith('--listen')) ? args : [...args, '--listen', '127.0.0.1:0'];
  const child = spawn(cmd[0]!, [...cmd.slice(1), ...withListen], { cwd: repoRoot, env: { ...process.env, ...ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let err = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  child.stdout.resume();
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString('utf8');
      const m = /on (http:\/\/\S+\/) /.exec(err);
      if (m) resolve({ url: m[1]!, stderr: () => err, stop: (signal = 'SIGTERM') => (child.kill(signal), exited) });
    });
    void exited.then((e) => reject(new Error(`serve exited (${e.code ?? e.signal}) before listening: ${err}`)));
  });
}

interface Curl {
  code: number;
  body: string;
  headers: string;
  json?: any;
}
/** One request with the real curl: status code, headers and body. */
function curl(url: string, extra: string[] = []): Curl {
  const hdr = join(work, 'curl-headers');
  const r = spawnSync('curl', ['-sS', '-D', hdr, '-o', '-', '-w', '\n%{http_code}', ...extra, url], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`curl ${url}: ${r.stderr}`);
  const i = r.stdout.lastIndexOf('\n');
  const headers = readFileSync(hdr, 'utf8');
  // With -I curl prints the headers as its output: what follows them would be a body.
  const out = r.stdout.slice(0, i);
  const body = extra.includes('-I') && out.startsWith(headers) ? out.slice(headers.length) : out;
  let json: any;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  return { code: Number(r.stdout.slice(i + 1)), body, headers, json };
}

const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
let profiles = 0;
/** Headless Chromium with a fresh profile: `--dump-dom URL` or `--screenshot`. */
function chromium(args: string[]): string {
  const profile = join(work, `chromium-profile-${profiles++}`);
  mkdirSync(profile);
  const r = spawnSync('chromium', [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, ...args], { encoding: 'utf8', maxBuffer: 16 << 20 });
  rmSync(profile, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`chromium ${args.join(' ')}: exit ${r.status}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}
function screenshot(url: string, name: string) {
  const png = join(work, `${name}.png`);
  chromium(['--window-size=800,600', '--hide-scrollbars', `--screenshot=${png}`, url]);
  return decodePng(readFileSync(png));
}

/** GRUB's fall-back write, done by GRUB's own grub-editenv on the ESP's grubenv (mtools in and out). */
async function fallBack(img: string, from: string): Promise<void> {
  const show = JSON.parse(await ok(['show', img, '--json']));
  const esp = show.partitions.find((p: { name: string }) => p.name === 'PSYOPSOSEFI');
  const at = `${img}@@${esp.offsetBytes}`;
  const env = join(work, 'grubenv');
  rmSync(env, { force: true });
  const sh = (c: string, a: string[]) => {
    const r = spawnSync(c, a, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${c} ${a.join(' ')}: ${r.stderr}`);
  };
  sh('mcopy', ['-n', '-i', at, '::/grub/grubenv', env]);
  sh('grub-editenv', [env, 'unset', 'psyopsos_trial', 'psyopsos_tries']);
  sh('grub-editenv', [env, 'set', `psyopsos_failed=${from}`]);
  sh('mcopy', ['-o', '-n', '-i', at, env, '::/grub/grubenv']);
}

test('a bad --listen is one line and exit 2; no address means loopback', async (t) => {
  for (const bad of [':8321', '0.0.0.0', 'example.com:80', '127.0.0.1:99999', '[nonsense]:1']) {
    const r = await runCli(['serve', join(work, 'none.img'), '--listen', bad]);
    t.is(r.code, 2, `${bad}: ${r.stderr}`);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, /^diskimg: --listen ".*": .*give HOST:PORT, e\.g\. 127\.0\.0\.1:8321/);
  }
  const h = await runCli(['serve', '--help']);
  t.regex(h.stdout, /--listen .*\[default: "127\.0\.0\.1:8321"\]/s);
  const noRepoKey = await runCli(['serve', join(work, 'none.img'), '--repo', join(work, 'repo')]);
  t.is(noRepoKey.code, 2, noRepoKey.stderr);
  t.regex(noRepoKey.stderr, /--repo: give --pubkey FILE/);
});

test.serial('without --listen: 127.0.0.1:8321 and nothing else; SIGINT and SIGTERM end it with exit 0', async (t) => {
  if (!needTools(t, 'curl')) return;
  const img = await image('default.img');
  const child = spawn(CLI[0]!, [...CLI.slice(1), 'serve', img, '--booted-label', A], { cwd: repoRoot, env: { ...process.env, ...ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let err = '';
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString('utf8');
      if (/on http:\/\//.test(err)) resolve();
    });
    void exit.then(() => reject(new Error(`serve exited (port 8321 taken on this machine?): ${err}`)));
  });
  t.regex(err, /on http:\/\/127\.0\.0\.1:8321\/ /);
  t.is(curl('http://127.0.0.1:8321/health').code, 200);
  // Not on any other address of this machine.
  const others = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && !a.internal && a.family === 'IPv4')
    .map((a) => a!.address);
  for (const ip of others) {
    const r = spawnSync('curl', ['-sS', '--connect-timeout', '10', '-o', '/dev/null', '-w', '%{http_code}', `http://${ip}:8321/health`], { encoding: 'utf8' });
    t.not(r.status, 0, `${ip}:8321 answered: ${r.stdout}`);
    t.is(r.stdout, '000', `${ip}:8321 answered`);
  }
  child.kill('SIGINT');
  t.is(await exit, 0, err);
  children.delete(child);
});

test.serial('confirmed: /health 200 with the slots and versions; HEAD; 404; 405; the image is never written', async (t) => {
  if (!needTools(t, 'curl')) return;
  const img = await image('confirmed.img');
  const before = sha(img);
  const s = await serve([img, '--booted-label', A], { DISKIMG_LAST_UPDATE: join(work, 'none', 'last-update.json') });
  const h = curl(`${s.url}health`);
  t.is(h.code, 200, h.body);
  t.regex(h.headers, /^content-type: application\/json; charset=utf-8\r?$/im);
  t.regex(h.headers, /^cache-control: no-store\r?$/im);
  t.like(h.json, {
    ok: true,
    state: 'confirmed',
    line: `${A} ${V1} ok`,
    booted: { label: A, source: 'option', version: V1 },
    other: { label: B, version: V1 },
    defaultLabel: A,
    trial: null,
    fellBack: null,
    lastUpdate: null,
    repo: null,
  });
  t.true(Number.isInteger(h.json.uptime.nodeSeconds) && h.json.uptime.nodeSeconds > 0, JSON.stringify(h.json.uptime));
  t.true(Number.isInteger(h.json.uptime.serverSeconds) && h.json.uptime.serverSeconds >= 0);
  // Nothing secret: the secret partition is never named, no key material.
  t.notRegex(h.body, /psyops-secret|SECRET|seckey|\.key/i);

  const head = curl(`${s.url}health`, ['-I']);
  t.is(head.code, 200);
  t.is(head.body, '');
  const len = Number(/^content-length: (\d+)/im.exec(head.headers)?.[1]);
  t.true(len > 100, head.headers);
  const page = curl(s.url);
  t.is(page.code, 200);
  t.regex(page.headers, /^content-type: text\/html; charset=utf-8\r?$/im);
  t.regex(page.headers, /^content-security-policy: default-src 'none'; style-src 'unsafe-inline'\r?$/im);
  t.notRegex(page.body, /<script|<link|<img|src=|url\(/i);

  for (const p of ['nope', 'health/', 'health.json', '../etc/passwd', 'index.html']) t.is(curl(`${s.url}${p}`).code, 404, p);
  t.is(curl(`${s.url}health?x=1`).code, 200);
  for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    const r = curl(`${s.url}health`, ['-X', m, '--data', 'x']);
    t.is(r.code, 405, m);
    t.regex(r.headers, /^allow: GET, HEAD\r?$/im);
  }
  t.is(curl(`${s.url}`, ['-X', 'POST']).code, 405);
  t.is((await s.stop('SIGTERM')).code, 0, s.stderr());
  t.is(sha(img), before, 'serve wrote to the image');
});

test.serial('trial after update: 503, tries left, the last update recorded (ok, then failed); status --json reads the record', async (t) => {
  if (!needTools(t, 'curl')) return;
  const { v1, v2, pub } = await setup();
  const img = await image('trial.img');
  const record = join(work, 'state', 'last-update.json');
  const env = { DISKIMG_LAST_UPDATE: record };
  await ok(['update', img, '--slot', 'inactive', '--os-tar', v2, '--pubkey', pub, '--booted-label', A], env);
  const rec = JSON.parse(readFileSync(record, 'utf8'));
  t.like(rec, { format: 1, outcome: 'ok', version: V2, slot: B, previousVersion: V1, armed: B, error: null, disk: img });
  t.false(Number.isNaN(Date.parse(rec.time)));
  t.false(existsSync(join(work, 'state', `.last-update.json.partial-${process.pid}`)));

  const s = await serve([img, '--booted-label', B], env);
  const h = curl(`${s.url}health`);
  t.is(h.code, 503, h.body);
  t.like(h.json, {
    ok: false,
    state: 'trial',
    line: `${B} ${V2} TRIAL 3/3`,
    booted: { label: B, version: V2 },
    other: { label: A, version: V1 },
    trial: { label: B, triesLeft: 3, tries: 3 },
    fellBack: null,
    lastUpdate: { outcome: 'ok', version: V2, slot: B },
  });
  t.is(curl(s.url).code, 503);
  t.is(curl(s.url, ['-I']).code, 503);

  // A refused update (older than the booted slot) is recorded as failed, with its error.
  const before = sha(img);
  const r = await runCli(['update', img, '--slot', 'inactive', '--os-tar', v1, '--pubkey', pub, '--booted-label', B, '--force'], { env: { ...ENV, ...env } });
  t.is(r.code, 1);
  t.is(sha(img), before);
  const failed = curl(`${s.url}health`).json;
  t.like(failed.lastUpdate, { outcome: 'failed', version: null, slot: null });
  t.is(failed.lastUpdate.error, r.stderr.trim().replace(/^diskimg: /, ''));
  await s.stop();

  const st = await runCli(['status', img, '--booted-label', B, '--json'], { env: { ...ENV, ...env } });
  t.is(st.code, 1);
  t.like(st.json.lastUpdate, { outcome: 'failed' });
  // A dry run leaves the record alone; no DISKIMG_LAST_UPDATE on an image file: no record at all.
  await ok(['update', img, '--slot', 'a', '--os-tar', v2, '--pubkey', pub, '--booted-label', B, '--dry-run', '--force'], env);
  t.like(JSON.parse(readFileSync(record, 'utf8')), { outcome: 'failed' });
  const plain = await runCli(['status', img, '--booted-label', B, '--json'], { env: { ...ENV, DISKIMG_LAST_UPDATE: undefined } });
  t.is(plain.json.lastUpdate, null);
});

test.serial('fell back (grubenv written by grub-editenv as GRUB does): 503 fell-back, from B', async (t) => {
  if (!needTools(t, 'curl', 'mcopy', 'grub-editenv')) return;
  const { v2, pub } = await setup();
  const img = await image('fell.img');
  await ok(['update', img, '--slot', 'b', '--os-tar', v2, '--pubkey', pub, '--booted-label', A]);
  await fallBack(img, B);
  const s = await serve([img, '--booted-label', A]);
  const h = curl(`${s.url}health`);
  t.is(h.code, 503, h.body);
  t.like(h.json, {
    ok: false,
    state: 'fell-back',
    line: `${A} ${V1} FELL BACK from B ${V2}`,
    booted: { label: A, version: V1 },
    trial: null,
    fellBack: { from: B, version: V2 },
    nextBoot: { label: A, reason: 'default' },
  });
  await s.stop();
});

test.serial('--repo: latest release and ESP staleness, cached between polls; a repository error is a field, not a crash', async (t) => {
  if (!needTools(t, 'curl')) return;
  const { repo, pub, key } = await setup();
  const img = await image('repo.img');
  const s = await serve([img, '--booted-label', A, '--repo', repo, '--pubkey', pub]);
  const h = curl(`${s.url}health`);
  t.is(h.code, 200, h.body);
  t.like(h.json.repo, { repo, os: { latest: V2, updateAvailable: true }, esp: { version: null, latest: V2, stale: true }, error: null });
  // A newer release appears: the cached answer stands (a poll does not ask the repository again).
  const v3 = join(work, 'v3.tar');
  writeFileSync(v3, readFileSync(join(work, 'v2.tar')));
  const V3 = '20260101-000000';
  await ok(['publish', '--repo', repo, '--os-tar', v3, '--seckey', key, '--version', V3]);
  for (let i = 0; i < 3; i++) t.is(curl(`${s.url}health`).json.repo.os.latest, V2);
  t.is(curl(`${s.url}health`).json.repo.checkedAt, h.json.repo.checkedAt);
  await s.stop();
  // --repo-cache 0: every poll asks; it sees V3.
  const fresh = await serve([img, '--booted-label', A, '--repo', repo, '--pubkey', pub, '--repo-cache', '0']);
  t.is(curl(`${fresh.url}health`).json.repo.os.latest, V3);
  await fresh.stop();

  const gone = await serve([img, '--booted-label', A, '--repo', join(work, 'no-such-repo'), '--pubkey', pub]);
  const e = curl(`${gone.url}health`);
  t.is(e.code, 200, 'the repository does not decide health');
  t.like(e.json, { state: 'confirmed', repo: { os: { latest: null }, esp: { stale: null } } });
  t.regex(e.json.repo.error, /no-such-repo/);
  t.regex(curl(gone.url).body, /Repository<\/th><td>error: /);
  await gone.stop();
});

test.serial('a disk that cannot be read: 503 with the error, the server keeps running', async (t) => {
  if (!needTools(t, 'curl')) return;
  const junk = join(work, 'junk.img');
  writeFileSync(junk, Buffer.alloc(1 << 20));
  const s = await serve([junk, '--booted-label', A]);
  const h = curl(`${s.url}health`);
  t.is(h.code, 503);
  t.like(h.json, { ok: false, state: 'error' });
  t.truthy(h.json.error);
  t.is(curl(s.url).code, 503);
  t.is(curl(`${s.url}health`).code, 503);
  t.is((await s.stop()).code, 0);
});

test.serial('headless Chromium: the page shows slot and version, green when confirmed, amber on trial; values are escaped', async (t) => {
  if (!needTools(t, 'chromium', 'curl')) return;
  const { v2, pub } = await setup();
  const img = await image('chromium.img');
  // A disk path with markup in it reaches the page as text, never as markup.
  const odd = join(work, `odd<b>&"'.img`);
  symlinkSync(img, odd);

  const good = await serve([odd, '--booted-label', A]);
  const dom = chromium(['--dump-dom', good.url]);
  t.regex(dom, new RegExp(`<h1>${A} ${V1} confirmed</h1>`));
  t.regex(dom, new RegExp(`<p id="line">${A} ${V1} ok</p>`));
  t.regex(dom, /<tr><th>Other slot<\/th><td>psyopsOS-B 20251101-000000<\/td><\/tr>/);
  t.regex(dom, /odd&lt;b&gt;&amp;"'\.img/);
  t.notRegex(dom, /<b>/);
  const shot = screenshot(good.url, 'confirmed');
  const green = countColour(shot, HEALTH_COLOURS.good);
  t.true(green > shot.width * 40, `green pixels: ${green}`);
  t.is(countColour(shot, HEALTH_COLOURS.warn), 0);
  t.is(countColour(shot, HEALTH_COLOURS.bad), 0);
  await good.stop();

  await ok(['update', img, '--slot', 'b', '--os-tar', v2, '--pubkey', pub, '--booted-label', A]);
  const trial = await serve([img, '--booted-label', B]);
  const dom2 = chromium(['--dump-dom', trial.url]);
  t.regex(dom2, new RegExp(`<h1>${B} ${V2} on trial</h1>`));
  t.regex(dom2, /<tr><th>Trial<\/th><td>psyopsOS-B: 3 of 3 tries left<\/td><\/tr>/);
  const shot2 = screenshot(trial.url, 'trial');
  const amber = countColour(shot2, HEALTH_COLOURS.warn);
  t.true(amber > shot2.width * 40, `amber pixels: ${amber}`);
  t.is(countColour(shot2, HEALTH_COLOURS.good), 0);
  await trial.stop();
});
