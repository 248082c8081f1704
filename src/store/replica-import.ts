import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';

/**
 * Taking in a replica: another device's database file (a server-built bootstrap, issue 17),
 * copied table by table into this one. The copy is `INSERT INTO main.t SELECT * FROM replica.t`
 * into an empty table of the same definition, which SQLite runs as its transfer optimisation:
 * records and index entries move as they are, without decoding a row or re-sorting an index.
 */

/** A replica this database cannot take in (another schema, not blank, a damaged file). Nothing was changed. */
export class ReplicaImportError extends Error {
  override name = 'ReplicaImportError';
}

const REPLICA = 'replica';

interface TableRow {
  name: string;
  type: string;
}

/**
 * The tables of a schema a replica carries: ordinary and virtual tables, without SQLite's own,
 * the shadow tables behind virtual ones (they follow their virtual table) and `exclude`
 * (what belongs to one device only).
 */
export function replicaTables(db: Database.Database, exclude: ReadonlySet<string>, schema = 'main'): { name: string; virtual: boolean }[] {
  const rows = db.prepare(`PRAGMA "${schema}".table_list`).all() as TableRow[];
  return rows
    .filter((t) => (t.type === 'table' || t.type === 'virtual') && !t.name.startsWith('sqlite_') && !exclude.has(t.name))
    .map((t) => ({ name: t.name, virtual: t.type === 'virtual' }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Every schema object's definition, hashed: two databases with the same fingerprint hold their
 * tables the same way, so one's records can be copied into the other as they are.
 */
export function schemaFingerprint(db: Database.Database, schema = 'main'): string {
  const rows = db
    .prepare(`SELECT type, name, tbl_name AS tbl, sql FROM "${schema}".sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name`)
    .all();
  return createHash('sha256').update(JSON.stringify(rows)).digest('hex');
}

export interface ImportOptions {
  /** Tables that stay this device's own (not copied, not cleared). */
  exclude: ReadonlySet<string>;
  /**
   * Runs first inside the import's transaction: throws (a ReplicaImportError) when this
   * database may not be replaced, e.g. it is no longer blank.
   */
  before?: () => void;
  /** Runs last inside the import's transaction (the caller's own bookkeeping, e.g. a checkpoint). */
  after?: () => void;
}

/**
 * Replace this database's replicated tables with a replica file's, in one transaction: either
 * all of them are taken in or nothing changes. The file must have this database's schema
 * fingerprint. Its pages are not checked here: `exportReplica` ran SQLite's integrity check on
 * the file, and the caller holds it to that file's SHA-256 (checking 1M events' pages again cost
 * a tenth of a first sync). Triggers on the copied tables are set aside for the
 * copy (the rows are copies of rows they already saw) and restored in the same transaction.
 * Virtual tables (the search index) are filled through their module from the replica's content.
 */
export function importReplica(db: Database.Database, file: string, opts: ImportOptions): { rows: Record<string, number> } {
  if (db.inTransaction) throw new Error('importReplica: ATTACH cannot run inside a transaction');
  try {
    db.prepare(`ATTACH DATABASE ? AS ${REPLICA}`).run(file);
  } catch (err) {
    throw new ReplicaImportError(`the replica file cannot be opened: ${(err as Error).message}`, { cause: err });
  }
  try {
    let fingerprint: string;
    try {
      fingerprint = schemaFingerprint(db, REPLICA);
    } catch (err) {
      throw new ReplicaImportError(`the replica file is not a readable database: ${(err as Error).message}`, { cause: err });
    }
    if (fingerprint !== schemaFingerprint(db)) throw new ReplicaImportError('the replica was built with another schema than this device has');
    const tables = replicaTables(db, opts.exclude);
    const rows: Record<string, number> = {};
    // A WAL database would take the copy twice: into the WAL, then into the file at the
    // checkpoint. With no other connection open it takes it in rollback-journal mode: the new
    // pages are written once (a journal only needs what they overwrite). 1M events: 8.0 → 3.3 s.
    const switched = db.pragma('main.journal_mode', { simple: true }) === 'wal' && leaveWal(db);
    try {
      db.transaction(() => {
        opts.before?.();
        const names = tables.map((t) => t.name);
        const triggers = db
          .prepare(`SELECT name, sql FROM main.sqlite_schema WHERE type = 'trigger' AND tbl_name IN (SELECT value FROM json_each(?))`)
          .all(JSON.stringify(names)) as { name: string; sql: string }[];
        for (const t of triggers) db.exec(`DROP TRIGGER main.${quote(t.name)}`);
        for (const t of tables) {
          const name = quote(t.name);
          db.exec(`DELETE FROM main.${name}`);
          if (t.virtual) {
            const columns = (db.prepare(`PRAGMA main.table_info(${name})`).all() as { name: string }[]).map((c) => quote(c.name)).join(', ');
            rows[t.name] = db.prepare(`INSERT INTO main.${name} (rowid, ${columns}) SELECT rowid, ${columns} FROM ${REPLICA}.${name}`).run().changes;
          } else {
            // SELECT * into an empty table of the same definition: the transfer optimisation.
            rows[t.name] = db.prepare(`INSERT INTO main.${name} SELECT * FROM ${REPLICA}.${name}`).run().changes;
          }
        }
        for (const t of triggers) db.exec(t.sql);
        opts.after?.();
      }).immediate();
    } finally {
      if (switched) db.pragma('main.journal_mode = WAL');
    }
    return { rows };
  } finally {
    db.exec(`DETACH DATABASE ${REPLICA}`);
  }
}

/** Switch to a rollback journal if no other connection has the file open (it would hold the WAL): true when switched. */
function leaveWal(db: Database.Database): boolean {
  const timeout = db.pragma('busy_timeout', { simple: true }) as number;
  db.pragma('busy_timeout = 0');
  try {
    return db.pragma('main.journal_mode = DELETE', { simple: true }) === 'delete';
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_BUSY') return false;
    throw err;
  } finally {
    db.pragma(`busy_timeout = ${timeout}`);
  }
}

function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Write this database as a replica file: a consistent copy (VACUUM INTO reads one snapshot, so
 * appends may go on meanwhile) whose `exclude` tables are emptied, as a self-contained file
 * (no WAL beside it), that passes SQLite's integrity check.
 */
export function exportReplica(db: Database.Database, file: string, opts: { exclude: ReadonlySet<string>; open: (file: string) => Database.Database }): void {
  db.prepare('VACUUM INTO ?').run(file);
  const copy = opts.open(file);
  try {
    copy.pragma('journal_mode = DELETE');
    // What the emptied tables held is overwritten, so the file carries nothing of this device's own.
    copy.pragma('secure_delete = ON');
    copy.transaction(() => {
      for (const t of replicaTables(copy, new Set())) if (opts.exclude.has(t.name)) copy.exec(`DELETE FROM ${quote(t.name)}`);
    })();
    const check = copy.prepare('PRAGMA integrity_check(1)').pluck().all() as string[];
    if (check.length !== 1 || check[0] !== 'ok') throw new Error(`the replica written to ${file} fails SQLite's integrity check: ${check.join('; ').slice(0, 300)}`);
  } finally {
    copy.close();
  }
}
