import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  countGramRows,
  gramBucket,
  defaultProjections,
  driftCheck,
  OrderQueries,
  ProjectionRunner,
  rowGrams,
  type PendingEvent,
  type PendingSource,
  type SyncBadge,
} from '../../src/projections/index.js';
import { appendSteps, customerIdOf, dumpAll, incremental, open, orderCreated, stepArb, tempDirs, type Step } from './support.js';

const tmp = tempDirs();
afterAll(() => tmp.cleanup());

class Outbox implements PendingSource {
  readonly events = new Map<string, PendingEvent[]>();
  pendingEvents(orderId: string): PendingEvent[] {
    return this.events.get(orderId) ?? [];
  }
  badge(orderId: string): SyncBadge {
    return (this.events.get(orderId)?.length ?? 0) > 0 ? 'pending' : 'synced';
  }
}

/** Pending work over the log: offline orders (not in the log) and payments on logged ones. */
interface Offline {
  order: number;
  customer: number;
  pay: boolean;
}
const offlineArb: fc.Arbitrary<Offline> = fc.record({ order: fc.integer({ min: 0, max: 30 }), customer: fc.integer({ min: 0, max: 5 }), pay: fc.boolean() });

const NEEDLES = ['o', 'x', '0', '00', 'rd', 'cu', '-1', 'ORD-0', 'cust-2', 'ord-01', 'é'];

/** Everything a reader can see of the two projections: tables, search index, searches, feeds, totals. */
async function snapshot(store: ReturnType<typeof open>, runner: ProjectionRunner) {
  const q = new OrderQueries(store.db, { runner });
  const searches: Record<string, unknown> = {};
  for (const needle of NEEDLES) {
    const page = await q.listOrders({ search: needle, sort: 'createdAt', direction: 'asc', limit: 100 });
    searches[needle] = { ids: page.rows.map((r) => r.orderId), total: page.total, counts: page.counts };
  }
  const customers: unknown[] = [];
  for (let c = 0; c <= 5; c++) customers.push(await q.customerHistory({ customerId: customerIdOf(c) }));
  return {
    tables: dumpAll(store.db),
    fts: store.db.prepare('SELECT order_id, customer_id, customer_name FROM order_list__search ORDER BY order_id').all(),
    searches,
    customers,
    daily: q.dailyTotals(),
  };
}

/** A fixed workload over `orders` orders and six customers, every kind of step in turn (refunds too). */
const cycledSteps = (length: number, orders: number): Step[] =>
  Array.from({ length }, (_, i) => ({
    order: i % orders,
    customer: i % 6,
    kind: (['create', 'pay', 'reserve', 'ship', 'cancel', 'refund'] as const)[(i * 5) % 6]!,
    amount: 100 + i,
    day: 1 + (i % 4),
    currency: i % 4 === 0 ? 'EUR' : 'USD',
  }));

describe('bulk rebuild (aggregates derived at the end)', () => {
  it('countGramRows equals the sum of every row’s grams (ASCII and not)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            order_id: fc.string({ maxLength: 6 }),
            customer_id: fc.constantFrom('CUST-1', 'Cust-1', 'été', 'ÀB', ''),
            customer_name: fc.constantFrom('', 'Ann', 'ANN', 'Zoë'),
            status: fc.constantFrom('CREATED', 'PAID'),
            payment_status: fc.constantFrom('UNPAID', 'PAID'),
            fulfilment_status: fc.constantFrom('OPEN', 'SHIPPED'),
          }),
          { maxLength: 30 },
        ),
        (rows) => {
          const expected = new Map<string, Map<string, number>>();
          for (const r of rows) {
            const m = expected.get(gramBucket(r)) ?? new Map<string, number>();
            expected.set(gramBucket(r), m);
            for (const g of rowGrams(r.order_id, r.customer_id, r.customer_name)) m.set(g, (m.get(g) ?? 0) + 1);
          }
          const sorted = (m: Map<string, Map<string, number>>) =>
            [...m].map(([s, g]) => [s, [...g].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))] as const).sort(([a], [b]) => (a < b ? -1 : 1));
          expect(sorted(countGramRows(rows.map((r) => [r.order_id, `${r.customer_id}\u0000${r.customer_name}`, gramBucket(r)])))).toEqual(sorted(expected));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rebuild equals inline projection with a pending overlay: rows, daily totals, grams, FTS, searches, customer feeds; drift finds nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArb, { minLength: 1, maxLength: 60 }),
        fc.array(offlineArb, { maxLength: 8 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 6 }),
        async (steps: Step[], offline, batchSize, cacheSize) => {
          const store = open(tmp.file());
          try {
            const runner = new ProjectionRunner(store.log, defaultProjections());
            await runner.open();
            const outbox = new Outbox();
            runner.setPendingSource(outbox);
            appendSteps(store, steps);
            const logged = new Set(steps.map((s) => s.order));
            let t = 0;
            for (const o of offline) {
              const at = new Date(Date.UTC(2026, 1, 1) + t++ * 1000).toISOString();
              if (logged.has(o.order)) {
                // A payment taken offline on an order the log has.
                const id = `ORD-${String(o.order).padStart(3, '0')}${o.order % 3 === 0 ? 'x' : ''}`;
                if (o.pay) outbox.events.set(id, [{ type: 'PaymentReceived', data: { paymentId: `OP-${t}`, amount: 77 }, recordedAt: at }]);
                runner.refreshOrders([id]);
              } else {
                const id = `OFF-${o.order}`;
                outbox.events.set(id, [{ type: 'OrderCreated', data: orderCreated(id, customerIdOf(o.customer), 500).data, recordedAt: at }]);
                runner.refreshOrders([id]);
              }
            }
            const live = await snapshot(store, runner);
            for (const report of await driftCheck(runner, undefined, { batchSize, cacheSize })) expect(report.differences).toEqual([]);
            await runner.rebuild(undefined, { batchSize, cacheSize });
            expect(await snapshot(store, runner)).toEqual(live);
          } finally {
            store.close();
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('customer totals are derived once at the swap, on one thread or from a worker summary: the shadow holds none while it fills', async () => {
    const { store, runner } = await incremental(tmp.file(), cycledSteps(400, 40));
    try {
      const live = dumpAll(store.db);
      expect((live.customer_totals as { lifetime_value: number }[]).some((t) => t.lifetime_value > 0)).toBe(true);
      for (const worker of ['never', 'always'] as const) {
        const whileFilling: number[] = [];
        const result = await runner.rebuild(undefined, {
          worker,
          workers: 2,
          batchSize: 25,
          progressEveryMs: 0,
          onProgress: (p) => {
            if (!p.finished) whileFilling.push(store.db.prepare('SELECT COUNT(*) FROM "__rebuild_customer_totals"').pluck().get() as number);
          },
        });
        expect(result.summarized).toBe(worker === 'always');
        expect(whileFilling.length).toBeGreaterThan(3);
        expect(whileFilling.every((n) => n === 0)).toBe(true);
        expect(dumpAll(store.db)).toEqual(live);
      }
    } finally {
      store.close();
    }
  });

  it('a rebuild resumed from a shadow whose aggregates an older build filled still derives them exactly once', async () => {
    const { store, runner } = await incremental(tmp.file(), cycledSteps(120, 25));
    try {
      const live = dumpAll(store.db);
      const abort = new AbortController();
      await expect(
        runner.rebuild(undefined, {
          batchSize: 10,
          signal: abort.signal,
          onProgress: (p) => {
            if (p.done >= 50) abort.abort();
          },
          progressEveryMs: 0,
        }),
      ).rejects.toThrow(/aborted/);
      // What an older build (inline diffs in the shadow) would have left behind.
      store.db.exec(`INSERT INTO "__rebuild_order_search_grams" VALUES ('zz', 'PAID', 'PAID', 'OPEN', 3)`);
      store.db.exec(`INSERT INTO "__rebuild_order_daily_totals" VALUES ('2026-01-09', 'PAID', 'USD', 2, 9)`);
      await runner.rebuild();
      expect(dumpAll(store.db)).toEqual(live);
    } finally {
      store.close();
    }
  });
});
