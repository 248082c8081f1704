import type Database from 'better-sqlite3';
import { z } from 'zod';
import type { StoredEvent } from '../protocol/envelope.js';
import type { KeyCache } from './lru.js';
import type { SyncBadge } from './query-schemas.js';


/** A local event not yet acknowledged by the server (kept out of `events` by the sync layer). */
export interface PendingEvent {
  type: string;
  data: unknown;
  recordedAt?: string;
}

/**
 * The sync layer's outbox as the read side sees it. `pendingEvents` must return only events
 * that are NOT in the `events` table (once an event is confirmed and appended, the outbox must
 * no longer list it), in the order they will be applied on top of the confirmed state.
 */
export interface PendingSource {
  pendingEvents(orderId: string): PendingEvent[];
  badge(orderId: string): SyncBadge;
  /**
   * Every order whose overlay is not its plain confirmed state (pending events, or a badge other
   * than 'synced'). A rebuild that folds in a worker thread folds without the overlay and then
   * refreshes these; without this method such rebuilds run on the calling thread.
   */
  overlaid?(): string[];
}

/** One table of a projection. Names carry the prefix ('' for the live view). */
export interface TableDef {
  /** Table name including the prefix. */
  name: string;
  /** Name without the prefix (the live name). */
  baseName: string;
  /** CREATE TABLE statement (primary key included, no secondary indexes). */
  create: string;
  /**
   * Index-like statements (CREATE INDEX, and search tables with their population and triggers):
   * run on live tables only (on shadows when they are swapped in), made idempotent by the
   * runner (IF NOT EXISTS), so they must also be safe to run again on an existing view.
   */
  indexes: string[];
  /** Tables the `indexes` statements create (search indexes): dropped whenever this table is. */
  companions?: string[];
  /** Primary key columns: how the drift check matches live rows with rebuilt rows. */
  key: string[];
}

/** Where a projection writes: one table prefix on one connection, with its statement cache. */
export interface ApplyContext {
  readonly db: Database.Database;
  readonly prefix: string;
  /** Prepare once per context (statements are reused across batches). */
  stmt(sql: string): Database.Statement;
  /**
   * Scratch cache the projection may use between batches. Entries must always equal what is
   * stored (write-through), so evicting one needs no flush. Live mode clears it after every
   * batch (a rolled-back transaction must not leave stale entries); rebuilds keep it, bounded.
   */
  readonly cache: KeyCache<string, unknown>;
  /** The sync outbox overlay, or null (effective = confirmed). */
  readonly pending: PendingSource | null;
  /**
   * A shadow being filled by a rebuild: a projection may skip tables it can derive from its
   * other tables in one pass, and derives them in `finishBulk` before the shadow is used.
   */
  readonly bulk?: boolean;
  /**
   * Set by a rebuild's swap: the keys whose rows a bulk write changes are added to it (the
   * summary of the committed rows that `finishBulk` is given leaves those rows out).
   */
  changed?: Set<string>;
}

/** What `finishBulk` derives from, summarised on another connection (`Projection.summarizeBulk`). */
export interface BulkSummary {
  /** `summarizeBulk`'s result. */
  of: unknown;
  /** The keys it left out: their rows are read again, as they are now. */
  changed: readonly string[];
}

/** A projection as a runner holds it. */
export interface Registered {
  readonly projection: Projection;
  /** Context over the live tables. Its cache is cleared at the start of every operation. */
  readonly ctx: ApplyContext;
}

/**
 * Where a worker thread finds the same projection: a module URL (`import.meta.url` of the module
 * that defines it) and the name of a factory it exports that takes no arguments.
 */
export interface PortableProjection {
  module: string;
  factory: string;
  /**
   * Its streams can be folded apart: what it writes for one stream never depends on another
   * stream's events, and writes shared by several streams commute (counters, min, max). Then
   * several workers fold disjoint sets of streams of the same pages.
   */
  byStream?: boolean;
}

/**
 * A named, versioned consumer of the log that maintains its own tables. Projections are dumb:
 * they translate events into rows, never decide anything. The runner guarantees each event is
 * applied once: it filters by the checkpoint and commits rows and checkpoint together.
 */
export interface Projection {
  readonly name: string;
  /** Bump when the rows it produces change: the next open rebuilds the view. */
  readonly version: number;
  /**
   * Set when a rebuild may fold this projection in a worker thread. There, `apply` runs with a
   * context whose statements record their writes (committed by the rebuilding thread, in order)
   * and read from a read-only connection: the projection must read its own tables only on a
   * cache miss, and never use a write's result (`run()`'s changes).
   */
  readonly portable?: PortableProjection;
  tables(prefix: string): TableDef[];
  /** Apply a batch of upcast events in log order, inside the caller's transaction. */
  apply(ctx: ApplyContext, events: readonly StoredEvent[]): void;
  /** Delete every row (tables stay). */
  reset(ctx: ApplyContext): void;
  /** Recompute the pending overlay of these orders (only projections that show pending state). */
  refresh?(ctx: ApplyContext, orderIds: readonly string[]): void;
  /** Keys of rows that currently show a pending overlay (refreshed before a shadow is swapped in). */
  pendingKeys?(ctx: ApplyContext): string[];
  /**
   * Bulk (`ctx.bulk`) contexts only: fill the tables that `apply` skipped, from the others, so
   * they equal what inline application produces. Runs once, after the last event and overlay
   * refresh, before the shadow is swapped in or compared, over the tables of `ctx.prefix`.
   * Given a summary, it adds the rows of the summary's changed keys instead of reading all.
   */
  finishBulk?(ctx: ApplyContext, summary?: BulkSummary): void;
  /**
   * With `finishBulk`: what it derives, computed from the rows committed in the tables of
   * `ctx.prefix` but those of `changed` keys, on a read-only connection of a worker thread (a
   * rebuild's swap builds the indexes meanwhile). Reads only; the result is structured-cloned.
   */
  summarizeBulk?(ctx: ApplyContext, changed: readonly string[]): unknown;
}

export type ProjectionState = 'live' | 'behind' | 'failed' | 'rebuilding';

export interface ProjectionStatus {
  name: string;
  version: number;
  position: number;
  head: number;
  state: ProjectionState;
  error: string | null;
}

export const RebuildProgress = z.object({
  projection: z.string(),
  done: z.number(),
  total: z.number(),
  ratePerSec: z.number(),
  etaMs: z.number().nullable(),
  finished: z.boolean(),
});
export type RebuildProgress = z.infer<typeof RebuildProgress>;

/** Thrown by `retry`/`rebuild` for a name that was never registered. */
export class UnknownProjectionError extends Error {
  override name = 'UnknownProjectionError';
  constructor(readonly projection: string) {
    super(`no projection named ${JSON.stringify(projection)} is registered`);
  }
}

/** A keyset cursor that is malformed or belongs to another sort order. */
export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
}

/** Raised to abort a rebuild on purpose (e.g. the app is closing); the shadow stays resumable. */
export class RebuildAbortedError extends Error {
  override name = 'RebuildAbortedError';
}
