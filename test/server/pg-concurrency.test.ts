import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { PullResponse } from '../../src/protocol/sync-api.js';
import type { ServerEvent } from '../../src/protocol/envelope.js';
import { GENESIS_HASH, computeEventHash, startServer, type StartedServer } from '../../src/server/index.js';
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

  it('never skips an event whose transaction commits after a later position was committed', async () => {
    const a = client(server.url, DEVICE_A);
    expect((await a.post('/sync/streams/base/append', { streamType: 'Note', expectedVersion: 'no_stream', events: [newEvent()] })).status).toBe(201);
    const p0 = PullResponse.parse((await a.get('/sync/events?after=0')).body).nextPosition;

    // A writer that has drawn its position but not committed yet (a slow append on another stream).
    const slow = await pgClient(schema);
    let p1: number;
    try {
      await slow.query('BEGIN');
      await slow.query('SELECT pg_current_xact_id()');
      const e = { eventId: uuidv7(), streamId: 'slow', streamVersion: 1, eventType: 'NoteAdded', schemaVersion: 1, data: { text: 'slow' }, metadata: { tenantId: 'tenant-a' }, recordedAt: new Date().toISOString() };
      const ins = await slow.query<{ global_position: string }>(
        `INSERT INTO events (event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash)
         VALUES ($1, 'tenant-a', $2, 'Note', $3, 1, $4, $5, 1, $6, $7) RETURNING global_position`,
        [e.eventId, e.streamId, e.eventType, JSON.stringify(e.data), JSON.stringify(e.metadata), e.recordedAt, computeEventHash(GENESIS_HASH, e)],
      );
      p1 = Number(ins.rows[0]!.global_position);

      const fast = await a.post('/sync/streams/fast/append', { streamType: 'Note', expectedVersion: 'no_stream', events: [newEvent()] });
      expect(fast.status).toBe(201);
      const p2 = fast.body.events[0].globalPosition as number;
      expect(p2).toBeGreaterThan(p1);

      // A naive "position > after" reader would return p2 now and later never see p1.
      const naive = await slow.query<{ global_position: string }>('SELECT global_position FROM events WHERE global_position > $1 AND global_position <> $2', [p0, p1]);
      expect(naive.rows.map((r) => Number(r.global_position))).toEqual([p2]);

      const held = PullResponse.parse((await a.get(`/sync/events?after=${p0}`)).body);
      expect(held.events).toEqual([]);
      expect(held.nextPosition).toBe(p0);
      await slow.query('COMMIT');
    } finally {
      await slow.query('ROLLBACK').catch(() => undefined);
      await slow.end();
    }
    let events: ServerEvent[] = [];
    const deadline = Date.now() + 20_000;
    while (events.length < 2 && Date.now() < deadline) {
      events = PullResponse.parse((await a.get(`/sync/events?after=${p0}&waitMs=500`)).body).events;
    }
    expect(events.map((e) => e.streamId)).toEqual(['slow', 'fast']);
    expect(events[0]!.globalPosition).toBe(p1);
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
