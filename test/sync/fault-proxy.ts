import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault = 'none' | 'drop-response' | 'reset-before' | 'error-500';

/**
 * A small HTTP proxy in front of the server that injects faults per request:
 * - drop-response: forward, let the server commit, then destroy the client socket (lost response);
 * - reset-before: destroy the connection without forwarding;
 * - error-500: answer 500 without forwarding.
 */
export async function startFaultProxy(target: string, pick: (req: http.IncomingMessage) => Fault) {
  const upstream = new URL(target);
  const counts: Record<Fault, number> = { none: 0, 'drop-response': 0, 'reset-before': 0, 'error-500': 0 };
  const upstreamRequests = new Set<http.ClientRequest>();
  const server = http.createServer((req, res) => {
    const fault = pick(req);
    counts[fault] += 1;
    if (fault === 'reset-before') {
      req.socket.destroy();
      return;
    }
    if (fault === 'error-500') {
      req.resume();
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'INJECTED', message: 'injected failure' }));
      return;
    }
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        if (fault === 'drop-response') {
          // Read the whole answer (the server has committed), then lose it.
          up.resume();
          up.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    out.on('error', () => req.socket.destroy());
    // A held long-poll must not outlive the proxy (nor keep the server's close() waiting).
    upstreamRequests.add(out);
    out.on('close', () => upstreamRequests.delete(out));
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        for (const out of upstreamRequests) out.destroy();
        server.close(() => resolve());
      }),
  };
}
