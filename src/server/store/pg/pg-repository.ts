import { EventStore } from '../event-store.js';
import { PgDialect } from './dialect.js';
import { checkSchemaName, migrateAsOwner, migratePg, schemaPool } from './migrate.js';

export interface PgRepositoryOptions {
  /** The role the server works as (ideally the least-privileged app role). */
  connectionString: string;
  /**
   * The owner role: when given, migrations run as it (and the app role gets its grants) before
   * the server connects. Without it the server's own role migrates when anything is pending.
   */
  migrateConnectionString?: string | undefined;
  /** Schema for every table (created if missing); default public. */
  schema?: string | undefined;
  poolSize?: number | undefined;
}

/** The PostgreSQL backend: the store core over a pg Pool on one schema. */
export class PgRepository extends EventStore {
  declare readonly backend: 'pg';

  private constructor(
    dialect: PgDialect,
    readonly schema: string,
  ) {
    super(dialect);
  }

  static async open(opts: PgRepositoryOptions): Promise<PgRepository> {
    const schema = opts.schema ?? 'public';
    checkSchemaName(schema);
    if (opts.migrateConnectionString) {
      await migrateAsOwner({ ownerConnectionString: opts.migrateConnectionString, appConnectionString: opts.connectionString, schema });
    }
    const pool = schemaPool(opts.connectionString, schema, opts.poolSize ?? 10);
    try {
      await migratePg(pool, schema);
    } catch (err) {
      await pool.end();
      throw err;
    }
    const dialect = new PgDialect(pool, schema);
    try {
      await dialect.ensurePartitions();
    } catch (err) {
      await pool.end();
      throw err;
    }
    return new PgRepository(dialect, schema);
  }
}
