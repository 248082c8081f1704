import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultProjections, OrderQueries, ProjectionRunner, type PendingEvent, type PendingSource, type SyncBadge } from '../../src/projections/index.js';
import { open, orderCreated, tempDirs } from './support.js';

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

// Ids of every length around the trigram threshold; needles with quotes and LIKE wildcards.
const idArb = fc.constantFrom('A', 'ab', 'abc', 'a_b', 'ORD-1', 'ORD-12', 'ord-123', 'x.y:z', 'u@v-1', 'AB_C');
const needleArb = fc.constantFrom('a', 'ab', 'AB', 'b', '-1', 'abc', 'ORD', 'rd-1', '"b', '"', '%_', 'b_c', '_', 'été', 'zzz', 'y:z', 'U@V');
const stepArb = fc.record({
  kind: fc.constantFrom('offline' as const, 'discard' as const, 'confirm' as const),
  order: idArb,
  customer: idArb,
});

describe('substring search index', () => {
  it('stays equal to the list rows through offline creates, discards, confirmations and a rebuild; answers equal LIKE', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 25 }), fc.array(needleArb, { minLength: 1, maxLength: 5 }), async (steps, needles) => {
        const store = open(tmp.file());
        try {
          const runner = new ProjectionRunner(store.log, defaultProjections());
          await runner.open();
          const outbox = new Outbox();
          runner.setPendingSource(outbox);
          const q = new OrderQueries(store.db, { runner });
          const confirmed = new Set<string>();
          let t = 0;
          for (const s of steps) {
            const at = new Date(Date.UTC(2026, 0, 1) + t++ * 1000).toISOString();
            if (s.kind === 'offline' && !confirmed.has(s.order)) {
              outbox.events.set(s.order, [{ type: 'OrderCreated', data: orderCreated(s.order, s.customer, 10).data, recordedAt: at }]);
            } else if (s.kind === 'discard') {
              outbox.events.delete(s.order);
            } else if (s.kind === 'confirm' && !confirmed.has(s.order)) {
              confirmed.add(s.order);
              outbox.events.delete(s.order);
              store.log.append(s.order, [orderCreated(s.order, s.customer, 10)], { expectedVersion: 'no_stream', recordedAt: at });
            }
            runner.refreshOrders([s.order]);
          }

          const check = async () => {
            const rows = store.db.prepare('SELECT order_id, customer_id FROM order_list ORDER BY order_id').all();
            expect(store.db.prepare('SELECT order_id, customer_id FROM order_list__search ORDER BY order_id').all()).toEqual(rows);
            for (const needle of needles) {
              const like = (store.db
                .prepare("SELECT order_id FROM order_list WHERE order_id LIKE ? ESCAPE '\\' OR customer_id LIKE ? ESCAPE '\\' ORDER BY order_id")
                .pluck()
                .all(...Array(2).fill(`%${needle.replace(/[\\%_]/g, (c) => '\\' + c)}%`)) as string[]);
              const page = await q.listOrders({ search: needle, sort: 'createdAt', direction: 'asc', limit: 100 });
              expect(page.rows.map((r) => r.orderId).sort()).toEqual(like);
              expect(page.total).toBe(like.length);
              // Every status's count (short needles read them from the gram table), and each
              // status's first page, which a short needle finds by walking the sort order.
              const byStatus = store.db
                .prepare("SELECT status, COUNT(*) AS n FROM order_list WHERE order_id LIKE ? ESCAPE '\\' OR customer_id LIKE ? ESCAPE '\\' GROUP BY status")
                .all(...Array(2).fill(`%${needle.replace(/[\\%_]/g, (c) => '\\' + c)}%`)) as { status: string; n: number }[];
              for (const { status, n } of byStatus) {
                expect(page.counts[status]).toBe(n);
                const filtered = await q.listOrders({ search: needle, status: status as 'CREATED', limit: 100 });
                expect(filtered.rows.length).toBe(n);
                expect(filtered.total).toBe(n);
              }
              expect(Object.values(page.counts).reduce((a, b) => a + b, 0)).toBe(2 * like.length);
            }
          };
          await check();
          await runner.rebuild();
          await check();
        } finally {
          store.close();
        }
      }),
      { numRuns: 20 },
    );
  });
});
