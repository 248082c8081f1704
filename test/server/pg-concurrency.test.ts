import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { PULL_CURSOR_START, PullResponse } from '../../src/protocol/sync-api.js';
import type { ServerEvent } from '../../src/protocol/envelope.js';
import type pg from 'pg';
import { GENESIS_HASH, computeEventHash, openRepository, startServer, type EventRepository, type StartedServer } from '../../src/server/index.js';
import { LOCK_CLASS_POSITION_PULL, lockKey } from '../../src/server/store/pg/migrate.js';
import { DEVICE_A, PG_URL, TOKENS, client, newEvent, pgClient, randomSchema } from './helpers.js';

const ROOT = join(import.meta.dirname, '..', '..');
// node --import tsx: one process, so signals reach the server itself.
const NODE_ARGS = ['--import', 'tsx'];
const CLI = join(ROOT, 'src', 'server', 'cli.ts');

function cliEnv(schema: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ORDERLOG_DATABASE_URL: PG_URL,
    ORDERLOG_PG_SCHEMA: schema,
    ORDERLOG_PORT: '0',
    ORDERLOG_TOKENS: JSON.stringify(TOKENS),
    ORDERLOG_LOG_LEVEL: 'warn',
  };
}

/** Start `src/server/cli.ts` as its own process; resolves with its URL once it listens. */
function spawnServer(schema: string): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [...NODE_ARGS, CLI, 'start'], { env: cliEnv(schema), stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}\n${err}`)), 45_000);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]!, exited });
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${out}\n${err}`)));
  });
}

function runCli(schema: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...NODE_ARGS, CLI, ...args], { env: cliEnv(schema), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function dropSchema(schema: string): Promise<void> {
  const c = await pgClient();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await c.end();
  }
}

describe('PostgreSQL: gap-safe global order', () => {
  const schema = randomSchema();
  let server: StartedServer;
  beforeAll(async () => {
    server = await startServer({ backend: 'pg', connectionString: PG_URL, schema, tokens: TOKENS, port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await dropSchema(schema);
  });

  /** A writer holding an append's locks, with a transaction id, and not committed yet: what a slow append looks like. */
  async function slowWriter(): Promise<{ c: pg.Client; xid: string; insert(streamId: string): Promise<number> }> {
    const c = await pgClient(schema);
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock_shared($1, $2)', [LOCK_CLASS_POSITION_PULL, lockKey(schema)]);
    const xid = (await c.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x')).rows[0]!.x;
    return {
      c,
      xid,
      async insert(streamId: string) {
        const e = { eventId: uuidv7(), streamId, streamVersion: 1, eventType: 'NoteAdded', schemaVersion: 1, data: { text: 'slow' }, metadata: { tenantId: 'tenant-a' }, recordedAt: new Date().toISOString() };
        const ins = await c.query<{ global_position: string }>(
          `INSERT INTO events (event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash)
           VALUES ($1, 'tenant-a', $2, 'Note', $3, 1, $4, $5, 1, $6, $7) RETURNING global_position`,
          [e.eventId, e.streamId, e.eventType, JSON.stringify(e.data), JSON.stringify(e.metadata), e.recordedAt, computeEventHash(GENESIS_HASH, e)],
        );
        return Number(ins.rows[0]!.global_position);
      },
    };
  }

  it('never skips an event that commits late: an older transaction with a higher position (cursor), a lower one (positions)', async () => {
    const a = client(server.url, DEVICE_A);
    expect((await a.post('/sync/streams/base/append', { streamType: 'Note', expectedVersion: 'no_stream', events: [newEvent()] })).status).toBe(201);
    const first = PullResponse.parse((await a.get('/sync/events?after=0')).body);
    const p0 = first.nextPosition;
    const c0 = first.nextCursor!;
    expect(c0).toMatch(/^v2\.\d+\.0$/); // caught up: the position pull hands out a cursor

    // The older transaction takes its id first; a younger append commits a lower position;
    // then the older one draws a higher position. Neither pull order may pass the other's event.
    const slow = await slowWriter();
    let legacy: Promise<{ status: number; body: unknown }> | null = null;
    try {
      const fast = await a.post('/sync/streams/fast/append', { streamType: 'Note', expectedVersion: 'no_stream', events: [newEvent()] });
      expect(fast.status).toBe(201);
      const pFast = fast.body.events[0].globalPosition as number;
      const pSlow = await slow.insert('slow');
      expect(pSlow).toBeGreaterThan(pFast);

      const held = PullResponse.parse((await a.get(`/sync/events?cursor=${c0}`)).body);
      expect(held.events).toEqual([]);
      expect(held.nextCursor).toBe(c0);

      // A position pull (an older device) waits for every append in flight to settle.
      let answered = false;
      legacy = a.get(`/sync/events?after=${p0}`).then((r) => ((answered = true), r));
      await new Promise((r) => setTimeout(r, 400));
      expect(answered).toBe(false);
      await slow.c.query('COMMIT');

      const byPosition = PullResponse.parse((await legacy).body);
      expect(byPosition.events.map((e) => [e.streamId, e.globalPosition])).toEqual([
        ['fast', pFast],
        ['slow', pSlow],
      ]);
      expect(byPosition.nextPosition).toBe(pSlow);
      const caughtUp = byPosition.nextCursor!;
      expect(caughtUp).toMatch(/^v2\.\d+\.0$/);

      const byCursor = PullResponse.parse((await a.get(`/sync/events?cursor=${c0}`)).body);
      expect(byCursor.events.map((e) => [e.streamId, e.globalPosition])).toEqual([
        ['slow', pSlow],
        ['fast', pFast],
      ]);
      // The cursor handed to a caught-up position pull stands for everything it received.
      expect(PullResponse.parse((await a.get(`/sync/events?cursor=${caughtUp}`)).body).events).toEqual([]);
      expect(PullResponse.parse((await a.get(`/sync/events?cursor=${byCursor.nextCursor!}`)).body).events).toEqual([]);
    } finally {
      await slow.c.query('ROLLBACK').catch(() => undefined);
      await slow.c.end();
      await legacy;
    }
  });

  it('bounds a scoped pull like a position pull: it waits for the appends in flight, and its nextPosition never passes one', async () => {
    const a = client(server.url, DEVICE_A);
    const slow = await slowWriter();
    let scoped: Promise<{ status: number; body: unknown }> | null = null;
    try {
      const pSlow = await slow.insert('scoped-slow');
      // The append holds a position below the newest one: the window may not end past it yet.
      const fast = await a.post('/sync/streams/scoped-fast/append', { streamType: 'Note', expectedVersion: 'no_stream', events: [newEvent()] });
      expect(fast.status).toBe(201);
      let answered = false;
      scoped = a.post('/sync/events/scoped', { after: 0, scope: { streams: ['scoped-slow'] } }).then((r) => ((answered = true), r));
      await new Promise((r) => setTimeout(r, 400));
      expect(answered).toBe(false);
      await slow.c.query('COMMIT');
      const page = PullResponse.parse((await scoped).body);
      expect(page.events.map((e) => [e.streamId, e.globalPosition])).toEqual([['scoped-slow', pSlow]]);
      expect(page.nextPosition).toBeGreaterThanOrEqual(pSlow);
      expect(page.nextCursor).toBeUndefined();
    } finally {
      await slow.c.query('ROLLBACK').catch(() => undefined);
      await slow.c.end();
      await scoped?.catch(() => undefined);
    }
  });

  it('holds cursor pulls back only for appends in flight: a transaction that writes no events, or another store\'s append, does not', async () => {
    const a = client(server.url, DEVICE_A);
    let cursor = PullResponse.parse((await a.get('/sync/events?limit=5000')).body).nextCursor!;
    const report = await pgClient();
    const otherStore = await pgClient();
    try {
      // A long report that wrote a temp row (any database on the cluster), and an append in
      // flight in another schema's store (its own drain lock): both have ids older than the next append.
      await report.query('BEGIN');
      await report.query('SELECT pg_current_xact_id()');
      await otherStore.query('BEGIN');
      await otherStore.query('SELECT pg_advisory_xact_lock_shared($1, $2)', [LOCK_CLASS_POSITION_PULL, lockKey(`${schema}_other`)]);
      await otherStore.query('SELECT pg_current_xact_id()');
      const r = await a.post('/sync/streams/not-lagged/append', { streamType: 'Note', expectedVersion: 'no_stream', events: [newEvent()] });
      expect(r.status).toBe(201);
      const page = PullResponse.parse((await a.get(`/sync/events?cursor=${cursor}`)).body);
      expect(page.events.map((e) => e.streamId)).toEqual(['not-lagged']);
      cursor = page.nextCursor!;

      // This store's append in flight does hold back what commits after it took its id.
      const slow = await slowWriter();
      try {
        const later = await a.post('/sync/streams/after-slow/append', { streamType: 'Note', expectedVersion: 'no_stream', events: [newEvent()] });
        expect(later.status).toBe(201);
        const held = PullResponse.parse((await a.get(`/sync/events?cursor=${cursor}`)).body);
        expect(held.events).toEqual([]);
        expect(held.nextCursor).toBe(cursor);
        await slow.c.query('COMMIT');
        const released = PullResponse.parse((await a.get(`/sync/events?cursor=${cursor}`)).body);
        expect(released.events.map((e) => e.streamId)).toEqual(['after-slow']);
      } finally {
        await slow.c.query('ROLLBACK').catch(() => undefined);
        await slow.c.end();
      }
    } finally {
      for (const c of [report, otherStore]) {
        await c.query('ROLLBACK').catch(() => undefined);
        await c.end();
      }
    }
  });

  it('rejects a malformed cursor, or a cursor and a position together, with a clear error', async () => {
    const a = client(server.url, DEVICE_A);
    for (const q of ['cursor=v2.1', 'cursor=v3.1.2', 'cursor=v2.99999999999999999999.1', 'cursor=v2.1.2&after=3']) {
      const r = await a.get(`/sync/events?${q}`);
      expect(r.status, q).toBe(400);
      expect(JSON.stringify(r.body), q).toMatch(/cursor/);
    }
  });
});

describe('PostgreSQL: randomised concurrent appends and pulls', () => {
  const schema = randomSchema();
  let repo: EventRepository;
  beforeAll(async () => {
    repo = await openRepository({ backend: 'pg', connectionString: PG_URL, schema });
  });
  afterAll(async () => {
    await repo?.close();
    await dropSchema(schema);
  });

  /** Checks a reader's sequence as it grows: every stream strictly in version order from 1, no event twice. */
  function reader(from: number | string) {
    const versions = new Map<string, number>();
    const ids = new Set<string>();
    let at: number | string = from;
    return {
      get count() {
        return ids.size;
      },
      async step(limit: number): Promise<number> {
        const page = await repo.pull('tenant-a', at, limit);
        for (const e of page.events) {
          const v = versions.get(e.streamId) ?? 0;
          if (e.streamVersion !== v + 1) throw new Error(`${e.streamId}: v${e.streamVersion} delivered after v${v} (from ${String(at)})`);
          if (ids.has(e.eventId)) throw new Error(`${e.eventId} delivered twice`);
          versions.set(e.streamId, e.streamVersion);
          ids.add(e.eventId);
        }
        // A position reader keeps pulling by position (an older device), whatever cursor it is offered.
        at = typeof at === 'number' ? page.nextPosition : page.nextCursor!;
        return page.events.length;
      },
    };
  }

  it('orders a cursor pull by transaction id as a number: ids of different lengths (9999, 10000) are not skipped', async () => {
    // Rows stored under two such ids below every running one (so settled: the largest power of
    // ten under the oldest running id, and the id before it), the shorter id at the higher
    // position. Sorted as text, "10000" came first and its cursor then passed 9999 for good.
    const c = await pgClient(schema);
    const ids: string[] = [];
    try {
      const xmin = BigInt((await c.query<{ x: string }>('SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS x')).rows[0]!.x);
      let power = 10n;
      while (power * 10n < xmin) power *= 10n;
      expect(power).toBeLessThan(xmin);
      for (const [txid, streamId] of [[String(power), 'digits-b'], [String(power - 1n), 'digits-a']] as const) {
        const e = { eventId: uuidv7(), streamId, streamVersion: 1, eventType: 'NoteAdded', schemaVersion: 1, data: { txid }, metadata: { tenantId: 'tenant-digits' }, recordedAt: new Date().toISOString() };
        await c.query(
          `INSERT INTO events (event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash, txid)
           VALUES ($1, 'tenant-digits', $2, 'Note', $3, 1, $4, $5, 1, $6, $7, $8::xid8)`,
          [e.eventId, e.streamId, e.eventType, JSON.stringify(e.data), JSON.stringify(e.metadata), e.recordedAt, computeEventHash(GENESIS_HASH, e), txid],
        );
        ids.push(e.eventId);
      }
    } finally {
      await c.end();
    }
    let cursor: string = PULL_CURSOR_START;
    const got: string[] = [];
    for (let i = 0; i < 4; i++) {
      const page = await repo.pull('tenant-digits', cursor, 1);
      got.push(...page.events.map((e) => e.eventId));
      cursor = page.nextCursor!;
    }
    expect(got).toEqual([ids[1], ids[0]]);
    expect(cursor).toMatch(/^v2\.10+\.\d+$/);
  });

  it('every reader gets every event once, each stream in version order (pushes over shared streams race)', async () => {
    const seed = Number(process.env.ORDERLOG_TEST_SEED ?? Date.now() % 1_000_000);
    let state = seed;
    // Seeded, so a failure can be replayed (printed on failure).
    const rand = (n: number) => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state % n;
    };
    const streams = ['s0', 's1', 's2', 's3', 's4', 's5'];
    let written = 0;
    const writer = async (rounds: number) => {
      for (let i = 0; i < rounds; i++) {
        // 1-3 distinct streams in one push; 'any' so every element lands (the race is the point).
        const picked = [...new Set(Array.from({ length: 1 + rand(3) }, () => streams[rand(streams.length)]!))];
        const cmds = picked.map((streamId) => ({
          tenantId: 'tenant-a',
          streamId,
          streamType: 'Note',
          expectedVersion: 'any' as const,
          events: Array.from({ length: 1 + rand(3) }, () => ({ eventId: uuidv7(), eventType: 'NoteAdded', schemaVersion: 1, data: { i }, metadata: {} })),
        }));
        const out = picked.length === 1 ? [await repo.append(cmds[0]!)] : await repo.appendAll(cmds);
        for (const o of out) {
          if (o.status !== 'ok') throw new Error(`seed ${seed}: ${JSON.stringify(o)}`);
          written += o.result.events.length;
        }
      }
    };
    const readers = [reader(PULL_CURSOR_START), reader(PULL_CURSOR_START), reader(0)];
    let writing = true;
    const reading = readers.map(async (r, k) => {
      while (writing) await r.step(1 + rand(k === 2 ? 20 : 7));
    });
    try {
      await Promise.all(Array.from({ length: 8 }, () => writer(25)));
      writing = false;
      await Promise.all(reading);
      for (const r of readers) while ((await r.step(500)) > 0);
    } catch (err) {
      writing = false;
      throw new Error(`seed ${seed}: ${(err as Error).message}`);
    }
    expect(written).toBeGreaterThan(200);
    for (const r of readers) expect(r.count).toBe(written);
  });
});

describe('PostgreSQL: two server processes on one database', () => {
  const schema = randomSchema();
  let servers: Awaited<ReturnType<typeof spawnServer>>[] = [];
  afterAll(async () => {
    for (const s of servers) s.child.kill('SIGKILL');
    await dropSchema(schema);
  });

  it('start together (migrations take turns), append concurrently with no duplicates or gaps, and shut down cleanly', async () => {
    servers = await Promise.all([spawnServer(schema), spawnServer(schema)]);
    const clients = servers.map((s) => client(s.url, DEVICE_A));
    const hotIds: string[] = [];
    const tasks: Promise<void>[] = [];
    for (let i = 0; i < 30; i++) {
      const c = clients[i % 2]!;
      const id = uuidv7();
      hotIds.push(id);
      tasks.push(
        (async () => {
          let expected = 0;
          for (let attempt = 0; attempt < 300; attempt++) {
            const r = await c.post('/sync/streams/hot/append', { streamType: 'Note', expectedVersion: expected, events: [{ eventId: id, eventType: 'Tick', schemaVersion: 1, data: { i } }] });
            if (r.status === 201) return;
            expect(r.status).toBe(409);
            expected = r.body.currentVersion;
          }
          throw new Error('appender starved');
        })(),
      );
      tasks.push(
        (async () => {
          const r = await c.post(`/sync/streams/cold-${i}/append`, { streamType: 'Note', expectedVersion: 'no_stream', events: [newEvent(), newEvent(), newEvent()] });
          expect(r.status).toBe(201);
        })(),
      );
    }
    await Promise.all(tasks);

    const all: ServerEvent[] = [];
    let after = 0;
    const deadline = Date.now() + 20_000;
    while (all.length < 30 + 90 && Date.now() < deadline) {
      const page = PullResponse.parse((await clients[0]!.get(`/sync/events?after=${after}&limit=1000&waitMs=200`)).body);
      all.push(...page.events);
      after = page.nextPosition;
    }
    expect(all).toHaveLength(120);
    expect(new Set(all.map((e) => e.eventId)).size).toBe(120);
    expect(new Set(all.map((e) => e.globalPosition)).size).toBe(120);
    const hot = all.filter((e) => e.streamId === 'hot');
    expect(hot.map((e) => e.streamVersion).sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(new Set(hot.map((e) => e.eventId))).toEqual(new Set(hotIds));

    const verify = await runCli(schema, ['verify-chain']);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/chain intact: 120 events in 31 streams/);

    for (const s of servers) s.child.kill('SIGTERM');
    expect(await Promise.all(servers.map((s) => s.exited))).toEqual([0, 0]);

    const raw = await pgClient(schema);
    try {
      await raw.query('ALTER TABLE events DISABLE TRIGGER events_no_update_delete');
      await raw.query(`UPDATE events SET metadata = metadata || '{"userId":"mallory"}' WHERE aggregate_id = 'hot' AND version = 7`);
    } finally {
      await raw.end();
    }
    const broken = await runCli(schema, ['verify-chain']);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/chain BROKEN at tenant-a\/hot v7/);
  });

  it('refuses to start without tokens and explains how to configure them', async () => {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const env: NodeJS.ProcessEnv = { ...cliEnv(schema), ORDERLOG_TOKENS: '' };
      delete env.ORDERLOG_DEV_TOKEN;
      const child = spawn(process.execPath, [...NODE_ARGS, CLI], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stderr }));
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no access tokens configured.*ORDERLOG_TOKENS/);
  });
});
