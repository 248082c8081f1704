/** Every SQL statement of the PostgreSQL dialect (the schema itself is in migrations/server-pg/). */

const EVENT_COLUMNS =
  'global_position, event_id::text AS event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash';

const PROJECTION_UPSERT = `ON CONFLICT (tenant_id, order_id) DO UPDATE SET customer_id = excluded.customer_id, status = excluded.status, total = excluded.total,
         currency = excluded.currency, item_count = excluded.item_count, version = excluded.version, last_event_id = excluded.last_event_id,
         last_position = excluded.last_position, created_at = excluded.created_at, updated_at = excluded.updated_at, state = excluded.state`;

/**
 * One statement writes a whole append: every event (one multi-row INSERT from arrays, positions
 * drawn in version order), the stream head, and (Order streams) the read-model row, whose
 * last_position is the highest position just drawn.
 */
const APPEND_WRITE_CTES = `WITH ins AS (
    INSERT INTO events (event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash)
    SELECT u.event_id, $1, $2, $3, u.event_type, u.schema_version, u.event_data, u.metadata, u.version, $10::timestamptz, u.hash
    FROM unnest($4::uuid[], $5::text[], $6::int[], $7::jsonb[], $8::jsonb[], $9::int[], $11::text[])
      WITH ORDINALITY AS u(event_id, event_type, schema_version, event_data, metadata, version, hash, ord)
    ORDER BY u.ord
    RETURNING global_position, version),
  head AS (UPDATE streams SET version = $12, last_hash = $13, aggregate_type = $3 WHERE tenant_id = $1 AND aggregate_id = $2)`;

/**
 * Only rows of transactions older than every running one (cluster-wide: any open transaction
 * with an id holds pulls back, see docs/architecture.md). Every transaction that may still
 * commit has an id at or above this, so a cursor pull ordered by (txid, position) never passes
 * a row that commits later.
 */
const SETTLED = 'txid < pg_snapshot_xmin(pg_current_snapshot())';

export const SQL = {
  /**
   * An append's first round trip: BEGIN, then the shared side of the position pulls' drain lock,
   * the append's streams (their keys sorted, so two pushes cannot deadlock) and the shared side
   * of the rebuild lock (waits out a projection rebuild before anything is read for the fold).
   * Advisory locks give the transaction no id: it gets one only at its first write, after every
   * lock it needs is held — what keeps (txid, position) order in version order on every stream
   * (docs/architecture.md). A simple query, so the keys are inlined: integers this module made.
   */
  appendBegin: (drain: readonly [number, number], streams: readonly string[], rebuild: readonly [number, number]): string => {
    const int = (n: number | string): string => {
      if (!/^-?\d+$/.test(String(n))) throw new TypeError(`not an advisory lock key: ${String(n)}`);
      return String(n);
    };
    return `BEGIN; SELECT count(*) FROM (
              SELECT pg_advisory_xact_lock_shared(${int(drain[0])}, ${int(drain[1])})
              UNION ALL
              SELECT pg_advisory_xact_lock(k) FROM unnest('{${streams.map(int).join(',')}}'::bigint[]) AS k
              UNION ALL
              SELECT pg_advisory_xact_lock_shared(${int(rebuild[0])}, ${int(rebuild[1])})) AS locks`;
  },
  /**
   * Lock (or create) the stream head and, in the same statement, read what the append needs:
   * the rows stored under its event ids and (Order streams) the order's folded state. One
   * snapshot serves both: it is taken after appendBegin returned, so after the previous holder
   * of every stream of this append committed. This first write gives the transaction its id
   * before any position is drawn (the txid column's default).
   */
  lockHeadRead: `WITH h AS (
               INSERT INTO streams (tenant_id, aggregate_id, aggregate_type, version, last_hash) VALUES ($1, $2, $3, 0, $4)
               ON CONFLICT (tenant_id, aggregate_id) DO UPDATE SET version = streams.version
               RETURNING version, last_hash, aggregate_type)
             SELECT h.version, h.last_hash, h.aggregate_type,
               (SELECT json_agg(d) FROM (SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = $1 AND event_id = ANY($5::uuid[])) d) AS dups,
               CASE WHEN $6::boolean THEN (SELECT state FROM order_projections WHERE tenant_id = $1 AND order_id = $2) END AS state
             FROM h`,
  /** Only when readForAppend is asked for something lockHeadRead did not read. */
  readForAppend: `SELECT (SELECT json_agg(d) FROM (SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = $2 AND event_id = ANY($1::uuid[])) d) AS dups,
                    CASE WHEN $4::boolean THEN (SELECT state FROM order_projections WHERE tenant_id = $2 AND order_id = $3) END AS state`,
  streamEvents: `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = $1 AND aggregate_id = $2 AND version > $3 ORDER BY version LIMIT $4`,
  appendWrite: `${APPEND_WRITE_CTES}
  SELECT global_position, version FROM ins`,
  appendWriteOrder: `${APPEND_WRITE_CTES},
  proj AS (
    INSERT INTO order_projections (tenant_id, order_id, customer_id, status, total, currency, item_count, version, last_event_id, last_position, created_at, updated_at, state)
    SELECT $1, $2, $14, $15, $16, $17, $18, $19, $20, (SELECT max(global_position) FROM ins), $21, $22, $23
    ${PROJECTION_UPSERT})
  SELECT global_position, version FROM ins`,
  savepoint: 'SAVEPOINT ol_push_element',
  release: 'RELEASE SAVEPOINT ol_push_element',
  rollbackToSavepoint: 'ROLLBACK TO SAVEPOINT ol_push_element',
  begin: 'BEGIN',
  beginSnapshot: 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
  commit: 'COMMIT',
  rollback: 'ROLLBACK',
  /** Exclusive against every append's shared lock. */
  rebuildLock: 'SELECT pg_advisory_xact_lock($1, $2)',
  clearProjections: 'DELETE FROM order_projections WHERE $1::text IS NULL OR tenant_id = $1',
  readModelVersion: 'SELECT version FROM read_model_version WHERE id = 1',
  setReadModelVersion: 'UPDATE read_model_version SET version = $1 WHERE id = 1',
  orderEventsAfter: `SELECT ${EVENT_COLUMNS} FROM events WHERE aggregate_type = $1 AND ($4::text IS NULL OR tenant_id = $4) AND global_position > $2
           ORDER BY global_position LIMIT $3`,
  projectionState: 'SELECT state FROM order_projections WHERE tenant_id = $1 AND order_id = $2',
  upsertProjection: `INSERT INTO order_projections (tenant_id, order_id, customer_id, status, total, currency, item_count, version, last_event_id, last_position, created_at, updated_at, state)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
       ${PROJECTION_UPSERT}`,
  chain: `SELECT ${EVENT_COLUMNS} FROM events
         WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR aggregate_id = $2)
           AND (tenant_id, aggregate_id, version) > ($3, $4, $5)
         ORDER BY tenant_id, aggregate_id, version LIMIT $6`,
  heads: `SELECT s.tenant_id, s.aggregate_id, s.version, s.last_hash, e.version AS ev_version, e.hash AS ev_hash
         FROM streams s
         LEFT JOIN LATERAL (SELECT version, hash FROM events x WHERE x.tenant_id = s.tenant_id AND x.aggregate_id = s.aggregate_id ORDER BY version DESC LIMIT 1) e ON true
         WHERE ($1::text IS NULL OR s.tenant_id = $1) AND ($2::text IS NULL OR s.aggregate_id = $2)
           AND (s.tenant_id, s.aggregate_id) > ($3, $4)
         ORDER BY s.tenant_id, s.aggregate_id LIMIT $5`,
  /** The cursor pull: (txid, position) order over settled rows (index idx_events_tenant_txid_position). */
  pull: `SELECT ${EVENT_COLUMNS}, txid::text AS txid FROM events
       WHERE tenant_id = $1 AND (txid, global_position) > ($2::xid8, $3::bigint) AND ${SETTLED}
       ORDER BY txid, global_position LIMIT $4`,
  /** Exclusive against every append's shared lock: taken, it means no append holds an uncommitted position. */
  positionPullDrain: 'SELECT pg_advisory_xact_lock($1, $2)',
  /** A position pull, under the drain: every drawn position is settled, so position order is gap-free. */
  pullByPosition: `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = $1 AND global_position > $2 ORDER BY global_position LIMIT $3`,
  /** Under the drain: no appender has a transaction id yet, so every later event's txid is at least this. */
  nextTxid: 'SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x',
  projection: 'SELECT * FROM order_projections WHERE tenant_id = $1 AND order_id = $2',
  dashboardPage: `SELECT * FROM order_projections WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
         ORDER BY updated_at DESC, order_id LIMIT $3 OFFSET $4`,
  dashboardCount: 'SELECT count(*) AS n FROM order_projections WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)',
  dashboardPosition: 'SELECT max(last_position) AS p FROM order_projections WHERE tenant_id = $1',
  /**
   * Changes whenever a pull may see more: a row becomes visible to cursor pulls only when the
   * snapshot xmin passes its txid, and to position pulls (which drain) when it commits.
   */
  visibleHead: `SELECT pg_snapshot_xmin(pg_current_snapshot())::text || '/' || coalesce((SELECT max(global_position) FROM events), 0) AS marker`,
  ping: 'SELECT 1',

  // Migrations and the app role's grants.
  migrationsTable: `SELECT to_regclass('schema_migrations')::text AS t`,
  appliedMigrations: 'SELECT version FROM schema_migrations ORDER BY version',
  migrateLock: 'SELECT pg_advisory_lock($1, $2)',
  migrateUnlock: 'SELECT pg_advisory_unlock($1, $2)',
  createSchema: (quotedSchema: string) => `CREATE SCHEMA IF NOT EXISTS ${quotedSchema}`,
  createMigrationsTable: 'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())',
  recordMigration: 'INSERT INTO schema_migrations (version, name) VALUES ($1, $2)',
  currentUser: 'SELECT current_user AS u',
  /**
   * What the server's role may do, and nothing more: read and append events (no UPDATE, DELETE,
   * TRUNCATE; not the owner, so no ALTER TABLE or DISABLE TRIGGER), move stream heads, maintain
   * the read model. Re-run after every migration (idempotent); a new table needs its line here.
   */
  appRoleGrants: [
    'GRANT USAGE ON SCHEMA {schema} TO {role}',
    'REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}',
    'GRANT SELECT, INSERT ON events TO {role}',
    'GRANT SELECT, INSERT, UPDATE ON streams TO {role}',
    'GRANT SELECT, INSERT, UPDATE, DELETE ON order_projections TO {role}',
    'GRANT SELECT ON schema_migrations TO {role}',
    'GRANT SELECT, UPDATE ON read_model_version TO {role}',
  ],
} as const;
