import { createHash } from 'node:crypto';
import type pg from 'pg';
import { ORDER_STREAM_TYPE } from '../../../domain/events.js';
import type { OrderState } from '../../../domain/state.js';
import type { PreparedEvent } from '../append-logic.js';
import { GENESIS_HASH } from '../../hash.js';
import { ArchivedEventsError } from '../../../protocol/errors.js';
import type { AppendCommand, ChainFilter, DashboardQuery, OrderView } from '../../repository.js';
import { runAsync, wait, type Op, type PulledRows, type PullFrom, type ScopedRowsQuery, type SnapshotSession, type StoreDialect, type Work, type WriteSession, type WriteWork } from '../port.js';
import { parseState, type EventRow, type HeadCheckRow, type OrderCountRow, type ProjectionRow, type StreamHead } from '../rows.js';
import { LOCK_CLASS_POSITION_PULL, LOCK_CLASS_REBUILD, lockKey, pgCode } from './migrate.js';
import { SQL } from './sql.js';

/** unique_violation (an event id raced in from another stream), deadlock, serialization failure. */
const RETRYABLE = new Set(['23505', '40P01', '40001']);

/** Event ids of an append found in archived partitions, with their archive files. */
type Archived = { eventId: string; archive: string }[];

/** An id whose event was archived cannot be judged a duplicate (its content is in the file only). */
function refuseArchived(archived: Archived): void {
  if (archived.length) throw new ArchivedEventsError(`appending event ${archived[0]!.eventId} again`, [...new Set(archived.map((a) => a.archive))]);
}

/** One transaction's connection: the write and snapshot sessions of the PostgreSQL dialect. */
class PgSession implements WriteSession, SnapshotSession {
  constructor(
    private readonly client: pg.PoolClient,
    private readonly onPosition: (position: number) => void = () => undefined,
  ) {}

  private *query<R extends pg.QueryResultRow>(config: pg.QueryConfig | string, values?: unknown[]): Op<R[]> {
    const result = yield* wait(typeof config === 'string' ? this.client.query<R>(config, values) : this.client.query<R>(config));
    return result.rows;
  }

  /** What lockHead read for the append it locked, handed to the readForAppend that follows. */
  private prefetched: { cmd: AppendCommand; withState: boolean; existing: EventRow[]; archived: Archived; state: OrderState | null } | null = null;

  *lockHead(cmd: AppendCommand): Op<StreamHead | null> {
    const withState = cmd.streamType === ORDER_STREAM_TYPE;
    const rows = yield* this.query<{ version: number; last_hash: string; aggregate_type: string; dups: EventRow[] | null; archived: Archived | null; state: OrderState | null }>({
      name: 'ol_append_head',
      text: SQL.lockHeadRead,
      values: [cmd.tenantId, cmd.streamId, cmd.streamType, GENESIS_HASH, cmd.events.map((e) => e.eventId), withState],
    });
    const h = rows[0]!;
    this.prefetched = { cmd, withState, existing: h.dups ?? [], archived: h.archived ?? [], state: parseState(h.state) };
    return { version: h.version, lastHash: h.last_hash, streamType: h.aggregate_type };
  }

  *readForAppend(cmd: AppendCommand, withState: boolean): Op<{ existing: EventRow[]; state: OrderState | null }> {
    const pre = this.prefetched;
    this.prefetched = null;
    if (pre && pre.cmd === cmd && (pre.withState || !withState)) {
      refuseArchived(pre.archived);
      return { existing: pre.existing, state: withState ? pre.state : null };
    }
    const rows = yield* this.query<{ dups: EventRow[] | null; archived: Archived | null; state: OrderState | null }>({
      name: 'ol_append_read',
      text: SQL.readForAppend,
      values: [cmd.events.map((e) => e.eventId), cmd.tenantId, cmd.streamId, withState],
    });
    refuseArchived(rows[0]!.archived ?? []);
    return { existing: rows[0]!.dups ?? [], state: parseState(rows[0]!.state) };
  }

  *streamEvents(tenantId: string, streamId: string, afterVersion: number, limit: number): Op<EventRow[]> {
    return yield* this.query<EventRow>(SQL.streamEvents, [tenantId, streamId, afterVersion, limit]);
  }

  *write(cmd: AppendCommand, prepared: PreparedEvent[], view: OrderView | null): Op<number[]> {
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
    let query: pg.QueryConfig = { name: 'ol_append_write', text: SQL.appendWrite, values };
    if (view) {
      values.push(view.customerId, view.status, view.total, view.currency, view.itemCount, view.version, view.lastEventId, view.createdAt, view.updatedAt, JSON.stringify(view.state));
      values.push(view.customerName, view.paymentStatus, view.fulfilmentStatus);
      query = { name: 'ol_append_write_order', text: SQL.appendWriteOrder, values };
    }
    const inserted = yield* this.query<{ global_position: string; version: number }>(query);
    const positions = new Map(inserted.map((r) => [r.version, Number(r.global_position)]));
    this.onPosition(Math.max(...positions.values()));
    return prepared.map((p) => positions.get(p.streamVersion)!);
  }

  *savepoint(): Op<void> {
    yield* this.query(SQL.savepoint);
  }

  *release(): Op<void> {
    yield* this.query(SQL.release);
  }

  *rollbackToSavepoint(): Op<void> {
    yield* this.query(SQL.rollbackToSavepoint);
  }

  *clearProjections(tenantId: string | null): Op<void> {
    // A rebuild replays the whole log: refuse rather than build a read model from part of it.
    const archived = yield* this.query<{ archive_file: string }>(SQL.archivedFiles);
    if (archived.length) throw new ArchivedEventsError('rebuilding the order read model', archived.map((a) => a.archive_file));
    yield* this.query(SQL.clearProjections, [tenantId]);
  }

  *readModelVersion(): Op<number> {
    const rows = yield* this.query<{ version: number }>(SQL.readModelVersion);
    return rows[0]!.version;
  }

  *setReadModelVersion(version: number): Op<void> {
    yield* this.query(SQL.setReadModelVersion, [version]);
  }

  *orderEventsAfter(tenantId: string | null, after: number, limit: number): Op<EventRow[]> {
    return yield* this.query<EventRow>(SQL.orderEventsAfter, [ORDER_STREAM_TYPE, after, limit, tenantId]);
  }

  *projectionState(tenantId: string, orderId: string): Op<OrderState | null> {
    const rows = yield* this.query<{ state: OrderState }>(SQL.projectionState, [tenantId, orderId]);
    return parseState(rows[0]?.state);
  }

  *upsertProjection(tenantId: string, v: OrderView): Op<void> {
    yield* this.query(SQL.upsertProjection, projectionParams(tenantId, v));
  }

  *chainPage(filter: ChainFilter, cursor: { tenantId: string; streamId: string; version: number }, limit: number): Op<EventRow[]> {
    return yield* this.query<EventRow>(SQL.chain, [filter.tenantId ?? null, filter.streamId ?? null, cursor.tenantId, cursor.streamId, cursor.version, limit]);
  }

  *archivedAnchor(tenantId: string, streamId: string): Op<{ version: number; hash: string } | null> {
    const rows = yield* this.query<{ version: number; hash: string }>(SQL.archivedAnchor, [tenantId, streamId]);
    return rows[0] ?? null;
  }

  *headPage(filter: ChainFilter, cursor: { tenantId: string; streamId: string }, limit: number): Op<HeadCheckRow[]> {
    const rows = yield* this.query<{ tenant_id: string; aggregate_id: string; version: number; last_hash: string; ev_version: number | null; ev_hash: string | null }>(
      SQL.heads,
      [filter.tenantId ?? null, filter.streamId ?? null, cursor.tenantId, cursor.streamId, limit],
    );
    return rows.map((h) => ({
      tenantId: h.tenant_id,
      streamId: h.aggregate_id,
      version: h.version,
      lastHash: h.last_hash,
      lastEvent: h.ev_version === null ? null : { version: h.ev_version, hash: h.ev_hash! },
    }));
  }
}

/** The PostgreSQL dialect: a pg Pool, every write one READ COMMITTED transaction. */
/** SQL.upsertProjection's parameters for a folded view (the server's read model and the worker's). */
export function projectionParams(tenantId: string, v: OrderView): unknown[] {
  return [
    tenantId,
    v.orderId,
    v.customerId,
    v.status,
    v.total,
    v.currency,
    v.itemCount,
    v.version,
    v.lastEventId,
    v.lastPosition,
    v.createdAt,
    v.updatedAt,
    JSON.stringify(v.state),
    v.customerName,
    v.paymentStatus,
    v.fulfilmentStatus,
  ];
}

export class PgDialect implements StoreDialect {
  readonly backend = 'pg' as const;
  readonly locksHeadsInOrder = true;
  private readonly rebuildKey: [number, number];
  private readonly drainKey: [number, number];
  /** The drain lock's keys as `pg_locks` shows them (oids: unsigned). */
  private readonly drainKeyUnsigned: [number, number];
  /** Partitions exist below `top`; past `top - partitionSize` the next append asks for more. */
  private partitions = { top: Number.MAX_SAFE_INTEGER, size: 1 };
  private maintaining: Promise<void> | null = null;
  private readonly onPosition = (position: number): void => {
    if (position >= this.partitions.top - this.partitions.size) void this.ensurePartitions().catch(() => undefined);
  };

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {
    this.rebuildKey = [LOCK_CLASS_REBUILD, lockKey(schema)];
    this.drainKey = [LOCK_CLASS_POSITION_PULL, lockKey(schema)];
    this.drainKeyUnsigned = [this.drainKey[0] >>> 0, this.drainKey[1] >>> 0];
  }

  /**
   * Create partitions ahead of the head (one call at a time; the database function also takes
   * turns across servers). Called at open and, outside any append's transaction, when an append
   * lands in the last partition. An append never waits for it: a row past the last partition
   * lands in the default partition, and this moves it into its range partition.
   */
  ensurePartitions(): Promise<void> {
    this.maintaining ??= (async () => {
      try {
        await this.pool.query(SQL.ensurePartitions);
        const { rows } = await this.pool.query<{ partition_size: string; top: string | null }>(SQL.partitionTop);
        this.partitions = { top: Number(rows[0]?.top ?? Number.MAX_SAFE_INTEGER), size: Number(rows[0]?.partition_size ?? 1) };
      } finally {
        this.maintaining = null;
      }
    })();
    return this.maintaining;
  }

  /**
   * One READ COMMITTED transaction, retried from the start on a race it lost (unique violation,
   * deadlock). Appends do not take turns: each first takes the shared side of the position
   * pulls' drain lock and the advisory locks of its streams (sorted keys: no deadlock), and only
   * then writes, which gives it its transaction id. So two appends to one stream get ids in the
   * order they held the stream, and a cursor pull, which orders by (txid, position), delivers
   * each stream in version order (the proof: docs/architecture.md, gap-safe pulls).
   */
  async writeTransaction<P, T>(work: WriteWork<P, T>): Promise<T> {
    const recordedAt = new Date().toISOString();
    const prepared = work.prepare(recordedAt);
    const streamKeys = this.streamLockKeys(work.streams(prepared));
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.transaction(SQL.appendBegin(this.drainKey, streamKeys, this.rebuildKey), async (client) => {
          return runAsync(work.run(new PgSession(client, this.onPosition), prepared, recordedAt));
        });
      } catch (err) {
        if (attempt < 5 && RETRYABLE.has(pgCode(err) ?? '')) continue;
        throw err;
      }
    }
  }

  /** One 64-bit advisory key per (schema, tenant, stream), sorted and distinct; a collision only makes two streams take turns. */
  private streamLockKeys(streams: readonly { tenantId: string; streamId: string }[]): string[] {
    const keys = new Set<bigint>();
    for (const { tenantId, streamId } of streams) {
      keys.add(createHash('sha256').update(`${this.schema}\0${tenantId}\0${streamId}`).digest().readBigInt64BE(0));
    }
    return [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(String);
  }

  rebuildTransaction<T>(work: (s: WriteSession) => Op<T>): Promise<T> {
    return this.transaction(SQL.begin, async (client) => {
      // Exclusive against every append's shared lock: no append is in flight while we replay,
      // and readers keep seeing the old read model until this commits.
      await client.query(SQL.rebuildLock, this.rebuildKey);
      return { value: await runAsync(work(new PgSession(client))), commit: true };
    });
  }

  /** One snapshot for the whole work (the chain walk and its head check), so a concurrent append is not a "break". */
  snapshot<T>(work: (s: SnapshotSession) => Op<T>): Promise<T> {
    return this.transaction(SQL.beginSnapshot, async (client) => ({ value: await runAsync(work(new PgSession(client))), commit: true }));
  }

  /** One transaction on one pooled connection, committed only when `run` says so. */
  private async transaction<T>(begin: string, run: (client: pg.PoolClient) => Promise<Work<T>>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query(begin);
      const { value, commit } = await run(client);
      await client.query(commit ? SQL.commit : SQL.rollback);
      return value;
    } catch (err) {
      await client.query(SQL.rollback).catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * The one gap-safe read. A cursor pull reads settled rows in (txid, position) order and takes
   * no lock. A position pull (devices from before cursors; a relay checkpoint stored before
   * cursors) needs positions visible in order, which concurrent appends no longer give: it
   * waits until no append is in flight (the drain lock, held for two short reads, holds new
   * appends off meanwhile), reads in position order, and, when that reached the end, hands out
   * the cursor that stands for "everything so far". Either fails naming the archives when it
   * would step over archived events (every tenant's: tenant null, the relay).
   */
  async pullRows(tenantId: string | null, from: PullFrom, limit: number): Promise<PulledRows> {
    // Archived partitions are a prefix of the positions: after a cursor, its position is where
    // undelivered rows may start (an older transaction's row below it is the rare exception).
    const after = 'cursor' in from ? from.cursor.position : from.position;
    // A cursor pull's horizon comes from a statement that ends before the pull's own begins (its
    // snapshot must be later than the lock table the horizon read): read beside the archive check.
    const [archived, horizon] = await Promise.all([
      this.pool.query<{ archive_file: string }>({ name: 'ol_pull_archived', text: SQL.pullArchived, values: [tenantId, after] }),
      'cursor' in from ? this.pool.query<{ h: string }>({ name: 'ol_pull_horizon', text: SQL.pullHorizon, values: this.drainKeyUnsigned }) : null,
    ]);
    if (archived.rows.length) throw new ArchivedEventsError(`pulling after position ${after}`, archived.rows.map((a) => a.archive_file));
    if ('cursor' in from) {
      const values = [tenantId, from.cursor.txid, from.cursor.position, limit, horizon!.rows[0]!.h];
      const { rows } = await this.pool.query<EventRow>({ name: 'ol_pull', text: SQL.pull, values });
      const last = rows[rows.length - 1];
      return { rows, next: last ? { txid: last.txid!, position: Number(last.global_position) } : from.cursor };
    }
    return this.transaction<PulledRows>(SQL.begin, async (client) => {
      await client.query({ name: 'ol_position_pull_drain', text: SQL.positionPullDrain, values: this.drainKey });
      const { rows } = await client.query<EventRow>({ name: 'ol_pull_by_position', text: SQL.pullByPosition, values: [tenantId, from.position, limit] });
      if (rows.length === limit) return { value: { rows, next: null }, commit: true };
      const x = (await client.query<{ x: string }>({ name: 'ol_next_txid', text: SQL.nextTxid })).rows[0]!.x;
      return { value: { rows, next: { txid: x, position: 0 } }, commit: true };
    });
  }

  /** Like a position pull: under the drain lock no append holds a position, so every one up to the newest is settled. */
  async settledHead(): Promise<number> {
    return this.transaction<number>(SQL.begin, async (client) => {
      await client.query({ name: 'ol_position_pull_drain', text: SQL.positionPullDrain, values: this.drainKey });
      const { rows } = await client.query<{ p: string }>({ name: 'ol_settled_head', text: SQL.settledHead });
      return { value: Number(rows[0]!.p), commit: true };
    });
  }

  async scopedPullRows(tenantId: string, q: ScopedRowsQuery): Promise<EventRow[]> {
    const params = [tenantId, q.customers, q.since, q.streams, q.after, q.upTo, q.limit];
    return (await this.pool.query<EventRow>(SQL.scopedPull, params)).rows;
  }

  /** Archived events are a prefix of a stream: only a read not starting at the next live version can need them. */
  async streamRows(tenantId: string, streamId: string, afterVersion: number, limit: number | undefined): Promise<EventRow[]> {
    const rows = (await this.pool.query<EventRow>(SQL.streamEvents, [tenantId, streamId, afterVersion, limit ?? null])).rows;
    if (rows[0]?.version !== afterVersion + 1) {
      const archived = await this.pool.query<{ archive_file: string }>(SQL.streamArchived, [tenantId, streamId, afterVersion]);
      if (archived.rows.length) throw new ArchivedEventsError(`reading stream ${streamId} after version ${afterVersion}`, archived.rows.map((a) => a.archive_file));
    }
    return rows;
  }

  async projectionRow(tenantId: string, orderId: string): Promise<ProjectionRow | null> {
    return (await this.pool.query<ProjectionRow>(SQL.projection, [tenantId, orderId])).rows[0] ?? null;
  }

  async dashboard(tenantId: string, q: DashboardQuery): Promise<{ rows: ProjectionRow[]; total: number; position: number }> {
    const status = q.status ?? null;
    const payment = q.paymentStatus ?? null;
    const fulfilment = q.fulfilmentStatus ?? null;
    const [page, count, pos] = await Promise.all([
      this.pool.query<ProjectionRow>(SQL.dashboardPage, [tenantId, status, q.limit, q.offset, payment, fulfilment]),
      this.pool.query<{ n: string }>(SQL.dashboardCount, [tenantId, status, payment, fulfilment]),
      this.pool.query<{ p: string | null }>(SQL.dashboardPosition, [tenantId]),
    ]);
    return { rows: page.rows, total: Number(count.rows[0]?.n ?? 0), position: Number(pos.rows[0]?.p ?? 0) };
  }

  async orderCounts(tenantId: string): Promise<OrderCountRow[]> {
    const { rows } = await this.pool.query<OrderCountRow & { n: string }>(SQL.orderCounts, [tenantId]);
    return rows.map((r) => ({ ...r, n: Number(r.n) }));
  }

  async visibleHead(): Promise<string> {
    const { rows } = await this.pool.query<{ marker: string }>({ name: 'ol_visible_head', text: SQL.visibleHead, values: this.drainKeyUnsigned });
    return rows[0]!.marker;
  }

  async relayCheckpoint(): Promise<string | null> {
    return (await this.pool.query<{ cursor: string }>(SQL.relayCheckpoint)).rows[0]?.cursor ?? null;
  }

  async saveRelayCheckpoint(cursor: string): Promise<void> {
    await this.pool.query(SQL.saveRelayCheckpoint, [cursor]);
  }

  async ping(): Promise<void> {
    await this.pool.query(SQL.ping);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
