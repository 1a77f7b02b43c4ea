/**
 * A TCP forwarder on 127.0.0.1 that cuts connections: the k-th accepted connection is closed after
 * `cuts[k]` bytes of the answer (undefined = not cut). It serves three ways at once:
 *  - plain in-between server: whatever arrives goes to `upstreamPort` unchanged;
 *  - explicit HTTP proxy: the absolute-URI request also goes to `upstreamPort` (nginx accepts it);
 *  - CONNECT proxy: "CONNECT host:port" opens a tunnel to that host:port and cuts inside it.
 * It records each connection's first request line, so tests see what the client asked.
 */
import * as net from 'node:net';

export interface DroppingProxy {
  port: number;
  /** First request line of each connection, in order ("GET /big.bin HTTP/1.1", "CONNECT …"). */
  requests: string[];
  /** How many connections were cut. */
  cutCount(): number;
  close(): Promise<void>;
}

export function startDroppingProxy(upstreamPort: number, cuts: (number | undefined)[]): Promise<DroppingProxy> {
  const requests: string[] = [];
  let accepted = 0;
  let cut = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const limit = cuts[accepted++];
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    let head = Buffer.alloc(0);
    const onFirst = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const eol = head.indexOf('\r\n');
      if (eol < 0) return;
      client.off('data', onFirst);
      client.pause();
      const line = head.subarray(0, eol).toString('latin1');
      requests.push(line);
      const connect = /^CONNECT ([^\s:]+):(\d+) /.exec(line);
      const upstream = connect ? net.connect(Number(connect[2]), connect[1]) : net.connect(upstreamPort, '127.0.0.1');
      sockets.add(upstream);
      upstream.on('close', () => sockets.delete(upstream));
      client.once('close', () => upstream.destroy()); // the client gave up: so does the upstream (nginx logs the request then)
      upstream.on('error', () => client.destroy());
      upstream.once('connect', () => {
        if (connect) {
          const end = head.indexOf('\r\n\r\n');
          client.write('HTTP/1.1 200 Connection established\r\n\r\n');
          if (end >= 0 && head.length > end + 4) upstream.write(head.subarray(end + 4));
        } else {
          upstream.write(head);
        }
        client.pipe(upstream);
        client.resume();
      });
      let sent = 0;
      upstream.on('data', (chunk: Buffer) => {
        if (limit === undefined || sent + chunk.length <= limit) {
          sent += chunk.length;
          if (!client.write(chunk)) {
            upstream.pause();
            client.once('drain', () => upstream.resume());
          }
          return;
        }
        // Deliver exactly `limit` bytes, then cut: alternate a clean FIN and a reset.
        const rest = chunk.subarray(0, limit - sent);
        sent = limit;
        upstream.destroy();
        const n = cut++;
        if (n % 2 === 0) client.end(rest);
        else client.write(rest, () => client.resetAndDestroy());
      });
      upstream.on('end', () => client.end());
    };
    client.on('data', onFirst);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        requests,
        cutCount: () => cut,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}

export interface GateProxy {
  port: number;
  /** First request line of each connection, in order. */
  requests: string[];
  /** Resolves once the gated answer has passed `holdAfter` bytes and is held there. */
  held: Promise<void>;
  /** Let the held answer go on. */
  release(): void;
  /** Cut the held connection (a reset): the client has to resume with a new request. */
  cut(): void;
  close(): Promise<void>;
}

/**
 * A forwarder to nginx on `upstreamPort` that holds one answer mid-body: the first connection whose
 * request line matches `match` gets `holdAfter` bytes of the answer (head included), then nothing
 * until release() or cut(). Other connections pass unchanged. So a test can act "while the client is
 * downloading" at a known byte, with no timing.
 */
export function startGateProxy(upstreamPort: number, match: RegExp, holdAfter: number): Promise<GateProxy> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  let gated = false;
  let onHeld!: () => void;
  const held = new Promise<void>((r) => (onHeld = r));
  let release: () => void = () => {};
  let cut: () => void = () => {};
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.once('close', () => upstream.destroy());
    let gate = false;
    let first = true;
    client.on('data', (d: Buffer) => {
      if (first) {
        first = false;
        const line = d.toString('latin1').split('\r\n')[0]!;
        requests.push(line);
        if (!gated && match.test(line)) gated = gate = true;
      }
      upstream.write(d);
    });
    let sent = 0;
    let state: 'pass' | 'held' | 'released' = 'pass';
    const queued: Buffer[] = [];
    const forward = (chunk: Buffer) => {
      if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => { if (state !== 'held') upstream.resume(); });
      }
    };
    upstream.on('data', (chunk: Buffer) => {
      if (state === 'held') return void queued.push(chunk);
      if (!gate || state === 'released' || sent + chunk.length <= holdAfter) {
        sent += chunk.length;
        return forward(chunk);
      }
      // Deliver up to holdAfter, keep the rest, stop reading from nginx until released.
      client.write(chunk.subarray(0, holdAfter - sent));
      queued.push(chunk.subarray(holdAfter - sent));
      sent = holdAfter;
      state = 'held';
      upstream.pause();
      release = () => {
        state = 'released';
        for (const q of queued.splice(0)) client.write(q);
        if (ended) client.end();
        else upstream.resume();
      };
      cut = () => {
        upstream.destroy();
        client.resetAndDestroy();
      };
      onHeld();
    });
    let ended = false;
    upstream.on('end', () => (state === 'held' ? (ended = true) : client.end()));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        requests,
        held,
        release: () => release(),
        cut: () => cut(),
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}

export interface StallProxy {
  port: number;
  /** First request line of each connection, in order. */
  requests: string[];
  close(): Promise<void>;
}

/**
 * A forwarder to `upstreamPort` (nginx) that starves answers: each connection whose request line
 * matches `match` gets the first `after` bytes of its answer (head included), then nothing
 * (`trickleMs` undefined: headers then silence) or one byte every `trickleMs` (a trickle). Other
 * connections pass unchanged. Resumes match too, so every attempt is starved the same way.
 */
export function startStallProxy(upstreamPort: number, match: RegExp, opts: { after: number; trickleMs?: number }): Promise<StallProxy> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.once('close', () => upstream.destroy());
    let starve = false;
    let first = true;
    client.on('data', (d: Buffer) => {
      if (first) {
        first = false;
        const line = d.toString('latin1').split('\r\n')[0]!;
        requests.push(line);
        starve = match.test(line);
      }
      upstream.write(d);
    });
    let sent = 0;
    let held = Buffer.alloc(0);
    let trickling = false;
    upstream.on('data', (chunk: Buffer) => {
      if (!starve) return void client.write(chunk);
      const now = chunk.subarray(0, Math.max(0, opts.after - sent));
      if (now.length) client.write(now);
      sent += now.length;
      if (now.length === chunk.length) return;
      upstream.pause(); // the rest stays in nginx's socket buffers
      held = Buffer.concat([held, chunk.subarray(now.length)]);
      if (opts.trickleMs === undefined || trickling) return;
      trickling = true;
      const timer = setInterval(() => {
        if (client.destroyed || held.length === 0) return;
        client.write(held.subarray(0, 1));
        held = held.subarray(1);
      }, opts.trickleMs);
      timers.add(timer);
      client.once('close', () => (clearInterval(timer), timers.delete(timer)));
    });
    upstream.on('end', () => (starve ? undefined : client.end()));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        requests,
        close: () =>
          new Promise<void>((r) => {
            for (const t of timers) clearInterval(t);
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
