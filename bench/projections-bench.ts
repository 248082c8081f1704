/**
 * Read-side bench: rebuild rate of the projections over N generated events (with peak RSS),
 * next to a raw scan of the same rows in the same run, and list-query latency on the orders.
 *
 *   npx tsx bench/projections-bench.ts            # 250k and 1M events, each in a fresh process
 *   npx tsx bench/projections-bench.ts 1000000 [orders]   # one size, in this process (orders default events/10)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { v7 as uuidv7 } from 'uuid';
import { ORDER_STATUSES } from '../src/domain/state.js';
import { defaultProjections, OrderQueries, ProjectionRunner } from '../src/projections/index.js';
import { openLocalStore } from '../src/store/index.js';

export interface ProjectionBenchOptions {
  events: number;
  orders: number;
  /** Query repetitions per measured query (default 300). */
  queryRuns?: number;
  /** Timed rebuilds, each followed by a raw scan (default 3 up to 2M events, else 1). */
  rebuildRuns?: number;
}

const cpuMs = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
};
const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

/** Every row of the log in one statement, its data parsed: the raw anchor of the rebuild (rows per second, and per CPU second). */
function rawScan(db: ReturnType<typeof openLocalStore>['db']): { rowsPerS: number; rowsPerCpuS: number } {
  const cpu = process.cpuUsage();
  const t = performance.now();
  let n = 0;
  for (const row of db.prepare('SELECT position, event_id, stream_id, stream_type, stream_version, event_type, schema_version, data, metadata, recorded_at FROM events ORDER BY position').iterate() as Iterable<{ data: string }>) {
    if (JSON.parse(row.data) !== null) n++;
  }
  return { rowsPerS: Math.round(n / ((performance.now() - t) / 1000)), rowsPerCpuS: Math.round(n / (cpuMs(cpu) / 1000)) };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Write `events` order events for `orders` orders straight into the events table: one
 * transaction, one prepared statement, synchronous=OFF for the generation only. About 1 000
 * orders are "open" at a time, so each order's events are close together in the log, as in
 * a real shop (which is what lets the rebuild's bounded state cache work).
 */
export function generateForBench(db: ReturnType<typeof openLocalStore>['db'], events: number, orders: number): void {
  const insert = db.prepare(
    `INSERT INTO events (event_id, stream_id, stream_type, stream_version, event_type, schema_version, data, metadata, recorded_at)
     VALUES (?, ?, 'Order', ?, ?, ?, ?, '{"source":"bench"}', ?)`,
  );
  const start = Date.UTC(2025, 0, 1);
  const span = 365 * 24 * 3600 * 1000;
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  interface Open {
    id: string;
    customer: string;
    plan: string[];
    next: number;
  }
  // Spread the events evenly: order n gets floor((n+1)·E/O) − floor(n·E/O) of them.
  const lengthOf = (n: number) => Math.max(1, Math.floor(((n + 1) * events) / orders) - Math.floor((n * events) / orders));
  const plan = (variant: number, perOrder: number): string[] => {
    const tail = variant === 0 ? ['OrderCancelled'] : variant === 1 ? ['InventoryReserved', 'OrderShipped'] : variant === 2 ? ['InventoryReserved'] : [];
    const payments = Math.max(0, perOrder - 1 - tail.length);
    return ['OrderCreated', ...Array<string>(payments).fill('PaymentReceived'), ...tail].slice(0, perOrder);
  };
  const active: Open[] = [];
  let created = 0;
  const window = Math.min(1000, orders);
  db.pragma('synchronous = OFF');
  db.transaction(() => {
    for (let i = 0; i < events; i++) {
      while (active.length < window && created < orders) {
        const n = created++;
        active.push({ id: `ORD-${String(n).padStart(7, '0')}`, customer: `CUST-${rand(orders / 10 + 1)}`, plan: plan(rand(4), lengthOf(n)), next: 0 });
      }
      if (active.length === 0) break;
      const slot = rand(active.length);
      const o = active[slot]!;
      const type = o.plan[o.next]!;
      const at = new Date(start + Math.floor((i / events) * span)).toISOString();
      let data: string;
      switch (type) {
        case 'OrderCreated':
          data = JSON.stringify({
            orderId: o.id,
            customerId: o.customer,
            items: [{ sku: `SKU-${rand(500)}`, quantity: 1 + rand(3), unitPrice: 1000 }],
            total: 100_000,
            currency: 'USD',
          });
          break;
        case 'PaymentReceived':
          data = `{"paymentId":"P-${i}","amount":${o.plan[0] && o.next === o.plan.length - 1 ? 1000 : 100}}`;
          break;
        case 'InventoryReserved':
          data = `{"reservationId":"R-${i}"}`;
          break;
        case 'OrderShipped':
          data = `{"shipmentId":"S-${i}","shippedAt":"${at}"}`;
          break;
        default:
          data = `{"reason":"customer asked","cancelledAt":"${at}"}`;
      }
      insert.run(uuidv7(), o.id, o.next + 1, type, type === 'OrderCreated' ? 2 : 1, data, at);
      o.next++;
      if (o.next >= o.plan.length) {
        active[slot] = active[active.length - 1]!;
        active.pop();
      }
    }
  })();
  db.pragma('synchronous = FULL');
}

/**
 * Peak RSS and heap of this process while a rebuild runs (every 20 ms and at each progress
 * report). With `live` (and --expose-gc), also the peak live heap: heapUsed right after a forced
 * full collection, once a second, so garbage not yet reclaimed does not count as retained memory.
 */
function memorySampler(live: boolean): { sample: () => void; stop: () => { rss: number; heap: number; live: number | null } } {
  const gc = live ? (globalThis as { gc?: () => void }).gc : undefined;
  let rss = process.memoryUsage().rss;
  let heap = process.memoryUsage().heapUsed;
  let peakLive = 0;
  let lastGc = performance.now();
  const sample = () => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    heap = Math.max(heap, m.heapUsed);
    if (gc && performance.now() - lastGc > 1000) {
      gc();
      lastGc = performance.now();
      peakLive = Math.max(peakLive, process.memoryUsage().heapUsed);
    }
  };
  const timer = setInterval(sample, 20);
  return {
    sample,
    stop: () => {
      clearInterval(timer);
      sample();
      return { rss, heap, live: gc ? peakLive : null };
    },
  };
}

export async function benchProjections(opts: ProjectionBenchOptions): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'projections-bench-'));
  const store = openLocalStore(join(dir, 'bench.db'));
  const out: Record<string, number> = { events: opts.events, orders: opts.orders };
  try {
    let t = performance.now();
    generateForBench(store.db, opts.events, opts.orders);
    out.generate_ms = Math.round(performance.now() - t);
    // The generator's writes (the log, twice: WAL and database) are checkpointed and flushed
    // before anything is timed: left to the kernel, their writeback ran during the first scan
    // and the first rebuild.
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    spawnSync('sync');
    const head = store.log.headPosition();
    out.events = head;

    // Raw scan of the same rows: one statement iterating every row, data parsed (the physical
    // limit). Scanned before and after the rebuild: the anchor is the faster of the two, so a
    // slow phase of the machine during one scan cannot make the ratio kinder.
    const before = rawScan(store.db);
    out.raw_scan_before_rows_per_s = before.rowsPerS;
    // The same rows through the log's page reader (what the rebuild uses).
    t = performance.now();
    let n = 0;
    for (let after = 0; ; ) {
      const page = store.log.readPage(after, 5000);
      n += page.length;
      if (page.length < 5000) break;
      after = page[page.length - 1]!.position;
    }
    out.readpage_scan_rows_per_s = Math.round(n / ((performance.now() - t) / 1000));

    // Rebuild every projection from scratch (blue/green), sampling RSS during the first. The
    // rebuild runs `rebuildRuns` times with a raw scan after each: a run's anchor is the faster of
    // the scans either side of it, and the figures reported are the medians over the runs (the
    // machine drifts between phases in seconds; one run against one scan was a coin toss).
    (globalThis as { gc?: () => void }).gc?.();
    out.heap_before_rebuild_mb = mb(process.memoryUsage().heapUsed);
    out.rss_before_rebuild_mb = mb(process.memoryUsage().rss);
    const runner = new ProjectionRunner(store.log, defaultProjections());
    const worker = (process.env.BENCH_REBUILD_WORKER ?? 'auto') as 'auto' | 'always' | 'never';
    const workers = process.env.BENCH_REBUILD_WORKERS ? Number(process.env.BENCH_REBUILD_WORKERS) : undefined;
    const rebuildRuns = opts.rebuildRuns ?? (opts.events <= 2_000_000 ? 3 : 1);
    const timed: { ms: number; cpuMs: number; anchor: number; anchorCpu: number; ratio: number }[] = [];
    let scanBefore = before;
    let memory: { rss: number; heap: number } = { rss: 0, heap: 0 };
    let result: Awaited<ReturnType<ProjectionRunner['rebuild']>> | undefined;
    for (let k = 1; k <= rebuildRuns; k++) {
      const sampler = memorySampler(false);
      const cpu = process.cpuUsage();
      t = performance.now();
      const r = await runner.rebuild(undefined, { onProgress: sampler.sample, progressEveryMs: 50, worker, workers });
      const ms = performance.now() - t;
      const cpuUsed = cpuMs(cpu);
      const m = sampler.stop();
      if (k === 1) {
        memory = m;
        result = r;
        runner.attach();
      }
      const scanAfter = rawScan(store.db);
      out[`raw_scan_after_${k}_rows_per_s`] = scanAfter.rowsPerS;
      out[`rebuild_${k}_ms`] = Math.round(ms);
      const anchor = Math.max(scanBefore.rowsPerS, scanAfter.rowsPerS);
      timed.push({
        ms,
        cpuMs: cpuUsed,
        anchor,
        anchorCpu: Math.max(scanBefore.rowsPerCpuS, scanAfter.rowsPerCpuS),
        ratio: r.eventsReplayed / (ms / 1000) / anchor,
      });
      out[`rebuild_${k}_vs_raw_scan`] = Math.round(timed[k - 1]!.ratio * 1000) / 1000;
      scanBefore = scanAfter;
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const rebuildMs = median(timed.map((x) => x.ms));
    const rebuildCpuMs = median(timed.map((x) => x.cpuMs));
    out.raw_scan_rows_per_s = median(timed.map((x) => x.anchor));
    // CPU time too: on a shared machine wall time mostly measures the neighbours.
    out.raw_scan_rows_per_cpu_s = median(timed.map((x) => x.anchorCpu));
    out.rebuild_runs = rebuildRuns;
    out.rebuild_ms = Math.round(rebuildMs);
    out.rebuild_vs_raw_scan = Math.round(median(timed.map((x) => x.ratio)) * 1000) / 1000;
    // Workers that folded (0: on the calling thread; the note says why, or why they stopped).
    out.rebuild_workers = result!.folding.worker ? (workers ?? availableParallelism()) : 0;
    // 1: a worker summarised the shadow for the derived tables while the swap built the indexes.
    out.rebuild_summarized = result!.summarized ? 1 : 0;
    if (result!.folding.note) console.error(`rebuild: ${result!.folding.worker ? 'workers stopped' : 'on one thread'}: ${result!.folding.note}`);
    out.rebuild_events_per_s = Math.round(result!.eventsReplayed / (rebuildMs / 1000));
    out.rebuild_cpu_ms = Math.round(rebuildCpuMs);
    out.rebuild_events_per_cpu_s = Math.round(result!.eventsReplayed / (rebuildCpuMs / 1000));
    out.rebuild_peak_rss_mb = mb(memory.rss);
    out.rebuild_peak_heap_mb = mb(memory.heap);
    out.orders_in_view = store.db.prepare('SELECT COUNT(*) FROM order_list').pluck().get() as number;

    // List latency: first page of a status-filtered list, and a few other shapes.
    const q = new OrderQueries(store.db, { runner });
    const runs = opts.queryRuns ?? 300;
    const measure = (name: string, input: (i: number) => Parameters<OrderQueries['listOrdersNow']>[0]) => {
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const s = performance.now();
        q.listOrdersNow(input(i));
        times.push(performance.now() - s);
      }
      times.sort((a, b) => a - b);
      out[`${name}_p50_ms`] = Math.round(percentile(times, 50) * 1000) / 1000;
      out[`${name}_p99_ms`] = Math.round(percentile(times, 99) * 1000) / 1000;
    };
    const base = { sort: 'updatedAt' as const, direction: 'desc' as const, limit: 50, offset: 0 };
    // Statuses that hold orders (an empty one answers without reading a page).
    const held = ORDER_STATUSES.filter((status) => q.listOrdersNow({ ...base, status }).total > 0);
    out.list_first_page_statuses = held.length;
    measure('list_first_page_status', (i) => ({ ...base, status: held[i % held.length]! }));
    measure('list_first_page_all', () => ({ ...base, status: 'ALL' }));
    const second = q.listOrdersNow({ ...base, status: 'SHIPPED' }).nextCursor ?? undefined;
    measure('list_keyset_page2_status', () => ({ ...base, status: 'SHIPPED', cursor: second }));
    measure('list_customer', (i) => ({ ...base, status: 'ALL', customerId: `CUST-${i % 1000}` }));
    measure('list_search_substring', (i) => ({ ...base, status: 'ALL', search: `${1000 + i}` }));
    // Needles under 3 characters cannot use the trigram index: they scan the covering index.
    measure('list_search_short', (i) => ({ ...base, status: 'ALL', search: `${10 + (i % 90)}` }));
    // A customer's history: orders, totals and the activity feed (read from the log through the customer's orders).
    const historyTimes: number[] = [];
    for (let i = 0; i < runs; i++) {
      const s = performance.now();
      const h = await q.customerHistory({ customerId: `CUST-${i % 1000}`, limit: 50 });
      historyTimes.push(performance.now() - s);
      if (h.totalOrders > 0 && h.activity.length === 0) throw new Error(`customer history of CUST-${i % 1000} has orders but no activity`);
    }
    historyTimes.sort((a, b) => a - b);
    out.customer_history_p50_ms = Math.round(percentile(historyTimes, 50) * 1000) / 1000;
    out.customer_history_p99_ms = Math.round(percentile(historyTimes, 99) * 1000) / 1000;

    // The same rebuild on one thread, in the same run: what the workers bought.
    // It folds on this thread, so this thread's live heap is the fold's: sampled here, with forced
    // collections (they took 0.2 s of this thread in a 1M rebuild, so the timed one has none).
    if (out.rebuild_workers > 0 && opts.events <= 2_000_000) {
      const live = memorySampler(true);
      t = performance.now();
      const alone = await runner.rebuild(undefined, { worker: 'never', onProgress: live.sample, progressEveryMs: 50 });
      const ms = performance.now() - t;
      const aloneMemory = live.stop();
      out.rebuild_one_thread_ms = Math.round(ms);
      out.rebuild_one_thread_events_per_s = Math.round(alone.eventsReplayed / (ms / 1000));
      if (aloneMemory.live !== null) out.rebuild_one_thread_peak_live_heap_mb = mb(aloneMemory.live);
    }
    return out;
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.length > 0) {
    const events = Number(args[0]);
    // Ten events per order by default, so sizes differ in length of log, not in order shape.
    const orders = Number(args[1] ?? Math.max(1, Math.round(events / 10)));
    const result = await benchProjections({ events, orders });
    if (process.env.PROJECTIONS_BENCH_JSON) process.stdout.write(JSON.stringify(result) + '\n');
    else console.table(result);
    return;
  }
  // Each size in a fresh process, so peak RSS is comparable across sizes.
  const rows: Record<string, Record<string, number>> = {};
  for (const events of [250_000, 1_000_000]) {
    const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), String(events)], {
      env: { ...process.env, PROJECTIONS_BENCH_JSON: '1' },
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    if (child.status !== 0) throw new Error(`bench child failed: ${child.stderr}`);
    rows[`${events / 1000}k events`] = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
  }
  console.table(rows);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
