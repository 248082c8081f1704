import type Database from 'better-sqlite3';

/**
 * Statements of one shape that differ only in how many rows of values they carry (a multi-row
 * INSERT's `VALUES (…), (…)`), prepared once per row count in use. Bounded: row counts repeat
 * (full chunks, a batch's tail), but a caller cycling through every count must not grow this.
 */
export class MultiRowStatements {
  private readonly prepared = new Map<number, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    /** The SQL text for `rows` rows. */
    private readonly sql: (rows: number) => string,
    private readonly kept = 16,
  ) {}

  of(rows: number): Database.Statement {
    let statement = this.prepared.get(rows);
    if (!statement) {
      if (this.prepared.size >= this.kept) this.prepared.delete(this.prepared.keys().next().value!);
      statement = this.db.prepare(this.sql(rows));
      this.prepared.set(rows, statement);
    }
    return statement;
  }
}

/** `(?, ?, …)` `rows` times, comma-separated: the VALUES list of a multi-row INSERT. */
export function valueRows(rows: number, columns: number): string {
  const row = `(${Array<string>(columns).fill('?').join(', ')})`;
  return Array<string>(rows).fill(row).join(', ');
}
