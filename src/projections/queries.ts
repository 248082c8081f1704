import type Database from 'better-sqlite3';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { ORDER_STREAM_TYPE } from '../domain/events.js';
import { FULFILMENT_STATUSES, ORDER_STATUSES, PAYMENT_STATUSES } from '../domain/state.js';
import { upcast, UpcastError } from '../domain/upcasters.js';
import { statementCache } from './context.js';
import { amountOf, CUSTOMER_HISTORY } from './customer-history.js';
import { EVERY_ROW_GRAM, ORDER_LIST, searchIndexName, shortGram, type OrderListRow } from './order-list.js';
import {
  CustomerHistoryInput,
  ListOrdersInput as ListOrdersInputSchema,
  type CustomerHistoryOutput,
  type ListOrdersInput,
  type ListOrdersOutput,
  type OrderRow,
} from './query-schemas.js';
import type { ProjectionRunner } from './runner.js';
import { InvalidCursorError } from './types.js';

/** An event of a customer's activity feed, as stored. */
interface FeedRow {
  orderId: string;
  eventType: string;
  schemaVersion: number;
  data: string;
  recordedAt: string;
  position: number;
}

/** The amount a feed event moves, read from its current schema (an event no upcaster can read shows none). */
function feedAmount(r: FeedRow): number | null {
  try {
    return amountOf(r.eventType, upcast(r.eventType, r.schemaVersion, JSON.parse(r.data)).data);
  } catch (err) {
    if (err instanceof UpcastError) return null;
    throw err;
  }
}

/**
 * The query side: reads projection tables (and, for a customer's activity, the events of the
 * orders the history view links to them), never a command. Every answer states the log
 * position it reflects; `minPosition` waits (bounded) for it.
 */

/** A validated list query; the facets may be left out (callers that predate them: all). */
type ListOrdersQuery = Omit<z.infer<typeof ListOrdersInputSchema>, 'payment' | 'fulfilment'> &
  Partial<Pick<z.infer<typeof ListOrdersInputSchema>, 'payment' | 'fulfilment'>>;


const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a day like 2024-05-31');
export const DailyTotalsInput = z.strictObject({
  from: Day.optional(),
  to: Day.optional(),
  status: z.enum([...ORDER_STATUSES, 'ALL']).default('ALL'),
  currency: z.string().regex(/^[A-Z]{3}$/).optional(),
});
export type DailyTotalsInput = z.input<typeof DailyTotalsInput>;
export interface DailyTotal {
  day: string;
  status: string;
  currency: string;
  orderCount: number;
  totalAmount: number;
}

export interface QueryOptions {
  /** Used to catch up before waiting for `minPosition`. */
  runner?: ProjectionRunner;
  /** Longest wait for `minPosition` (default 2000 ms); the answer then states the position reached. */
  maxWaitMs?: number;
  pollMs?: number;
}

type ListRow = Pick<
  OrderListRow,
  | 'order_id'
  | 'customer_id'
  | 'customer_name'
  | 'status'
  | 'payment_status'
  | 'fulfilment_status'
  | 'total'
  | 'currency'
  | 'item_count'
  | 'paid_amount'
  | 'created_at'
  | 'updated_at'
  | 'version'
  | 'last_event_id'
  | 'sync'
>;

const ROW_COLUMNS =
  'order_id, customer_id, customer_name, status, payment_status, fulfilment_status, total, currency, item_count, paid_amount, created_at, updated_at, version, last_event_id, sync';

function toOrderRow(r: ListRow): OrderRow {
  return {
    orderId: r.order_id,
    customerId: r.customer_id,
    customerName: r.customer_name,
    status: r.status,
    paymentStatus: r.payment_status,
    fulfilmentStatus: r.fulfilment_status,
    total: r.total,
    currency: r.currency,
    itemCount: r.item_count,
    paidAmount: r.paid_amount,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    version: r.version,
    lastEventId: r.last_event_id,
    sync: r.sync,
  };
}

const Cursor = z.tuple([z.enum(['createdAt', 'updatedAt']), z.enum(['asc', 'desc']), z.string(), z.string()]);

export function encodeCursor(sort: string, direction: string, value: string, orderId: string): string {
  return Buffer.from(JSON.stringify([sort, direction, value, orderId])).toString('base64url');
}

function decodeCursor(cursor: string, sort: string, direction: string): { value: string; orderId: string } {
  let parsed: z.infer<typeof Cursor>;
  try {
    parsed = Cursor.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
  } catch {
    throw new InvalidCursorError('the cursor is malformed: pass the nextCursor of a previous page unchanged');
  }
  if (parsed[0] !== sort || parsed[1] !== direction) {
    throw new InvalidCursorError(`the cursor belongs to a ${parsed[0]} ${parsed[1]} listing, not ${sort} ${direction}`);
  }
  return { value: parsed[2], orderId: parsed[3] };
}

const SEARCH_INDEX = `"${searchIndexName('order_list')}"`;

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => '\\' + c);

export class OrderQueries {
  private readonly stmt: (sql: string) => Database.Statement;

  constructor(
    readonly db: Database.Database,
    readonly opts: QueryOptions = {},
  ) {
    this.stmt = statementCache(db);
  }

  /** The log position a projection's view reflects (0 if it has never run). */
  position(projection: string = ORDER_LIST): number {
    const row = this.stmt('SELECT position FROM projection_checkpoints WHERE name = ?').get(projection) as { position: number } | undefined;
    return row?.position ?? 0;
  }

  /** Read-your-writes: wait until the view reached `minPosition`, at most `maxWaitMs`. */
  async waitFor(minPosition: number | undefined, projection: string = ORDER_LIST): Promise<number> {
    let position = this.position(projection);
    if (minPosition === undefined || position >= minPosition) return position;
    const deadline = performance.now() + (this.opts.maxWaitMs ?? 2000);
    for (;;) {
      this.opts.runner?.catchUp({ names: [projection] });
      position = this.position(projection);
      if (position >= minPosition || performance.now() >= deadline) return position;
      await sleep(this.opts.pollMs ?? 20);
    }
  }

  async listOrders(input: ListOrdersInput = {}): Promise<ListOrdersOutput> {
    const q = ListOrdersInputSchema.parse(input);
    await this.waitFor(q.minPosition);
    return this.listOrdersNow(q);
  }

  /** The list as it is now (no waiting); input already validated. */
  listOrdersNow(query: ListOrdersQuery): ListOrdersOutput {
    const q = { ...query, payment: query.payment ?? 'ALL', fulfilment: query.fulfilment ?? 'ALL' };
    const sortCol = q.sort === 'createdAt' ? 'created_at' : 'updated_at';
    const dir = q.direction === 'asc' ? 'ASC' : 'DESC';
    const filters: string[] = [];
    const params: unknown[] = [];
    if (q.customerId) {
      filters.push('customer_id = ?');
      params.push(q.customerId);
    }
    if (q.search) {
      const pattern = `%${escapeLike(q.search)}%`;
      filters.push("(order_id LIKE ? ESCAPE '\\' OR customer_id LIKE ? ESCAPE '\\' OR customer_name LIKE ? ESCAPE '\\')");
      params.push(pattern, pattern, pattern);
    }
    // Facet filters: each facet's counts apply the other facet's filter, not its own (the
    // chips of one facet show what picking them would give within the other's choice).
    const facet = (column: string, value: string): { sql: string[]; params: unknown[] } =>
      value === 'ALL' ? { sql: [], params: [] } : { sql: [`${column} = ?`], params: [value] };
    const byPayment = facet('payment_status', q.payment);
    const byFulfilment = facet('fulfilment_status', q.fulfilment);
    const where = [...filters, ...byPayment.sql, ...byFulfilment.sql];
    const pageParams = [...params, ...byPayment.params, ...byFulfilment.params];
    if (q.status !== 'ALL') {
      where.push('status = ?');
      pageParams.push(q.status);
    }
    if (q.cursor) {
      const c = decodeCursor(q.cursor, q.sort, q.direction);
      where.push(`(${sortCol}, order_id) ${dir === 'ASC' ? '>' : '<'} (?, ?)`);
      pageParams.push(c.value, c.orderId);
    }
    const whereSql = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const order = `ORDER BY ${sortCol} ${dir}, order_id ${dir}`;
    let pageSql = `SELECT ${ROW_COLUMNS} FROM order_list ${whereSql} ${order} LIMIT ? OFFSET ?`;
    let countFrom = 'order_list';
    // Without a search or a customer, the counts are the gram every row holds.
    let gram: string | null = q.search || q.customerId ? null : EVERY_ROW_GRAM;
    if (q.search && [...q.search].length >= 3) {
      // Candidates from the trigram index (a superset of the LIKE matches), joined to their
      // rows by primary key; the LIKE filters above keep the answer exact.
      const candidates = `(SELECT order_id AS id FROM ${SEARCH_INDEX} WHERE ${SEARCH_INDEX} MATCH ?) AS m CROSS JOIN order_list ON order_list.order_id = m.id`;
      const phrase = `"${q.search.replace(/"/g, '""')}"`;
      pageSql = `SELECT ${ROW_COLUMNS} FROM ${candidates} ${whereSql} ${order} LIMIT ? OFFSET ?`;
      countFrom = candidates;
      params.unshift(phrase);
      pageParams.unshift(phrase);
    } else if (q.search && !q.customerId) {
      // Too short for trigrams: the counts come from the gram table (below) and the page walks
      // the sort order's index testing LIKE, which stops as soon as the page is full.
      gram = shortGram(q.search);
    } else if (q.search) {
      // A short needle within one customer's orders: scan that customer's slice of the narrow
      // covering index.
      pageSql = `SELECT ${ROW_COLUMNS} FROM order_list WHERE order_id IN (
           SELECT order_id FROM order_list INDEXED BY order_list__customer ${whereSql} ${order} LIMIT ? OFFSET ?) ${order}`;
      countFrom = 'order_list INDEXED BY order_list__customer';
    }

    // What the counts read: the matching rows, or for no needle or a short one its gram's rows
    // (counts kept per status and facet, summed), so neither the list's counts nor a short search's scan it.
    const tally =
      gram !== null
        ? { from: 'order_search_grams', n: 'SUM(order_count)', where: ['gram = ?'], params: [gram] as unknown[] }
        : { from: countFrom, n: 'COUNT(*)', where: filters, params };
    const whereOf = (conds: string[]) => (conds.length > 0 ? `WHERE ${conds.join(' AND ')}` : '');

    return this.db.transaction(() => {
      const position = this.position(ORDER_LIST);
      const countRows = (
        this.stmt(`SELECT status, ${tally.n} AS n FROM ${tally.from} ${whereOf(tally.where)} GROUP BY status`).all(...tally.params)
      ) as { status: string; n: number }[];
      const counts: Record<string, number> = { ALL: 0 };
      for (const s of ORDER_STATUSES) counts[s] = 0;
      for (const r of countRows) {
        counts[r.status] = r.n;
        counts.ALL! += r.n;
      }
      // Nothing matches: skip the page (a LIKE walk would otherwise read every row to find none).
      const found = (
        gram !== null && counts[q.status] === 0 ? [] : this.stmt(pageSql).all(...pageParams, q.limit + 1, q.cursor ? 0 : q.offset)
      ) as ListRow[];
      const rows = found.slice(0, q.limit).map(toOrderRow);
      const last = rows[rows.length - 1];
      const nextCursor =
        found.length > q.limit && last ? encodeCursor(q.sort, q.direction, q.sort === 'createdAt' ? last.createdAt : last.updatedAt, last.orderId) : null;
      const facetCounts = (column: string, values: readonly string[], other: { sql: string[]; params: unknown[] }) => {
        const found = this.stmt(`SELECT ${column} AS v, ${tally.n} AS n FROM ${tally.from} ${whereOf([...tally.where, ...other.sql])} GROUP BY ${column}`).all(
          ...tally.params,
          ...other.params,
        ) as { v: string; n: number }[];
        const out: Record<string, number> = { ALL: 0 };
        for (const v of values) out[v] = 0;
        for (const r of found) {
          out[r.v] = r.n;
          out.ALL! += r.n;
        }
        return out;
      };
      const paymentCounts = facetCounts('payment_status', PAYMENT_STATUSES, byFulfilment);
      const fulfilmentCounts = facetCounts('fulfilment_status', FULFILMENT_STATUSES, byPayment);
      // The page's total: the count of everything the page filters on.
      const total =
        q.payment === 'ALL' && q.fulfilment === 'ALL'
          ? (counts[q.status] ?? 0)
          : q.status === 'ALL'
            ? q.fulfilment === 'ALL'
              ? (paymentCounts[q.payment] ?? 0)
              : (fulfilmentCounts[q.fulfilment] ?? 0)
            : ((this.stmt(`SELECT ${tally.n} FROM ${tally.from} ${whereOf([...tally.where, ...byPayment.sql, ...byFulfilment.sql, 'status = ?'])}`)
                .pluck()
                .get(...tally.params, ...byPayment.params, ...byFulfilment.params, q.status) as number | null) ?? 0);
      return { rows, total, counts, paymentCounts, fulfilmentCounts, nextCursor, position };
    })();
  }

  async customerHistory(input: CustomerHistoryInput): Promise<CustomerHistoryOutput> {
    const q = CustomerHistoryInput.parse(input);
    return this.db.transaction(() => {
      const orders = this.stmt(
        `SELECT ${ROW_COLUMNS} FROM order_list WHERE customer_id = ? ORDER BY updated_at DESC, order_id DESC LIMIT ? OFFSET ?`,
      ).all(q.customerId, q.limit, q.offset) as ListRow[];
      // The feed is the log: the events of the customer's orders, up to what the history view has seen (so it agrees with the totals).
      const feed = this.stmt(
        `SELECT e.stream_id AS orderId, e.event_type AS eventType, e.schema_version AS schemaVersion, e.data, e.recorded_at AS recordedAt, e.position
         FROM customer_orders o JOIN events e ON e.stream_id = o.order_id AND e.stream_type = '${ORDER_STREAM_TYPE}'
         WHERE o.customer_id = ? AND e.position <= ? ORDER BY e.position DESC LIMIT ? OFFSET ?`,
      ).all(q.customerId, this.position(CUSTOMER_HISTORY), q.limit, q.offset) as FeedRow[];
      const activity = feed.map((r) => ({ orderId: r.orderId, eventType: r.eventType, amount: feedAmount(r), recordedAt: r.recordedAt, position: r.position }));
      const totalOrders = this.stmt('SELECT COUNT(*) FROM order_list WHERE customer_id = ?').pluck().get(q.customerId) as number;
      const lifetime = this.stmt('SELECT lifetime_value FROM customer_totals WHERE customer_id = ?').pluck().get(q.customerId) as
        | number
        | undefined;
      return { customerId: q.customerId, orders: orders.map(toOrderRow), activity, totalOrders, lifetimeValue: lifetime ?? 0 };
    })();
  }

  /** Position of the customer history view (it is a separate projection with its own checkpoint). */
  customerHistoryPosition(): number {
    return this.position(CUSTOMER_HISTORY);
  }

  dailyTotals(input: DailyTotalsInput = {}): DailyTotal[] {
    const q = DailyTotalsInput.parse(input);
    return this.stmt(
      `SELECT day, status, currency, order_count AS orderCount, total_amount AS totalAmount FROM order_daily_totals
       WHERE day >= ? AND day <= ? AND (? = 'ALL' OR status = ?) AND (? IS NULL OR currency = ?)
       ORDER BY day, status, currency`,
    ).all(q.from ?? '0000-00-00', q.to ?? '9999-99-99', q.status, q.status, q.currency ?? null, q.currency ?? null) as DailyTotal[];
  }
}
