import pg from 'pg';
import { join } from 'node:path';
import { expectedVersionMatches, type ServerEvent } from '../protocol/envelope.js';
import type { PullResponse } from '../protocol/sync-api.js';
import { ORDER_STREAM_TYPE } from '../domain/events.js';
import type { OrderState, OrderStatus } from '../domain/state.js';
import { SchemaTooNewError } from '../protocol/errors.js';
import { MIGRATIONS_ROOT, loadMigrations } from '../db/migrations.js';
import {
  ChainVerifier,
  appendResult,
  dataErrorRefusal,
  foldOrderView,
  MissingEventsBudget,
  conflictAnswer,
  isInputError,
  judgeDuplicates,
  missingAfter,
  normalizeAppend,
  orderStreamStartError,
  prepareEvents,
  streamTypeMismatch,
  type ExistingEvent,
  type FoldInput,
} from './append-logic.js';
import { GENESIS_HASH } from './hash.js';
import type {
  AppendCommand,
  AppendOutcome,
  ChainFilter,
  ChainReport,
  DashboardPage,
  DashboardQuery,
  EventRepository,
  OrderView,
  PushOutcome,
} from './repository.js';

const BATCH = 1000;
/** First key of our advisory locks (the second is derived from the schema name). */
const LOCK_CLASS_MIGRATE = 0x4f4c0001;
const LOCK_CLASS_REBUILD = 0x4f4c0002;
const LOCK_CLASS_POSITIONS = 0x4f4c0003;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export interface PgRepositoryOptions {
  /** The role the server works as (ideally the least-privileged app role). */
  connectionString: string;
  /**
   * The owner role: when given, migrations run as it (and the app role gets its grants) before
   * the server connects. Without it the server's own role migrates when anything is pending.
   */
  migrateConnectionString?: string | undefined;
  /** Schema for every table (created if missing); default public. */
  schema?: string | undefined;
  poolSize?: number | undefined;
}

interface EventRow {
  global_position: string;
  event_id: string;
  tenant_id: string;
  aggregate_id: string;
  aggregate_type: string;
  event_type: string;
  schema_version: number;
  event_data: Record<string, unknown>;
  metadata: ServerEvent['metadata'];
  version: number;
  created_at: Date;
  hash: string;
}

interface ProjectionRow {
  order_id: string;
  customer_id: string | null;
  status: string | null;
  total: string;
  currency: string | null;
  item_count: number;
  version: number;
  last_event_id: string;
  last_position: string;
  created_at: Date | null;
  updated_at: Date | null;
  state: OrderState;
}

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
const APPEND_WRITE = `${APPEND_WRITE_CTES}
  SELECT global_position, version FROM ins`;
const APPEND_WRITE_ORDER = `${APPEND_WRITE_CTES},
  proj AS (
    INSERT INTO order_projections (tenant_id, order_id, customer_id, status, total, currency, item_count, version, last_event_id, last_position, created_at, updated_at, state)
    SELECT $1, $2, $14, $15, $16, $17, $18, $19, $20, (SELECT max(global_position) FROM ins), $21, $22, $23
    ${PROJECTION_UPSERT})
  SELECT global_position, version FROM ins`;

function toServerEvent(r: EventRow): ServerEvent & { tenantId: string } {
  return {
    tenantId: r.tenant_id,
    eventId: r.event_id,
    streamId: r.aggregate_id,
    streamType: r.aggregate_type,
    streamVersion: r.version,
    globalPosition: Number(r.global_position),
    eventType: r.event_type,
    schemaVersion: r.schema_version,
    data: r.event_data,
    metadata: r.metadata,
    recordedAt: r.created_at.toISOString(),
    hash: r.hash,
  };
}

function publicEvent(e: ServerEvent & { tenantId: string }): ServerEvent {
  const { tenantId: _tenant, ...rest } = e;
  return rest;
}

function toView(r: ProjectionRow): OrderView {
  return {
    orderId: r.order_id,
    customerId: r.customer_id,
    status: r.status as OrderStatus | null,
    total: Number(r.total),
    currency: r.currency,
    itemCount: r.item_count,
    version: r.version,
    lastEventId: r.last_event_id,
    lastPosition: Number(r.last_position),
    createdAt: r.created_at ? r.created_at.toISOString() : null,
    updatedAt: r.updated_at ? r.updated_at.toISOString() : null,
    state: r.state,
  };
}

/** 32-bit FNV-1a of a string: the second key of this schema's advisory locks. */
function lockKey(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

function pgCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/** unique_violation (an event id raced in from another stream), deadlock, serialization failure. */
const RETRYABLE = new Set(['23505', '40P01', '40001']);

/** Thrown when the schema needs migrations the connecting role may not run. */
export class MigrationRequiredError extends Error {
  override name = 'MigrationRequiredError';
}

/** Versions recorded in schema_migrations, or null when the table does not exist yet. Read-only. */
async function appliedVersions(client: pg.PoolClient): Promise<number[] | null> {
  const { rows: exists } = await client.query<{ t: string | null }>(`SELECT to_regclass('schema_migrations')::text AS t`);
  if (!exists[0]?.t) return null;
  const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
  return rows.map((r) => r.version);
}

/**
 * Apply migrations/server-pg/*.sql in order, each in its own transaction, recorded in
 * schema_migrations. An advisory lock makes two servers starting together take turns. A schema
 * that is already current is only read, so a role without DDL rights (the app role) can start.
 */
export async function migratePg(pool: pg.Pool, schema: string, dir = join(MIGRATIONS_ROOT, 'server-pg')): Promise<number> {
  const migrations = loadMigrations(dir);
  const client = await pool.connect();
  try {
    const current = await appliedVersions(client);
    const newest = current?.length ? current[current.length - 1]! : 0;
    if (newest > migrations.length) throw new SchemaTooNewError(`PostgreSQL schema ${schema}`, newest, migrations.length);
    if (current && migrations.every((m) => current.includes(m.version))) return migrations.length;
    await client.query('SELECT pg_advisory_lock($1, $2)', [LOCK_CLASS_MIGRATE, lockKey(schema)]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
      );
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      const applied = new Set(rows.map((r) => r.version));
      for (const m of migrations) {
        if (applied.has(m.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw err;
        }
      }
    } catch (err) {
      // insufficient_privilege: this role may use the schema but not change it.
      if (pgCode(err) === '42501') {
        throw new MigrationRequiredError(
          `PostgreSQL schema ${schema} needs migrations this database role may not run (${(err as Error).message}); ` +
            'run `npm run server -- migrate` with ORDERLOG_MIGRATE_DATABASE_URL set to the owner role',
        );
      }
      throw err;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_CLASS_MIGRATE, lockKey(schema)]).catch(() => undefined);
    }
  } finally {
    client.release();
  }
  return migrations.length;
}

/**
 * What the server's role may do, and nothing more: read and append events (no UPDATE, DELETE,
 * TRUNCATE; not the owner, so no ALTER TABLE or DISABLE TRIGGER), move stream heads, maintain
 * the read model. Re-run after every migration (idempotent); a new table needs its line here.
 */
const APP_ROLE_GRANTS = [
  'GRANT USAGE ON SCHEMA {schema} TO {role}',
  'REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}',
  'GRANT SELECT, INSERT ON events TO {role}',
  'GRANT SELECT, INSERT, UPDATE ON streams TO {role}',
  'GRANT SELECT, INSERT, UPDATE, DELETE ON order_projections TO {role}',
  'GRANT SELECT ON schema_migrations TO {role}',
];

/** Grant the app role exactly what the server needs on this schema (run as the owner). */
export async function grantAppRole(pool: pg.Pool, schema: string, role: string): Promise<void> {
  const sql = APP_ROLE_GRANTS.map((g) => g.replaceAll('{schema}', pg.escapeIdentifier(schema)).replaceAll('{role}', pg.escapeIdentifier(role)));
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    for (const statement of sql) await client.query(statement);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** The role a connection string logs in as (null when it names none: libpq's default applies). */
export function roleOf(connectionString: string): string | null {
  try {
    const user = new URL(connectionString).username;
    return user ? decodeURIComponent(user) : null;
  } catch {
    return null;
  }
}

function schemaPool(connectionString: string, schema: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, options: `-c search_path=${schema}` });
  // An idle client losing its connection must not crash the server; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Migrate as the owner (`ownerConnectionString`) and, when the server logs in as another role
 * (`appConnectionString`), grant that role what it needs. Returns the number of migrations.
 */
export async function migrateAsOwner(opts: { ownerConnectionString: string; appConnectionString?: string | undefined; schema?: string | undefined }): Promise<{
  migrations: number;
  appRole: string | null;
}> {
  const schema = opts.schema ?? 'public';
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(schema)}: use lower-case letters, digits and _`);
  const pool = schemaPool(opts.ownerConnectionString, schema, 1);
  try {
    const migrations = await migratePg(pool, schema);
    const owner = (await pool.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
    const app = opts.appConnectionString ? roleOf(opts.appConnectionString) : null;
    if (app && app !== owner) {
      await grantAppRole(pool, schema, app);
      return { migrations, appRole: app };
    }
    return { migrations, appRole: null };
  } finally {
    await pool.end();
  }
}

/** The PostgreSQL backend: a pg Pool, every append one READ COMMITTED transaction. */
export class PgRepository implements EventRepository {
  readonly backend = 'pg' as const;
  readonly schema: string;
  private readonly pool: pg.Pool;
  private readonly rebuildKey: [number, number];
  private readonly positionsKey: [number, number];

  private constructor(pool: pg.Pool, schema: string) {
    this.pool = pool;
    this.schema = schema;
    this.rebuildKey = [LOCK_CLASS_REBUILD, lockKey(schema)];
    this.positionsKey = [LOCK_CLASS_POSITIONS, lockKey(schema)];
  }

  static async open(opts: PgRepositoryOptions): Promise<PgRepository> {
    const schema = opts.schema ?? 'public';
    if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(schema)}: use lower-case letters, digits and _`);
    if (opts.migrateConnectionString) {
      await migrateAsOwner({ ownerConnectionString: opts.migrateConnectionString, appConnectionString: opts.connectionString, schema });
    }
    const pool = schemaPool(opts.connectionString, schema, opts.poolSize ?? 10);
    try {
      await migratePg(pool, schema);
    } catch (err) {
      await pool.end();
      throw err;
    }
    return new PgRepository(pool, schema);
  }

  /**
   * Appending transactions take turns, from before they draw global positions until they
   * commit, so positions become visible in order: a reader that sees position p also sees every
   * lower one, and a pull that moved past p can never miss one committing later. (The txid/xmin
   * filter alone does not give that: an older transaction may draw a higher position than a
   * younger one that is still running.) Taken first, before any stream head, so it cannot deadlock.
   */
  private async takePositionTurn(client: pg.PoolClient): Promise<void> {
    await client.query({ name: 'ol_positions_turn', text: 'SELECT pg_advisory_xact_lock($1, $2)', values: this.positionsKey });
  }

  async append(input: AppendCommand): Promise<AppendOutcome> {
    const recordedAt = new Date().toISOString();
    const cmd = normalizeAppend(input, recordedAt);
    return this.transaction(async (client) => {
      await this.takePositionTurn(client);
      let outcome: AppendOutcome;
      try {
        outcome = await this.appendIn(client, cmd, recordedAt, new MissingEventsBudget());
      } catch (err) {
        throw dataErrorRefusal(err) ?? err;
      }
      // Nothing to keep from a conflict or a duplicate (the head upsert may have created a row).
      return { value: outcome, commit: outcome.status === 'ok' && !outcome.result.duplicate };
    });
  }

  async appendAll(inputs: AppendCommand[]): Promise<PushOutcome[]> {
    // Heads are locked in stream order (stable, so one stream's appends keep theirs): two pushes
    // touching the same streams queue behind each other instead of deadlocking.
    const order = inputs.map((_, i) => i);
    order.sort((x, y) => {
      const a = inputs[x]!;
      const b = inputs[y]!;
      return a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : a.streamId < b.streamId ? -1 : a.streamId > b.streamId ? 1 : x - y;
    });
    const recordedAt = new Date().toISOString();
    return this.transaction(async (client) => {
      await this.takePositionTurn(client);
      const out: PushOutcome[] = new Array<PushOutcome>(inputs.length);
      const budget = new MissingEventsBudget();
      let wrote = false;
      for (const i of order) {
        let cmd: AppendCommand;
        try {
          cmd = normalizeAppend(inputs[i]!, recordedAt);
        } catch (err) {
          if (!isInputError(err)) throw err;
          out[i] = { status: 'error', error: err };
          continue;
        }
        await client.query('SAVEPOINT ol_push_element');
        try {
          const outcome = await this.appendIn(client, cmd, recordedAt, budget);
          const keep = outcome.status === 'ok' && !outcome.result.duplicate;
          await client.query(keep ? 'RELEASE SAVEPOINT ol_push_element' : 'ROLLBACK TO SAVEPOINT ol_push_element');
          wrote ||= keep;
          out[i] = outcome;
        } catch (err) {
          const refusal = isInputError(err) ? err : dataErrorRefusal(err);
          if (!refusal) throw err;
          await client.query('ROLLBACK TO SAVEPOINT ol_push_element');
          out[i] = { status: 'error', error: refusal };
        }
      }
      return { value: out, commit: wrote };
    });
  }

  /** One READ COMMITTED transaction, retried from the start on a race it lost (unique violation, deadlock). */
  private async transaction<T>(work: (client: pg.PoolClient) => Promise<{ value: T; commit: boolean }>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      try {
        await client.query('BEGIN');
        const { value, commit } = await work(client);
        await client.query(commit ? 'COMMIT' : 'ROLLBACK');
        return value;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        if (attempt < 5 && RETRYABLE.has(pgCode(err) ?? '')) continue;
        throw err;
      } finally {
        client.release();
      }
    }
  }

  /**
   * Four round trips: BEGIN, lock the head, read what the checks and the fold need, write
   * everything in one statement; then the caller's COMMIT. Hot statements are named, so each
   * connection plans them once.
   */
  private async appendIn(client: pg.PoolClient, cmd: AppendCommand, recordedAt: string, budget: MissingEventsBudget): Promise<AppendOutcome> {
    // Lock (or create) the stream head: appends to one stream take turns from here on. This
    // first write gives the transaction its id before any position is drawn from the identity
    // sequence (the txid column's default), so a reader's snapshot xmin always covers a
    // transaction that holds an uncommitted position. The shared advisory lock waits out a
    // projection rebuild before anything is read for the fold.
    const { rows: headRows } = await client.query<{ version: number; last_hash: string; aggregate_type: string }>({
      name: 'ol_append_head',
      text: `WITH h AS (
               INSERT INTO streams (tenant_id, aggregate_id, aggregate_type, version, last_hash) VALUES ($1, $2, $3, 0, $4)
               ON CONFLICT (tenant_id, aggregate_id) DO UPDATE SET version = streams.version
               RETURNING version, last_hash, aggregate_type)
             SELECT h.version, h.last_hash, h.aggregate_type, pg_advisory_xact_lock_shared($5, $6) FROM h`,
      values: [cmd.tenantId, cmd.streamId, cmd.streamType, GENESIS_HASH, ...this.rebuildKey],
    });
    const head = headRows[0]!;
    // A new statement, so a new snapshot: it sees whatever the previous holder of the head committed.
    const isOrder = cmd.streamType === ORDER_STREAM_TYPE;
    const { rows: readRows } = await client.query<{ dups: EventRow[] | null; state: OrderState | null }>({
      name: 'ol_append_read',
      text: `SELECT (SELECT json_agg(d) FROM (SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = $2 AND event_id = ANY($1::uuid[])) d) AS dups,
                    CASE WHEN $4::boolean THEN (SELECT state FROM order_projections WHERE tenant_id = $2 AND order_id = $3) END AS state`,
      values: [cmd.events.map((e) => e.eventId), cmd.tenantId, cmd.streamId, isOrder],
    });
    const read = readRows[0]!;
    const duplicate = judgeDuplicates(cmd, (read.dups ?? []).map(toExisting));
    if (duplicate) return { status: 'ok', result: duplicate };

    if (head.version > 0 && head.aggregate_type !== cmd.streamType) throw streamTypeMismatch(cmd, head.aggregate_type);
    if (!expectedVersionMatches(cmd.expectedVersion, head.version)) {
      const missing = await client.query<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = $1 AND aggregate_id = $2 AND version > $3 ORDER BY version LIMIT $4`,
        [cmd.tenantId, cmd.streamId, missingAfter(cmd.expectedVersion, head.version), budget.rowLimit],
      );
      return { status: 'conflict', conflict: conflictAnswer(cmd, head.version, missing.rows.map((r) => publicEvent(toServerEvent(r))), budget) };
    }
    const startError = orderStreamStartError(cmd, head.version);
    if (startError) throw startError;
    const prepared = prepareEvents(cmd, head.version, head.last_hash, recordedAt);
    const last = prepared[prepared.length - 1]!;
    const values: unknown[] = [
      cmd.tenantId,
      cmd.streamId,
      cmd.streamType,
      prepared.map((p) => p.eventId),
      prepared.map((p) => p.eventType),
      prepared.map((p) => p.schemaVersion),
      prepared.map((p) => p.dataJson),
      prepared.map((p) => p.metadataJson),
      prepared.map((p) => p.streamVersion),
      last.recordedAt,
      prepared.map((p) => p.hash),
      last.streamVersion,
      last.hash,
    ];
    let text = APPEND_WRITE;
    let name = 'ol_append_write';
    if (isOrder) {
      // The fold needs no position: the row's last_position comes from the insert in SQL.
      const v = foldOrderView(cmd.streamId, read.state, prepared.map((p) => ({ ...p, globalPosition: 0 })));
      values.push(v.customerId, v.status, v.total, v.currency, v.itemCount, v.version, v.lastEventId, v.createdAt, v.updatedAt, JSON.stringify(v.state));
      text = APPEND_WRITE_ORDER;
      name = 'ol_append_write_order';
    }
    const { rows: inserted } = await client.query<{ global_position: string; version: number }>({ name, text, values });
    const positions = new Map(inserted.map((r) => [r.version, Number(r.global_position)]));
    const stored = prepared.map((p) => ({ eventId: p.eventId, streamVersion: p.streamVersion, globalPosition: positions.get(p.streamVersion)! }));
    return { status: 'ok', result: appendResult(cmd.streamId, stored) };
  }

  /** Replay: fold a stream's run of events onto its stored row (no append in flight: the rebuild lock). */
  private async project(client: pg.PoolClient, tenantId: string, orderId: string, events: FoldInput[]): Promise<void> {
    const prev = await client.query<{ state: OrderState }>('SELECT state FROM order_projections WHERE tenant_id = $1 AND order_id = $2', [
      tenantId,
      orderId,
    ]);
    const v = foldOrderView(orderId, prev.rows[0]?.state ?? null, events);
    await client.query(
      `INSERT INTO order_projections (tenant_id, order_id, customer_id, status, total, currency, item_count, version, last_event_id, last_position, created_at, updated_at, state)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
       ${PROJECTION_UPSERT}`,
      [tenantId, orderId, v.customerId, v.status, v.total, v.currency, v.itemCount, v.version, v.lastEventId, v.lastPosition, v.createdAt, v.updatedAt, JSON.stringify(v.state)],
    );
  }

  async pull(tenantId: string, after: number, limit: number): Promise<PullResponse> {
    // Only rows of transactions older than every running one: an in-flight lower position
    // holds back everything after it instead of being skipped.
    const { rows } = await this.pool.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events
       WHERE tenant_id = $1 AND global_position > $2 AND txid < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY global_position LIMIT $3`,
      [tenantId, after, limit],
    );
    const events = rows.map((r) => publicEvent(toServerEvent(r)));
    return { events, nextPosition: events.length ? events[events.length - 1]!.globalPosition : after, hasMore: rows.length === limit };
  }

  async readStream(tenantId: string, streamId: string, afterVersion = 0, limit?: number): Promise<ServerEvent[]> {
    const { rows } = await this.pool.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = $1 AND aggregate_id = $2 AND version > $3 ORDER BY version LIMIT $4`,
      [tenantId, streamId, afterVersion, limit ?? null],
    );
    return rows.map((r) => publicEvent(toServerEvent(r)));
  }

  async getOrder(tenantId: string, orderId: string): Promise<OrderView | null> {
    const { rows } = await this.pool.query<ProjectionRow>('SELECT * FROM order_projections WHERE tenant_id = $1 AND order_id = $2', [tenantId, orderId]);
    return rows[0] ? toView(rows[0]) : null;
  }

  async listOrders(tenantId: string, q: DashboardQuery): Promise<DashboardPage> {
    const status = q.status ?? null;
    const [page, count, pos] = await Promise.all([
      this.pool.query<ProjectionRow>(
        `SELECT * FROM order_projections WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
         ORDER BY updated_at DESC, order_id LIMIT $3 OFFSET $4`,
        [tenantId, status, q.limit, q.offset],
      ),
      this.pool.query<{ n: string }>('SELECT count(*) AS n FROM order_projections WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)', [
        tenantId,
        status,
      ]),
      this.pool.query<{ p: string | null }>('SELECT max(last_position) AS p FROM order_projections WHERE tenant_id = $1', [tenantId]),
    ]);
    return { orders: page.rows.map(toView), total: Number(count.rows[0]?.n ?? 0), position: Number(pos.rows[0]?.p ?? 0) };
  }

  async rebuildProjections(tenantId?: string): Promise<{ eventsReplayed: number }> {
    const tenant = tenantId ?? null;
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      // Exclusive against every append's shared lock: no append is in flight while we replay,
      // and readers keep seeing the old read model until this commits.
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', this.rebuildKey);
      await client.query('DELETE FROM order_projections WHERE $1::text IS NULL OR tenant_id = $1', [tenant]);
      let after = 0;
      let replayed = 0;
      for (;;) {
        const { rows } = await client.query<EventRow>(
          `SELECT ${EVENT_COLUMNS} FROM events WHERE aggregate_type = $1 AND ($4::text IS NULL OR tenant_id = $4) AND global_position > $2
           ORDER BY global_position LIMIT $3`,
          [ORDER_STREAM_TYPE, after, BATCH, tenant],
        );
        if (rows.length === 0) break;
        const groups = new Map<string, EventRow[]>();
        for (const r of rows) {
          const k = JSON.stringify([r.tenant_id, r.aggregate_id]);
          const g = groups.get(k);
          if (g) g.push(r);
          else groups.set(k, [r]);
        }
        for (const group of groups.values()) {
          const first = group[0]!;
          await this.project(client, first.tenant_id, first.aggregate_id, group.map(toFoldInput));
        }
        replayed += rows.length;
        after = Number(rows[rows.length - 1]!.global_position);
      }
      await client.query('COMMIT');
      return { eventsReplayed: replayed };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async verifyChain(filter: ChainFilter): Promise<ChainReport> {
    const client = await this.pool.connect();
    const v = new ChainVerifier();
    try {
      // One snapshot for the walk and the head check, so a concurrent append is not a "break".
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await this.walkChain(client, filter, v);
      await client.query('COMMIT');
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
    return { ok: v.firstBroken === null, streamsChecked: v.streamsChecked, eventsChecked: v.eventsChecked, firstBroken: v.firstBroken };
  }

  private async walkChain(client: pg.PoolClient, filter: ChainFilter, v: ChainVerifier): Promise<void> {
    let cursor: [string, string, number] = [filter.tenantId ?? '', filter.streamId ?? '', 0];
    for (;;) {
      const { rows } = await client.query<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events
         WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR aggregate_id = $2)
           AND (tenant_id, aggregate_id, version) > ($3, $4, $5)
         ORDER BY tenant_id, aggregate_id, version LIMIT $6`,
        [filter.tenantId ?? null, filter.streamId ?? null, cursor[0], cursor[1], cursor[2], BATCH],
      );
      if (rows.length === 0) break;
      for (const r of rows) if (!v.check(toServerEvent(r))) return;
      const last = rows[rows.length - 1]!;
      cursor = [last.tenant_id, last.aggregate_id, last.version];
    }
    let headCursor: [string, string] = ['', ''];
    for (;;) {
      const { rows: heads } = await client.query<{ tenant_id: string; aggregate_id: string; version: number; last_hash: string; ev_version: number | null; ev_hash: string | null }>(
        `SELECT s.tenant_id, s.aggregate_id, s.version, s.last_hash, e.version AS ev_version, e.hash AS ev_hash
         FROM streams s
         LEFT JOIN LATERAL (SELECT version, hash FROM events x WHERE x.tenant_id = s.tenant_id AND x.aggregate_id = s.aggregate_id ORDER BY version DESC LIMIT 1) e ON true
         WHERE ($1::text IS NULL OR s.tenant_id = $1) AND ($2::text IS NULL OR s.aggregate_id = $2)
           AND (s.tenant_id, s.aggregate_id) > ($3, $4)
         ORDER BY s.tenant_id, s.aggregate_id LIMIT $5`,
        [filter.tenantId ?? null, filter.streamId ?? null, headCursor[0], headCursor[1], BATCH],
      );
      if (heads.length === 0) break;
      for (const h of heads) {
        if (!v.checkHead(h.tenant_id, h.aggregate_id, h.version, h.last_hash, h.ev_version ?? 0, h.ev_hash ?? GENESIS_HASH)) return;
      }
      const lastHead = heads[heads.length - 1]!;
      headCursor = [lastHead.tenant_id, lastHead.aggregate_id];
    }
  }

  async visibleHead(): Promise<number> {
    // The same visibility rule as pull: a position held back by an older running transaction
    // does not count until that transaction ends (then the head moves and waiters wake).
    const { rows } = await this.pool.query<{ p: string | null }>({
      name: 'ol_visible_head',
      text: 'SELECT max(global_position) AS p FROM events WHERE txid < pg_snapshot_xmin(pg_current_snapshot())',
    });
    return Number(rows[0]?.p ?? 0);
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

function toExisting(r: EventRow): ExistingEvent {
  return {
    eventId: r.event_id,
    tenantId: r.tenant_id,
    streamId: r.aggregate_id,
    streamVersion: r.version,
    globalPosition: Number(r.global_position),
    eventType: r.event_type,
    schemaVersion: r.schema_version,
    data: r.event_data,
  };
}

function toFoldInput(r: EventRow): FoldInput {
  return {
    eventId: r.event_id,
    streamVersion: r.version,
    globalPosition: Number(r.global_position),
    eventType: r.event_type,
    schemaVersion: r.schema_version,
    data: r.event_data,
    recordedAt: r.created_at.toISOString(),
  };
}
