import Database from 'better-sqlite3';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, describe, expect, it } from 'vitest';
import { EventSchemas, OrderCreatedV2, decide, foldOrder, initialOrderState, upcast } from '../../src/domain/index.js';
import { checkEvent } from '../../src/protocol/event-contract.js';
import { defaultProjections, OrderQueries, ProjectionRunner } from '../../src/projections/index.js';
import { EventPageReader } from '../../src/projections/event-pages.js';
import { upcastEvent } from '../../src/store/event-log.js';
import { openLocalStore } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * A device file written before issue 14's order model: OrderCreated v1 (the seeds' major units)
 * and v2 (no customer name, contact or item descriptions), stored as they were. They keep
 * loading, folding, listing and passing the event contract, and the order list built by the
 * previous fold is rebuilt by the current one.
 */

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const OLD_LOG: { streamId: string; type: string; schemaVersion: number; data: Record<string, unknown> }[] = [
  // v1, as the seed systems wrote it.
  { streamId: 'O-v1', type: 'OrderCreated', schemaVersion: 1, data: { orderId: 'O-v1', customerId: 'CUST-SEED', items: [{ sku: 'X', quantity: 2, unitPrice: 49.95 }], totalAmount: 99.9 } },
  // v2, as devices wrote it until now.
  { streamId: 'O-v2', type: 'OrderCreated', schemaVersion: 2, data: { orderId: 'O-v2', customerId: 'CUST-OLD', items: [{ sku: 'BEANS', quantity: 3, unitPrice: 1000 }], total: 3000, currency: 'EUR' } },
  { streamId: 'O-v2', type: 'InventoryReserved', schemaVersion: 1, data: { reservationId: 'R-1' } },
  { streamId: 'O-v2', type: 'PaymentReceived', schemaVersion: 1, data: { paymentId: 'P-1', amount: 3000 } },
];

function writeOldLog(file: string): void {
  openLocalStore(file).close();
  const raw = new Database(file);
  const insert = raw.prepare(
    `INSERT INTO events (event_id, stream_id, stream_type, stream_version, event_type, schema_version, data, metadata, recorded_at)
     VALUES (?, ?, 'Order', ?, ?, ?, ?, '{}', ?)`,
  );
  const versions = new Map<string, number>();
  OLD_LOG.forEach((e, i) => {
    const v = (versions.get(e.streamId) ?? 0) + 1;
    versions.set(e.streamId, v);
    insert.run(uuidv7(), e.streamId, v, e.type, e.schemaVersion, JSON.stringify(e.data), `2025-01-01T00:00:0${i}.000Z`);
  });
  raw.close();
}

describe('events stored before the order model', () => {
  it('every old OrderCreated is a valid v2 as stored, and upcasts to a valid current event', () => {
    for (const e of OLD_LOG.filter((x) => x.type === 'OrderCreated')) {
      if (e.schemaVersion === 2) expect(OrderCreatedV2.safeParse(e.data).success).toBe(true);
      const up = upcast(e.type, e.schemaVersion, e.data);
      expect(up.schemaVersion).toBe(EventSchemas.OrderCreated.version);
      expect(EventSchemas.OrderCreated.schema.parse(up.data)).toMatchObject({ customerName: e.data.customerId, customerContact: null });
      // The contract every writer and reader applies (the server on push, a device on pull).
      const verdict = checkEvent({ streamType: 'Order', eventType: e.type, schemaVersion: e.schemaVersion, data: e.data, metadata: {} });
      expect(verdict.ok).toBe(true);
    }
    // A bad v2 event is still refused with the path of its bad field (the upcaster only adds fields).
    const bad = checkEvent({ streamType: 'Order', eventType: 'OrderCreated', schemaVersion: 2, data: { ...OLD_LOG[1]!.data, total: -1 } });
    expect(bad).toMatchObject({ ok: false, kind: 'invalid', issues: [{ path: 'data.total' }] });
  });

  it('load, fold and list with names and facets; the list built by the previous fold is rebuilt', async () => {
    const file = tmp.file('old.sqlite');
    writeOldLog(file);
    const store = openLocalStore(file);
    try {
      const seed = store.orders.load('O-v1').state;
      expect(seed).toMatchObject({ customerName: 'CUST-SEED', total: 9990, currency: 'USD', paymentStatus: 'UNPAID', fulfilmentStatus: 'OPEN' });
      expect(seed.items).toEqual([{ sku: 'X', description: '', quantity: 2, unitPrice: 4995 }]);
      const old = store.orders.load('O-v2').state;
      // Reserved, then paid in full: the seeds' word is PAID (last lifecycle event), the facets keep both facts.
      expect(old).toMatchObject({ customerName: 'CUST-OLD', status: 'PAID', paymentStatus: 'PAID', fulfilmentStatus: 'RESERVED' });

      // New commands work on old orders: cancelling releases the stock as an event of its own.
      const cancel = decide(old, { type: 'CancelOrder', orderId: 'O-v2', reason: 'shop closed', cancelledAt: '2025-02-01T00:00:00.000Z' });
      expect(cancel).toMatchObject({ ok: true, events: [{ type: 'OrderCancelled' }, { type: 'InventoryReleased', data: { reservationId: 'R-1' } }] });
      if (cancel.ok) {
        const after = foldOrder(cancel.events, old);
        expect(after).toMatchObject({ fulfilmentStatus: 'CANCELLED', inventoryReleasedAt: '2025-02-01T00:00:00.000Z' });
        // Cancelling again is refused; a second release is never emitted.
        expect(decide(after, { type: 'CancelOrder', orderId: 'O-v2', reason: 'again', cancelledAt: '2025-02-02T00:00:00.000Z' }).ok).toBe(false);
      }

      const runner = new ProjectionRunner(store.log, defaultProjections());
      await runner.open();
      const q = new OrderQueries(store.db, { runner });
      const list = await q.listOrders({ payment: 'PAID' });
      expect(list.rows).toEqual([expect.objectContaining({ orderId: 'O-v2', customerName: 'CUST-OLD', status: 'PAID', paymentStatus: 'PAID', fulfilmentStatus: 'RESERVED' })]);
      expect(list.paymentCounts).toMatchObject({ ALL: 2, PAID: 1, UNPAID: 1 });
      expect(list.fulfilmentCounts).toMatchObject({ ALL: 1, RESERVED: 1 });

      // A list built by an earlier fold (older projection version, rows as that fold made them)
      // is rebuilt when the device opens with this one.
      store.db.prepare("UPDATE projection_checkpoints SET version = 4 WHERE name = 'order_list'").run();
      store.db.prepare("UPDATE order_list SET status = 'RESERVED', payment_status = 'UNPAID'").run();
      const reopened = new ProjectionRunner(store.log, defaultProjections());
      expect((await reopened.open()).rebuilt).toContain('order_list');
      const rebuilt = await new OrderQueries(store.db, { runner: reopened }).listOrders({});
      expect(rebuilt.rows.find((r) => r.orderId === 'O-v2')).toMatchObject({ status: 'PAID', paymentStatus: 'PAID' });
      expect(rebuilt.counts).toMatchObject({ PAID: 1, CREATED: 1 });
    } finally {
      store.close();
    }
  });

  it('a search finds a customer by a name in any script', async () => {
    const store = openLocalStore(tmp.file('names.sqlite'));
    try {
      const runner = new ProjectionRunner(store.log, defaultProjections());
      await runner.open();
      const names = ['Café-Müller', '客户一', 'Blue Cafe'];
      names.forEach((customerName, i) => {
        const d = decide(initialOrderState, {
          type: 'CreateOrder',
          orderId: `O-${i}`,
          customerId: `C-${i}`,
          customerName,
          items: [{ sku: 'A', quantity: 1, unitPrice: 100 }],
          currency: 'JPY',
        });
        if (!d.ok) throw new Error(d.rejection.message);
        store.log.append(`O-${i}`, d.events.map((e) => ({ eventId: uuidv7(), eventType: e.type, schemaVersion: EventSchemas[e.type].version, data: e.data, metadata: {} })), {
          expectedVersion: 'no_stream',
        });
      });
      runner.catchUp();
      const q = new OrderQueries(store.db, { runner });
      const ids = async (search: string) => (await q.listOrders({ search })).rows.map((r) => r.orderId);
      expect(await ids('Müller')).toEqual(['O-0']);
      expect(await ids('客户')).toEqual(['O-1']);
      expect(await ids('客户一')).toEqual(['O-1']);
      expect(await ids('Blue Ca')).toEqual(['O-2']);
    } finally {
      store.close();
    }
  });
});

describe('messages people read', () => {
  it('refuses a currency outside ISO 4217 in words, and groups amounts in the order\'s currency', () => {
    const parsed = EventSchemas.OrderCreated.schema.safeParse({ orderId: 'O', customerId: 'C', customerName: 'C', customerContact: null, items: [], total: 0, currency: 'XYZ' });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toBe('XYZ is not a currency in the ISO 4217 list; use a code such as USD, EUR, GBP or JPY');
    const created = foldOrder([
      { type: 'OrderCreated', data: { orderId: 'O', customerId: 'C', customerName: 'C', customerContact: null, items: [], total: 123_456_789, currency: 'USD' } },
    ]);
    const over = decide(created, { type: 'RecordPayment', orderId: 'O', paymentId: 'P', amount: 200_000_000 });
    expect(over).toMatchObject({ ok: false, rejection: { message: 'A payment of 2,000,000.00 USD is more than the 1,234,567.89 USD still owed on order O.' } });
    const yen = foldOrder([{ type: 'OrderCreated', data: { orderId: 'Y', customerId: 'C', customerName: 'C', customerContact: null, items: [], total: 1_500_000, currency: 'JPY' } }]);
    expect(decide(yen, { type: 'RecordPayment', orderId: 'Y', paymentId: 'P', amount: 2_000_000 })).toMatchObject({
      rejection: { message: 'A payment of 2,000,000 JPY is more than the 1,500,000 JPY still owed on order Y.' },
    });
  });
});

describe('old events read back', () => {
  it('an old event keeps its metadata when upcast, whether read from the log or from a rebuild page (metadata read lazily)', () => {
    const file = tmp.file('metadata.sqlite');
    openLocalStore(file).close();
    const raw = new Database(file);
    raw
      .prepare(
        `INSERT INTO events (event_id, stream_id, stream_type, stream_version, event_type, schema_version, data, metadata, recorded_at)
         VALUES (?, 'O-m', 'Order', 1, 'OrderCreated', 2, ?, ?, '2025-01-01T00:00:00.000Z')`,
      )
      .run(uuidv7(), JSON.stringify(OLD_LOG[1]!.data), JSON.stringify({ userId: 'u-old', deviceId: 'd-old' }));
    raw.close();
    const store = openLocalStore(file);
    try {
      const fromLog = store.log.readStream('O-m')[0]!;
      const [paged] = new EventPageReader(store.db).page(0, 10).map(upcastEvent);
      for (const e of [fromLog, paged!]) {
        expect(e.schemaVersion).toBe(EventSchemas.OrderCreated.version);
        expect(e.data).toMatchObject({ customerName: 'CUST-OLD', customerContact: null });
        expect(e.metadata).toEqual({ userId: 'u-old', deviceId: 'd-old' });
      }
      expect(JSON.parse(JSON.stringify(paged))).toMatchObject({ position: 1, streamId: 'O-m', metadata: { userId: 'u-old' } });
    } finally {
      store.close();
    }
  });
});
