import type Database from 'better-sqlite3';
import { MAX_SCOPE_STREAMS, SyncScope, type ScopedPullQuery } from '../protocol/sync-api.js';

/** A scope's filter as a scoped pull sends it. */
export type ScopeFilter = ScopedPullQuery['scope'];

/**
 * A pull still owed to a widened scope: the events of `filter` in (after, upTo], upTo being the
 * main cursor when the scope widened (the main cursor, with the new scope, covers what follows).
 */
export interface ScopeBackfill {
  filter: ScopeFilter;
  after: number;
  upTo: number;
}

const SCOPE_KEY = 'sync_scope';
const BACKFILL_KEY = 'scope_backfills';
const RETENTION_KEY = 'retention_days';

export const FULL_SCOPE: SyncScope = { mode: 'all' };

/**
 * What a scope change adds, to be backfilled: 'everything' (back to the full replica), a filter
 * of the newly included customers / longer recency, or null (narrower or equal: nothing to fetch;
 * narrowing drops nothing held, and touched orders stay in scope through their commands).
 */
export function scopeWidening(from: SyncScope, to: SyncScope): 'everything' | ScopeFilter | null {
  if (to.mode === 'all') return from.mode === 'all' ? null : 'everything';
  if (from.mode === 'all') return null;
  const had = new Set(from.customers);
  const customers = to.customers.filter((c) => !had.has(c));
  const longer = to.recentDays !== null && (from.recentDays === null || to.recentDays > from.recentDays);
  if (customers.length === 0 && !longer) return null;
  return { customers, recentDays: longer ? to.recentDays : null, streams: [] };
}

/** The device's scope, the orders it keeps outside it, and the backfills owed (caller's transactions). */
export class ScopeRepository {
  private readonly s;

  constructor(db: Database.Database) {
    this.s = {
      getSetting: db.prepare<[string], string>('SELECT value FROM device_settings WHERE key = ?').pluck(),
      setSetting: db.prepare(
        'INSERT INTO device_settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
      ),
      getState: db.prepare<[string], string>('SELECT value FROM sync_state WHERE key = ?').pluck(),
      setState: db.prepare('INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      keep: db.prepare('INSERT INTO kept_streams (stream_id, kept_at) VALUES (?, ?) ON CONFLICT (stream_id) DO NOTHING'),
      isKept: db.prepare<[string], number>('SELECT 1 FROM kept_streams WHERE stream_id = ?').pluck(),
      // Touched first (newest command first), then opened (newest first): the cap keeps the most recent.
      followed: db
        .prepare<[number], string>(
          `SELECT stream_id FROM (
             SELECT order_id AS stream_id, max(created_at) AS at FROM commands GROUP BY order_id
             UNION ALL SELECT stream_id, kept_at FROM kept_streams)
           GROUP BY stream_id ORDER BY max(at) DESC LIMIT ?`,
        )
        .pluck(),
    };
  }

  scope(): SyncScope {
    const raw = this.s.getSetting.get(SCOPE_KEY);
    if (raw === undefined) return FULL_SCOPE;
    const parsed = SyncScope.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : FULL_SCOPE;
  }

  saveScope(scope: SyncScope, at: string): void {
    this.s.setSetting.run(SCOPE_KEY, JSON.stringify(scope), at);
  }

  /** Days after which a closed order's local events are dropped (null: keep everything). */
  retentionDays(): number | null {
    const raw = this.s.getSetting.get(RETENTION_KEY);
    return raw === undefined || raw === 'null' ? null : Number(raw);
  }

  saveRetentionDays(days: number | null, at: string): void {
    this.s.setSetting.run(RETENTION_KEY, String(days), at);
  }

  keep(streamId: string, at: string): void {
    this.s.keep.run(streamId, at);
  }

  isKept(streamId: string): boolean {
    return this.s.isKept.get(streamId) !== undefined;
  }

  /** Orders followed whatever the scope: touched here (commands) or opened on demand. */
  followedStreams(limit = MAX_SCOPE_STREAMS): string[] {
    return this.s.followed.all(limit);
  }

  /** The filter the main cursor pulls with (null: the full replica). */
  filter(): ScopeFilter | null {
    const scope = this.scope();
    if (scope.mode === 'all') return null;
    return { customers: scope.customers, recentDays: scope.recentDays, streams: this.followedStreams() };
  }

  backfills(): ScopeBackfill[] {
    const raw = this.s.getState.get(BACKFILL_KEY);
    return raw === undefined ? [] : (JSON.parse(raw) as ScopeBackfill[]);
  }

  saveBackfills(list: readonly ScopeBackfill[]): void {
    this.s.setState.run(BACKFILL_KEY, JSON.stringify(list));
  }
}
