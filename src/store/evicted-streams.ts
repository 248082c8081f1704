import type Database from 'better-sqlite3';

export interface EvictedStream {
  streamId: string;
  streamType: string;
  /** The stream version `state` was folded to; the local events up to it are gone. */
  version: number;
  reducerVersion: number;
  state: unknown;
  eventsDropped: number;
  evictedAt: string;
}

interface Row {
  stream_id: string;
  stream_type: string;
  version: number;
  reducer_version: number;
  state: string;
  events_dropped: number;
  evicted_at: string;
}

/**
 * Streams whose local events were dropped (bounded device history): the final state stays, the
 * server keeps the events. The events table's DELETE trigger admits exactly the rows recorded
 * here, so nothing else can remove an event.
 */
export class EvictedStreams {
  private readonly stmt;

  constructor(private readonly db: Database.Database) {
    this.stmt = {
      get: db.prepare<[string], Row>('SELECT * FROM evicted_streams WHERE stream_id = ?'),
      among: db.prepare<[string], { stream_id: string; version: number }>(
        'SELECT stream_id, version FROM evicted_streams WHERE stream_id IN (SELECT value FROM json_each(?))',
      ),
      record: db.prepare(
        `INSERT INTO evicted_streams (stream_id, stream_type, version, reducer_version, state, events_dropped, evicted_at)
         VALUES (@streamId, @streamType, @version, @reducerVersion, @state, @eventsDropped, @evictedAt)
         ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, reducer_version = excluded.reducer_version,
           state = excluded.state, events_dropped = evicted_streams.events_dropped + excluded.events_dropped, evicted_at = excluded.evicted_at`,
      ),
      eventIds: db.prepare<[string, number], string>('SELECT event_id FROM events WHERE stream_id = ? AND stream_version <= ?').pluck(),
      dropEvents: db.prepare('DELETE FROM events WHERE stream_id = ? AND stream_version <= ?'),
      dropSnapshots: db.prepare('DELETE FROM snapshots WHERE stream_id = ?'),
      count: db.prepare<[], number>('SELECT count(*) FROM evicted_streams').pluck(),
    };
  }

  get(streamId: string): EvictedStream | null {
    const r = this.stmt.get.get(streamId);
    if (!r) return null;
    return {
      streamId: r.stream_id,
      streamType: r.stream_type,
      version: r.version,
      reducerVersion: r.reducer_version,
      state: JSON.parse(r.state) as unknown,
      eventsDropped: r.events_dropped,
      evictedAt: r.evicted_at,
    };
  }

  /** The evicted version of each of these streams that has one. */
  versionsAmong(streamIds: readonly string[]): Map<string, number> {
    if (streamIds.length === 0) return new Map();
    return new Map(this.stmt.among.all(JSON.stringify(streamIds)).map((r) => [r.stream_id, r.version]));
  }

  count(): number {
    return this.stmt.count.get() ?? 0;
  }

  /**
   * Drop the stream's events up to `version` and keep `state` (folded to that version) in their
   * place, in one transaction. Returns the ids of the dropped events (the caller drops what it
   * keeps about them).
   */
  evict(e: { streamId: string; streamType: string; version: number; reducerVersion: number; state: unknown; at: string }): string[] {
    return this.db.transaction(() => {
      const ids = this.stmt.eventIds.all(e.streamId, e.version);
      this.stmt.record.run({
        streamId: e.streamId,
        streamType: e.streamType,
        version: e.version,
        reducerVersion: e.reducerVersion,
        state: JSON.stringify(e.state),
        eventsDropped: ids.length,
        evictedAt: e.at,
      });
      this.stmt.dropEvents.run(e.streamId, e.version);
      this.stmt.dropSnapshots.run(e.streamId);
      return ids;
    })();
  }
}
