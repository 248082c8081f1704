import pg from 'pg';
import { join } from 'node:path';
import { SchemaTooNewError } from '../../../protocol/errors.js';
import { MIGRATIONS_ROOT, loadMigrations } from '../../../db/migrations.js';
import { SQL } from './sql.js';

/** First key of our advisory locks (the second is derived from the schema name). */
export const LOCK_CLASS_MIGRATE = 0x4f4c0001;
export const LOCK_CLASS_REBUILD = 0x4f4c0002;
/** Appends hold it shared; a position pull takes it exclusive to wait out every append in flight. */
export const LOCK_CLASS_POSITION_PULL = 0x4f4c0003;
export const LOCK_CLASS_RELAY = 0x4f4c0004;
export const LOCK_CLASS_WORKER_STREAM = 0x4f4c0005;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** 32-bit FNV-1a of a string: the second key of this schema's advisory locks. */
export function lockKey(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

export function pgCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

export function checkSchemaName(schema: string): void {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(schema)}: use lower-case letters, digits and _`);
}

/** Thrown when the schema needs migrations the connecting role may not run. */
export class MigrationRequiredError extends Error {
  override name = 'MigrationRequiredError';
}

/** Versions recorded in schema_migrations, or null when the table does not exist yet. Read-only. */
async function appliedVersions(client: pg.PoolClient): Promise<number[] | null> {
  const { rows: exists } = await client.query<{ t: string | null }>(SQL.migrationsTable);
  if (!exists[0]?.t) return null;
  const { rows } = await client.query<{ version: number }>(SQL.appliedMigrations);
  return rows.map((r) => r.version);
}

/**
 * Apply migrations/server-pg/*.sql in order, each in its own transaction, recorded in
 * schema_migrations. An advisory lock makes two servers starting together take turns. A schema
 * that is already current is only read, so a role without DDL rights (the app role) can start.
 */
export async function migratePg(pool: pg.Pool, schema: string, dir = join(MIGRATIONS_ROOT, 'server-pg')): Promise<number> {
  const migrations = loadMigrations(dir);
  const client = await pool.connect();
  // A connection lost mid-migration rejects the running query; its 'error' event must not crash the process too.
  client.on('error', () => undefined);
  const lock = [LOCK_CLASS_MIGRATE, lockKey(schema)];
  try {
    const current = await appliedVersions(client);
    const newest = current?.length ? current[current.length - 1]! : 0;
    if (newest > migrations.length) throw new SchemaTooNewError(`PostgreSQL schema ${schema}`, newest, migrations.length);
    if (current && migrations.every((m) => current.includes(m.version))) return migrations.length;
    await client.query(SQL.migrateLock, lock);
    try {
      await client.query(SQL.createSchema(pg.escapeIdentifier(schema)));
      await client.query(SQL.createMigrationsTable);
      const { rows } = await client.query<{ version: number }>(SQL.appliedMigrations);
      const applied = new Set(rows.map((r) => r.version));
      for (const m of migrations) {
        if (applied.has(m.version)) continue;
        await client.query(SQL.begin);
        try {
          await client.query(m.sql);
          await client.query(SQL.recordMigration, [m.version, m.name]);
          await client.query(SQL.commit);
        } catch (err) {
          await client.query(SQL.rollback);
          throw err;
        }
      }
    } catch (err) {
      // insufficient_privilege: this role may use the schema but not change it.
      if (pgCode(err) === '42501') {
        throw new MigrationRequiredError(
          `PostgreSQL schema ${schema} needs migrations this database role may not run (${(err as Error).message}); ` +
            'run `npm run server -- migrate` with ORDERLOG_MIGRATE_DATABASE_URL set to the owner role',
        );
      }
      throw err;
    } finally {
      await client.query(SQL.migrateUnlock, lock).catch(() => undefined);
    }
  } finally {
    client.release();
  }
  return migrations.length;
}

/** Grant the app role exactly what the server needs on this schema (run as the owner). */
export async function grantAppRole(pool: pg.Pool, schema: string, role: string): Promise<void> {
  const sql = SQL.appRoleGrants.map((g) => g.replaceAll('{schema}', pg.escapeIdentifier(schema)).replaceAll('{role}', pg.escapeIdentifier(role)));
  const client = await pool.connect();
  try {
    await client.query(SQL.begin);
    for (const statement of sql) await client.query(statement);
    await client.query(SQL.commit);
  } catch (err) {
    await client.query(SQL.rollback).catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** The role a connection string logs in as (null when it names none: libpq's default applies). */
export function roleOf(connectionString: string): string | null {
  try {
    const user = new URL(connectionString).username;
    return user ? decodeURIComponent(user) : null;
  } catch {
    return null;
  }
}

export function schemaPool(connectionString: string, schema: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, options: `-c search_path=${schema}` });
  // An idle client losing its connection must not crash the server; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Migrate as the owner (`ownerConnectionString`) and, when the server logs in as another role
 * (`appConnectionString`), grant that role what it needs. Returns the number of migrations.
 */
export async function migrateAsOwner(opts: { ownerConnectionString: string; appConnectionString?: string | undefined; schema?: string | undefined }): Promise<{
  migrations: number;
  appRole: string | null;
}> {
  const schema = opts.schema ?? 'public';
  checkSchemaName(schema);
  const pool = schemaPool(opts.ownerConnectionString, schema, 1);
  try {
    const migrations = await migratePg(pool, schema);
    const owner = (await pool.query<{ u: string }>(SQL.currentUser)).rows[0]!.u;
    const app = opts.appConnectionString ? roleOf(opts.appConnectionString) : null;
    if (app && app !== owner) {
      await grantAppRole(pool, schema, app);
      return { migrations, appRole: app };
    }
    return { migrations, appRole: null };
  } finally {
    await pool.end();
  }
}
