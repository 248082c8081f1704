import { ORDER_STREAM_TYPE } from '../domain/events.js';
import {
  REDUCER_VERSION,
  foldOrder,
  applyOrderEventInPlace,
  foldOrderInPlace,
  initialOrderState,
  netPaidAmount,
  paymentStatusOf,
  type FulfilmentStatus,
  type OrderState,
  type OrderStatus,
  type PaymentStatus,
} from '../domain/state.js';
import type Database from 'better-sqlite3';
import type { StoredEvent } from '../protocol/envelope.js';
import { EVENT_COLUMNS, rowToEvent, upcastEvent, type EventRow } from '../store/event-log.js';
import { EvictedStreams } from '../store/evicted-streams.js';
import { SnapshotStore } from '../store/snapshots.js';
import type { SyncBadge } from './query-schemas.js';
import type { ApplyContext, BulkSummary, PendingSource, PortableProjection, Projection, TableDef } from './types.js';

/**
 * Order list / dashboard, plus daily totals by status.
 *
 * The projection folds each order's CONFIRMED state (events in the log) and keeps it in its
 * cache, so a new event is applied without reloading the stream; on a cache miss it refolds the
 * order's stream from the log, up to the row's confirmed version (from a snapshot or a kept
 * state when there is one). The rows do not keep the state: it was most of each row (about
 * 1 kB of 1.1), and writing it was a sixth of a rebuild. The displayed columns are
 * the EFFECTIVE row: the confirmed state with the sync layer's pending (not yet acknowledged,
 * kept out of `events`) events folded on top, with a sync badge. With no pending source,
 * effective = confirmed and the badge is 'synced'. An order created offline therefore shows
 * up at once as 'pending' (state NULL, no confirmed events yet), and when its events are
 * confirmed (appended, removed from the outbox) the same row turns 'synced'.
 *
 * `order_daily_totals` (day of creation, status, currency → order count, total amount) is
 * maintained by diffing each order's old effective row against its new one in the same
 * transaction, so a status change moves the order between buckets and the aggregate can never
 * disagree with the list. It is part of this projection (same checkpoint, rebuilt together).
 */
export const ORDER_LIST = 'order_list';

export interface OrderListRow {
  order_id: string;
  customer_id: string;
  customer_name: string;
  status: OrderStatus;
  payment_status: PaymentStatus;
  fulfilment_status: FulfilmentStatus;
  total: number;
  currency: string;
  /** Units ordered (sum of item quantities). */
  item_count: number;
  /** Net amount paid (payments minus refunds). */
  paid_amount: number;
  created_at: string;
  updated_at: string;
  last_event_id: string;
  /** Effective version: confirmed stream version plus pending events. */
  version: number;
  /** Stream version the confirmed state is folded to (0 while the order exists only in the outbox). */
  confirmed_version: number;
  sync: SyncBadge;
  pending_count: number;
}

interface Entry {
  confirmed: OrderState | null;
  lastEventId: string;
  /** The effective row as stored (null: no row). */
  row: OrderListRow | null;
}

const COLUMNS = [
  'order_id',
  'customer_id',
  'customer_name',
  'status',
  'payment_status',
  'fulfilment_status',
  'total',
  'currency',
  'item_count',
  'paid_amount',
  'created_at',
  'updated_at',
  'last_event_id',
  'version',
  'confirmed_version',
  'sync',
  'pending_count',
] as const;

/**
 * The substring search index of a list table: FTS5 with the trigram tokenizer over order ids,
 * customer ids and customer names. A phrase query returns a superset of `LIKE '%needle%'` (it folds case at least
 * as widely as LIKE), so queries use it to pick candidates and keep the LIKE as the exact test.
 * Built like an index: created and filled from the table when the view goes live (not while a
 * shadow fills), then kept in step by triggers in the same transaction as every row change.
 * Rows are found by id through the index itself (rowids of `order_list` are not stable).
 */
export function searchIndexName(list: string): string {
  return `${list}__search`;
}

function searchIndex(list: string): string[] {
  const s = `"${searchIndexName(list)}"`;
  const removeOld = [
    // Trigram phrases shorter than 3 characters match nothing: those ids are found by a scan.
    `DELETE FROM ${s} WHERE rowid IN (SELECT rowid FROM ${s} WHERE ${s} MATCH ('order_id : "' || replace(old.order_id, '"', '""') || '"') AND order_id = old.order_id);`,
    `DELETE FROM ${s} WHERE length(old.order_id) < 3 AND order_id = old.order_id;`,
  ].join('\n');
  const insertNew = `INSERT INTO ${s} (order_id, customer_id, customer_name) VALUES (new.order_id, new.customer_id, new.customer_name);`;
  return [
    `CREATE VIRTUAL TABLE ${s} USING fts5(order_id, customer_id, customer_name, tokenize = 'trigram')`,
    // Fill once, when the index is new (afterwards the triggers keep it complete).
    `INSERT INTO ${s} (order_id, customer_id, customer_name) SELECT order_id, customer_id, customer_name FROM "${list}" WHERE NOT EXISTS (SELECT 1 FROM ${s})`,
    `CREATE TRIGGER "${list}__search_insert" AFTER INSERT ON "${list}" BEGIN ${insertNew} END`,
    `CREATE TRIGGER "${list}__search_delete" AFTER DELETE ON "${list}" BEGIN ${removeOld} END`,
    `CREATE TRIGGER "${list}__search_update" AFTER UPDATE OF order_id, customer_id, customer_name ON "${list}"
       WHEN old.order_id IS NOT new.order_id OR old.customer_id IS NOT new.customer_id OR old.customer_name IS NOT new.customer_name
       BEGIN ${removeOld} ${insertNew} END`,
  ];
}

/**
 * Needles under 3 characters cannot use the trigram index, and counting their matches meant
 * scanning every row. `order_search_grams` keeps, for every 1- and 2-character substring
 * (ASCII-lowercased, as LIKE folds case) of a row's order id, customer id or name, how many rows
 * of each status × payment status × fulfilment status contain it: a short search's counts and
 * facet counts are then sums over one gram's rows (one indexed read), and its page walks the
 * sort order with LIKE until the page is full (matches of a short needle are dense). Maintained
 * from the same old/new row diff as the daily totals, so it cannot disagree with the list.
 * The empty string is a substring of every row: its gram counts the whole list per facet
 * bucket, so the unsearched list's counts are sums over a few rows too (they were scans).
 */
export const SHORT_GRAM_MAX = 2;

/** The gram every row contains (the empty needle): the whole list's counts per facet bucket. */
export const EVERY_ROW_GRAM = '';

const foldAscii = (s: string) => s.replace(/[A-Z]+/g, (c) => c.toLowerCase());

/** The needle as the gram table stores it (null when it is not a short needle). */
export function shortGram(needle: string): string | null {
  const chars = [...needle];
  return chars.length >= 1 && chars.length <= SHORT_GRAM_MAX ? foldAscii(needle) : null;
}

/** Distinct 1- and 2-character substrings of a row's ids and customer name (by code point, as LIKE matches). */
export function rowGrams(orderId: string, customerId: string, customerName = ''): Set<string> {
  const grams = new Set<string>([EVERY_ROW_GRAM]);
  for (const id of [orderId, customerId, customerName]) {
    const chars = [...foldAscii(id)];
    for (let i = 0; i < chars.length; i++) {
      grams.add(chars[i]!);
      if (i + 1 < chars.length) grams.add(chars[i]! + chars[i + 1]!);
    }
  }
  return grams;
}

const NON_ASCII = /[\u0080-\uffff]/;

/** The 1- and 2-character substrings of one string, as `rowGrams` takes them (may repeat). */
function stringGrams(s: string): string[] {
  const out: string[] = [];
  // ASCII (ids are): one UTF-16 unit per code point, and lower-casing folds A-Z only.
  if (!NON_ASCII.test(s)) {
    const f = s.toLowerCase();
    for (let i = 0; i < f.length; i++) {
      out.push(f[i]!);
      if (i + 1 < f.length) out.push(f.slice(i, i + 2));
    }
    return out;
  }
  const chars = [...foldAscii(s)];
  for (let i = 0; i < chars.length; i++) {
    out.push(chars[i]!);
    if (i + 1 < chars.length) out.push(chars[i]! + chars[i + 1]!);
  }
  return out;
}

/**
 * The facets a gram count is kept under (status, payment status, fulfilment status), joined by
 * NUL: a short search's status counts, facet counts and facet-filtered totals are then all sums
 * over one gram's few rows instead of scans of the list.
 */
export function gramBucket(r: Pick<OrderListRow, 'status' | 'payment_status' | 'fulfilment_status'>): string {
  return `${r.status}\u0000${r.payment_status}\u0000${r.fulfilment_status}`;
}

/** A row as the gram count reads it: order id, customer id and name joined by NUL, `gramBucket`. */
export type GramRow = [orderId: string, customer: string, bucket: string];

/**
 * Per gram bucket (`gramBucket`), how many rows contain each gram (the `rowGrams` of each row
 * counted once): what the inline diffs of `order_search_grams` add up to, in one pass. Rows are
 * read as three strings each (one string per column and an object per row was most of a
 * rebuild's swap). Grams are numbered once, and a customer's grams (id and name repeat across
 * their orders) are computed once per customer.
 */
export function countGramRows(rows: readonly GramRow[]): Map<string, Map<string, number>> {
  const index = new Map<string, number>();
  const names: string[] = [];
  const numberOf = (g: string) => {
    let i = index.get(g);
    if (i === undefined) {
      i = names.length;
      index.set(g, i);
      names.push(g);
    }
    return i;
  };
  const customers = new Map<string, number[]>();
  const byStatus = new Map<string, number[]>();
  // stamp[i] === row: gram i already counted for this row (a row counts each gram once).
  const stamp: number[] = [];
  for (let row = 1; row <= rows.length; row++) {
    const [orderId, customerKey, bucket] = rows[row - 1]!;
    let own = customers.get(customerKey);
    if (!own) {
      // The first NUL ends the id: identifiers are letters, digits and . _ : @ - only.
      const cut = customerKey.indexOf('\u0000');
      own = [...new Set([EVERY_ROW_GRAM, ...stringGrams(customerKey.slice(0, cut)), ...stringGrams(customerKey.slice(cut + 1))].map(numberOf))];
      customers.set(customerKey, own);
    }
    let counts = byStatus.get(bucket);
    if (!counts) {
      counts = [];
      byStatus.set(bucket, counts);
    }
    for (const i of own) {
      stamp[i] = row;
      counts[i] = (counts[i] ?? 0) + 1;
    }
    for (const g of stringGrams(orderId)) {
      const i = numberOf(g);
      if (stamp[i] === row) continue;
      stamp[i] = row;
      counts[i] = (counts[i] ?? 0) + 1;
    }
  }
  const out = new Map<string, Map<string, number>>();
  for (const [bucket, counts] of byStatus) {
    const m = new Map<string, number>();
    counts.forEach((n, i) => {
      if (n > 0) m.set(names[i]!, n);
    });
    out.set(bucket, m);
  }
  return out;
}

export function orderListTables(prefix: string): TableDef[] {
  const list = `${prefix}order_list`;
  const daily = `${prefix}order_daily_totals`;
  const grams = `${prefix}order_search_grams`;
  return [
    {
      name: list,
      baseName: 'order_list',
      key: ['order_id'],
      create: `CREATE TABLE "${list}" (
        order_id          TEXT    PRIMARY KEY,
        customer_id       TEXT    NOT NULL,
        customer_name     TEXT    NOT NULL,
        status            TEXT    NOT NULL,
        payment_status    TEXT    NOT NULL,
        fulfilment_status TEXT    NOT NULL,
        total             INTEGER NOT NULL,
        currency          TEXT    NOT NULL,
        item_count        INTEGER NOT NULL,
        paid_amount       INTEGER NOT NULL,
        created_at        TEXT    NOT NULL,
        updated_at        TEXT    NOT NULL,
        last_event_id     TEXT    NOT NULL,
        version           INTEGER NOT NULL,
        confirmed_version INTEGER NOT NULL,
        sync              TEXT    NOT NULL,
        pending_count     INTEGER NOT NULL
      )`,
      // Every list query is "filter, then order by a time with order_id as tie-breaker": one
      // index per (filter, sort) pair lets SQLite walk a page without sorting.
      indexes: [
        `CREATE INDEX "${list}__status_updated" ON "${list}" (status, updated_at, order_id)`,
        `CREATE INDEX "${list}__status_created" ON "${list}" (status, created_at, order_id)`,
        `CREATE INDEX "${list}__updated" ON "${list}" (updated_at, order_id)`,
        `CREATE INDEX "${list}__created" ON "${list}" (created_at, order_id)`,
        // Customer filter (equality prefix, a customer has few orders) AND text search: it
        // covers every column a search filters, counts and sorts on, so a substring search
        // scans this narrow index instead of the rows.
        // The two facets: filtered like the status, counted by scanning these narrow indexes.
        `CREATE INDEX "${list}__payment_updated" ON "${list}" (payment_status, updated_at, order_id)`,
        `CREATE INDEX "${list}__fulfilment_updated" ON "${list}" (fulfilment_status, updated_at, order_id)`,
        `CREATE INDEX "${list}__customer" ON "${list}" (customer_id, order_id, customer_name, status, payment_status, fulfilment_status, updated_at, created_at)`,
        `CREATE INDEX "${list}__pending" ON "${list}" (pending_count) WHERE pending_count > 0 OR sync <> 'synced'`,
        ...searchIndex(list),
      ],
      companions: [searchIndexName(list)],
    },
    {
      name: daily,
      baseName: 'order_daily_totals',
      key: ['day', 'status', 'currency'],
      create: `CREATE TABLE "${daily}" (
        day           TEXT    NOT NULL,
        status        TEXT    NOT NULL,
        currency      TEXT    NOT NULL,
        order_count   INTEGER NOT NULL,
        total_amount  INTEGER NOT NULL,
        PRIMARY KEY (day, status, currency)
      ) WITHOUT ROWID`,
      indexes: [],
    },
    {
      name: grams,
      baseName: 'order_search_grams',
      key: ['gram', 'status', 'payment_status', 'fulfilment_status'],
      create: `CREATE TABLE "${grams}" (
        gram              TEXT    NOT NULL,
        status            TEXT    NOT NULL,
        payment_status    TEXT    NOT NULL,
        fulfilment_status TEXT    NOT NULL,
        order_count       INTEGER NOT NULL,
        PRIMARY KEY (gram, status, payment_status, fulfilment_status)
      ) WITHOUT ROWID`,
      indexes: [],
    },
  ];
}

/** A list row as the gram count reads it (`GramRow`). */
const GRAM_ROW = `order_id, customer_id || char(0) || customer_name, status || char(0) || payment_status || char(0) || fulfilment_status`;

/** The daily buckets of list rows (`addBucket`'s), before their FROM: day, status, currency, orders, amount. */
const DAILY_ROWS = 'SELECT substr(created_at, 1, 10), status, currency, count(*), sum(total)';
type DailyRow = [day: string, status: string, currency: string, orders: number, amount: number];

/** What `finishBulk` derives, over the rows a worker summarised (`summarizeBulk`). */
interface OrderListSummary {
  daily: DailyRow[];
  grams: Map<string, Map<string, number>>;
}

/** Fold pending events over the confirmed state; null when the order does not (yet) exist. */
export function effectiveRow(
  orderId: string,
  confirmed: OrderState | null,
  lastEventId: string,
  pending: PendingSource | null,
): OrderListRow | null {
  let effective = confirmed;
  let sync: SyncBadge = 'synced';
  let pendingCount = 0;
  if (pending) {
    const events = pending.pendingEvents(orderId);
    sync = pending.badge(orderId);
    pendingCount = events.length;
    if (events.length > 0) {
      // A copy: immer freezes its result, which would include subtrees shared with `confirmed`.
      effective = foldOrder(
        events.map((e) => ({ type: e.type, data: e.data, recordedAt: e.recordedAt })),
        confirmed ? (JSON.parse(JSON.stringify(confirmed)) as OrderState) : initialOrderState,
      );
    }
  }
  if (!effective || !effective.exists || !effective.status) return null;
  // Pending events without a recording time: the row still needs a time to sort by.
  const now = effective.createdAt && effective.updatedAt ? '' : new Date().toISOString();
  return {
    order_id: orderId,
    customer_id: effective.customerId ?? '',
    customer_name: effective.customerName ?? effective.customerId ?? '',
    status: effective.status,
    payment_status: effective.paymentStatus ?? paymentStatusOf(effective),
    fulfilment_status: effective.fulfilmentStatus ?? 'OPEN',
    total: effective.total,
    currency: effective.currency ?? '',
    item_count: effective.items.reduce((n, i) => n + i.quantity, 0),
    paid_amount: netPaidAmount(effective),
    created_at: effective.createdAt ?? now,
    updated_at: effective.updatedAt ?? now,
    last_event_id: lastEventId,
    version: effective.version,
    confirmed_version: confirmed?.version ?? 0,
    sync,
    pending_count: pendingCount,
  };
}

/** A plain copy, then its own arrays (a spread with keys added is V8's slow path: once per order of a rebuild). */
function freshState(): OrderState {
  const s = { ...initialOrderState };
  s.items = [];
  s.payments = [];
  return s;
}

/** Events a refold replays before it keeps a snapshot of the state (`snapshots`, as `OrderRepository` keeps them). */
export const REFOLD_SNAPSHOT_EVERY = 100;

type Bucket = { day: string; status: string; currency: string; count: number; amount: number };

function addGrams(deltas: Map<string, number>, row: OrderListRow, sign: 1 | -1): void {
  const bucket = gramBucket(row);
  for (const g of rowGrams(row.order_id, row.customer_id, row.customer_name)) {
    const key = `${g}\u0000${bucket}`;
    deltas.set(key, (deltas.get(key) ?? 0) + sign);
  }
}

function addBucket(deltas: Map<string, Bucket>, row: OrderListRow, sign: 1 | -1): void {
  const day = row.created_at.slice(0, 10);
  const key = `${day}\u0000${row.status}\u0000${row.currency}`;
  let b = deltas.get(key);
  if (!b) {
    b = { day, status: row.status, currency: row.currency, count: 0, amount: 0 };
    deltas.set(key, b);
  }
  b.count += sign;
  b.amount += sign * row.total;
}

class OrderListProjection implements Projection {
  readonly name = ORDER_LIST;
  readonly portable: PortableProjection = { module: import.meta.url, factory: 'orderListProjection', byStream: true };
  /**
   * v2: one covering customer/search index instead of two customer indexes.
   * v3: trigram search index (FTS5) over order and customer ids.
   * v4: statuses set by OrderStatusChanged (seed 004), which earlier reducers skipped.
   * v5: per-status counts of 1- and 2-character substrings (order_search_grams) for short searches.
   * v6: customer name (searched too, and in the grams), payment and fulfilment facets.
   * v7: gram counts kept per status, payment and fulfilment status (a short search's facet counts were scans).
   * v8: the empty gram, every row's, so the unsearched list's facet counts are sums too.
   * v9: rows no longer keep the folded state (a cache miss refolds the order's stream).
   * The reducers' version is part of it: rows are derived from folded states, so a changed fold rebuilds them.
   */
  readonly version = 9 * 100 + REDUCER_VERSION;

  tables(prefix: string): TableDef[] {
    return orderListTables(prefix);
  }

  /** The statements over each context's tables, built once per context (the SQL texts are long: building and hashing them per order was a tenth of a rebuild). */
  private readonly statements = new WeakMap<ApplyContext, ReturnType<OrderListProjection['prepare']>>();

  private sql(ctx: ApplyContext) {
    let s = this.statements.get(ctx);
    if (!s) {
      s = this.prepare(ctx);
      this.statements.set(ctx, s);
    }
    return s;
  }

  private prepare(ctx: ApplyContext) {
    const list = `"${ctx.prefix}order_list"`;
    const daily = `"${ctx.prefix}order_daily_totals"`;
    const grams = `"${ctx.prefix}order_search_grams"`;
    return {
      bumpGram: ctx.stmt(
        `INSERT INTO ${grams} (gram, status, payment_status, fulfilment_status, order_count) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (gram, status, payment_status, fulfilment_status) DO UPDATE SET order_count = order_count + excluded.order_count`,
      ),
      dropEmptyGram: ctx.stmt(
        `DELETE FROM ${grams} WHERE gram = ? AND status = ? AND payment_status = ? AND fulfilment_status = ? AND order_count = 0`,
      ),
      clearGrams: ctx.stmt(`DELETE FROM ${grams}`),
      get: ctx.stmt(`SELECT ${COLUMNS.join(', ')} FROM ${list} WHERE order_id = ?`),
      upsert: ctx.stmt(
        `INSERT INTO ${list} (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})
         ON CONFLICT (order_id) DO UPDATE SET ${COLUMNS.slice(1)
           .map((c) => `${c} = excluded.${c}`)
           .join(', ')}`,
      ),
      delete: ctx.stmt(`DELETE FROM ${list} WHERE order_id = ?`),
      bump: ctx.stmt(
        `INSERT INTO ${daily} (day, status, currency, order_count, total_amount) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (day, status, currency) DO UPDATE SET
           order_count = order_count + excluded.order_count, total_amount = total_amount + excluded.total_amount`,
      ),
      dropEmpty: ctx.stmt(`DELETE FROM ${daily} WHERE day = ? AND status = ? AND currency = ? AND order_count = 0`),
      pendingIds: ctx.stmt(`SELECT order_id FROM ${list} WHERE pending_count > 0 OR sync <> 'synced'`).pluck(),
      clearList: ctx.stmt(`DELETE FROM ${list}`),
      // In gramBucket's and GramRow's shapes: three strings a row, no object. All rows, or those
      // but (`except`) or of (`only`) a JSON array of order ids.
      gramRows: ctx.stmt(`SELECT ${GRAM_ROW} FROM ${list}`).raw(true) as Database.Statement<[], GramRow>,
      gramRowsExcept: ctx.stmt(`SELECT ${GRAM_ROW} FROM ${list} WHERE order_id NOT IN (SELECT value FROM json_each(?))`).raw(true) as Database.Statement<[string], GramRow>,
      gramRowsOnly: ctx.stmt(`SELECT ${GRAM_ROW} FROM ${list} WHERE order_id IN (SELECT value FROM json_each(?))`).raw(true) as Database.Statement<[string], GramRow>,
      // The buckets addBucket keeps (created_at's first ten characters are the day), likewise.
      fillDaily: ctx.stmt(`INSERT INTO ${daily} (day, status, currency, order_count, total_amount) ${DAILY_ROWS} FROM ${list} GROUP BY 1, 2, 3`),
      dailyExcept: ctx
        .stmt(`${DAILY_ROWS} FROM ${list} WHERE order_id NOT IN (SELECT value FROM json_each(?)) GROUP BY 1, 2, 3`)
        .raw(true) as Database.Statement<[string], DailyRow>,
      dailyOnly: ctx
        .stmt(`${DAILY_ROWS} FROM ${list} WHERE order_id IN (SELECT value FROM json_each(?)) GROUP BY 1, 2, 3`)
        .raw(true) as Database.Statement<[string], DailyRow>,
      clearDaily: ctx.stmt(`DELETE FROM ${daily}`),
      // The store's own readers of these tables (reads only, but for a live refold's snapshot).
      evicted: new EvictedStreams(ctx.db),
      snapshots: new SnapshotStore<OrderState>(ctx.db, REDUCER_VERSION),
      stream: ctx.stmt(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE stream_id = ? AND stream_version > ? AND stream_version <= ? ORDER BY stream_version`,
      ) as Database.Statement<[string, number, number], EventRow>,
    };
  }

  private load(ctx: ApplyContext, orderId: string): Entry {
    const cached = ctx.cache.get(orderId) as Entry | undefined;
    if (cached) return { ...cached };
    const row = this.sql(ctx).get.get(orderId) as OrderListRow | undefined;
    if (!row) {
      // A closed order whose old events this device dropped (bounded history): later events fold onto its kept state.
      const kept = this.sql(ctx).evicted.get(orderId);
      return { confirmed: kept ? (kept.state as OrderState) : null, lastEventId: '', row: null };
    }
    return { confirmed: row.confirmed_version > 0 ? this.refold(ctx, orderId, row.confirmed_version) : null, lastEventId: row.last_event_id, row };
  }

  /**
   * The confirmed state folded to `version`, as the row's fold left it: the order's events in
   * the log up to it, folded onto the newest base at or below it (the state kept when its old
   * events were dropped, or a snapshot of this reducer), else onto a fresh state. A private,
   * unfrozen copy (`apply` folds onto it in place).
   */
  private refold(ctx: ApplyContext, orderId: string, version: number): OrderState {
    const sql = this.sql(ctx);
    const snapshot = sql.snapshots.latest(orderId, version);
    let base = snapshot ? { version: snapshot.streamVersion, state: snapshot.state } : null;
    const kept = sql.evicted.get(orderId);
    if (kept && kept.version <= version && kept.version > (base?.version ?? 0)) base = { version: kept.version, state: kept.state as OrderState };
    const events = sql.stream.all(orderId, base?.version ?? 0, version).map((r) => {
      const e = upcastEvent(rowToEvent(r));
      return { type: e.eventType, data: e.data, version: e.streamVersion, recordedAt: e.recordedAt };
    });
    // Both bases are parsed afresh for each read: the fold may change them in place.
    const state = foldOrderInPlace(base?.state ?? freshState(), events);
    // A long stream is not refolded from its start again at the next miss (a command's load keeps
    // snapshots the same way; an order only ever pulled had none). Not in a rebuild's shadow: its
    // worker's connection is read-only, and the rebuild reads each order's events once anyway.
    if (!ctx.bulk && events.length >= REFOLD_SNAPSHOT_EVERY) sql.snapshots.save(orderId, version, state);
    return state;
  }

  /** Write the new effective rows and move orders between daily buckets. */
  private flush(ctx: ApplyContext, touched: Map<string, Entry>): void {
    const sql = this.sql(ctx);
    const deltas = new Map<string, Bucket>();
    const gramDeltas = new Map<string, number>();
    const pending = ctx.pending;
    for (const [orderId, entry] of touched) {
      const next = effectiveRow(orderId, entry.confirmed, entry.lastEventId, pending);
      const prev = entry.row;
      // A rebuild's shadow derives both aggregates from its final rows instead (finishBulk).
      if (!ctx.bulk) {
        if (prev) addBucket(deltas, prev, -1);
        if (next) addBucket(deltas, next, 1);
        // Most events leave ids, name and the three statuses alone: no gram moves.
        if (
          !prev ||
          !next ||
          prev.status !== next.status ||
          prev.payment_status !== next.payment_status ||
          prev.fulfilment_status !== next.fulfilment_status ||
          prev.customer_id !== next.customer_id ||
          prev.customer_name !== next.customer_name
        ) {
          if (prev) addGrams(gramDeltas, prev, -1);
          if (next) addGrams(gramDeltas, next, 1);
        }
      }
      ctx.changed?.add(orderId);
      if (next) {
        // Positional, in COLUMNS order: binding by name looked up each key in the object.
        sql.upsert.run(
          next.order_id,
          next.customer_id,
          next.customer_name,
          next.status,
          next.payment_status,
          next.fulfilment_status,
          next.total,
          next.currency,
          next.item_count,
          next.paid_amount,
          next.created_at,
          next.updated_at,
          next.last_event_id,
          next.version,
          next.confirmed_version,
          next.sync,
          next.pending_count,
        );
      } else if (prev) {
        sql.delete.run(orderId);
      }
      ctx.cache.set(orderId, { confirmed: entry.confirmed, lastEventId: entry.lastEventId, row: next } satisfies Entry);
    }
    for (const b of deltas.values()) {
      if (b.count === 0 && b.amount === 0) continue;
      sql.bump.run(b.day, b.status, b.currency, b.count, b.amount);
      if (b.count < 0) sql.dropEmpty.run(b.day, b.status, b.currency);
    }
    for (const [key, n] of gramDeltas) {
      if (n === 0) continue;
      const [gram, status, payment, fulfilment] = key.split('\u0000') as [string, string, string, string];
      sql.bumpGram.run(gram, status, payment, fulfilment, n);
      if (n < 0) sql.dropEmptyGram.run(gram, status, payment, fulfilment);
    }
  }

  apply(ctx: ApplyContext, events: readonly StoredEvent[]): void {
    // Each order is loaded at its first event of the batch and its events are folded into that
    // state as they come (in log order, so each order's own order), then written once.
    const touched = new Map<string, Entry>();
    for (const e of events) {
      if (e.streamType !== ORDER_STREAM_TYPE) continue;
      let entry = touched.get(e.streamId);
      if (!entry) {
        entry = this.load(ctx, e.streamId);
        // The confirmed state is this projection's private, unfrozen copy (refolded from the log,
        // or cached after a write), so the reducers mutate it in place. If the transaction fails,
        // the runner drops the cache, so a half-applied copy is never reused.
        entry.confirmed ??= freshState();
        touched.set(e.streamId, entry);
      }
      applyOrderEventInPlace(entry.confirmed!, e.eventType, e.data, e.streamVersion, e.recordedAt);
      entry.lastEventId = e.eventId;
    }
    this.flush(ctx, touched);
  }

  refresh(ctx: ApplyContext, orderIds: readonly string[]): void {
    const touched = new Map<string, Entry>();
    for (const id of orderIds) if (!touched.has(id)) touched.set(id, this.load(ctx, id));
    this.flush(ctx, touched);
  }

  /**
   * The daily totals and gram counts of a shadow, from its final rows in one pass: the sums the
   * inline diffs maintain (every row counted once in its bucket and under each of its grams;
   * empty buckets and grams dropped), computed by the same helpers, without a diff per write.
   */
  finishBulk(ctx: ApplyContext, summary?: BulkSummary): void {
    const sql = this.sql(ctx);
    sql.clearDaily.run();
    sql.clearGrams.run();
    if (!summary) {
      sql.fillDaily.run();
      this.bumpGrams(sql, countGramRows(sql.gramRows.all()));
      return;
    }
    // The summary of the other rows, then the changed rows as they are now: both bumps add up.
    const of = summary.of as OrderListSummary;
    const changed = JSON.stringify(summary.changed);
    for (const d of [...of.daily, ...sql.dailyOnly.all(changed)]) sql.bump.run(...d);
    this.bumpGrams(sql, of.grams);
    this.bumpGrams(sql, countGramRows(sql.gramRowsOnly.all(changed)));
  }

  summarizeBulk(ctx: ApplyContext, changed: readonly string[]): OrderListSummary {
    const sql = this.sql(ctx);
    const except = JSON.stringify(changed);
    return { daily: sql.dailyExcept.all(except), grams: countGramRows(sql.gramRowsExcept.all(except)) };
  }

  private bumpGrams(sql: ReturnType<OrderListProjection['prepare']>, counts: Map<string, Map<string, number>>): void {
    for (const [bucket, grams] of counts) {
      const [status, payment, fulfilment] = bucket.split('\u0000') as [string, string, string];
      for (const [gram, n] of grams) sql.bumpGram.run(gram, status, payment, fulfilment, n);
    }
  }

  pendingKeys(ctx: ApplyContext): string[] {
    return this.sql(ctx).pendingIds.all() as string[];
  }

  reset(ctx: ApplyContext): void {
    const sql = this.sql(ctx);
    sql.clearList.run();
    sql.clearDaily.run();
    sql.clearGrams.run();
    ctx.cache.clear();
  }
}

export function orderListProjection(): Projection {
  return new OrderListProjection();
}
