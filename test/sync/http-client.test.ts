import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { NetworkError } from '../../src/sync/errors.js';
import { SyncHttpClient } from '../../src/sync/http-client.js';

/** A real HTTP server on loopback that resets the first `resets` requests' connections. */
async function flakyServer(resets: number): Promise<{ server: Server; url: string; requests: () => number }> {
  let seen = 0;
  const server = createServer((req, res) => {
    seen++;
    if (seen <= resets) {
      req.socket.resetAndDestroy();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ events: [], nextPosition: 7, hasMore: false }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, requests: () => seen };
}

describe('sync HTTP client', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((r) => server?.close(r));
    server = undefined;
  });

  it('sends a request again once when its connection is reset (every sync request is idempotent)', async () => {
    const flaky = await flakyServer(1);
    server = flaky.server;
    const client = new SyncHttpClient({ baseUrl: flaky.url, token: 't' });
    await expect(client.pull({ after: 0 })).resolves.toMatchObject({ nextPosition: 7 });
    expect(flaky.requests()).toBe(2);
  });

  it('gives up with a NetworkError when the second attempt is reset too', async () => {
    const flaky = await flakyServer(10);
    server = flaky.server;
    const client = new SyncHttpClient({ baseUrl: flaky.url, token: 't' });
    await expect(client.pull({ after: 0 })).rejects.toBeInstanceOf(NetworkError);
    expect(flaky.requests()).toBe(2);
  });
});
