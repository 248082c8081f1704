import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import fc from 'fast-check';
import { foldOrder, type OrderState } from '../../src/domain/state.js';
import type { NewEventInput } from '../../src/protocol/envelope.js';
import { toFoldable } from '../../src/store/order-repository.js';
import { openLocalStore, type LocalStore } from '../../src/store/index.js';
import { defaultProjections, ProjectionRunner } from '../../src/projections/index.js';
import type Database from 'better-sqlite3';

export function tempDirs() {
  const dirs: string[] = [];
  return {
    file(name = 'store.db'): string {
      const d = mkdtempSync(join(tmpdir(), 'projections-'));
      dirs.push(d);
      return join(d, name);
    },
    cleanup() {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

const ev = (eventType: string, data: Record<string, unknown>, schemaVersion = 1): NewEventInput => ({
  eventId: uuidv7(),
  eventType,
  schemaVersion,
  data,
  metadata: { source: 'test' },
});

export const orderCreated = (orderId: string, customerId: string, total: number, currency = 'USD', quantity = 1) =>
  ev('OrderCreated', { orderId, customerId, items: [{ sku: 'SKU-1', quantity, unitPrice: total }], total, currency }, 2);
export const paymentReceived = (paymentId: string, amount: number) => ev('PaymentReceived', { paymentId, amount });
export const inventoryReserved = (reservationId: string) => ev('InventoryReserved', { reservationId });
export const orderShipped = (shipmentId: string) => ev('OrderShipped', { shipmentId, shippedAt: '2026-01-02T00:00:00.000Z' });
export const orderCancelled = () => ev('OrderCancelled', { reason: 'customer asked', cancelledAt: '2026-01-02T00:00:00.000Z' });
export const paymentRefunded = (paymentId: string, amount: number) => ev('PaymentRefunded', { paymentId, amount, reason: 'refund' });

/** One step of a random workload: which order, what happens, on which day. */
export interface Step {
  order: number;
  customer: number;
  kind: 'create' | 'pay' | 'reserve' | 'ship' | 'cancel' | 'refund';
  amount: number;
  day: number;
  currency: 'USD' | 'EUR';
}

export const stepArb: fc.Arbitrary<Step> = fc.record({
  order: fc.integer({ min: 0, max: 24 }),
  customer: fc.integer({ min: 0, max: 5 }),
  kind: fc.constantFrom('create', 'create', 'pay', 'pay', 'reserve', 'ship', 'cancel', 'refund'),
  amount: fc.integer({ min: 1, max: 50_000 }),
  day: fc.integer({ min: 1, max: 4 }),
  currency: fc.constantFrom('USD', 'EUR'),
});

export const orderIdOf = (n: number) => `ORD-${String(n).padStart(3, '0')}${n % 3 === 0 ? 'x' : ''}`;
export const customerIdOf = (n: number) => `CUST-${n}`;

/**
 * Append a random workload through the log (the projections do not judge business rules:
 * the log may hold any sequence, e.g. a payment after a cancellation).
 */
/** Append the steps (from index `from` on: the earlier ones are taken as already appended, by another connection say). */
export function appendSteps(store: LocalStore, steps: readonly Step[], from = 0): void {
  const created = new Set<number>();
  let i = 0;
  for (const s of steps) {
    const orderId = orderIdOf(s.order);
    let e: NewEventInput;
    if (!created.has(s.order)) {
      created.add(s.order);
      e = orderCreated(orderId, customerIdOf(s.customer), s.amount, s.currency, 1 + (s.amount % 3));
    } else {
      switch (s.kind) {
        case 'create':
        case 'pay':
          e = paymentReceived(`P-${i}`, s.amount);
          break;
        case 'reserve':
          e = inventoryReserved(`R-${i}`);
          break;
        case 'ship':
          e = orderShipped(`S-${i}`);
          break;
        case 'cancel':
          e = orderCancelled();
          break;
        case 'refund':
          e = paymentRefunded(`P-${i - 1}`, 1 + (s.amount % 100));
          break;
      }
    }
    // Distinct, increasing recording times spread over a few days.
    const at = new Date(Date.UTC(2026, 0, s.day, 0, 0, 0, 0) + i * 1000).toISOString();
    if (i >= from) store.log.append(orderId, [e], { expectedVersion: 'any', recordedAt: at });
    i++;
  }
}

/** The brute-force view: fold every stream of the log from scratch. */
export function bruteForceStates(store: LocalStore): Map<string, { state: OrderState; lastEventId: string }> {
  const byOrder = new Map<string, { events: ReturnType<typeof toFoldable>[]; lastEventId: string }>();
  for (const e of store.log.readAll()) {
    let o = byOrder.get(e.streamId);
    if (!o) {
      o = { events: [], lastEventId: '' };
      byOrder.set(e.streamId, o);
    }
    o.events.push(toFoldable(e));
    o.lastEventId = e.eventId;
  }
  const out = new Map<string, { state: OrderState; lastEventId: string }>();
  for (const [id, o] of byOrder) out.set(id, { state: foldOrder(o.events), lastEventId: o.lastEventId });
  return out;
}

export interface ExpectedRow {
  orderId: string;
  customerId: string;
  customerName: string;
  status: string;
  paymentStatus: string;
  fulfilmentStatus: string;
  total: number;
  currency: string;
  itemCount: number;
  paidAmount: number;
  createdAt: string;
  updatedAt: string;
  version: number;
  lastEventId: string;
  sync: 'synced';
}

export function bruteForceRows(store: LocalStore): ExpectedRow[] {
  return [...bruteForceStates(store)]
    .filter(([, o]) => o.state.exists)
    .map(([orderId, { state, lastEventId }]) => ({
      orderId,
      customerId: state.customerId!,
      customerName: state.customerName!,
      status: state.status!,
      paymentStatus: state.paymentStatus!,
      fulfilmentStatus: state.fulfilmentStatus!,
      total: state.total,
      currency: state.currency!,
      itemCount: state.items.reduce((n, i) => n + i.quantity, 0),
      paidAmount: state.paidAmount - state.refundedAmount,
      createdAt: state.createdAt!,
      updatedAt: state.updatedAt!,
      version: state.version,
      lastEventId,
      sync: 'synced' as const,
    }));
}

/** Every row of a table, in key order: for comparing two copies of a view. */
export function dump(db: Database.Database, table: string, orderBy: string): unknown[] {
  return db.prepare(`SELECT * FROM "${table}" ORDER BY ${orderBy}`).all();
}

export const PROJECTION_TABLES: [string, string][] = [
  ['order_list', 'order_id'],
  ['order_daily_totals', 'day, status, currency'],
  ['order_search_grams', 'gram, status, payment_status, fulfilment_status'],
  ['customer_orders', 'order_id'],
  ['customer_totals', 'customer_id'],
];

export function dumpAll(db: Database.Database): Record<string, unknown[]> {
  return Object.fromEntries(PROJECTION_TABLES.map(([t, k]) => [t, dump(db, t, k)]));
}

export function open(file: string): LocalStore {
  return openLocalStore(file);
}

/**
 * A store in `file` with `steps` applied inline by a runner over the default projections: the
 * view a rebuild must reproduce. `oneTransaction`: append them all in one (same view, no commit per event).
 */
export async function incremental(file: string, steps: readonly Step[], opts: { oneTransaction?: boolean } = {}) {
  const store = open(file);
  const runner = new ProjectionRunner(store.log, defaultProjections());
  await runner.open();
  if (opts.oneTransaction) store.db.transaction(() => appendSteps(store, steps))();
  else appendSteps(store, steps);
  return { store, runner, file };
}
