import type Database from 'better-sqlite3';
import { ORDER_STREAM_TYPE } from '../domain/events.js';
import type { StoredEvent } from '../protocol/envelope.js';
import type { ApplyContext, PortableProjection, Projection, TableDef } from './types.js';

/**
 * Per-customer history: which orders are whose (`customer_orders`, indexed by customer) and
 * per-customer totals. Only OrderCreated names the customer, so the projection keeps its own
 * order → customer map instead of depending on another projection. A customer's activity feed
 * is the log itself, read through that index (`OrderQueries.customerHistory`): v1 copied every
 * order event into a per-customer table, a second copy of the log that was most of a rebuild's
 * writes (and kept events that bounded history had dropped).
 * Lifetime value is money actually received: payments minus refunds.
 */
export const CUSTOMER_HISTORY = 'customer_history';

export function customerHistoryTables(prefix: string): TableDef[] {
  const orders = `${prefix}customer_orders`;
  const totals = `${prefix}customer_totals`;
  return [
    {
      name: orders,
      baseName: 'customer_orders',
      key: ['order_id'],
      create: `CREATE TABLE "${orders}" (order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL) WITHOUT ROWID`,
      indexes: [`CREATE INDEX "${orders}__customer" ON "${orders}" (customer_id, order_id)`],
    },
    {
      name: totals,
      baseName: 'customer_totals',
      key: ['customer_id'],
      create: `CREATE TABLE "${totals}" (
        customer_id       TEXT    PRIMARY KEY,
        order_count       INTEGER NOT NULL,
        lifetime_value    INTEGER NOT NULL,
        first_order_at    TEXT,
        last_activity_at  TEXT    NOT NULL
      ) WITHOUT ROWID`,
      indexes: [],
    },
  ];
}

interface TotalsDelta {
  orders: number;
  value: number;
  firstOrderAt: string | null;
  lastActivityAt: string;
}

/** The money an order event moves, as the activity feed shows it (the order total when it is created). */
export function amountOf(eventType: string, data: unknown): number | null {
  const d = data as { total?: unknown; amount?: unknown };
  switch (eventType) {
    case 'OrderCreated':
      return typeof d.total === 'number' ? d.total : null;
    case 'PaymentReceived':
    case 'PaymentRefunded':
      return typeof d.amount === 'number' ? d.amount : null;
    default:
      return null;
  }
}

class CustomerHistoryProjection implements Projection {
  readonly name = CUSTOMER_HISTORY;
  readonly portable: PortableProjection = { module: import.meta.url, factory: 'customerHistoryProjection', byStream: true };
  /** v2: the activity feed is read from the log (no per-event copy); customer_orders indexed by customer. */
  readonly version = 2;

  tables(prefix: string): TableDef[] {
    return customerHistoryTables(prefix);
  }

  /** The statements over each context's tables, built once per context (not per call: the SQL texts are long). */
  private readonly statements = new WeakMap<ApplyContext, ReturnType<CustomerHistoryProjection['prepare']>>();

  private sql(ctx: ApplyContext) {
    let s = this.statements.get(ctx);
    if (!s) {
      s = this.prepare(ctx);
      this.statements.set(ctx, s);
    }
    return s;
  }

  private prepare(ctx: ApplyContext) {
    const p = ctx.prefix;
    return {
      customerOf: ctx.stmt(`SELECT customer_id FROM "${p}customer_orders" WHERE order_id = ?`).pluck() as Database.Statement<[string], string>,
      link: ctx.stmt(`INSERT OR REPLACE INTO "${p}customer_orders" (order_id, customer_id) VALUES (?, ?)`),
      totals: ctx.stmt(
        `INSERT INTO "${p}customer_totals" (customer_id, order_count, lifetime_value, first_order_at, last_activity_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (customer_id) DO UPDATE SET
           order_count = order_count + excluded.order_count,
           lifetime_value = lifetime_value + excluded.lifetime_value,
           first_order_at = coalesce(min(first_order_at, excluded.first_order_at), first_order_at, excluded.first_order_at),
           last_activity_at = max(last_activity_at, excluded.last_activity_at)`,
      ),
      clear: [`customer_orders`, `customer_totals`].map((t) => ctx.stmt(`DELETE FROM "${p}${t}"`)),
    };
  }

  private customerOf(ctx: ApplyContext, orderId: string): string | undefined {
    const cached = ctx.cache.get(orderId) as string | undefined;
    if (cached !== undefined) return cached;
    const found = this.sql(ctx).customerOf.get(orderId);
    if (found !== undefined) ctx.cache.set(orderId, found);
    return found;
  }

  apply(ctx: ApplyContext, events: readonly StoredEvent[]): void {
    const sql = this.sql(ctx);
    const deltas = new Map<string, TotalsDelta>();
    for (const e of events) {
      if (e.streamType !== ORDER_STREAM_TYPE) continue;
      let customerId: string | undefined;
      const isCreate = e.eventType === 'OrderCreated' && typeof e.data.customerId === 'string';
      if (isCreate) {
        customerId = e.data.customerId as string;
        sql.link.run(e.streamId, customerId);
        ctx.cache.set(e.streamId, customerId);
      } else {
        customerId = this.customerOf(ctx, e.streamId);
      }
      // An event of an order whose creation this build could not read names no customer.
      if (customerId === undefined) continue;
      const amount = amountOf(e.eventType, e.data);
      let d = deltas.get(customerId);
      if (!d) {
        d = { orders: 0, value: 0, firstOrderAt: null, lastActivityAt: e.recordedAt };
        deltas.set(customerId, d);
      }
      if (isCreate) {
        d.orders += 1;
        if (d.firstOrderAt === null || e.recordedAt < d.firstOrderAt) d.firstOrderAt = e.recordedAt;
      }
      if (amount !== null && e.eventType === 'PaymentReceived') d.value += amount;
      if (amount !== null && e.eventType === 'PaymentRefunded') d.value -= amount;
      if (e.recordedAt > d.lastActivityAt) d.lastActivityAt = e.recordedAt;
    }
    for (const [customerId, d] of deltas) sql.totals.run(customerId, d.orders, d.value, d.firstOrderAt, d.lastActivityAt);
  }

  reset(ctx: ApplyContext): void {
    for (const s of this.sql(ctx).clear) s.run();
    ctx.cache.clear();
  }
}

export function customerHistoryProjection(): Projection {
  return new CustomerHistoryProjection();
}
