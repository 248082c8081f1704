import type Database from 'better-sqlite3';

export interface Snapshot<S> {
  streamId: string;
  streamVersion: number;
  reducerVersion: number;
  state: S;
}

/**
 * Folded state cached at a stream version. Keyed by reducer version: a snapshot written by
 * other reducers is never read (so it is ignored and a fresh one is written on the next load).
 */
export class SnapshotStore<S> {
  private readonly stmt;

  constructor(
    db: Database.Database,
    readonly reducerVersion: number,
  ) {
    this.stmt = {
      latest: db.prepare<[string, number, number], { stream_version: number; state: string }>(
        `SELECT stream_version, state FROM snapshots
         WHERE stream_id = ? AND reducer_version = ? AND stream_version <= ?
         ORDER BY stream_version DESC LIMIT 1`,
      ),
      save: db.prepare(
        `INSERT OR REPLACE INTO snapshots (stream_id, reducer_version, stream_version, state, created_at) VALUES (?, ?, ?, ?, ?)`,
      ),
      pruneOtherVersions: db.prepare('DELETE FROM snapshots WHERE stream_id = ? AND reducer_version <> ?'),
      count: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM snapshots WHERE stream_id = ?'),
    };
  }

  /** The newest usable snapshot at or below `maxVersion`. */
  latest(streamId: string, maxVersion = Number.MAX_SAFE_INTEGER): Snapshot<S> | null {
    const row = this.stmt.latest.get(streamId, this.reducerVersion, maxVersion);
    if (!row) return null;
    return { streamId, streamVersion: row.stream_version, reducerVersion: this.reducerVersion, state: JSON.parse(row.state) as S };
  }

  save(streamId: string, streamVersion: number, state: S): void {
    this.stmt.save.run(streamId, this.reducerVersion, streamVersion, JSON.stringify(state), new Date().toISOString());
    // Snapshots of other reducer versions can never be used again.
    this.stmt.pruneOtherVersions.run(streamId, this.reducerVersion);
  }

  count(streamId: string): number {
    return this.stmt.count.get(streamId)?.n ?? 0;
  }
}
