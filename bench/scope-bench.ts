/**
 * Scoped sync and bounded device history (issue 16).
 *
 * 1. Time to usable: a new device against a server holding N events (default 1M; 10 per order,
 *    100 customers), until its first order-list page answers: a full pull of the tenant, next to a
 *    device scoped to one customer (1 % of the events), in the same run against the same server
 *    (its own process). The ratio is the figure to compare across machines and loads.
 * 2. Device file size after a year of simulated work (orders every day, most of them shipped and
 *    paid or cancelled within days), with and without a 30-day retention of closed orders.
 *
 *   npx tsx bench/scope-bench.ts [events] [ordersPerDay]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { v7 as uuidv7 } from 'uuid';
import { defaultProjections, OrderQueries, ProjectionRunner } from '../src/projections/index.js';
import type { AppendCommand } from '../src/server/repository.js';
import { SqliteRepository } from '../src/server/index.js';
import { READ_MODEL_VERSION } from '../src/server/store/append-logic.js';
import { openLocalStore, type LocalStore } from '../src/store/local-store.js';
import { createPendingSource } from '../src/sync/pending-source.js';
import { Outbox } from '../src/sync/outbox.js';
import { evictClosedOrders } from '../src/sync/retention.js';
import { SyncEngine } from '../src/sync/sync-engine.js';
import { SyncHttpClient } from '../src/sync/http-client.js';
import type { SyncScope } from '../src/protocol/sync-api.js';
import { startServerProcess } from './server-process.js';

const TOKEN = 'bench-scope-token-0123456789';
const TENANT = 'bench';
const CUSTOMERS = 100;
const EVENTS_PER_ORDER = 10;

export interface UsableRun {
  scope: string;
  events: number;
  orders: number;
  ms: number;
  fileMiB: number;
}

export interface ScopeBenchResult {
  load_avg: number[];
  server_events: number;
  build_ms: number;
  full: UsableRun;
  scoped: UsableRun;
  /** Full pull time ÷ scoped pull time (higher is better). */
  speedup: number;
  year: YearResult;
}

export interface YearResult {
  days: number;
  orders: number;
  events: number;
  retention_days: number;
  keep_all_mib: number;
  retention_mib: number;
  /** Pages in use (the file reuses freed pages rather than shrinking). */
  retention_used_mib: number;
  evicted_orders: number;
  /** File size with retention ÷ without. */
  ratio: number;
  /** Where the bytes are (MiB per table and its indexes), without and with retention. */
  tables_keep_all: Record<string, number>;
  tables_retention: Record<string, number>;
}

/** MiB per table, its indexes counted with it (dbstat), largest first, the rest summed. */
function tableSizes(db: LocalStore['db']): Record<string, number> {
  const rows = db
    .prepare(
      `SELECT coalesce(m.tbl_name, s.name) AS t, sum(s.pgsize) AS bytes FROM dbstat s LEFT JOIN sqlite_schema m ON m.name = s.name
       GROUP BY t ORDER BY bytes DESC`,
    )
    .all() as { t: string; bytes: number }[];
  const out: Record<string, number> = {};
  let rest = 0;
  rows.forEach((r, i) => (i < 6 ? (out[r.t] = mib(r.bytes)) : (rest += r.bytes)));
  out['(other)'] = mib(rest);
  return out;
}

const ev = (eventType: string, data: Record<string, unknown>, schemaVersion = 1) => ({ eventId: uuidv7(), eventType, schemaVersion, data, metadata: {} });

function orderEvents(orderId: string, customerId: string, n: number) {
  const out = [ev('OrderCreated', { orderId, customerId, items: [{ sku: 'sku-1', quantity: 1, unitPrice: 100 * n }], total: 100 * n, currency: 'USD' }, 2)];
  for (let p = 1; p < n; p++) out.push(ev('PaymentReceived', { paymentId: `pay-${p}`, amount: 100 }));
  return out;
}

/** The server's log, written through its own append path (hash chain, read model) in push-sized batches. */
async function buildServer(file: string, events: number): Promise<number> {
  const repo = new SqliteRepository(file);
  try {
    const orders = Math.ceil(events / EVENTS_PER_ORDER);
    for (let o = 0; o < orders; o += 500) {
      const cmds: AppendCommand[] = [];
      for (let i = o; i < Math.min(o + 500, orders); i++) {
        const n = Math.min(EVENTS_PER_ORDER, events - i * EVENTS_PER_ORDER);
        cmds.push({ tenantId: TENANT, streamId: `ord-${i}`, streamType: 'Order', expectedVersion: 'no_stream', events: orderEvents(`ord-${i}`, `cust-${i % CUSTOMERS}`, n) });
      }
      const outcomes = await repo.appendAll(cmds);
      if (outcomes.some((x) => x.status !== 'ok')) throw new Error('bench server build: an append was refused');
    }
    // Record the fold that built the read model, as a started server does: otherwise the server's start replays the whole log.
    await repo.ensureReadModel(READ_MODEL_VERSION);
    return orders;
  } finally {
    await repo.close();
  }
}

/** A device as the app opens one (store, projections with the outbox overlay, sync engine). */
async function openBenchDevice(file: string, url: string) {
  const store = openLocalStore(file);
  const runner = new ProjectionRunner(store.log, defaultProjections());
  const outbox = new Outbox(store, { deviceId: `bench-${uuidv7()}`, onOrdersChanged: (ids) => runner.refreshOrders(ids) });
  runner.setPendingSource(createPendingSource(outbox));
  await runner.open();
  const engine = new SyncEngine({ store, outbox, client: new SyncHttpClient({ baseUrl: url, token: TOKEN, timeoutMs: 300_000 }), pullLimit: 5000 });
  return { store, runner, outbox, engine, queries: new OrderQueries(store.db) };
}

async function timeToUsable(dir: string, url: string, scope: SyncScope, label: string): Promise<UsableRun> {
  const file = join(dir, `${label}.db`);
  const d = await openBenchDevice(file, url);
  try {
    const t0 = performance.now();
    d.engine.setScope(scope);
    const report = await d.engine.pull();
    const page = await d.queries.listOrders({ limit: 50 });
    const ms = performance.now() - t0;
    if (page.rows.length === 0) throw new Error(`${label}: the first list page is empty`);
    const orders = d.store.db.prepare('SELECT count(*) FROM order_list').pluck().get() as number;
    return { scope: label, events: report.pulledEvents, orders, ms: Math.round(ms), fileMiB: mib(statSync(file).size) };
  } finally {
    d.store.close();
  }
}

const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

/**
 * A year of one device's work, written into its confirmed log as pulled events would be (with
 * their recording days): each day `ordersPerDay` new orders; after a few days 80 % are paid,
 * reserved and shipped, 10 % cancelled, 10 % stay open. With retention, the daily sync's pass
 * drops closed orders older than the window.
 */
async function simulateYear(dir: string, opts: { ordersPerDay: number; days: number; retentionDays: number | null }): Promise<{ file: string; events: number; orders: number; evicted: number; store: LocalStore; close: () => void }> {
  const file = join(dir, `year-${opts.retentionDays ?? 'all'}.db`);
  const store = openLocalStore(file);
  const runner = new ProjectionRunner(store.log, defaultProjections());
  const outbox = new Outbox(store, { deviceId: 'bench-year' });
  runner.setPendingSource(createPendingSource(outbox));
  await runner.open();
  const start = Date.UTC(2025, 0, 1);
  let events = 0;
  let evicted = 0;
  let seq = 0;
  const append = (orderId: string, version: number, list: ReturnType<typeof ev>[], at: string) => {
    store.log.append(orderId, list, { expectedVersion: version === 0 ? 'no_stream' : version, recordedAt: at });
    events += list.length;
  };
  for (let day = 0; day < opts.days; day++) {
    const at = new Date(start + day * 86_400_000 + 3_600_000).toISOString();
    store.db.transaction(() => {
      for (let i = 0; i < opts.ordersPerDay; i++) {
        const n = seq++;
        append(`y-${n}`, 0, [ev('OrderCreated', { orderId: `y-${n}`, customerId: `cust-${n % CUSTOMERS}`, items: [{ sku: 'sku-1', quantity: 2, unitPrice: 1500 }], total: 3000, currency: 'USD' }, 2)], at);
      }
      // Orders from three days ago move on: paid, reserved and shipped; or cancelled; or left open.
      if (day >= 3) {
        for (let i = 0; i < opts.ordersPerDay; i++) {
          const n = (day - 3) * opts.ordersPerDay + i;
          const kind = n % 10;
          if (kind < 8) {
            append(`y-${n}`, 1, [
              ev('PaymentReceived', { paymentId: `p-${n}`, amount: 3000 }),
              ev('InventoryReserved', { reservationId: `r-${n}` }),
              ev('OrderShipped', { shipmentId: `s-${n}`, shippedAt: at }),
            ], at);
          } else if (kind === 8) {
            append(`y-${n}`, 1, [ev('OrderCancelled', { reason: 'customer changed their mind', cancelledAt: at })], at);
          }
        }
      }
    })();
    if (opts.retentionDays !== null) {
      evicted += evictClosedOrders(store, outbox.repo, outbox.quarantine, { retentionDays: opts.retentionDays, now: new Date(start + (day + 1) * 86_400_000) }).evictedOrders;
    }
  }
  store.db.pragma('wal_checkpoint(TRUNCATE)');
  return { file, events, orders: seq, evicted, store, close: () => store.close() };
}

export async function benchScope(opts: { events?: number; ordersPerDay?: number; days?: number } = {}): Promise<ScopeBenchResult> {
  const events = opts.events ?? 1_000_000;
  const dir = mkdtempSync(join(os.tmpdir(), 'scope-bench-'));
  try {
    const t0 = performance.now();
    await buildServer(join(dir, 'server.db'), events);
    const buildMs = performance.now() - t0;
    const server = await startServerProcess({ dbFile: join(dir, 'server.db'), tokens: [{ token: TOKEN, tenant: TENANT, user: 'bench', roles: ['device'] }] });
    let full: UsableRun;
    let scoped: UsableRun;
    try {
      // Scoped first: the full pull must not warm the server's page cache for it.
      scoped = await timeToUsable(dir, server.url, { mode: 'scoped', customers: ['cust-7'], recentDays: null, streams: [] }, 'one customer (1 %)');
      full = await timeToUsable(dir, server.url, { mode: 'all' }, 'everything');
    } finally {
      await server.close();
    }

    const ordersPerDay = opts.ordersPerDay ?? 100;
    const days = opts.days ?? 365;
    const keep = await simulateYear(dir, { ordersPerDay, days, retentionDays: null });
    const keepSize = statSync(keep.file).size;
    const keepTables = tableSizes(keep.store.db);
    keep.close();
    const bounded = await simulateYear(dir, { ordersPerDay, days, retentionDays: 30 });
    const boundedSize = statSync(bounded.file).size;
    const pageSize = bounded.store.db.pragma('page_size', { simple: true }) as number;
    const boundedTables = tableSizes(bounded.store.db);
    const used = ((bounded.store.db.pragma('page_count', { simple: true }) as number) - (bounded.store.db.pragma('freelist_count', { simple: true }) as number)) * pageSize;
    bounded.close();
    return {
      load_avg: os.loadavg().map((x) => Math.round(x * 100) / 100),
      server_events: events,
      build_ms: Math.round(buildMs),
      full,
      scoped,
      speedup: Math.round((full.ms / scoped.ms) * 10) / 10,
      year: {
        days,
        orders: keep.orders,
        events: keep.events,
        retention_days: 30,
        keep_all_mib: mib(keepSize),
        retention_mib: mib(boundedSize),
        retention_used_mib: mib(used),
        evicted_orders: bounded.evicted,
        ratio: Math.round((boundedSize / keepSize) * 1000) / 1000,
        tables_keep_all: keepTables,
        tables_retention: boundedTables,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printScope(r: ScopeBenchResult): void {
  console.log(`scoped sync: server holds ${r.server_events.toLocaleString()} events (built in ${(r.build_ms / 1000).toFixed(1)} s), load ${r.load_avg.join(' ')}`);
  console.table([r.scoped, r.full]);
  console.log(`  time to usable, scoped to 1 %: ${r.speedup}× faster than the full pull`);
  const y = r.year;
  console.table([{ keep: 'everything', ...r.year.tables_keep_all }, { keep: `${r.year.retention_days}-day retention`, ...r.year.tables_retention }]);
  console.log(`a year of work (${y.orders.toLocaleString()} orders, ${y.events.toLocaleString()} events): ${y.keep_all_mib} MiB keeping everything, ${y.retention_mib} MiB with ${y.retention_days}-day retention (${y.retention_used_mib} MiB in use; ${y.evicted_orders.toLocaleString()} closed orders without local history), ratio ${y.ratio}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const events = Number(process.argv[2] ?? 1_000_000);
  const ordersPerDay = Number(process.argv[3] ?? 100);
  printScope(await benchScope({ events, ordersPerDay }));
}
