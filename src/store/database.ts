import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MIGRATIONS_ROOT, migrateSqlite } from '../db/migrations.js';

/**
 * `full` (default): WAL with synchronous=FULL — every acknowledged commit is fsynced to the WAL
 * and survives a process crash and a power loss.
 * `normal`: WAL with synchronous=NORMAL — the database stays consistent, but the last commits
 * before a power loss (not a process crash) may be rolled back. Faster for bulk imports.
 */
export type Durability = 'full' | 'normal';

export interface OpenOptions {
  durability?: Durability;
  /** How long a writer waits for another connection's write lock before failing, in ms. */
  busyTimeoutMs?: number;
  readonly?: boolean;
}

export function openDatabase(file: string, opts: OpenOptions = {}): Database.Database {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file, { readonly: opts.readonly ?? false });
  try {
    db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 10_000}`);
    if (!opts.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${opts.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
      db.pragma('foreign_keys = ON');
      migrateSqlite(db, join(MIGRATIONS_ROOT, 'local'), file);
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
