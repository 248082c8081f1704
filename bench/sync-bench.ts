/**
 * Sync throughput over loopback against the SQLite server (in its own process): N events pushed by one device
 * (POST /sync/push batches, acknowledged into its confirmed log) and pulled by a fresh device
 * (GET /sync/events pages, inserted with the checkpoint).
 *   npx tsx bench/sync-bench.ts [events] [eventsPerOrder]   (defaults 100000 and 10; target: push ≤ 10 s)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openLocalStore } from '../src/store/local-store.js';
import { Outbox } from '../src/sync/outbox.js';
import { SyncEngine } from '../src/sync/sync-engine.js';
import { SyncHttpClient } from '../src/sync/http-client.js';
import { startServerProcess } from './server-process.js';

export interface SyncBenchResult {
  events: number;
  orders: number;
  setupMs: number;
  pushMs: number;
  pushEventsPerSec: number;
  pullMs: number;
  pullEventsPerSec: number;
  pushRequests: number;
  pullRequests: number;
  /** The push's CPU time per event (µs): the device process and the server process, beside its wall time. */
  pushCpuUsPerEvent: { device: number; server: number; wall: number };
}

const TOKEN = 'bench-token-0123456789';

/** `eventsPerOrder`: 1 OrderCreated + payments per order (default 10); a push request carries up to 500 streams / `maxEventsPerPush` events. */
export async function benchSync(opts: { events: number; eventsPerOrder?: number; maxEventsPerPush?: number; pullLimit?: number }): Promise<SyncBenchResult> {
  const EVENTS_PER_ORDER = opts.eventsPerOrder ?? 10;
  const dir = mkdtempSync(join(tmpdir(), 'sync-bench-'));
  // The server runs in its own process (as it does in production: another machine).
  const server = await startServerProcess({
    dbFile: join(dir, 'server.db'),
    tokens: [{ token: TOKEN, tenant: 'bench', user: 'bench', roles: ['device'] }],
  });
  const pusher = openLocalStore(join(dir, 'pusher.db'));
  const puller = openLocalStore(join(dir, 'puller.db'));
  try {
    const orders = Math.ceil(opts.events / EVENTS_PER_ORDER);
    const t0 = performance.now();
    const outbox = new Outbox(pusher, { deviceId: 'bench-pusher' });
    // Offline work: an order and its payments (setup, not timed as sync).
    let written = 0;
    const chunk = pusher.db.transaction((from: number, to: number) => {
      for (let o = from; o < to && written < opts.events; o++) {
        const orderId = `bench-${o}`;
        outbox.submit(
          { type: 'CreateOrder', orderId, customerId: `cust-${o % 500}`, items: [{ sku: 'sku-1', quantity: 1, unitPrice: 100 * EVENTS_PER_ORDER }], currency: 'USD' },
          { userId: 'bench' },
        );
        written++;
        for (let p = 1; p < EVENTS_PER_ORDER && written < opts.events; p++, written++) {
          outbox.submit({ type: 'RecordPayment', orderId, paymentId: `pay-${p}`, amount: 100 }, { userId: 'bench' });
        }
      }
    });
    for (let o = 0; o < orders; o += 500) chunk.immediate(o, o + 500);
    const setupMs = performance.now() - t0;

    let pushRequests = 0;
    let pullRequests = 0;
    const count = <T extends object>(client: SyncHttpClient, onCall: () => void): SyncHttpClient =>
      new Proxy(client, {
        get: (target, key, recv) => {
          const v = Reflect.get(target, key, recv) as unknown;
          if (typeof v !== 'function') return v;
          return (...args: unknown[]) => {
            onCall();
            return (v as (...a: unknown[]) => T).apply(target, args);
          };
        },
      });
    const pushEngine = new SyncEngine({
      store: pusher,
      outbox,
      client: count(new SyncHttpClient({ baseUrl: server.url, token: TOKEN, timeoutMs: 120_000 }), () => pushRequests++),
      maxEventsPerPush: opts.maxEventsPerPush ?? 5000,
    });
    const deviceCpu = process.cpuUsage();
    const serverCpu = server.cpuMs();
    const t1 = performance.now();
    const pushed = await pushEngine.push();
    const pushMs = performance.now() - t1;
    const deviceCpuUs = process.cpuUsage(deviceCpu);
    const perEvent = (us: number) => Math.round((us / opts.events) * 100) / 100;
    const pushCpuUsPerEvent = { device: perEvent(deviceCpuUs.user + deviceCpuUs.system), server: perEvent((server.cpuMs() - serverCpu) * 1000), wall: perEvent(pushMs * 1000) };
    if (pushed.pushedEvents !== opts.events || pushed.pending !== 0) {
      throw new Error(`push incomplete: ${pushed.pushedEvents}/${opts.events} events, ${pushed.pending} commands pending`);
    }

    const pullEngine = new SyncEngine({
      store: puller,
      outbox: new Outbox(puller, { deviceId: 'bench-puller' }),
      client: count(new SyncHttpClient({ baseUrl: server.url, token: TOKEN, timeoutMs: 120_000 }), () => pullRequests++),
      pullLimit: opts.pullLimit ?? 5000,
    });
    const t2 = performance.now();
    const pulled = await pullEngine.pull();
    const pullMs = performance.now() - t2;
    if (pulled.pulledEvents !== opts.events || puller.log.headPosition() !== opts.events) {
      throw new Error(`pull incomplete: ${pulled.pulledEvents}/${opts.events}`);
    }
    return {
      events: opts.events,
      orders,
      setupMs: Math.round(setupMs),
      pushMs: Math.round(pushMs),
      pushEventsPerSec: Math.round(opts.events / (pushMs / 1000)),
      pullMs: Math.round(pullMs),
      pullEventsPerSec: Math.round(opts.events / (pullMs / 1000)),
      pushRequests,
      pullRequests,
      pushCpuUsPerEvent,
    };
  } finally {
    pusher.close();
    puller.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const events = Number(process.argv[2] ?? 100_000);
  const eventsPerOrder = Number(process.argv[3] ?? 10);
  const r = await benchSync({ events, eventsPerOrder });
  console.log(`sync over loopback (SQLite server), ${r.events} events in ${r.orders} orders (${eventsPerOrder} per order)`);
  console.log(`  push: ${(r.pushMs / 1000).toFixed(2)} s, ${r.pushEventsPerSec} events/s in ${r.pushRequests} requests (target: ${r.events} events ≤ 10 s)`);
  const c = r.pushCpuUsPerEvent;
  console.log(`  push CPU per event: device ${c.device} µs, server ${c.server} µs, wall ${c.wall} µs`);
  console.log(`  pull: ${(r.pullMs / 1000).toFixed(2)} s, ${r.pullEventsPerSec} events/s in ${r.pullRequests} requests`);
  console.log(`  (setup, offline submits: ${(r.setupMs / 1000).toFixed(2)} s)`);
}
