import { afterAll, describe, expect, it } from 'vitest';
import { defaultProjections, OrderQueries, ProjectionRunner, type PendingEvent, type PendingSource, type SyncBadge } from '../../src/projections/index.js';
import { open, orderCreated, paymentReceived, tempDirs } from './support.js';

const tmp = tempDirs();
afterAll(() => tmp.cleanup());

/** A small real outbox: pending events per order, a rejected flag, and "acknowledge" = move to the log. */
class Outbox implements PendingSource {
  readonly events = new Map<string, PendingEvent[]>();
  readonly rejected = new Set<string>();
  pendingEvents(orderId: string): PendingEvent[] {
    return this.events.get(orderId) ?? [];
  }
  badge(orderId: string): SyncBadge {
    if (this.rejected.has(orderId)) return 'rejected';
    return (this.events.get(orderId)?.length ?? 0) > 0 ? 'pending' : 'synced';
  }
  add(orderId: string, e: PendingEvent): void {
    this.events.set(orderId, [...this.pendingEvents(orderId), e]);
  }
}

describe('pending overlay', () => {
  it('shows offline orders at once as pending, folds pending events over confirmed state, and settles on confirmation', async () => {
    const store = open(tmp.file());
    const runner = new ProjectionRunner(store.log, defaultProjections());
    await runner.open();
    const q = new OrderQueries(store.db, { runner });
    const outbox = new Outbox();
    runner.setPendingSource(outbox);

    // Created offline: nothing in the log, the order is listed as pending.
    const created = orderCreated('OFF-1', 'K-1', 1000);
    outbox.add('OFF-1', { type: 'OrderCreated', data: created.data, recordedAt: '2026-02-01T10:00:00.000Z' });
    runner.refreshOrders(['OFF-1']);
    let list = await q.listOrders({});
    expect(list.rows).toMatchObject([{ orderId: 'OFF-1', status: 'CREATED', sync: 'pending', version: 1, lastEventId: '' }]);
    expect(list.counts.CREATED).toBe(1);
    expect(q.dailyTotals()).toEqual([{ day: '2026-02-01', status: 'CREATED', currency: 'USD', orderCount: 1, totalAmount: 1000 }]);

    // The creation is acknowledged: the sync layer appends it and drops it from the outbox in one transaction.
    store.db.transaction(() => {
      outbox.events.set('OFF-1', []);
      store.log.append('OFF-1', [created], { expectedVersion: 'no_stream', recordedAt: '2026-02-01T10:00:00.000Z' });
      runner.refreshOrders(['OFF-1']);
    })();
    list = await q.listOrders({});
    expect(list.rows).toMatchObject([{ orderId: 'OFF-1', status: 'CREATED', sync: 'synced', version: 1 }]);

    // A full payment taken offline on top of the confirmed order moves it to another status bucket.
    outbox.add('OFF-1', { type: 'PaymentReceived', data: { paymentId: 'P-1', amount: 1000 }, recordedAt: '2026-02-02T09:00:00.000Z' });
    runner.refreshOrders(['OFF-1']);
    list = await q.listOrders({ status: 'PAID' });
    expect(list.rows).toMatchObject([{ orderId: 'OFF-1', status: 'PAID', paidAmount: 1000, sync: 'pending', version: 2 }]);
    expect(list.counts).toMatchObject({ CREATED: 0, PAID: 1, ALL: 1 });
    expect(q.dailyTotals()).toEqual([{ day: '2026-02-01', status: 'PAID', currency: 'USD', orderCount: 1, totalAmount: 1000 }]);

    // A confirmed event from elsewhere lands while the payment is still pending: both are shown.
    store.log.append('OFF-1', [paymentReceived('P-0', 1)], { expectedVersion: 1, recordedAt: '2026-02-02T08:00:00.000Z' });
    const row = store.db.prepare("SELECT paid_amount, confirmed_version, version, pending_count, sync FROM order_list WHERE order_id = 'OFF-1'").get();
    expect(row).toEqual({ paid_amount: 1001, confirmed_version: 2, version: 3, pending_count: 1, sync: 'pending' });

    // The server rejects the offline payment: the overlay goes, the badge says so.
    outbox.events.set('OFF-1', []);
    outbox.rejected.add('OFF-1');
    runner.refreshOrders(['OFF-1']);
    list = await q.listOrders({});
    expect(list.rows).toMatchObject([{ orderId: 'OFF-1', status: 'PARTIALLY_PAID', paidAmount: 1, sync: 'rejected', version: 2 }]);

    // An offline-only order that is rejected disappears from the list and the totals.
    outbox.add('OFF-2', { type: 'OrderCreated', data: orderCreated('OFF-2', 'K-2', 50).data, recordedAt: '2026-02-03T00:00:00.000Z' });
    runner.refreshOrders(['OFF-2']);
    expect((await q.listOrders({})).total).toBe(2);
    outbox.events.delete('OFF-2');
    runner.refreshOrders(['OFF-2']);
    expect((await q.listOrders({})).rows.map((r) => r.orderId)).toEqual(['OFF-1']);
    expect(q.dailyTotals().map((d) => d.day)).toEqual(['2026-02-01']);

    // Without a source, effective = confirmed and every badge is 'synced'.
    outbox.add('OFF-1', { type: 'OrderCancelled', data: { reason: 'x', cancelledAt: '2026-02-04T00:00:00.000Z' } });
    runner.refreshOrders(['OFF-1']);
    expect((await q.listOrders({})).rows[0]).toMatchObject({ status: 'CANCELLED', sync: 'rejected' });
    runner.setPendingSource(null);
    expect((await q.listOrders({})).rows[0]).toMatchObject({ status: 'PARTIALLY_PAID', sync: 'synced', version: 2 });
    store.close();
  });

  it('a reopened runner given the source that wrote the overlay (current) shows it without recomputing; any other source recomputes', async () => {
    const file = tmp.file();
    const store = open(file);
    const first = new ProjectionRunner(store.log, defaultProjections());
    await first.open();
    const outbox = new Outbox();
    first.setPendingSource(outbox);
    outbox.add('OFF-9', { type: 'OrderCreated', data: orderCreated('OFF-9', 'K-9', 700).data, recordedAt: '2026-03-01T10:00:00.000Z' });
    first.refreshOrders(['OFF-9']);
    first.close();
    const q = new OrderQueries(store.db);
    const before = await q.listOrders({});
    expect(before.rows).toMatchObject([{ orderId: 'OFF-9', sync: 'pending' }]);

    // The same durable outbox after a restart: the stored overlay is kept as it is.
    const reopened = new ProjectionRunner(store.log, defaultProjections());
    const empty = new Outbox();
    reopened.setPendingSource(empty, { current: true });
    await reopened.open();
    expect(await q.listOrders({})).toEqual(before);
    // A source that did not write the overlay: the orders that showed one are recomputed.
    reopened.setPendingSource(empty);
    expect((await q.listOrders({})).rows).toEqual([]);
    reopened.close();
    store.close();
  });
});
