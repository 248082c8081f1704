import type Database from 'better-sqlite3';
import { z } from 'zod';
import { dropTables } from './context.js';
import { completeShadows, fillShadows, prepareShadows, withRebuildCache, type RebuildOptions } from './rebuild.js';
import type { ProjectionRunner } from './runner.js';
import type { TableDef } from './types.js';

export const DRIFT_PREFIX = '__drift_';

/** What a drift check found: rows of the live view that differ from a fresh rebuild. */
export const DriftReport = z.object({
  projection: z.string(),
  checkedRows: z.number(),
  differences: z.array(z.object({ key: z.string(), kind: z.enum(['missing', 'extra', 'changed']), live: z.unknown(), rebuilt: z.unknown() })),
  position: z.number(),
});
export type DriftReport = z.infer<typeof DriftReport>;

export interface DriftOptions extends Omit<RebuildOptions, 'signal'> {
  /** Report at most this many differences per projection (default 100). */
  maxDifferences?: number;
}

type Difference = DriftReport['differences'][number];
type Row = Record<string, unknown>;

function columnsOf(db: Database.Database, table: string): string[] {
  return (db.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(table) as string[]).sort();
}

/** Compare one live table with its rebuilt copy by primary key; returns rows compared. */
function diffTable(db: Database.Database, live: string, rebuilt: TableDef, limit: number, out: Difference[]): number {
  const q = (s: string) => `"${s}"`;
  const keyOf = (r: Row) => `${live}:${rebuilt.key.map((k) => String(r[k])).join('|')}`;
  const on = rebuilt.key.map((k) => `l.${q(k)} = s.${q(k)}`).join(' AND ');
  const cols = columnsOf(db, rebuilt.name);
  const liveCols = columnsOf(db, live);
  const byKey = (table: string) => db.prepare(`SELECT * FROM ${q(table)} WHERE ${rebuilt.key.map((k) => `${q(k)} = ?`).join(' AND ')}`);
  const room = () => limit - out.length;

  if (room() > 0) {
    for (const r of db.prepare(`SELECT s.* FROM ${q(rebuilt.name)} s WHERE NOT EXISTS (SELECT 1 FROM ${q(live)} l WHERE ${on}) LIMIT ?`).all(room()) as Row[]) {
      out.push({ key: keyOf(r), kind: 'missing', live: null, rebuilt: r });
    }
  }
  if (room() > 0) {
    for (const r of db.prepare(`SELECT l.* FROM ${q(live)} l WHERE NOT EXISTS (SELECT 1 FROM ${q(rebuilt.name)} s WHERE ${on}) LIMIT ?`).all(room()) as Row[]) {
      out.push({ key: keyOf(r), kind: 'extra', live: r, rebuilt: null });
    }
  }
  if (room() > 0) {
    const shared = cols.filter((c) => liveCols.includes(c));
    const differs = [
      ...shared.map((c) => `l.${q(c)} IS NOT s.${q(c)}`),
      // A column only one side has is a difference of shape: every row differs.
      ...(shared.length === cols.length && shared.length === liveCols.length ? [] : ['1']),
    ].join(' OR ');
    const keys = db
      .prepare(`SELECT ${rebuilt.key.map((k) => `s.${q(k)}`).join(', ')} FROM ${q(rebuilt.name)} s JOIN ${q(live)} l ON ${on} WHERE ${differs} LIMIT ?`)
      .raw()
      .all(room()) as unknown[][];
    const getLive = byKey(live);
    const getRebuilt = byKey(rebuilt.name);
    for (const k of keys) {
      const l = getLive.get(...k) as Row;
      out.push({ key: keyOf(l), kind: 'changed', live: l, rebuilt: getRebuilt.get(...k) as Row });
    }
  }
  return db.prepare(`SELECT COUNT(*) FROM ${q(rebuilt.name)}`).pluck().get() as number;
}

/**
 * Prove the projections match the log: replay it into throw-away shadow tables, bring live
 * and shadow to the same position in one transaction, and diff them row by row. The live view
 * is not modified (beyond catching up), and the shadow is dropped afterwards.
 */
export async function driftCheck(runner: ProjectionRunner, names: readonly string[] = runner.names, opts: DriftOptions = {}): Promise<DriftReport[]> {
  return withRebuildCache(runner.db, () => checkDrift(runner, names, opts));
}

async function checkDrift(runner: ProjectionRunner, names: readonly string[], opts: DriftOptions): Promise<DriftReport[]> {
  const limit = opts.maxDifferences ?? 100;
  const shadows = prepareShadows(runner, names, DRIFT_PREFIX, false, opts.cacheSize ?? 10_000);
  try {
    const filled = await fillShadows(runner, shadows, opts, `drift:${names.join(',')}`);
    // The diff derives its aggregates here (completeShadows): no summaries are asked of the workers.
    await filled.workers?.terminate();
    return runner.db
      .transaction(() => {
        runner.catchUp({ names });
        completeShadows(runner, shadows);
        return shadows.map((s) => {
          const p = s.entry.projection;
          const differences: Difference[] = [];
          let checkedRows = 0;
          const live = p.tables('');
          s.tables.forEach((t, i) => {
            checkedRows += diffTable(runner.db, live[i]!.name, t, limit, differences);
          });
          const position = runner.registry.get(p.name)?.position ?? 0;
          if (position !== s.position) {
            differences.push({ key: `${p.name}:position`, kind: 'changed', live: position, rebuilt: s.position });
          }
          return { projection: p.name, checkedRows, differences, position: s.position };
        });
      })
      .immediate();
  } finally {
    runner.db.transaction(() => dropTables(runner.db, shadows.flatMap((s) => s.tables.map((t) => t.name))))();
  }
}
