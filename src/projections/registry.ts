import type Database from 'better-sqlite3';
import type { StoredEvent } from '../protocol/envelope.js';

/** The SQL of the projection infrastructure tables (migrations/local/002_projections.sql). */

export interface CheckpointRow {
  name: string;
  version: number;
  position: number;
  state: 'live' | 'failed';
  error: string | null;
  tables: string;
  updated_at: string;
}

export interface RebuildRow {
  projection: string;
  version: number;
  prefix: string;
  position: number;
  total: number;
  started_at: string;
  updated_at: string;
}

export interface DeadLetter {
  id: number;
  projection: string;
  position: number;
  eventId: string;
  eventType: string;
  error: string;
  stack: string | null;
  attempts: number;
  firstFailedAt: string;
  lastFailedAt: string;
  resolvedAt: string | null;
}

interface DeadLetterRow {
  id: number;
  projection: string;
  position: number;
  event_id: string;
  event_type: string;
  error: string;
  stack: string | null;
  attempts: number;
  first_failed_at: string;
  last_failed_at: string;
  resolved_at: string | null;
}

const now = () => new Date().toISOString();

export function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

export class ProjectionRegistry {
  private readonly stmt;

  constructor(readonly db: Database.Database) {
    this.stmt = {
      get: db.prepare<[string], CheckpointRow>('SELECT * FROM projection_checkpoints WHERE name = ?'),
      all: db.prepare<[], CheckpointRow>('SELECT * FROM projection_checkpoints ORDER BY name'),
      put: db.prepare(
        `INSERT INTO projection_checkpoints (name, version, position, state, error, tables, updated_at)
         VALUES (@name, @version, @position, 'live', NULL, @tables, @now)
         ON CONFLICT (name) DO UPDATE SET version = excluded.version, position = excluded.position, state = 'live',
           error = NULL, tables = excluded.tables, updated_at = excluded.updated_at`,
      ),
      position: db.prepare('UPDATE projection_checkpoints SET position = ?, updated_at = ? WHERE name = ?'),
      fail: db.prepare("UPDATE projection_checkpoints SET state = 'failed', error = ?, updated_at = ? WHERE name = ?"),
      unfail: db.prepare("UPDATE projection_checkpoints SET state = 'live', error = NULL, updated_at = ? WHERE name = ?"),
      deadLetter: db.prepare(
        `INSERT INTO projection_dead_letters (projection, position, event_id, event_type, error, stack, first_failed_at, last_failed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (projection, position) DO UPDATE SET error = excluded.error, stack = excluded.stack,
           attempts = attempts + 1, last_failed_at = excluded.last_failed_at, resolved_at = NULL`,
      ),
      resolve: db.prepare(
        'UPDATE projection_dead_letters SET resolved_at = ? WHERE projection = ? AND position <= ? AND resolved_at IS NULL',
      ),
      deadLetters: db.prepare<[{ name: string | null; all: number }], DeadLetterRow>(
        `SELECT * FROM projection_dead_letters WHERE (@name IS NULL OR projection = @name) AND (@all = 1 OR resolved_at IS NULL) ORDER BY id`,
      ),
      rebuild: db.prepare<[string], RebuildRow>('SELECT * FROM projection_rebuilds WHERE projection = ?'),
      startRebuild: db.prepare(
        `INSERT OR REPLACE INTO projection_rebuilds (projection, version, prefix, position, total, started_at, updated_at)
         VALUES (?, ?, ?, 0, ?, ?, ?)`,
      ),
      advanceRebuild: db.prepare('UPDATE projection_rebuilds SET position = ?, total = max(total, ?), updated_at = ? WHERE projection = ?'),
      endRebuild: db.prepare('DELETE FROM projection_rebuilds WHERE projection = ?'),
    };
  }

  get(name: string): CheckpointRow | undefined {
    return this.stmt.get.get(name);
  }

  all(): CheckpointRow[] {
    return this.stmt.all.all();
  }

  /** (Re)register a projection's live tables as built by `version` up to `position`. */
  put(name: string, version: number, position: number, tables: readonly string[]): void {
    this.stmt.put.run({ name, version, position, tables: JSON.stringify(tables), now: now() });
  }

  setPosition(name: string, position: number): void {
    this.stmt.position.run(position, now(), name);
  }

  /** Stop the projection before `event` and keep the event and error for inspection. */
  fail(name: string, event: StoredEvent, err: unknown): void {
    const at = now();
    const message = errorText(err);
    this.stmt.deadLetter.run(
      name,
      event.position,
      event.eventId,
      event.eventType,
      message,
      err instanceof Error ? (err.stack ?? null) : null,
      at,
      at,
    );
    this.stmt.fail.run(`stopped before position ${event.position} (${event.eventType} ${event.eventId}): ${message}`, at, name);
  }

  unfail(name: string): void {
    this.stmt.unfail.run(now(), name);
  }

  resolveDeadLetters(name: string, upToPosition: number): void {
    this.stmt.resolve.run(now(), name, upToPosition);
  }

  deadLetters(name?: string, includeResolved = false): DeadLetter[] {
    return this.stmt.deadLetters.all({ name: name ?? null, all: includeResolved ? 1 : 0 }).map((r) => ({
      id: r.id,
      projection: r.projection,
      position: r.position,
      eventId: r.event_id,
      eventType: r.event_type,
      error: r.error,
      stack: r.stack,
      attempts: r.attempts,
      firstFailedAt: r.first_failed_at,
      lastFailedAt: r.last_failed_at,
      resolvedAt: r.resolved_at,
    }));
  }

  rebuild(name: string): RebuildRow | undefined {
    return this.stmt.rebuild.get(name);
  }

  startRebuild(name: string, version: number, prefix: string, total: number): void {
    const at = now();
    this.stmt.startRebuild.run(name, version, prefix, total, at, at);
  }

  advanceRebuild(name: string, position: number, total: number): void {
    this.stmt.advanceRebuild.run(position, total, now(), name);
  }

  endRebuild(name: string): void {
    this.stmt.endRebuild.run(name);
  }
}
