import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { PullCursorKey } from '../../../protocol/sync-api.js';
import { ORDER_STREAM_TYPE } from '../../../domain/events.js';
import { MIGRATIONS_ROOT, migrateSqlite } from '../../../db/migrations.js';
import { MultiRowStatements } from '../../../db/multi-row.js';
import type { OrderState } from '../../../domain/state.js';
import type { PreparedEvent } from '../append-logic.js';
import type { AppendCommand, ChainFilter, DashboardQuery, OrderView } from '../../repository.js';
import { done, runSync, type Op, type PulledJson, type PulledRows, type PullFrom, type ScopedRowsQuery, type SnapshotSession, type StoreDialect, type WriteSession, type WriteWork } from '../port.js';
import { parseState, type EventRow, type HeadCheckRow, type OrderCountRow, type ProjectionRow, type StreamHead } from '../rows.js';
import { EVENT_INSERT_CHUNK, EVENT_INSERT_COLUMNS, insertEvents, SQL } from './sql.js';

type Statements = { [K in keyof typeof SQL]: Database.Statement };

interface Job {
  work: WriteWork<unknown, unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * The embedded dialect: one better-sqlite3 connection (WAL, synchronous=FULL), so one writer;
 * its flows run synchronously, nothing interleaves a transaction.
 */
/**
 * The cursor after a page that ends at `position`. One writer: every stored position is
 * committed, so it stands for everything so far, except after a full page of a position pull,
 * which has not caught up yet (the device pulls on by position).
 */
function cursorAfter(from: PullFrom, position: number, full: boolean): PullCursorKey | null {
  return 'position' in from && full ? null : { txid: '0', position };
}

export class SqliteDialect implements StoreDialect, WriteSession, SnapshotSession {
  readonly backend = 'sqlite' as const;
  readonly locksHeadsInOrder = false;
  private readonly db: Database.Database;
  private readonly q: Statements;
  private readonly eventInserts: MultiRowStatements;
  private pending: Job[] = [];

  constructor(file: string) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    migrateSqlite(this.db, join(MIGRATIONS_ROOT, 'server-sqlite'), file);
    this.q = Object.fromEntries(Object.entries(SQL).map(([k, sql]) => [k, this.db.prepare(sql)])) as Statements;
    // Rows as [position, text]: no object per pulled event.
    this.q.pullJson.raw(true);
    this.eventInserts = new MultiRowStatements(this.db, insertEvents);
  }

  /**
   * Group commit: work arriving while the previous commit (an fsync) blocked the event loop is
   * queued and written together in one transaction on the next turn, each job in its own
   * savepoint. Callers hear back only after the commit.
   */
  writeTransaction<P, T>(work: WriteWork<P, T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ work: work as WriteWork<unknown, unknown>, resolve: resolve as (v: unknown) => void, reject });
      if (this.pending.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const jobs = this.pending;
    this.pending = [];
    if (jobs.length === 0) return;
    const settled: (() => void)[] = [];
    try {
      this.q.begin.run();
      const recordedAt = new Date().toISOString();
      for (const job of jobs) {
        this.q.jobSavepoint.run();
        try {
          const { value, commit } = runSync(job.work.run(this, job.work.prepare(recordedAt), recordedAt));
          if (!commit) this.q.jobRollback.run();
          this.q.jobRelease.run();
          settled.push(() => job.resolve(value));
        } catch (err) {
          this.q.jobRollback.run();
          this.q.jobRelease.run();
          settled.push(() => job.reject(err));
        }
      }
      this.q.commit.run();
    } catch (err) {
      if (this.db.inTransaction) this.q.rollback.run();
      for (const job of jobs) job.reject(err);
      return;
    }
    for (const settle of settled) settle();
  }

  async rebuildTransaction<T>(work: (s: WriteSession) => Op<T>): Promise<T> {
    // Synchronous from start to commit: no queued append runs in between.
    return this.db.transaction(() => runSync(work(this))).immediate();
  }

  async snapshot<T>(work: (s: SnapshotSession) => Op<T>): Promise<T> {
    return this.db.transaction(() => runSync(work(this)))();
  }

  // WriteSession: every Op is done at once.

  lockHead(cmd: AppendCommand): Op<StreamHead | null> {
    const h = this.q.streamHead.get(cmd.tenantId, cmd.streamId) as { version: number; last_hash: string; aggregate_type: string } | undefined;
    return done(h ? { version: h.version, lastHash: h.last_hash, streamType: h.aggregate_type } : null);
  }

  readForAppend(cmd: AppendCommand, withState: boolean): Op<{ existing: EventRow[]; state: OrderState | null }> {
    const existing: EventRow[] = [];
    for (const e of cmd.events) {
      const row = this.q.eventById.get(cmd.tenantId, e.eventId) as EventRow | undefined;
      if (row) existing.push(row);
    }
    const state = withState ? parseState((this.q.projectionState.get(cmd.tenantId, cmd.streamId) as { state: string } | undefined)?.state) : null;
    return done({ existing, state });
  }

  streamEvents(tenantId: string, streamId: string, afterVersion: number, limit: number): Op<EventRow[]> {
    return done(this.q.streamEvents.all(tenantId, streamId, afterVersion, limit) as EventRow[]);
  }

  /**
   * An append's events in multi-row INSERTs, bound by position (by name, each row was an object
   * whose keys were looked up). Positions: the single writer numbers the rows of one statement
   * consecutively up to its last insert rowid (AUTOINCREMENT, rows never deleted).
   */
  write(cmd: AppendCommand, events: PreparedEvent[], view: OrderView | null): Op<number[]> {
    const positions = new Array<number>(events.length);
    for (let from = 0; from < events.length; from += EVENT_INSERT_CHUNK) {
      const count = Math.min(EVENT_INSERT_CHUNK, events.length - from);
      const params = new Array<unknown>(count * EVENT_INSERT_COLUMNS);
      let i = 0;
      for (let k = from; k < from + count; k++) {
        const p = events[k]!;
        params[i++] = p.eventId;
        params[i++] = cmd.tenantId;
        params[i++] = p.streamId;
        params[i++] = p.streamType;
        params[i++] = p.eventType;
        params[i++] = p.schemaVersion;
        params[i++] = p.dataJson;
        params[i++] = p.metadataJson;
        params[i++] = p.streamVersion;
        params[i++] = p.recordedAt;
        params[i++] = p.hash;
      }
      const last = Number(this.eventInserts.of(count).run(params).lastInsertRowid);
      for (let k = 0; k < count; k++) positions[from + k] = last - count + 1 + k;
    }
    const last = events[events.length - 1]!;
    this.q.upsertStream.run(cmd.tenantId, cmd.streamId, cmd.streamType, last.streamVersion, last.hash);
    if (view) this.upsertProjection(cmd.tenantId, { ...view, lastPosition: positions[positions.length - 1]! });
    return done(positions);
  }

  savepoint(): Op<void> {
    this.q.elementSavepoint.run();
    return done(undefined);
  }

  release(): Op<void> {
    this.q.elementRelease.run();
    return done(undefined);
  }

  rollbackToSavepoint(): Op<void> {
    // SQLite keeps a savepoint after rolling back to it: release it too.
    this.q.elementRollback.run();
    this.q.elementRelease.run();
    return done(undefined);
  }

  clearProjections(tenantId: string | null): Op<void> {
    this.q.clearProjections.run({ tenant: tenantId });
    return done(undefined);
  }

  readModelVersion(): Op<number> {
    return done((this.q.readModelVersion.get() as { version: number }).version);
  }

  setReadModelVersion(version: number): Op<void> {
    this.q.setReadModelVersion.run(version);
    return done(undefined);
  }

  orderEventsAfter(tenantId: string | null, after: number, limit: number): Op<EventRow[]> {
    return done(this.q.orderEventsAfter.all({ type: ORDER_STREAM_TYPE, tenant: tenantId, after, limit }) as EventRow[]);
  }

  projectionState(tenantId: string, orderId: string): Op<OrderState | null> {
    return done(parseState((this.q.projectionState.get(tenantId, orderId) as { state: string } | undefined)?.state));
  }

  upsertProjection(tenantId: string, view: OrderView): Op<void> {
    this.q.upsertProjection.run({ tenantId, ...view, state: JSON.stringify(view.state) });
    return done(undefined);
  }

  // SnapshotSession

  chainPage(filter: ChainFilter, cursor: { tenantId: string; streamId: string; version: number }, limit: number): Op<EventRow[]> {
    return done(this.q.chain.all({ tenant: filter.tenantId ?? null, stream: filter.streamId ?? null, t: cursor.tenantId, s: cursor.streamId, v: cursor.version, limit }) as EventRow[]);
  }

  headPage(filter: ChainFilter, cursor: { tenantId: string; streamId: string }, limit: number): Op<HeadCheckRow[]> {
    const heads = this.q.heads.all({ tenant: filter.tenantId ?? null, stream: filter.streamId ?? null, t: cursor.tenantId, s: cursor.streamId, limit }) as {
      tenant_id: string;
      aggregate_id: string;
      version: number;
      last_hash: string;
    }[];
    return done(heads.map((h) => ({
      tenantId: h.tenant_id,
      streamId: h.aggregate_id,
      version: h.version,
      lastHash: h.last_hash,
      lastEvent: (this.q.lastOfStream.get(h.tenant_id, h.aggregate_id) as { version: number; hash: string } | undefined) ?? null,
    })));
  }

  // Reads outside a write transaction.

  /**
   * One writer commits positions in order, so position order is gap-safe here: a cursor is
   * (0, position). A position pull gets one when it has caught up, as on PostgreSQL. Tenant
   * null: every tenant's (the broker relay).
   */
  pullRows(tenantId: string | null, from: PullFrom, limit: number): PulledRows {
    const after = 'position' in from ? from.position : from.cursor.position;
    const rows = this.q.pull.all({ tenant: tenantId, after, limit }) as EventRow[];
    const last = rows[rows.length - 1];
    return { rows, next: cursorAfter(from, last ? Number(last.global_position) : after, rows.length === limit) };
  }

  pullJson(tenantId: string, from: PullFrom, limit: number): PulledJson {
    const after = 'position' in from ? from.position : from.cursor.position;
    const rows = this.q.pullJson.all({ tenant: tenantId, after, limit }) as [number, string][];
    const json = new Array<string>(rows.length);
    for (let i = 0; i < rows.length; i++) json[i] = rows[i]![1];
    const last = rows.length > 0 ? rows[rows.length - 1]![0] : null;
    return { json: json.join(','), events: rows.length, lastPosition: last, next: cursorAfter(from, last ?? after, rows.length === limit) };
  }

  /** One writer: every stored position is committed. */
  settledHead(): number {
    return (this.q.head.get() as { p: number | null } | undefined)?.p ?? 0;
  }

  relayCheckpoint(): string | null {
    return (this.q.relayCheckpoint.get() as { cursor: string } | undefined)?.cursor ?? null;
  }

  saveRelayCheckpoint(cursor: string): void {
    this.q.saveRelayCheckpoint.run(cursor);
  }

  scopedPullRows(tenantId: string, q: ScopedRowsQuery): EventRow[] {
    return this.q.scopedPull.all({
      tenant: tenantId,
      customers: JSON.stringify(q.customers),
      since: q.since,
      streams: JSON.stringify(q.streams),
      after: q.after,
      upTo: q.upTo,
      limit: q.limit,
    }) as EventRow[];
  }

  streamRows(tenantId: string, streamId: string, afterVersion: number, limit: number | undefined): EventRow[] {
    return this.q.streamEvents.all(tenantId, streamId, afterVersion, limit ?? -1) as EventRow[];
  }

  projectionRow(tenantId: string, orderId: string): ProjectionRow | null {
    return (this.q.projection.get(tenantId, orderId) as ProjectionRow | undefined) ?? null;
  }

  dashboard(tenantId: string, q: DashboardQuery): { rows: ProjectionRow[]; total: number; position: number } {
    return this.db.transaction(() => {
      const filter = { tenant: tenantId, status: q.status ?? null, payment: q.paymentStatus ?? null, fulfilment: q.fulfilmentStatus ?? null };
      const rows = this.q.dashboardPage.all({ ...filter, limit: q.limit, offset: q.offset }) as ProjectionRow[];
      const count = this.q.dashboardCount.get(filter) as { n: number } | undefined;
      const position = (this.q.maxPosition.get(tenantId) as { p: number | null } | undefined)?.p ?? 0;
      return { rows, total: count?.n ?? 0, position };
    })();
  }

  orderCounts(tenantId: string): OrderCountRow[] {
    return this.q.orderCounts.all(tenantId) as OrderCountRow[];
  }

  visibleHead(): string {
    return String(this.settledHead());
  }

  ping(): void {
    this.q.ping.get();
  }

  close(): void {
    // Work still queued for the next group commit is written first.
    if (this.db.open) this.flush();
    if (this.db.open) this.db.close();
  }
}
