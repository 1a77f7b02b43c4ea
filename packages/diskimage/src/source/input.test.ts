import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { InputError } from '@diskimg/partitions/internal';
import { openUpdateInput, readSmallInput, type UpdateInput } from './input.js';
import { proxyFor, redactUrl } from './http.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'diskimg-input-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const data = randomBytes(5 * 1024 * 1024 + 12345);
const dataPath = join(dir, 'os.tar');
writeFileSync(dataPath, data);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function collect(input: UpdateInput): Promise<{ buf: Buffer; sizes: number[] }> {
  const parts: Buffer[] = [];
  for await (const c of input.stream) parts.push(c);
  return { buf: Buffer.concat(parts), sizes: parts.map((p) => p.length) };
}

test('a file: identical bytes in 1 MiB chunks, size known, stats and progress counted', async (t) => {
  const progress: [number, number | undefined][] = [];
  const input = await openUpdateInput(dataPath, { onProgress: (b, total) => progress.push([b, total]) });
  t.is(input.name, dataPath);
  t.is(input.size, data.length);
  const { buf, sizes } = await collect(input);
  t.true(buf.equals(data));
  t.is(sizes[0], 1 << 20);
  t.true(sizes.every((s) => s <= 1 << 20));
  t.is(input.stats.bytes, data.length);
  t.is(input.stats.resumes, 0);
  t.deepEqual(progress.at(-1), [data.length, data.length]);
  t.is(progress.length, sizes.length);
});

test('a missing file or a directory: one-line InputError naming the value', async (t) => {
  const missing = join(dir, 'nope.tar');
  const e1 = await t.throwsAsync(openUpdateInput(missing), { instanceOf: InputError });
  t.is(e1?.message, `${missing}: no such file`);
  const e2 = await t.throwsAsync(openUpdateInput(dir), { instanceOf: InputError });
  t.is(e2?.message, `${dir}: is a directory, not a file`);
  const e3 = await t.throwsAsync(readSmallInput(dir), { instanceOf: InputError });
  t.is(e3?.message, `${dir}: is a directory, not a file`);
});

test('"-" with opts.stdin: the same bytes, named "standard input", size unknown', async (t) => {
  const chunks = [data.subarray(0, 1000), data.subarray(1000, 3_000_000), data.subarray(3_000_000)];
  const input = await openUpdateInput('-', { stdin: Readable.from(chunks) });
  t.is(input.name, 'standard input');
  t.is(input.size, undefined);
  const { buf } = await collect(input);
  t.true(buf.equals(data));
  t.is(input.stats.bytes, data.length);
});

test('"-" on a real process.stdin: `cat FILE |` and `< FILE` in a child process hash identically', (t) => {
  const script = join(repoRoot, 'test', 'helpers', 'stdin-sha256.ts');
  const run = (redirect: string) => {
    const r = spawnSync('bash', ['-c', `${redirect.replace('SCRIPT', `"${process.execPath}" --import=tsx --conditions=source "${script}"`)}`], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, F: dataPath },
    });
    t.is(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const piped = run('cat "$F" | SCRIPT');
  t.deepEqual(piped, { name: 'standard input', size: null, bytes: data.length, sha256: sha(data) });
  const redirected = run('SCRIPT < "$F"');
  t.deepEqual(redirected, { name: 'standard input', size: data.length, bytes: data.length, sha256: sha(data) });
});

test('readSmallInput: a file, a file over maxBytes, standard input refused', async (t) => {
  const sig = join(dir, 'os.tar.minisig');
  writeFileSync(sig, 'untrusted comment: x\nRWQ\n');
  t.is((await readSmallInput(sig)).toString(), 'untrusted comment: x\nRWQ\n');
  const big = await t.throwsAsync(readSmallInput(dataPath, { maxBytes: 4096 }), { instanceOf: InputError });
  t.is(big?.message, `${dataPath}: larger than 4096 bytes; not a signature file`);
  const stdin = await t.throwsAsync(readSmallInput('-'), { instanceOf: InputError });
  t.regex(stdin?.message ?? '', /standard input/);
});

test('proxyFor: lower-case wins, scheme optional, http and https separate', (t) => {
  const u = new URL('http://updates.example.org/os.tar');
  const s = new URL('https://updates.example.org/os.tar');
  t.is(proxyFor(u, {}), undefined);
  t.is(proxyFor(u, { HTTP_PROXY: 'http://up:3128', http_proxy: 'http://low:3128' })?.host, 'low:3128');
  t.is(proxyFor(u, { HTTP_PROXY: 'proxy.lan:8080' })?.href, 'http://proxy.lan:8080/');
  t.is(proxyFor(u, { HTTPS_PROXY: 'http://p:1' }), undefined);
  t.is(proxyFor(s, { HTTP_PROXY: 'http://p:1' }), undefined);
  t.is(proxyFor(s, { HTTPS_PROXY: 'http://p:1' })?.host, 'p:1');
});

test('proxyFor: NO_PROXY matches *, host suffixes with or without a dot, host:port, IPs', (t) => {
  const env = (no: string) => ({ HTTP_PROXY: 'http://p:1', NO_PROXY: no });
  const via = (url: string, no: string) => proxyFor(new URL(url), env(no)) !== undefined;
  t.false(via('http://a.example.org/', '*'));
  t.false(via('http://a.example.org/', 'example.org'));
  t.false(via('http://a.example.org/', '.example.org'));
  t.false(via('http://example.org/', '.example.org'));
  t.true(via('http://badexample.org/', 'example.org'));
  t.false(via('http://a.example.org:8080/', 'localhost, a.example.org:8080'));
  t.true(via('http://a.example.org:8081/', 'a.example.org:8080'));
  t.false(via('http://a.example.org/', 'a.example.org:80'));
  t.false(via('http://10.0.0.5/', '10.0.0.5'));
  t.false(via('http://[::1]:99/', '::1'));
  t.false(via('http://[::1]:99/', '[::1]:99'));
  t.true(via('http://other.net/', 'example.org,,  '));
  t.false(proxyFor(new URL('http://x.lan/'), { http_proxy: 'http://p:1', no_proxy: 'lan' }) !== undefined);
});

test('redactUrl strips user and password only', (t) => {
  t.is(redactUrl('https://u:pw@h.example/a/b?c=d'), 'https://h.example/a/b?c=d');
});
