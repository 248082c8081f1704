import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { EventSchemas } from '../../src/domain/events.js';
import { canonicalJson } from '../../src/protocol/canonical-json.js';
import { GENESIS_HASH, chainHash } from '../../src/protocol/event-hash.js';
import type { StartedServer } from '../../src/server/index.js';
import { Outbox } from '../../src/sync/outbox.js';
import { SyncEngine } from '../../src/sync/sync-engine.js';
import { SyncHttpClient } from '../../src/sync/http-client.js';
import { openLocalStore } from '../../src/store/local-store.js';
import { TENANT, createOrder, openDevice, pay, startDeviceServer, tokenOf, type Device } from '../sync/helpers.js';
import { BACKENDS, client, pgClient, type TestBackend } from './helpers.js';

/**
 * Finding 1 of issue 10, every case, against both backends over real HTTP: each poison event is
 * refused with a 4xx naming the path through the seed API, the sync append and the push; the
 * database content is unchanged; and a device on the same server keeps syncing.
 */

const DEEP = '__DEEP_VALUE__';
/** JSON text nested `levels` deep (JSON.stringify cannot write such a value: it recurses). */
const nested = (levels: number) => '{"x":'.repeat(levels) + '1' + '}'.repeat(levels);
const bodyText = (body: unknown, deep: number | undefined) => {
  const text = JSON.stringify(body);
  return deep === undefined ? text : text.replace(JSON.stringify(DEEP), nested(deep));
};

interface PoisonCase {
  name: string;
  streamType: string;
  eventType: string;
  schemaVersion: number;
  data: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  /** Replace the DEEP marker in the JSON text with this many levels of nesting. */
  deep?: number;
  /** Path of the first issue, relative to the event (data…, metadata…, eventType…). */
  path: RegExp;
}

const item = { sku: 'SKU-1', quantity: 1, unitPrice: 100 };
const order = (id: string, extra: Record<string, unknown> = {}) => ({ orderId: id, customerId: 'C-1', items: [item], total: 100, currency: 'USD', ...extra });

const CASES: PoisonCase[] = [
  { name: 'negative money (unit price)', streamType: 'Order', eventType: 'OrderCreated', schemaVersion: 2, data: order('P2', { items: [{ ...item, unitPrice: -5 }] }), path: /^data\.items\.0\.unitPrice$/ },
  { name: 'negative money (v1 total)', streamType: 'Order', eventType: 'OrderCreated', schemaVersion: 1, data: { orderId: 'P3', customerId: 'C', items: [item], totalAmount: -100 }, path: /^data(\.total(Amount)?)?$/ },
  { name: 'quantity over 1e6', streamType: 'Order', eventType: 'OrderCreated', schemaVersion: 2, data: order('P4', { items: [{ ...item, quantity: 1_000_001 }] }), path: /^data\.items\.0\.quantity$/ },
  { name: 'more than 500 items', streamType: 'Order', eventType: 'OrderCreated', schemaVersion: 2, data: order('P5', { items: Array.from({ length: 501 }, () => item) }), path: /^data\.items$/ },
  { name: 'an order event type on an Invoice stream', streamType: 'Invoice', eventType: 'OrderCreated', schemaVersion: 2, data: { note: 'x' }, path: /^eventType$/ },
  { name: '4,200 levels of nesting', streamType: 'Note', eventType: 'NoteAdded', schemaVersion: 1, data: { text: DEEP }, deep: 4200, path: /^data\.text(\.x)+$/ },
  { name: '10,000 levels of nesting', streamType: 'Note', eventType: 'NoteAdded', schemaVersion: 1, data: { text: DEEP }, deep: 10_000, path: /^data\.text(\.x)+$/ },
  { name: 'NUL in a cancel reason', streamType: 'Order', eventType: 'OrderCancelled', schemaVersion: 1, data: { reason: 'bad\u0000reason', cancelledAt: '2025-01-02T03:04:05.000Z' }, path: /^data\.reason$/ },
  { name: 'a lone surrogate in a refund reason', streamType: 'Order', eventType: 'PaymentRefunded', schemaVersion: 1, data: { paymentId: 'PAY-1', amount: 100, reason: 'oops \ud800' }, path: /^data\.reason$/ },
  { name: 'NUL in an unknown event type on another stream type', streamType: 'Note', eventType: 'NoteAdded', schemaVersion: 1, data: { text: 'a\u0000b' }, path: /^data\.text$/ },
  { name: 'a lone surrogate in metadata', streamType: 'Note', eventType: 'NoteAdded', schemaVersion: 1, data: { text: 'ok' }, metadata: { causationId: '\udc00' }, path: /^metadata\.causationId$/ },
  { name: 'a far-future ship date', streamType: 'Order', eventType: 'OrderShipped', schemaVersion: 1, data: { shipmentId: 'SH-1', shippedAt: '2999-01-01T00:00:00.000Z' }, path: /^data\.shippedAt$/ },
  { name: 'a cancel date before 2000', streamType: 'Order', eventType: 'OrderCancelled', schemaVersion: 1, data: { reason: 'old', cancelledAt: '1970-01-01T00:00:00.000Z' }, path: /^data\.cancelledAt$/ },
  { name: 'a far-future occurredAt', streamType: 'Order', eventType: 'InventoryReserved', schemaVersion: 1, data: { reservationId: 'R-1' }, metadata: { occurredAt: '2999-01-01T00:00:00.000Z' }, path: /^metadata\.occurredAt$/ },
  { name: 'a newer schema version than the server knows', streamType: 'Order', eventType: 'PaymentReceived', schemaVersion: 9, data: { paymentId: 'PAY-9', amount: 1 }, path: /^schemaVersion$/ },
];

/** Content of every table the server writes, as one digest (row order independent). */
async function digest(backend: TestBackend): Promise<string> {
  const h = createHash('sha256');
  if (backend.opts.backend === 'sqlite') {
    const db = new Database(backend.opts.file, { readonly: true });
    try {
      for (const t of ['events', 'streams', 'order_projections']) {
        h.update(`${t}\n${(db.prepare(`SELECT * FROM ${t}`).all() as unknown[]).map((r) => JSON.stringify(r)).sort().join('\n')}\n`);
      }
    } finally {
      db.close();
    }
  } else {
    const c = await pgClient(backend.opts.schema);
    try {
      for (const t of ['events', 'streams', 'order_projections']) {
        const { rows } = await c.query<{ r: string }>(`SELECT t::text AS r FROM ${t} t`);
        h.update(`${t}\n${rows.map((r) => r.r).sort().join('\n')}\n`);
      }
    } finally {
      await c.end();
    }
  }
  return h.digest('hex');
}

describe.each(BACKENDS)('poison events on $name', (factory) => {
  let backend: TestBackend;
  let server: StartedServer;
  let dir: string;
  let http: ReturnType<typeof client>;
  let device: Device;
  let seq = 0;
  const sid = (p: string) => `${p}-${Date.now().toString(36)}-${++seq}`;

  beforeAll(async () => {
    backend = await factory.make();
    server = await startDeviceServer(backend.opts, ['alice', 'bob']);
    dir = mkdtempSync(join(tmpdir(), 'orderlog-poison-'));
    http = client(server.url, tokenOf('alice'));
    device = openDevice(join(dir, 'alice.sqlite'), 'alice', server.url);
  });
  afterAll(async () => {
    device?.close();
    await server?.close();
    await backend?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const raw = async (path: string, text: string) => {
    const res = await fetch(server.url + path, { method: 'POST', headers: { authorization: `Bearer ${tokenOf('alice')}`, 'content-type': 'application/json' }, body: text });
    return { status: res.status, body: (await res.json()) as { error: string; message: string; issues?: { path: string; message: string }[]; results?: unknown[] } };
  };

  it('refuses every case with a 4xx naming the path, on all three write paths, and stores nothing', async () => {
    expect(device.submit(createOrder('before-poison')).ok).toBe(true);
    expect((await device.engine.syncOnce()).pending).toBe(0);
    const before = await digest(backend);
    for (const c of CASES) {
      const streamId = sid('poison');
      const event = { eventId: uuidv7(), eventType: c.eventType, schemaVersion: c.schemaVersion, data: c.data, ...(c.metadata ? { metadata: c.metadata } : {}) };

      // The seed dialect also checks that an order's id is its aggregate's id: keep them equal.
      const seedData = 'orderId' in c.data ? { ...c.data, orderId: streamId } : c.data;
      const seed = await raw('/api/events', bodyText({ aggregateId: streamId, aggregateType: c.streamType, eventType: c.eventType, schemaVersion: c.schemaVersion, eventData: seedData, ...(c.metadata ? { metadata: c.metadata } : {}) }, c.deep));
      expect(seed.status, `${c.name} via /api/events: ${seed.body.message}`).toBe(400);
      // The seed API takes Order events in the seed dialect (v1) only: a v2 payload is refused at its version.
      const seedDialectOnly = c.streamType === 'Order' && c.schemaVersion !== 1;
      // Seed money events convert with the order's currency: on a stream with no order they are refused at the aggregate.
      const needsOrder = c.streamType === 'Order' && (c.eventType === 'PaymentReceived' || c.eventType === 'PaymentRefunded');
      const seedPath = seedDialectOnly ? '^body\\.schemaVersion$' : needsOrder ? '^body\\.aggregateId$' : c.path.source.replace('^data', '^eventData').replace('^', '^body\\.');
      expect(seed.body.issues?.[0]?.path, c.name).toMatch(new RegExp(seedPath));

      const append = await raw(`/sync/streams/${streamId}/append`, bodyText({ streamType: c.streamType, expectedVersion: 'any', events: [event] }, c.deep));
      expect(append.status, `${c.name} via append: ${append.body.message}`).toBe(400);
      expect(append.body.issues?.[0]?.path, c.name).toMatch(new RegExp(c.path.source.replace('^', '^body\\.events\\.0\\.')));

      const push = await raw('/sync/push', bodyText({ appends: [{ streamId, streamType: c.streamType, expectedVersion: 'any', events: [event] }] }, c.deep));
      expect(push.status, c.name).toBe(200);
      const result = (push.body.results as { status: string; error: string; issues: { path: string }[] }[])[0]!;
      expect(result.status, c.name).toBe('error');
      expect(result.error).toBe('BAD_REQUEST');
      expect(result.issues[0]!.path, c.name).toMatch(new RegExp(c.path.source.replace('^', '^appends\\.0\\.events\\.0\\.')));
    }
    expect(await digest(backend)).toBe(before);

    // The device on the same server keeps syncing.
    expect(device.submit(pay('before-poison', 'PAY-after', 5_000)).ok).toBe(true);
    const report = await device.engine.syncOnce();
    expect(report).toMatchObject({ pending: 0, streamErrors: [] });
    expect(device.outbox.quarantine.count()).toBe(0);
  });

  it('answers each element of a push on its own: the good one is stored, the poison one refused', async () => {
    const good = sid('good');
    const bad = sid('bad');
    const ev = (data: Record<string, unknown>, eventType = 'OrderCreated', schemaVersion = 2) => ({ eventId: uuidv7(), eventType, schemaVersion, data });
    const r = await http.post('/sync/push', {
      appends: [
        { streamId: good, streamType: 'Order', expectedVersion: 0, events: [ev(order(good))] },
        { streamId: bad, streamType: 'Order', expectedVersion: 'any', events: [ev({ reason: 'x\u0000y', cancelledAt: '2025-01-01T00:00:00.000Z' }, 'OrderCancelled', 1)] },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body.results[0].status).toBe('ok');
    expect(r.body.results[1]).toMatchObject({ status: 'error', streamId: bad, error: 'BAD_REQUEST', issues: [{ path: 'appends.1.events.0.data.reason' }] });
    expect((await server.repo.readStream(TENANT, good)).length).toBe(1);
    expect(await server.repo.readStream(TENANT, bad)).toEqual([]);
  });

  it('a device moves a refused command to the conflict inbox with the reason; the good one confirms; the next sync is clean', async () => {
    // The device's clock jumps three days ahead between two commands: it accepts its own events
    // (its clock says they are recent), the server's clock says the second command's are not.
    let clock = Date.now();
    const store = openLocalStore(join(dir, 'skewed.sqlite'), { durability: 'normal' });
    try {
      const outbox = new Outbox(store, { deviceId: 'dev-skewed', now: () => new Date(clock).toISOString() });
      const engine = new SyncEngine({ store, outbox, client: new SyncHttpClient({ baseUrl: server.url, token: tokenOf('bob'), timeoutMs: 5000 }) });
      const good = sid('skew-good');
      const refused = sid('skew-refused');
      const both = sid('skew-both');
      expect(outbox.submit(createOrder(good), { userId: 'bob' }).ok).toBe(true);
      expect(outbox.submit(createOrder(both), { userId: 'bob' }).ok).toBe(true);
      clock += 3 * 24 * 3600_000;
      const r1 = outbox.submit(createOrder(refused), { userId: 'bob' });
      const r2 = outbox.submit(pay(both, 'PAY-skew', 10_000), { userId: 'bob' });
      expect(r1.ok && r2.ok).toBe(true);

      const report = await engine.syncOnce();
      expect(report.pending).toBe(0);
      expect(report.rejectedCommands.sort()).toEqual([r1.ok ? r1.commandId : '', r2.ok ? r2.commandId : ''].sort());
      const conflicts = outbox.listConflicts();
      expect(conflicts.map((c) => c.orderId).sort()).toEqual([both, refused].sort());
      for (const c of conflicts) {
        expect(c.rejection.code).toBe('REFUSED_BY_SERVER');
        expect(c.rejection.message).toMatch(/metadata\.occurredAt: must not be more than 24 hours after/);
      }
      // The good commands (a whole order, and the first command of the mixed one) are confirmed.
      expect((await server.repo.readStream(TENANT, good)).map((e) => e.eventType)).toEqual(['OrderCreated']);
      expect((await server.repo.readStream(TENANT, both)).map((e) => e.eventType)).toEqual(['OrderCreated']);
      expect(await server.repo.readStream(TENANT, refused)).toEqual([]);
      expect(outbox.badge(good)).toBe('synced');
      expect(outbox.badge(refused)).toBe('rejected');

      const again = await engine.syncOnce();
      expect(again).toMatchObject({ pending: 0, streamErrors: [], rejectedCommands: [], pushedEvents: 0 });
    } finally {
      store.close();
    }
  });

  describe('a poison row written straight into the database, behind the server', () => {
    async function insertRaw(e: { streamId: string; streamType: string; eventType: string; schemaVersion: number; data: Record<string, unknown>; metadata?: Record<string, unknown> }): Promise<void> {
      const eventId = uuidv7();
      const recordedAt = new Date().toISOString();
      const metadata = e.metadata ?? { tenantId: TENANT, userId: 'intruder' };
      const hash = chainHash(GENESIS_HASH, { eventId, streamId: e.streamId, streamVersion: 1, eventType: e.eventType, schemaVersion: e.schemaVersion, recordedAt }, canonicalJson(e.data), canonicalJson(metadata));
      const db = await backend.raw();
      try {
        await db.exec(
          'INSERT INTO events (event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)',
          [eventId, TENANT, e.streamId, e.streamType, e.eventType, e.schemaVersion, canonicalJson(e.data), canonicalJson(metadata), recordedAt, hash],
        );
        await db.exec('INSERT INTO streams (tenant_id, aggregate_id, aggregate_type, version, last_hash) VALUES (?, ?, ?, 1, ?)', [TENANT, e.streamId, e.streamType, hash]);
      } finally {
        await db.close();
      }
    }

    it('the device quarantines it (and what follows on its stream), keeps syncing everything else, and applies it after an update', async () => {
      const newer = sid('q-newer');
      const invalid = sid('q-invalid');
      const deep = sid('q-deep');
      const odd = sid('q-odd');
      const fine = sid('q-fine');
      // A known type at a version this build does not know yet, and data that breaks the contract.
      await insertRaw({ streamId: newer, streamType: 'Order', eventType: 'InventoryReserved', schemaVersion: 2, data: { reservationId: 'R-new' } });
      await insertRaw({ streamId: invalid, streamType: 'Order', eventType: 'OrderCreated', schemaVersion: 2, data: { orderId: invalid, customerId: 'C', items: [], total: -1, currency: 'USD' } });
      // Nested 10,000 levels (as the server stored it before the contract): JSON.stringify cannot
      // write it, so the server's responses and the device's quarantine must not depend on it.
      let tower: unknown = 'top';
      for (let i = 0; i < 10_000; i++) tower = { x: tower };
      await insertRaw({ streamId: deep, streamType: 'Note', eventType: 'NoteAdded', schemaVersion: 1, data: { tower } });
      // Metadata the wire contract does not know: it must not make the whole pull page unreadable.
      await insertRaw({ streamId: odd, streamType: 'Note', eventType: 'NoteAdded', schemaVersion: 1, data: { text: 'hi' }, metadata: { tenantId: TENANT, surprise: true } });
      // The server keeps accepting valid events on those streams, and on others.
      const follow = await http.post(`/sync/streams/${newer}/append`, { streamType: 'Order', expectedVersion: 1, events: [{ eventId: uuidv7(), eventType: 'OrderCancelled', schemaVersion: 1, data: { reason: 'changed mind', cancelledAt: '2025-01-02T03:04:05.000Z' } }] });
      expect(follow.status).toBe(201);
      const bob = openDevice(join(dir, `bob-${factory.name}.sqlite`), 'bob', server.url);
      try {
        expect(bob.submit(createOrder(fine)).ok).toBe(true);
        expect((await bob.engine.syncOnce()).pending).toBe(0);
      } finally {
        bob.close();
      }

      expect(device.submit(createOrder(sid('alice-after'))).ok).toBe(true);
      const report = await device.engine.syncOnce();
      expect(report).toMatchObject({ pending: 0, streamErrors: [] });
      expect(device.engine.checkpoint()).toMatch(/^v2\.\d+\.[1-9]\d*$/); // a cursor past the start
      expect(device.outbox.effectiveState(fine).exists).toBe(true);
      const q = device.outbox.quarantine.list();
      expect(q.map((e) => [e.streamId, e.streamVersion, e.kind])).toEqual([
        [newer, 1, 'newer-version'],
        [invalid, 1, 'invalid'],
        [deep, 1, 'invalid'],
        [odd, 1, 'invalid'],
        [newer, 2, 'blocked'],
      ]);
      expect(q[2]!.reason).toMatch(/data\.tower(\.x)+: JSON must be nested at most 32 levels deep/);
      expect(q[0]!.reason).toMatch(/written by a newer version of the app .* update the app/);
      expect(q[1]!.reason).toMatch(/data\.total/);
      expect(device.outbox.badge(newer)).toBe('attention');
      expect(device.outbox.badge(invalid)).toBe('attention');
      expect(device.store.log.streamVersion(newer)).toBe(0);

      // A second sync: nothing new, nothing lost, no error.
      expect(await device.engine.syncOnce()).toMatchObject({ pending: 0, streamErrors: [], pulledEvents: 0 });
      expect(q[3]!.reason).toMatch(/metadata: Unrecognized key: "surprise"/);
      expect(device.outbox.quarantine.count()).toBe(5);
      // The server still serves the tenant's log and verifies its chain.
      expect((await http.get('/sync/events?after=0&limit=5000')).status).toBe(200);
      expect(await server.repo.verifyChain({ tenantId: TENANT })).toMatchObject({ ok: true });

      // "The app is updated": this build now knows InventoryReserved v2 (same fields). The next
      // sync applies the quarantined event and the one that waited behind it, in order.
      const spec = EventSchemas.InventoryReserved as { version: number };
      spec.version = 2;
      try {
        const updated = await device.engine.syncOnce();
        expect(updated).toMatchObject({ streamErrors: [] });
      } finally {
        spec.version = 1;
      }
      expect(device.outbox.quarantine.list().map((e) => e.streamId)).toEqual([invalid, deep, odd]);
      expect(device.store.log.readStream(newer, { raw: true }).map((e) => [e.eventType, e.schemaVersion])).toEqual([
        ['InventoryReserved', 2],
        ['OrderCancelled', 1],
      ]);
      expect(device.outbox.badge(newer)).toBe('synced');
    });
  });
});

describe('PostgreSQL: a data error the contract did not foresee refuses only its element', () => {
  let backend: TestBackend;
  let server: StartedServer;
  beforeAll(async () => {
    backend = await BACKENDS.find((b) => b.name === 'pg')!.make();
    server = await startDeviceServer(backend.opts, ['alice']);
    // Stand-in for any value PostgreSQL refuses with a data exception (class 22) at insert time:
    // a check that casts, so {"n": "abc"} fails with 22P02 inside the INSERT.
    const c = await pgClient(backend.opts.backend === 'pg' ? backend.opts.schema : undefined);
    try {
      await c.query(`ALTER TABLE events ADD CONSTRAINT test_numeric_n CHECK (event_data->>'n' IS NULL OR (event_data->>'n')::int < 1000)`);
    } finally {
      await c.end();
    }
  });
  afterAll(async () => {
    await server?.close();
    await backend?.cleanup();
  });

  it('maps it to that element of the push (the rest is stored) and to a 400 for a single append', async () => {
    const http = client(server.url, tokenOf('alice'));
    const note = (n: unknown) => ({ eventId: uuidv7(), eventType: 'NoteAdded', schemaVersion: 1, data: { n } });
    const r = await http.post('/sync/push', {
      appends: [
        { streamId: 'N-good', streamType: 'Note', expectedVersion: 'any', events: [note(1)] },
        { streamId: 'N-bad', streamType: 'Note', expectedVersion: 'any', events: [note('abc')] },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body.results[0].status).toBe('ok');
    expect(r.body.results[1]).toMatchObject({ status: 'error', streamId: 'N-bad', error: 'BAD_REQUEST', message: expect.stringContaining('SQLSTATE 22P02') });
    expect((await server.repo.readStream(TENANT, 'N-good')).length).toBe(1);
    expect(await server.repo.readStream(TENANT, 'N-bad')).toEqual([]);
    const single = await http.post('/sync/streams/N-bad/append', { streamType: 'Note', expectedVersion: 'any', events: [note('abc')] });
    expect(single.status).toBe(400);
    expect(single.body.message).toContain('SQLSTATE 22P02');
  });
});
