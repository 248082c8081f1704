import { afterAll, describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { defaultProjections, OrderQueries, ProjectionRunner } from '../../src/projections/index.js';
import { open, orderCreated, tempDirs } from './support.js';

const tmp = tempDirs();
afterAll(() => tmp.cleanup());

const statusChanged = (orderId: string, newStatus: string) => ({
  eventId: uuidv7(),
  eventType: 'OrderStatusChanged',
  schemaVersion: 1,
  data: { orderId, previousStatus: null, newStatus },
  metadata: { source: 'seed-004' },
});

describe("seed 004's OrderStatusChanged on a device", () => {
  it('the order list and daily totals follow the declared status', async () => {
    const store = open(tmp.file());
    const runner = new ProjectionRunner(store.log, defaultProjections());
    await runner.open();
    store.log.append('S-1', [orderCreated('S-1', 'K-1', 2500)], { expectedVersion: 'no_stream' });
    store.log.append('S-1', [statusChanged('S-1', 'SHIPPED')], { expectedVersion: 1 });
    store.log.append('S-2', [orderCreated('S-2', 'K-1', 700)], { expectedVersion: 'no_stream' });
    const q = new OrderQueries(store.db, { runner });
    const list = await q.listOrders({ minPosition: store.log.headPosition() });
    expect(Object.fromEntries(list.rows.map((r) => [r.orderId, r.status]))).toEqual({ 'S-1': 'SHIPPED', 'S-2': 'CREATED' });
    expect(list.counts).toMatchObject({ SHIPPED: 1, CREATED: 1 });
    const totals = q.dailyTotals();
    expect(totals.filter((t) => t.status === 'SHIPPED').map((t) => t.totalAmount)).toEqual([2500]);
    expect(store.orders.load('S-1').state).toMatchObject({ status: 'SHIPPED', version: 2 });
    await runner.close();
    store.close();
  });
});
