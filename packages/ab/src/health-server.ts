/**
 * `diskimg serve`'s HTTP server (node:http): GET/HEAD /health (JSON) and /
 * (the page), 200 when the booted slot is confirmed, 503 otherwise; other
 * paths 404, other methods 405. Read-only: no request changes anything.
 * Loopback unless another address is named explicitly (parseListen).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { InputError, UsageError } from '@diskimg/partitions/internal';
import { readHealth, type Health, type HealthOptions } from './health.js';
import { renderHealthPage } from './health-page.js';

export const DEFAULT_LISTEN = '127.0.0.1:8321';

export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * `HOST:PORT` → address. HOST is an IPv4 address, `[IPv6]` or `localhost`
 * (never empty: an address open to the network must be written out, e.g.
 * 0.0.0.0:8321); PORT 0–65535 (0: any free port, printed at start).
 */
export function parseListen(spec: string): ListenAddress {
  const bad = (why: string) =>
    new UsageError(`--listen "${spec}": ${why}; give HOST:PORT, e.g. ${DEFAULT_LISTEN} (HOST an IPv4 address, [IPv6 address] or localhost)`);
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(spec);
  if (!m) throw bad('not HOST:PORT');
  const host = m[1] ?? m[2]!;
  if (m[1] !== undefined ? isIP(host) !== 6 : host !== 'localhost' && isIP(host) !== 4) throw bad(`"${host}" is not an address`);
  const port = Number(m[3]);
  if (port > 65535) throw bad(`port ${port} is over 65535`);
  return { host, port };
}

export interface HealthServer {
  /** e.g. http://127.0.0.1:8321/ (with the port actually bound). */
  url: string;
  address: ListenAddress;
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
} as const;

/** Start serving; resolves once listening. A failure to bind is one InputError naming --listen. */
export async function startHealthServer(o: Omit<HealthOptions, 'startedAt'> & { listen: ListenAddress; startedAt?: number }): Promise<HealthServer> {
  const opts: HealthOptions = { ...o, startedAt: o.startedAt ?? Date.now() };
  const server = createServer((req, res) => {
    handle(req, res, opts).catch((e) => {
      // readHealth reports disk errors in its answer; this is a last resort, never a crash.
      if (!res.headersSent) send(res, req, 500, 'text/plain; charset=utf-8', `internal error: ${(e as Error).message}\n`);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      const why = e.code === 'EADDRINUSE' ? 'the address is in use (another diskimg serve?)' : e.code === 'EADDRNOTAVAIL' ? 'no such address on this machine' : e.code === 'EACCES' ? 'permission denied (ports under 1024 need root)' : e.message;
      reject(new InputError(`--listen ${o.listen.host.includes(':') ? `[${o.listen.host}]` : o.listen.host}:${o.listen.port}: ${why}; choose another address or port`));
    };
    server.once('error', onError);
    server.listen(o.listen.port, o.listen.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : o.listen.port;
  const shown = o.listen.host.includes(':') ? `[${o.listen.host}]` : o.listen.host;
  return {
    url: `http://${shown}:${port}/`,
    address: { host: o.listen.host, port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, o: HealthOptions): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    send(res, req, 405, 'text/plain; charset=utf-8', 'method not allowed: this server is read-only (GET, HEAD)\n');
    return;
  }
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/health') {
    const h = await readHealth(o);
    send(res, req, statusOf(h), 'application/json; charset=utf-8', `${JSON.stringify(h, null, 2)}\n`);
  } else if (path === '/') {
    const h = await readHealth(o);
    res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
    send(res, req, statusOf(h), 'text/html; charset=utf-8', renderHealthPage(h));
  } else send(res, req, 404, 'text/plain; charset=utf-8', 'not found: GET /health (JSON) or / (page)\n');
}

/** 200 when the booted slot is confirmed, else 503 (on trial, fell back, not the default, unreadable). */
export function statusOf(h: Health): number {
  return h.ok ? 200 : 503;
}

function send(res: ServerResponse, req: IncomingMessage, code: number, type: string, body: string): void {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(code, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': bytes.length });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}
