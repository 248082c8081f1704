import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { v7 as uuidv7 } from 'uuid';
import { startServer, type StartedServer } from '../../../src/server/index.js';
import { busNames } from '../../../src/server/bus/messages.js';
import { connectBus, ensureStreams } from '../../../src/server/bus/nats.js';
import { Worker } from '../../../src/server/bus/worker.js';
import { PgWorkerStore } from '../../../src/server/store/pg/worker-store.js';
import { ADMIN_A, DEVICE_A, PG_URL, TOKENS, client, pgClient, randomSchema } from '../helpers.js';
import { WORKER_CLI, appendOrders, dropSchemas, eventually, readModel, spawnCli, startNats, type PrivateNats, type Spawned } from './helpers.js';

let nats: PrivateNats;
let nc: NatsConnection;
beforeAll(async () => {
  nats = await startNats();
  nc = await connectBus(nats.url, 'worker-test');
}, 60_000);
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

const created = (orderId: string, total: number) => ({
  eventId: uuidv7(),
  eventType: 'OrderCreated',
  schemaVersion: 2,
  data: { orderId, customerId: 'cust-9', items: [{ sku: 'SKU-9', quantity: 1, unitPrice: total }], total, currency: 'USD' },
  metadata: {},
});
const paid = (amount: number) => ({ eventId: uuidv7(), eventType: 'PaymentReceived', schemaVersion: 1, data: { paymentId: `P-${uuidv7().slice(-6)}`, amount }, metadata: {} });

describe('dead letters: a poison message, its reason, and a replay after the fix', () => {
  const schema = randomSchema();
  const workerSchema = randomSchema();
  const names = busNames(`d${schema.slice(-8)}`);
  let server: StartedServer;
  let target: PgWorkerStore;
  let worker: Worker;

  beforeAll(async () => {
    target = await PgWorkerStore.open(PG_URL, workerSchema);
    server = await startServer({ backend: 'pg', connectionString: PG_URL, schema, tokens: TOKENS, port: 0, bus: { url: nats.url, prefix: names.prefix }, querySchema: workerSchema });
    worker = await new Worker({ nc, names, target, name: 'w-poison', maxDeliver: 3, maxWaits: 3, backoffMs: 20 }).start();
  }, 60_000);
  afterAll(async () => {
    await worker?.stop();
    await target?.close();
    await server?.close();
    await dropSchemas(schema, workerSchema);
  });

  it('moves a message that keeps failing to the dead letters with its reason; replay applies it once fixed', async () => {
    // The read model refuses big orders (a constraint the worker's database enforces): applying fails every time.
    const db = await pgClient(workerSchema);
    await db.query('ALTER TABLE order_projections ADD CONSTRAINT no_big_orders CHECK (total < 1000000)');
    const repo = server.repo;
    const ok = await repo.append({ tenantId: 'tenant-a', streamId: 'small', streamType: 'Order', expectedVersion: 'no_stream', events: [created('small', 500)] });
    const big = await repo.append({ tenantId: 'tenant-a', streamId: 'big', streamType: 'Order', expectedVersion: 'no_stream', events: [created('big', 5_000_000)] });
    await repo.append({ tenantId: 'tenant-a', streamId: 'big', streamType: 'Order', expectedVersion: 1, events: [paid(100)] });
    expect(ok.status).toBe('ok');
    expect(big.status).toBe('ok');
    // And a message nobody can read, on another tenant's subject.
    await jetstream(nc).publish(`${names.prefix}.tenant-b.Order.OrderCreated`, 'not json {', { msgID: 'garbage-1' });

    const admin = client(server.url, ADMIN_A);
    const dead = await eventually('two dead letters of tenant-a', async () => {
      const r = await admin.get('/api/admin/dead-letters');
      return r.status === 200 && r.body.deadLetters.length === 2 ? r.body.deadLetters : undefined;
    });
    expect(dead.map((d: { streamId: string; streamVersion: number }) => [d.streamId, d.streamVersion])).toEqual([['big', 1], ['big', 2]]);
    expect(dead[0].reason).toMatch(/no_big_orders/);
    expect(dead[0].deliveries).toBe(3);
    expect(dead[1].reason).toMatch(/waits for version 1/);
    expect((await client(server.url, DEVICE_A).get('/api/admin/dead-letters')).status).toBe(403);

    // The CLI sees every tenant's, including the unreadable one with its reason.
    const listed = await runWorkerCli(['dead-letters'], { ORDERLOG_NATS_URL: nats.url, ORDERLOG_NATS_PREFIX: names.prefix });
    expect(listed.code).toBe(0);
    const all = JSON.parse(listed.stdout) as { tenantId: string; reason: string }[];
    expect(all.map((d) => d.tenantId).sort()).toEqual(['tenant-a', 'tenant-a', 'tenant-b']);
    expect(all.find((d) => d.tenantId === 'tenant-b')!.reason).toMatch(/unreadable message/);

    // The query endpoints read the worker's model: the small order is there, the big one is not.
    expect((await admin.get('/api/queries/orders/small')).status).toBe(200);
    expect((await admin.get('/api/queries/orders/big')).status).toBe(404);

    // The fix, then the replay (tenant-a's only).
    await db.query('ALTER TABLE order_projections DROP CONSTRAINT no_big_orders');
    await db.end();
    const replay = await admin.post('/api/admin/dead-letters/replay', {});
    expect(replay.status).toBe(200);
    expect(replay.body.replayed.length).toBe(2);
    await eventually('the big order applied, payment included', async () => {
      const r = await admin.get('/api/queries/orders/big');
      return r.status === 200 && r.body.version === 2 ? r.body : undefined;
    });
    expect((await admin.get('/api/admin/dead-letters')).body.deadLetters).toEqual([]);
    expect(await readModel(workerSchema)).toEqual(await readModel(schema));
    // The unreadable one stays for its own operator.
    expect((await runWorkerCli(['dead-letters', '--tenant', 'tenant-b'], { ORDERLOG_NATS_URL: nats.url, ORDERLOG_NATS_PREFIX: names.prefix })).stdout).toMatch(/unreadable/);
  }, 180_000);
});

describe('several workers share one durable consumer', () => {
  const schema = randomSchema();
  const workerSchema = randomSchema();
  const names = busNames(`s${schema.slice(-8)}`);
  let server: StartedServer;
  const workers: Spawned[] = [];

  beforeAll(async () => {
    server = await startServer({ backend: 'pg', connectionString: PG_URL, schema, tokens: TOKENS, port: 0, bus: { url: nats.url, prefix: names.prefix } });
    await ensureStreams(nc, names);
  }, 60_000);
  afterAll(async () => {
    for (const w of workers) await w.stop().catch(() => undefined);
    await server?.close();
    await dropSchemas(schema, workerSchema);
  });

  it('never applies an event twice, applies each stream in version order, and equals a rebuild', async () => {
    const env = (name: string) => ({
      ORDERLOG_NATS_URL: nats.url,
      ORDERLOG_NATS_PREFIX: names.prefix,
      ORDERLOG_WORKER_DATABASE_URL: PG_URL,
      ORDERLOG_WORKER_SCHEMA: workerSchema,
      ORDERLOG_WORKER_NAME: name,
      ORDERLOG_LOG_LEVEL: 'warn',
    });
    // One after the other: both migrate the same schema, and the second must find it current.
    workers.push(await spawnCli(WORKER_CLI, [], env('worker-a'), /consuming into schema/));
    workers.push(await spawnCli(WORKER_CLI, [], env('worker-b'), /consuming into schema/));

    const total = await appendOrders(server.repo, { orders: 40, payments: 5, prefix: 'shared' });
    const db = await pgClient(workerSchema);
    try {
      await eventually('every event applied', async () => {
        const n = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM applied_events')).rows[0]!.n);
        return n === total ? true : undefined;
      }, 120_000);
      const by = (await db.query<{ applied_by: string; n: string }>('SELECT applied_by, count(*) AS n FROM applied_events GROUP BY applied_by ORDER BY applied_by')).rows;
      expect(by.map((r) => r.applied_by)).toEqual(['worker-a', 'worker-b']);
      // Per stream, the order of application is the order of versions.
      const { rows } = await db.query<{ stream_id: string; versions: number[] }>(
        'SELECT stream_id, array_agg(version ORDER BY applied_at, version) AS versions FROM applied_events GROUP BY tenant_id, stream_id',
      );
      expect(rows.length).toBe(40);
      for (const r of rows) expect(r.versions, r.stream_id).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      await db.end();
    }
    // Each worker's own count: what it applied, together exactly the events (duplicates only acknowledged).
    const stats = [];
    for (const w of workers.splice(0)) {
      expect(await w.stop()).toBe(0);
      stats.push(JSON.parse(/stopped (\{.*\})/.exec(w.output())![1]!) as { applied: number; duplicates: number });
    }
    expect(stats[0]!.applied + stats[1]!.applied).toBe(total);
    expect(stats[0]!.applied).toBeGreaterThan(0);
    expect(stats[1]!.applied).toBeGreaterThan(0);
    await server.repo.rebuildProjections();
    expect(await readModel(workerSchema)).toEqual(await readModel(schema));
  }, 240_000);
});

async function runWorkerCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { spawn } = await import('node:child_process');
  const { NODE_ARGS } = await import('./helpers.js');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...NODE_ARGS, WORKER_CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
