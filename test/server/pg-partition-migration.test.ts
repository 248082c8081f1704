import { afterAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIGRATIONS_ROOT, loadMigrations } from '../../src/db/migrations.js';
import { GENESIS_HASH, computeEventHash } from '../../src/server/hash.js';
import { archivePartitions, ownerPool, restoreArchive } from '../../src/server/store/pg/archive.js';
import { migratePg, schemaPool } from '../../src/server/store/pg/migrate.js';
import { PgRepository } from '../../src/server/store/pg/pg-repository.js';
import { PG_URL, newEvent, pgClient, randomSchema } from './helpers.js';

const PG_DIR = join(MIGRATIONS_ROOT, 'server-pg');
/** The partitioning migration, found by what it does (the lead renumbers migrations at merge). */
const partitioning = loadMigrations(PG_DIR).find((m) => m.sql.includes('PARTITION BY RANGE (global_position)'))!;

async function dump(schema: string): Promise<string[]> {
  const c = await pgClient(schema);
  try {
    return (await c.query<{ j: string }>('SELECT to_jsonb(e)::text AS j FROM events e ORDER BY global_position')).rows.map((r) => r.j);
  } finally {
    await c.end();
  }
}

async function relkind(schema: string): Promise<string> {
  const c = await pgClient(schema);
  try {
    return (await c.query<{ k: string }>("SELECT relkind::text AS k FROM pg_class WHERE oid = 'events'::regclass")).rows[0]!.k;
  } finally {
    await c.end();
  }
}

describe('migrating an installation with a plain events table to partitions', () => {
  const schema = randomSchema();
  const older = mkdtempSync(join(tmpdir(), 'ol-pg-migrations-'));
  const archives = mkdtempSync(join(tmpdir(), 'ol-pg-archives-'));

  afterAll(async () => {
    rmSync(older, { recursive: true, force: true });
    rmSync(archives, { recursive: true, force: true });
    const c = await pgClient();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });

  it('a crash inside the migration changes nothing; the rerun keeps every event and hash; the old table archives and restores', async () => {
    expect(partitioning).toBeDefined();
    // The schema as an installation before this migration has it, with 120 chained events in it.
    for (const f of readdirSync(PG_DIR)) if (Number.parseInt(f, 10) < partitioning.version) copyFileSync(join(PG_DIR, f), join(older, f));
    const pool = schemaPool(PG_URL, schema, 2);
    try {
      expect(await migratePg(pool, schema, older)).toBe(partitioning.version - 1);
      const heads = new Map<string, { version: number; hash: string }>();
      for (let i = 0; i < 120; i++) {
        const streamId = `s-${i % 7}`;
        const head = heads.get(streamId) ?? { version: 0, hash: GENESIS_HASH };
        const e = { ...newEvent('NoteAdded', { text: `n${i}` }), metadata: { userId: 'u1' } };
        const recordedAt = new Date(Date.UTC(2025, 0, 1) + i * 60_000).toISOString();
        const version = head.version + 1;
        const hash = computeEventHash(head.hash, { eventId: e.eventId, streamId, streamVersion: version, eventType: e.eventType, schemaVersion: 1, data: e.data, metadata: e.metadata, recordedAt });
        await pool.query(
          `INSERT INTO events (event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash)
           VALUES ($1, 'tenant-a', $2, 'Note', $3, 1, $4, $5, $6, $7, $8)`,
          [e.eventId, streamId, e.eventType, e.data, e.metadata, version, recordedAt, hash],
        );
        heads.set(streamId, { version, hash });
      }
      for (const [streamId, h] of heads) {
        await pool.query(`INSERT INTO streams (tenant_id, aggregate_id, aggregate_type, version, last_hash) VALUES ('tenant-a', $1, 'Note', $2, $3)`, [streamId, h.version, h.hash]);
      }
    } finally {
      await pool.end();
    }
    const before = await dump(schema);
    expect(before).toHaveLength(120);

    // Crash: the migration's last step (recording itself) waits on a row this client holds; its backend is killed there.
    const blocker = await pgClient(schema);
    await blocker.query('BEGIN');
    await blocker.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [partitioning.version, 'blocker']);
    const { rows: me } = await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const crashing = schemaPool(PG_URL, schema, 1);
    const attempt = migratePg(crashing, schema).then(
      () => null,
      (err: unknown) => err,
    );
    const admin = await pgClient();
    try {
      let victim: number | undefined;
      await expect
        .poll(
          async () => {
            victim = (await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))', [me[0]!.pid])).rows[0]?.pid;
            return victim;
          },
          { timeout: 30_000 },
        )
        .toBeDefined();
      await admin.query('SELECT pg_terminate_backend($1)', [victim]);
    } finally {
      await admin.end();
    }
    expect(await attempt).toBeInstanceOf(Error);
    await crashing.end().catch(() => undefined);
    await blocker.query('ROLLBACK');
    await blocker.end();
    expect(await relkind(schema)).toBe('r');
    expect(await dump(schema)).toEqual(before);

    // Resume: the rerun completes; every row (every hash) is as it was, now in a partitioned table.
    const repo = await PgRepository.open({ connectionString: PG_URL, schema });
    try {
      expect(await relkind(schema)).toBe('p');
      expect(await dump(schema)).toEqual(before);
      expect(await repo.verifyChain({})).toMatchObject({ ok: true, eventsChecked: 120, streamsChecked: 7 });
      const next = await repo.append({ tenantId: 'tenant-a', streamId: 's-0', streamType: 'Note', expectedVersion: 18, events: [{ ...newEvent(), metadata: {} }] });
      expect(next).toMatchObject({ status: 'ok', result: { events: [{ globalPosition: 121 }] } });
      // The same event id again on another stream: judged against the migrated keys.
      const dup = await repo.append({ tenantId: 'tenant-a', streamId: 's-new', streamType: 'Note', expectedVersion: 0, events: [{ eventId: (JSON.parse(before[0]!) as { event_id: string }).event_id, eventType: 'NoteAdded', schemaVersion: 1, data: { text: 'other' }, metadata: {} }] }).catch((err: unknown) => err);
      expect(String(dup)).toMatch(/already stored|IDEMPOTENCY|different content/i);

      // The former plain table is the first partition: it archives and restores like any other.
      const owner = ownerPool(PG_URL, schema);
      try {
        const done = await archivePartitions(owner, schema, { position: 121 }, archives);
        expect(done).toMatchObject([{ partition: 'events_legacy', events: 120, firstPosition: 1, lastPosition: 120 }]);
        expect(await repo.verifyChain({})).toMatchObject({ ok: true, eventsChecked: 1 });
        await restoreArchive(owner, done[0]!.file);
      } finally {
        await owner.end();
      }
      expect((await dump(schema)).slice(0, 120)).toEqual(before);
      expect(await repo.verifyChain({})).toMatchObject({ ok: true, eventsChecked: 121 });
    } finally {
      await repo.close();
    }
  }, 120_000);
});
