// openUpdateInput over HTTP against a real nginx: resumes through a connection-cutting forwarder
// (as an in-between server, as HTTP_PROXY, and as a CONNECT proxy for https), redirects, NO_PROXY,
// and the one-line errors (404, refused, idle and connect timeouts, a server without Range).
import test, { type ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../packages/partitions/src/index.js';
import { openUpdateInput, readSmallInput, type OpenInputOptions, type UpdateInput } from '../packages/diskimage/src/index.js';
import { freePort, startNginx, type Nginx } from './helpers/nginx.js';
import { startDroppingProxy } from './helpers/dropping-proxy.js';
import { needCondition, skipOrFail } from './helpers/skip.js';

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'diskimg-http-'));
const www = join(dir, 'www');
mkdirSync(www);
const big = randomBytes(20 * MiB);
const bigSha = sha256(big);
const small = Buffer.from('untrusted comment: signature from minisign secret key\nRWQ…\n');
writeFileSync(join(www, 'big.bin'), big);
writeFileSync(join(www, 'small.minisig'), small);

let nginx: Nginx | undefined;
let skip: string | undefined;
const started = startNginx(dir, www, {
  tls: true,
  locations: `
    # Relative Locations, so the chain stays on the cutting forwarder's port.
    location = /r1 { absolute_redirect off; return 302 /r2; }
    location = /r2 { absolute_redirect off; return 307 /big.bin; }
    location = /loop { return 302 /loop; }`,
}).then((n) => {
  if (typeof n === 'string') skip = n;
  else nginx = n;
});

const closers: (() => Promise<void> | void)[] = [];
test.after.always(async () => {
  for (const c of closers) await c();
  await nginx?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** nginx, or undefined after skipOrFail (fails in strict mode) with why it did not start. */
async function need(t: ExecutionContext): Promise<Nginx | undefined> {
  await started;
  needCondition(t, nginx ? undefined : skip ?? 'nginx did not start', 'nginx');
  return nginx;
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Drain the stream, hashing it (as the update command's signature check does). */
async function drain(input: UpdateInput): Promise<{ sha: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const c of input.stream) {
    h.update(c);
    bytes += c.length;
  }
  return { sha: h.digest('hex'), bytes };
}

/** The error of `p` as a one-line InputError (asserted), or fail. */
async function inputError(t: ExecutionContext, p: Promise<unknown>): Promise<string> {
  const e = await t.throwsAsync(p, { instanceOf: InputError });
  const msg = e?.message ?? '';
  t.false(msg.includes('\n'), msg);
  t.notRegex(msg, /\n\s+at /);
  return msg;
}

const fast: OpenInputOptions = { retryDelayMs: 10, env: {} };
const cuts = [3 * MiB, 1 * MiB + 7, 5 * MiB, 2 * MiB + 333];

test.serial('plain in-between server cutting 4 times: byte-identical stream, stats.resumes = 4, Range + If-Range sent', async (t) => {
  const n = await need(t);
  if (!n) return;
  const proxy = await startDroppingProxy(n.port, cuts);
  closers.push(proxy.close);
  const before = n.accessLog().length;
  const input = await openUpdateInput(`http://127.0.0.1:${proxy.port}/big.bin`, fast);
  t.is(input.size, big.length);
  const got = await drain(input);
  t.is(got.bytes, big.length);
  t.is(got.sha, bigSha);
  t.is(proxy.cutCount(), cuts.length);
  t.is(input.stats.resumes, cuts.length);
  t.is(input.stats.bytes, big.length);
  const log = n.accessLog().slice(before);
  t.is(log.length, cuts.length + 1, log.join('\n'));
  t.regex(log[0], /^\/big\.bin 200 "-"/);
  for (const line of log.slice(1)) t.regex(line, /^\/big\.bin 206 "bytes=\d+-" "\S+"/); // If-Range: nginx's ETag
});

test('explicit HTTP_PROXY that cuts: absolute-URI requests for a host only the proxy can reach, resumed', async (t) => {
  const n = await need(t);
  if (!n) return;
  const proxy = await startDroppingProxy(n.port, cuts.slice(0, 3));
  closers.push(proxy.close);
  // .invalid never resolves: only the proxy can get there (it forwards everything to nginx).
  const input = await openUpdateInput('http://updates.psyops.invalid/big.bin', { ...fast, env: { HTTP_PROXY: `http://127.0.0.1:${proxy.port}` } });
  const got = await drain(input);
  t.is(got.sha, bigSha);
  t.is(input.stats.resumes, 3);
  t.is(proxy.requests.length, 4);
  for (const r of proxy.requests) t.is(r, 'GET http://updates.psyops.invalid/big.bin HTTP/1.1');
});

test('https through a CONNECT proxy that cuts inside the TLS tunnel: resumed, byte-identical', async (t) => {
  const n = await need(t);
  if (!n) return;
  if (!n.tlsPort || !n.cert) return skipOrFail(t, 'openssl could not make a certificate', { tool: 'openssl' });
  const proxy = await startDroppingProxy(n.port, [2 * MiB, 4 * MiB]);
  closers.push(proxy.close);
  const input = await openUpdateInput(`https://127.0.0.1:${n.tlsPort}/big.bin`, { ...fast, ca: n.cert, env: { https_proxy: `127.0.0.1:${proxy.port}` } });
  const got = await drain(input);
  t.is(got.sha, bigSha);
  t.is(input.stats.resumes, 2);
  t.deepEqual(proxy.requests, Array(3).fill(`CONNECT 127.0.0.1:${n.tlsPort} HTTP/1.1`));
});

test('https directly with the right CA works; without it a one-line TLS error', async (t) => {
  const n = await need(t);
  if (!n) return;
  if (!n.tlsPort || !n.cert) return skipOrFail(t, 'openssl could not make a certificate', { tool: 'openssl' });
  const url = `https://127.0.0.1:${n.tlsPort}/small.minisig`;
  t.deepEqual(await readSmallInput(url, { ...fast, ca: n.cert }), small);
  const msg = await inputError(t, openUpdateInput(url, fast));
  t.regex(msg, /^https:\/\/127\.0\.0\.1:\d+\/small\.minisig: TLS: .*self.signed/i);
});

test.serial('redirect chain (302, 307) is followed and the resume goes to the final URL', async (t) => {
  const n = await need(t);
  if (!n) return;
  // Connections 0 and 1 are the redirects; the file's first response is cut once.
  const proxy = await startDroppingProxy(n.port, [undefined, undefined, 4 * MiB]);
  closers.push(proxy.close);
  const before = n.accessLog().length;
  const input = await openUpdateInput(`http://127.0.0.1:${proxy.port}/r1`, fast);
  t.is(input.name, `http://127.0.0.1:${proxy.port}/r1`);
  const got = await drain(input);
  t.is(got.sha, bigSha);
  t.is(input.stats.resumes, 1);
  const log = n.accessLog().slice(before);
  t.deepEqual(log.map((l) => l.split(' ').slice(0, 2).join(' ')), ['/r1 302', '/r2 307', '/big.bin 200', '/big.bin 206']);
});

test('a redirect loop stops after 10 redirects with a one-line error', async (t) => {
  const n = await need(t);
  if (!n) return;
  const msg = await inputError(t, openUpdateInput(`http://127.0.0.1:${n.port}/loop`, fast));
  t.regex(msg, /: more than 10 redirects/);
});

test('NO_PROXY bypasses a (dead) proxy for a matching host; without it the dead proxy is used and fails', async (t) => {
  const n = await need(t);
  if (!n) return;
  const dead = await freePort();
  const url = `http://127.0.0.1:${n.port}/small.minisig`;
  for (const noProxy of ['127.0.0.1', `example.com, 127.0.0.1:${n.port}`, '*']) {
    const env = { HTTP_PROXY: `http://127.0.0.1:${dead}`, NO_PROXY: noProxy };
    t.deepEqual(await readSmallInput(url, { ...fast, env }), small, noProxy);
  }
  const env = { http_proxy: `http://127.0.0.1:${dead}`, no_proxy: `127.0.0.1:${n.port + 1}` };
  const msg = await inputError(t, readSmallInput(url, { ...fast, env }));
  t.is(msg, `${url}: connection to proxy 127.0.0.1:${dead} refused`);
});

test('404 is a one-line error naming the URL and the status; credentials never appear', async (t) => {
  const n = await need(t);
  if (!n) return;
  const msg = await inputError(t, openUpdateInput(`http://user:s3cret@127.0.0.1:${n.port}/missing.tar`, fast));
  t.is(msg, `http://127.0.0.1:${n.port}/missing.tar: HTTP 404 Not Found`);
  const msg2 = await inputError(t, readSmallInput(`http://user:s3cret@127.0.0.1:${n.port}/missing.minisig`, fast));
  t.notRegex(msg2, /s3cret|user/);
});

test('readSmallInput: reads a small file over HTTP, refuses one over maxBytes', async (t) => {
  const n = await need(t);
  if (!n) return;
  t.deepEqual(await readSmallInput(`http://127.0.0.1:${n.port}/small.minisig`, fast), small);
  const msg = await inputError(t, readSmallInput(`http://127.0.0.1:${n.port}/big.bin`, { ...fast, maxBytes: 4096 }));
  t.regex(msg, /big\.bin: larger than 4096 bytes/);
});

/** A throwaway Node HTTP server; closed after the tests. */
async function nodeServer(handler: http.RequestListener): Promise<number> {
  const server = http.createServer(handler);
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => (sockets.forEach((s) => s.destroy()), server.close(() => r()))));
  return (server.address() as net.AddressInfo).port;
}

test('a server without Range support that drops the connection: the clear one-line error, after exactly the bytes it sent', async (t) => {
  const body = randomBytes(5 * MiB);
  let requests = 0;
  const port = await nodeServer((req, res) => {
    requests++;
    // Ignores Range; the first answer is cut after 1 MiB.
    res.writeHead(200, { 'Content-Length': body.length, ETag: '"v1"' });
    if (requests === 1) res.write(body.subarray(0, MiB), () => res.socket?.destroy());
    else res.end(body);
  });
  const url = `http://127.0.0.1:${port}/os.tar`;
  const input = await openUpdateInput(url, fast);
  let got = 0;
  const msg = await inputError(t, (async () => {
    for await (const c of input.stream) got += c.length;
  })());
  t.is(got, MiB);
  t.is(msg, `${url}: the connection dropped after ${MiB} bytes and the server does not support resuming (Range); download it to a file and pass --os-tar FILE`);
  t.is(requests, 2);
});

test('the file changed on the server between the drop and the resume (If-Range fails): one-line error', async (t) => {
  const body = randomBytes(2 * MiB);
  let requests = 0;
  const port = await nodeServer((req, res) => {
    requests++;
    const etag = requests === 1 ? '"v1"' : '"v2"';
    if (requests > 1 && req.headers['if-range'] === etag && req.headers.range) {
      res.writeHead(206, { 'Content-Range': `bytes ${MiB}-${body.length - 1}/${body.length}`, 'Content-Length': body.length - MiB });
      return res.end(body.subarray(MiB));
    }
    res.writeHead(200, { 'Content-Length': body.length, ETag: etag });
    if (requests === 1) res.write(body.subarray(0, MiB), () => res.socket?.destroy());
    else res.end(body);
  });
  const input = await openUpdateInput(`http://127.0.0.1:${port}/os.tar`, fast);
  const msg = await inputError(t, drain(input));
  t.regex(msg, /dropped after 1048576 bytes and the file on the server changed \(ETag "v1" → "v2"\)/);
});

test('connection refused, an unknown host: one-line errors', async (t) => {
  const port = await freePort();
  const msg = await inputError(t, openUpdateInput(`http://127.0.0.1:${port}/os.tar`, fast));
  t.is(msg, `http://127.0.0.1:${port}/os.tar: connection to 127.0.0.1:${port} refused`);
  // .invalid never resolves (RFC 6761); without DNS at all it is a connect timeout instead.
  const dns = await inputError(t, openUpdateInput('http://user:pw@updates.psyops.invalid/os.tar', { ...fast, connectTimeoutMs: 5000 }));
  t.regex(dns, /^http:\/\/updates\.psyops\.invalid\/os\.tar: (cannot resolve updates\.psyops\.invalid \((ENOTFOUND|EAI_AGAIN)\)|no connection .* \(connect timeout\))$/);
});

test('idle timeout: a server that sends headers then stalls gives a one-line error after the resumes', async (t) => {
  let requests = 0;
  const port = await nodeServer((_req, res) => {
    requests++;
    res.writeHead(200, { 'Content-Length': 1000 });
    res.flushHeaders(); // then nothing
  });
  // 2 s, not less: on a loaded machine the response head alone can take a few hundred ms.
  const input = await openUpdateInput(`http://127.0.0.1:${port}/os.tar`, { ...fast, idleTimeoutMs: 2000, maxResumes: 2 });
  const msg = await inputError(t, drain(input));
  t.is(msg, `http://127.0.0.1:${port}/os.tar: no data from 127.0.0.1:${port} for 2 s (idle timeout); gave up after 2 resumes`);
  t.is(requests, 3);
  t.is(input.stats.resumes, 2);
});

/** A server that sends a 206-capable head, then one byte every `everyMs` (or nothing), until the client goes. */
async function trickleServer(everyMs: number | undefined, onRequest?: (req: http.IncomingMessage) => void): Promise<number> {
  return nodeServer((req, res) => {
    onRequest?.(req);
    const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    if (from) res.writeHead(206, { 'Content-Length': 1000 - from, 'Content-Range': `bytes ${from}-999/1000`, ETag: '"t"' });
    else res.writeHead(200, { 'Content-Length': 1000, ETag: '"t"' });
    res.flushHeaders();
    if (everyMs === undefined) return;
    const timer = setInterval(() => res.write('x'), everyMs);
    res.on('close', () => clearInterval(timer));
  });
}

test('stall rule: one byte per 100 ms is fewer than --min-rate over --stall-window: a failed attempt, resumed, then the one line', async (t) => {
  const ranges: (string | undefined)[] = [];
  const port = await trickleServer(100, (req) => ranges.push(req.headers.range));
  const url = `http://127.0.0.1:${port}/os.tar`;
  const input = await openUpdateInput(url, { ...fast, minRate: 100, stallWindowMs: 700, maxResumes: 1, deadlineMs: 0 });
  const msg = await inputError(t, drain(input));
  t.regex(msg, new RegExp(`^${url.replace(/\./g, '\\.')}: stalled: \\d bytes from 127\\.0\\.0\\.1:${port} in 0\\.7 s, fewer than 70 \\(--min-rate 100 bytes/s over --stall-window 0\\.7\\); gave up after 1 resume$`));
  t.is(input.stats.resumes, 1);
  t.is(ranges.length, 2);
  t.regex(ranges[1] ?? '', /^bytes=[1-9]\d*-$/, 'the stalled attempt is resumed where it stopped');
});

test('deadline: headers then silence, with idle and stall clocks far away, ends at --http-timeout with one line', async (t) => {
  const port = await trickleServer(undefined);
  const url = `http://127.0.0.1:${port}/os.tar`;
  const t0 = Date.now();
  const input = await openUpdateInput(url, { ...fast, idleTimeoutMs: 60_000, stallWindowMs: 60_000, deadlineMs: 1500 });
  const msg = await inputError(t, drain(input));
  const took = Date.now() - t0;
  t.is(msg, `${url}: not complete within 1.5 s (the --http-timeout limit): 0 of 1000 bytes received`);
  t.true(took >= 1400 && took < 5000, `${took} ms`);
});

test('deadline across resumes: a trickle that stalls every window stops at the deadline, naming both rules', async (t) => {
  const port = await trickleServer(200);
  const url = `http://127.0.0.1:${port}/os.tar`;
  const t0 = Date.now();
  const input = await openUpdateInput(url, { ...fast, minRate: 100, stallWindowMs: 500, deadlineMs: 2500 });
  const msg = await inputError(t, drain(input));
  t.true(Date.now() - t0 < 6000);
  t.regex(msg, /: not complete within 2\.5 s \(the --http-timeout limit\): \d+ of 1000 bytes received in \d+ attempts; last: stalled: .* \(--min-rate 100 bytes\/s over --stall-window 0\.5\)$/);
  t.true(input.stats.resumes >= 2);
});

test('stall rule: a slow consumer (back-pressure) is not a stall; the window counts only time spent waiting', async (t) => {
  const body = randomBytes(64 * 1024);
  const port = await nodeServer((_req, res) => {
    res.writeHead(200, { 'Content-Length': body.length });
    res.end(body);
  });
  const input = await openUpdateInput(`http://127.0.0.1:${port}/x`, { ...fast, minRate: 1000, stallWindowMs: 200, deadlineMs: 0 });
  let bytes = 0;
  for await (const c of input.stream) {
    bytes += c.length;
    await new Promise((r) => setTimeout(r, 150)); // the consumer is slower than a window
  }
  t.is(bytes, body.length);
  t.is(input.stats.resumes, 0);
});

test('idle timeout waiting for the response head, and connect timeout in a TLS handshake that never ends', async (t) => {
  const silent = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const sockets: net.Socket[] = [];
  silent.on('connection', (s) => sockets.push(s));
  closers.push(() => new Promise<void>((r) => (sockets.forEach((s) => s.destroy()), silent.close(() => r()))));
  const port = (silent.address() as net.AddressInfo).port;
  const head = await inputError(t, openUpdateInput(`http://127.0.0.1:${port}/os.tar`, { ...fast, idleTimeoutMs: 200 }));
  t.is(head, `http://127.0.0.1:${port}/os.tar: no response from 127.0.0.1:${port} within 0.2 s (idle timeout)`);
  const tls = await inputError(t, openUpdateInput(`https://127.0.0.1:${port}/os.tar`, { ...fast, connectTimeoutMs: 300 }));
  t.is(tls, `https://127.0.0.1:${port}/os.tar: no connection to 127.0.0.1:${port} within 0.3 s (connect timeout)`);
});

// Serial: alone in this process, so the rss it measures is its own.
test.serial('back-pressure: a 200 MiB download read slowly keeps memory and the sender far below the file size', async (t) => {
  const total = 200 * MiB;
  const block = randomBytes(MiB);
  let written = 0;
  const port = await nodeServer(async (_req, res) => {
    res.writeHead(200, { 'Content-Length': total });
    res.on('error', () => {});
    while (written < total && !res.destroyed) {
      written += block.length;
      if (!res.write(block)) {
        await new Promise<void>((r) => {
          const done = () => (res.off('drain', done), res.off('close', done), r());
          res.on('drain', done).on('close', done);
        });
      }
    }
    res.end();
  });
  const rss0 = process.memoryUsage().rss;
  let maxRss = rss0;
  const input = await openUpdateInput(`http://127.0.0.1:${port}/big`, fast);
  const h = createHash('sha256');
  let n = 0;
  let chunks = 0;
  const writtenAtPauses: number[] = [];
  for await (const c of input.stream) {
    h.update(c);
    n += c.length;
    // Stop reading for a while, three times: an unbounded reader would take in everything meanwhile.
    if (chunks++ % 1000 === 0 && writtenAtPauses.length < 3) {
      const at = n;
      await new Promise((r) => setTimeout(r, 700));
      writtenAtPauses.push(written - at);
    }
    if (chunks % 64 === 0) maxRss = Math.max(maxRss, process.memoryUsage().rss);
  }
  t.is(n, total);
  t.is(input.stats.bytes, total);
  t.log(`sent ahead of the reader at pauses: ${writtenAtPauses.map((w) => (w / MiB).toFixed(1)).join(', ')} MiB; rss growth ${((maxRss - rss0) / MiB).toFixed(1)} MiB`);
  for (const w of writtenAtPauses) t.true(w < 48 * MiB, `sender was ${w} bytes ahead`);
  t.true(maxRss - rss0 < 100 * MiB, `rss grew by ${maxRss - rss0}`);
});

test('a drop before the consumer starts reading is still noticed and resumed', async (t) => {
  const n = await need(t);
  if (!n) return;
  const proxy = await startDroppingProxy(n.port, [200 * 1024]);
  closers.push(proxy.close);
  const input = await openUpdateInput(`http://127.0.0.1:${proxy.port}/big.bin`, fast);
  await new Promise((r) => setTimeout(r, 300)); // the cut happens while nobody reads
  const got = await drain(input);
  t.is(got.sha, bigSha);
  t.is(input.stats.resumes, 1);
});
