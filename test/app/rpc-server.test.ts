import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contract, type StatusEvent } from '../../src/app/contract.js';
import { openDevice, TOKEN_FILE, type Device } from '../../src/app/device.js';
import { createHandlers } from '../../src/app/handlers.js';
import { createRpcClient, httpTransport, RpcError } from '../../src/app/rpc-client.js';
import { serveBrowserMode, type BrowserModeServer } from '../../src/app/rpc-server.js';

const TOKEN = 'known-secret-token-7f3a9c2e5b1d';
const create = (orderId: string) => ({ command: { type: 'CreateOrder' as const, orderId, customerId: 'C-1', currency: 'USD', items: [{ sku: 'A', quantity: 1, unitPrice: 999 }] } });

/** A raw HTTP request, so Host, Origin and the body can be set exactly as an attacker would. */
function raw(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

const secretOf = (server: BrowserModeServer) => new URL(server.launchUrl).hash.replace(/^#k=/, '');

/** What the renderer does with the launch URL: trade the fragment's key for the session cookie. */
async function signIn(server: BrowserModeServer): Promise<string> {
  const res = await fetch(`${server.url}/auth/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ secret: secretOf(server) }) });
  expect(res.status).toBe(204);
  return res.headers.get('set-cookie')!.split(';')[0]!;
}

async function openBrowserMode(name: string, opts: Parameters<typeof openDevice>[0] extends infer O ? Partial<O> : never = {}) {
  const dir = mkdtempSync(join(tmpdir(), `orderlog-${name}-`));
  const rendererDir = join(dir, 'renderer');
  mkdirSync(rendererDir);
  mkdirSync(join(rendererDir, 'assets'));
  writeFileSync(join(rendererDir, 'index.html'), '<!doctype html><title>Orderlog</title>');
  writeFileSync(join(rendererDir, 'assets', 'app.js'), 'console.log(1)');
  const device = await openDevice({ dataDir: join(dir, 'device'), userId: 'bob', ...opts });
  const server = await serveBrowserMode({ handlers: createHandlers(device), onStatus: (l) => device.onStatus(l), port: 0, rendererDir });
  return { dir, device, server };
}

describe('browser mode: the launch key and the session cookie', () => {
  let ctx: Awaited<ReturnType<typeof openBrowserMode>>;
  beforeAll(async () => {
    ctx = await openBrowserMode('bm-session');
  });
  afterAll(async () => {
    await ctx.server.close();
    await ctx.device.close();
    rmSync(ctx.dir, { recursive: true, force: true });
  });

  it('prints a launch URL with a fresh 256-bit key in the fragment', async () => {
    expect(ctx.server.launchUrl).toMatch(new RegExp(`^${ctx.server.url}/#k=[0-9a-f]{64}$`));
    const other = await openBrowserMode('bm-other');
    try {
      expect(secretOf(other.server)).not.toBe(secretOf(ctx.server));
    } finally {
      await other.server.close();
      await other.device.close();
      rmSync(other.dir, { recursive: true, force: true });
    }
  });

  it('trades the right key for an HttpOnly, SameSite=Strict cookie, and nothing else', async () => {
    const wrong = await raw(`${ctx.server.url}/auth/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ secret: 'a'.repeat(64) }) });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    expect(JSON.parse(wrong.body)).toMatchObject({ error: 'UNAUTHORIZED' });
    const missing = await raw(`${ctx.server.url}/auth/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(missing.status).toBe(401);
    expect(missing.headers['set-cookie']).toBeUndefined();

    const ok = await fetch(`${ctx.server.url}/auth/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ secret: secretOf(ctx.server) }) });
    expect(ok.status).toBe(204);
    const cookie = ok.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).not.toContain(secretOf(ctx.server));
    const check = await fetch(`${ctx.server.url}/auth/session`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(check.status).toBe(204);
    expect((await fetch(`${ctx.server.url}/auth/session`)).status).toBe(401);
  });

  it('serves static assets without the cookie, but only to its own Host', async () => {
    const page = await fetch(`${ctx.server.url}/`);
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect((await fetch(`${ctx.server.url}/assets/app.js`)).status).toBe(200);
    const rebound = await raw(`${ctx.server.url}/`, { headers: { host: `evil.example:${ctx.server.port}` } });
    expect(rebound.status).toBe(403);
    expect(rebound.body).not.toContain('<title>');
    expect((await raw(`${ctx.server.url}/`, { headers: { host: `localhost:${ctx.server.port}` } })).status).toBe(200);
    expect((await raw(`${ctx.server.url}/`, { headers: { host: `127.0.0.1:${ctx.server.port + 1}` } })).status).toBe(403);
  });
});

describe('browser mode refuses every request that is not from its signed-in page, and changes nothing', () => {
  let ctx: Awaited<ReturnType<typeof openBrowserMode>>;
  let cookie: string;
  let origin: string;
  let host: string;

  beforeAll(async () => {
    ctx = await openBrowserMode('bm-refuse', { serverUrl: 'http://127.0.0.1:9', token: TOKEN, autoSync: false });
    cookie = await signIn(ctx.server);
    origin = ctx.server.url;
    host = new URL(origin).host;
    await createHandlers(ctx.device).execute(create('ORD-KEEP'));
  });
  afterAll(async () => {
    await ctx.server.close();
    await ctx.device.close();
    rmSync(ctx.dir, { recursive: true, force: true });
  });

  /** Everything a refused request could have changed: settings, token file, the log, the outbox, conflicts. */
  const snapshot = async (device: Device, dir: string) => ({
    settings: device.settingsView(),
    tokenFile: readFileSync(join(dir, 'device', TOKEN_FILE), 'utf8'),
    head: device.store.log.headPosition(),
    pending: device.outbox.pendingEvents('ORD-KEEP').length,
    orders: (await device.queries.listOrders({})).total,
    sync: { state: device.syncStatus().state, lastAttemptAt: device.syncStatus().lastAttemptAt },
  });

  const json = { 'content-type': 'application/json' };
  const attacks: { name: string; status: number; error: string; headers: () => Record<string, string>; body?: string }[] = [
    { name: 'no session cookie (any local process, another user)', status: 401, error: 'UNAUTHORIZED', headers: () => ({ ...json }) },
    { name: 'a wrong session cookie', status: 401, error: 'UNAUTHORIZED', headers: () => ({ ...json, cookie: `${cookie.split('=')[0]}=forged` }) },
    { name: 'the launch key presented as the cookie', status: 401, error: 'UNAUTHORIZED', headers: () => ({ ...json, cookie: `${cookie.split('=')[0]}=${secretOf(ctx.server)}` }) },
    { name: 'a foreign Host (DNS rebinding), even with the cookie', status: 403, error: 'FORBIDDEN', headers: () => ({ ...json, cookie, host: 'evil.example' }) },
    { name: 'a foreign Host naming the right port', status: 403, error: 'FORBIDDEN', headers: () => ({ ...json, cookie, host: `evil.example:${ctx.server.port}` }) },
    { name: 'another origin', status: 403, error: 'FORBIDDEN', headers: () => ({ ...json, cookie, origin: 'https://evil.example' }) },
    { name: 'another port on loopback', status: 403, error: 'FORBIDDEN', headers: () => ({ ...json, cookie, origin: `http://127.0.0.1:${ctx.server.port + 1}` }) },
    { name: 'an opaque (null) origin', status: 403, error: 'FORBIDDEN', headers: () => ({ ...json, cookie, origin: 'null' }) },
    { name: 'Sec-Fetch-Site: cross-site', status: 403, error: 'FORBIDDEN', headers: () => ({ ...json, cookie, 'sec-fetch-site': 'cross-site' }) },
    { name: 'Sec-Fetch-Site: same-site (another port)', status: 403, error: 'FORBIDDEN', headers: () => ({ ...json, cookie, 'sec-fetch-site': 'same-site' }) },
    { name: 'a text/plain body (a no-preflight cross-site POST)', status: 415, error: 'UNSUPPORTED_MEDIA_TYPE', headers: () => ({ 'content-type': 'text/plain', cookie }) },
    { name: 'a form body', status: 415, error: 'UNSUPPORTED_MEDIA_TYPE', headers: () => ({ 'content-type': 'application/x-www-form-urlencoded', cookie }) },
    { name: 'no content type at all', status: 415, error: 'UNSUPPORTED_MEDIA_TYPE', headers: () => ({ cookie }) },
    { name: 'a JSON content type with no body', status: 400, error: 'BAD_INPUT', headers: () => ({ ...json, cookie }), body: '' },
  ];
  const calls: [string, unknown][] = [
    ['saveSettings', { serverUrl: 'http://attacker.example', token: 'attacker', userId: 'mallory' }],
    ['execute', create('ORD-EVIL')],
    ['rebuildProjections', {}],
    ['syncNow', {}],
    ['driftCheck', {}],
    ['listOrders', {}],
    ['getSettings', {}],
  ];

  for (const attack of attacks) {
    it(`refuses ${attack.name}`, async () => {
      const before = await snapshot(ctx.device, ctx.dir);
      for (const [method, input] of calls) {
        const headers = { host, ...attack.headers() };
        const body = attack.body ?? JSON.stringify(input);
        const res = await raw(`${ctx.server.url}/rpc/${method}`, { method: 'POST', headers, ...(body === '' ? {} : { body }) });
        expect(res.status, `${method}: ${res.body}`).toBe(attack.status);
        expect(JSON.parse(res.body)).toMatchObject({ error: attack.error });
        expect(res.body).not.toContain(TOKEN);
        expect(Object.keys(res.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
      }
      expect(await snapshot(ctx.device, ctx.dir)).toEqual(before);
    });
  }

  it('answers a chunked empty or malformed JSON body with a typed 400', async () => {
    const before = await snapshot(ctx.device, ctx.dir);
    for (const [headers, body] of [
      [{ 'transfer-encoding': 'chunked' }, ''],
      [{}, '{"serverUrl":'],
    ] as const) {
      const res = await raw(`${ctx.server.url}/rpc/saveSettings`, { method: 'POST', headers: { host, cookie, ...json, ...headers }, body });
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ error: 'BAD_INPUT', issues: [] });
    }
    expect(await snapshot(ctx.device, ctx.dir)).toEqual(before);
  });

  it('refuses the status stream without the cookie or from a foreign Host or origin', async () => {
    expect((await raw(`${ctx.server.url}/rpc/events`, { headers: { host } })).status).toBe(401);
    expect((await raw(`${ctx.server.url}/rpc/events`, { headers: { host: 'evil.example', cookie } })).status).toBe(403);
    expect((await raw(`${ctx.server.url}/rpc/events`, { headers: { host, cookie, origin: 'https://evil.example' } })).status).toBe(403);
  });

  it('answers a CORS preflight with no CORS headers', async () => {
    const res = await raw(`${ctx.server.url}/rpc/listOrders`, {
      method: 'OPTIONS',
      headers: { host, origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(Object.keys(res.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
  });

  it('accepts the same calls from its own page (same origin, the cookie, a JSON body)', async () => {
    const res = await raw(`${ctx.server.url}/rpc/listOrders`, { method: 'POST', headers: { host, origin, cookie, 'sec-fetch-site': 'same-origin', ...json }, body: '{}' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ total: 1 });
    const viaLocalhost = await raw(`${ctx.server.url}/rpc/listOrders`, {
      method: 'POST',
      headers: { host: `localhost:${ctx.server.port}`, origin: `http://localhost:${ctx.server.port}`, cookie, ...json },
      body: '{}',
    });
    expect(viaLocalhost.status).toBe(200);
  });
});

describe('HTTP transport against the real handlers', () => {
  let ctx: Awaited<ReturnType<typeof openBrowserMode>>;
  let cookie: string;
  let echo: Server;
  let echoUrl: string;

  beforeAll(async () => {
    ctx = await openBrowserMode('bm-rpc', { autoSync: false, sync: { backoff: { minMs: 10, maxMs: 20, retries: 1 }, debounceMs: 10 } });
    cookie = await signIn(ctx.server);
    // A server that quotes the request's Authorization header back in its error.
    echo = createServer((req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`cannot handle request with ${req.headers.authorization ?? 'no auth'}`);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const addr = echo.address();
    echoUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });

  afterAll(async () => {
    await ctx.server.close();
    await ctx.device.close();
    await new Promise((r) => echo.close(r));
    rmSync(ctx.dir, { recursive: true, force: true });
  });

  const post = (method: string, body: unknown) =>
    fetch(`${ctx.server.url}/rpc/${method}`, { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: JSON.stringify(body) });

  it('runs a command and answers with the contract output', async () => {
    const res = await post('execute', create('ORD-H1'));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, orderId: 'ORD-H1', version: 1 });
  });

  it('answers 400 with issues for bad input, 404 for unknown methods', async () => {
    const bad = await post('listOrders', { limit: 0, sort: 'price' });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: string; message: string; issues: { path: string }[] };
    expect(body.error).toBe('BAD_INPUT');
    expect(body.issues.map((i) => i.path).sort()).toEqual(['limit', 'sort']);
    expect(body.message).toMatch(/invalid input for listOrders/);
    const unknown = await post('format', {});
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: 'UNKNOWN_METHOD' });
  });

  it('works end to end through createRpcClient + httpTransport, including the status stream', async () => {
    const client = createRpcClient(httpTransport(ctx.server.url, { headers: { cookie } }));
    const events: StatusEvent[] = [];
    const off = client.onStatus((e) => events.push(e));
    try {
      // Give the SSE connection a moment to be established before the change happens.
      await new Promise((r) => setTimeout(r, 300));
      const r = await client.execute(create('ORD-H2'));
      expect(r).toMatchObject({ ok: true, orderId: 'ORD-H2' });
      await expect.poll(() => events.some((e) => e.kind === 'changed' && e.orderIds.includes('ORD-H2')), { timeout: 5000 }).toBe(true);
      const list = await client.listOrders({ search: 'ORD-H2' });
      expect(list.rows.map((row) => row.orderId)).toEqual(['ORD-H2']);
      const rejected = await client.execute({ command: { type: 'ShipOrder', orderId: 'ORD-H2', shipmentId: 'S-1', shippedAt: new Date().toISOString() } });
      expect(rejected).toMatchObject({ ok: false, rejection: { code: 'NOT_PAID' } });
      await expect(client.getOrder({ orderId: '' })).rejects.toBeInstanceOf(RpcError);
    } finally {
      off();
    }
  });

  it('a client without the cookie gets a typed UNAUTHORIZED error', async () => {
    await expect(createRpcClient(httpTransport(ctx.server.url)).listOrders({})).rejects.toMatchObject({ code: 'UNAUTHORIZED', message: /npm start/ });
  });

  it('never sends the server token back: not in any reply, status event or error', async () => {
    const bodies: string[] = [];
    const events: string[] = [];
    const client = createRpcClient(httpTransport(ctx.server.url, { headers: { cookie } }));
    const off = client.onStatus((e) => events.push(JSON.stringify(e)));
    const called = new Set<string>();
    const call = async (method: string, input: unknown) => {
      called.add(method);
      const res = await post(method, input);
      bodies.push(await res.text());
      return res;
    };
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect((await call('saveSettings', { serverUrl: echoUrl, token: TOKEN, userId: 'bob' })).status).toBe(200);
      expect(JSON.parse(bodies.at(-1)!)).toEqual(expect.objectContaining({ tokenSet: true, tokenServer: echoUrl }));
      // The echoing server puts "Bearer <token>" into the sync error; it must reach the page redacted.
      await call('syncNow', {});
      expect(JSON.parse(bodies.at(-1)!)).toMatchObject({ state: 'error', lastError: expect.stringContaining('Bearer [token]') });
      await call('syncStatus', {});
      await call('getSettings', {});
      await call('execute', create('ORD-T1'));
      await call('listOrders', {});
      await call('getOrder', { orderId: 'ORD-T1' });
      await call('getOrderAsOf', { orderId: 'ORD-T1', version: 1 });
      await call('customerHistory', { customerId: 'C-1' });
      await call('listConflicts', { includeDismissed: true });
      await call('listQuarantine', {});
      await call('retryConflict', { commandId: 'no-such-command' });
      await call('dismissConflict', { commandId: 'no-such-command' });
      await call('verifyAudit', { orderId: 'ORD-T1' });
      await call('driftCheck', {});
      await call('rebuildProjections', {});
      await call('setWorkOffline', { workOffline: true });
      await call('setWorkOffline', { workOffline: false });
      await call('getSyncScope', {});
      await call('saveSyncScope', { scope: { mode: 'scoped', customers: ['C-1'], recentDays: 30, streams: [] }, retentionDays: 365 });
      await call('openRemoteOrder', { orderId: 'ORD-REMOTE' });
      await call('remoteHistory', { orderId: 'ORD-T1' });
      // Refused saves answer in words, without the token.
      expect((await call('saveSettings', { serverUrl: 'http://127.0.0.1:1', userId: 'bob' })).status).toBe(400);
      expect(bodies.at(-1)).toMatch(/enter the access token for http:\/\/127\.0\.0\.1:1/);
      expect((await call('saveSettings', { serverUrl: echoUrl, token: `${TOKEN} `.repeat(100), userId: 'bob' })).status).toBe(400);
      await expect.poll(() => events.some((e) => e.includes('"kind":"sync"')), { timeout: 5000 }).toBe(true);
      for (const text of [...bodies, ...events]) expect(text).not.toContain(TOKEN);
      expect([...called].sort()).toEqual(Object.keys(contract).sort());
    } finally {
      off();
    }
  });
});

describe('serveBrowserMode shutdown', () => {
  it('closes promptly even with a status stream open', async () => {
    const ctx = await openBrowserMode('bm-close');
    try {
      const cookie = await signIn(ctx.server);
      const controller = new AbortController();
      const res = await fetch(`${ctx.server.url}/rpc/events`, { signal: controller.signal, headers: { cookie } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
      await ctx.server.close();
      controller.abort();
    } finally {
      await ctx.server.close();
      await ctx.device.close();
      rmSync(ctx.dir, { recursive: true, force: true });
    }
  });

  it('refuses to listen anywhere but loopback', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'orderlog-bm-bind-'));
    const device = await openDevice({ dataDir: dir, autoSync: false });
    try {
      await expect(serveBrowserMode({ handlers: createHandlers(device), onStatus: (l) => device.onStatus(l), port: 0, host: '0.0.0.0', rendererDir: dir })).rejects.toThrow(/only listens on loopback/);
    } finally {
      await device.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
