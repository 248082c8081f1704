import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ArchivedEventsError } from '../../src/protocol/errors.js';
import { startServer, type StartedServer } from '../../src/server/index.js';
import type { AppendCommand } from '../../src/server/repository.js';
import { ArchiveError, archivePartitions, ownerPool, restoreArchive } from '../../src/server/store/pg/archive.js';
import { PgRepository } from '../../src/server/store/pg/pg-repository.js';
import { DEVICE_A, PG_URL, TOKENS, client, newEvent, orderCreated, pgClient, randomSchema, runServerCli } from './helpers.js';


const runCli = runServerCli;

/** Reconfigure a fresh (empty) schema to partitions of `size` positions, so a test crosses several. */
async function smallPartitions(schema: string, size: number): Promise<void> {
  const c = await pgClient(schema);
  try {
    const { rows } = await c.query<{ name: string }>('SELECT name FROM event_partitions');
    for (const r of rows) await c.query(`DROP TABLE ${r.name}`);
    await c.query('DELETE FROM event_partitions');
    await c.query('UPDATE event_partitioning SET partition_size = $1', [size]);
    await c.query('SELECT ensure_event_partitions()');
  } finally {
    await c.end();
  }
}

/** Every stored event as PostgreSQL prints it, in position order: "identical" means this text is. */
async function dump(schema: string): Promise<string[]> {
  const c = await pgClient(schema);
  try {
    return (await c.query<{ j: string }>('SELECT to_jsonb(e)::text AS j FROM events e ORDER BY global_position')).rows.map((r) => r.j);
  } finally {
    await c.end();
  }
}

const TENANT = 'tenant-a';
const meta = <E extends object>(e: E) => ({ ...e, metadata: { userId: 'archivist' } });
const status = (orderId: string, newStatus: string, previousStatus: string) => newEvent('OrderStatusChanged', { orderId, newStatus, previousStatus }, 1);

describe('PostgreSQL partitions, archive and restore', () => {
  const schema = randomSchema();
  const dir = mkdtempSync(join(tmpdir(), 'ol-archive-'));
  const env = { ORDERLOG_DATABASE_URL: PG_URL, ORDERLOG_PG_SCHEMA: schema };
  let repo: PgRepository;
  let server: StartedServer;
  let before: string[];
  const orderId = 'ord-arch-1';

  beforeAll(async () => {
    await (await PgRepository.open({ connectionString: PG_URL, schema })).close();
    await smallPartitions(schema, 10);
    repo = await PgRepository.open({ connectionString: PG_URL, schema });
    const append = async (cmd: Omit<AppendCommand, 'tenantId'>, tenantId = TENANT) => expect((await repo.append({ tenantId, ...cmd })).status).toBe('ok');
    // Positions 1..15: the order's first events, notes of two tenants.
    await append({ streamId: orderId, streamType: 'Order', expectedVersion: 0, events: [meta(orderCreated(orderId))] });
    for (let i = 0; i < 7; i++) await append({ streamId: 'note-a', streamType: 'Note', expectedVersion: i, events: [meta(newEvent())] });
    for (let i = 0; i < 6; i++) await append({ streamId: 'note-b', streamType: 'Note', expectedVersion: i, events: [meta(newEvent())] }, 'tenant-b');
    await append({ streamId: orderId, streamType: 'Order', expectedVersion: 1, events: [meta(status(orderId, 'PAID', 'CREATED'))] });
    // Positions 16..34: live after archiving everything below 21.
    for (let i = 0; i < 18; i++) await append({ streamId: 'note-c', streamType: 'Note', expectedVersion: i, events: [meta(newEvent())] });
    await append({ streamId: orderId, streamType: 'Order', expectedVersion: 2, events: [meta(status(orderId, 'RESERVED', 'PAID'))] });
    before = await dump(schema);
    server = await startServer({ backend: 'pg', connectionString: PG_URL, schema, tokens: TOKENS, port: 0 });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await repo?.close();
    rmSync(dir, { recursive: true, force: true });
    const c = await pgClient();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });

  it('rows land in range partitions, partitions are created ahead, and uniqueness holds without a unique index on events', async () => {
    const c = await pgClient(schema);
    try {
      const parts = (await c.query<{ p: string; n: string }>('SELECT tableoid::regclass::text AS p, count(*)::text AS n FROM events GROUP BY 1 ORDER BY min(global_position)')).rows;
      expect(parts.map((p) => p.p)).toEqual(['events_p1', 'events_p11', 'events_p21', 'events_p31']);
      // Partitions ahead of the head (34): created at append time, outside the appends.
      await expect.poll(async () => Number((await c.query<{ hi: string }>('SELECT max(hi)::text AS hi FROM event_partitions')).rows[0]!.hi), { timeout: 10_000 }).toBeGreaterThan(34 + 10);
      const { rows: one } = await c.query('SELECT * FROM events WHERE global_position = 1');
      const e = one[0] as Record<string, unknown>;
      // Straight SQL (the owner, bypassing the store): the same event id, or the same stream version, is refused.
      await expect(
        c.query('INSERT INTO events (event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash) SELECT event_id, tenant_id, \'other\', aggregate_type, event_type, schema_version, event_data, metadata, 1, created_at, hash FROM events WHERE global_position = 1'),
      ).rejects.toThrow(/event_keys_pkey/);
      await expect(
        c.query('INSERT INTO events (event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash) SELECT gen_random_uuid(), tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash FROM events WHERE global_position = 1'),
      ).rejects.toThrow(/uq_event_keys_stream_version/);
      // Another tenant may reuse an id (migration 002's rule).
      expect(e.tenant_id).toBe(TENANT);
    } finally {
      await c.end();
    }
    expect(await repo.verifyChain({})).toMatchObject({ ok: true, eventsChecked: 34 });
  });

  it('archive --before 21 writes two verified, self-describing files and drops their partitions; reads behave as documented', async () => {
    const out = await runCli(['archive', '--before', '21', '--dir', dir], env);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('2 partition(s) archived');
    const file1 = join(dir, `${schema}.events_p1.ndjson.gz`);
    const file2 = join(dir, `${schema}.events_p11.ndjson.gz`);
    expect(existsSync(file1) && existsSync(file2)).toBe(true);
    const lines = gunzipSync(readFileSync(file1)).toString().trimEnd().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ format: 'orderlog-events-archive', partition: { name: 'events_p1', lo: 1, hi: 11 } });
    const manifest = JSON.parse(lines[lines.length - 1]!).manifest;
    expect(manifest).toMatchObject({ events: 10, firstPosition: 1, lastPosition: 10 });
    expect(manifest.tenants.map((t: { tenantId: string }) => t.tenantId).sort()).toEqual(['tenant-a', 'tenant-b']);
    const side = JSON.parse(readFileSync(`${file1}.manifest.json`, 'utf8'));
    expect(side.manifest).toEqual(manifest);

    // The store now holds positions 21.. only.
    expect((await dump(schema)).length).toBe(14);
    const a = client(server.url, DEVICE_A);
    // Seed state and read model: from the read model, no archived event needed.
    expect((await a.get(`/api/queries/orders/${orderId}`)).body).toMatchObject({ status: 'RESERVED', version: 3 });
    const state = await a.get(`/api/aggregates/${orderId}/state`);
    expect(state.status).toBe(200);
    expect(state.body).toMatchObject({ version: 3, eventCount: 3, currentState: { status: 'RESERVED' } });
    // A stream read or a pull that needs archived events fails naming the archive.
    const stream = await a.get(`/sync/streams/${orderId}/events`);
    expect(stream.status).toBe(410);
    expect(stream.body).toMatchObject({ error: 'ARCHIVED', archives: [basename(file1), basename(file2)] });
    expect(stream.body.message).not.toContain(dir);
    const pulled = await a.get('/sync/events?after=0');
    expect(pulled.status).toBe(410);
    expect(pulled.body.message).toContain(basename(file2));
    // After the archived positions, a pull works; so does a stream read after the archived versions.
    expect((await a.get('/sync/events?after=20')).status).toBe(200);
    expect((await repo.readStream(TENANT, orderId, 2)).map((e) => e.streamVersion)).toEqual([3]);
    await expect(repo.readStream(TENANT, orderId, 1)).rejects.toThrow(ArchivedEventsError);
    // A rebuild would replay part of the log: refused, naming both files.
    await expect(repo.rebuildProjections()).rejects.toThrow(new RegExp(`${file1}.*${file2}`));
    // verify-chain checks the live events from the archived anchors.
    expect(await repo.verifyChain({})).toMatchObject({ ok: true, eventsChecked: 14 });
    const cli = await runCli(['verify-chain'], env);
    expect(cli.code).toBe(0);
    // Appending on an archived stream continues its chain; resending an archived event id is refused clearly.
    expect((await repo.append({ tenantId: TENANT, streamId: orderId, streamType: 'Order', expectedVersion: 3, events: [meta(status(orderId, 'SHIPPED', 'RESERVED'))] })).status).toBe('ok');
    const oldId = JSON.parse(lines[1]!).event_id as string;
    await expect(repo.append({ tenantId: TENANT, streamId: orderId, streamType: 'Order', expectedVersion: 4, events: [meta({ ...orderCreated(orderId), eventId: oldId })] })).rejects.toThrow(ArchivedEventsError);
    expect(await repo.verifyChain({})).toMatchObject({ ok: true, eventsChecked: 15 });
  }, 60_000);

  it('restore refuses a tampered file or the older archive first, then restores newest first: every event and hash identical', async () => {
    const file1 = join(dir, `${schema}.events_p1.ndjson.gz`);
    const file2 = join(dir, `${schema}.events_p11.ndjson.gz`);
    const pool = ownerPool(PG_URL, schema);
    try {
      await expect(restoreArchive(pool, file1)).rejects.toThrow(`restore the newest archive first: ${file2}`);
      // One event's data edited, file re-compressed: the recorded checksum no longer matches, nothing changes.
      const original = readFileSync(file2);
      writeFileSync(file2, gzipSync(gunzipSync(original).toString().replace('"text": "hello"', '"text": "forged"')));
      const tampered = await restoreArchive(pool, file2).catch((err: unknown) => err);
      expect(tampered, String(tampered)).toBeInstanceOf(ArchiveError);
      writeFileSync(file2, original);
      expect((await dump(schema)).length).toBe(15);

      const out = await runCli(['restore', file2], env);
      expect(out.stderr).toBe('');
      expect(out.stdout).toContain('restored events_p11: 10 events');
      expect((await runCli(['restore', file1], env)).code).toBe(0);
    } finally {
      await pool.end();
    }
    const after = await dump(schema);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after).toHaveLength(before.length + 1);
    expect(await repo.verifyChain({})).toMatchObject({ ok: true, eventsChecked: 35 });
    expect(await repo.rebuildProjections()).toEqual({ eventsReplayed: 4 });
    expect(await repo.getOrder(TENANT, orderId)).toMatchObject({ status: 'SHIPPED', version: 4 });
    expect((await client(server.url, DEVICE_A).get('/sync/events?after=0')).status).toBe(200);

    // By date: nothing is older than 2000; every full partition is older than tomorrow (the last one, still filling, stays).
    const bad = await runCli(['archive', '--before', 'last tuesday', '--dir', dir], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/neither a position nor a date/);
    expect((await runCli(['archive', '--before', '2000-01-01', '--dir', dir], env)).stdout).toContain('0 partition(s) archived');
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const byDate = await runCli(['archive', '--before', tomorrow, '--dir', dir], env);
    expect(byDate.stdout).toContain('3 partition(s) archived');
    expect(await repo.verifyChain({})).toMatchObject({ ok: true, eventsChecked: 5 });
  }, 90_000);

  it('on the embedded SQLite store, archive says clearly that it needs PostgreSQL', async () => {
    const out = await runCli(['archive', '--before', '2026-01-01'], { ORDERLOG_DB: join(dir, 'x.sqlite') });
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/archive and restore need the PostgreSQL backend/);
  });
});

describe('an append past the last partition never fails', () => {
  const schema = randomSchema();
  afterAll(async () => {
    const c = await pgClient();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });

  it('rows beyond the partitions land in the default partition, and maintenance moves them into range partitions', async () => {
    await (await PgRepository.open({ connectionString: PG_URL, schema })).close();
    await smallPartitions(schema, 5);
    const c = await pgClient(schema);
    await c.query('UPDATE event_partitioning SET ahead = 1');
    const repo = await PgRepository.open({ connectionString: PG_URL, schema });
    try {
      const top = Number((await c.query<{ hi: string }>('SELECT max(hi)::text AS hi FROM event_partitions')).rows[0]!.hi);
      // One append of more events than the partitions ahead can hold.
      const events = Array.from({ length: top + 7 }, () => meta(newEvent()));
      expect((await repo.append({ tenantId: TENANT, streamId: 'bulk', streamType: 'Note', expectedVersion: 0, events })).status).toBe('ok');
      // The append triggered maintenance; afterwards nothing is left in the default partition.
      await expect.poll(async () => (await c.query<{ n: string }>('SELECT count(*)::text AS n FROM events_default')).rows[0]!.n, { timeout: 15_000 }).toBe('0');
      const where = (await c.query<{ p: string }>('SELECT tableoid::regclass::text AS p FROM events WHERE global_position = $1', [top + 6])).rows[0]!.p;
      expect(where).toMatch(/^events_p\d+$/);
      expect((await c.query<{ n: string }>('SELECT count(*)::text AS n FROM event_keys')).rows[0]!.n).toBe(String(top + 7));
      expect(await repo.verifyChain({})).toMatchObject({ ok: true, eventsChecked: top + 7 });
    } finally {
      await repo.close();
      await c.end();
    }
  }, 60_000);
});

describe('PostgreSQL archive order across partition bounds of different lengths', () => {
  const schema = randomSchema();
  const dir = mkdtempSync(join(tmpdir(), 'ol-archive-order-'));
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    const c = await pgClient();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });

  it('archives oldest first by position: partition 6 before 11 (as text, "11" sorted before "6" and the archived partitions stopped being a prefix)', async () => {
    await (await PgRepository.open({ connectionString: PG_URL, schema })).close();
    await smallPartitions(schema, 5);
    const repo = await PgRepository.open({ connectionString: PG_URL, schema });
    const owner = ownerPool(PG_URL, schema);
    try {
      const events = Array.from({ length: 30 }, () => meta(newEvent()));
      expect((await repo.append({ tenantId: TENANT, streamId: 'order-of-archive', streamType: 'Note', expectedVersion: 0, events })).status).toBe('ok');
      // Maintenance moves what landed past the partitions into range partitions of their own.
      const c0 = await pgClient(schema);
      try {
        await expect.poll(async () => (await c0.query<{ n: string }>('SELECT count(*)::text AS n FROM events_default')).rows[0]!.n, { timeout: 15_000 }).toBe('0');
      } finally {
        await c0.end();
      }
      const done = await archivePartitions(owner, schema, { position: 16 }, dir);
      expect(done.map((d) => d.partition)).toEqual(['events_p1', 'events_p6', 'events_p11']);
      const c = await pgClient(schema);
      try {
        const states = (await c.query<{ name: string; state: string }>('SELECT name, state FROM event_partitions WHERE lo < 31 ORDER BY lo')).rows;
        expect(states.map((s) => `${s.name}:${s.state}`)).toEqual(['events_p1:archived', 'events_p6:archived', 'events_p11:archived', 'events_p16:live', 'events_p21:live', 'events_p26:live']);
      } finally {
        await c.end();
      }
      // The live rows are the positions after the archived prefix.
      const page = await repo.pull(TENANT, 15, 100);
      expect(page.events.map((e) => e.globalPosition)).toEqual(Array.from({ length: 15 }, (_, i) => 16 + i));
    } finally {
      await owner.end();
      await repo.close();
    }
  }, 60_000);
});
