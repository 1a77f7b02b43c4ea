/**
 * HTTP(S) download as one pull-based byte stream, for `diskimg update --os-tar URL`.
 *
 * Node's own http/https only. Each request gets its own socket (no agent, `Connection: close`):
 * plain TCP or TLS, directly or through a proxy (absolute-URI requests for http://, CONNECT then
 * TLS for https://), so one connect timeout covers DNS, TCP, CONNECT and the TLS handshake.
 *
 * Resuming: the bytes are handed downstream as they arrive (into a partition and the signature
 * hash), so after a dropped connection the transfer can only continue, never restart. A resume
 * asks for `Range: bytes=<delivered>-` with `If-Range` (the first response's strong ETag, else its
 * Last-Modified) and accepts only `206` whose `Content-Range` starts at `delivered` (and whose
 * total, when known, is unchanged). A `200` means the server ignores Range or the file changed:
 * that is a one-line InputError telling the user to download to a file first. Before any byte was
 * delivered a retry is a plain re-request, since nothing downstream has seen data yet.
 *
 * Limits (issue 26.5): a connection that delivers fewer than `minRate` × `stallWindowMs` bytes
 * within one stall window (time spent waiting for data only, so back-pressure is never a stall)
 * is dropped and counts as a failed attempt (resumed, up to `maxResumes`); the whole transfer,
 * connects, redirects, resumes and waits included, must end within `deadlineMs`.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { InputError } from '@diskimg/partitions/internal';

export interface HttpOptions {
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxResumes?: number;
  retryDelayMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Trusted CA certificates (PEM) for https, replacing Node's bundled list; default that list. */
  ca?: string | Buffer | (string | Buffer)[];
  /** The whole transfer (resumes included) must end within this; 0 = no limit. Default: httpLimits(). */
  deadlineMs?: number;
  /** Stall rule: fewer than minRate bytes/s over one stall window = a dropped connection; 0 = off. */
  minRate?: number;
  /** The stall rule's window. */
  stallWindowMs?: number;
}

/** The transfer limits the CLI sets from --http-timeout, --min-rate and --stall-window. */
export interface HttpLimits {
  deadlineMs: number;
  minRate: number;
  stallWindowMs: number;
}

/** Built-in defaults: an hour per transfer; fewer than 1 KiB/s over 60 s of waiting is a stall. */
export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = Object.freeze({ deadlineMs: 3_600_000, minRate: 1024, stallWindowMs: 60_000 });

let processLimits: HttpLimits = { ...DEFAULT_HTTP_LIMITS };

/**
 * Set the limits every transfer of this process uses unless its options give its own (the CLI
 * calls this once from its options, so every command's downloads, pointers included, obey them).
 */
export function setHttpLimits(l: Partial<HttpLimits>): void {
  processLimits = { ...processLimits, ...Object.fromEntries(Object.entries(l).filter(([, v]) => v !== undefined)) };
}

/** The limits in force for this process (setHttpLimits over DEFAULT_HTTP_LIMITS). */
export function httpLimits(): HttpLimits {
  return { ...processLimits };
}

export const MAX_REDIRECTS = 10;
const REDIRECT = new Set([301, 302, 303, 307, 308]);
/** Gateway answers that are worth another try during a resume (the origin may be back shortly). */
const TRANSIENT = new Set([502, 503, 504]);

/** The URL without user:password, for messages and `name`. */
export function redactUrl(u: URL | string): string {
  const c = new URL(u.toString());
  c.username = '';
  c.password = '';
  return c.toString();
}

function defaultPort(u: URL): number {
  return u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
}

/** host:port, with IPv6 literals bracketed (as URL.hostname already has them). */
function authority(u: URL): string {
  return `${u.hostname}:${defaultPort(u)}`;
}

/**
 * The proxy for `target` from the environment, or undefined for a direct connection.
 * Lower-case names win over upper-case ones (curl's order). NO_PROXY is a comma list of `*`,
 * host suffixes (`example.com` and `.example.com` both match `a.example.com`) and `host:port`.
 */
export function proxyFor(target: URL, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  const https = target.protocol === 'https:';
  const raw = https ? (env.https_proxy ?? env.HTTPS_PROXY) : (env.http_proxy ?? env.HTTP_PROXY);
  if (!raw) return undefined;
  if (bypassProxy(target, env.no_proxy ?? env.NO_PROXY ?? '')) return undefined;
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    // The value may hold a password: not repeated here.
    throw new InputError(`${https ? 'HTTPS_PROXY' : 'HTTP_PROXY'}: not a valid proxy URL`);
  }
}

function bypassProxy(target: URL, noProxy: string): boolean {
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = defaultPort(target);
  for (let entry of noProxy.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    if (entry === '*') return true;
    let entryPort: number | undefined;
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry);
    if (m) {
      entry = m[1];
      entryPort = Number(m[2]);
    }
    entry = entry.replace(/^\[|\]$/g, '').replace(/^\*?\./, '');
    if (entryPort !== undefined && entryPort !== port) continue;
    if (host === entry || host.endsWith(`.${entry}`)) return true;
  }
  return false;
}

function basicAuth(u: URL): string | undefined {
  if (!u.username && !u.password) return undefined;
  return 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
}

/** A failure after which the transfer may be resumed (or retried, before any byte). */
class DropError extends Error {}

/** The transfer's deadline passed: never resumed. */
class DeadlineError extends Error {}

/** The transfer's clock: how long any wait may still take before the deadline. */
class Clock {
  private readonly end: number;
  constructor(readonly deadlineMs: number) {
    this.end = deadlineMs > 0 ? Date.now() + deadlineMs : Infinity;
  }
  remaining(): number {
    return Math.max(0, this.end - Date.now());
  }
  /** A wait of `ms`, cut to the deadline: its length, and whether the deadline is what ends it. */
  cap(ms: number): { ms: number; deadline: boolean } {
    const r = this.remaining();
    return r <= ms ? { ms: r, deadline: true } : { ms, deadline: false };
  }
  check(): void {
    if (this.remaining() <= 0) throw new DeadlineError('deadline');
  }
}

type ExchangeOptions = Required<Pick<HttpOptions, 'connectTimeoutMs' | 'idleTimeoutMs'>> & HttpOptions & { clock: Clock };

function describeNetError(err: NodeJS.ErrnoException, where: string): string {
  switch (err.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve ${where} (${err.code})`;
    case 'ECONNREFUSED':
      return `connection to ${where} refused`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${where} unreachable (${err.code})`;
    case 'ECONNRESET':
      return `connection to ${where} reset`;
    default:
      return `${where}: ${err.code ? `${err.code}: ` : ''}${err.message.split('\n')[0]}`;
  }
}

function once<T>(emitter: NodeJS.EventEmitter, ok: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onOk = (v: T) => {
      emitter.off('error', onErr);
      resolve(v);
    };
    const onErr = (e: Error) => {
      emitter.off(ok, onOk);
      reject(e);
    };
    emitter.once(ok, onOk);
    emitter.once('error', onErr);
  });
}

/**
 * TCP or TLS to `u` (TLS when `u` is https), or TLS over an existing socket. `track` sees each
 * socket as soon as it exists, so a connect timeout can destroy it mid-handshake.
 */
async function connectTo(u: URL, ca: HttpOptions['ca'], track: (s: Duplex) => void, over?: Duplex): Promise<Duplex> {
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (u.protocol === 'https:') {
    const servername = net.isIP(host) ? undefined : host;
    const s = tls.connect({ host, port: defaultPort(u), servername, ca, socket: over as net.Socket | undefined, ALPNProtocols: ['http/1.1'] });
    track(s);
    await once(s, 'secureConnect');
    return s;
  }
  if (over) return over;
  const s = net.connect({ host, port: defaultPort(u) });
  track(s);
  await once(s, 'connect');
  return s;
}

/** CONNECT host:port through an established proxy socket; resolves when the tunnel is open. */
async function tunnel(sock: Duplex, target: URL, proxy: URL): Promise<void> {
  const auth = basicAuth(proxy);
  sock.write(
    `CONNECT ${authority(target)} HTTP/1.1\r\nHost: ${authority(target)}\r\n` +
      (auth ? `Proxy-Authorization: ${auth}\r\n` : '') +
      '\r\n',
  );
  let head = Buffer.alloc(0);
  for (;;) {
    const chunk = await new Promise<Buffer | null>((resolve, reject) => {
      const c = sock.read() as Buffer | null;
      if (c) return resolve(c);
      const cleanup = () => {
        sock.off('readable', onReadable);
        sock.off('end', onEnd);
        sock.off('error', onErr);
      };
      const onReadable = () => {
        cleanup();
        resolve((sock.read() as Buffer | null) ?? Buffer.alloc(0));
      };
      const onEnd = () => {
        cleanup();
        resolve(null);
      };
      const onErr = (e: Error) => {
        cleanup();
        reject(e);
      };
      sock.on('readable', onReadable);
      sock.once('end', onEnd);
      sock.once('error', onErr);
    });
    if (chunk === null) throw new InputError(`proxy ${redactUrl(proxy)} closed the connection during CONNECT`);
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > 64 * 1024) throw new InputError(`proxy ${redactUrl(proxy)}: CONNECT response header too long`);
      continue;
    }
    const status = /^HTTP\/1\.[01] (\d{3}) ?([^\r\n]*)/.exec(head.subarray(0, end).toString('latin1'));
    if (!status) throw new InputError(`proxy ${redactUrl(proxy)}: not an HTTP answer to CONNECT`);
    if (status[1] !== '200') throw new InputError(`proxy ${redactUrl(proxy)} refused CONNECT to ${authority(target)}: ${status[1]} ${status[2]}`.trim());
    if (head.length > end + 4) sock.unshift(head.subarray(end + 4)); // the server spoke first; keep its bytes
    return;
  }
}

interface Exchange {
  req: http.ClientRequest;
  res: http.IncomingMessage;
  url: URL;
}

/**
 * One GET of `url` (no redirects followed): open the socket within the connect timeout, send the
 * request, wait for the response head within the idle timeout.
 */
async function exchange(url: URL, headers: Record<string, string>, opts: ExchangeOptions): Promise<Exchange> {
  const proxy = proxyFor(url, opts.env);
  const via = proxy ? `proxy ${proxy.host}` : url.host;
  opts.clock.check();
  let sock: Duplex | undefined;
  const track = (s: Duplex) => (sock = s);
  let timedOut = false;
  const connectWait = opts.clock.cap(opts.connectTimeoutMs);
  const timer = setTimeout(() => {
    timedOut = true;
    sock?.destroy(new Error('connect timeout')); // with an error, so the pending await rejects
  }, connectWait.ms);
  try {
    if (!proxy) {
      await connectTo(url, opts.ca, track);
    } else {
      const raw = await connectTo(proxy, opts.ca, track);
      if (url.protocol === 'https:') {
        await tunnel(raw, url, proxy);
        await connectTo(url, opts.ca, track, raw);
      }
    }
  } catch (e) {
    sock?.destroy();
    if (e instanceof InputError) throw e;
    if (timedOut && connectWait.deadline) throw new DeadlineError('deadline');
    if (timedOut) throw new DropError(`no connection to ${via} within ${seconds(opts.connectTimeoutMs)} (connect timeout)`);
    const err = e as NodeJS.ErrnoException;
    const msg = describeNetError(err, via);
    // A TLS failure (certificate, protocol) will not get better on retry.
    if (/CERT|SSL|TLS|SELF_SIGNED|HOSTNAME|ERR_TLS/.test(err.code ?? '')) throw new InputError(`${redactUrl(url)}: TLS: ${err.message.split('\n')[0]}`);
    throw new DropError(msg);
  } finally {
    clearTimeout(timer);
  }
  const s = sock!;
  s.on('error', () => {}); // reported through the request
  const auth = basicAuth(url);
  const path = proxy && url.protocol === 'http:' ? redactUrl(url) : url.pathname + url.search;
  const proxyAuth = proxy && url.protocol === 'http:' ? basicAuth(proxy) : undefined;
  const req = http.request({
    method: 'GET',
    path,
    createConnection: () => s as net.Socket,
    headers: {
      Host: url.host,
      'User-Agent': 'diskimg',
      'Accept-Encoding': 'identity', // the signature covers the bytes as stored
      Connection: 'close',
      ...(auth ? { Authorization: auth } : {}),
      ...(proxyAuth ? { 'Proxy-Authorization': proxyAuth } : {}),
      ...headers,
    },
  });
  return await new Promise<Exchange>((resolve, reject) => {
    const headWait = opts.clock.cap(opts.idleTimeoutMs);
    const idle = setTimeout(() => {
      req.destroy(headWait.deadline ? new DeadlineError('deadline') : new DropError(`no response from ${via} within ${seconds(opts.idleTimeoutMs)} (idle timeout)`));
    }, headWait.ms);
    req.once('response', (res) => {
      clearTimeout(idle);
      resolve({ req, res, url });
    });
    req.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(idle);
      s.destroy();
      reject(e instanceof DropError || e instanceof DeadlineError ? e : new DropError(e.message === 'socket hang up' ? `${via} closed the connection without answering` : describeNetError(e, via)));
    });
    req.end();
  });
}

/** GET `start`, following up to MAX_REDIRECTS redirects. Credentials do not follow to another origin. */
async function get(start: URL, headers: Record<string, string>, opts: ExchangeOptions): Promise<Exchange> {
  let url = start;
  for (let hops = 0; ; hops++) {
    const ex = await exchange(url, headers, opts);
    const status = ex.res.statusCode ?? 0;
    const location = ex.res.headers.location;
    if (!REDIRECT.has(status) || !location) return ex;
    ex.res.resume();
    ex.req.destroy();
    if (hops >= MAX_REDIRECTS) throw new InputError(`${redactUrl(start)}: more than ${MAX_REDIRECTS} redirects (last to ${redactUrl(new URL(location, url))})`);
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw new InputError(`${redactUrl(url)}: redirect to an invalid location`);
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new InputError(`${redactUrl(url)}: redirect to unsupported ${next.protocol} URL`);
    if (next.origin !== url.origin) {
      next.username = '';
      next.password = '';
    } else if (!next.username && url.username) {
      next.username = url.username;
      next.password = url.password;
    }
    url = next;
  }
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

function statusLine(res: http.IncomingMessage): string {
  return `${res.statusCode} ${res.statusMessage ?? ''}`.trim();
}

/** The If-Range validator: a strong ETag, else Last-Modified (a weak ETag cannot be used, RFC 9110 §13.1.5). */
function validatorOf(res: http.IncomingMessage): { header: string; value: string } | undefined {
  const etag = res.headers.etag;
  if (etag && !etag.startsWith('W/')) return { header: 'etag', value: etag };
  const lm = res.headers['last-modified'];
  if (lm) return { header: 'last-modified', value: lm };
  return undefined;
}

/** Content-Range: bytes first-last/complete (complete may be `*`). */
function parseContentRange(v: string | undefined): { first: number; last: number; complete?: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v?.trim() ?? '');
  if (!m) return undefined;
  return { first: Number(m[1]), last: Number(m[2]), complete: m[3] === '*' ? undefined : Number(m[3]) };
}

export interface HttpDownload {
  /** The URL as the user gave it, credentials stripped. */
  name: string;
  /** Total size from the first response's Content-Length, when it had one. */
  size?: number;
  /** The URL after redirects (resumes go here). */
  finalUrl: string;
  stream: AsyncIterable<Buffer>;
}

export interface HttpStats {
  bytes: number;
  resumes: number;
}

/**
 * Start downloading `spec`: the first response's head is awaited here, so a bad URL, a refused
 * connection or an HTTP error rejects at once, before anything is consumed.
 */
export async function openHttp(spec: string, opts: HttpOptions, stats: HttpStats, onProgress?: (bytes: number, total?: number) => void): Promise<HttpDownload> {
  let start: URL;
  try {
    start = new URL(spec);
  } catch {
    throw new InputError(`${spec.replace(/\/\/[^/@]*@/, '//')}: not a valid URL`);
  }
  const name = redactUrl(start);
  const limits = httpLimits();
  const deadlineMs = opts.deadlineMs ?? limits.deadlineMs;
  const stall: Stall = { minRate: opts.minRate ?? limits.minRate, windowMs: opts.stallWindowMs ?? limits.stallWindowMs };
  const clock = new Clock(deadlineMs);
  const o = { ...opts, connectTimeoutMs: opts.connectTimeoutMs ?? 30_000, idleTimeoutMs: opts.idleTimeoutMs ?? 60_000, clock };
  const maxResumes = opts.maxResumes ?? 10;
  const retryDelayMs = opts.retryDelayMs ?? 1000;

  /** The one line when the deadline passed: the rule, how far it got, and the last failure. */
  const overDeadline = (delivered: number, last?: string): InputError =>
    new InputError(
      `${name}: not complete within ${seconds(deadlineMs)} (the --http-timeout limit): ${delivered}${size === undefined ? '' : ` of ${size}`} bytes received` +
        `${stats.resumes ? ` in ${stats.resumes + 1} attempts` : ''}${last ? `; last: ${last}` : ''}`,
    );
  let size: number | undefined;

  const fail = (e: unknown): never => {
    if (e instanceof DropError) throw new InputError(`${name}: ${e.message}`);
    if (e instanceof DeadlineError) throw overDeadline(0);
    throw e;
  };

  let ex = await get(start, {}, o).catch(fail);
  if (ex.res.statusCode !== 200) {
    ex.res.resume();
    ex.req.destroy();
    throw new InputError(`${name}: HTTP ${statusLine(ex.res)}`);
  }
  const cl = ex.res.headers['content-length'];
  size = cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : undefined;
  const validator = validatorOf(ex.res);
  const finalUrl = ex.url;

  /** A new response that continues at `delivered`, or throws (DropError to try again). */
  async function reopen(delivered: number, cause: string): Promise<Exchange> {
    if (delivered === 0) {
      const next = await get(finalUrl, {}, o);
      if (next.res.statusCode === 200) return next;
      next.req.destroy();
      if (TRANSIENT.has(next.res.statusCode ?? 0)) throw new DropError(`${cause}, then HTTP ${statusLine(next.res)}`);
      throw new InputError(`${name}: HTTP ${statusLine(next.res)} (after ${cause})`);
    }
    const headers: Record<string, string> = { Range: `bytes=${delivered}-` };
    if (validator) headers['If-Range'] = validator.value;
    const next = await get(finalUrl, headers, o);
    const status = next.res.statusCode ?? 0;
    const cannot = (why: string) => {
      next.req.destroy();
      return new InputError(`${name}: the connection dropped after ${delivered} bytes and ${why}; download it to a file and pass --os-tar FILE`);
    };
    if (status === 206) {
      const cr = parseContentRange(next.res.headers['content-range']);
      if (!cr || cr.first !== delivered) throw cannot(`the server resumed at the wrong place (Content-Range: ${next.res.headers['content-range'] ?? 'missing'})`);
      if (size !== undefined && cr.complete !== undefined && cr.complete !== size) throw cannot(`the file on the server changed size (${size} → ${cr.complete} bytes)`);
      return next;
    }
    if (status === 200) {
      const now = validator ? next.res.headers[validator.header] : undefined;
      if (validator && now && now !== validator.value) throw cannot(`the file on the server changed (${validator.header === 'etag' ? 'ETag' : 'Last-Modified'} ${validator.value} → ${now}), so it cannot be resumed`);
      throw cannot('the server does not support resuming (Range)');
    }
    next.req.destroy();
    if (TRANSIENT.has(status)) throw new DropError(`${cause}, then HTTP ${statusLine(next.res)}`);
    throw new InputError(`${name}: resuming after ${delivered} bytes: HTTP ${statusLine(next.res)}`);
  }

  async function* body(): AsyncGenerator<Buffer> {
    let delivered = 0;
    let current: Exchange | undefined = ex;
    let lastCause: string | undefined; // the last failed attempt, for the deadline's message
    try {
      for (;;) {
        let cause: string;
        try {
          if (!current) throw new Error('unreachable');
          for await (const chunk of idleChunks(current, o.idleTimeoutMs, stall, clock)) {
            delivered += chunk.length;
            stats.bytes = delivered;
            onProgress?.(delivered, size);
            yield chunk;
          }
          if (size === undefined || delivered === size) return;
          if (delivered > size) throw new InputError(`${name}: the server sent more than its Content-Length (${size} bytes)`);
          cause = `the connection closed after ${delivered} of ${size} bytes`;
        } catch (e) {
          if (e instanceof DeadlineError) throw overDeadline(delivered, lastCause);
          if (!(e instanceof DropError)) throw e;
          cause = e.message;
        }
        lastCause = cause;
        current?.req.destroy();
        current = undefined;
        // Keep trying to reopen; each attempt counts as a resume.
        while (!current) {
          if (stats.resumes >= maxResumes) {
            throw new InputError(`${name}: ${cause}; gave up after ${stats.resumes} resume${stats.resumes === 1 ? '' : 's'}`);
          }
          const wait = clock.cap(retryDelayMs);
          await new Promise((r) => setTimeout(r, wait.ms));
          if (wait.deadline) throw overDeadline(delivered, cause);
          stats.resumes++;
          try {
            current = await reopen(delivered, cause);
          } catch (e) {
            if (e instanceof DeadlineError) throw overDeadline(delivered, cause);
            if (!(e instanceof DropError)) throw e;
            cause = lastCause = e.message;
          }
        }
      }
    } finally {
      current?.req.destroy();
    }
  }

  return { name, size, finalUrl: redactUrl(finalUrl), stream: body() };
}

/** The stall rule: at least minRate bytes per second over each window of waiting (0 = off). */
interface Stall {
  minRate: number;
  windowMs: number;
}

/**
 * The response body's chunks, pulled one at a time. The idle and stall clocks run only while we
 * wait for a chunk, so a slow consumer (back-pressure) is never mistaken for a dead or slow
 * server. A stall window ends after `windowMs` of waiting: fewer than minRate × window bytes in it
 * is a stall. Socket errors, timeouts and stalls become DropError (resumed); the deadline,
 * DeadlineError.
 */
async function* idleChunks(ex: Exchange, idleMs: number, stall: Stall, clock: Clock): AsyncGenerator<Buffer> {
  const it = ex.res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const where = ex.url.host;
  const stallOn = stall.minRate > 0 && stall.windowMs > 0;
  const need = Math.ceil((stall.minRate * stall.windowMs) / 1000);
  const stalled = (got: number) =>
    new DropError(`stalled: ${got} bytes from ${where} in ${seconds(stall.windowMs)}, fewer than ${need} (--min-rate ${stall.minRate} bytes/s over --stall-window ${stall.windowMs / 1000})`);
  let waited = 0; // waiting time in the current stall window
  let got = 0; // bytes in it
  let next: Promise<IteratorResult<Buffer>> | undefined;
  for (;;) {
    if (!next) {
      next = it.next();
      next.catch(() => {}); // rejected after we destroy on timeout; the timeout is the error reported
    }
    // The first of: the idle timeout, the end of the stall window, the deadline.
    let wait = { ms: idleMs, why: 'idle' as 'idle' | 'window' | 'deadline' };
    if (stallOn && stall.windowMs - waited < wait.ms) wait = { ms: stall.windowMs - waited, why: 'window' };
    const cap = clock.cap(wait.ms);
    if (cap.deadline) wait = { ms: cap.ms, why: 'deadline' };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), wait.ms);
    });
    const started = Date.now();
    let r: IteratorResult<Buffer> | 'timeout';
    try {
      r = await Promise.race([next, timeout]);
    } catch (e) {
      ex.req.destroy();
      const err = e as NodeJS.ErrnoException;
      throw new DropError(err.code === 'ECONNRESET' || err.message === 'aborted' ? `the connection to ${where} dropped` : describeNetError(err, where));
    } finally {
      clearTimeout(timer);
    }
    if (r === 'timeout') {
      if (wait.why === 'window') {
        if (got < need) {
          ex.req.destroy();
          throw stalled(got);
        }
        waited = 0;
        got = 0;
        continue; // the same read goes on being awaited
      }
      ex.req.destroy();
      if (wait.why === 'deadline') throw new DeadlineError('deadline');
      throw new DropError(`no data from ${where} for ${seconds(idleMs)} (idle timeout)`);
    }
    next = undefined;
    if (r.done) return;
    if (stallOn) {
      waited += Date.now() - started;
      got += r.value.length;
      if (waited >= stall.windowMs) {
        if (got < need) {
          ex.req.destroy();
          throw stalled(got);
        }
        waited = 0;
        got = 0;
      }
    }
    yield r.value;
  }
}
