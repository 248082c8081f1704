// Local event store: appends (single and batched) next to a raw better-sqlite3 INSERT loop of the
// same rows into the same schema at the same durability, and 10k-event order loads with and
// without a snapshot. Run alone: npx tsx bench/store-bench.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import type { NewEvent } from '../src/protocol/envelope.js';
import { openDatabase, openLocalStore, type Durability } from '../src/store/index.js';
import { printTable, round, timeIt } from './stats.js';

export interface StoreBenchOptions {
  singles?: number;
  batchedEvents?: number;
  batchSize?: number;
  durability?: Durability;
}

function payment(i: number): NewEvent {
  return {
    eventId: uuidv7(),
    eventType: 'PaymentReceived',
    schemaVersion: 1,
    data: { paymentId: `P-${i}`, amount: 1 },
    metadata: { userId: 'bench', deviceId: 'bench-device', source: 'bench', correlationId: 'c' },
  };
}

function reservation(i: number): NewEvent {
  return { eventId: uuidv7(), eventType: 'InventoryReserved', schemaVersion: 1, data: { reservationId: `R-${i}` }, metadata: {} };
}

function createdEvent(orderId: string): NewEvent {
  return {
    eventId: uuidv7(),
    eventType: 'OrderCreated',
    schemaVersion: 2,
    data: { orderId, customerId: 'C-1', items: [{ sku: 'SKU', quantity: 1, unitPrice: 1_000_000_000 }], total: 1_000_000_000, currency: 'USD' },
    metadata: {},
  };
}

/** The physical limit: the same INSERT of pre-serialised rows, same table, indexes, triggers and pragmas. */
function rawInsertLoop(file: string, durability: Durability, events: NewEvent[], batchSize: number): number {
  const db = openDatabase(file, { durability });
  const insert = db.prepare(
    `INSERT INTO events (event_id, stream_id, stream_type, stream_version, event_type, schema_version, data, metadata, recorded_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const rows = events.map((e, i) => [e.eventId, 'RAW', 'Order', i + 1, e.eventType, e.schemaVersion, JSON.stringify(e.data), JSON.stringify(e.metadata), new Date().toISOString()]);
  const writeBatch = db.transaction((batch: unknown[][]) => {
    for (const r of batch) insert.run(...r);
  });
  const { ms } = timeIt(() => {
    for (let i = 0; i < rows.length; i += batchSize) writeBatch.immediate(rows.slice(i, i + batchSize));
  });
  db.close();
  return (events.length / ms) * 1000;
}

function storeAppendLoop(file: string, durability: Durability, events: NewEvent[], batchSize: number): number {
  const store = openLocalStore(file, { durability });
  store.log.append('S', [createdEvent('S')], { expectedVersion: 'no_stream' });
  let version = 1;
  const { ms } = timeIt(() => {
    for (let i = 0; i < events.length; i += batchSize) {
      const batch = events.slice(i, i + batchSize);
      store.log.append('S', batch, { expectedVersion: version });
      version += batch.length;
    }
  });
  store.close();
  return (events.length / ms) * 1000;
}

export async function benchStore(opts: StoreBenchOptions = {}) {
  const singles = opts.singles ?? 2000;
  const batched = opts.batchedEvents ?? 200_000;
  const batchSize = opts.batchSize ?? 500;
  const durability = opts.durability ?? 'full';
  const dir = mkdtempSync(join(tmpdir(), 'store-bench-'));
  try {
    const singleEvents = Array.from({ length: singles }, (_, i) => payment(i));
    const rawSingle = rawInsertLoop(join(dir, 'raw-single.sqlite'), durability, singleEvents.map((e) => ({ ...e, eventId: uuidv7() })), 1);
    const storeSingle = storeAppendLoop(join(dir, 'store-single.sqlite'), durability, singleEvents, 1);

    const batchEvents = Array.from({ length: batched }, (_, i) => payment(i));
    const rawBatched = rawInsertLoop(join(dir, 'raw-batch.sqlite'), durability, batchEvents.map((e) => ({ ...e, eventId: uuidv7() })), batchSize);
    const storeBatched = storeAppendLoop(join(dir, 'store-batch.sqlite'), durability, batchEvents, batchSize);

    // Aggregate load: one order with N events, folded from scratch vs from a snapshot. The events
    // (re-reservations) keep the state the same size whatever N is, so what is measured is the
    // cost of the stream's length: with a snapshot it must not grow with N. (A stream of payments
    // grows the state itself, and any load then grows with it: see the Emmett section.)
    const loads: Record<string, number> = {};
    for (const n of [1_000, 10_000, 100_000]) {
      const store = openLocalStore(join(dir, `load-${n}.sqlite`), { durability: 'normal', snapshotEvery: 100 });
      store.log.append('L', [createdEvent('L')], { expectedVersion: 'no_stream' });
      for (let i = 1; i < n; i += 1000) store.log.append('L', Array.from({ length: Math.min(1000, n - i) }, (_, k) => reservation(i + k)), { expectedVersion: 'any' });
      const cold = timeIt(() => store.orders.load('L'));
      const warm = timeIt(() => store.orders.load('L'));
      loads[`load_${n}_no_snapshot_ms`] = round(cold.ms, 2);
      loads[`load_${n}_snapshot_ms`] = round(warm.ms, 3);
      loads[`load_${n}_snapshot_replayed`] = warm.value.replayed;
      store.close();
    }

    return {
      durability,
      single_appends_per_s: round(storeSingle),
      raw_single_inserts_per_s: round(rawSingle),
      single_ratio: round(storeSingle / rawSingle, 2),
      batch_size: batchSize,
      batched_appends_per_s: round(storeBatched),
      raw_batched_inserts_per_s: round(rawBatched),
      batched_ratio: round(storeBatched / rawBatched, 2),
      ...loads,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await benchStore({});
  printTable('Local event store (targets: single ≥ 0.5 of raw, batched ≥ 0.7 of raw, snapshot load flat in N)', [result]);
}
