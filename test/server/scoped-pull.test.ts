import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../../src/server/index.js';
import type { TokenEntry } from '../../src/server/tokens.js';
import { BACKENDS, client, newEvent, type TestBackend } from './helpers.js';

const TOKENS: TokenEntry[] = [
  { token: 'scoped-device-tenant-a-01', tenant: 'tenant-a', user: 'dev-a', roles: ['device'] },
  { token: 'scoped-device-tenant-b-01', tenant: 'tenant-b', user: 'dev-b', roles: ['device'] },
];
let seq = 0;
const sid = (p: string) => `${p}-${Date.now().toString(36)}-${++seq}`;
const created = (orderId: string, customerId: string) =>
  newEvent('OrderCreated', { orderId, customerId, items: [{ sku: 'SKU-1', quantity: 1, unitPrice: 100 }], total: 100, currency: 'USD' }, 2);

describe.each(BACKENDS)('scoped pull on $name', (factory) => {
  let backend: TestBackend;
  let server: StartedServer;
  let a: ReturnType<typeof client>;
  let b: ReturnType<typeof client>;
  const ids = { a1: sid('a-c1'), a2: sid('a-c2'), a3: sid('a-c3'), shared: sid('same-id'), b1: sid('b-c1') };

  beforeAll(async () => {
    backend = await factory.make();
    server = await startServer({ ...backend.opts, tokens: TOKENS, port: 0 });
    a = client(server.url, TOKENS[0]!.token);
    b = client(server.url, TOKENS[1]!.token);
    const append = (c: typeof a, streamId: string, customer: string) =>
      c.post(`/sync/streams/${streamId}/append`, { streamType: 'Order', expectedVersion: 'no_stream', events: [created(streamId, customer)] });
    expect((await append(a, ids.a1, 'cust-1')).status).toBe(201);
    expect((await append(b, ids.b1, 'cust-1')).status).toBe(201);
    expect((await append(a, ids.a2, 'cust-2')).status).toBe(201);
    // The same stream id in both tenants: each tenant sees only its own.
    expect((await append(b, ids.shared, 'cust-9')).status).toBe(201);
    expect((await append(a, ids.shared, 'cust-3')).status).toBe(201);
    expect((await append(a, ids.a3, 'cust-3')).status).toBe(201);
  });
  afterAll(async () => {
    await server?.close();
    await backend?.cleanup();
  });

  const scoped = (c: typeof a, body: unknown) => c.post('/sync/events/scoped', body);
  const streamsOf = (body: { events: { streamId: string }[] }) => body.events.map((e) => e.streamId);

  it("returns only the streams in scope, within the caller's tenant, and passes over the rest", async () => {
    const all = await a.get('/sync/events?after=0&limit=5000');
    const head = all.body.nextPosition as number;
    const res = await scoped(a, { after: 0, scope: { customers: ['cust-1'], streams: [ids.shared] } });
    expect(res.status).toBe(200);
    expect(streamsOf(res.body)).toEqual([ids.a1, ids.shared]);
    expect(res.body.events.every((e: { data: { customerId: string } }) => e.data.customerId !== 'cust-9')).toBe(true);
    expect(res.body.hasMore).toBe(false);
    // The cursor moves past the tenant's events out of scope (and other tenants' positions).
    expect(res.body.nextPosition).toBeGreaterThanOrEqual(head);

    // Tenant B names tenant A's customer-less streams and customers: it gets only its own.
    const other = await scoped(b, { after: 0, scope: { customers: ['cust-1', 'cust-2', 'cust-3'], streams: [ids.a1, ids.a2, ids.a3] } });
    expect(streamsOf(other.body)).toEqual([ids.b1]);
  });

  it('recency, paging and an upper bound (the backfill of a widened scope)', async () => {
    const recent = await scoped(a, { after: 0, limit: 2, scope: { recentDays: 1 } });
    expect(streamsOf(recent.body)).toEqual([ids.a1, ids.a2]);
    expect(recent.body.hasMore).toBe(true);
    const rest = await scoped(a, { after: recent.body.nextPosition, limit: 2, scope: { recentDays: 1 } });
    expect(streamsOf(rest.body)).toEqual([ids.shared, ids.a3]);

    const a2Position = recent.body.events[1].globalPosition as number;
    const bounded = await scoped(a, { after: 0, upTo: a2Position, scope: { customers: ['cust-2', 'cust-3'] } });
    expect(streamsOf(bounded.body)).toEqual([ids.a2]);
    expect(bounded.body.nextPosition).toBe(a2Position);
    expect(bounded.body.hasMore).toBe(false);
  });

  it('refuses a malformed scope with a clear error', async () => {
    const bad = await scoped(a, { after: 0, scope: { customers: 'cust-1' } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('customers');
    const huge = await scoped(a, { after: 0, scope: { recentDays: 0 } });
    expect(huge.status).toBe(400);
    const none = await client(server.url, null).post('/sync/events/scoped', { after: 0, scope: {} });
    expect(none.status).toBe(401);
  });
});
