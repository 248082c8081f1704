import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { ConflictResponse, PullResponse, PushResponse } from '../../src/protocol/sync-api.js';
import { ServerEvent } from '../../src/protocol/envelope.js';
import { startServer, type StartedServer } from '../../src/server/index.js';
import { ADMIN_A, BACKENDS, DEVICE_A, DEVICE_B, TOKENS, client, newEvent, orderCreated, type TestBackend } from './helpers.js';

let seq = 0;
const sid = (p = 's') => `${p}-${Date.now().toString(36)}-${++seq}`;

describe.each(BACKENDS)('central server on $name', (factory) => {
  let backend: TestBackend;
  let server: StartedServer;
  let a: ReturnType<typeof client>;
  let admin: ReturnType<typeof client>;
  let b: ReturnType<typeof client>;

  beforeAll(async () => {
    backend = await factory.make();
    server = await startServer({ ...backend.opts, tokens: TOKENS, port: 0 });
    a = client(server.url, DEVICE_A, { 'x-source': 'test-suite' });
    admin = client(server.url, ADMIN_A);
    b = client(server.url, DEVICE_B);
  });
  afterAll(async () => {
    await server?.close();
    await backend?.cleanup();
  });

  const append = (c: ReturnType<typeof client>, streamId: string, expectedVersion: unknown, events: unknown[], streamType = 'Note') =>
    c.post(`/sync/streams/${streamId}/append`, { streamType, expectedVersion, events });

  async function pullAll(c: ReturnType<typeof client>, after = 0) {
    const out: ServerEvent[] = [];
    for (;;) {
      const r = await c.get(`/sync/events?after=${after}&limit=500`);
      expect(r.status).toBe(200);
      const page = PullResponse.parse(r.body);
      out.push(...page.events);
      after = page.nextPosition;
      if (!page.hasMore) return { events: out, next: after };
    }
  }

  /**
   * A pull only hands out events below the oldest transaction still running anywhere on the
   * PostgreSQL cluster (gap safety), so a committed event may show a moment later while another
   * test file writes: wait for it rather than read once.
   */
  async function pullUntil(c: ReturnType<typeof client>, done: (events: ServerEvent[]) => boolean) {
    let events: ServerEvent[] = [];
    await expect.poll(async () => done((events = (await pullAll(c)).events)), { timeout: 15_000, interval: 100 }).toBe(true);
    return events;
  }

  it('appends with versions and positions, and sets metadata from the token and headers', async () => {
    const s = sid();
    const r = await append(a, s, 'no_stream', [newEvent(), newEvent()], 'Note');
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ streamId: s, fromVersion: 1, toVersion: 2, duplicate: false });
    expect(r.body.events[1].globalPosition).toBeGreaterThan(r.body.events[0].globalPosition);
    const events = (await pullUntil(a, (es) => es.filter((e) => e.streamId === s).length >= 2)).filter((e) => e.streamId === s);
    expect(events.map((e) => e.streamVersion)).toEqual([1, 2]);
    expect(events[0]!.metadata).toMatchObject({ tenantId: 'tenant-a', userId: 'alice', source: 'test-suite' });
    expect(events[0]!.metadata.correlationId).toBe(r.headers.get('x-correlation-id'));
    const withCorrelation = await a.post(`/sync/streams/${s}/append`, { streamType: 'Note', expectedVersion: 2, events: [newEvent()] }, { 'x-correlation-id': 'corr-42' });
    expect(withCorrelation.status).toBe(201);
    const third = (await pullUntil(a, (es) => es.some((e) => e.streamId === s && e.streamVersion === 3))).find((e) => e.streamId === s && e.streamVersion === 3);
    expect(third?.metadata.correlationId).toBe('corr-42');
  });

  it('answers a version mismatch with 409, the current version and every missing event', async () => {
    const s = sid();
    const first = [newEvent(), newEvent(), newEvent()];
    expect((await append(a, s, 0, first)).status).toBe(201);
    const r = await append(a, s, 1, [newEvent()]);
    expect(r.status).toBe(409);
    const c = ConflictResponse.parse(r.body);
    expect(c.currentVersion).toBe(3);
    expect(c.missingEvents.map((e) => e.streamVersion)).toEqual([2, 3]);
    expect(c.missingEvents.map((e) => e.eventId)).toEqual([first[1]!.eventId, first[2]!.eventId]);
    const noStream = ConflictResponse.parse((await append(a, s, 'no_stream', [newEvent()])).body);
    expect(noStream.missingEvents).toHaveLength(3);
    expect((await append(a, sid(), 'stream_exists', [newEvent()])).status).toBe(409);
    expect((await append(a, s, 'any', [newEvent()])).body.fromVersion).toBe(4);
    // the rejected appends wrote nothing
    expect((await a.get(`/api/aggregates/${s}/state`)).body.eventCount).toBe(4);
  });

  it('treats a retried append as the same append (idempotent by event id)', async () => {
    const s = sid();
    const events = [newEvent(), newEvent()];
    const first = await append(a, s, 'no_stream', events);
    expect(first.status).toBe(201);
    const retry = await append(a, s, 'no_stream', events);
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual({ ...first.body, duplicate: true });
    const changed = await append(a, s, 2, [{ ...events[0], data: { text: 'other' } }]);
    expect(changed.status).toBe(422);
    expect(changed.body.error).toBe('IDEMPOTENCY_CONFLICT');
    const partial = await append(a, s, 2, [events[1], newEvent()]);
    expect(partial.status).toBe(422);
    const state = await a.get(`/api/aggregates/${s}/state`);
    expect(state.body.eventCount).toBe(2);
    // the same id in another tenant is neither a duplicate of tenant A's event nor refused (which would reveal it)
    const inB = await append(b, s, 'no_stream', [events[0]]);
    expect(inB.status).toBe(201);
    expect(inB.body.duplicate).toBe(false);
  });

  it('50 concurrent appenders on one stream get exactly one event per version, no gaps', async () => {
    const s = sid('hot');
    const ids = Array.from({ length: 50 }, () => uuidv7());
    await Promise.all(
      ids.map(async (id) => {
        let expected: number = 0;
        for (let attempt = 0; attempt < 200; attempt++) {
          const r = await append(a, s, expected, [{ eventId: id, eventType: 'Tick', schemaVersion: 1, data: { id } }]);
          if (r.status === 201) return;
          expect(r.status).toBe(409);
          expected = r.body.currentVersion;
        }
        throw new Error('appender starved');
      }),
    );
    const state = await a.get(`/api/aggregates/${s}/state`);
    expect(state.body.version).toBe(50);
    const events = (await pullUntil(a, (es) => es.filter((e) => e.streamId === s).length >= 50)).filter((e) => e.streamId === s);
    expect(events.map((e) => e.streamVersion)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(new Set(events.map((e) => e.eventId))).toEqual(new Set(ids));
  });

  it('a puller running during concurrent appends sees every event exactly once, in position order', async () => {
    const { next: start } = await pullAll(a);
    const streams = Array.from({ length: 8 }, () => sid('pp'));
    let writing = true;
    const writers = Promise.all(
      streams.map(async (s) => {
        for (let v = 0; v < 6; v++) expect((await append(a, s, v * 2, [newEvent(), newEvent()])).status).toBe(201);
      }),
    ).finally(() => {
      writing = false;
    });
    const seen: ServerEvent[] = [];
    let after = start;
    while (writing) {
      const page = PullResponse.parse((await a.get(`/sync/events?after=${after}&limit=7`)).body);
      seen.push(...page.events);
      after = page.nextPosition;
    }
    await writers;
    // On PostgreSQL a transaction elsewhere in the cluster can hold rows back for a moment;
    // held back is fine, skipped is not: a skipped event could never arrive after `after` moved on.
    const deadline = Date.now() + 20_000;
    while (seen.filter((e) => streams.includes(e.streamId)).length < 96 && Date.now() < deadline) {
      const page = PullResponse.parse((await a.get(`/sync/events?after=${after}&limit=500&waitMs=200`)).body);
      seen.push(...page.events);
      after = page.nextPosition;
    }
    const mine = seen.filter((e) => streams.includes(e.streamId));
    expect(mine).toHaveLength(8 * 12);
    const positions = seen.map((e) => e.globalPosition);
    expect(positions).toEqual([...positions].sort((x, y) => x - y));
    expect(new Set(positions).size).toBe(positions.length);
  });

  it('push applies each append atomically and independently, results in order', async () => {
    const s1 = sid();
    const s2 = sid();
    await append(a, s2, 'no_stream', [newEvent()]);
    const r = await a.post('/sync/push', {
      appends: [
        { streamId: s1, streamType: 'Note', expectedVersion: 'no_stream', events: [newEvent(), newEvent()] },
        { streamId: s2, streamType: 'Note', expectedVersion: 0, events: [newEvent()] },
        { streamId: s1, streamType: 'Note', expectedVersion: 2, events: [newEvent()] },
      ],
    });
    expect(r.status).toBe(200);
    const res = PushResponse.parse(r.body).results;
    expect(res.map((x) => x.status)).toEqual(['ok', 'conflict', 'ok']);
    expect(res[2]).toMatchObject({ status: 'ok', result: { fromVersion: 3, toVersion: 3 } });
    expect(res[1]).toMatchObject({ status: 'conflict', conflict: { currentVersion: 1 } });
  });

  it('push commits many streams at once; a conflict or bad element undoes only itself, results stay in request order', async () => {
    const [z, m, y] = [sid('zz'), sid('mm'), sid('aa')];
    const stored = newEvent();
    await append(a, y, 'no_stream', [stored]);
    const order = orderCreated(sid('order'));
    const r = await a.post('/sync/push', {
      appends: [
        { streamId: z, streamType: 'Note', expectedVersion: 'no_stream', events: [newEvent(), newEvent()] },
        { streamId: m, streamType: 'Note', expectedVersion: 3, events: [newEvent()] },
        { streamId: y, streamType: 'Note', expectedVersion: 1, events: [{ ...stored, data: { text: 'changed' } }] },
        { streamId: order.data.orderId as string, streamType: 'Order', expectedVersion: 'no_stream', events: [order] },
        { streamId: sid('bad'), streamType: 'Order', expectedVersion: 'no_stream', events: [newEvent('OrderCreated', { orderId: 'x' }, 2)] },
        { streamId: z, streamType: 'Note', expectedVersion: 2, events: [newEvent()] },
        { streamId: y, streamType: 'Note', expectedVersion: 1, events: [newEvent()] },
      ],
    });
    expect(r.status).toBe(200);
    const res = PushResponse.parse(r.body).results;
    expect(res.map((x) => x.status)).toEqual(['ok', 'conflict', 'error', 'ok', 'error', 'ok', 'ok']);
    expect(res[0]).toMatchObject({ result: { fromVersion: 1, toVersion: 2 } });
    expect(res[1]).toMatchObject({ conflict: { currentVersion: 0, missingEvents: [] } });
    expect(res[2]).toMatchObject({ error: 'IDEMPOTENCY_CONFLICT', streamId: y });
    expect(res[4]).toMatchObject({ error: 'BAD_REQUEST' });
    expect(res[5]).toMatchObject({ result: { fromVersion: 3, toVersion: 3 } });
    expect(res[6]).toMatchObject({ result: { fromVersion: 2, toVersion: 2 } });
    // The conflicting element on a stream that does not exist left nothing behind, not even a head.
    expect((await a.get(`/sync/streams/${m}/events`)).status).toBe(404);
    expect((await append(a, m, 'no_stream', [newEvent()])).status).toBe(201);
    // The read model was updated in the push's transaction.
    const view = await a.get(`/api/queries/orders/${order.data.orderId as string}`);
    expect(view.status).toBe(200);
    expect((await a.get(`/sync/streams/${z}/events`)).body.events).toHaveLength(3);
    expect((await admin.get('/api/admin/audit/verify')).body).toMatchObject({ ok: true });
  });

  it('long-poll waits for the next event; the live stream delivers it as server-sent events', async () => {
    const { next } = await pullAll(a);
    const s = sid('live');
    const controller = new AbortController();
    const live = await fetch(`${server.url}/sync/events/live?after=${next}`, { headers: { authorization: `Bearer ${DEVICE_A}` }, signal: controller.signal });
    expect(live.headers.get('content-type')).toMatch(/text\/event-stream/);
    const started = Date.now();
    const poll = a.get(`/sync/events?after=${next}&waitMs=10000`);
    await new Promise((r) => setTimeout(r, 300));
    await append(a, s, 'no_stream', [newEvent()]);
    const polled = await poll;
    expect(polled.body.events[0].streamId).toBe(s);
    expect(Date.now() - started).toBeLessThan(8000);
    const reader = live.body!.getReader();
    let text = '';
    while (!text.includes(`"streamId":"${s}"`)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    const dataLine = text.split('\n').find((l) => l.startsWith('data: ') && l.includes(s))!;
    expect(ServerEvent.parse(JSON.parse(dataLine.slice(6))).streamId).toBe(s);
  });

  it('a live stream started from a cursor marks each batch with the cursor after it, and Last-Event-ID resumes from there', async () => {
    /** Reads SSE frames until `want` events arrived; returns them with the last id seen. */
    async function readLive(headers: Record<string, string>, query: string, want: number) {
      const controller = new AbortController();
      const live = await fetch(`${server.url}/sync/events/live${query}`, { headers: { authorization: `Bearer ${DEVICE_A}`, ...headers }, signal: controller.signal });
      const reader = live.body!.getReader();
      let text = '';
      const deadline = Date.now() + 15_000;
      while ((text.match(/^event: event$/gm) ?? []).length < want && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      controller.abort();
      const ids = [...text.matchAll(/^id: (.*)$/gm)].map((m) => m[1]!);
      const streams = [...text.matchAll(/^data: (.*)$/gm)].map((m) => ServerEvent.parse(JSON.parse(m[1]!)).streamId);
      return { ids, streams };
    }
    const start = PullResponse.parse((await a.get('/sync/events?limit=5000')).body);
    let cursor = start.nextCursor!;
    // Everything so far is visible (a cursor pull may lag a moment behind other transactions on PostgreSQL).
    for (let page = start; page.events.length > 0; cursor = page.nextCursor!) page = PullResponse.parse((await a.get(`/sync/events?cursor=${cursor}&limit=5000&waitMs=200`)).body);
    const s1 = sid('sse1');
    await append(a, s1, 'no_stream', [newEvent(), newEvent()]);
    const first = await readLive({}, `?cursor=${cursor}`, 2);
    expect(first.streams).toEqual([s1, s1]);
    expect(first.ids).toHaveLength(1); // one batch: its last event carries the cursor
    expect(first.ids[0]).toMatch(/^v2\.\d+\.\d+$/);
    const s2 = sid('sse2');
    await append(a, s2, 'no_stream', [newEvent()]);
    const resumed = await readLive({ 'last-event-id': first.ids[0]! }, '', 1);
    expect(resumed.streams).toEqual([s2]);
    // A client that started from a position keeps getting positions as ids.
    const byPosition = await readLive({}, "?after=0", 1);
    expect(byPosition.ids[0]).toMatch(/^\d+$/);
  });

  it('requires a valid token, keeps tenants apart and admin endpoints for admins', async () => {
    const s = sid('private');
    await append(a, s, 'no_stream', [newEvent('NoteAdded', { text: 'secret of A' })]);
    expect((await client(server.url, null).get('/sync/events')).status).toBe(401);
    expect((await client(server.url, 'not-a-real-token-123456').get('/sync/events')).status).toBe(401);
    expect((await client(server.url, null).get('/health')).status).toBe(200);
    expect((await client(server.url, null).get('/ready')).body).toMatchObject({ status: 'ready', backend: factory.name });
    const pulledByB = await pullAll(b);
    expect(pulledByB.events.some((e) => e.streamId === s)).toBe(false);
    expect((await b.get(`/api/aggregates/${s}/state`)).status).toBe(404);
    const bAppend = await append(b, s, 'no_stream', [newEvent()]);
    expect(bAppend.body.fromVersion).toBe(1);
    expect((await a.get(`/api/aggregates/${s}/state`)).body.eventCount).toBe(1);
    expect((await a.post('/api/admin/projections/rebuild')).status).toBe(403);
    expect((await a.get('/api/admin/audit/verify')).status).toBe(403);
    expect((await admin.post('/api/admin/projections/rebuild')).status).toBe(200);
  });

  it('rejects bad input with 400 naming the failing path, and writes nothing', async () => {
    const s = sid('bad');
    const before = (await pullAll(a)).next;
    const r = await append(a, s, 'no_stream', [newEvent(), { ...newEvent(), eventId: 'not-a-uuid' }]);
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('BAD_REQUEST');
    expect(r.body.issues).toContainEqual(expect.objectContaining({ path: 'body.events.1.eventId' }));
    const badOrder = await append(a, s, 'no_stream', [newEvent('OrderCreated', { orderId: s, customerId: 'c', items: [], total: -1, currency: 'USD' }, 2)], 'Order');
    expect(badOrder.status).toBe(400);
    expect(badOrder.body.issues[0].path).toBe('body.events.0.data.total');
    expect((await a.get('/sync/events?limit=999999')).body.issues[0].path).toBe('querystring.limit');
    expect((await a.post('/sync/streams/bad%20id/append', { streamType: 'Note', expectedVersion: 0, events: [newEvent()] })).body.issues[0].path).toBe('params.streamId');
    expect((await a.post('/sync/push', '{"appends": [')).status).toBe(400);
    expect((await a.get(`/api/aggregates/${s}/state`)).status).toBe(404);
    expect((await pullAll(a, before)).events).toHaveLength(0);
  });

  it('answers 413 to a body over the limit and 429 past the rate limit', async () => {
    const small = await startServer({ ...backend.opts, tokens: TOKENS, port: 0, bodyLimit: 2048, rateLimit: { max: 5, timeWindowMs: 60_000 } });
    try {
      const c = client(small.url, DEVICE_A);
      const big = await c.post(`/sync/streams/${sid()}/append`, { streamType: 'Note', expectedVersion: 0, events: [newEvent('NoteAdded', { text: 'x'.repeat(5000) })] });
      expect(big.status).toBe(413);
      expect(big.body.error).toBe('PAYLOAD_TOO_LARGE');
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await c.get('/sync/events?limit=1')).status);
      expect(statuses).toContain(429);
      // the limit is per token: another token still gets through
      expect((await client(small.url, DEVICE_B).get('/sync/events?limit=1')).status).toBe(200);
    } finally {
      await small.close();
    }
  });

  it('keeps the events table append-only and the hash chain catches a row altered in the database', async () => {
    const s = sid('audit');
    await append(a, s, 'no_stream', [newEvent('NoteAdded', { text: 'one' }), newEvent('NoteAdded', { text: 'two' }), newEvent('NoteAdded', { text: 'three' })]);
    expect((await admin.get('/api/admin/audit/verify')).body).toMatchObject({ ok: true, firstBroken: null });
    const raw = await backend.raw();
    try {
      const tamper = factory.name === 'pg' ? `UPDATE events SET event_data = '{"text":"forged"}'::jsonb WHERE aggregate_id = ? AND version = 2` : `UPDATE events SET event_data = '{"text":"forged"}' WHERE aggregate_id = ? AND version = 2`;
      await expect(raw.exec(tamper, [s])).rejects.toThrow(/append-only/);
      await expect(raw.exec('DELETE FROM events WHERE aggregate_id = ?', [s])).rejects.toThrow(/append-only/);
      // An attacker with database rights removes the guard and edits history.
      await raw.exec(factory.name === 'pg' ? 'DROP TRIGGER events_no_update_delete ON events' : 'DROP TRIGGER events_no_update');
      expect(await raw.exec(tamper, [s])).toBe(1);
    } finally {
      await raw.close();
    }
    const report = (await admin.get(`/api/admin/audit/verify?streamId=${s}`)).body;
    expect(report.ok).toBe(false);
    expect(report.firstBroken).toMatchObject({ streamId: s, streamVersion: 2 });
    const whole = (await admin.get('/api/admin/audit/verify')).body;
    expect(whole.firstBroken).toMatchObject({ streamId: s, streamVersion: 2 });
  });

  describe('seed API', () => {
    it('POST /api/events appends seed events (major units) and GET state replays them', async () => {
      const id = sid('seed');
      // The seeds' own format has no items: a valid order every device can read (items may be empty).
      const itemless = await a.post('/api/events', { aggregateId: `${id}-bare`, aggregateType: 'Order', eventType: 'OrderCreated', eventData: { orderId: `${id}-bare`, customerId: 'C-1', totalAmount: 100 } });
      expect(itemless.status).toBe(201);
      // Negative money is refused, naming the seed's field, and nothing is stored.
      const negative = await a.post('/api/events', { aggregateId: `${id}-neg`, aggregateType: 'Order', eventType: 'OrderCreated', eventData: { orderId: `${id}-neg`, customerId: 'C-1', totalAmount: -100 } });
      expect(negative.status).toBe(400);
      expect(negative.body.issues[0].path).toMatch(/^body\.eventData\./);
      expect((await a.get(`/api/aggregates/${id}-neg/state`)).status).toBe(404);
      const v1 = { orderId: id, customerId: 'C-1', items: [{ sku: 'S-1', quantity: 1, unitPrice: '100.00' }], totalAmount: 100 };
      const created = await a.post('/api/events', { aggregateId: id, aggregateType: 'Order', eventType: 'OrderCreated', eventData: v1 });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ aggregateId: id, version: 1, duplicate: false });
      const paid = await a.post('/api/events', { aggregateId: id, aggregateType: 'Order', eventType: 'PaymentReceived', eventData: { paymentId: 'P-1', amount: 100 }, expectedVersion: 1 });
      expect(paid.body.version).toBe(2);
      const race = await a.post('/api/events', { aggregateId: id, aggregateType: 'Order', eventType: 'InventoryReserved', eventData: { reservationId: 'R-1' }, expectedVersion: 1 });
      expect(race.status).toBe(409);
      expect(race.body).toMatchObject({ error: 'CONCURRENT_MODIFICATION', currentVersion: 2 });
      const state = await a.get(`/api/aggregates/${id}/state`);
      expect(state.body).toMatchObject({ aggregateId: id, version: 2, eventCount: 2, currentState: { status: 'PAID', totalAmount: 100, paidAmount: 100, total: 100, currency: 'USD' } });
      expect(typeof state.body.lastModified).toBe('string');
      expect((await a.get('/api/aggregates/nope-nothing/state')).body).toEqual({ error: 'Aggregate not found' });
    });

    it('commands go through decide(): create, status changes, 409 and 422', async () => {
      const created = await a.post('/api/commands/orders', { customerId: 'cust-9', items: [{ sku: 'A', quantity: 2, unitPrice: 12.5 }] });
      expect(created.status).toBe(201);
      const orderId = created.body.orderId;
      expect(created.body).toMatchObject({ status: 'CREATED', version: 1 });
      const early = await a.put(`/api/commands/orders/${orderId}/status`, { status: 'SHIPPED', expectedVersion: 1 });
      expect(early.status).toBe(422);
      expect(early.body.error).toBe('NOT_PAID');
      const stale = await a.put(`/api/commands/orders/${orderId}/status`, { status: 'PAID', expectedVersion: 0 });
      expect(stale.status).toBe(409);
      expect(stale.body.error).toBe('CONCURRENT_MODIFICATION');
      const paid = await a.put(`/api/commands/orders/${orderId}/status`, { status: 'PAID', expectedVersion: 1 });
      expect(paid.body).toMatchObject({ status: 'PAID', previousStatus: 'CREATED', version: 2 });
      const reserved = await a.put(`/api/commands/orders/${orderId}/status`, { status: 'RESERVED', expectedVersion: 2 });
      expect(reserved.body).toMatchObject({ status: 'RESERVED', version: 3 });
      const shipped = await a.put(`/api/commands/orders/${orderId}/status`, { status: 'SHIPPED', expectedVersion: 3 });
      expect(shipped.body).toMatchObject({ status: 'SHIPPED', version: 4 });
      const cancel = await a.put(`/api/commands/orders/${orderId}/status`, { status: 'CANCELLED', expectedVersion: 4 });
      expect(cancel.body.error).toBe('ORDER_SHIPPED');
      const detail = await a.get(`/api/queries/orders/${orderId}`);
      expect(detail.body).toMatchObject({ order_id: orderId, status: 'SHIPPED', total: 25, paid_amount: 25, version: 4 });
      expect((await a.put(`/api/commands/orders/${orderId}/status`, { status: 'LOST', expectedVersion: 4 })).body.issues[0].path).toBe('body.status');
    });

    it('queries carry an ETag of the projection position and honour If-None-Match; rebuild replays the log', async () => {
      const orderId = sid('etag');
      expect((await append(a, orderId, 'no_stream', [orderCreated(orderId, 700)], 'Order')).status).toBe(201);
      const dash = await a.get('/api/queries/orders/dashboard?status=CREATED&limit=100');
      expect(dash.status).toBe(200);
      expect(dash.body.map((o: { order_id: string }) => o.order_id)).toContain(orderId);
      expect(Number(dash.headers.get('x-total-count'))).toBeGreaterThanOrEqual(1);
      const etag = dash.headers.get('etag')!;
      expect(etag).toMatch(/^"p\d+"$/);
      expect((await a.get('/api/queries/orders/dashboard?status=CREATED&limit=100', { 'if-none-match': etag })).status).toBe(304);
      const one = await a.get(`/api/queries/orders/${orderId}`);
      const oneTag = one.headers.get('etag')!;
      expect((await a.get(`/api/queries/orders/${orderId}`, { 'if-none-match': oneTag })).status).toBe(304);
      await append(a, orderId, 1, [newEvent('PaymentReceived', { paymentId: 'p-1', amount: 700 })], 'Order');
      const after = await a.get(`/api/queries/orders/${orderId}`, { 'if-none-match': oneTag });
      expect(after.status).toBe(200);
      expect(after.body.status).toBe('PAID');
      expect((await a.get('/api/queries/orders/dashboard?status=CREATED&limit=100', { 'if-none-match': etag })).status).toBe(200);
      expect((await b.get(`/api/queries/orders/${orderId}`)).status).toBe(404);

      const before = (await a.get('/api/queries/orders/dashboard?limit=500')).body;
      const rebuilt = await admin.post('/api/admin/projections/rebuild');
      expect(rebuilt.body).toMatchObject({ status: 'REBUILD_COMPLETE' });
      expect(rebuilt.body.eventsReplayed).toBeGreaterThanOrEqual(2);
      expect(Date.parse(rebuilt.body.completedAt)).not.toBeNaN();
      expect((await a.get('/api/queries/orders/dashboard?limit=500')).body).toEqual(before);
    });
  });

  it('serves an OpenAPI document generated from the schemas', async () => {
    const doc = (await a.get('/openapi.json')).body;
    expect(doc.openapi).toMatch(/^3\./);
    for (const p of ['/sync/push', '/sync/events', '/sync/streams/{streamId}/append', '/api/events', '/api/queries/orders/dashboard', '/api/commands/orders/{orderId}/status']) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
    const body = doc.paths['/sync/streams/{streamId}/append'].post.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(expect.arrayContaining(['streamType', 'expectedVersion', 'events']));
  });
});
