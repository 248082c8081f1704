import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import type pg from 'pg';
import { openRepository, type EventRepository } from '../../src/server/index.js';
import { SQL } from '../../src/server/store/pg/sql.js';
import { PG_URL, pgClient, randomSchema } from './helpers.js';

/** A plan node of EXPLAIN (ANALYZE, FORMAT JSON), as far as these checks read it. */
interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

function* nodes(n: PlanNode): Generator<PlanNode> {
  yield n;
  for (const c of n.Plans ?? []) yield* nodes(c);
}

/**
 * The duplicate lookup every append makes must probe the stored event ids, not read the
 * tenant's rows, however little PostgreSQL knows of the tables. A fresh partition has no
 * statistics (autovacuum analyzes it a minute later at best, never when it is off), and a
 * prepared statement's plan is cached after five executions, while the partition was nearly
 * empty: `event_id = ANY(...)`, or a cached plan of any form, then read the tenant's whole index
 * range for each append, and appends slowed down as the log grew (500 events: 30 ms at first,
 * 140 ms at 30k events).
 */
describe('PostgreSQL: an append reads no more rows than it has events, with no statistics', () => {
  const schema = randomSchema();
  const NAME = 'ol_test_lock_head_read';
  let repo: EventRepository;
  let c: pg.Client;
  /** One append's first round trip and its lookup, on the test's own connection as the store runs them (rolled back). */
  const lookup = async (ids: string[], explain: boolean) => {
    await c.query(SQL.appendBegin([1, 2], ['3'], [4, 5]));
    try {
      const values = ['tenant-a', 's-next', 'Note', 'genesis', ids, false];
      if (!explain) return (await c.query<{ dups: { event_id: string }[] | null }>({ name: NAME, text: SQL.lockHeadRead, values })).rows[0]!;
      const literal = `'tenant-a', 's-next', 'Note', 'genesis', '{${ids.join(',')}}'::uuid[], false`;
      return (await c.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE ${NAME}(${literal})`)).rows[0]!;
    } finally {
      await c.query('ROLLBACK');
    }
  };
  beforeAll(async () => {
    repo = await openRepository({ backend: 'pg', connectionString: PG_URL, schema });
    c = await pgClient(schema);
    // Prepared and run while the tables are empty: a plan cached now is one for empty tables.
    for (let i = 0; i < 8; i++) await lookup([uuidv7()], false);
    // 12k events of one tenant, never analyzed.
    for (let s = 0; s < 24; s++) {
      const out = await repo.append({
        tenantId: 'tenant-a',
        streamId: `s${s}`,
        streamType: 'Note',
        expectedVersion: 'any',
        events: Array.from({ length: 500 }, (_, i) => ({ eventId: uuidv7(), eventType: 'NoteAdded', schemaVersion: 1, data: { i }, metadata: {} })),
      });
      expect(out.status).toBe('ok');
    }
  }, 120_000);
  afterAll(async () => {
    await c?.end();
    await repo?.close();
    const admin = await pgClient();
    try {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    } finally {
      await admin.end();
    }
  });

  it('probes each event id once in the events and in the key table, and finds the stored ones', async () => {
    const stored = (await c.query<{ id: string }>('SELECT event_id::text AS id FROM events ORDER BY global_position DESC LIMIT 2')).rows.map((r) => r.id);
    // 200 ids of the next append: two already stored (a retried push), the rest new.
    const ids = [...stored, ...Array.from({ length: 198 }, () => uuidv7())];
    const read = (await lookup(ids, false)) as { dups: { event_id: string }[] | null };
    expect(read.dups!.map((d) => d.event_id).sort()).toEqual([...stored].sort());
    const plan = (await lookup(ids, true)) as { 'QUERY PLAN': { Plan: PlanNode }[] };
    const scans = [...nodes(plan['QUERY PLAN'][0]!.Plan)].filter((n) => /^events_|^event_keys/.test(n['Relation Name'] ?? n['Index Name'] ?? ''));
    expect(scans.length).toBeGreaterThan(0);
    for (const n of scans) {
      const where = `${n['Node Type']} on ${n['Relation Name'] ?? n['Index Name']}`;
      // Each probe finds at most its own id: the rows read are the ids asked for, not the tenant's rows.
      expect(n['Actual Rows'] * n['Actual Loops'], where).toBeLessThanOrEqual(ids.length);
      expect(n['Rows Removed by Filter'] ?? 0, where).toBe(0);
      expect(n['Rows Removed by Index Recheck'] ?? 0, where).toBe(0);
    }
  });
});
