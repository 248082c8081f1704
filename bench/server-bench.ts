import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { PULL_CURSOR_START } from '../src/protocol/sync-api.js';
import { startServer, type BackendOptions } from '../src/server/index.js';

export interface ServerBenchOptions {
  backend: 'sqlite' | 'pg';
  events: number;
  batchSize: number;
  connections: number;
  /** PostgreSQL connection string (default the local test database). */
  pgUrl?: string;
}

export interface ServerBenchResult {
  backend: 'sqlite' | 'pg';
  events: number;
  batchSize: number;
  connections: number;
  eventsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  pullEventsPerSec: number;
  /**
   * PostgreSQL only: the same rows (read back from the server's table, new ids and streams)
   * written by `connections` clients as plain multi-row INSERTs of `batchSize` rows into the same
   * table, right after the server run: the floor any append path stands on.
   */
  rawInsertEventsPerSec?: number;
  /** eventsPerSec ÷ rawInsertEventsPerSec. */
  serverVsRaw?: number;
}

const TOKEN = 'bench-token-0123456789abcdef';

/** A lean keep-alive HTTP client: the bench shares its process with the server, so fetch's overhead would be counted against it. */
function request(agent: http.Agent, url: string, method: string, headers: Record<string, string>, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
const DEFAULT_PG = 'postgres://postgres@127.0.0.1:5432/test';

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** One append body: a new Order stream of `n` events (OrderCreated, then notes), folded into the read model. */
function orderBatch(streamId: string, n: number): string {
  const events = [];
  events.push({
    eventId: uuidv7(),
    eventType: 'OrderCreated',
    schemaVersion: 2,
    data: { orderId: streamId, customerId: 'bench', items: [{ sku: 'SKU-1', quantity: 1, unitPrice: 1_000_000 }], total: 1_000_000, currency: 'USD' },
  });
  // Notes are stored, validated and hash-chained like any event; the order fold skips them
  // (unknown type), so a large batch does not measure a pathological 100-payment order.
  for (let i = 1; i < n; i++) events.push({ eventId: uuidv7(), eventType: 'OrderNoteAdded', schemaVersion: 1, data: { note: `note ${i}`, by: 'bench' } });
  return JSON.stringify({ streamType: 'Order', expectedVersion: 'no_stream', events });
}

const RAW_COLUMNS = ['event_id', 'tenant_id', 'aggregate_id', 'aggregate_type', 'event_type', 'schema_version', 'event_data', 'metadata', 'version', 'created_at', 'hash'];

/**
 * The raw anchor: the rows the server just stored (their data, metadata and hashes as stored),
 * under new event ids and stream ids, inserted as multi-row INSERT … VALUES statements of
 * `batchSize` rows (one transaction each), `connections` at a time, into the same table.
 */
async function rawInsertAnchor(pgUrl: string, schema: string, opts: ServerBenchOptions): Promise<number> {
  const pool = new pg.Pool({ connectionString: pgUrl, max: opts.connections, options: `-c search_path=${schema}` });
  try {
    const { rows } = await pool.query<Record<string, unknown>>(
      `SELECT tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data::text AS event_data, metadata::text AS metadata, version, created_at, hash
       FROM events ORDER BY global_position LIMIT $1`,
      [opts.events],
    );
    const batches: unknown[][] = [];
    for (let i = 0; i < rows.length; i += opts.batchSize) {
      const values: unknown[] = [];
      for (const r of rows.slice(i, i + opts.batchSize)) {
        values.push(uuidv7(), r.tenant_id, `raw-${String(r.aggregate_id)}`, r.aggregate_type, r.event_type, r.schema_version, r.event_data, r.metadata, r.version, r.created_at, r.hash);
      }
      batches.push(values);
    }
    const statement = (n: number) =>
      `INSERT INTO events (${RAW_COLUMNS.join(', ')}) VALUES ` +
      Array.from({ length: n }, (_, r) => `(${RAW_COLUMNS.map((_, c) => `$${r * RAW_COLUMNS.length + c + 1}`).join(', ')})`).join(', ');
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: opts.connections }, async () => {
        for (let i = next++; i < batches.length; i = next++) await pool.query(statement(batches[i]!.length / RAW_COLUMNS.length), batches[i]);
      }),
    );
    return Math.round(rows.length / ((performance.now() - started) / 1000));
  } finally {
    await pool.end();
  }
}

/**
 * Append throughput over HTTP on loopback against a real server: `events` events in appends of
 * `batchSize` (one new Order stream each), `connections` requests in flight; then a full pull.
 */
export async function benchServer(opts: ServerBenchOptions): Promise<ServerBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'orderlog-bench-'));
  const schema = `ol_bench_${randomBytes(5).toString('hex')}`;
  const pgUrl = opts.pgUrl ?? DEFAULT_PG;
  const backend: BackendOptions =
    opts.backend === 'sqlite' ? { backend: 'sqlite', file: join(dir, 'bench.sqlite') } : { backend: 'pg', connectionString: pgUrl, schema };
  const server = await startServer({
    ...backend,
    tokens: [{ token: TOKEN, tenant: 'bench', user: 'bench', roles: ['device', 'admin'] }],
    rateLimit: { max: 10_000_000, timeWindowMs: 60_000 },
    port: 0,
  });
  try {
    const requests = Math.ceil(opts.events / opts.batchSize);
    const bodies = Array.from({ length: requests }, (_, i) => {
      const n = Math.min(opts.batchSize, opts.events - i * opts.batchSize);
      const streamId = `bench-${i}`;
      return { url: `${server.url}/sync/streams/${streamId}/append`, body: orderBatch(streamId, n) };
    });
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const agent = new http.Agent({ keepAlive: true, maxSockets: opts.connections });
    const latencies: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: opts.connections }, async () => {
        for (let i = next++; i < requests; i = next++) {
          const t0 = performance.now();
          const res = await request(agent, bodies[i]!.url, 'POST', headers, bodies[i]!.body);
          if (res.status !== 201) throw new Error(`append ${i} answered ${res.status}: ${res.text.slice(0, 300)}`);
          latencies.push(performance.now() - t0);
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;

    const pullStart = performance.now();
    let cursor = PULL_CURSOR_START;
    let pulled = 0;
    // A short page long-polls for the rest (an append still in flight holds a cursor pull back).
    const pullDeadline = Date.now() + 120_000;
    while (pulled < opts.events && Date.now() < pullDeadline) {
      const res = await request(agent, `${server.url}/sync/events?cursor=${cursor}&limit=5000&waitMs=${pulled > 0 ? 1000 : 0}`, 'GET', { authorization: `Bearer ${TOKEN}` });
      const page = JSON.parse(res.text) as { events: unknown[]; nextCursor: string; hasMore: boolean };
      pulled += page.events.length;
      cursor = page.nextCursor;
    }
    const pullElapsed = (performance.now() - pullStart) / 1000;
    agent.destroy();
    if (pulled !== opts.events) throw new Error(`pulled ${pulled} events, appended ${opts.events}`);

    const raw = opts.backend === 'pg' ? await rawInsertAnchor(pgUrl, schema, opts) : undefined;
    const eventsPerSec = Math.round(opts.events / elapsed);
    latencies.sort((x, y) => x - y);
    return {
      backend: opts.backend,
      events: opts.events,
      batchSize: opts.batchSize,
      connections: opts.connections,
      eventsPerSec,
      p50Ms: Number(percentile(latencies, 50).toFixed(2)),
      p99Ms: Number(percentile(latencies, 99).toFixed(2)),
      pullEventsPerSec: Math.round(pulled / pullElapsed),
      ...(raw === undefined ? {} : { rawInsertEventsPerSec: raw, serverVsRaw: Number((eventsPerSec / raw).toFixed(3)) }),
    };
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    if (opts.backend === 'pg') {
      const c = new pg.Client({ connectionString: pgUrl });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const events = Number(process.env.BENCH_EVENTS ?? 20_000);
  const batchSize = Number(process.env.BENCH_BATCH ?? 100);
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 8);
  const single = Math.min(events, 2000);
  const runs: ServerBenchOptions[] = [
    { backend: 'sqlite', events, batchSize, connections },
    { backend: 'pg', events, batchSize, connections },
    { backend: 'sqlite', events: single, batchSize: 1, connections },
    { backend: 'pg', events: single, batchSize: 1, connections },
  ];
  console.log(
    `Append throughput over HTTP on loopback: POST /sync/streams/:id/append, each request a new Order stream of batchSize events,\n` +
      `${connections} requests in flight; p50/p99 = request latency. Batch 1 = single-event appends (bound by the commit's fsync).\n` +
      `pullEventsPerSec: GET /sync/events pages of 5000 over everything appended.\n` +
      `PostgreSQL: rawInsertEventsPerSec = the same rows as plain multi-row INSERTs into the same table, same run; serverVsRaw = the ratio.\n` +
      `load average (1, 5, 15 min) at start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
  );
  const only = process.env.BENCH_BACKEND; // sqlite | pg: one backend only
  const rows: ServerBenchResult[] = [];
  for (const r of runs.filter((x) => !only || x.backend === only)) rows.push(await benchServer(r));
  console.table(rows);
  console.log(`load average at end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}
