/**
 * The two device paths users feel:
 * - boot: open a device whose log holds N events (projections caught up, as after a normal
 *   shutdown) and P pending commands, until the first list page is ready. Raw anchor: open the
 *   same SQLite file with better-sqlite3 and read the same page straight from order_list.
 * - first sync: a server holding N events (SQLite, its own process). A device pulls every page
 *   until its order list is usable (raw anchor: the same pages fetched and parsed by the same
 *   HTTP client, nothing stored), then writes the tenant's bootstrap as the builder does; a new
 *   device (Device.open) takes it in and pulls the rest until its first list page (raw anchor:
 *   the file downloaded and checked by the same client, nothing taken in).
 * Load average beside every run; same-run ratios are the figures to trust.
 *   npx tsx bench/device-bench.ts boot [events] [pending]
 *   npx tsx bench/device-bench.ts firstsync [events] [inline]   (inline: projections per page, as before issue 17's deferral)
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { v7 as uuidv7 } from 'uuid';
import { Device, deferrableViews } from '../src/app/device.js';
import { publishBootstrap } from '../src/app/device-bootstrap.js';
import { defaultProjections, OrderQueries, ProjectionRunner } from '../src/projections/index.js';
import type { NewEvent } from '../src/protocol/envelope.js';
import type { AppendCommand } from '../src/server/repository.js';
import { SqliteRepository } from '../src/server/store/sqlite/sqlite-repository.js';
import { openLocalStore } from '../src/store/index.js';
import { SyncHttpClient } from '../src/sync/http-client.js';
import { Outbox } from '../src/sync/outbox.js';
import { createPendingSource } from '../src/sync/pending-source.js';
import { SyncEngine, type SyncReport } from '../src/sync/sync-engine.js';
import { generateForBench } from './projections-bench.js';
import { startServerProcess } from './server-process.js';

const load = () => os.loadavg().map((x) => Math.round(x * 100) / 100);
const FIRST_PAGE = { status: 'ALL', sort: 'updatedAt', direction: 'desc', limit: 50, offset: 0 } as const;

export interface BootResult {
  events: number;
  pending_commands: number;
  boot_ms: number;
  raw_first_page_ms: number;
  first_page_rows: number;
  load_avg: number[];
}

/** Boot: median of `runs` opens of the same device directory. */
export async function benchBoot(opts: { events: number; pending: number; runs?: number }): Promise<BootResult> {
  const dir = mkdtempSync(join(tmpdir(), 'boot-bench-'));
  try {
    // The log (orders of ~10 events) and its projections, as a device that was shut down cleanly.
    const store = openLocalStore(join(dir, 'device.sqlite'));
    generateForBench(store.db, opts.events, Math.max(1, Math.round(opts.events / 10)));
    const runner = new ProjectionRunner(store.log, defaultProjections());
    await runner.open();
    // Pending commands (not pushed yet): orders taken offline, each with payments, 10 commands an order.
    const outbox = new Outbox(store, { deviceId: 'boot-bench', onOrdersChanged: (ids) => runner.refreshOrders(ids) });
    runner.setPendingSource(createPendingSource(outbox));
    const submit = store.db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const orderId = `OFF-${Math.floor(i / 10)}`;
        const r =
          i % 10 === 0
            ? outbox.submit({ type: 'CreateOrder', orderId, customerId: `CUST-${i % 997}`, items: [{ sku: 'SKU-1', quantity: 1, unitPrice: 1000 }], currency: 'USD' }, { userId: 'bench' })
            : outbox.submit({ type: 'RecordPayment', orderId, paymentId: `pay-${i}`, amount: 100 }, { userId: 'bench' });
        if (!r.ok) throw new Error(`offline command refused: ${JSON.stringify(r).slice(0, 200)}`);
      }
    });
    for (let i = 0; i < opts.pending; i += 1000) submit.immediate(i, Math.min(opts.pending, i + 1000));
    runner.close();
    store.close();

    const boots: number[] = [];
    const raws: number[] = [];
    let rows = 0;
    for (let r = 0; r < (opts.runs ?? 5); r++) {
      let t = performance.now();
      const raw = new Database(join(dir, 'device.sqlite'), { readonly: true });
      raw.prepare('SELECT order_id, customer_id, status, total, currency, updated_at, sync FROM order_list ORDER BY updated_at DESC, order_id DESC LIMIT 50').all();
      raws.push(performance.now() - t);
      raw.close();

      t = performance.now();
      const device = await Device.open({ dataDir: dir, autoSync: false });
      const page = device.queries.listOrdersNow(FIRST_PAGE);
      boots.push(performance.now() - t);
      rows = page.rows.length;
      await device.close();
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    return {
      events: opts.events,
      pending_commands: opts.pending,
      boot_ms: Math.round(median(boots) * 10) / 10,
      raw_first_page_ms: Math.round(median(raws) * 100) / 100,
      first_page_rows: rows,
      load_avg: load(),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The first sync by pulling every page (a device that holds something, or a server without a bootstrap). */
export interface PullFirstSync {
  first_sync_ms: number;
  first_sync_events_per_s: number;
  /** first sync ÷ fetch only (same run). */
  ratio_vs_fetch: number;
  /**
   * Where the time went (ms, device process): waiting for pages (server + wire + the client's
   * parse, beyond what overlapped with storing), storing pages (the page transactions),
   * building the views at the end.
   */
  breakdown: { wait_pages_ms: number; store_pages_ms: number; build_views_ms: number };
  /**
   * CPU time per event (µs): the device process (all its threads) and the server process. Their
   * sum against 2 × the wall time per event says how busy the cores were.
   */
  cpu_us_per_event: { device: number; server: number; wall: number };
  pull_requests: number;
}

export interface FirstSyncResult {
  events: number;
  orders: number;
  seed_ms: number;
  /** Raw anchor of the pull: every page fetched and parsed by the same client, nothing stored. */
  fetch_only_events_per_s: number;
  /** A new device (Device.open) until its first list page: the bootstrap taken in, then the rest pulled. */
  first_sync_ms: number;
  first_sync_events_per_s: number;
  /** first sync ÷ the bootstrap's download alone (same run). */
  ratio_vs_download: number;
  bootstrap: {
    bytes: number;
    /** Writing the bootstrap from a device that holds everything (the builder's step after its sync). */
    publish_ms: number;
    /** Raw anchor: the file downloaded and checked by the same client, nothing taken in. */
    download_only_ms: number;
    /** Device and server CPU per event of the bootstrap first sync (µs). */
    cpu_us_per_event: { device: number; server: number; wall: number };
  };
  pull: PullFirstSync;
  /** A field device that took orders offline before its first sync: from its first sync to its first list page (it takes the bootstrap, then pushes them). */
  offline_first: { offline_orders: number; first_sync_ms: number; first_sync_events_per_s: number; bootstrap_used: number; pushed_events: number };
  load_avg: number[];
}

const TOKEN = 'bench-token-0123456789';
const TENANT = 'bench';

/** Fill the server's file in-process (not timed as sync): orders of 10 events, 500 orders a commit. */
export async function seedServerForBench(file: string, events: number): Promise<number> {
  const repo = new SqliteRepository(file);
  const metadata = { userId: 'bench', deviceId: 'seeder', source: 'bench', tenantId: TENANT };
  const orders = Math.ceil(events / 10);
  let written = 0;
  try {
    for (let o = 0; o < orders; o += 500) {
      const cmds: AppendCommand[] = [];
      for (let k = o; k < Math.min(orders, o + 500) && written < events; k++) {
        const orderId = `ORD-${String(k).padStart(7, '0')}`;
        const n = Math.min(10, events - written);
        const evs: NewEvent[] = [
          {
            eventId: uuidv7(),
            eventType: 'OrderCreated',
            schemaVersion: 2,
            data: { orderId, customerId: `CUST-${k % 5000}`, items: [{ sku: 'SKU-1', quantity: 1, unitPrice: 900 }], total: 900, currency: 'USD' },
            metadata,
          },
          ...Array.from({ length: n - 1 }, (_, p) => ({ eventId: uuidv7(), eventType: 'PaymentReceived', schemaVersion: 1, data: { paymentId: `P-${p}`, amount: 100 }, metadata })),
        ];
        written += n;
        cmds.push({ tenantId: TENANT, streamId: orderId, streamType: 'Order', expectedVersion: 'no_stream', events: evs });
      }
      const outcomes = await repo.appendAll(cmds);
      const bad = outcomes.find((x) => x.status !== 'ok');
      if (bad) throw new Error(`seeding failed: ${JSON.stringify(bad).slice(0, 300)}`);
    }
  } finally {
    await repo.close();
  }
  return orders;
}

export async function benchFirstSync(opts: { events: number; pullLimit?: number; inline?: boolean }): Promise<FirstSyncResult> {
  const dir = mkdtempSync(join(tmpdir(), 'firstsync-bench-'));
  let t = performance.now();
  const orders = await seedServerForBench(join(dir, 'server.db'), opts.events);
  const seedMs = performance.now() - t;
  const bootstrapDir = join(dir, 'bootstrap');
  const server = await startServerProcess({
    dbFile: join(dir, 'server.db'),
    tokens: [{ token: TOKEN, tenant: TENANT, user: 'bench', roles: ['device'] }],
    env: { ORDERLOG_BOOTSTRAP_DIR: bootstrapDir },
  });
  try {
    let pullRequests = 0;
    const client = () => new SyncHttpClient({ baseUrl: server.url, token: TOKEN, timeoutMs: 120_000 });
    const limit = opts.pullLimit ?? 5000;

    // Raw anchor: every page through the same client, parsed and dropped.
    const anchor = client();
    t = performance.now();
    let fetched = 0;
    for (let after = 0; ; ) {
      const page = await anchor.pull({ after, limit });
      fetched += page.events.length;
      after = page.nextPosition;
      if (!page.hasMore || page.events.length === 0) break;
    }
    const fetchMs = performance.now() - t;
    if (fetched !== opts.events) throw new Error(`fetch-only anchor read ${fetched}/${opts.events}`);

    // A new device, wired as Device.open wires it: projections open, then the engine pulls.
    const deviceCpu = process.cpuUsage();
    const serverCpu = server.cpuMs();
    t = performance.now();
    const store = openLocalStore(join(dir, 'device.sqlite'));
    const runner = new ProjectionRunner(store.log, defaultProjections());
    const outbox = new Outbox(store, { deviceId: 'new-device', onOrdersChanged: (ids) => runner.refreshOrders(ids) });
    runner.setPendingSource(createPendingSource(outbox));
    await runner.open();
    const counted = client();
    const pull = counted.pull.bind(counted);
    counted.pull = (q) => {
      pullRequests++;
      return pull(q);
    };
    // Spans: the views' build at the end, the page transactions (waiting for pages is the rest).
    let buildMs = 0;
    let storeMs = 0;
    const views = deferrableViews(store, runner);
    const timedViews = {
      defer: () => {
        const finish = views.defer();
        return async () => {
          const b = performance.now();
          try {
            await finish();
          } finally {
            buildMs += performance.now() - b;
          }
        };
      },
    };
    const engine = new SyncEngine({ store, outbox, client: counted, pullLimit: limit, ...(opts.inline ? {} : { views: timedViews }) });
    // The page transactions (the engine's private step, timed from outside).
    const inner = engine as unknown as { applyPage: (...a: unknown[]) => void };
    const applyPage = inner.applyPage.bind(engine);
    inner.applyPage = (...a: unknown[]) => {
      const s = performance.now();
      try {
        applyPage(...a);
      } finally {
        storeMs += performance.now() - s;
      }
    };
    const pullStart = performance.now();
    const report = await engine.pull();
    const pullMs = performance.now() - pullStart;
    const b = performance.now();
    runner.catchUp();
    buildMs += performance.now() - b;
    const page = new OrderQueries(store.db).listOrdersNow(FIRST_PAGE);
    const syncMs = performance.now() - t;
    const deviceCpuUs = process.cpuUsage(deviceCpu);
    const serverCpuMs = server.cpuMs() - serverCpu;
    const listed = store.db.prepare('SELECT COUNT(*) FROM order_list').pluck().get() as number;
    if (report.pulledEvents !== opts.events || listed !== orders || page.rows.length === 0) {
      throw new Error(`first sync incomplete: ${report.pulledEvents}/${opts.events} events, ${listed}/${orders} orders listed`);
    }
    const fetchRate = opts.events / (fetchMs / 1000);
    const syncRate = opts.events / (syncMs / 1000);
    const perEvent = (cpuUs: number, wallMs: number, serverMs: number) => ({
      device: Math.round((cpuUs / opts.events) * 100) / 100,
      server: Math.round(((serverMs * 1000) / opts.events) * 100) / 100,
      wall: Math.round(((wallMs * 1000) / opts.events) * 100) / 100,
    });
    const pulled: PullFirstSync = {
      first_sync_ms: Math.round(syncMs),
      first_sync_events_per_s: Math.round(syncRate),
      ratio_vs_fetch: Math.round((syncRate / fetchRate) * 1000) / 1000,
      breakdown: {
        wait_pages_ms: Math.round(pullMs - storeMs - (opts.inline ? 0 : buildMs)),
        store_pages_ms: Math.round(storeMs),
        build_views_ms: Math.round(buildMs),
      },
      cpu_us_per_event: perEvent(deviceCpuUs.user + deviceCpuUs.system, syncMs, serverCpuMs),
      pull_requests: pullRequests,
    };

    // The bootstrap, as the builder writes it: this device holds everything the server has.
    t = performance.now();
    const manifest = await publishBootstrap({ store, engine, tenant: TENANT, dir: bootstrapDir });
    const publishMs = performance.now() - t;
    runner.close();
    store.close();

    // Raw anchor: the file downloaded and checked by the same client, nothing taken in.
    const downloaded = join(dir, 'download-only.sqlite');
    t = performance.now();
    await client().downloadBootstrap(manifest, downloaded);
    const downloadMs = performance.now() - t;
    rmSync(downloaded);

    // A new device as a user opens it: the bootstrap taken in, then the rest pulled, until its first list page.
    const bootCpu = process.cpuUsage();
    const bootServerCpu = server.cpuMs();
    t = performance.now();
    const device = await Device.open({ dataDir: join(dir, 'new-device'), serverUrl: server.url, token: TOKEN, autoSync: false });
    device.engine.setClient(client());
    const booted = await device.engine.syncOnce();
    const firstPage = device.queries.listOrdersNow(FIRST_PAGE);
    const bootMs = performance.now() - t;
    const bootCpuUs = process.cpuUsage(bootCpu);
    const bootServerMs = server.cpuMs() - bootServerCpu;
    const bootListed = device.store.db.prepare('SELECT COUNT(*) FROM order_list').pluck().get() as number;
    const head = device.store.log.headPosition();
    await device.close();
    if (!booted.bootstrap?.used || head !== opts.events || bootListed !== orders || firstPage.rows.length === 0) {
      throw new Error(`bootstrap first sync incomplete: ${JSON.stringify(booted.bootstrap)}, ${head}/${opts.events} events, ${bootListed}/${orders} orders listed`);
    }
    // A field device that took orders offline before it ever synced: it takes the bootstrap before
    // it pushes them (its outbox stays), then pulls the rest, its own orders included.
    const offlineOrders = opts.events >= 100_000 ? 100 : 10;
    const field = await Device.open({ dataDir: join(dir, 'field-device'), serverUrl: server.url, token: TOKEN, autoSync: false });
    let fieldReport: SyncReport;
    let fieldMs: number;
    let fieldHead: number;
    try {
      for (let i = 0; i < offlineOrders; i++) {
        const order = { type: 'CreateOrder' as const, orderId: `FIELD-${i}`, customerId: 'field-customer', items: [{ sku: 'sku-1', quantity: 1, unitPrice: 1000 }], currency: 'USD' };
        const submitted = field.outbox.submit(order, { userId: 'bench' });
        if (!submitted.ok) throw new Error(`offline order ${i} refused: ${JSON.stringify(submitted)}`);
      }
      field.engine.setClient(client());
      t = performance.now();
      fieldReport = await field.engine.syncOnce();
      const fieldPage = field.queries.listOrdersNow(FIRST_PAGE);
      fieldMs = performance.now() - t;
      fieldHead = field.store.log.headPosition();
      if (fieldPage.rows.length === 0) throw new Error('the field device lists no order after its first sync');
    } finally {
      await field.close();
    }
    if (fieldReport.pending !== 0 || fieldReport.pushedEvents !== offlineOrders || fieldHead !== opts.events + offlineOrders) {
      throw new Error(`offline-first sync incomplete: ${JSON.stringify(fieldReport.bootstrap)}, ${fieldReport.pending} pending, ${fieldHead}/${opts.events + offlineOrders} events`);
    }
    return {
      events: opts.events,
      orders,
      seed_ms: Math.round(seedMs),
      fetch_only_events_per_s: Math.round(fetchRate),
      first_sync_ms: Math.round(bootMs),
      first_sync_events_per_s: Math.round(opts.events / (bootMs / 1000)),
      ratio_vs_download: Math.round((downloadMs / bootMs) * 1000) / 1000,
      bootstrap: {
        bytes: manifest.bytes,
        publish_ms: Math.round(publishMs),
        download_only_ms: Math.round(downloadMs),
        cpu_us_per_event: perEvent(bootCpuUs.user + bootCpuUs.system, bootMs, bootServerMs),
      },
      pull: pulled,
      offline_first: {
        offline_orders: offlineOrders,
        first_sync_ms: Math.round(fieldMs),
        first_sync_events_per_s: Math.round((opts.events + offlineOrders) / (fieldMs / 1000)),
        bootstrap_used: fieldReport.bootstrap?.used ? 1 : 0,
        pushed_events: fieldReport.pushedEvents,
      },
      load_avg: load(),
    };
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [what, a, b] = process.argv.slice(2);
  const start = load();
  const r =
    what === 'boot'
      ? await benchBoot({ events: Number(a ?? 1_000_000), pending: Number(b ?? 100_000) })
      : await benchFirstSync({ events: Number(a ?? 1_000_000), inline: b === 'inline' });
  console.log({ load_avg_at_start: start, ...r });
}
