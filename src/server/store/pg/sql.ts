/** Every SQL statement of the PostgreSQL dialect (the schema itself is in migrations/server-pg/). */

const EVENT_COLUMNS =
  'global_position, event_id::text AS event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash';

const PROJECTION_UPSERT = `ON CONFLICT (tenant_id, order_id) DO UPDATE SET customer_id = excluded.customer_id, customer_name = excluded.customer_name,
         status = excluded.status, payment_status = excluded.payment_status, fulfilment_status = excluded.fulfilment_status, total = excluded.total,
         currency = excluded.currency, item_count = excluded.item_count, version = excluded.version, last_event_id = excluded.last_event_id,
         last_position = excluded.last_position, created_at = excluded.created_at, updated_at = excluded.updated_at, state = excluded.state`;

/**
 * The rows stored under the event ids `ids` of tenant `tenant` (SQL expressions), and the ids
 * whose rows are archived (with their archive): one indexed probe per id. Lateral lookups, not
 * `event_id = ANY(ids)`: without statistics (a partition just created, or autovacuum off) the
 * planner read the tenant's whole index range and filtered it by id, so every append read every
 * row its tenant had stored and appends slowed down as the log grew (test/server/pg-plans).
 * OFFSET 0 keeps each lookup a subquery of its own (a join of the ids with the table was
 * planned as the same range scan); a LIMIT would too, but it makes a scan that stops at the
 * first match look cheap.
 */
const storedUnder = (tenant: string, ids: string): string =>
  `(SELECT json_agg(d) FROM (SELECT e.* FROM unnest(${ids}) AS u(id)
       CROSS JOIN LATERAL (SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = ${tenant} AND event_id = u.id OFFSET 0) e) d)`;
const archivedUnder = (tenant: string, ids: string): string =>
  `(SELECT json_agg(json_build_object('eventId', k.event_id, 'archive', p.archive_file)) FROM unnest(${ids}) AS u(id)
       CROSS JOIN LATERAL (SELECT event_id, global_position FROM event_keys WHERE tenant_id = ${tenant} AND event_id = u.id OFFSET 0) k
       JOIN event_partitions p ON p.state = 'archived' AND k.global_position >= p.lo AND k.global_position < p.hi)`;

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
 * The pull horizon: the oldest transaction id an append of this store may still commit rows
 * under. Read from the statement's snapshot, then the lock table (after it, in the same
 * statement): the snapshot's running ids whose transactions hold the store's drain lock
 * ($1, $2: its two keys, unsigned; every append takes it before its first write, so before it
 * has an id), else the snapshot's xmax. Every transaction below it that may write events has
 * ended by the time the lock table is read, so a pull's next statement (a later snapshot) sees
 * every row under it that will ever exist (docs/architecture.md, "Gap-safe pulls"). Transactions
 * that write no events (a report, another database's, another store's) hold nothing back.
 */
const HORIZON = `(WITH snap AS (SELECT pg_current_snapshot() AS s),
    locks AS MATERIALIZED (SELECT locktype, database, classid, objid, objsubid, transactionid, mode, pid FROM pg_locks),
    appenders AS (
      SELECT own.transactionid::text::int8 AS xid32 FROM locks drain JOIN locks own ON own.pid = drain.pid
      WHERE drain.locktype = 'advisory' AND drain.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND drain.classid = $1::int8::oid AND drain.objid = $2::int8::oid AND drain.objsubid = 2
        AND own.locktype = 'transactionid' AND own.mode = 'ExclusiveLock')
  SELECT least(pg_snapshot_xmax(s), (
      SELECT x FROM pg_snapshot_xip(s) AS x WHERE x::text::int8 % 4294967296 IN (SELECT xid32 FROM appenders) ORDER BY x LIMIT 1))
  FROM snap)`;

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
    // Statements of an append are planned for their values each time, with the tables' sizes of
    // now: a plan cached while a partition was nearly empty (five executions in, before any
    // statistics) kept reading the tenant's whole index range for every id as the log grew.
    return `BEGIN; SET LOCAL plan_cache_mode = force_custom_plan; SELECT count(*) FROM (
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
               ${storedUnder('$1', '$5::uuid[]')} AS dups,
               ${archivedUnder('$1', '$5::uuid[]')} AS archived,
               CASE WHEN $6::boolean THEN (SELECT state FROM order_projections WHERE tenant_id = $1 AND order_id = $2) END AS state
             FROM h`,
  /** Only when readForAppend is asked for something lockHeadRead did not read. */
  readForAppend: `SELECT ${storedUnder('$2', '$1::uuid[]')} AS dups,
                    ${archivedUnder('$2', '$1::uuid[]')} AS archived,
                    CASE WHEN $4::boolean THEN (SELECT state FROM order_projections WHERE tenant_id = $2 AND order_id = $3) END AS state`,
  streamEvents: `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = $1 AND aggregate_id = $2 AND version > $3 ORDER BY version LIMIT $4`,
  appendWrite: `${APPEND_WRITE_CTES}
  SELECT global_position, version FROM ins`,
  appendWriteOrder: `${APPEND_WRITE_CTES},
  proj AS (
    INSERT INTO order_projections (tenant_id, order_id, customer_id, status, total, currency, item_count, version, last_event_id, last_position, created_at, updated_at, state,
      customer_name, payment_status, fulfilment_status)
    SELECT $1, $2, $14, $15, $16, $17, $18, $19, $20, (SELECT max(global_position) FROM ins), $21, $22, $23, $24, $25, $26
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
  upsertProjection: `INSERT INTO order_projections (tenant_id, order_id, customer_id, status, total, currency, item_count, version, last_event_id, last_position, created_at, updated_at, state,
         customer_name, payment_status, fulfilment_status)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
       ${PROJECTION_UPSERT}`,
  chain: `SELECT ${EVENT_COLUMNS} FROM events
         WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR aggregate_id = $2)
           AND (tenant_id, aggregate_id, version) > ($3, $4, $5)
         ORDER BY tenant_id, aggregate_id, version LIMIT $6`,
  heads: `SELECT s.tenant_id, s.aggregate_id, s.version, s.last_hash, coalesce(e.version, a.version) AS ev_version, coalesce(e.hash, a.hash) AS ev_hash
         FROM streams s
         LEFT JOIN LATERAL (SELECT version, hash FROM events x WHERE x.tenant_id = s.tenant_id AND x.aggregate_id = s.aggregate_id ORDER BY version DESC LIMIT 1) e ON true
         LEFT JOIN LATERAL (SELECT version, hash FROM event_archive_anchors y WHERE y.tenant_id = s.tenant_id AND y.aggregate_id = s.aggregate_id ORDER BY version DESC LIMIT 1) a ON true
         WHERE ($1::text IS NULL OR s.tenant_id = $1) AND ($2::text IS NULL OR s.aggregate_id = $2)
           AND (s.tenant_id, s.aggregate_id) > ($3, $4)
         ORDER BY s.tenant_id, s.aggregate_id LIMIT $5`,
  /** The pull horizon (`HORIZON`), for the cursor pull that follows in a statement of its own. */
  pullHorizon: `SELECT ${HORIZON}::text AS h`,
  /**
   * The cursor pull: (txid, position) order over the rows under the horizon $5; $1 NULL: every
   * tenant (the broker relay). The ORDER BY names the table's column: a bare `txid` would be the
   * output column, the id as text, which sorts 10000 before 9999 (a cursor then passed rows for
   * good) and cannot use the index (every pull sorted all of the tenant's rows after the cursor).
   */
  pull: `SELECT ${EVENT_COLUMNS}, txid::text AS txid FROM events
       WHERE ($1::text IS NULL OR tenant_id = $1) AND (events.txid, global_position) > ($2::xid8, $3::bigint) AND events.txid < $5::xid8
       ORDER BY events.txid, events.global_position LIMIT $4`,
  /** Exclusive against every append's shared lock: taken, it means no append holds an uncommitted position. */
  positionPullDrain: 'SELECT pg_advisory_xact_lock($1, $2)',
  /** A position pull, under the drain: every drawn position is settled, so position order is gap-free ($1 NULL: every tenant). */
  pullByPosition: `SELECT ${EVENT_COLUMNS} FROM events WHERE ($1::text IS NULL OR tenant_id = $1) AND global_position > $2 ORDER BY global_position LIMIT $3`,
  /** Under the drain: no appender has a transaction id yet, so every later event's txid is at least this. */
  nextTxid: 'SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x',
  /** Under the drain: every position up to this one is settled (committed or rolled back) for good. */
  settledHead: 'SELECT coalesce(max(global_position), 0)::text AS p FROM events',
  /**
   * Scoped pull: the tenant's orders in scope (customer, recency, listed ids), then their events
   * in the window (after, upTo], upTo already bounded by the settled head (no visibility filter:
   * every position in the window is settled).
   */
  scopedPull: `WITH scope AS (
      SELECT order_id AS id FROM order_projections WHERE tenant_id = $1 AND customer_id = ANY($2::text[])
      UNION SELECT order_id FROM order_projections WHERE tenant_id = $1 AND $3::timestamptz IS NOT NULL AND updated_at >= $3::timestamptz
      UNION SELECT unnest($4::text[]))
    SELECT ${EVENT_COLUMNS} FROM events
    WHERE tenant_id = $1 AND aggregate_id IN (SELECT id FROM scope) AND global_position > $5 AND global_position <= $6
    ORDER BY global_position LIMIT $7`,
  projection: 'SELECT * FROM order_projections WHERE tenant_id = $1 AND order_id = $2',
  /** The dashboard's filters: the status word and the two facets, each optional (NULL: any). */
  dashboardPage: `SELECT * FROM order_projections WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
         AND ($5::text IS NULL OR payment_status = $5) AND ($6::text IS NULL OR fulfilment_status = $6)
         ORDER BY updated_at DESC, order_id LIMIT $3 OFFSET $4`,
  dashboardCount: `SELECT count(*) AS n FROM order_projections WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
         AND ($3::text IS NULL OR payment_status = $3) AND ($4::text IS NULL OR fulfilment_status = $4)`,
  orderCounts: `SELECT status, payment_status, fulfilment_status, count(*) AS n FROM order_projections WHERE tenant_id = $1
         GROUP BY status, payment_status, fulfilment_status`,
  dashboardPosition: 'SELECT max(last_position) AS p FROM order_projections WHERE tenant_id = $1',
  /**
   * Changes whenever a pull may see more: a row becomes visible to cursor pulls only when the
   * horizon passes its txid, and to position pulls (which drain) when it commits.
   */
  visibleHead: `SELECT ${HORIZON}::text || '/' || coalesce((SELECT max(global_position) FROM events), 0) AS marker`,
  ping: 'SELECT 1',
  relayCheckpoint: 'SELECT cursor FROM relay_checkpoint WHERE id = 1',
  saveRelayCheckpoint: `INSERT INTO relay_checkpoint (id, cursor, updated_at) VALUES (1, $1, now())
       ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`,
  /** Session-level: held by the one relaying process while its connection lives. */
  relayLeader: 'SELECT pg_try_advisory_lock($1, $2) AS ok',
  notify: 'SELECT pg_notify($1, $2)',
  listen: (quotedChannel: string) => `LISTEN ${quotedChannel}`,

  // Partitions and archives (issue 16).
  archivedAnchor: 'SELECT version, hash FROM event_archive_anchors WHERE tenant_id = $1 AND aggregate_id = $2 ORDER BY version DESC LIMIT 1',
  /** Archives holding events of a tenant after a pull position (archived partitions are a prefix of the positions). */
  pullArchived: `SELECT p.archive_file FROM event_archive_tenants t JOIN event_partitions p ON p.name = t.partition_name
       WHERE ($1::text IS NULL OR t.tenant_id = $1) AND t.last_position > $2 ORDER BY p.lo`,
  streamArchived: `SELECT p.archive_file FROM event_archive_anchors a JOIN event_partitions p ON p.name = a.partition_name
       WHERE a.tenant_id = $1 AND a.aggregate_id = $2 AND a.version > $3 ORDER BY p.lo`,
  archivedFiles: "SELECT archive_file FROM event_partitions WHERE state = 'archived' ORDER BY lo",
  partitionTop: 'SELECT c.partition_size, (SELECT max(hi) FROM event_partitions) AS top FROM event_partitioning c WHERE c.id = 1',
  ensurePartitions: 'SELECT ensure_event_partitions() AS created',

  // Archival and restore (run as the owner; partition names come from event_partitions, quoted by the caller).
  archive: {
    eventColumns: `SELECT column_name AS name, data_type AS type FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'events' ORDER BY ordinal_position`,
    // ORDER BY the table's column: `lo` alone is the output column, text ("11" before "6").
    livePartitions: "SELECT name, lo::text, hi::text FROM event_partitions WHERE state = 'live' ORDER BY event_partitions.lo",
    newestArchived: "SELECT name, archive_file FROM event_partitions WHERE state = 'archived' ORDER BY lo DESC LIMIT 1",
    partitionByName: 'SELECT name, lo::text, hi::text, state, archive_file, archive_sha256 FROM event_partitions WHERE name = $1',
    /** Session-level and exclusive against every append's shared drain lock, like a position pull's. */
    drainExclusive: 'SELECT pg_advisory_lock($1, $2)',
    drainEnd: 'SELECT pg_advisory_unlock($1, $2)',
    sequenceHead: `SELECT coalesce(last_value, 0)::text AS head FROM pg_sequences
                   WHERE schemaname = current_schema() AND sequencename = split_part(pg_get_serial_sequence('events', 'global_position'), '.', 2)`,
    lockShare: (t: string) => `LOCK TABLE ${t} IN SHARE MODE`,
    lockExclusive: 'LOCK TABLE events IN ACCESS EXCLUSIVE MODE',
    maxCreated: (t: string) => `SELECT max(created_at) AS newest, count(*)::text AS n FROM ${t}`,
    page: (t: string) => `SELECT global_position::text AS p, to_jsonb(e)::text AS j FROM ${t} e WHERE global_position > $1 ORDER BY global_position LIMIT $2`,
    anchorBefore: 'SELECT hash FROM event_archive_anchors WHERE tenant_id = $1 AND aggregate_id = $2 AND version = $3',
    liveHashAt: 'SELECT hash FROM events WHERE tenant_id = $1 AND aggregate_id = $2 AND version = $3',
    detach: (t: string) => `ALTER TABLE events DETACH PARTITION ${t}`,
    drop: (t: string) => `DROP TABLE ${t}`,
    markArchived: "UPDATE event_partitions SET state = 'archived', archive_file = $2, archive_sha256 = $3, archived_at = now() WHERE name = $1",
    insertAnchors: `INSERT INTO event_archive_anchors (partition_name, tenant_id, aggregate_id, first_version, version, hash)
                    SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::int[], $6::text[])`,
    insertTenants: `INSERT INTO event_archive_tenants (partition_name, tenant_id, first_position, last_position, events)
                    SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[])`,
    createLike: (t: string) => `CREATE TABLE ${t} (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`,
    /** `values` reads each column from the row r or its typed record p (jsonb as r->'col': a JSON null stays a JSON null). */
    insertRows: (t: string, cols: string, values: string) =>
      `INSERT INTO ${t} (${cols}) SELECT ${values} FROM jsonb_array_elements($1::jsonb) r, LATERAL jsonb_populate_record(NULL::events, r) p`,
    rangeCheck: (t: string, c: string) => `ALTER TABLE ${t} ADD CONSTRAINT ${c} CHECK (global_position >= $LO AND global_position < $HI)`,
    attach: (t: string) => `ALTER TABLE events ATTACH PARTITION ${t} FOR VALUES FROM ($LO) TO ($HI)`,
    countRows: (t: string) => `SELECT count(*)::text AS n FROM ${t}`,
    markLive: "UPDATE event_partitions SET state = 'live', archive_file = NULL, archive_sha256 = NULL, archived_at = NULL WHERE name = $1",
    dropAnchors: 'DELETE FROM event_archive_anchors WHERE partition_name = $1',
    dropTenants: 'DELETE FROM event_archive_tenants WHERE partition_name = $1',
  },

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
    'GRANT SELECT ON event_keys TO {role}',
    'GRANT SELECT ON event_partitioning, event_partitions, event_archive_anchors, event_archive_tenants TO {role}',
    // Creates partitions ahead as the owner (SECURITY DEFINER): the app role itself gets no DDL right.
    'GRANT EXECUTE ON FUNCTION ensure_event_partitions() TO {role}',
    'GRANT SELECT, INSERT, UPDATE ON streams TO {role}',
    'GRANT SELECT, INSERT, UPDATE, DELETE ON order_projections TO {role}',
    'GRANT SELECT ON schema_migrations TO {role}',
    'GRANT SELECT, UPDATE ON read_model_version TO {role}',
    'GRANT SELECT, INSERT, UPDATE ON relay_checkpoint TO {role}',
  ],
} as const;

/** The worker's statements (issue 15), on its own schema (migrations/worker-pg/). */
export const WORKER_SQL = {
  streamLock: 'SELECT pg_advisory_xact_lock($1, $2)',
  markApplied: `INSERT INTO applied_events (tenant_id, event_id, stream_id, version, position, applied_by) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING 1 AS ok`,
  streamProgress: 'SELECT version FROM stream_progress WHERE tenant_id = $1 AND stream_id = $2',
  setStreamProgress: `INSERT INTO stream_progress (tenant_id, stream_id, version) VALUES ($1, $2, $3)
       ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = excluded.version`,
} as const;
