import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { request } from 'node:http';
import { AuthFailureThrottle } from '../../src/server/auth-throttle.js';
import { startServer, type StartedServer } from '../../src/server/index.js';
import { BACKENDS, DEVICE_A, DEVICE_B, TOKENS, client, sqliteFactory, type TestBackend } from './helpers.js';

/** A GET from a chosen loopback source address (127.0.0.x), to act as another client. */
function getFrom(localAddress: string, url: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', localAddress, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens an SSE stream; resolves with its status once the headers arrived, and a way to close it. */
async function openLive(url: string, token: string): Promise<{ status: number; close: () => void; body: unknown }> {
  const controller = new AbortController();
  const res = await fetch(`${url}/sync/events/live`, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal });
  const body = res.headers.get('content-type')?.includes('json') ? await res.json() : null;
  return { status: res.status, close: () => controller.abort(), body };
}

describe('server limits', () => {
  let backend: TestBackend;
  let server: StartedServer;

  beforeAll(async () => {
    backend = await sqliteFactory.make();
    server = await startServer({
      ...backend.opts,
      tokens: TOKENS,
      port: 0,
      timeouts: { requestTimeoutMs: 1000 },
      maxLiveStreamsPerToken: 2,
      authFailures: { max: 5, timeWindowMs: 60_000 },
    });
  });
  afterAll(async () => {
    await server?.close();
    await backend?.cleanup();
  });

  it('cuts off a client that sends its body too slowly (408, connection closed)', async () => {
    const { port } = new URL(server.url);
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(
      `POST /sync/push HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${DEVICE_A}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"appends":`,
    );
    // Trickle a byte now and then, never finishing: only the request deadline can end this.
    const drip = setInterval(() => socket.writable && socket.write(' '), 200);
    await closed;
    clearInterval(drip);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('caps live streams per token: the next SSE or long-poll gets 429 until one closes; plain pulls are unaffected', async () => {
    const first = await openLive(server.url, DEVICE_A);
    const second = await openLive(server.url, DEVICE_A);
    expect([first.status, second.status]).toEqual([200, 200]);
    const third = await openLive(server.url, DEVICE_A);
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ error: 'TOO_MANY_STREAMS' });
    const a = client(server.url, DEVICE_A);
    const poll = await a.get('/sync/events?after=999999&waitMs=5000');
    expect(poll.status).toBe(429);
    expect(poll.body.message).toMatch(/live streams/);
    expect((await a.get('/sync/events?after=0')).status).toBe(200);
    // Another token has its own slots.
    const other = await openLive(server.url, DEVICE_B);
    expect(other.status).toBe(200);
    other.close();
    // Closing a stream frees its slot (the server notices the closed connection).
    first.close();
    let again = await openLive(server.url, DEVICE_A);
    for (let i = 0; again.status === 429 && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      again = await openLive(server.url, DEVICE_A);
    }
    expect(again.status).toBe(200);
    again.close();
    second.close();
    // An abandoned long-poll frees its slot too.
    const abandoned = new AbortController();
    const waiting = fetch(`${server.url}/sync/events?after=999999&waitMs=60000`, { headers: { authorization: `Bearer ${DEVICE_A}` }, signal: abandoned.signal }).catch(() => null);
    await new Promise((r) => setTimeout(r, 200));
    abandoned.abort();
    await waiting;
    let streams: { status: number; close: () => void }[] = [];
    for (let i = 0; i < 50; i++) {
      streams = [await openLive(server.url, DEVICE_A), await openLive(server.url, DEVICE_A)];
      if (streams.every((s) => s.status === 200)) break;
      for (const s of streams) s.close();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(streams.map((s) => s.status)).toEqual([200, 200]);
    for (const s of streams) s.close();
  });

  it('rate-limits failed authentication per client address, before any token is looked up', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push(await getFrom('127.0.0.3', `${server.url}/sync/events`, `guess-${i}-0000000000000000`));
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toEqual([429, 429, 429]);
    // The guessing address is refused even with a real token (or guessing would go on)...
    expect(await getFrom('127.0.0.3', `${server.url}/sync/events`, DEVICE_A)).toBe(429);
    // ...while the same token from elsewhere is unaffected.
    expect(await getFrom('127.0.0.4', `${server.url}/sync/events`, DEVICE_A)).toBe(200);
    const limited = await new Promise<{ status: number; retryAfter: string | undefined; body: string }>((resolve, reject) => {
      const req = request(`${server.url}/sync/events`, { localAddress: '127.0.0.3', headers: { authorization: 'Bearer nope-nope-nope-nope-nope' } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(limited.status).toBe(429);
    expect(Number(limited.retryAfter)).toBeGreaterThan(0);
    expect(JSON.parse(limited.body)).toMatchObject({ error: 'RATE_LIMITED', message: expect.stringMatching(/failed authentication/) });
  });
});

describe.each(BACKENDS)('database errors on $name', (factory) => {
  let backend: TestBackend;
  let server: StartedServer;
  const logs: string[] = [];

  beforeAll(async () => {
    backend = await factory.make();
    server = await startServer({
      ...backend.opts,
      tokens: TOKENS,
      port: 0,
      logger: { level: 'error', stream: { write: (line: string) => void logs.push(line) } },
    });
  });
  afterAll(async () => {
    await server?.close();
    await backend?.cleanup();
  });

  it('are logged with the correlation id and answered 500 "internal error" without the database text', async () => {
    const raw = await backend.raw();
    try {
      // Break the database behind the server's back.
      await raw.exec('ALTER TABLE order_projections RENAME TO order_projections_gone');
    } finally {
      await raw.close();
    }
    const a = client(server.url, DEVICE_A);
    const r = await a.get('/api/queries/orders/ord-1', { 'x-correlation-id': 'corr-db-error-1' });
    expect(r.status).toBe(500);
    expect(r.body).toEqual({ error: 'INTERNAL', message: 'internal error', correlationId: 'corr-db-error-1' });
    expect(r.headers.get('x-correlation-id')).toBe('corr-db-error-1');
    const unnamed = await a.get('/api/queries/orders/dashboard');
    expect(unnamed.status).toBe(500);
    expect(unnamed.body.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    for (const body of [JSON.stringify(r.body), JSON.stringify(unnamed.body)]) {
      expect(body).not.toMatch(/order_projections|no such table|\brelation\b|SQLITE|does not exist/i);
    }
    // The operator finds the real cause under the id the client was given.
    const line = logs.map((l) => JSON.parse(l) as { correlationId?: string; err?: { message?: string } }).find((l) => l.correlationId === 'corr-db-error-1');
    expect(line?.err?.message).toMatch(/order_projections/);
  });
});

describe('AuthFailureThrottle', () => {
  it('blocks an address at the limit for the rest of its window, then forgets it', () => {
    let now = 1_000;
    const t = new AuthFailureThrottle(2, 500, () => now);
    t.fail('10.0.0.1');
    expect(t.retryAfterMs('10.0.0.1')).toBe(0);
    t.fail('10.0.0.1');
    expect(t.retryAfterMs('10.0.0.1')).toBe(500);
    expect(t.retryAfterMs('10.0.0.2')).toBe(0);
    now += 499;
    expect(t.retryAfterMs('10.0.0.1')).toBe(1);
    now += 1;
    expect(t.retryAfterMs('10.0.0.1')).toBe(0);
    t.fail('10.0.0.1');
    expect(t.retryAfterMs('10.0.0.1')).toBe(0);
  });
});
