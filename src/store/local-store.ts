import type Database from 'better-sqlite3';
import { openDatabase, type OpenOptions } from './database.js';
import { EventLog } from './event-log.js';
import { OrderRepository } from './order-repository.js';

export interface LocalStoreOptions extends OpenOptions {
  /** Write a snapshot every N events of a stream (default 100). */
  snapshotEvery?: number;
}

export interface LocalStore {
  readonly file: string;
  readonly db: Database.Database;
  readonly log: EventLog;
  readonly orders: OrderRepository;
  close(): void;
}

/** One device's store: one SQLite file (WAL), migrated on open. */
export function openLocalStore(file: string, opts: LocalStoreOptions = {}): LocalStore {
  const db = openDatabase(file, opts);
  const log = new EventLog(db);
  const orders = new OrderRepository(log, { snapshotEvery: opts.snapshotEvery });
  return {
    file,
    db,
    log,
    orders,
    close: () => {
      if (db.open) db.close();
    },
  };
}
