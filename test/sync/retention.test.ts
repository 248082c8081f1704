import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrderCommandInput } from '../../src/domain/commands.js';
import { HistoryEvictedError } from '../../src/protocol/errors.js';
import { PULL_CURSOR_START } from '../../src/protocol/sync-api.js';
import type { StartedServer } from '../../src/server/index.js';
import { evictClosedOrders } from '../../src/sync/retention.js';
import { SyncEngine } from '../../src/sync/sync-engine.js';
import { SyncHttpClient } from '../../src/sync/http-client.js';
import { Outbox } from '../../src/sync/outbox.js';
import { createPendingSource } from '../../src/sync/pending-source.js';
import { defaultProjections, OrderQueries, ProjectionRunner } from '../../src/projections/index.js';
import { openLocalStore } from '../../src/store/local-store.js';
import { tempDir } from '../helpers/tmp.js';
import { TENANT, cancel, comparable, createOrder, openDevice, pay, reserve, serverState, ship, startSqliteServer, tokenOf, type Device } from './helpers.js';

let seq = 0;
const oid = (p: string) => `${p}-${Date.now().toString(36)}-${++seq}`;
const refund = (orderId: string, paymentId: string, amount: number): OrderCommandInput => ({ type: 'RefundPayment', orderId, paymentId, amount, reason: 'damaged' });
const DAY = 86_400_000;
const later = (days: number) => new Date(Date.now() + days * DAY);

describe('bounded device history (real SQLite files, real server on loopback)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: StartedServer;
  const devices: Device[] = [];
  const device = (name: string) => {
    const d = openDevice(tmp.file(`${name}-${devices.length}.db`), name, server.url, { user: name === 'writer' ? 'bob' : 'alice' });
    devices.push(d);
    return d;
  };
  const eventsOf = (d: Device, id: string) => d.store.db.prepare('SELECT count(*) FROM events WHERE stream_id = ?').pluck().get(id) as number;
  const evict = (d: Device, days: number, now: Date) => evictClosedOrders(d.store, d.outbox.repo, d.outbox.quarantine, { retentionDays: days, now });

  beforeAll(async () => {
    tmp = tempDir('retention-');
    server = await startSqliteServer(tmp.file('server.db'));
  });
  afterAll(async () => {
    for (const d of devices) d.close();
    await server.close();
    tmp.cleanup();
  });

  it('closed orders past the window keep their final state and drop their events; open orders and pending commands stay', async () => {
    const writer = device('writer');
    const shipped = oid('shipped'), cancelled = oid('cancelled'), open = oid('open'), withPending = oid('pending'), newest = oid('newest');
    for (const c of [
      createOrder(shipped), pay(shipped, 'p1', 10_000), reserve(shipped, 'r1'), ship(shipped, 's1'),
      createOrder(cancelled), cancel(cancelled),
      createOrder(open), pay(open, 'p2', 4000),
      createOrder(withPending), pay(withPending, 'p3', 10_000), reserve(withPending, 'r3'), ship(withPending, 's3'),
    ]) expect(writer.submit(c).ok).toBe(true);
    await writer.engine.syncOnce();

    const field = device('field');
    await field.engine.syncOnce();
    // Offline on the field device: a refund waits in the outbox.
    expect(field.submit(refund(withPending, 'p3', 100)).ok).toBe(true);
    expect(writer.submit(createOrder(newest)).ok).toBe(true);
    await writer.engine.syncOnce();
    await field.engine.pull();
    const before = new Map([shipped, cancelled, open, withPending].map((id) => [id, field.outbox.effectiveState(id)]));

    // Inside the window nothing goes.
    expect(evict(field, 30, later(10))).toEqual({ evictedOrders: 0, droppedEvents: 0 });
    const report = evict(field, 30, later(40));
    expect(report).toEqual({ evictedOrders: 2, droppedEvents: 6 });
    expect(eventsOf(field, shipped)).toBe(0);
    expect(eventsOf(field, cancelled)).toBe(0);
    expect(eventsOf(field, open)).toBe(2);
    expect(eventsOf(field, withPending)).toBe(4);
    for (const [id, state] of before) expect(field.outbox.effectiveState(id)).toEqual(state);
    expect(field.store.log.streamVersion(shipped)).toBe(4);
    expect(field.store.db.prepare('SELECT count(*) FROM sync_event_positions WHERE event_id IN (SELECT event_id FROM events)').pluck().get())
      .toBe(field.store.db.prepare('SELECT count(*) FROM sync_event_positions').pluck().get());

    // The past before the kept state is the server's: asking for it says so; the history is fetched on demand.
    expect(() => field.store.orders.load(shipped, { asOfVersion: 2 })).toThrow(HistoryEvictedError);
    const history = await field.engine.remoteHistory(shipped);
    expect(history?.map((e) => e.eventId)).toEqual((await server.repo.readStream(TENANT, shipped)).map((e) => e.eventId));
    expect(eventsOf(field, shipped)).toBe(0);

    // The server log is untouched, and a later change to an evicted order still applies on the kept state.
    expect(await server.repo.readStream(TENANT, shipped)).toHaveLength(4);
    await writer.engine.syncOnce();
    expect(writer.submit(refund(shipped, 'p1', 2500)).ok).toBe(true);
    await writer.engine.syncOnce();
    const r = await field.engine.syncOnce();
    expect(r.pending).toBe(0);
    expect(comparable(field.outbox.effectiveState(shipped))).toEqual(comparable(await serverState(server, shipped)));
    expect(field.store.log.streamVersion(shipped)).toBe(5);
    expect(field.outbox.timeline(shipped).map((t) => t.streamVersion)).toEqual([5]);
  });

  it('events stay append-only outside an eviction, and a pull from the start does not take dropped events in again', async () => {
    const writer = device('writer');
    const done = oid('done');
    for (const c of [createOrder(done), cancel(done)]) expect(writer.submit(c).ok).toBe(true);
    const other = oid('other');
    expect(writer.submit(createOrder(other)).ok).toBe(true);
    await writer.engine.syncOnce();
    const field = device('field2');
    await field.engine.syncOnce();
    expect(() => field.store.db.prepare('DELETE FROM events WHERE stream_id = ?').run(other)).toThrow(/append-only/);
    expect(evict(field, 1, later(2)).evictedOrders).toBeGreaterThanOrEqual(1);
    expect(eventsOf(field, done)).toBe(0);
    // Back to the full replica from a narrower scope: the cursor starts over; the dropped events stay dropped.
    field.engine.setScope({ mode: 'scoped', customers: [], recentDays: null, streams: [] });
    field.engine.setScope({ mode: 'all' });
    expect(field.engine.checkpoint()).toBe(PULL_CURSOR_START);
    await field.engine.syncOnce();
    expect(eventsOf(field, done)).toBe(0);
    expect(field.outbox.effectiveState(done).status).toBe('CANCELLED');
  });

  it('runs after each sync when the device has a retention window', async () => {
    const writer = device('writer');
    const field = device('field3');
    const engine = new SyncEngine({ store: field.store, outbox: field.outbox, client: new SyncHttpClient({ baseUrl: server.url, token: tokenOf('alice') }), clock: () => later(31) });
    const ids = Array.from({ length: 20 }, () => oid('bulk'));
    for (const id of ids) for (const c of [createOrder(id), cancel(id)]) expect(writer.submit(c).ok).toBe(true);
    await writer.engine.syncOnce();
    expect((await engine.syncOnce()).retention).toBeUndefined();
    engine.scope.saveRetentionDays(30, new Date().toISOString());
    const report = await engine.syncOnce();
    // Every closed order (earlier tests' too) but the one holding the newest position (its rowid must not be reused).
    expect(report.retention!.evictedOrders).toBeGreaterThanOrEqual(19);
    expect(ids.map((id) => eventsOf(field, id))).toEqual([...Array<number>(19).fill(0), 2]);
    expect((await engine.syncOnce()).retention).toEqual({ evictedOrders: 0, droppedEvents: 0 });
  });

  it('the order list keeps an evicted order, and after a projection rebuild a later event folds onto its kept state', async () => {
    const writer = device('writer');
    const shipped = oid('listed');
    for (const c of [createOrder(shipped), pay(shipped, 'p1', 10_000), reserve(shipped, 'r1'), ship(shipped, 's1')]) expect(writer.submit(c).ok).toBe(true);
    expect(writer.submit(createOrder(oid('head'))).ok).toBe(true);
    await writer.engine.syncOnce();

    const store = openLocalStore(tmp.file('listed.db'), { durability: 'normal' });
    try {
      const runner = new ProjectionRunner(store.log, defaultProjections());
      const outbox = new Outbox(store, { deviceId: 'dev-listed', onOrdersChanged: (ids) => runner.refreshOrders(ids) });
      runner.setPendingSource(createPendingSource(outbox));
      await runner.open();
      const engine = new SyncEngine({ store, outbox, client: new SyncHttpClient({ baseUrl: server.url, token: tokenOf('alice') }) });
      const row = () => store.db.prepare('SELECT status, paid_amount, confirmed_version FROM order_list WHERE order_id = ?').get(shipped);
      await engine.syncOnce();
      expect(row()).toEqual({ status: 'SHIPPED', paid_amount: 10_000, confirmed_version: 4 });
      const customerId = store.db.prepare('SELECT customer_id FROM order_list WHERE order_id = ?').pluck().get(shipped) as string;
      const feed = async () => new OrderQueries(store.db).customerHistory({ customerId, limit: 500 });
      expect((await feed()).activity.filter((a) => a.orderId === shipped)).toHaveLength(4);
      expect(evictClosedOrders(store, outbox.repo, outbox.quarantine, { retentionDays: 30, now: later(40) }).evictedOrders).toBeGreaterThanOrEqual(1);
      expect(eventsOf({ store } as Device, shipped)).toBe(0);
      expect(row()).toEqual({ status: 'SHIPPED', paid_amount: 10_000, confirmed_version: 4 });
      // The customer's activity feed is read from the log: the evicted order's lines went with its events; its totals stay.
      const history = await feed();
      expect(history.orders.map((o) => o.orderId)).toContain(shipped);
      expect(history.activity.filter((a) => a.orderId === shipped)).toEqual([]);
      expect(history.lifetimeValue).toBeGreaterThanOrEqual(10_000);

      await runner.rebuild(runner.names);
      await writer.engine.syncOnce();
      expect(writer.submit(refund(shipped, 'p1', 2500)).ok).toBe(true);
      await writer.engine.syncOnce();
      await engine.syncOnce();
      expect(row()).toEqual({ status: 'SHIPPED', paid_amount: 7500, confirmed_version: 5 });
    } finally {
      store.close();
    }
  });
});
