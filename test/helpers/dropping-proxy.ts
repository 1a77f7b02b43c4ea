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
