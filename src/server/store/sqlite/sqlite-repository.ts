import { EventStore } from '../event-store.js';
import { SqliteDialect } from './dialect.js';

/** The embedded backend: the store core over one SQLite file (':memory:' for a throwaway one). */
export class SqliteRepository extends EventStore {
  declare readonly backend: 'sqlite';

  constructor(file: string) {
    super(new SqliteDialect(file));
  }
}
