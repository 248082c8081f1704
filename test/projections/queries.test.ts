import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { FULFILMENT_STATUSES, ORDER_STATUSES, PAYMENT_STATUSES } from '../../src/domain/state.js';
import { defaultProjections, InvalidCursorError, OrderQueries, ProjectionRunner } from '../../src/projections/index.js';
import { appendSteps, bruteForceRows, customerIdOf, open, orderCreated, paymentReceived, stepArb, tempDirs, type ExpectedRow } from './support.js';

const tmp = tempDirs();
afterAll(() => tmp.cleanup());

const statusArb = fc.constantFrom('ALL' as const, ...ORDER_STATUSES);
const queryArb = fc.record({
  status: statusArb,
  payment: fc.constantFrom('ALL' as const, ...PAYMENT_STATUSES),
  fulfilment: fc.constantFrom('ALL' as const, ...FULFILMENT_STATUSES),
  customerId: fc.option(fc.integer({ min: 0, max: 6 }).map(customerIdOf), { nil: undefined }),
  search: fc.option(fc.constantFrom('ord-00', '1', 'x', 'CUST-2', '0x', 'zz'), { nil: undefined }),
  sort: fc.constantFrom('createdAt' as const, 'updatedAt' as const),
  direction: fc.constantFrom('asc' as const, 'desc' as const),
  limit: fc.integer({ min: 1, max: 7 }),
  offset: fc.integer({ min: 0, max: 12 }),
});
type Query = typeof queryArb extends fc.Arbitrary<infer Q> ? Q : never;

/** The reference implementation: filter, sort, page in plain JS over the brute-force fold. */
function expectedList(all: ExpectedRow[], q: Query) {
  const needle = q.search?.toLowerCase();
  const filtered = all.filter(
    (r) =>
      (!q.customerId || r.customerId === q.customerId) &&
      (!needle || [r.orderId, r.customerId, r.customerName].some((t) => t.toLowerCase().includes(needle))),
  );
  const counts: Record<string, number> = { ALL: filtered.length };
  for (const s of ORDER_STATUSES) counts[s] = filtered.filter((r) => r.status === s).length;
  const byPayment = (r: ExpectedRow) => q.payment === 'ALL' || r.paymentStatus === q.payment;
  const byFulfilment = (r: ExpectedRow) => q.fulfilment === 'ALL' || r.fulfilmentStatus === q.fulfilment;
  // Each facet is counted under the other facet's filter, not its own.
  const paymentCounts: Record<string, number> = { ALL: filtered.filter(byFulfilment).length };
  for (const s of PAYMENT_STATUSES) paymentCounts[s] = filtered.filter((r) => byFulfilment(r) && r.paymentStatus === s).length;
  const fulfilmentCounts: Record<string, number> = { ALL: filtered.filter(byPayment).length };
  for (const s of FULFILMENT_STATUSES) fulfilmentCounts[s] = filtered.filter((r) => byPayment(r) && r.fulfilmentStatus === s).length;
  const matching = filtered.filter((r) => (q.status === 'ALL' || r.status === q.status) && byPayment(r) && byFulfilment(r));
  const key = (r: ExpectedRow) => (q.sort === 'createdAt' ? r.createdAt : r.updatedAt);
  matching.sort((a, b) => {
    const c = key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a.orderId < b.orderId ? -1 : a.orderId > b.orderId ? 1 : 0;
    return q.direction === 'asc' ? c : -c;
  });
  return { matching, counts, paymentCounts, fulfilmentCounts };
}

describe('OrderQueries', () => {
  it('lists, filters, sorts and pages exactly like a brute-force fold of the log (offset and keyset)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 60 }), fc.array(queryArb, { minLength: 1, maxLength: 6 }), async (steps, queries) => {
        const store = open(tmp.file());
        try {
          const runner = new ProjectionRunner(store.log, defaultProjections());
          await runner.open();
          appendSteps(store, steps);
          const q = new OrderQueries(store.db, { runner });
          const all = bruteForceRows(store);
          for (const query of queries) {
            const { matching, counts, paymentCounts, fulfilmentCounts } = expectedList(all, query);
            const page = await q.listOrders(query);
            expect(page.rows).toEqual(matching.slice(query.offset, query.offset + query.limit));
            expect(page.total).toBe(matching.length);
            expect(page.counts).toEqual(counts);
            expect(page.paymentCounts).toEqual(paymentCounts);
            expect(page.fulfilmentCounts).toEqual(fulfilmentCounts);
            expect(page.position).toBe(store.log.headPosition());

            // Keyset: following nextCursor from the start visits every matching row once, in order.
            const { offset: _ignored, ...keysetQuery } = query;
            const seen: string[] = [];
            let cursor: string | undefined;
            for (let guard = 0; guard < 100; guard++) {
              const p = await q.listOrders({ ...keysetQuery, cursor });
              seen.push(...p.rows.map((r) => r.orderId));
              if (!p.nextCursor) break;
              cursor = p.nextCursor;
            }
            expect(seen).toEqual(matching.map((r) => r.orderId));
          }
        } finally {
          store.close();
        }
      }),
      { numRuns: 25 },
    );
  });

  it('daily totals and customer history agree with the log', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 50 }), async (steps) => {
        const store = open(tmp.file());
        try {
          const runner = new ProjectionRunner(store.log, defaultProjections());
          await runner.open();
          appendSteps(store, steps);
          const q = new OrderQueries(store.db, { runner });
          const all = bruteForceRows(store);
          const buckets = new Map<string, { day: string; status: string; currency: string; orderCount: number; totalAmount: number }>();
          for (const r of all) {
            const k = `${r.createdAt.slice(0, 10)}|${r.status}|${r.currency}`;
            const b = buckets.get(k) ?? { day: r.createdAt.slice(0, 10), status: r.status, currency: r.currency, orderCount: 0, totalAmount: 0 };
            b.orderCount += 1;
            b.totalAmount += r.total;
            buckets.set(k, b);
          }
          const expected = [...buckets.values()].sort((a, b) =>
            `${a.day}|${a.status}|${a.currency}` < `${b.day}|${b.status}|${b.currency}` ? -1 : 1,
          );
          expect(q.dailyTotals()).toEqual(expected);
          expect(q.dailyTotals({ status: 'CANCELLED', from: '2026-01-02' })).toEqual(
            expected.filter((b) => b.status === 'CANCELLED' && b.day >= '2026-01-02'),
          );

          const events = [...store.log.readAll()];
          for (const c of new Set(all.map((r) => r.customerId))) {
            const mine = all.filter((r) => r.customerId === c).map((r) => r.orderId);
            const history = await q.customerHistory({ customerId: c, limit: 500 });
            expect(history.totalOrders).toBe(mine.length);
            expect(history.orders.map((o) => o.orderId).sort()).toEqual([...mine].sort());
            const mineEvents = events.filter((e) => mine.includes(e.streamId));
            expect(history.activity.map((a) => a.position)).toEqual(mineEvents.map((e) => e.position).reverse());
            const value = mineEvents.reduce(
              (v, e) => v + (e.eventType === 'PaymentReceived' ? (e.data.amount as number) : e.eventType === 'PaymentRefunded' ? -(e.data.amount as number) : 0),
              0,
            );
            expect(history.lifetimeValue).toBe(value);
          }
        } finally {
          store.close();
        }
      }),
      { numRuns: 15 },
    );
  });

  it('rejects bad input and foreign cursors with clear errors', async () => {
    const store = open(tmp.file());
    const runner = new ProjectionRunner(store.log, defaultProjections());
    await runner.open();
    for (let i = 0; i < 3; i++) store.log.append(`Q-${i}`, [orderCreated(`Q-${i}`, 'K-1', 100)], { expectedVersion: 'no_stream' });
    const q = new OrderQueries(store.db, { runner });
    const first = await q.listOrders({ limit: 1 });
    expect(first.nextCursor).not.toBeNull();
    await expect(q.listOrders({ limit: 1, sort: 'createdAt', cursor: first.nextCursor! })).rejects.toThrow(InvalidCursorError);
    await expect(q.listOrders({ cursor: 'not-a-cursor' })).rejects.toThrow(/cursor is malformed/);
    await expect(q.listOrders({ status: 'SHIPPING' as never })).rejects.toThrow();
    await expect(q.listOrders({ limit: 0 })).rejects.toThrow();
    expect(() => q.dailyTotals({ from: 'yesterday' })).toThrow(/must be a day/);
    store.close();
  });

  it('waits (bounded) for minPosition: read-your-writes across connections', async () => {
    const file = tmp.file();
    const store = open(file);
    const runner = new ProjectionRunner(store.log, defaultProjections());
    await runner.open();
    const q = new OrderQueries(store.db, { runner, maxWaitMs: 300, pollMs: 10 });
    const writer = open(file);
    const appended = writer.log.append('W-1', [orderCreated('W-1', 'K-1', 100), paymentReceived('P-1', 100)], { expectedVersion: 'no_stream' });
    const target = appended.positions.at(-1)!;

    const stale = await q.listOrders({});
    expect(stale.position).toBe(0);
    expect(stale.rows).toEqual([]);
    const fresh = await q.listOrders({ minPosition: target });
    expect(fresh.position).toBe(target);
    expect(fresh.rows.map((r) => [r.orderId, r.status])).toEqual([['W-1', 'PAID']]);

    const started = performance.now();
    const unreachable = await q.listOrders({ minPosition: target + 10 });
    expect(unreachable.position).toBe(target);
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    writer.close();
    store.close();
  });
});
