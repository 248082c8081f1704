import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusEvent } from '../../src/app/contract.js';
import { openDevice } from '../../src/app/device.js';
import { createHandlers } from '../../src/app/handlers.js';
import { createRpcClient, httpTransport, RpcError } from '../../src/app/rpc-client.js';
import { registerRpcRoutes, serveBrowserMode, type BrowserModeServer } from '../../src/app/rpc-server.js';

describe('HTTP transport against the real handlers', () => {
  let dir: string;
  let device: Awaited<ReturnType<typeof openDevice>>;
  let app: FastifyInstance;
  let base: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orderlog-rpc-'));
    device = await openDevice({ dataDir: dir, userId: 'bob' });
    app = Fastify();
    registerRpcRoutes(app, createHandlers(device), (l) => device.onStatus(l));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });

  afterAll(async () => {
    app.server.closeAllConnections();
    await app.close();
    await device.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (method: string, body: unknown) =>
    fetch(`${base}/rpc/${method}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('runs a command and answers with the contract output', async () => {
    const res = await post('execute', { command: { type: 'CreateOrder', orderId: 'ORD-H1', customerId: 'C-1', items: [{ sku: 'A', quantity: 1, unitPrice: 999 }] } });
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
    const client = createRpcClient(httpTransport(base));
    const events: StatusEvent[] = [];
    const off = client.onStatus((e) => events.push(e));
    try {
      // Give the SSE connection a moment to be established before the change happens.
      await new Promise((r) => setTimeout(r, 300));
      const r = await client.execute({ command: { type: 'CreateOrder', orderId: 'ORD-H2', customerId: 'C-2', items: [{ sku: 'B', quantity: 3, unitPrice: 100 }] } });
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
});

describe('serveBrowserMode', () => {
  let dir: string;
  let device: Awaited<ReturnType<typeof openDevice>>;
  let server: BrowserModeServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orderlog-bm-'));
    const rendererDir = join(dir, 'renderer');
    mkdirSync(rendererDir);
    writeFileSync(join(rendererDir, 'index.html'), '<!doctype html><title>Orderlog</title>');
    device = await openDevice({ dataDir: join(dir, 'device') });
    server = await serveBrowserMode({ handlers: createHandlers(device), onStatus: (l) => device.onStatus(l), port: 0, rendererDir });
  });

  afterAll(async () => {
    await server.close();
    await device.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the renderer with a strict CSP, and the RPC routes beside it', async () => {
    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>Orderlog</title>');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    const status = await createRpcClient(httpTransport(server.url)).syncStatus({});
    expect(status.state).toBe('disabled');
  });

  it('closes promptly even with a status stream open', async () => {
    const controller = new AbortController();
    const res = await fetch(`${server.url}/rpc/events`, { signal: controller.signal });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(3000);
    controller.abort();
  });
});
