import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { parsePullCursor } from '../../../src/protocol/sync-api.js';
import { PgRepository } from '../../../src/server/index.js';
import { busNames, BusEvent } from '../../../src/server/bus/messages.js';
import { connectBus } from '../../../src/server/bus/nats.js';
import { Worker } from '../../../src/server/bus/worker.js';
import { PgWorkerStore } from '../../../src/server/store/pg/worker-store.js';
import { PG_URL, TOKENS, randomSchema } from '../helpers.js';
import { SERVER_CLI, appendOrders, dropSchemas, eventually, readModel, spawnCli, startNats, type PrivateNats, type Spawned } from './helpers.js';

/**
 * The relay against a real broker: a server process relaying a backlog that keeps growing is
 * killed with SIGKILL, the broker itself is killed and restarted, a new server process takes
 * over from the stored checkpoint, and in the end the broker holds every stored event exactly
 * once, each stream in version order, and a worker's read model equals a fresh rebuild.
 */
describe('transactional relay to JetStream (real NATS, real PostgreSQL)', () => {
  let nats: PrivateNats;
  let nc: NatsConnection;
  let repo: PgRepository;
  const schema = randomSchema();
  const workerSchema = randomSchema();
  const names = busNames(`t${schema.slice(-8)}`);
  const children: Spawned[] = [];

  const serverEnv = () => ({
    ORDERLOG_DATABASE_URL: PG_URL,
    ORDERLOG_PG_SCHEMA: schema,
    ORDERLOG_PORT: '0',
    ORDERLOG_TOKENS: JSON.stringify(TOKENS),
    ORDERLOG_LOG_LEVEL: 'warn',
    ORDERLOG_NATS_URL: nats.url,
    ORDERLOG_NATS_PREFIX: names.prefix,
  });
  const startRelayServer = async () => {
    const s = await spawnCli(SERVER_CLI, ['start'], serverEnv(), /listening on (http:\/\/\S+)/);
    children.push(s);
    return s;
  };
  const storedInBroker = async (): Promise<number> => {
    const jsm = await jetstreamManager(nc);
    return (await jsm.streams.info(names.stream)).state.messages;
  };

  beforeAll(async () => {
    nats = await startNats();
    nc = await connectBus(nats.url, 'relay-test');
    repo = await PgRepository.open({ connectionString: PG_URL, schema });
  }, 60_000);
  afterAll(async () => {
    for (const c of children) await c.stop().catch(() => undefined);
    await repo?.close();
    await nc?.close();
    await nats?.stop();
    await dropSchemas(schema, workerSchema);
  });

  it('loses nothing when the relay is killed mid-publish and the broker restarts; the worker view equals a rebuild', async () => {
    await appendOrders(repo, { orders: 40, payments: 2, prefix: 'before' }); // a backlog: 120 events
    let first = await startRelayServer();
    // Keep appending while the relay works, so it is always in the middle of publishing.
    const appending = appendOrders(repo, { orders: 60, payments: 5, prefix: 'during' }); // 360 events
    await eventually('the relay publishing', async () => ((await storedInBroker()) > 60 ? true : undefined));
    first.child.kill('SIGKILL');
    await first.exited;
    const atKill = await storedInBroker();
    expect(atKill).toBeLessThan(480);

    // The broker goes down (SIGKILL) while a new relay process starts and appends go on.
    const second = startRelayServer();
    await nats.restart();
    first = await second;
    await appending;
    const total = 480;
    await eventually('every event in the broker', async () => ((await storedInBroker()) >= total ? true : undefined), 120_000);
    // Exactly once in the broker (the message id is the event id) and nothing extra arrives.
    await new Promise((r) => setTimeout(r, 500));
    expect(await storedInBroker()).toBe(total);

    // Every stored event, each stream in version order, headers as promised.
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.add(names.stream, { durable_name: 'reader', ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All });
    const consumer = await js.consumers.get(names.stream, 'reader');
    const seen = new Map<string, number>();
    const ids = new Set<string>();
    const iter = await consumer.fetch({ max_messages: total, expires: 10_000 });
    for await (const m of iter) {
      const e = BusEvent.parse(m.json());
      expect(m.subject).toBe(`${names.prefix}.${e.tenantId}.Order.${e.eventType}`);
      expect(m.headers?.get('Nats-Msg-Id')).toBe(e.eventId);
      expect(m.headers?.get('Orderlog-Position')).toBe(String(e.globalPosition));
      expect(m.headers?.get('Orderlog-Stream-Version')).toBe(String(e.streamVersion));
      if (e.streamVersion === 1) expect(m.headers?.get('Orderlog-Correlation-Id')).toBe(`corr-${e.streamId}`);
      const key = `${e.tenantId}/${e.streamId}`;
      expect(e.streamVersion, `order of ${key}`).toBe((seen.get(key) ?? 0) + 1);
      seen.set(key, e.streamVersion);
      ids.add(e.eventId);
      if (ids.size === total) break;
    }
    expect(ids.size).toBe(total);
    const stored = new Set<string>();
    const positions: number[] = [];
    for (const t of ['tenant-a', 'tenant-b']) for (const e of (await repo.pull(t, 0, 10_000)).events) {
      stored.add(e.eventId);
      positions.push(e.globalPosition);
    }
    expect([...ids].sort()).toEqual([...stored].sort());
    // The relay's checkpoint is the pull cursor after everything: nothing is left after it.
    const checkpoint = (await repo.relayCheckpoint())!;
    expect(parsePullCursor(checkpoint)).not.toBeNull();
    expect((await repo.pullAll(checkpoint, 10)).events).toEqual([]);
    // A checkpoint stored before cursors (a position) is pulled by position until it has caught up, then handed a cursor.
    positions.sort((a, b) => a - b);
    const legacy = String(positions[positions.length - 4]!);
    const partial = await repo.pullAll(legacy, 2);
    expect(partial.events.map((e) => e.globalPosition)).toEqual(positions.slice(-3, -1));
    expect(partial).toMatchObject({ next: String(positions[positions.length - 2]), hasMore: true });
    const caughtUp = await repo.pullAll(partial.next, 10);
    expect(caughtUp.events.map((e) => e.globalPosition)).toEqual(positions.slice(-1));
    expect(parsePullCursor(caughtUp.next!)).not.toBeNull();
    expect((await repo.pullAll(caughtUp.next, 10)).events).toEqual([]);

    // A worker builds the read model from the broker; it equals a fresh rebuild of the server's.
    const target = await PgWorkerStore.open(PG_URL, workerSchema);
    const worker = await new Worker({ nc, names, target, name: 'w1' }).start();
    try {
      await eventually('the worker applying every event', async () => (worker.stats.applied === total ? true : undefined), 120_000);
    } finally {
      await worker.stop();
      await target.close();
    }
    await repo.rebuildProjections();
    expect(await readModel(workerSchema)).toEqual(await readModel(schema));
    expect((await readModel(schema)).length).toBe(100);
  }, 300_000);
});
