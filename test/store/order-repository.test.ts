import Database from 'better-sqlite3';
import fc from 'fast-check';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, describe, expect, it } from 'vitest';
import { EventSchemas, decide, foldOrder, initialOrderState, type OrderCommand } from '../../src/domain/index.js';
import { SchemaTooNewError, SnapshotStore, openLocalStore, toFoldable } from '../../src/store/index.js';
import { created, paid, reserved, shipped } from '../helpers/events.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
let n = 0;
const fresh = (snapshotEvery = 100) => openLocalStore(tmp.file(`state-${++n}.sqlite`), { snapshotEvery });

describe('the seed scenario', () => {
  it('created → paid → shipped gives status SHIPPED at version 3', () => {
    const s = fresh();
    s.log.append('O-1', [created('O-1', 10_000), paid(10_000), shipped()], { expectedVersion: 'no_stream' });
    const { state } = s.orders.load('O-1');
    expect(state).toMatchObject({ status: 'SHIPPED', version: 3, paidAmount: 10_000, shipmentId: 'S-1' });
    s.close();
  });
});

describe('command handlers', () => {
  const cmd = (c: Record<string, unknown>) => c as OrderCommand;
  it('validate business rules before appending and append nothing on rejection', () => {
    const s = fresh();
    const create = cmd({ type: 'CreateOrder', orderId: 'O-2', customerId: 'C-9', items: [{ sku: 'A', quantity: 2, unitPrice: 1250 }], currency: 'EUR' });
    const ok = s.orders.execute(create);
    expect(ok.ok && ok.state).toMatchObject({ total: 2500, currency: 'EUR', status: 'CREATED', version: 1 });
    expect(s.orders.execute(create)).toMatchObject({ ok: false, rejection: { code: 'ORDER_ALREADY_EXISTS' } });

    const ship = cmd({ type: 'ShipOrder', orderId: 'O-2', shipmentId: 'S', shippedAt: '2026-01-01T00:00:00Z' });
    expect(s.orders.execute(ship)).toMatchObject({ ok: false, rejection: { code: 'NOT_PAID', message: expect.stringContaining('25.00 EUR is still unpaid') } });
    const over = s.orders.execute(cmd({ type: 'RecordPayment', orderId: 'O-2', paymentId: 'P', amount: 2501 }));
    expect(over).toMatchObject({ ok: false, rejection: { code: 'OVERPAYMENT' } });
    expect(s.orders.execute(cmd({ type: 'RecordPayment', orderId: 'O-2', paymentId: 'P', amount: 2500 })).ok).toBe(true);
    expect(s.orders.execute(ship)).toMatchObject({ ok: false, rejection: { code: 'NOT_RESERVED' } });
    expect(s.orders.execute(cmd({ type: 'ReserveInventory', orderId: 'O-2', reservationId: 'R' })).ok).toBe(true);
    expect(s.orders.execute(ship).ok).toBe(true);
    const cancel = cmd({ type: 'CancelOrder', orderId: 'O-2', reason: 'changed mind', cancelledAt: '2026-01-03T00:00:00Z' });
    expect(s.orders.execute(cancel)).toMatchObject({ ok: false, rejection: { code: 'ORDER_SHIPPED' } });
    expect(s.log.streamVersion('O-2')).toBe(4);
    s.close();
  });

  it('refuse a payment on a cancelled order', () => {
    const s = fresh();
    s.orders.execute(cmd({ type: 'CreateOrder', orderId: 'O-3', customerId: 'C', items: [{ sku: 'A', quantity: 1, unitPrice: 100 }], currency: 'USD' }));
    s.orders.execute(cmd({ type: 'CancelOrder', orderId: 'O-3', reason: 'customer called', cancelledAt: '2026-01-03T00:00:00Z' }));
    const r = s.orders.execute(cmd({ type: 'RecordPayment', orderId: 'O-3', paymentId: 'P', amount: 100 }));
    expect(r).toMatchObject({ ok: false, rejection: { code: 'ORDER_CANCELLED', message: expect.stringContaining('customer called') } });
    expect(s.log.streamVersion('O-3')).toBe(2);
    s.close();
  });

  it('folding the appended events gives the state the handler returned (property)', () => {
    const s = fresh(7);
    const commandArb = fc.oneof(
      fc.record({ type: fc.constant('RecordPayment'), amount: fc.integer({ min: 1, max: 4000 }), paymentId: fc.uuid() }),
      fc.record({ type: fc.constant('ReserveInventory'), reservationId: fc.constantFrom('R1', 'R2') }),
      fc.record({ type: fc.constant('ShipOrder'), shipmentId: fc.constant('S1'), shippedAt: fc.constant('2026-01-01T00:00:00Z') }),
      fc.record({ type: fc.constant('CancelOrder'), reason: fc.constant('r'), cancelledAt: fc.constant('2026-01-01T00:00:00Z') }),
      fc.record({ type: fc.constant('RefundPayment'), amount: fc.integer({ min: 1, max: 500 }), paymentId: fc.constant('none'), reason: fc.constant('x') }),
    );
    fc.assert(
      fc.property(fc.array(commandArb, { maxLength: 25 }), (commands) => {
        const orderId = `O-p-${uuidv7()}`;
        let expected = s.orders.execute(cmd({ type: 'CreateOrder', orderId, customerId: 'C', items: [{ sku: 'A', quantity: 3, unitPrice: 1000 }], currency: 'USD' }));
        let state = expected.state;
        for (const c of commands) {
          const r = s.orders.execute(cmd({ ...c, orderId }));
          const d = decide(state, cmd({ ...c, orderId }));
          expect(r.ok).toBe(d.ok);
          state = r.state;
          expected = r;
        }
        const folded = foldOrder(s.log.readStream(orderId).map(toFoldable));
        expect(folded).toEqual(s.orders.load(orderId).state);
        expect(folded.version).toBe(s.log.streamVersion(orderId));
        expect(folded.paidAmount - folded.refundedAmount).toBeLessThanOrEqual(folded.total);
      }),
      { numRuns: 60 },
    );
    s.close();
  });
});

describe('snapshots', () => {
  it('a 10k-event order loads from a snapshot without replaying 10k events', () => {
    const s = fresh(100);
    s.log.append('BIG', [created('BIG', 100_000_000)], { expectedVersion: 'no_stream' });
    for (let i = 0; i < 100; i++) s.log.append('BIG', Array.from({ length: 100 }, () => paid(1)), { expectedVersion: 'any' });
    const first = s.orders.load('BIG');
    expect(first.replayed).toBe(10_001);
    expect(first.state.version).toBe(10_001);
    const second = s.orders.load('BIG');
    expect(second.snapshotVersion).toBe(10_001);
    expect(second.replayed).toBe(0);
    expect(second.state).toEqual(first.state);
    s.log.append('BIG', [paid(1), paid(1)], { expectedVersion: 10_001 });
    expect(s.orders.load('BIG')).toMatchObject({ replayed: 2, snapshotVersion: 10_001 });
    s.close();
  });

  it('commands write a snapshot every N events', () => {
    const s = fresh(5);
    s.orders.execute({ type: 'CreateOrder', orderId: 'O-s', customerId: 'C', items: [{ sku: 'A', quantity: 1, unitPrice: 100 }], currency: 'USD' });
    for (let i = 0; i < 11; i++) s.orders.execute({ type: 'RecordPayment', orderId: 'O-s', paymentId: `P${i}`, amount: 1 });
    expect(s.orders.snapshots.latest('O-s')?.streamVersion).toBe(10);
    expect(s.orders.load('O-s')).toMatchObject({ snapshotVersion: 10, replayed: 2 });
    s.close();
  });

  it('a snapshot written by another reducer version is ignored and rebuilt', () => {
    const s = fresh(2);
    s.log.append('O-v', [created('O-v', 500), paid(100), paid(100)], { expectedVersion: 'no_stream' });
    // A snapshot from a different (e.g. older, buggy) reducer: wrong status and amounts.
    const foreign = new SnapshotStore<unknown>(s.db, 999);
    foreign.save('O-v', 3, { ...initialOrderState, exists: true, status: 'CANCELLED', paidAmount: 42, version: 3 });
    const loaded = s.orders.load('O-v');
    expect(loaded.snapshotVersion).toBeNull();
    expect(loaded.state).toMatchObject({ status: 'PARTIALLY_PAID', paidAmount: 200, version: 3 });
    // Rebuilt under the current reducer version, and the foreign one is gone.
    expect(s.orders.snapshots.latest('O-v')?.streamVersion).toBe(3);
    expect(s.db.prepare('SELECT COUNT(*) AS c FROM snapshots WHERE reducer_version = 999').get()).toEqual({ c: 0 });
    s.close();
  });
});

describe('time travel', () => {
  it('shows an order as of any version and any instant', async () => {
    const s = fresh(2);
    s.log.append('O-t', [created('O-t', 1000)], { expectedVersion: 'no_stream' });
    await new Promise((r) => setTimeout(r, 15));
    const afterCreate = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 15));
    s.log.append('O-t', [paid(1000), reserved()], { expectedVersion: 1 });
    await new Promise((r) => setTimeout(r, 15));
    const afterReserve = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 15));
    s.log.append('O-t', [shipped()], { expectedVersion: 3 });
    s.orders.load('O-t'); // leaves a snapshot at the head: as-of reads must not use it.

    expect(s.orders.load('O-t', { asOfVersion: 1 }).state.status).toBe('CREATED');
    expect(s.orders.load('O-t', { asOfVersion: 2 }).state.status).toBe('PAID');
    expect(s.orders.load('O-t', { asOfVersion: 3 }).state.status).toBe('RESERVED');
    expect(s.orders.load('O-t', { asOfVersion: 0 }).state.exists).toBe(false);
    expect(s.orders.load('O-t', { asOfTime: afterCreate }).state).toMatchObject({ status: 'CREATED', version: 1 });
    expect(s.orders.load('O-t', { asOfTime: afterReserve }).state).toMatchObject({ status: 'RESERVED', version: 3 });
    expect(s.orders.load('O-t', { asOfTime: '2000-01-01T00:00:00Z' }).state.exists).toBe(false);
    expect(s.orders.load('O-t').state).toMatchObject({ status: 'SHIPPED', version: 4 });
    s.close();
  });
});

describe('schema evolution', () => {
  it('stored OrderCreated v1 rows (seed format, no currency) are upcast to the current version on read', () => {
    const s = fresh();
    const raw = new Database(s.file);
    raw
      .prepare(
        `INSERT INTO events (event_id, stream_id, stream_type, stream_version, event_type, schema_version, data, metadata, recorded_at)
         VALUES (?, 'O-old', 'Order', 1, 'OrderCreated', 1, ?, '{}', '2025-01-01T00:00:00.000Z')`,
      )
      .run(uuidv7(), JSON.stringify({ orderId: 'O-old', customerId: 'C-1', items: [{ sku: 'X', quantity: 2, unitPrice: 49.95 }], totalAmount: 99.9 }));
    raw.close();
    expect(s.log.readStream('O-old', { raw: true })[0]).toMatchObject({ schemaVersion: 1, data: { totalAmount: 99.9 } });
    expect(s.log.readStream('O-old')[0]).toMatchObject({
      schemaVersion: EventSchemas.OrderCreated.version,
      data: { total: 9990, currency: 'USD', items: [{ sku: 'X', quantity: 2, unitPrice: 4995 }] },
    });
    s.log.append('O-old', [paid(9990)], { expectedVersion: 1 });
    expect(s.orders.load('O-old').state).toMatchObject({ total: 9990, currency: 'USD', status: 'PAID', version: 2 });
    // A v1 event can also still be appended (an old client); it is validated after upcasting.
    expect(() =>
      s.log.append('O-v1', [{ eventId: uuidv7(), eventType: 'OrderCreated', schemaVersion: 1, data: { orderId: 'O-v1', customerId: 'C', totalAmount: '12.345' }, metadata: {} }], {
        expectedVersion: 'no_stream',
      }),
    ).toThrow(/more than 2 decimal places/);
    s.close();
  });
});

describe('migrations', () => {
  it('records the schema version and refuses a file written by a newer build, untouched', () => {
    const file = tmp.file('newer.sqlite');
    const s = openLocalStore(file);
    const version = s.db.pragma('user_version', { simple: true }) as number;
    expect(version).toBeGreaterThanOrEqual(1);
    s.db.pragma(`user_version = ${version + 5}`);
    s.close();
    expect(() => openLocalStore(file)).toThrow(SchemaTooNewError);
    expect(() => openLocalStore(file)).toThrow(/written by a newer version/);
    const raw = new Database(file);
    expect(raw.pragma('user_version', { simple: true })).toBe(version + 5);
    raw.close();
  });

  it('reopening an up-to-date file applies nothing twice', () => {
    const file = tmp.file('reopen.sqlite');
    openLocalStore(file).close();
    const s = openLocalStore(file);
    s.log.append('O', [created('O')], { expectedVersion: 'no_stream' });
    s.close();
    expect(openLocalStore(file).log.headPosition()).toBe(1);
  });
});
