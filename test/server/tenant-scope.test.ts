import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { v7 as uuidv7 } from 'uuid';
import { MIGRATIONS_ROOT, migrateSqlite } from '../../src/db/migrations.js';
import { prepareEvents } from '../../src/server/store/append-logic.js';
import { GENESIS_HASH, SqliteRepository, startServer, type StartedServer } from '../../src/server/index.js';
import type { TokenEntry } from '../../src/server/tokens.js';
import { BACKENDS, client, orderCreated, type TestBackend } from './helpers.js';

const ROOT = join(import.meta.dirname, '..', '..');
function sqliteEnv(): NodeJS.ProcessEnv {
  const { ORDERLOG_DATABASE_URL: _pg, ORDERLOG_MIGRATE_DATABASE_URL: _owner, ...env } = process.env;
  return env;
}
const TOKENS: TokenEntry[] = [
  { token: 'scope-admin-tenant-a-0001', tenant: 'tenant-a', user: 'ops-a', roles: ['device', 'admin'] },
  { token: 'scope-admin-tenant-b-0001', tenant: 'tenant-b', user: 'ops-b', roles: ['device', 'admin'] },
];
let seq = 0;
const sid = (p: string) => `${p}-${Date.now().toString(36)}-${++seq}`;

describe.each(BACKENDS)('tenant scoping on $name', (factory) => {
  let backend: TestBackend;
  let server: StartedServer;
  let a: ReturnType<typeof client>;
  let b: ReturnType<typeof client>;

  beforeAll(async () => {
    backend = await factory.make();
    server = await startServer({ ...backend.opts, tokens: TOKENS, port: 0 });
    a = client(server.url, TOKENS[0]!.token);
    b = client(server.url, TOKENS[1]!.token);
  });
  afterAll(async () => {
    await server?.close();
    await backend?.cleanup();
  });

  const append = (c: ReturnType<typeof client>, streamId: string, expectedVersion: unknown, events: unknown[], streamType = 'Order') =>
    c.post(`/sync/streams/${streamId}/append`, { streamType, expectedVersion, events });

  it("an admin rebuild replays only its own tenant's read model and counts only its events", async () => {
    const orderA = sid('ord-a');
    const orderB = sid('ord-b');
    expect((await append(a, orderA, 0, [orderCreated(orderA, 1000)])).status).toBe(201);
    for (const id of [orderB, sid('ord-b')]) expect((await append(b, id, 0, [orderCreated(id, 2000)])).status).toBe(201);
    // Corrupt both tenants' read models behind the server's back.
    const raw = await backend.raw();
    try {
      expect(await raw.exec('UPDATE order_projections SET total = 1 WHERE order_id IN (?, ?)', [orderA, orderB])).toBe(2);
    } finally {
      await raw.close();
    }
    const rebuilt = await a.post('/api/admin/projections/rebuild');
    expect(rebuilt.status).toBe(200);
    expect(rebuilt.body.eventsReplayed).toBe(1);
    // The seed API answers in major units: 1000 cents are 10.00.
    expect((await a.get(`/api/queries/orders/${orderA}`)).body.total).toBe(10);
    // tenant-b's rows were neither deleted nor replayed
    expect((await b.get(`/api/queries/orders/${orderB}`)).body.total).toBe(0.01);
    expect((await b.post('/api/admin/projections/rebuild')).body.eventsReplayed).toBe(2);
    expect((await b.get(`/api/queries/orders/${orderB}`)).body.total).toBe(20);
  });

  it("another tenant's event id is neither refused nor revealed; ids stay idempotency keys within a tenant", async () => {
    const eventId = uuidv7();
    const note = (text: string) => ({ eventId, eventType: 'NoteAdded', schemaVersion: 1, data: { text } });
    const streamA = sid('note-a');
    expect((await append(a, streamA, 0, [note('of tenant a')], 'Note')).status).toBe(201);
    // Same id in tenant-b, different content and stream: stored, as if the id were new.
    const streamB = sid('note-b');
    const inB = await append(b, streamB, 0, [note('of tenant b')], 'Note');
    expect(inB.status).toBe(201);
    expect(inB.body).toMatchObject({ duplicate: false, fromVersion: 1 });
    // Within tenant-b the id is now taken: a retry is a duplicate, a reuse elsewhere a conflict.
    expect((await append(b, streamB, 0, [note('of tenant b')], 'Note')).body.duplicate).toBe(true);
    expect((await append(b, sid('note-b'), 0, [note('of tenant b')], 'Note')).status).toBe(422);
    // Each tenant reads its own event under that id.
    expect((await a.get(`/sync/streams/${streamA}/events`)).body.events[0].data).toEqual({ text: 'of tenant a' });
    expect((await b.get(`/sync/streams/${streamB}/events`)).body.events[0].data).toEqual({ text: 'of tenant b' });
    expect((await a.get('/api/admin/audit/verify')).body.ok).toBe(true);
    expect((await b.get('/api/admin/audit/verify')).body.ok).toBe(true);
  });
});

describe('tenant scoping: operator command and upgrade', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'orderlog-scope-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('`npm run server -- rebuild-projections` rebuilds one tenant with --tenant, every tenant without', async () => {
    const file = join(dir, 'cli.sqlite');
    const server = await startServer({ backend: 'sqlite', file, tokens: TOKENS, port: 0 });
    try {
      for (const [c, n] of [[client(server.url, TOKENS[0]!.token), 2], [client(server.url, TOKENS[1]!.token), 3]] as const) {
        for (let i = 0; i < n; i++) {
          const id = sid('cli');
          expect((await c.post(`/sync/streams/${id}/append`, { streamType: 'Order', expectedVersion: 0, events: [orderCreated(id)] })).status).toBe(201);
        }
      }
    } finally {
      await server.close();
    }
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'server', 'cli.ts'), ...args], {
          env: { ...sqliteEnv(), ORDERLOG_DB: file },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let stdout = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.on('exit', (code) => resolve({ code, stdout }));
      });
    const one = await run(['rebuild-projections', '--tenant', 'tenant-b']);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/tenant tenant-b: 3 events replayed/);
    const all = await run(['rebuild-projections']);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/every tenant: 5 events replayed/);
  });

  it('migration 002 keeps every event, position and hash of a database made before it (SQLite)', async () => {
    const file = join(dir, 'old.sqlite');
    const only001 = join(dir, 'migrations-001');
    mkdirSync(only001);
    copyFileSync(join(MIGRATIONS_ROOT, 'server-sqlite', '001_events.sql'), join(only001, '001_events.sql'));
    const db = new Database(file);
    migrateSqlite(db, only001);
    const eventId = uuidv7();
    const cmd = { tenantId: 'tenant-a', streamId: 'old-1', streamType: 'Note', expectedVersion: 0 as const, events: [{ ...orderCreated('x'), eventType: 'NoteAdded', schemaVersion: 1, data: { text: 'from before' }, eventId, metadata: {} }] };
    const [p] = prepareEvents(cmd, 0, GENESIS_HASH, new Date().toISOString());
    db.prepare(
      `INSERT INTO events (global_position, event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash)
       VALUES (41, ?, 'tenant-a', 'old-1', 'Note', 'NoteAdded', 1, ?, ?, 1, ?, ?)`,
    ).run(eventId, p!.dataJson, p!.metadataJson, p!.recordedAt, p!.hash);
    db.prepare(`INSERT INTO streams VALUES ('tenant-a', 'old-1', 'Note', 1, ?)`).run(p!.hash);
    db.close();

    const repo = new SqliteRepository(file);
    try {
      expect(await repo.verifyChain({})).toMatchObject({ ok: true, eventsChecked: 1 });
      expect((await repo.pull('tenant-a', 0, 10)).events.map((e) => [e.eventId, e.globalPosition])).toEqual([[eventId, 41]]);
      // Positions continue after the copied ones; the append-only guard is back.
      const next = await repo.append({ tenantId: 'tenant-b', streamId: 'new-1', streamType: 'Note', expectedVersion: 0, events: [{ eventId, eventType: 'NoteAdded', schemaVersion: 1, data: { text: 'b' }, metadata: {} }] });
      expect(next.status === 'ok' && next.result.events[0]!.globalPosition).toBe(42);
    } finally {
      await repo.close();
    }
    const check = new Database(file);
    try {
      expect(() => check.prepare('DELETE FROM events').run()).toThrow(/append-only/);
      expect(() => check.prepare("UPDATE events SET event_data = '{}'").run()).toThrow(/append-only/);
    } finally {
      check.close();
    }
  });
});
