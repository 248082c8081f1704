import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import {
  ConflictResponse,
  MAX_MISSING_BYTES_PER_CONFLICT,
  MAX_MISSING_BYTES_PER_RESPONSE,
  MAX_MISSING_EVENTS_PER_CONFLICT,
  PushResponse,
  StreamEventsResponse,
} from '../../src/protocol/sync-api.js';
import { NetworkError } from '../../src/sync/errors.js';
import type { StartedServer } from '../../src/server/index.js';
import { BACKENDS, client, type TestBackend } from './helpers.js';
import { TENANT, openDevice, startDeviceServer, tokenOf, type Device } from '../sync/helpers.js';

/** 100,000 events on one order stream: the stale push that answered 102 MB before bounds. */
const LONG = 100_000;
/** Seed batch (the repository takes more per append than the HTTP API's 1000). */
const BATCH = 5000;
/** Room for the envelope around the missing events (ids, messages, one result per element). */
const ENVELOPE = 64 * 1024;

// Small events whose fold keeps the order state small (the read model is refolded per append).
const reserved = (i: number) => ({ eventId: uuidv7(), eventType: 'InventoryReserved', schemaVersion: 1, data: { reservationId: `res-${i}` } });

describe.each(BACKENDS)('bounded conflict answers on $name', (factory) => {
  let backend: TestBackend;
  let server: StartedServer;
  let dir: string;
  let device: Device;
  let http: ReturnType<typeof client>;
  const orderId = `long-${Date.now().toString(36)}`;

  beforeAll(async () => {
    backend = await factory.make();
    server = await startDeviceServer(backend.opts, ['alice', 'bob']);
    dir = mkdtempSync(join(tmpdir(), 'orderlog-bounds-'));
    device = openDevice(join(dir, 'alice.sqlite'), 'alice', server.url, { timeoutMs: 60_000 });
    http = client(server.url, tokenOf('bob'));

    // The device creates the order and syncs it, then records a payment offline (stale from here on).
    expect(device.submit({ type: 'CreateOrder', orderId, customerId: 'c-1', items: [{ sku: 'SKU-1', quantity: 1, unitPrice: 1_000_000 }], currency: 'USD' }).ok).toBe(true);
    expect((await device.engine.syncOnce()).pending).toBe(0);
    expect(device.submit({ type: 'RecordPayment', orderId, paymentId: 'offline-pay', amount: 500 }).ok).toBe(true);

    // Meanwhile another device writes 100,000 events to the same stream (through the server's
    // own append path, without HTTP: the seeding is not what is tested here).
    for (let v = 1; v < 1 + LONG; v += BATCH) {
      const events = Array.from({ length: BATCH }, (_, i) => ({ ...reserved(v + i), metadata: { tenantId: TENANT, userId: 'bob', source: 'seed' } }));
      const r = await server.repo.append({ tenantId: TENANT, streamId: orderId, streamType: 'Order', expectedVersion: v, events });
      expect(r.status).toBe('ok');
    }
  }, 600_000);

  afterAll(async () => {
    device?.close();
    await server?.close();
    await backend?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a stale append gets a bounded 409 that says where to continue', async () => {
    const res = await fetch(`${server.url}/sync/streams/${orderId}/append`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenOf('bob')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ streamType: 'Order', expectedVersion: 1, events: [reserved(-1)] }),
    });
    const text = await res.text();
    expect(res.status).toBe(409);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_MISSING_BYTES_PER_CONFLICT + ENVELOPE);
    const c = ConflictResponse.parse(JSON.parse(text));
    expect(c.currentVersion).toBe(1 + LONG);
    expect(c.missingEventsComplete).toBe(false);
    expect(c.missingEvents.length).toBeGreaterThan(0);
    expect(c.missingEvents.length).toBeLessThanOrEqual(MAX_MISSING_EVENTS_PER_CONFLICT);
    expect(c.missingEvents[0]!.streamVersion).toBe(2);
    expect(c.continueAfterVersion).toBe(c.missingEvents[c.missingEvents.length - 1]!.streamVersion);

    // A conflict near the head is small enough to be answered whole.
    const near = ConflictResponse.parse((await http.post(`/sync/streams/${orderId}/append`, { streamType: 'Order', expectedVersion: LONG - 2, events: [reserved(-2)] })).body);
    expect(near).toMatchObject({ missingEventsComplete: true, currentVersion: 1 + LONG });
    expect(near.continueAfterVersion).toBeUndefined();
    expect(near.missingEvents.map((e) => e.streamVersion)).toEqual([LONG - 1, LONG, LONG + 1]);
  });

  it('a push of many stale appends stays within the per-response byte bound', async () => {
    // 50 elements, each alone would earn a full per-conflict answer.
    const appends = Array.from({ length: 50 }, (_, i) => ({ streamId: orderId, streamType: 'Order', expectedVersion: 1 + (i % 5), events: [reserved(-100 - i)] }));
    const request = JSON.stringify({ appends });
    const res = await fetch(`${server.url}/sync/push`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenOf('bob')}`, 'content-type': 'application/json' },
      body: request,
    });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_MISSING_BYTES_PER_RESPONSE + ENVELOPE);
    const { results } = PushResponse.parse(JSON.parse(text));
    expect(results).toHaveLength(50);
    for (const r of results) {
      expect(r.status).toBe('conflict');
      if (r.status !== 'conflict') continue;
      expect(r.conflict.missingEventsComplete).toBe(false);
      const last = r.conflict.missingEvents[r.conflict.missingEvents.length - 1];
      expect(r.conflict.continueAfterVersion).toBe(last ? last.streamVersion : r.conflict.expectedVersion);
    }
    // Once the response's allowance is spent, later conflicts carry no events, only the continuation.
    expect(results.some((r) => r.status === 'conflict' && r.conflict.missingEvents.length === 0)).toBe(true);
  });

  it('pages a stream through GET /sync/streams/:id/events with afterVersion and limit', async () => {
    const page = StreamEventsResponse.parse((await http.get(`/sync/streams/${orderId}/events?afterVersion=50000&limit=3`)).body);
    expect(page.events.map((e) => e.streamVersion)).toEqual([50_001, 50_002, 50_003]);
    expect(page.hasMore).toBe(true);
    const tail = StreamEventsResponse.parse((await http.get(`/sync/streams/${orderId}/events?afterVersion=${LONG - 1}&limit=10`)).body);
    expect(tail.events.map((e) => e.streamVersion)).toEqual([LONG, LONG + 1]);
    expect(tail.hasMore).toBe(false);
    const past = await http.get(`/sync/streams/${orderId}/events?afterVersion=${LONG + 5}`);
    expect(past.status).toBe(200);
    expect(past.body).toMatchObject({ events: [], hasMore: false });
    expect((await http.get(`/sync/streams/${orderId}/events?limit=5001`)).status).toBe(400);
    expect((await http.get('/sync/streams/no-such-stream/events')).status).toBe(404);
  });

  /**
   * Device and server share this process, and the rebase on 100k events blocks it for a while on a
   * loaded machine: the server may close the kept-alive socket just as the next request goes out
   * on it (ECONNRESET). The scheduler retries a network error; so does the test, once.
   */
  async function push() {
    try {
      return await device.engine.push();
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      return device.engine.push();
    }
  }

  it('a device with a stale pending command follows the continuation and rebases on the whole stream', async () => {
    const pushed = await push();
    // One push: the bounded answer plus the fetched pages brought the whole stream, and the
    // pending payment was re-decided on it (not rejected, not left behind).
    expect(pushed.rebasedOrders).toBe(1);
    expect(pushed.rejectedCommands).toEqual([]);
    expect(device.store.log.streamVersion(orderId)).toBe(1 + LONG);
    // The rebased command goes through on the next push (a pull would only confirm it again).
    const report = await push();
    expect(report.pending).toBe(0);
    expect(report.rejectedCommands).toEqual([]);
    const state = (await http.get(`/api/queries/orders/${orderId}`)).body;
    expect(state).toMatchObject({ version: LONG + 2, paid_amount: 5 }); // seed 004's detail: snake_case, major units
    expect(device.store.log.streamVersion(orderId)).toBe(LONG + 2);
  }, 300_000);
});
