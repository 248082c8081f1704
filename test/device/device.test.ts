import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { canonicalJson } from '../../src/protocol/canonical-json.js';
import { chainHash } from '../../src/protocol/event-hash.js';
import { openDevice, type Device } from '../../src/app/device.js';
import { createHandlers } from '../../src/app/handlers.js';
import { startServer } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('device-');
const token = 'device-token-0123456789';
const tokens = [{ token, tenant: 'acme', user: 'field-1', roles: ['device' as const] }];
const opened: Device[] = [];
afterAll(async () => {
  for (const d of opened) await d.close();
  tmp.cleanup();
});

async function device(name: string, serverUrl = '') {
  const d = await openDevice({ dataDir: tmp.file(name), serverUrl, token, userId: `${name}-user`, autoSync: false });
  opened.push(d);
  return { d, h: createHandlers(d) };
}

const ALL = { status: 'ALL' as const, payment: 'ALL' as const, fulfilment: 'ALL' as const, sort: 'updatedAt' as const, direction: 'desc' as const, limit: 50, offset: 0 };
const create = (orderId: string, unitPrice = 2500) => ({
  command: { type: 'CreateOrder' as const, orderId, customerId: 'C-42', items: [{ sku: 'SKU-1', quantity: 2, unitPrice }], currency: 'EUR' },
});

describe('a device through its handlers', () => {
  it('works offline: the order shows at once as pending, with its timeline and time travel', async () => {
    const { d, h } = await device('offline');
    const r = await h.execute(create('O-1'));
    expect(r).toMatchObject({ ok: true, orderId: 'O-1', version: 1 });
    await h.execute({ command: { type: 'RecordPayment', orderId: 'O-1', paymentId: 'P-1', amount: 5000 } });

    const list = await h.listOrders(ALL);
    expect(list.rows).toEqual([expect.objectContaining({ orderId: 'O-1', status: 'PAID', total: 5000, sync: 'pending' })]);
    expect(list.counts).toMatchObject({ ALL: 1, PAID: 1 });

    const detail = await h.getOrder({ orderId: 'O-1' });
    expect(detail?.state).toMatchObject({ status: 'PAID', version: 2, currency: 'EUR' });
    expect(detail?.timeline.map((t) => [t.eventType, t.sync, t.streamVersion])).toEqual([
      ['OrderCreated', 'pending', 1],
      ['PaymentReceived', 'pending', 2],
    ]);
    expect((await h.getOrderAsOf({ orderId: 'O-1', version: 1 })).status).toBe('CREATED');

    const rejected = await h.execute({ command: { type: 'RecordPayment', orderId: 'O-1', paymentId: 'P-2', amount: 1 } });
    expect(rejected).toMatchObject({ ok: false, rejection: { code: 'OVERPAYMENT' } });
    expect((await h.syncStatus({})).state).toBe('disabled');
    expect(d.deviceId).toMatch(/^device-/);
  });

  it('syncs to a real server, and a conflicting change lands in the conflict inbox with its cause', async () => {
    const server = await startServer({ backend: 'sqlite', file: tmp.file('server.sqlite'), tokens, port: 0 });
    try {
      const a = await device('a', server.url);
      const b = await device('b', server.url);
      await a.h.execute(create('O-2'));
      expect((await a.h.syncNow({})).pendingCount).toBe(0);
      expect((await a.h.getOrder({ orderId: 'O-2' }))?.sync).toBe('synced');

      await b.h.syncNow({});
      expect((await b.h.getOrder({ orderId: 'O-2' }))?.state.status).toBe('CREATED');
      // Both devices act on version 1 offline: A cancels, B takes a payment.
      await a.h.execute({ command: { type: 'CancelOrder', orderId: 'O-2', reason: 'customer called', cancelledAt: '2026-11-25T10:00:00Z' } });
      await b.h.execute({ command: { type: 'RecordPayment', orderId: 'O-2', paymentId: 'P-9', amount: 5000 } });
      await a.h.syncNow({});
      const status = await b.h.syncNow({});
      expect(status.conflictCount).toBe(1);

      const [conflict] = await b.h.listConflicts({ includeDismissed: false });
      expect(conflict).toMatchObject({ orderId: 'O-2', status: 'rejected', rejection: { code: 'ORDER_CANCELLED' } });
      expect(conflict!.causedBy).toEqual([expect.objectContaining({ eventType: 'OrderCancelled', streamVersion: 2 })]);
      expect((await b.h.getOrder({ orderId: 'O-2' }))?.state.status).toBe('CANCELLED');
      expect((await b.h.listOrders(ALL)).rows[0]).toMatchObject({ orderId: 'O-2', status: 'CANCELLED', sync: 'rejected' });

      await b.h.dismissConflict({ commandId: conflict!.commandId });
      expect(await b.h.listConflicts({ includeDismissed: false })).toEqual([]);
      expect((await b.h.listOrders(ALL)).rows[0]!.sync).toBe('synced');

      const audit = await a.h.verifyAudit({ orderId: 'O-2' });
      expect(audit).toMatchObject({ verified: true, firstBrokenEventId: null });
      expect((await a.h.getOrder({ orderId: 'O-2' }))?.audit?.verified).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('marks an order whose newer event it cannot read as needing attention, lists the event, and keeps syncing the rest', async () => {
    const file = tmp.file('poison-server.sqlite');
    const server = await startServer({ backend: 'sqlite', file, tokens, port: 0 });
    try {
      const a = await device('q-a', server.url);
      const b = await device('q-b', server.url);
      await a.h.execute(create('O-Q'));
      expect((await a.h.syncNow({})).pendingCount).toBe(0);
      // A later version of the app wrote OrderShipped v9 on that order (straight into the database here).
      const db = new Database(file);
      try {
        const head = db.prepare('SELECT version, last_hash FROM streams WHERE aggregate_id = ?').get('O-Q') as { version: number; last_hash: string };
        const e = { eventId: uuidv7(), streamId: 'O-Q', streamVersion: head.version + 1, eventType: 'OrderShipped', schemaVersion: 9, recordedAt: new Date().toISOString() };
        const data = { shipmentId: 'SH-1', shippedAt: e.recordedAt, carrier: 'new field' };
        const metadata = { tenantId: 'acme' };
        const hash = chainHash(head.last_hash, e, canonicalJson(data), canonicalJson(metadata));
        db.prepare(
          'INSERT INTO events (event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        ).run(e.eventId, 'acme', 'O-Q', 'Order', e.eventType, e.schemaVersion, canonicalJson(data), canonicalJson(metadata), e.streamVersion, e.recordedAt, hash);
        db.prepare('UPDATE streams SET version = ?, last_hash = ? WHERE aggregate_id = ?').run(e.streamVersion, hash, 'O-Q');
      } finally {
        db.close();
      }
      await b.h.execute(create('O-after'));
      const status = await b.h.syncNow({});
      expect(status).toMatchObject({ state: 'idle', pendingCount: 0, quarantinedCount: 1, lastError: null });
      expect(await b.h.listQuarantine({})).toEqual([
        expect.objectContaining({ streamId: 'O-Q', streamVersion: 2, eventType: 'OrderShipped', kind: 'newer-version', reason: expect.stringMatching(/newer version of the app.*update the app/) }),
      ]);
      const rows = (await b.h.listOrders(ALL)).rows;
      expect(rows.find((r) => r.orderId === 'O-Q')).toMatchObject({ status: 'CREATED', sync: 'attention' });
      expect(rows.find((r) => r.orderId === 'O-after')).toMatchObject({ sync: 'synced' });
      expect((await b.h.getOrder({ orderId: 'O-Q' }))?.sync).toBe('attention');
    } finally {
      await server.close();
    }
  });

  it('reopened with pending commands (its stored overlay kept as is), lists orders created after the restart, and syncs them both ways', async () => {
    const server = await startServer({ backend: 'sqlite', file: tmp.file('restart-server.sqlite'), tokens, port: 0 });
    const reopen = async (name: string) => {
      const d = await openDevice({ dataDir: tmp.file(name), autoSync: false });
      opened.push(d);
      return { d, h: createHandlers(d) };
    };
    try {
      let a = await device('r-a', server.url);
      let b = await device('r-b', server.url);
      await a.h.execute(create('O-LIVE'));
      await a.h.syncNow({});
      await b.h.syncNow({});
      a.d.setWorkOffline(true);
      await a.h.execute(create('O-HELD'));
      await a.h.execute({ command: { type: 'RecordPayment', orderId: 'O-HELD', paymentId: 'P-1', amount: 1000 } });
      const heldBefore = (await a.h.listOrders(ALL)).rows.find((r) => r.orderId === 'O-HELD');
      expect(heldBefore).toMatchObject({ sync: 'pending', paidAmount: 1000 });
      await a.d.close();
      await b.d.close();

      a = await reopen('r-a');
      b = await reopen('r-b');
      // The overlay written before the restart is what the list shows after it.
      expect((await a.h.listOrders(ALL)).rows.find((r) => r.orderId === 'O-HELD')).toEqual(heldBefore);
      await b.h.execute(create('O-AFTER'));
      expect((await b.h.listOrders(ALL)).rows.find((r) => r.orderId === 'O-AFTER')).toMatchObject({ sync: 'pending' });
      await b.h.syncNow({});
      expect((await b.h.listOrders(ALL)).rows.find((r) => r.orderId === 'O-AFTER')).toMatchObject({ sync: 'synced' });
      await a.h.execute(create('O-AFTER-A'));
      expect((await a.h.listOrders(ALL)).rows.map((r) => [r.orderId, r.sync]).sort()).toEqual([
        ['O-AFTER-A', 'pending'],
        ['O-HELD', 'pending'],
        ['O-LIVE', 'synced'],
      ]);

      a.d.setWorkOffline(false);
      await a.h.syncNow({});
      await b.h.syncNow({});
      const all = [
        ['O-AFTER', 'synced'],
        ['O-AFTER-A', 'synced'],
        ['O-HELD', 'synced'],
        ['O-LIVE', 'synced'],
      ];
      expect((await a.h.listOrders(ALL)).rows.map((r) => [r.orderId, r.sync]).sort()).toEqual(all);
      expect((await b.h.listOrders(ALL)).rows.map((r) => [r.orderId, r.sync]).sort()).toEqual(all);
      expect((await b.h.listOrders(ALL)).rows.find((r) => r.orderId === 'O-HELD')).toMatchObject({ paidAmount: 1000, status: heldBefore!.status });
    } finally {
      await server.close();
    }
  });

  it('keeps its settings and device id across restarts', async () => {
    const { d, h } = await device('restart');
    const id = d.deviceId;
    await h.saveSettings({ serverUrl: 'http://127.0.0.1:9', token: 'abc', userId: 'maria' });
    await d.close();
    const again = await openDevice({ dataDir: tmp.file('restart'), autoSync: false });
    opened.push(again);
    expect(again.settingsView()).toEqual({ deviceId: id, serverUrl: 'http://127.0.0.1:9', userId: 'maria', tokenSet: true, tokenServer: 'http://127.0.0.1:9' });
    expect(again.serverCredential()).toEqual({ server: 'http://127.0.0.1:9', token: 'abc' });
  });
});
