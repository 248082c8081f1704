// Issue 15: the relay to NATS JetStream against the server's append rate in the same run, the
// append-to-worker-view latency, and the cross-process wake-up (LISTEN/NOTIFY) delay.
//   npx tsx bench/broker-bench.ts [events]      (also `npm run bench -- broker`)
// Needs PostgreSQL (ORDERLOG_BENCH_PG_URL, default the test database) and /usr/sbin/nats-server:
// a private broker on a free port with its own store dir, so the shared one is not disturbed.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { jetstream } from '@nats-io/jetstream';
import { PgRepository } from '../src/server/index.js';
import type { AppendCommand } from '../src/server/repository.js';
import { AppendNotifier } from '../src/server/notifier.js';
import { busNames, type BusEvent } from '../src/server/bus/messages.js';
import { connectBus, ensureStreams } from '../src/server/bus/nats.js';
import { Relay, soleLease } from '../src/server/bus/relay.js';
import { Worker } from '../src/server/bus/worker.js';
import { PgWorkerStore } from '../src/server/store/pg/worker-store.js';
import { PgWake } from '../src/server/store/pg/wake.js';
import { percentile, round } from './stats.js';

const progress = (msg: string): void => {
  if (process.env.BENCH_VERBOSE) console.error(`[broker] ${msg}`);
};
const relayLog = { info: () => undefined, warn: (o: object, m: string) => progress(`${m} ${String((o as { err?: Error }).err?.message)}`) };
const PG_URL = process.env.ORDERLOG_BENCH_PG_URL ?? process.env.ORDERLOG_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function privateNats(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'orderlog-bench-nats-'));
  const child: ChildProcess = spawn('/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let log = '';
    const on = (d: Buffer): void => {
      log += d.toString();
      if (log.includes('Server is ready')) resolve();
    };
    child.stderr!.on('data', on);
    child.stdout!.on('data', on);
    child.on('exit', (code) => reject(new Error(`nats-server exited with ${code}: ${log}`)));
  });
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const created = (orderId: string) => ({
  eventId: uuidv7(),
  eventType: 'OrderCreated',
  schemaVersion: 2,
  data: { orderId, customerId: 'cust-1', items: [{ sku: 'SKU-1', quantity: 1, unitPrice: 1000 }], total: 1000, currency: 'USD' },
  metadata: {},
});
const paid = () => ({ eventId: uuidv7(), eventType: 'PaymentReceived', schemaVersion: 1, data: { paymentId: `P-${uuidv7().slice(-8)}`, amount: 10 }, metadata: {} });

/** The `i`-th append of a workload spread over `orders` orders (each created, then paid). */
function nth(i: number, orders: number, versions: Map<string, number>, prefix = 'bench'): AppendCommand {
  const streamId = `${prefix}-${i % orders}`;
  const v = versions.get(streamId) ?? 0;
  versions.set(streamId, v + 1);
  return { tenantId: `tenant-${(i % orders) % 3}`, streamId, streamType: 'Order', expectedVersion: v === 0 ? 'no_stream' : v, events: [v === 0 ? created(streamId) : paid()] };
}

export interface BrokerBenchResult {
  load_avg: number[];
  events: number;
  append_concurrency: number;
  /** The server's append rate (single-event appends, 8 at a time) while the relay ran. */
  append_per_s: number;
  /** Events relayed per second over the same run: from the first append until the relay had everything. */
  relay_per_s: number;
  relay_vs_append: number;
  /** How far the relay was behind when the appends ended, and how long it then took to catch up. */
  relay_lag_at_end_events: number;
  relay_catch_up_ms: number;
  /** Relay draining a stored backlog alone, and the raw anchor: the same messages published straight to the broker. */
  backlog_relay_per_s: number;
  raw_publish_per_s: number;
  backlog_relay_vs_raw_publish: number;
  /** One append at a time: from the append's commit to the worker's committed view. */
  latency_samples: number;
  append_to_view_p50_ms: number;
  append_to_view_p99_ms: number;
  /** NOTIFY on one connection to the LISTEN callback on another (cross-process wake-up). */
  wake_p50_ms: number;
  wake_p99_ms: number;
}

export async function benchBroker(opts: { events?: number; latencySamples?: number } = {}): Promise<BrokerBenchResult> {
  const events = opts.events ?? 20_000;
  const samples = opts.latencySamples ?? 200;
  const concurrency = 8;
  const loadAvg = os.loadavg().map((x) => round(x, 2));
  const tag = randomBytes(4).toString('hex');
  const schema = `ol_bench_broker_${tag}`;
  const workerSchema = `ol_bench_worker_${tag}`;
  const names = busNames(`bench${tag}`);
  const nats = await privateNats();
  const nc = await connectBus(nats.url, 'broker-bench');
  const repo = await PgRepository.open({ connectionString: PG_URL, schema });
  try {
    await ensureStreams(nc, names);
    const notifier = new AppendNotifier({ probe: () => repo.visibleHead() });
    const versions = new Map<string, number>();
    const appendOk = async (cmd: AppendCommand): Promise<void> => {
      const out = await repo.append(cmd);
      if (out.status !== 'ok') throw new Error(`bench append refused: ${JSON.stringify(out).slice(0, 300)}`);
      notifier.notify();
    };

    // 1. Sustained appends with the relay running beside them.
    const relay = new Relay({ repo, nc, names, lease: soleLease, wait: (ms, signal) => notifier.wait(ms, signal), log: relayLog }).start();
    const t0 = performance.now();
    // Appender k owns the streams ≡ k (mod concurrency), so its appends to one stream are in order.
    const orders = concurrency * 50;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, k) => {
        for (let i = k; i < events; i += concurrency) await appendOk(nth(i, orders, versions));
      }),
    );
    const appendMs = performance.now() - t0;
    progress(`appended ${events}, relay published ${relay.stats.published}`);
    const lagAtEnd = events - relay.stats.published;
    while (relay.stats.published < events) await new Promise((r) => setTimeout(r, 5));
    const relayMs = performance.now() - t0;
    await relay.stop();
    progress('relay caught up');

    // 2. A stored backlog drained by the relay alone, against raw publishing of the same bodies.
    const backlogNames = busNames(`bench${tag}b`);
    await ensureStreams(nc, backlogNames);
    await repo.saveRelayCheckpoint('0');
    const drain = new Relay({ repo, nc, names: backlogNames, lease: soleLease, wait: (ms, signal) => notifier.wait(ms, signal) });
    const t1 = performance.now();
    drain.start();
    while (drain.stats.published < events) await new Promise((r) => setTimeout(r, 5));
    const drainMs = performance.now() - t1;
    await drain.stop();
    progress('backlog drained');
    const page = await repo.pullAll(null, events);
    const rawNames = busNames(`bench${tag}r`);
    await ensureStreams(nc, rawNames);
    const js = jetstream(nc);
    const t2 = performance.now();
    for (let i = 0; i < page.events.length; i += 500) {
      await Promise.all(page.events.slice(i, i + 500).map((e: BusEvent) => js.publish(`${rawNames.prefix}.${e.tenantId}.Order.${e.eventType}`, JSON.stringify(e), { msgID: e.eventId })));
    }
    const rawMs = performance.now() - t2;
    progress('raw publish done');

    // 3. Append-to-view latency: one append at a time, a worker applying into its own schema.
    // On a fresh subject prefix, the relay starting from the current head: only new events travel.
    const liveNames = busNames(`bench${tag}l`);
    await ensureStreams(nc, liveNames);
    await repo.saveRelayCheckpoint(page.next!);
    const target = await PgWorkerStore.open(PG_URL, workerSchema);
    const appliedAt = new Map<string, number>();
    const worker = await new Worker({
      nc,
      names: liveNames,
      name: 'bench',
      target: { apply: async (e, name) => {
        const r = await target.apply(e, name);
        if (r.status === 'applied') appliedAt.set(e.eventId, performance.now());
        return r;
      } },
    }).start();
    const live = new Relay({ repo, nc, names: liveNames, lease: soleLease, wait: (ms, signal) => notifier.wait(ms, signal) }).start();
    const committedAt = new Map<string, number>();
    // Fresh streams: the worker starts them at version 1 (it applies each stream from its start).
    const latencyVersions = new Map<string, number>();
    for (let i = 0; i < samples; i++) {
      const cmd = nth(i, 20, latencyVersions, 'lat');
      await appendOk(cmd);
      committedAt.set(cmd.events[0]!.eventId, performance.now());
      // Spaced out, so this measures the path, not a queue of appends the worker is still working off.
      await new Promise((r) => setTimeout(r, 50));
    }
    while ([...committedAt.keys()].some((id) => !appliedAt.has(id))) await new Promise((r) => setTimeout(r, 10));
    progress('latency samples applied');
    const latencies = [...committedAt].map(([id, t]) => appliedAt.get(id)! - t).sort((a, b) => a - b);
    await live.stop();
    await worker.stop();
    await target.close();
    notifier.close();

    // 4. Cross-process wake-up: NOTIFY on one connection, LISTEN callback on another.
    let woke: (() => void) | null = null;
    const listener = new PgWake(PG_URL, schema, () => woke?.());
    const sender = new PgWake(PG_URL, schema, () => undefined);
    await listener.start();
    await sender.start();
    const wakes: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await new Promise<void>((resolve) => {
        woke = resolve;
        sender.announce();
      });
      wakes.push(performance.now() - t);
    }
    wakes.sort((a, b) => a - b);
    await listener.close();
    await sender.close();

    const appendPerS = events / (appendMs / 1000);
    const relayPerS = events / (relayMs / 1000);
    const backlogPerS = events / (drainMs / 1000);
    const rawPerS = page.events.length / (rawMs / 1000);
    return {
      load_avg: loadAvg,
      events,
      append_concurrency: concurrency,
      append_per_s: round(appendPerS, 0),
      relay_per_s: round(relayPerS, 0),
      relay_vs_append: round(relayPerS / appendPerS, 2),
      relay_lag_at_end_events: lagAtEnd,
      relay_catch_up_ms: round(relayMs - appendMs, 0),
      backlog_relay_per_s: round(backlogPerS, 0),
      raw_publish_per_s: round(rawPerS, 0),
      backlog_relay_vs_raw_publish: round(backlogPerS / rawPerS, 2),
      latency_samples: samples,
      append_to_view_p50_ms: round(percentile(latencies, 50), 1),
      append_to_view_p99_ms: round(percentile(latencies, 99), 1),
      wake_p50_ms: round(percentile(wakes, 50), 2),
      wake_p99_ms: round(percentile(wakes, 99), 2),
    };
  } finally {
    await repo.close();
    await nc.close();
    await nats.stop();
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.query(`DROP SCHEMA IF EXISTS ${workerSchema} CASCADE`);
    await c.end();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  benchBroker({ events: Number(process.argv[2] ?? 20_000) }).then(
    (r) => console.table([r]),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
