import type Database from 'better-sqlite3';
import { canonicalJson } from '../protocol/canonical-json.js';
import {
  expectedVersionMatches,
  type EventMetadata,
  type ExpectedVersion,
  type NewEvent,
  type NewEventInput,
  type StoredEvent,
} from '../protocol/envelope.js';
import { isCurrentSchema, upcast } from '../domain/upcasters.js';
import { ConcurrencyError, IdempotencyConflictError, InvalidEventError } from '../protocol/errors.js';
import { MultiRowStatements, valueRows } from '../db/multi-row.js';
import { parseNewEvent, validateEvent } from './event-validation.js';

export interface AppendOptions {
  expectedVersion: ExpectedVersion;
  streamType?: string;
  /** Accept event types this build does not know (e.g. written by a newer app, pulled from the server). */
  allowUnknownTypes?: boolean;
  /** Keep the time another store recorded the events at (replication); default: now. */
  recordedAt?: string;
}

export interface AppendResult {
  streamId: string;
  /** First and last stream version written (or found, for a duplicate). */
  fromVersion: number;
  toVersion: number;
  positions: number[];
  eventIds: string[];
  /** True when every event was already stored with the same content: nothing new was written. */
  duplicate: boolean;
  events: StoredEvent[];
}

/** Called inside the append transaction, after the rows are written: throw to roll everything back. */
export type AppendHook = (events: StoredEvent[]) => void;

/** An events row as `EVENT_COLUMNS` selects it. */
export interface EventRow {
  position: number;
  event_id: string;
  stream_id: string;
  stream_type: string;
  stream_version: number;
  event_type: string;
  schema_version: number;
  data: string;
  metadata: string;
  recorded_at: string;
}

const INSERT =
  'INSERT INTO events (event_id, stream_id, stream_type, stream_version, event_type, schema_version, data, metadata, recorded_at) VALUES';
// 256 rows of 9 parameters: far below SQLite's 32766, and a 500-event batch in 2 statements (was 10 of 50 rows).
const INSERT_CHUNK = 256;
const insertOf = (rows: number) => `${INSERT} ${valueRows(rows, 9)}`;

/** The columns `rowToEvent` reads, in order. */
export const EVENT_COLUMNS = 'position, event_id, stream_id, stream_type, stream_version, event_type, schema_version, data, metadata, recorded_at';
const COLUMNS = EVENT_COLUMNS;

/** Whether two metadata objects are the same flat string map, key order included (so the same JSON text). */
function sameFlatStrings(a: EventMetadata, b: EventMetadata): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    const k = ka[i]!;
    const v = (a as Record<string, unknown>)[k];
    if (k !== kb[i] || typeof v !== 'string' || v !== (b as Record<string, unknown>)[k]) return false;
  }
  return true;
}

/** An event id of the batch is stored already: thrown out of an optimistic append to roll it back. */
class StoredIdFound extends Error {}

const isStoredIdError = (err: unknown): boolean =>
  err instanceof Error && (err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE' && err.message.includes('events.event_id');

export function rowToEvent(row: EventRow): StoredEvent {
  return {
    position: row.position,
    eventId: row.event_id,
    streamId: row.stream_id,
    streamType: row.stream_type,
    streamVersion: row.stream_version,
    eventType: row.event_type,
    schemaVersion: row.schema_version,
    data: JSON.parse(row.data) as Record<string, unknown>,
    metadata: JSON.parse(row.metadata) as EventMetadata,
    recordedAt: row.recorded_at,
  };
}

/**
 * Bring a stored event to the current schema of its type (old events are upcast on read).
 * A class, not a spread: a spread drops a getter on the prototype (a rebuild's events read
 * their metadata lazily) and, with keys added, cost V8 about a microsecond an event; an object
 * literal with a getter made a closure and a slow object per event.
 */
export function upcastEvent(event: StoredEvent): StoredEvent {
  // Most stored events are current: no upcast and nothing allocated (a rebuild reads a million).
  if (isCurrentSchema(event.eventType, event.schemaVersion)) return event;
  const up = upcast(event.eventType, event.schemaVersion, event.data);
  return new UpcastEvent(event, up.schemaVersion, up.data as Record<string, unknown>);
}

/** A stored event read at a newer schema version; its metadata is the stored event's, read when asked for (a rebuild's events read it lazily). */
class UpcastEvent implements StoredEvent {
  readonly position: number;
  readonly eventId: string;
  readonly streamId: string;
  readonly streamType: string;
  readonly streamVersion: number;
  readonly eventType: string;
  readonly recordedAt: string;
  constructor(
    private readonly stored: StoredEvent,
    readonly schemaVersion: number,
    readonly data: Record<string, unknown>,
  ) {
    this.position = stored.position;
    this.eventId = stored.eventId;
    this.streamId = stored.streamId;
    this.streamType = stored.streamType;
    this.streamVersion = stored.streamVersion;
    this.eventType = stored.eventType;
    this.recordedAt = stored.recordedAt;
  }

  get metadata(): StoredEvent['metadata'] {
    return this.stored.metadata;
  }

  /** Serialised as the plain event it stands for, metadata included. */
  toJSON(): StoredEvent {
    const { position, eventId, streamId, streamType, streamVersion, eventType, schemaVersion, data, metadata, recordedAt } = this;
    return { position, eventId, streamId, streamType, streamVersion, eventType, schemaVersion, data, metadata, recordedAt };
  }
}

/**
 * The device's append-only event log over one SQLite connection. Appends are atomic per
 * batch, checked against an expected version, idempotent by event id, and serialised across
 * connections and processes by SQLite's write lock (BEGIN IMMEDIATE).
 */
export class EventLog {
  private readonly hooks: AppendHook[] = [];
  /** Events appended inside withHooksBatched, not yet handed to the hooks. */
  private held: StoredEvent[] | null = null;
  /** INSERTs of fewer rows than a chunk (the tail of a batch). */
  private readonly inserts: MultiRowStatements;
  private readonly stmt;

  constructor(readonly db: Database.Database) {
    this.inserts = new MultiRowStatements(db, insertOf);
    this.stmt = {
      // A stream whose old events were dropped (bounded history) continues after its evicted version.
      version: db.prepare<[string, string], { v: number | null }>(
        `SELECT MAX(v) AS v FROM (SELECT MAX(stream_version) AS v FROM events WHERE stream_id = ?
           UNION ALL SELECT version FROM evicted_streams WHERE stream_id = ?)`,
      ),
      byId: db.prepare<[string], EventRow>(`SELECT ${COLUMNS} FROM events WHERE event_id = ?`),
      // One probe per batch instead of one per event: most appends are new, so this is all they pay.
      anyStored: db
        .prepare<[string], number>('SELECT 1 FROM events WHERE event_id IN (SELECT value FROM json_each(?)) LIMIT 1')
        .pluck(),
      // Batches go in chunks of INSERT_CHUNK rows per statement: one step instead of
      // INSERT_CHUNK, which is most of a batched append's per-event cost after validation.
      insertChunk: db.prepare(insertOf(INSERT_CHUNK)),
      stream: db.prepare<[string, number, number], EventRow>(
        `SELECT ${COLUMNS} FROM events WHERE stream_id = ? AND stream_version BETWEEN ? AND ? ORDER BY stream_version`,
      ),
      after: db.prepare<[number, number], EventRow>(`SELECT ${COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?`),
      byType: db.prepare<[string, number, number], EventRow>(
        `SELECT ${COLUMNS} FROM events WHERE event_type = ? AND position > ? ORDER BY position LIMIT ?`,
      ),
      head: db.prepare<[], { p: number | null }>('SELECT MAX(position) AS p FROM events'),
      versionAt: db.prepare<[string, string], { v: number | null }>(
        'SELECT MAX(stream_version) AS v FROM events WHERE stream_id = ? AND recorded_at <= ?',
      ),
    };
  }

  /**
   * Run `fn` (inside the caller's transaction) with the append hooks held: every event it
   * appends reaches the hooks once, in log order, when `fn` returns, still inside the same
   * transaction. A pulled page of many short streams then costs one projection pass instead of
   * one per stream. If `fn` throws, the held events are dropped with the transaction.
   */
  withHooksBatched<T>(fn: () => T): T {
    if (this.held) return fn();
    if (!this.db.inTransaction) throw new Error('withHooksBatched must run inside a transaction (the hooks commit with the events)');
    this.held = [];
    try {
      const out = fn();
      const events = this.held;
      this.held = null;
      if (events.length > 0) for (const hook of this.hooks) hook(events);
      return out;
    } finally {
      this.held = null;
    }
  }

  /** Run `hook` inside every append transaction (inline projections). Returns an unsubscribe. */
  onAppend(hook: AppendHook): () => void {
    this.hooks.push(hook);
    return () => {
      const i = this.hooks.indexOf(hook);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  streamVersion(streamId: string): number {
    return this.stmt.version.get(streamId, streamId)?.v ?? 0;
  }

  headPosition(): number {
    return this.stmt.head.get()?.p ?? 0;
  }

  append(streamId: string, input: readonly NewEventInput[], opts: AppendOptions): AppendResult {
    if (input.length === 0) throw new InvalidEventError('an append needs at least one event');
    const events = input.map((e, i) => parseNewEvent(e, i));
    const streamType = opts.streamType ?? 'Order';
    const recordedAt = opts.recordedAt ? new Date(opts.recordedAt).toISOString() : new Date().toISOString();
    const seen = new Set<string>();
    // The contract's reference time, parsed once per batch instead of once per event.
    const now = Date.parse(recordedAt);
    for (const e of events) {
      if (seen.has(e.eventId)) throw new InvalidEventError(`event id ${e.eventId} appears twice in one batch`);
      seen.add(e.eventId);
      validateEvent(e, streamType, { allowUnknownTypes: opts.allowUnknownTypes, now });
    }
    try {
      return this.db.transaction(() => this.appendValidated(streamId, streamType, events, opts.expectedVersion, recordedAt, true)).immediate();
    } catch (err) {
      if (!(err instanceof StoredIdFound)) throw err;
      // Some id is stored already (nothing was written): decide as a retry or a conflict, probing first.
      return this.db.transaction(() => this.appendValidated(streamId, streamType, events, opts.expectedVersion, recordedAt, false)).immediate();
    }
  }

  /**
   * `optimistic`: most appends are new, so they skip the stored-id probe and let the unique
   * index on event_id find a stored id (StoredIdFound rolls the attempt back, and the append
   * runs again with the probe). The outcome is the probe's: an expected-version mismatch still
   * looks for a retried batch before it is reported.
   */
  private appendValidated(
    streamId: string,
    streamType: string,
    events: NewEvent[],
    expected: ExpectedVersion,
    recordedAt: string,
    optimistic: boolean,
  ): AppendResult {
    if (!optimistic) {
      const existing = this.findExisting(streamId, streamType, events);
      if (existing) return existing;
    }

    const actual = this.streamVersion(streamId);
    if (!expectedVersionMatches(expected, actual)) {
      const existing = optimistic ? this.findExisting(streamId, streamType, events) : null;
      if (existing) return existing;
      throw new ConcurrencyError(streamId, expected, actual);
    }

    const stored: StoredEvent[] = [];
    const params: unknown[] = [];
    let version = actual;
    let chunkStart = 0;
    // Writers give a batch one metadata (user, device, correlation): its JSON text is made once.
    let lastMeta: EventMetadata | null = null;
    let lastMetaJson = '';
    for (const e of events) {
      version += 1;
      if (lastMeta === null || !sameFlatStrings(e.metadata, lastMeta)) {
        lastMeta = e.metadata;
        lastMetaJson = JSON.stringify(e.metadata);
      }
      params.push(e.eventId, streamId, streamType, version, e.eventType, e.schemaVersion, JSON.stringify(e.data), lastMetaJson, recordedAt);
      stored.push({
        position: 0,
        eventId: e.eventId,
        streamId,
        streamType,
        streamVersion: version,
        eventType: e.eventType,
        schemaVersion: e.schemaVersion,
        data: e.data,
        metadata: e.metadata,
        recordedAt,
      });
      if (stored.length - chunkStart === INSERT_CHUNK) {
        this.writeRows(this.stmt.insertChunk, params, stored, chunkStart);
        chunkStart = stored.length;
        params.length = 0;
      }
    }
    if (chunkStart < stored.length) this.writeRows(this.inserts.of(stored.length - chunkStart), params, stored, chunkStart);
    if (this.held) this.held.push(...stored);
    else for (const hook of this.hooks) hook(stored);
    return {
      streamId,
      fromVersion: actual + 1,
      toVersion: version,
      positions: stored.map((s) => s.position),
      eventIds: stored.map((s) => s.eventId),
      duplicate: false,
      events: stored,
    };
  }

  /**
   * One INSERT of `count` rows. Positions are rowids: the single writer gives each new row the
   * largest rowid plus one (rows are never deleted), so the rows of one statement are numbered
   * consecutively up to the last insert rowid.
   */
  private writeRows(statement: Database.Statement, params: unknown[], stored: StoredEvent[], from: number): void {
    let last: number;
    try {
      last = Number(statement.run(params).lastInsertRowid);
    } catch (err) {
      if (isStoredIdError(err)) throw new StoredIdFound();
      throw err;
    }
    const count = params.length / 9;
    for (let k = 0; k < count; k++) stored[from + k]!.position = last - count + 1 + k;
  }

  /**
   * Idempotency: a batch whose ids are all stored with the same content is answered with the
   * original result. Any stored id with other content, or a batch only partly stored (batches
   * are atomic, so that is a different batch reusing ids), is an error.
   */
  private findExisting(streamId: string, streamType: string, events: NewEvent[]): AppendResult | null {
    if (this.stmt.anyStored.get(JSON.stringify(events.map((e) => e.eventId))) === undefined) return null;
    const rows = events.map((e) => this.stmt.byId.get(e.eventId));
    const found = rows.filter((r): r is EventRow => r !== undefined);
    if (found.length === 0) return null;
    events.forEach((e, i) => {
      const row = rows[i];
      if (!row) return;
      const differences: string[] = [];
      if (row.stream_id !== streamId) differences.push(`stream ${row.stream_id} vs ${streamId}`);
      if (row.stream_type !== streamType) differences.push('stream type');
      if (row.event_type !== e.eventType) differences.push(`type ${row.event_type} vs ${e.eventType}`);
      if (row.schema_version !== e.schemaVersion) differences.push('schema version');
      if (canonicalJson(JSON.parse(row.data)) !== canonicalJson(e.data)) differences.push('data');
      if (canonicalJson(JSON.parse(row.metadata)) !== canonicalJson(e.metadata)) differences.push('metadata');
      if (differences.length > 0) throw new IdempotencyConflictError(e.eventId, differences.join(', '));
    });
    if (found.length !== events.length) {
      throw new IdempotencyConflictError(found[0]!.event_id, 'the batch mixes stored and new events; batches are atomic');
    }
    const stored = found.map(rowToEvent);
    return {
      streamId,
      fromVersion: stored[0]!.streamVersion,
      toVersion: stored[stored.length - 1]!.streamVersion,
      positions: stored.map((s) => s.position),
      eventIds: stored.map((s) => s.eventId),
      duplicate: true,
      events: stored,
    };
  }

  /** Events of one stream between two versions (inclusive), upcast to current schemas unless `raw`. */
  readStream(streamId: string, opts: { fromVersion?: number; toVersion?: number; raw?: boolean } = {}): StoredEvent[] {
    const rows = this.stmt.stream.all(streamId, opts.fromVersion ?? 1, opts.toVersion ?? Number.MAX_SAFE_INTEGER);
    const events = rows.map(rowToEvent);
    return opts.raw ? events : events.map(upcastEvent);
  }

  /**
   * Every event after a position, in log order, fetched in keyset pages so memory stays flat
   * however long the log is (and writes on this connection between pages are allowed).
   */
  *readAll(opts: { fromPosition?: number; toPosition?: number; batchSize?: number; raw?: boolean } = {}): Generator<StoredEvent> {
    const batch = opts.batchSize ?? 1000;
    const to = opts.toPosition ?? Number.MAX_SAFE_INTEGER;
    let after = opts.fromPosition ?? 0;
    for (;;) {
      const rows = this.stmt.after.all(after, batch);
      for (const row of rows) {
        if (row.position > to) return;
        const e = rowToEvent(row);
        yield opts.raw ? e : upcastEvent(e);
      }
      if (rows.length < batch) return;
      after = rows[rows.length - 1]!.position;
    }
  }

  /** Raw rows after a position, one page: the fast path for projection rebuilds. */
  readPage(afterPosition: number, limit: number): StoredEvent[] {
    return this.stmt.after.all(afterPosition, limit).map(rowToEvent);
  }

  readByType(eventType: string, opts: { fromPosition?: number; limit?: number } = {}): StoredEvent[] {
    return this.stmt.byType.all(eventType, opts.fromPosition ?? 0, opts.limit ?? 1000).map((r) => upcastEvent(rowToEvent(r)));
  }

  getEvent(eventId: string): StoredEvent | null {
    const row = this.stmt.byId.get(eventId);
    return row ? upcastEvent(rowToEvent(row)) : null;
  }

  /** The stream version that was current at an instant (0 if the stream did not exist yet). */
  versionAt(streamId: string, at: string): number {
    return this.stmt.versionAt.get(streamId, new Date(at).toISOString())?.v ?? 0;
  }

  /**
   * Replicated events of many streams (a pulled page) in one pass: multi-row INSERTs across
   * streams instead of an append per stream run, inside the caller's transaction. The caller
   * vouches for what `append` would check again: each event passed the event contract at its
   * recordedAt (sync's readVerdict), none is stored yet, and each continues its stream (the
   * UNIQUE (stream_id, stream_version) index refuses a version taken twice), and its envelope
   * is parseNewEvent's output (readVerdict gives it), so the stored text is what `append` writes.
   * Hooks see the events as after `append`. Returns them with their positions.
   */
  appendReplicated(input: readonly ReplicatedEvent[]): StoredEvent[] {
    if (!this.db.inTransaction) throw new Error('appendReplicated must run inside a transaction');
    const stored: StoredEvent[] = [];
    const params: unknown[] = [];
    let chunkStart = 0;
    let lastRaw = '';
    let lastIso = '';
    for (const e of input) {
      if (e.recordedAt !== lastRaw) {
        lastRaw = e.recordedAt;
        lastIso = new Date(e.recordedAt).toISOString();
      }
      const data = JSON.stringify(e.data);
      params.push(e.eventId, e.streamId, e.streamType, e.streamVersion, e.eventType, e.schemaVersion, data, JSON.stringify(e.metadata), lastIso);
      stored.push({ position: 0, eventId: e.eventId, streamId: e.streamId, streamType: e.streamType, streamVersion: e.streamVersion, eventType: e.eventType, schemaVersion: e.schemaVersion, data: e.data, metadata: e.metadata, recordedAt: lastIso });
      if (stored.length - chunkStart === INSERT_CHUNK) {
        this.writeRows(this.stmt.insertChunk, params, stored, chunkStart);
        chunkStart = stored.length;
        params.length = 0;
      }
    }
    if (chunkStart < stored.length) this.writeRows(this.inserts.of(stored.length - chunkStart), params, stored, chunkStart);
    if (stored.length === 0) return stored;
    if (this.held) this.held.push(...stored);
    else for (const hook of this.hooks) hook(stored);
    return stored;
  }
}

/** An event another store numbered (a server's pulled event), its envelope parsed, as `appendReplicated` takes it. */
export interface ReplicatedEvent extends NewEvent {
  streamId: string;
  streamType: string;
  streamVersion: number;
  recordedAt: string;
}
