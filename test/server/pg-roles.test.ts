import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { ConflictResponse, PullResponse } from '../../src/protocol/sync-api.js';
import { MigrationRequiredError, startServer, type StartedServer } from '../../src/server/index.js';
import { ADMIN_A, DEVICE_A, PG_URL, TOKENS, client, newEvent, orderCreated, pgClient, randomSchema, runServerCli } from './helpers.js';


/** The same server and database, logged in as another role (trust authentication on the test cluster). */
function urlAs(role: string): string {
  const u = new URL(PG_URL);
  u.username = role;
  u.password = '';
  return u.toString();
}

const runCli = runServerCli;

describe('PostgreSQL least privilege: owner migrates, the server works as an app role', () => {
  const suffix = randomBytes(5).toString('hex');
  const owner = `ol_owner_${suffix}`;
  const app = `ol_app_${suffix}`;
  const schema = randomSchema();
  let server: StartedServer;
  let asApp: pg.Client;

  beforeAll(async () => {
    const admin = await pgClient();
    try {
      await admin.query(`CREATE ROLE ${owner} LOGIN`);
      await admin.query(`CREATE ROLE ${app} LOGIN`);
      const { rows } = await admin.query<{ db: string }>('SELECT current_database() AS db');
      await admin.query(`GRANT CREATE ON DATABASE ${pg.escapeIdentifier(rows[0]!.db)} TO ${owner}`);
    } finally {
      await admin.end();
    }
  });

  afterAll(async () => {
    await asApp?.end().catch(() => undefined);
    await server?.close();
    const admin = await pgClient();
    try {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      for (const role of [owner, app]) {
        await admin.query(`DROP OWNED BY ${role} CASCADE`);
        await admin.query(`DROP ROLE ${role}`);
      }
    } finally {
      await admin.end();
    }
  });

  it('the app role alone cannot create the schema: a clear error names the migrate command', async () => {
    await expect(startServer({ backend: 'pg', connectionString: urlAs(app), schema, tokens: TOKENS, port: 0 })).rejects.toThrow(MigrationRequiredError);
    await expect(startServer({ backend: 'pg', connectionString: urlAs(app), schema, tokens: TOKENS, port: 0 })).rejects.toThrow(/npm run server -- migrate/);
  });

  it('`npm run server -- migrate` migrates as the owner and grants the app role; the server then works end to end as the app role', async () => {
    const migrated = await runCli(['migrate'], { ORDERLOG_DATABASE_URL: urlAs(app), ORDERLOG_MIGRATE_DATABASE_URL: urlAs(owner), ORDERLOG_PG_SCHEMA: schema });
    expect(migrated.stderr).toBe('');
    expect(migrated.code).toBe(0);
    expect(migrated.stdout).toContain(`role ${app} granted`);

    // Only the app role's URL: the schema is current, so nothing needs the owner.
    server = await startServer({ backend: 'pg', connectionString: urlAs(app), schema, tokens: TOKENS, port: 0 });
    const a = client(server.url, DEVICE_A);
    const admin = client(server.url, ADMIN_A);
    const orderId = `ord-roles-${suffix}`;
    expect((await a.post(`/sync/streams/${orderId}/append`, { streamType: 'Order', expectedVersion: 0, events: [orderCreated(orderId)] })).status).toBe(201);
    const stale = await a.post(`/sync/streams/${orderId}/append`, { streamType: 'Order', expectedVersion: 0, events: [orderCreated(orderId)] });
    expect(ConflictResponse.parse(stale.body).missingEvents).toHaveLength(1);
    const pushed = await a.post('/sync/push', { appends: [{ streamId: `note-${suffix}`, streamType: 'Note', expectedVersion: 0, events: [newEvent()] }] });
    expect(pushed.body.results[0].status).toBe('ok');
    const pulled = PullResponse.parse((await a.get('/sync/events?after=0')).body);
    expect(pulled.events).toHaveLength(2);
    expect((await a.put(`/api/commands/orders/${orderId}/status`, { status: 'RESERVED', expectedVersion: 1 })).status).toBe(200);
    expect((await admin.post('/api/admin/projections/rebuild')).body.eventsReplayed).toBe(2);
    expect((await a.get(`/api/queries/orders/${orderId}`)).body).toMatchObject({ status: 'RESERVED', version: 2 });
    expect((await admin.get('/api/admin/audit/verify')).body).toMatchObject({ ok: true, eventsChecked: 3 });
  });

  it('the app role cannot update, delete, truncate, alter, disable triggers on, or replicate around the events table', async () => {
    asApp = new pg.Client({ connectionString: urlAs(app), options: `-c search_path=${schema}` });
    await asApp.connect();
    expect((await asApp.query<{ n: string }>('SELECT count(*) AS n FROM events')).rows[0]!.n).toBe('3');
    const refused: [string, RegExp][] = [
      [`UPDATE events SET event_data = '{"forged":true}'::jsonb`, /permission denied/],
      ['DELETE FROM events', /permission denied/],
      ['TRUNCATE events', /permission denied/],
      ['ALTER TABLE events DISABLE TRIGGER ALL', /must be owner/],
      ['ALTER TABLE events DISABLE TRIGGER events_no_update_delete', /must be owner/],
      ['DROP TRIGGER events_no_update_delete ON events', /must be owner/],
      ['DROP TABLE events', /must be owner/],
      ['SET session_replication_role = replica', /permission denied/],
      // Partitions: no detaching or dropping one (that is archival, the owner's), no forging the key table.
      ['ALTER TABLE events DETACH PARTITION events_p1', /must be owner/],
      ['DROP TABLE events_p1', /must be owner/],
      ['DELETE FROM event_keys', /permission denied/],
      ['CREATE TABLE events_p999999999 PARTITION OF events FOR VALUES FROM (999999999) TO (1000000000)', /permission denied|must be owner/],
    ];
    for (const [sql, error] of refused) await expect(asApp.query(sql), sql).rejects.toThrow(error);
    // Partitions ahead are the owner's function's job, which the app role may call.
    await asApp.query('SELECT ensure_event_partitions()');
    expect((await asApp.query<{ n: number }>('SELECT ensure_event_partitions() AS n')).rows[0]!.n).toBe(0);
    // History is untouched: three events, chain intact.
    expect((await asApp.query<{ n: string }>('SELECT count(*) AS n FROM events')).rows[0]!.n).toBe('3');
    expect((await client(server.url, ADMIN_A).get('/api/admin/audit/verify')).body).toMatchObject({ ok: true });
  });
});
