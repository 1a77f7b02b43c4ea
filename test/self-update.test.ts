/**
 * Issue 13, `publish --bundle` and `self-update`: a real nginx serves repositories written by
 * `publish --bundle`; the bundle, copied alone into an empty directory, replaces itself with the
 * newer signed one (which then runs), and refuses, leaving the old file byte-identical and no
 * temporary file behind: a bad signature (other key, altered file), a truncated file, a pointer
 * naming a missing file, a hostile file name, another release type, a downgrade, a directory it may
 * not write, and a diskimg that is not the bundle. minisign itself verifies what publish wrote.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { repoRoot, runCli, type CliResult } from './helpers/cli.js';
import { needRoot, needTools, ranTool, skipOrFail } from './helpers/skip.js';
import { startNginx, type Nginx } from './helpers/nginx.js';
import { selfUpdate } from '../packages/ab/src/index.js';

const V1 = '20260101-000000';
const V2 = '20260102-000000';
const work = mkdtempSync(join(tmpdir(), 'self-update-'));
const www = join(work, 'www');
const ENV = { http_proxy: '', HTTP_PROXY: '', no_proxy: '', NO_PROXY: '', SOURCE_DATE_EPOCH: '' };
const closers: (() => Promise<void> | void)[] = [];
test.after.always(async () => {
  for (const c of closers.reverse()) await c();
  rmSync(work, { recursive: true, force: true });
});

async function ok(args: string[]): Promise<CliResult> {
  const r = await runCli(args, { env: ENV });
  if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r;
}

/** No node_modules in DIR or any directory above it. */
function noNodeModulesAbove(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules'))) return false;
    if (dirname(d) === d) return true;
  }
}

const b1 = join(work, 'v1', 'diskimg.mjs');
const b2 = join(work, 'v2', 'diskimg.mjs');
const key = join(work, 'k');
const other = join(work, 'other');
let nginx: Nginx | undefined;
let skip: string | undefined;
const url = (repo: string) => `http://127.0.0.1:${nginx!.port}/${repo}/`;

test.before(async () => {
  // One build; the second version differs only in its release line (same length), as a rebuild
  // at a later commit would.
  const b = spawnSync(process.execPath, [join(repoRoot, 'scripts/bundle.mjs'), '--outfile', b1, '--quiet'], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, DISKIMG_RELEASE: V1 } });
  if (b.status !== 0) throw new Error(`bundle: ${b.stderr}`);
  mkdirSync(dirname(b2));
  writeFileSync(b2, readFileSync(b1, 'latin1').replace(`// diskimg-release: ${V1}\n`, `// diskimg-release: ${V2}\n`), 'latin1');
  chmodSync(b2, 0o755);
  await ok(['keygen', '--out', key]);
  await ok(['keygen', '--out', other]);
  mkdirSync(www);
  // good: V1 then V2 (the pointer names V2); old: V1 only.
  for (const [repo, files] of [['good', [b1, b2]], ['old', [b1]]] as const) {
    mkdirSync(join(www, repo));
    for (const f of files) await ok(['publish', '--repo', join(www, repo), '--bundle', f, '--seckey', `${key}.key`]);
  }
  const copyRepo = (name: string) => {
    mkdirSync(join(www, name));
    for (const f of readdirSync(join(www, 'good'))) copyFileSync(join(www, 'good', f), join(www, name, f));
    return join(www, name);
  };
  // other-key: every signature made by another key.
  const ok2 = join(www, 'other-key');
  mkdirSync(ok2);
  await ok(['publish', '--repo', ok2, '--bundle', b2, '--seckey', `${other}.key`]);
  // altered: V2's file has one byte changed (same length).
  const altered = join(copyRepo('altered'), `diskimg.${V2}.mjs`);
  const bytes = readFileSync(altered);
  bytes[bytes.length - 2] ^= 0x20;
  writeFileSync(altered, bytes);
  // truncated: V2's file is cut in half.
  const cut = join(copyRepo('truncated'), `diskimg.${V2}.mjs`);
  truncateSync(cut, Math.floor(statSync(cut).size / 2));
  // missing: the pointer names a file that is not there.
  unlinkSync(join(copyRepo('missing'), `diskimg.${V2}.mjs`));
  // hostile: a validly signed pointer whose file name leaves the repository.
  const hostile = copyRepo('hostile');
  const ptr = join(hostile, 'diskimg.latest.mjs');
  copyFileSync(b2, ptr);
  await ok(['sign', ptr, '--force', '--seckey', `${key}.key`, '--trusted', 'type=diskimg', '--trusted', `filename=../good/diskimg.${V2}.mjs`, '--trusted', `version=${V2}`]);
  unlinkSync(ptr);
  // other-type: the pointer is a valid signature of the same file as an OS release.
  const otherType = copyRepo('other-type');
  const f = join(otherType, `diskimg.${V2}.mjs`);
  rmSync(`${f}.minisig`);
  await ok(['sign', f, '--seckey', `${key}.key`, '--trusted', 'type=psyopsOS', '--trusted', `filename=diskimg.${V2}.mjs`, '--trusted', `version=${V2}`]);
  copyFileSync(`${f}.minisig`, join(otherType, 'diskimg.latest.mjs.minisig'));

  const started = await startNginx(work, www);
  if (typeof started === 'string') skip = started;
  else {
    nginx = started;
    closers.push(() => started.stop());
  }
});

function nginxReady(t: ExecutionContext): boolean {
  if (!skip) return true;
  skipOrFail(t, skip, { tool: 'nginx' });
  return false;
}

/** The bundle FILE copied alone into a fresh empty directory outside the repository. */
function alone(t: ExecutionContext, file: string): { dir: string; exe: string } {
  const dir = mkdtempSync(join(tmpdir(), 'diskimg-self-update-'));
  closers.push(() => rmSync(dir, { recursive: true, force: true }));
  t.true(noNodeModulesAbove(dir), `${dir} has node_modules above it`);
  const exe = join(dir, 'diskimg.mjs');
  copyFileSync(file, exe);
  chmodSync(exe, 0o755);
  return { dir, exe };
}

const run = (exe: string, ...args: string[]) => spawnSync(process.execPath, [exe, ...args], { encoding: 'utf8', env: { ...process.env, ...ENV } });

test('publish --bundle: versioned file, signature and pointer that minisign verifies', (t) => {
  if (!needTools(t, 'minisign')) return;
  const repo = join(www, 'good');
  t.deepEqual(readdirSync(repo).sort(), [`diskimg.${V1}.mjs`, `diskimg.${V1}.mjs.minisig`, `diskimg.${V2}.mjs`, `diskimg.${V2}.mjs.minisig`, 'diskimg.latest.mjs.minisig']);
  t.true(readFileSync(join(repo, `diskimg.${V2}.mjs`)).equals(readFileSync(b2)));
  for (const sig of [`diskimg.${V2}.mjs.minisig`, 'diskimg.latest.mjs.minisig']) {
    const v = spawnSync('minisign', ['-V', '-m', join(repo, `diskimg.${V2}.mjs`), '-x', join(repo, sig), '-p', `${key}.pub`], { encoding: 'utf8' });
    t.is(v.status, 0, v.stderr);
    t.regex(v.stdout, new RegExp(`Trusted comment: type=diskimg filename=diskimg\\.${V2}\\.mjs version=${V2}`));
  }
  ranTool(t, 'minisign');
});

test('publish --bundle refuses an older version, a --version the bundle does not say, and a file that is not a bundle', async (t) => {
  const repo = join(www, 'good');
  const before = readdirSync(repo).sort();
  const down = await runCli(['publish', '--repo', repo, '--bundle', b1, '--seckey', `${key}.key`], { env: ENV });
  t.is(down.code, 1);
  t.regex(down.stderr, /already published|allow-downgrade/);
  const wrong = await runCli(['publish', '--repo', repo, '--bundle', b2, '--seckey', `${key}.key`, '--version', '20270101-000000'], { env: ENV });
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /says release 20260102-000000; rebuild it with DISKIMG_RELEASE=20270101-000000/);
  const notBundle = await runCli(['publish', '--repo', repo, '--bundle', `${key}.pub`, '--seckey', `${key}.key`], { env: ENV });
  t.is(notBundle.code, 1);
  t.regex(notBundle.stderr, /not a diskimg bundle/);
  for (const r of [down, wrong, notBundle]) t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.deepEqual(readdirSync(repo).sort(), before);
});

test('self-update over HTTP replaces the bundle alone in an empty directory; the new one runs', (t) => {
  if (!nginxReady(t)) return;
  const { dir, exe } = alone(t, b1);
  const dry = run(exe, 'self-update', '--repo', url('good'), '--pubkey', `${key}.pub`, '--dry-run', '--json');
  t.is(dry.status, 0, dry.stderr);
  t.like(JSON.parse(dry.stdout), { previous: V1, version: V2, dryRun: true, replaced: false });
  t.true(readFileSync(exe).equals(readFileSync(b1)), 'dry run changed the file');

  const r = run(exe, 'self-update', '--repo', url('good'), '--pubkey', `${key}.pub`);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`^replaced ${exe}: ${V1} -> ${V2} .*it says \\d+\\.\\d+\\.\\d+ \\(git `));
  t.true(readFileSync(exe).equals(readFileSync(b2)), 'not the published V2 bytes');
  t.is(statSync(exe).mode & 0o777, 0o755, 'mode kept');
  t.deepEqual(readdirSync(dir), ['diskimg.mjs'], 'a temporary file was left behind');
  const v = spawnSync(exe, ['--version'], { encoding: 'utf8' });
  t.is(v.status, 0, v.stderr);
  t.regex(v.stdout, /^\d+\.\d+\.\d+ \(git /);
  const again = run(exe, 'self-update', '--repo', url('good'), '--pubkey', `${key}.pub`);
  t.is(again.status, 0, again.stderr);
  t.is(again.stdout, `up to date: ${exe} is ${V2}\n`);
  t.true(nginx!.accessLog().some((l) => l.startsWith(`/good/diskimg.${V2}.mjs 200`)), nginx!.accessLog().join('\n'));
});

test('self-update from a repository directory, and a downgrade only with --allow-downgrade', (t) => {
  if (!nginxReady(t)) return;
  const { exe } = alone(t, b2);
  const down = run(exe, 'self-update', '--repo', url('old'), '--pubkey', `${key}.pub`);
  t.is(down.status, 1);
  t.regex(down.stderr, new RegExp(`version ${V1} is older than the running diskimg \\(.*\\) \\(${V2}\\); pass --allow-downgrade`));
  t.true(readFileSync(exe).equals(readFileSync(b2)));
  const forced = run(exe, 'self-update', '--repo', join(www, 'old'), '--pubkey', `${key}.pub`, '--allow-downgrade');
  t.is(forced.status, 0, forced.stderr);
  t.true(readFileSync(exe).equals(readFileSync(b1)));
});

const refusals: Array<[string, string, RegExp]> = [
  ['other-key', 'signed by another key', /signed by key [0-9A-F]{16}, expected/],
  ['altered', 'an altered file', /signature verification failed/],
  ['truncated', 'a truncated file', /signature verification failed/],
  ['missing', 'a pointer naming a missing file', /HTTP 404|not found|no such file/i],
  ['hostile', 'a file name outside the repository', /not a file name in the repository; refused/],
  ['other-type', 'another release type', /type=psyopsOS, not type=diskimg/],
];
for (const [repo, what, why] of refusals) {
  test(`self-update refuses ${what}: the old file stays byte-identical`, (t) => {
    if (!nginxReady(t)) return;
    const { dir, exe } = alone(t, b1);
    const r = run(exe, 'self-update', '--repo', url(repo), '--pubkey', `${key}.pub`);
    t.is(r.status, 1, r.stdout);
    t.regex(r.stderr, why);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.true(readFileSync(exe).equals(readFileSync(b1)), 'the running file changed');
    t.deepEqual(readdirSync(dir), ['diskimg.mjs'], 'a temporary file was left behind');
  });
}

test('self-update refuses a directory it may not write (as nobody) and a diskimg that is not the bundle', async (t) => {
  if (!nginxReady(t) || !needRoot(t, 'running the bundle as another user') || !needTools(t, 'setpriv')) return;
  const { dir, exe } = alone(t, b1);
  chmodSync(dir, 0o755);
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, exe, 'self-update', '--repo', url('good'), '--pubkey', `${key}.pub`], {
    encoding: 'utf8',
    env: { ...process.env, ...ENV },
  });
  t.is(r.status, 1, r.stdout);
  t.regex(r.stderr, new RegExp(`${dir}: not writable, so diskimg.mjs cannot be replaced`));
  t.true(readFileSync(exe).equals(readFileSync(b1)));
  t.deepEqual(readdirSync(dir), ['diskimg.mjs']);

  const ws = await runCli(['self-update', '--repo', url('good'), '--pubkey', `${key}.pub`], { env: ENV });
  t.is(ws.code, 1);
  t.regex(ws.stderr, /not the one-file bundle .*self-update replaces dist\/diskimg\.mjs only/);
  t.is(ws.stderr.trim().split('\n').length, 1, ws.stderr);
});

test('selfUpdate (the library call) stops a download over its size cap before it is complete', async (t) => {
  if (!nginxReady(t)) return;
  const { dir, exe } = alone(t, b1);
  const e = await t.throwsAsync(selfUpdate({ repo: url('good'), pubkey: `${key}.pub`, target: exe, maxBytes: 64 * 1024 }));
  t.regex(e!.message, /larger than 65536 bytes; not a diskimg bundle, refused/);
  t.true(readFileSync(exe).equals(readFileSync(b1)));
  t.deepEqual(readdirSync(dir), ['diskimg.mjs']);
});

test('a self-update killed (SIGKILL) mid-download leaves its temporary file; the next run removes it, and keeps a live process\'s', async (t) => {
  if (!nginxReady(t)) return;
  // A repository server that sends the bundle's first 64 KiB, then nothing (the download hangs).
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').replace(/^\/good\//, ''));
    const file = join(www, 'good', name);
    if (!/^[\w.-]+$/.test(name) || !existsSync(file)) return void res.writeHead(404).end();
    const body = readFileSync(file);
    res.writeHead(200, { 'Content-Length': body.length });
    if (name.endsWith('.mjs')) res.write(body.subarray(0, 64 * 1024));
    else res.end(body);
  });
  server.on('connection', (s) => sockets.add(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    const { dir, exe } = alone(t, b1);
    const child = spawn(process.execPath, [exe, 'self-update', '--repo', `http://127.0.0.1:${port}/good/`, '--pubkey', `${key}.pub`], { stdio: 'ignore', env: { ...process.env, ...ENV } });
    const tmp = `.diskimg.mjs.self-update-${child.pid}.mjs`;
    for (let i = 0; i < 300 && !(existsSync(join(dir, tmp)) && statSync(join(dir, tmp)).size > 0); i++) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGKILL');
    await once(child, 'close');
    t.deepEqual(readdirSync(dir).sort(), [tmp, 'diskimg.mjs'], 'the killed run left its temporary file');
    const live = `.diskimg.mjs.self-update-${sleeper.pid}.mjs`;
    writeFileSync(join(dir, live), 'a running self-update\'s download');
    const r = run(exe, 'self-update', '--repo', url('good'), '--pubkey', `${key}.pub`);
    t.is(r.status, 0, r.stderr);
    t.true(readFileSync(exe).equals(readFileSync(b2)));
    t.deepEqual(readdirSync(dir).sort(), [live, 'diskimg.mjs'], 'the dead process\'s file removed, the live one\'s kept');
  } finally {
    sleeper.kill('SIGKILL');
    for (const s of sockets) s.destroy();
    server.close();
  }
});
