import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { expectedVersionMatches, type ServerEvent } from '../protocol/envelope.js';
import type { PullResponse } from '../protocol/sync-api.js';
import { ORDER_STREAM_TYPE } from '../domain/events.js';
import type { OrderState, OrderStatus } from '../domain/state.js';
import { MIGRATIONS_ROOT, migrateSqlite } from '../db/migrations.js';
import {
  ChainVerifier,
  appendResult,
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

interface EventRow {
  global_position: number;
  event_id: string;
  tenant_id: string;
  aggregate_id: string;
  aggregate_type: string;
  event_type: string;
  schema_version: number;
  event_data: string;
  metadata: string;
  version: number;
  created_at: string;
  hash: string;
}

interface ProjectionRow {
  order_id: string;
  customer_id: string | null;
  status: string | null;
  total: number;
  currency: string | null;
  item_count: number;
  version: number;
  last_event_id: string;
  last_position: number;
  created_at: string | null;
  updated_at: string | null;
  state: string;
}

const EVENT_COLUMNS =
  'global_position, event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash';

function toServerEvent(r: EventRow): ServerEvent & { tenantId: string } {
  return {
    tenantId: r.tenant_id,
    eventId: r.event_id,
    streamId: r.aggregate_id,
    streamType: r.aggregate_type,
    streamVersion: r.version,
    globalPosition: r.global_position,
    eventType: r.event_type,
    schemaVersion: r.schema_version,
    data: JSON.parse(r.event_data) as Record<string, unknown>,
    metadata: JSON.parse(r.metadata) as ServerEvent['metadata'],
    recordedAt: r.created_at,
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
    total: r.total,
    currency: r.currency,
    itemCount: r.item_count,
    version: r.version,
    lastEventId: r.last_event_id,
    lastPosition: r.last_position,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    state: JSON.parse(r.state) as OrderState,
  };
}

/** The embedded backend: one better-sqlite3 connection, WAL, synchronous=FULL. */
export class SqliteRepository implements EventRepository {
  readonly backend = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly stmt;
  /** Runs a function in a nested transaction (a SAVEPOINT inside the group's transaction). */
  private readonly savepoint: <T>(fn: () => T) => T;
  private pending: { cmds: AppendCommand[]; resolve: (o: PushOutcome[]) => void; reject: (err: unknown) => void }[] = [];

  constructor(file: string) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    migrateSqlite(this.db, join(MIGRATIONS_ROOT, 'server-sqlite'), file);
    const db = this.db;
    const nested = db.transaction((fn: () => unknown) => fn());
    this.savepoint = <T>(fn: () => T): T => nested(fn) as T;
    this.stmt = {
      streamHead: db.prepare<[string, string], { version: number; last_hash: string; aggregate_type: string }>(
        'SELECT version, last_hash, aggregate_type FROM streams WHERE tenant_id = ? AND aggregate_id = ?',
      ),
      eventById: db.prepare<[string, string], EventRow>(`SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = ? AND event_id = ?`),
      insertEvent: db.prepare(
        `INSERT INTO events (event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash)
         VALUES (@eventId, @tenantId, @streamId, @streamType, @eventType, @schemaVersion, @data, @metadata, @streamVersion, @recordedAt, @hash)`,
      ),
      upsertStream: db.prepare(
        `INSERT INTO streams (tenant_id, aggregate_id, aggregate_type, version, last_hash) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (tenant_id, aggregate_id) DO UPDATE SET version = excluded.version, last_hash = excluded.last_hash`,
      ),
      streamEvents: db.prepare<[string, string, number, number], EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = ? AND aggregate_id = ? AND version > ? ORDER BY version LIMIT ?`,
      ),
      pull: db.prepare<[string, number, number], EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = ? AND global_position > ? ORDER BY global_position LIMIT ?`,
      ),
      projection: db.prepare<[string, string], ProjectionRow>('SELECT * FROM order_projections WHERE tenant_id = ? AND order_id = ?'),
      upsertProjection: db.prepare(
        `INSERT INTO order_projections (tenant_id, order_id, customer_id, status, total, currency, item_count, version, last_event_id, last_position, created_at, updated_at, state)
         VALUES (@tenantId, @orderId, @customerId, @status, @total, @currency, @itemCount, @version, @lastEventId, @lastPosition, @createdAt, @updatedAt, @state)
         ON CONFLICT (tenant_id, order_id) DO UPDATE SET customer_id = excluded.customer_id, status = excluded.status, total = excluded.total,
           currency = excluded.currency, item_count = excluded.item_count, version = excluded.version, last_event_id = excluded.last_event_id,
           last_position = excluded.last_position, created_at = excluded.created_at, updated_at = excluded.updated_at, state = excluded.state`,
      ),
      listAll: db.prepare<[string, number, number], ProjectionRow>(
        'SELECT * FROM order_projections WHERE tenant_id = ? ORDER BY updated_at DESC, order_id LIMIT ? OFFSET ?',
      ),
      listByStatus: db.prepare<[string, string, number, number], ProjectionRow>(
        'SELECT * FROM order_projections WHERE tenant_id = ? AND status = ? ORDER BY updated_at DESC, order_id LIMIT ? OFFSET ?',
      ),
      countAll: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM order_projections WHERE tenant_id = ?'),
      countByStatus: db.prepare<[string, string], { n: number }>('SELECT count(*) AS n FROM order_projections WHERE tenant_id = ? AND status = ?'),
      maxPosition: db.prepare<[string], { p: number | null }>('SELECT max(last_position) AS p FROM order_projections WHERE tenant_id = ?'),
      clearProjections: db.prepare<[{ tenant: string | null }]>('DELETE FROM order_projections WHERE @tenant IS NULL OR tenant_id = @tenant'),
      orderEventsAfter: db.prepare<[{ type: string; tenant: string | null; after: number; limit: number }], EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE aggregate_type = @type AND (@tenant IS NULL OR tenant_id = @tenant) AND global_position > @after
         ORDER BY global_position LIMIT @limit`,
      ),
      chain: db.prepare<[{ tenant: string | null; stream: string | null; t: string; s: string; v: number; limit: number }], EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events
         WHERE (@tenant IS NULL OR tenant_id = @tenant) AND (@stream IS NULL OR aggregate_id = @stream)
           AND (tenant_id, aggregate_id, version) > (@t, @s, @v)
         ORDER BY tenant_id, aggregate_id, version LIMIT @limit`,
      ),
      heads: db.prepare<[{ tenant: string | null; stream: string | null; t: string; s: string; limit: number }], { tenant_id: string; aggregate_id: string; version: number; last_hash: string }>(
        `SELECT tenant_id, aggregate_id, version, last_hash FROM streams
         WHERE (@tenant IS NULL OR tenant_id = @tenant) AND (@stream IS NULL OR aggregate_id = @stream)
           AND (tenant_id, aggregate_id) > (@t, @s)
         ORDER BY tenant_id, aggregate_id LIMIT @limit`,
      ),
      head: db.prepare<[], { p: number | null }>('SELECT max(global_position) AS p FROM events'),
      lastOfStream: db.prepare<[string, string], { version: number; hash: string }>(
        'SELECT version, hash FROM events WHERE tenant_id = ? AND aggregate_id = ? ORDER BY version DESC LIMIT 1',
      ),
    };
  }

  /**
   * Group commit: appends arriving while the previous commit (an fsync) blocked the event loop
   * are queued and written together in one transaction on the next turn, each job in its own
   * savepoint, each element of a job in a nested one. Callers hear back only after the commit.
   */
  async append(input: AppendCommand): Promise<AppendOutcome> {
    const [outcome] = await this.enqueue([input]);
    if (outcome!.status === 'error') throw outcome!.error;
    return outcome!;
  }

  async appendAll(cmds: AppendCommand[]): Promise<PushOutcome[]> {
    return this.enqueue(cmds);
  }

  private enqueue(cmds: AppendCommand[]): Promise<PushOutcome[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ cmds, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const jobs = this.pending;
    this.pending = [];
    if (jobs.length === 0) return;
    const settled: (() => void)[] = [];
    try {
      this.db
        .transaction(() => {
          const recordedAt = new Date().toISOString();
          for (const job of jobs) {
            try {
              const outcomes = this.runJob(job.cmds, recordedAt);
              settled.push(() => job.resolve(outcomes));
            } catch (err) {
              settled.push(() => job.reject(err));
            }
          }
        })
        .immediate();
    } catch (err) {
      for (const job of jobs) job.reject(err);
      return;
    }
    for (const settle of settled) settle();
  }

  /** One job (a single append or a push) inside the group's transaction: its own savepoint. */
  private runJob(cmds: AppendCommand[], recordedAt: string): PushOutcome[] {
    const budget = new MissingEventsBudget();
    return this.savepoint(() =>
      cmds.map((cmd) => {
        try {
          return this.savepoint(() => this.appendOne(cmd, recordedAt, budget));
        } catch (err) {
          if (isInputError(err)) return { status: 'error', error: err };
          throw err;
        }
      }),
    );
  }

  /** One element, in its own savepoint (see runJob): an error undoes it alone. */
  private appendOne(input: AppendCommand, recordedAt: string, budget: MissingEventsBudget): AppendOutcome {
    const cmd = normalizeAppend(input, recordedAt);
    const existing: ExistingEvent[] = [];
    for (const e of cmd.events) {
      const row = this.stmt.eventById.get(cmd.tenantId, e.eventId);
      if (row) existing.push(toExisting(row));
    }
    const duplicate = judgeDuplicates(cmd, existing);
    if (duplicate) return { status: 'ok', result: duplicate };

    const head = this.stmt.streamHead.get(cmd.tenantId, cmd.streamId);
    const current = head?.version ?? 0;
    if (head && head.aggregate_type !== cmd.streamType) throw streamTypeMismatch(cmd, head.aggregate_type);
    if (!expectedVersionMatches(cmd.expectedVersion, current)) {
      const rows = this.stmt.streamEvents.all(cmd.tenantId, cmd.streamId, missingAfter(cmd.expectedVersion, current), budget.rowLimit);
      return { status: 'conflict', conflict: conflictAnswer(cmd, current, rows.map((r) => publicEvent(toServerEvent(r))), budget) };
    }
    const startError = orderStreamStartError(cmd, current);
    if (startError) throw startError;
    const streamType = cmd.streamType;
    const prepared = prepareEvents(cmd, current, head?.last_hash ?? GENESIS_HASH, recordedAt);
    const stored = prepared.map((p) => {
      const info = this.stmt.insertEvent.run({
        eventId: p.eventId,
        tenantId: cmd.tenantId,
        streamId: p.streamId,
        streamType: p.streamType,
        eventType: p.eventType,
        schemaVersion: p.schemaVersion,
        data: p.dataJson,
        metadata: p.metadataJson,
        streamVersion: p.streamVersion,
        recordedAt: p.recordedAt,
        hash: p.hash,
      });
      return { ...p, globalPosition: Number(info.lastInsertRowid) };
    });
    const last = stored[stored.length - 1]!;
    this.stmt.upsertStream.run(cmd.tenantId, cmd.streamId, streamType, last.streamVersion, last.hash);
    if (streamType === ORDER_STREAM_TYPE) this.project(cmd.tenantId, cmd.streamId, stored);
    return { status: 'ok', result: appendResult(cmd.streamId, stored) };
  }

  private project(tenantId: string, orderId: string, events: FoldInput[]): void {
    const prev = this.stmt.projection.get(tenantId, orderId);
    const view = foldOrderView(orderId, prev ? (JSON.parse(prev.state) as OrderState) : null, events);
    this.stmt.upsertProjection.run({ tenantId, ...view, state: JSON.stringify(view.state) });
  }

  async pull(tenantId: string, after: number, limit: number): Promise<PullResponse> {
    const rows = this.stmt.pull.all(tenantId, after, limit);
    const events = rows.map((r) => publicEvent(toServerEvent(r)));
    return { events, nextPosition: events.length ? events[events.length - 1]!.globalPosition : after, hasMore: rows.length === limit };
  }

  async readStream(tenantId: string, streamId: string, afterVersion = 0, limit = -1): Promise<ServerEvent[]> {
    // LIMIT -1: no limit in SQLite.
    return this.stmt.streamEvents.all(tenantId, streamId, afterVersion, limit).map((r) => publicEvent(toServerEvent(r)));
  }

  async getOrder(tenantId: string, orderId: string): Promise<OrderView | null> {
    const row = this.stmt.projection.get(tenantId, orderId);
    return row ? toView(row) : null;
  }

  async listOrders(tenantId: string, q: DashboardQuery): Promise<DashboardPage> {
    return this.db.transaction(() => {
      const rows = q.status ? this.stmt.listByStatus.all(tenantId, q.status, q.limit, q.offset) : this.stmt.listAll.all(tenantId, q.limit, q.offset);
      const total = (q.status ? this.stmt.countByStatus.get(tenantId, q.status) : this.stmt.countAll.get(tenantId))?.n ?? 0;
      const position = this.stmt.maxPosition.get(tenantId)?.p ?? 0;
      return { orders: rows.map(toView), total, position };
    })();
  }

  async rebuildProjections(tenantId?: string): Promise<{ eventsReplayed: number }> {
    const tenant = tenantId ?? null;
    return this.db
      .transaction(() => {
        this.stmt.clearProjections.run({ tenant });
        let after = 0;
        let replayed = 0;
        for (;;) {
          const rows = this.stmt.orderEventsAfter.all({ type: ORDER_STREAM_TYPE, tenant, after, limit: BATCH });
          if (rows.length === 0) break;
          for (const [key, group] of groupByStream(rows)) {
            const [tenantId, orderId] = key;
            this.project(tenantId, orderId, group.map((r) => toFoldInput(r)));
          }
          replayed += rows.length;
          after = rows[rows.length - 1]!.global_position;
        }
        return { eventsReplayed: replayed };
      })
      .immediate();
  }

  async verifyChain(filter: ChainFilter): Promise<ChainReport> {
    const v = new ChainVerifier();
    const where = { tenant: filter.tenantId ?? null, stream: filter.streamId ?? null, limit: BATCH };
    // One read transaction: the walk and the head check see the same state.
    this.db.transaction(() => {
      let cursor = { t: '', s: '', v: 0 };
      for (;;) {
        const rows = this.stmt.chain.all({ ...where, ...cursor });
        if (rows.length === 0) break;
        for (const r of rows) if (!v.check(toServerEvent(r))) return;
        const last = rows[rows.length - 1]!;
        cursor = { t: last.tenant_id, s: last.aggregate_id, v: last.version };
      }
      let headCursor = { t: '', s: '' };
      for (;;) {
        const heads = this.stmt.heads.all({ ...where, ...headCursor });
        if (heads.length === 0) break;
        for (const h of heads) {
          const last = this.stmt.lastOfStream.get(h.tenant_id, h.aggregate_id);
          if (!v.checkHead(h.tenant_id, h.aggregate_id, h.version, h.last_hash, last?.version ?? 0, last?.hash ?? GENESIS_HASH)) return;
        }
        const lastHead = heads[heads.length - 1]!;
        headCursor = { t: lastHead.tenant_id, s: lastHead.aggregate_id };
      }
    })();
    return report(v);
  }

  async visibleHead(): Promise<number> {
    return this.stmt.head.get()?.p ?? 0;
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    // Appends still queued for the next group commit are written first.
    if (this.db.open) this.flush();
    if (this.db.open) this.db.close();
  }
}

function report(v: ChainVerifier): ChainReport {
  return { ok: v.firstBroken === null, streamsChecked: v.streamsChecked, eventsChecked: v.eventsChecked, firstBroken: v.firstBroken };
}

function toExisting(r: EventRow): ExistingEvent {
  return {
    eventId: r.event_id,
    tenantId: r.tenant_id,
    streamId: r.aggregate_id,
    streamVersion: r.version,
    globalPosition: r.global_position,
    eventType: r.event_type,
    schemaVersion: r.schema_version,
    data: JSON.parse(r.event_data) as Record<string, unknown>,
  };
}

function toFoldInput(r: EventRow): FoldInput {
  return {
    eventId: r.event_id,
    streamVersion: r.version,
    globalPosition: r.global_position,
    eventType: r.event_type,
    schemaVersion: r.schema_version,
    data: JSON.parse(r.event_data),
    recordedAt: r.created_at,
  };
}

function groupByStream(rows: EventRow[]): Map<[string, string], EventRow[]> {
  const byKey = new Map<string, { key: [string, string]; rows: EventRow[] }>();
  for (const r of rows) {
    const k = `${r.tenant_id}\u0000${r.aggregate_id}`;
    let g = byKey.get(k);
    if (!g) byKey.set(k, (g = { key: [r.tenant_id, r.aggregate_id], rows: [] }));
    g.rows.push(r);
  }
  return new Map([...byKey.values()].map((g) => [g.key, g.rows]));
}
