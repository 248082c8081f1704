import type { PullCursorKey } from '../../protocol/sync-api.js';
import type { OrderState } from '../../domain/state.js';
import type { PreparedEvent } from './append-logic.js';
import type { AppendCommand, ChainFilter, DashboardQuery, OrderView } from '../repository.js';
import type { EventRow, HeadCheckRow, OrderCountRow, ProjectionRow, StreamHead } from './rows.js';

/** Where a pull resumes: a global position (devices from before cursors) or a cursor. */
export type PullFrom = { position: number } | { cursor: PullCursorKey };

export interface PulledRows {
  rows: EventRow[];
  next: PullCursorKey | null;
}

/** A pull page as the pull route sends it: the events' public JSON objects, comma-joined in pull order. */
export interface PulledJson {
  /** `publicEventJson` of each row, joined by commas ('' for no events). */
  json: string;
  events: number;
  /** The last event's global position (null: no events). */
  lastPosition: number | null;
  next: PullCursorKey | null;
}

/**
 * The narrow port between the store core (written once) and a database dialect.
 *
 * The core's flows (append, push, rebuild, chain walk) are generators over `Op`s: a dialect
 * whose driver is synchronous (better-sqlite3) returns plain values from generators that never
 * yield, and the flow runs to its end inside one synchronous transaction with nothing
 * interleaved; an asynchronous driver (pg) yields promises, which `runAsync` awaits. One flow,
 * no await in the synchronous dialect's critical section.
 */
export type Op<T> = Generator<unknown, T, unknown>;

/** Wait for a promise inside an Op (asynchronous dialects only). */
export function* wait<T>(p: Promise<T>): Op<T> {
  return (yield p) as T;
}

/** An Op that is already done: what a synchronous dialect returns. */
// eslint-disable-next-line require-yield -- finished from the start, by design: nothing to wait for
export function* done<T>(value: T): Op<T> {
  return value;
}

/** Run an Op that never waits (a synchronous dialect); a yield is a programming error. */
export function runSync<T>(op: Op<T>): T {
  const step = op.next();
  if (!step.done) throw new Error('a synchronous store dialect yielded a promise');
  return step.value;
}

/** Run an Op, awaiting whatever it yields. */
export async function runAsync<T>(op: Op<T>): Promise<T> {
  let step = op.next();
  while (!step.done) {
    let value: unknown;
    try {
      value = await step.value;
    } catch (err) {
      step = op.throw(err);
      continue;
    }
    step = op.next(value);
  }
  return step.value;
}

export type Awaitable<T> = T | Promise<T>;

/** Inside a write transaction: what the append flow and the rebuild loop ask of the database. */
export interface WriteSession {
  /**
   * Lock the stream's head for the rest of the transaction (appends to one stream take turns
   * from here) and read it; null or version 0 when the stream does not exist yet.
   */
  lockHead(cmd: AppendCommand): Op<StreamHead | null>;
  /** The rows stored under the batch's event ids (this tenant only) and, when asked, the order's stored state. */
  readForAppend(cmd: AppendCommand, withState: boolean): Op<{ existing: EventRow[]; state: OrderState | null }>;
  /** The stream's events after `afterVersion` in version order, at most `limit`. */
  streamEvents(tenantId: string, streamId: string, afterVersion: number, limit: number): Op<EventRow[]>;
  /**
   * Write the events, move the head and (when `view` is given) upsert the order's read-model
   * row with last_position = the highest position drawn. Returns each event's global position.
   */
  write(cmd: AppendCommand, events: PreparedEvent[], view: OrderView | null): Op<number[]>;
  /** One push element's own savepoint: begin, keep, undo. */
  savepoint(): Op<void>;
  release(): Op<void>;
  rollbackToSavepoint(): Op<void>;
  /** Rebuild: drop the read model of one tenant (all when null). */
  clearProjections(tenantId: string | null): Op<void>;
  /** The fold version the whole read model was last built with, and recording a new one. */
  readModelVersion(): Op<number>;
  setReadModelVersion(version: number): Op<void>;
  /** Rebuild: Order events after a global position, in position order. */
  orderEventsAfter(tenantId: string | null, after: number, limit: number): Op<EventRow[]>;
  /** Rebuild: one order's stored state (null: none yet). */
  projectionState(tenantId: string, orderId: string): Op<OrderState | null>;
  upsertProjection(tenantId: string, view: OrderView): Op<void>;
}

/** Inside one consistent read snapshot: the chain walk's pages. */
export interface SnapshotSession {
  /** Events in (tenant, stream, version) order after the cursor. */
  chainPage(filter: ChainFilter, cursor: { tenantId: string; streamId: string; version: number }, limit: number): Op<EventRow[]>;
  /** Stream heads in (tenant, stream) order after the cursor, each with the last stored event. */
  headPage(filter: ChainFilter, cursor: { tenantId: string; streamId: string }, limit: number): Op<HeadCheckRow[]>;
  /** The last archived link of a stream whose first events were archived (null: none archived). */
  archivedAnchor?(tenantId: string, streamId: string): Op<{ version: number; hash: string } | null>;
}

/** A scoped pull's filter as the dialects take it (`since`: ISO time of the recency bound). */
export interface ScopedRowsQuery {
  after: number;
  upTo: number;
  limit: number;
  customers: readonly string[];
  since: string | null;
  streams: readonly string[];
}

/** What the core's work in a write transaction returns: its value, and whether to keep its writes. */
export interface Work<T> {
  value: T;
  commit: boolean;
}

/**
 * A write transaction's work in two parts: `prepare` is pure (input checks against the recording
 * time), so a dialect that takes locks runs it before them; `run` is the part inside the transaction.
 */
export interface WriteWork<P, T> {
  prepare(recordedAt: string): P;
  /** The streams `run` may append to: a dialect with concurrent writers locks them all before anything is written. */
  streams(prepared: P): readonly { tenantId: string; streamId: string }[];
  run(s: WriteSession, prepared: P, recordedAt: string): Op<Work<T>>;
}

export interface StoreDialect {
  readonly backend: 'sqlite' | 'pg';
  /**
   * Whether a push locks its streams' heads in (tenant, stream) order: needed where two
   * transactions run at once (so two pushes cannot deadlock); a single writer keeps the given order.
   */
  readonly locksHeadsInOrder: boolean;
  /**
   * Run `work` in one write transaction (with whatever the dialect adds: group commit, the
   * stream locks, retries on a lost race) and commit it when the work says so; every event of
   * it is recorded at one time, the one `prepare` is given.
   */
  writeTransaction<P, T>(work: WriteWork<P, T>): Promise<T>;
  /** Run the rebuild with every append held off until it commits. */
  rebuildTransaction<T>(work: (s: WriteSession) => Op<T>): Promise<T>;
  /** Run `work` on one consistent snapshot. */
  snapshot<T>(work: (s: SnapshotSession) => Op<T>): Promise<T>;

  /**
   * The one gap-safe read (pulls, live streams, the broker relay): a tenant's (every tenant's:
   * null) events after `from` in the dialect's pull order, never skipping one that commits later,
   * with the cursor after them (null: a position pull that has not caught up, so no cursor can
   * stand for it yet).
   */
  pullRows(tenantId: string | null, from: PullFrom, limit: number): Awaitable<PulledRows>;
  /**
   * The same page as `pullRows`, its text built by the database (a first sync pulls a million
   * events, and building each one's JSON in JavaScript from its row was most of the server's
   * time per pulled event). Optional: without it the core builds the text from `pullRows`.
   */
  pullJson?(tenantId: string, from: PullFrom, limit: number): Awaitable<PulledJson>;
  /**
   * The newest position below which every position is settled for good (committed or rolled
   * back): the upper bound of a scoped pull's position window, found the way a position pull is.
   */
  settledHead(): Awaitable<number>;
  /** Events of the tenant's streams in scope in the window (after, upTo], at most `limit`. */
  scopedPullRows(tenantId: string, q: ScopedRowsQuery): Awaitable<EventRow[]>;
  /** The stream's events after `afterVersion`; all when `limit` is undefined. */
  streamRows(tenantId: string, streamId: string, afterVersion: number, limit: number | undefined): Awaitable<EventRow[]>;
  projectionRow(tenantId: string, orderId: string): Awaitable<ProjectionRow | null>;
  /** One consistent page of the dashboard: rows, total count, highest folded position. */
  dashboard(tenantId: string, q: DashboardQuery): Awaitable<{ rows: ProjectionRow[]; total: number; position: number }>;
  /** The broker relay's stored cursor (null: it never published), and storing a new one. */
  relayCheckpoint(): Awaitable<string | null>;
  saveRelayCheckpoint(cursor: string): Awaitable<void>;
  /** The tenant's orders per (status, payment facet, fulfilment facet). */
  orderCounts(tenantId: string): Awaitable<OrderCountRow[]>;
  /** A marker that changes whenever events become visible to pulls. */
  visibleHead(): Awaitable<string>;
  ping(): Awaitable<void>;
  close(): Awaitable<void>;
}
