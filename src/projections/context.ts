import type Database from 'better-sqlite3';
import { LruCache } from './lru.js';
import type { ApplyContext, PendingSource } from './types.js';

export interface ContextOptions {
  prefix?: string;
  cacheSize?: number;
  pending?: () => PendingSource | null;
  /** A rebuild's shadow (see `ApplyContext.bulk`). */
  bulk?: boolean;
}

/** The read and write side's one statement cache: each SQL text is prepared once per connection user. */
export function statementCache(db: Database.Database): (sql: string) => Database.Statement {
  const statements = new Map<string, Database.Statement>();
  return (sql) => {
    let s = statements.get(sql);
    if (!s) {
      s = db.prepare(sql);
      statements.set(sql, s);
    }
    return s;
  };
}

/** An apply context over one table prefix; statements are prepared once and reused. */
export function createContext(db: Database.Database, opts: ContextOptions = {}): ApplyContext {
  const pending = opts.pending ?? (() => null);
  return {
    db,
    prefix: opts.prefix ?? '',
    bulk: opts.bulk ?? false,
    cache: new LruCache<string, unknown>(opts.cacheSize ?? 10_000),
    get pending() {
      return pending();
    },
    stmt: statementCache(db),
  };
}

/** Create a projection's tables (and, for live tables, their indexes) if missing. */
export function createTables(db: Database.Database, tables: { create: string; indexes: string[] }[], withIndexes: boolean): void {
  for (const t of tables) {
    db.exec(t.create.replace(/^CREATE TABLE /i, 'CREATE TABLE IF NOT EXISTS '));
    if (withIndexes) for (const i of t.indexes) db.exec(i.replace(/^CREATE (INDEX|TRIGGER|VIRTUAL TABLE) /i, 'CREATE $1 IF NOT EXISTS '));
  }
}

export function dropTables(db: Database.Database, names: readonly string[]): void {
  for (const n of names) db.exec(`DROP TABLE IF EXISTS "${n}"`);
}

/**
 * Shadow pages are disposable until the swap, so they commit with synchronous=NORMAL (no fsync
 * per page; WAL stays consistent, a power loss only loses the last pages, which the resumable
 * checkpoint replays). Only this connection's own page transaction runs meanwhile (JS is single
 * threaded), so appends keep their durability; the swap commits with the normal setting.
 */
export function relaxedDurability<T>(db: Database.Database, fn: () => T): T {
  if (db.inTransaction) return fn();
  const previous = db.pragma('synchronous', { simple: true }) as number;
  if (previous <= 1) return fn();
  db.pragma('synchronous = NORMAL');
  try {
    return fn();
  } finally {
    db.pragma(`synchronous = ${previous}`);
  }
}
