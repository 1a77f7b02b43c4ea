/**
 * A real nginx serving a temp directory on 127.0.0.1, for the HTTP input tests: its own
 * nginx.conf (daemon off, single process, every path in the temp dir), an access log of
 * "uri status range if-range" lines, and optionally an https listener with a self-signed
 * certificate for 127.0.0.1 made by openssl.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';

export interface Nginx {
  port: number;
  /** The https listener's port (when `tls` was asked for and openssl exists). */
  tlsPort?: number;
  /** The self-signed certificate (PEM) of the https listener. */
  cert?: string;
  /** "uri status range if-range" per request so far. */
  accessLog(): string[];
  stop(): Promise<void>;
}

export function findNginx(): string | undefined {
  for (const p of ['/usr/sbin/nginx', '/usr/bin/nginx']) if (existsSync(p)) return p;
  const r = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** A port that was free a moment ago (the caller binds it next; a collision just fails the start). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port, rejects after `ms`. */
async function waitListening(port: number, child: ChildProcess, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), resolve(true)));
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not listening on ${port} after ${ms} ms`);
}

function selfSigned(dir: string): { cert: string; key: string } | undefined {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const r = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  return r.status === 0 ? { cert, key } : undefined;
}

/**
 * Start nginx with `root` (a directory under `dir`) as document root. `locations` is extra
 * server-block config (e.g. `location = /r { return 302 /big.bin; }`). Resolves to a skip reason
 * string when nginx is missing or does not start.
 */
export async function startNginx(dir: string, root: string, opts: { locations?: string; tls?: boolean } = {}): Promise<Nginx | string> {
  const bin = findNginx();
  if (!bin) return 'nginx not installed (apt-get install nginx-light or nginx)';
  // Readable by whatever user nginx ends up as (it may drop root's privileges).
  chmodSync(dir, 0o755);
  for (const d of ['tmp', 'logs']) mkdirSync(join(dir, d), { recursive: true });
  const tlsFiles = opts.tls ? selfSigned(dir) : undefined;
  let lastErr = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const tlsPort = tlsFiles ? await freePort() : undefined;
    const t = (n: string) => join(dir, 'tmp', n);
    const access = join(dir, 'logs', 'access.log');
    const server = (listen: string, extra = '') => `
  server {
    listen ${listen};
    server_name _;
    root ${root};
    ${extra}
    ${opts.locations ?? ''}
  }`;
    const conf = `
daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs', 'error.log')} info;
events { worker_connections 256; }
http {
  default_type application/octet-stream;
  log_format ranges '$request_uri $status "$http_range" "$http_if_range"';
  access_log ${access} ranges;
  client_body_temp_path ${t('body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};
  sendfile off;  # plain writes, so a cut mid-body behaves like a real network
${server(`127.0.0.1:${port}`)}
${tlsFiles && tlsPort ? server(`127.0.0.1:${tlsPort} ssl`, `ssl_certificate ${tlsFiles.cert}; ssl_certificate_key ${tlsFiles.key};`) : ''}
}
`;
    const confPath = join(dir, 'nginx.conf');
    writeFileSync(confPath, conf);
    const child = spawn(bin, ['-p', dir, '-e', join(dir, 'logs', 'error.log'), '-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => (stderr += e.message));
    try {
      await waitListening(port, child, 10_000);
      if (tlsPort) await waitListening(tlsPort, child, 10_000);
    } catch (e) {
      child.kill('SIGKILL');
      const log = existsSync(join(dir, 'logs', 'error.log')) ? readFileSync(join(dir, 'logs', 'error.log'), 'utf8') : '';
      lastErr = `${(e as Error).message}: ${(stderr + log).split('\n').filter((l) => /emerg|alert|crit/.test(l)).join(' | ') || stderr.trim()}`;
      continue;
    }
    return {
      port,
      tlsPort: tlsFiles ? tlsPort : undefined,
      cert: tlsFiles ? readFileSync(tlsFiles.cert, 'utf8') : undefined,
      accessLog: () => (existsSync(access) ? readFileSync(access, 'utf8').split('\n').filter(Boolean) : []),
      stop: () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
          setTimeout(() => child.kill('SIGKILL'), 5000).unref();
        }),
    };
  }
  return `nginx did not start: ${lastErr}`;
}
