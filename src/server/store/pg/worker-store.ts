import { join } from 'node:path';
import type pg from 'pg';
import { ORDER_STREAM_TYPE } from '../../../domain/events.js';
import { MIGRATIONS_ROOT } from '../../../db/migrations.js';
import type { BusEvent } from '../../bus/messages.js';
import type { ApplyOutcome, WorkerTarget } from '../../bus/worker.js';
import type { OrderQueries } from '../../routes-api.js';
import { foldOrderView } from '../append-logic.js';
import { EventStore } from '../event-store.js';
import { parseState } from '../rows.js';
import { PgDialect, projectionParams } from './dialect.js';
import { LOCK_CLASS_WORKER_STREAM, checkSchemaName, lockKey, migratePg, schemaPool } from './migrate.js';
import { SQL, WORKER_SQL } from './sql.js';

export const WORKER_MIGRATIONS = join(MIGRATIONS_ROOT, 'worker-pg');


/**
 * The worker's read model in its own PostgreSQL schema: the server's order_projections table
 * (so the server can read it through its own dashboard queries), folded by the server's own
 * fold (`foldOrderView`), one event per transaction, idempotent by event id, in stream order.
 */
export class PgWorkerStore implements WorkerTarget {
  private constructor(
    private readonly pool: pg.Pool,
    readonly schema: string,
  ) {}

  static async open(connectionString: string, schema: string, poolSize = 4): Promise<PgWorkerStore> {
    checkSchemaName(schema);
    const pool = schemaPool(connectionString, schema, poolSize);
    try {
      await migratePg(pool, schema, WORKER_MIGRATIONS);
    } catch (err) {
      await pool.end();
      throw err;
    }
    return new PgWorkerStore(pool, schema);
  }

  async apply(e: BusEvent, workerName: string): Promise<ApplyOutcome> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      // Two workers holding messages of one stream take turns here.
      await client.query(WORKER_SQL.streamLock, [LOCK_CLASS_WORKER_STREAM, lockKey(`${this.schema}\u0000${e.tenantId}\u0000${e.streamId}`)]);
      const marked = await client.query(WORKER_SQL.markApplied, [e.tenantId, e.eventId, e.streamId, e.streamVersion, e.globalPosition, workerName]);
      if (marked.rowCount === 0) {
        await client.query('ROLLBACK');
        return { status: 'duplicate' };
      }
      const progress = await client.query<{ version: number }>(WORKER_SQL.streamProgress, [e.tenantId, e.streamId]);
      const lastApplied = progress.rows[0]?.version ?? 0;
      if (e.streamVersion <= lastApplied) {
        // A different id at an applied version cannot come from the store; do not fold it twice.
        await client.query('ROLLBACK');
        return { status: 'duplicate' };
      }
      if (e.streamVersion !== lastApplied + 1) {
        await client.query('ROLLBACK');
        return { status: 'waiting', lastApplied };
      }
      if (e.streamType === ORDER_STREAM_TYPE) {
        const prev = await client.query<{ state: unknown }>(SQL.projectionState, [e.tenantId, e.streamId]);
        const v = foldOrderView(e.streamId, parseState(prev.rows[0]?.state as string | undefined), [
          { eventId: e.eventId, streamVersion: e.streamVersion, globalPosition: e.globalPosition, eventType: e.eventType, schemaVersion: e.schemaVersion, data: e.data, recordedAt: e.recordedAt },
        ]);
        await client.query(SQL.upsertProjection, projectionParams(e.tenantId, v));
      }
      await client.query(WORKER_SQL.setStreamProgress, [e.tenantId, e.streamId, e.streamVersion]);
      await client.query('COMMIT');
      return { status: 'applied' };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * The seed's query endpoints over a worker-built read model: the server's own dashboard reads
 * (the same SQL) on the worker's schema. Call close() with the server.
 */
export function workerQueries(connectionString: string, schema: string): OrderQueries & { close(): Promise<void> } {
  checkSchemaName(schema);
  const store = new EventStore(new PgDialect(schemaPool(connectionString, schema, 4), schema));
  return {
    getOrder: (tenantId, orderId) => store.getOrder(tenantId, orderId),
    listOrders: (tenantId, q) => store.listOrders(tenantId, q),
    countOrders: (tenantId) => store.countOrders(tenantId),
    close: () => store.close(),
  };
}
