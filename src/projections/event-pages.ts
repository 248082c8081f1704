import type Database from 'better-sqlite3';
import type { EventMetadata, StoredEvent } from '../protocol/envelope.js';

/**
 * The rebuild's page reader: the same keyset page as `EventLog.readPage`, but in raw (array)
 * mode and with the metadata read (and parsed) only if a projection asks for it. Projections
 * rarely do: parsing it for every event was a third of the read cost of a 1M-event replay,
 * and even fetching the unused text cost a string per event.
 * Read-only; writes go through `EventLog` only.
 */
class PagedEvent implements StoredEvent {
  private parsedMetadata: EventMetadata | undefined;
  constructor(
    readonly position: number,
    readonly eventId: string,
    readonly streamId: string,
    readonly streamType: string,
    readonly streamVersion: number,
    readonly eventType: string,
    readonly schemaVersion: number,
    readonly data: Record<string, unknown>,
    readonly recordedAt: string,
    private readonly reader: EventPageReader,
  ) {}

  get metadata(): EventMetadata {
    this.parsedMetadata ??= JSON.parse(this.reader.metadataAt(this.position)) as EventMetadata;
    return this.parsedMetadata;
  }
}

type RawRow = [number, string, string, string, number, string, number, string, string];

const COLUMNS = 'position, event_id, stream_id, stream_type, stream_version, event_type, schema_version, data, recorded_at';

/**
 * The partition of a stream among `?` (the first parameter) rebuild workers, in SQL so a worker
 * reads only its own rows: from the last two characters of the id (ids end in varied characters,
 * and only the balance depends on it, not the correctness).
 */
const STREAM_PARTITION_SQL = '((unicode(substr(stream_id, -1)) + 7 * coalesce(unicode(substr(stream_id, -2, 1)), 0)) % ?)';

export class EventPageReader {
  private readonly stmt: Database.Statement<[number, number], RawRow>;
  private readonly metadataStmt: Database.Statement<[number], string>;
  private partitionStmt: Database.Statement<[number, number, number, number], RawRow> | undefined;

  constructor(private readonly db: Database.Database) {
    this.stmt = db.prepare<[number, number], RawRow>(`SELECT ${COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?`).raw(true);
    this.metadataStmt = db.prepare<[number], string>('SELECT metadata FROM events WHERE position = ?').pluck();
  }

  /** An event's metadata JSON (stored events never change, so reading it later is the same). */
  metadataAt(position: number): string {
    return this.metadataStmt.get(position)!;
  }

  /**
   * The events with positions in (`after`, `upTo`] of the streams in partition `index` of
   * `count` (`STREAM_PARTITION_SQL`): the page one rebuild worker folds. Positions, not a row
   * count, bound it, so every worker's page `k` covers the same stretch of the log.
   */
  partitionPage(after: number, upTo: number, index: number, count: number): StoredEvent[] {
    this.partitionStmt ??= this.db
      .prepare<[number, number, number, number], RawRow>(
        `SELECT ${COLUMNS} FROM events WHERE position > ? AND position <= ? AND ${STREAM_PARTITION_SQL} = ? ORDER BY position`,
      )
      .raw(true);
    return this.toEvents(this.partitionStmt.all(after, upTo, count, index));
  }

  private toEvents(rows: RawRow[]): StoredEvent[] {
    const out = new Array<StoredEvent>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      out[i] = new PagedEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], JSON.parse(r[7]) as Record<string, unknown>, r[8], this);
    }
    return out;
  }

  /** Events after `afterPosition`, in log order, as stored (not upcast). */
  page(afterPosition: number, limit: number): StoredEvent[] {
    return this.toEvents(this.stmt.all(afterPosition, limit));
  }
}
