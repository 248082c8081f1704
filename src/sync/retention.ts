import type Database from 'better-sqlite3';
import { netPaidAmount, REDUCER_VERSION, type OrderState } from '../domain/state.js';
import type { LocalStore } from '../store/local-store.js';
import type { QuarantineRepository } from './quarantine.js';
import type { SyncRepository } from './sync-repository.js';

/** Closed for good: cancelled, or shipped and paid in full. */
export function isClosedOrder(s: OrderState): boolean {
  return s.status === 'CANCELLED' || (s.status === 'SHIPPED' && netPaidAmount(s) >= s.total);
}

export interface RetentionReport {
  evictedOrders: number;
  droppedEvents: number;
}

interface Candidate {
  stream_id: string;
  stream_type: string;
  version: number;
  last_at: string;
  last_position: number;
}

const statements = new WeakMap<Database.Database, { candidates: Database.Statement; head: Database.Statement; dropPositions: Database.Statement }>();

function prepared(db: Database.Database) {
  let s = statements.get(db);
  if (!s) {
    s = {
      // Streams whose newest local event is older than the cutoff (the server's recording time).
      candidates: db.prepare(
        `SELECT stream_id, stream_type, MAX(stream_version) AS version, MAX(recorded_at) AS last_at, MAX(position) AS last_position
         FROM events GROUP BY stream_id HAVING MAX(recorded_at) < ?`,
      ),
      head: db.prepare('SELECT MAX(position) FROM events').pluck(),
      dropPositions: db.prepare('DELETE FROM sync_event_positions WHERE event_id IN (SELECT value FROM json_each(?))'),
    };
    statements.set(db, s);
  }
  return s;
}

/**
 * Bounded device history: closed orders whose last event is older than the retention window
 * keep their final state (evicted_streams; the order list keeps its row) and drop their local
 * events and what the device kept about them. The server keeps every event: opening such an
 * order's history fetches it. Never evicted: an order with pending commands, with events kept
 * aside (quarantine), still open, or holding the log's newest position (the position is the
 * rowid: dropping the newest row would let the next append reuse it behind the projections'
 * checkpoints).
 */
export function evictClosedOrders(
  store: LocalStore,
  repo: SyncRepository,
  quarantine: QuarantineRepository,
  opts: { retentionDays: number; now?: Date },
): RetentionReport {
  const s = prepared(store.db);
  const cutoff = new Date((opts.now ?? new Date()).getTime() - opts.retentionDays * 86_400_000).toISOString();
  const report: RetentionReport = { evictedOrders: 0, droppedEvents: 0 };
  const at = new Date().toISOString();
  store.db
    .transaction(() => {
      const candidates = s.candidates.all(cutoff) as Candidate[];
      if (candidates.length === 0) return;
      const head = s.head.get() as number;
      const ids = candidates.map((c) => c.stream_id);
      const pending = new Set(repo.ordersWithPendingAmong(ids));
      const held = quarantine.streamsAmong(ids);
      for (const c of candidates) {
        if (pending.has(c.stream_id) || held.has(c.stream_id) || c.last_position === head) continue;
        const { state } = store.orders.load(c.stream_id);
        if (!isClosedOrder(state) || state.version !== c.version) continue;
        const dropped = store.orders.evicted.evict({
          streamId: c.stream_id,
          streamType: c.stream_type,
          version: c.version,
          reducerVersion: REDUCER_VERSION,
          state,
          at,
        });
        s.dropPositions.run(JSON.stringify(dropped));
        report.evictedOrders++;
        report.droppedEvents += dropped.length;
      }
    })
    .immediate();
  return report;
}
