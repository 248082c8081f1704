import type Database from 'better-sqlite3';
import type { OrderCommand, Rejection } from '../domain/commands.js';
import type { EventMetadata } from '../protocol/envelope.js';
import type { CausedBy } from './views.js';
import { PULL_CURSOR_START, parsePullCursor } from '../protocol/sync-api.js';
import { MultiRowStatements, valueRows } from '../db/multi-row.js';

export type CommandStatus = 'pending' | 'synced' | 'rejected' | 'dismissed' | 'retried';

export interface CommandRecord {
  seq: number;
  commandId: string;
  orderId: string;
  command: OrderCommand;
  status: CommandStatus;
  attempt: number;
  baseVersion: number;
  rejection: Rejection | null;
  causedBy: CausedBy[] | null;
  retryOf: string | null;
  userId: string;
  deviceId: string;
  createdAt: string;
  updatedAt: string;
  /** When the server refused it (null if it never was); dismiss and retry leave it alone. */
  rejectedAt: string | null;
}

export interface PendingEventRecord {
  eventId: string;
  commandId: string;
  attempt: number;
  orderId: string;
  seq: number;
  eventType: string;
  schemaVersion: number;
  data: Record<string, unknown>;
  metadata: EventMetadata;
  createdAt: string;
}

export interface StateFingerprint {
  confirmedVersion: number;
  confirmedHead: string | null;
  pending: number;
  lastPending: string | null;
}

interface CommandRow {
  seq: number;
  command_id: string;
  order_id: string;
  command: string;
  status: CommandStatus;
  attempt: number;
  base_version: number;
  rejection: string | null;
  caused_by: string | null;
  retry_of: string | null;
  user_id: string;
  device_id: string;
  created_at: string;
  updated_at: string;
  rejected_at: string | null;
}

interface PendingRow {
  event_id: string;
  command_id: string;
  attempt: number;
  order_id: string;
  seq: number;
  event_type: string;
  schema_version: number;
  data: string;
  metadata: string;
  created_at: string;
}

const toCommand = (r: CommandRow): CommandRecord => ({
  seq: r.seq,
  commandId: r.command_id,
  orderId: r.order_id,
  command: JSON.parse(r.command) as OrderCommand,
  status: r.status,
  attempt: r.attempt,
  baseVersion: r.base_version,
  rejection: r.rejection ? (JSON.parse(r.rejection) as Rejection) : null,
  causedBy: r.caused_by ? (JSON.parse(r.caused_by) as CausedBy[]) : null,
  retryOf: r.retry_of,
  userId: r.user_id,
  deviceId: r.device_id,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  rejectedAt: r.rejected_at,
});

const toPending = (r: PendingRow): PendingEventRecord => ({
  eventId: r.event_id,
  commandId: r.command_id,
  attempt: r.attempt,
  orderId: r.order_id,
  seq: r.seq,
  eventType: r.event_type,
  schemaVersion: r.schema_version,
  data: JSON.parse(r.data) as Record<string, unknown>,
  metadata: JSON.parse(r.metadata) as EventMetadata,
  createdAt: r.created_at,
});

/** Rows per upsert of server positions (4 values each). */
const POSITION_CHUNK = 250;
const upsertPositionsOf = (rows: number) =>
  `INSERT INTO sync_event_positions (event_id, global_position, hash, server_recorded_at) VALUES ${valueRows(rows, 4)}
   ON CONFLICT (event_id) DO UPDATE SET global_position = excluded.global_position,
     hash = COALESCE(excluded.hash, hash), server_recorded_at = COALESCE(excluded.server_recorded_at, server_recorded_at)`;

const PENDING_COLS = 'p.event_id, p.command_id, p.attempt, p.order_id, p.seq, p.event_type, p.schema_version, p.data, p.metadata, p.created_at';

/** All SQL of the sync tables (migrations/local/003_sync.sql), over the device's connection. */
/** A pull cursor (`v2.…`), or a position on a device that synced before cursors. */
export type PullCheckpoint = string | number;

export class SyncRepository {
  private readonly s;

  private readonly upsertPositions: MultiRowStatements;

  constructor(readonly db: Database.Database) {
    this.upsertPositions = new MultiRowStatements(db, upsertPositionsOf);
    this.s = {
      insertCommand: db.prepare(
        `INSERT INTO commands (command_id, order_id, command, status, attempt, base_version, rejection, caused_by, retry_of, user_id, device_id, created_at, updated_at)
         VALUES (@commandId, @orderId, @command, @status, @attempt, @baseVersion, @rejection, @causedBy, @retryOf, @userId, @deviceId, @createdAt, @updatedAt)`,
      ),
      insertPending: db.prepare(
        `INSERT INTO pending_events (event_id, command_id, attempt, order_id, seq, event_type, schema_version, data, metadata, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      command: db.prepare<[string], CommandRow>('SELECT * FROM commands WHERE command_id = ?'),
      pendingOfOrder: db.prepare<[string], CommandRow>("SELECT * FROM commands WHERE order_id = ? AND status = 'pending' ORDER BY seq"),
      commandsOfOrder: db.prepare<[string], CommandRow>('SELECT * FROM commands WHERE order_id = ? ORDER BY seq'),
      currentOfOrder: db.prepare<[string], PendingRow>(
        `SELECT ${PENDING_COLS} FROM commands c JOIN pending_events p ON p.command_id = c.command_id AND p.attempt = c.attempt
         WHERE c.order_id = ? AND c.status = 'pending' ORDER BY c.seq, p.seq`,
      ),
      eventsOfAttempt: db.prepare<[string, number], PendingRow>(
        `SELECT ${PENDING_COLS} FROM pending_events p WHERE p.command_id = ? AND p.attempt = ? ORDER BY p.seq`,
      ),
      allOfOrder: db.prepare<[string], PendingRow>(
        `SELECT ${PENDING_COLS} FROM pending_events p JOIN commands c ON c.command_id = p.command_id
         WHERE p.order_id = ? ORDER BY c.seq, p.attempt, p.seq`,
      ),
      pendingEvent: db.prepare<[string], PendingRow>(`SELECT ${PENDING_COLS} FROM pending_events p WHERE p.event_id = ?`),
      ordersWithPending: db.prepare<[], { order_id: string }>(
        "SELECT order_id FROM commands WHERE status = 'pending' GROUP BY order_id ORDER BY MIN(seq)",
      ),
      setStatus: db.prepare('UPDATE commands SET status = ?, updated_at = ? WHERE command_id = ?'),
      reject: db.prepare("UPDATE commands SET status = 'rejected', rejection = ?, caused_by = ?, updated_at = ?, rejected_at = ? WHERE command_id = ?"),
      newAttempt: db.prepare("UPDATE commands SET attempt = attempt + 1, base_version = ?, updated_at = ? WHERE command_id = ? AND status = 'pending'"),
      pendingCount: db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM commands WHERE status = 'pending'"),
      holdsNothingSent: db.prepare<[], number>(
        `SELECT NOT EXISTS (SELECT 1 FROM events) AND NOT EXISTS (SELECT 1 FROM commands WHERE status <> 'pending') AND NOT EXISTS (SELECT 1 FROM quarantined_events)
           AND NOT EXISTS (SELECT 1 FROM kept_streams) AND NOT EXISTS (SELECT 1 FROM evicted_streams)`,
      ),
      conflictCount: db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM commands WHERE status = 'rejected'"),
      conflicts: db.prepare<[], CommandRow>("SELECT * FROM commands WHERE status = 'rejected' ORDER BY seq"),
      conflictsAll: db.prepare<[], CommandRow>(
        "SELECT * FROM commands WHERE status IN ('rejected', 'dismissed') OR (status = 'retried' AND rejection IS NOT NULL) ORDER BY seq",
      ),
      statusCounts: db.prepare<[string], { status: CommandStatus; n: number }>(
        'SELECT status, COUNT(*) AS n FROM commands WHERE order_id = ? GROUP BY status',
      ),
      position: db.prepare<[string], { global_position: number; hash: string | null; server_recorded_at: string | null }>(
        'SELECT global_position, hash, server_recorded_at FROM sync_event_positions WHERE event_id = ?',
      ),
      // Probe commands_by_order per order id (+ keeps the planner off the status index: every pending command).
      currentOfOrders: db.prepare<[string], PendingRow>(
        `SELECT ${PENDING_COLS} FROM commands c JOIN pending_events p ON p.command_id = c.command_id AND p.attempt = c.attempt
         WHERE c.order_id IN (SELECT value FROM json_each(?)) AND +c.status = 'pending' ORDER BY c.seq, p.seq`,
      ),
      currentCount: db.prepare<[], { n: number }>(
        `SELECT COUNT(*) AS n FROM commands c JOIN pending_events p ON p.command_id = c.command_id AND p.attempt = c.attempt
         WHERE c.status = 'pending'`,
      ),
      streamVersions: db.prepare<[string, string], { stream_id: string; v: number }>(
        // Streams whose old events were dropped (bounded history) continue after their evicted version.
        `SELECT stream_id, MAX(v) AS v FROM (
           SELECT e.stream_id, MAX(e.stream_version) AS v FROM events e WHERE e.stream_id IN (SELECT value FROM json_each(?)) GROUP BY e.stream_id
           UNION ALL SELECT stream_id, version FROM evicted_streams WHERE stream_id IN (SELECT value FROM json_each(?)))
         GROUP BY stream_id`,
      ),
      confirmedAmong: db.prepare<[string], { event_id: string }>('SELECT event_id FROM events WHERE event_id IN (SELECT value FROM json_each(?))'),
      pendingAmong: db.prepare<[string], { event_id: string; command_id: string; attempt: number; status: CommandStatus; current: number }>(
        `SELECT p.event_id, p.command_id, p.attempt, c.status, c.attempt AS current FROM pending_events p
         JOIN commands c ON c.command_id = p.command_id WHERE p.event_id IN (SELECT value FROM json_each(?))`,
      ),
      // One probe each: a device that never produced an event (a first sync) needs no id lookups.
      anyProduced: db.prepare<[], { one: number }>('SELECT 1 AS one FROM pending_events LIMIT 1'),
      anyPending: db.prepare<[], { one: number }>("SELECT 1 AS one FROM commands WHERE status = 'pending' LIMIT 1"),
      ordersWithPendingAmong: db.prepare<[string], { order_id: string }>(
        "SELECT DISTINCT order_id FROM commands WHERE status = 'pending' AND order_id IN (SELECT value FROM json_each(?))",
      ),
      unconfirmedOfAttempt: db.prepare<[string, number], { n: number }>(
        `SELECT COUNT(*) AS n FROM pending_events p WHERE p.command_id = ? AND p.attempt = ?
         AND NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = p.event_id)`,
      ),
      // Only a still-pending command at the acknowledged attempt becomes synced. An index probe per
      // id (the unary + keeps the planner off the status index, which would scan every pending
      // command), then a set of "id:attempt" keys.
      markSynced: db.prepare<[{ at: string; ids: string; keys: string }]>(
        `UPDATE commands SET status = 'synced', updated_at = @at
         WHERE command_id IN (SELECT value FROM json_each(@ids)) AND +status = 'pending'
           AND command_id || ':' || attempt IN (SELECT value FROM json_each(@keys))`,
      ),
      fingerprint: db.prepare<[{ id: string }], { confirmed: number | null; last_confirmed: string | null; pending: number; last_pending: string | null }>(
        `SELECT (SELECT MAX(stream_version) FROM events WHERE stream_id = @id) AS confirmed,
           (SELECT event_id FROM events WHERE stream_id = @id ORDER BY stream_version DESC LIMIT 1) AS last_confirmed,
           (SELECT COUNT(*) FROM commands WHERE order_id = @id AND status = 'pending') AS pending,
           (SELECT p.event_id FROM commands c JOIN pending_events p ON p.command_id = c.command_id AND p.attempt = c.attempt
             WHERE c.order_id = @id AND c.status = 'pending' ORDER BY c.seq DESC, p.seq DESC LIMIT 1) AS last_pending`,
      ),
      getState: db.prepare<[string], { value: string }>('SELECT value FROM sync_state WHERE key = ?'),
      setState: db.prepare('INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  insertCommand(c: Omit<CommandRecord, 'seq' | 'rejectedAt'>): void {
    this.s.insertCommand.run({
      ...c,
      command: JSON.stringify(c.command),
      rejection: c.rejection ? JSON.stringify(c.rejection) : null,
      causedBy: c.causedBy ? JSON.stringify(c.causedBy) : null,
    });
  }

  insertPendingEvents(rows: readonly PendingEventRecord[]): void {
    for (const r of rows) {
      this.s.insertPending.run(
        r.eventId,
        r.commandId,
        r.attempt,
        r.orderId,
        r.seq,
        r.eventType,
        r.schemaVersion,
        JSON.stringify(r.data),
        JSON.stringify(r.metadata),
        r.createdAt,
      );
    }
  }

  command(commandId: string): CommandRecord | null {
    const row = this.s.command.get(commandId);
    return row ? toCommand(row) : null;
  }

  pendingCommandsOf(orderId: string): CommandRecord[] {
    return this.s.pendingOfOrder.all(orderId).map(toCommand);
  }

  commandsOf(orderId: string): CommandRecord[] {
    return this.s.commandsOfOrder.all(orderId).map(toCommand);
  }

  /** Events of the current attempts of an order's pending commands, in command then event order. */
  currentPendingEventsOf(orderId: string): PendingEventRecord[] {
    return this.s.currentOfOrder.all(orderId).map(toPending);
  }

  eventsOfAttempt(commandId: string, attempt: number): PendingEventRecord[] {
    return this.s.eventsOfAttempt.all(commandId, attempt).map(toPending);
  }

  /** Every attempt of every command of an order (superseded ones included): the audit view. */
  allPendingEventsOf(orderId: string): PendingEventRecord[] {
    return this.s.allOfOrder.all(orderId).map(toPending);
  }

  pendingEvent(eventId: string): PendingEventRecord | null {
    const row = this.s.pendingEvent.get(eventId);
    return row ? toPending(row) : null;
  }

  /** Orders with pending commands, the one with the oldest command first. */
  ordersWithPending(): string[] {
    return this.s.ordersWithPending.all().map((r) => r.order_id);
  }

  setStatus(commandId: string, status: CommandStatus, at: string): void {
    this.s.setStatus.run(status, at, commandId);
  }

  reject(commandId: string, rejection: Rejection, causedBy: CausedBy[], at: string): void {
    this.s.reject.run(JSON.stringify(rejection), JSON.stringify(causedBy), at, at, commandId);
  }

  bumpAttempt(commandId: string, baseVersion: number, at: string): void {
    this.s.newAttempt.run(baseVersion, at, commandId);
  }

  /**
   * No event, quarantined event, kept or evicted order, and no command but unsent ones: a device
   * that has never synced (its outbox, which the server has not seen, is all it may hold).
   */
  holdsNothingSent(): boolean {
    return this.s.holdsNothingSent.pluck().get() === 1;
  }

  pendingCount(): number {
    return this.s.pendingCount.get()?.n ?? 0;
  }

  conflictCount(): number {
    return this.s.conflictCount.get()?.n ?? 0;
  }

  /** Rejected commands; with `includeDismissed` also the dismissed ones and those retried as new. */
  conflicts(includeDismissed: boolean): CommandRecord[] {
    return (includeDismissed ? this.s.conflictsAll : this.s.conflicts).all().map(toCommand);
  }

  statusCounts(orderId: string): Partial<Record<CommandStatus, number>> {
    const out: Partial<Record<CommandStatus, number>> = {};
    for (const r of this.s.statusCounts.all(orderId)) out[r.status] = r.n;
    return out;
  }

  position(eventId: string): { globalPosition: number; hash: string | null; serverRecordedAt: string | null } | null {
    const r = this.s.position.get(eventId);
    return r ? { globalPosition: r.global_position, hash: r.hash, serverRecordedAt: r.server_recorded_at } : null;
  }

  /** Current attempts' events of the pending commands of several orders, in command then event order (one query). */
  currentPendingEventsOfOrders(orderIds: readonly string[]): PendingEventRecord[] {
    return this.s.currentOfOrders.all(JSON.stringify(orderIds)).map(toPending);
  }

  /** How many events the current attempts of all pending commands hold (what a push will send). */
  currentPendingEventCount(): number {
    return this.s.currentCount.get()?.n ?? 0;
  }

  /** Confirmed stream versions of several orders (0 for an order with no confirmed events). */
  streamVersions(orderIds: readonly string[]): Map<string, number> {
    const out = new Map<string, number>(orderIds.map((id) => [id, 0]));
    for (const r of this.s.streamVersions.all(JSON.stringify(orderIds), JSON.stringify(orderIds))) out.set(r.stream_id, r.v);
    return out;
  }

  /** Which of these event ids are already in the confirmed log. */
  confirmedAmong(eventIds: readonly string[]): Set<string> {
    if (eventIds.length === 0) return new Set();
    return new Set(this.s.confirmedAmong.all(JSON.stringify(eventIds)).map((r) => r.event_id));
  }

  /** Which of these event ids this device produced, with their command's status and current attempt. */
  pendingAmong(eventIds: readonly string[]): Map<string, { commandId: string; attempt: number; status: CommandStatus; currentAttempt: number }> {
    const out = new Map<string, { commandId: string; attempt: number; status: CommandStatus; currentAttempt: number }>();
    if (eventIds.length === 0 || this.s.anyProduced.get() === undefined) return out;
    for (const r of this.s.pendingAmong.all(JSON.stringify(eventIds))) {
      out.set(r.event_id, { commandId: r.command_id, attempt: r.attempt, status: r.status, currentAttempt: r.current });
    }
    return out;
  }

  /** Which of these orders have pending commands. */
  ordersWithPendingAmong(orderIds: readonly string[]): Set<string> {
    if (orderIds.length === 0 || this.s.anyPending.get() === undefined) return new Set();
    return new Set(this.s.ordersWithPendingAmong.all(JSON.stringify(orderIds)).map((r) => r.order_id));
  }

  /** True when every event of the attempt is in the confirmed log. */
  attemptConfirmed(commandId: string, attempt: number): boolean {
    return (this.s.unconfirmedOfAttempt.get(commandId, attempt)?.n ?? 0) === 0;
  }

  /**
   * Server coordinates of many events, POSITION_CHUNK rows a statement with bound values (a JSON
   * array unpacked by json_each cost half again as much, on every pulled event).
   */
  savePositions(rows: readonly { eventId: string; globalPosition: number; hash: string | null; serverRecordedAt: string | null }[]): void {
    for (let from = 0; from < rows.length; from += POSITION_CHUNK) {
      const chunk = rows.slice(from, from + POSITION_CHUNK);
      const params: unknown[] = [];
      for (const r of chunk) params.push(r.eventId, r.globalPosition, r.hash, r.serverRecordedAt);
      this.upsertPositions.of(chunk.length).run(params);
    }
  }

  /** Mark the given (command, attempt) pairs synced where still pending at that attempt; returns how many. */
  markSynced(pairs: readonly (readonly [string, number])[], at: string): number {
    if (pairs.length === 0) return 0;
    return this.s.markSynced.run({ at, ids: JSON.stringify(pairs.map((p) => p[0])), keys: JSON.stringify(pairs.map((p) => `${p[0]}:${p[1]}`)) }).changes;
  }

  /**
   * What an order's effective state depends on, cheap to read: the confirmed head, and the
   * pending commands with the newest current event (event ids are never reused, a rollback included).
   */
  stateFingerprint(orderId: string): StateFingerprint {
    const r = this.s.fingerprint.get({ id: orderId })!;
    return { confirmedVersion: r.confirmed ?? 0, confirmedHead: r.last_confirmed, pending: r.pending, lastPending: r.last_pending };
  }

  /**
   * Where the next pull starts: the server's cursor, or the position a device that synced
   * before cursors reached (kept until the server hands it a cursor); a new device starts at
   * the first cursor.
   */
  checkpoint(): PullCheckpoint {
    const v = this.s.getState.get('pull_checkpoint')?.value;
    if (v === undefined) return PULL_CURSOR_START;
    return parsePullCursor(v) ? v : Number(v);
  }

  setCheckpoint(checkpoint: PullCheckpoint): void {
    this.s.setState.run('pull_checkpoint', String(checkpoint));
  }
}
