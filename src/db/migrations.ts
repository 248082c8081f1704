import type Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SchemaTooNewError } from '../protocol/errors.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS_ROOT = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** Read `NNN_name.sql` files of a folder, in version order; numbering must be 1..n without gaps. */
export function loadMigrations(dir: string): Migration[] {
  const files = readdirSync(dir).filter((f) => /^\d+_.+\.sql$/.test(f));
  const migrations = files
    .map((f) => ({ version: Number.parseInt(f, 10), name: f, sql: readFileSync(join(dir, f), 'utf8') }))
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations in ${dir} must be numbered 1..n without gaps; found ${m.name} at place ${i + 1}`);
  });
  return migrations;
}

/**
 * Apply pending migrations, each in its own transaction, recording progress in PRAGMA
 * user_version (written in the same transaction, so a crash leaves either before or after).
 * A file from a newer build is refused before anything is written.
 */
export function migrateSqlite(db: Database.Database, dir: string, label = db.name): number {
  const migrations = loadMigrations(dir);
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > migrations.length) throw new SchemaTooNewError(label, current, migrations.length);
  for (const m of migrations.slice(current)) {
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return migrations.length;
}
