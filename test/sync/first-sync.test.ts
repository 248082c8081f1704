import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { deferrableViews } from '../../src/app/device.js';
import { canonicalJson } from '../../src/protocol/canonical-json.js';
import { chainHash } from '../../src/protocol/event-hash.js';
import { defaultProjections, ProjectionRunner } from '../../src/projections/index.js';
import { openLocalStore, type LocalStore } from '../../src/store/index.js';
import { SyncHttpClient } from '../../src/sync/http-client.js';
import { Outbox } from '../../src/sync/outbox.js';
import { createPendingSource } from '../../src/sync/pending-source.js';
import { SyncEngine } from '../../src/sync/sync-engine.js';
import { tempDir } from '../helpers/tmp.js';
import { TENANT, createOrder, openDevice, pay, reserve, ship, startSqliteServer, tokenOf } from './helpers.js';

const tmp = tempDir('first-sync-');
afterAll(() => tmp.cleanup());

/** A device wired as Device.open wires it; `deferred`: the views are built once at the end of a pull far behind. */
async function newDevice(name: string, serverUrl: string, deferred: boolean) {
  const store = openLocalStore(tmp.file(`${name}.sqlite`), { durability: 'normal' });
  const runner = new ProjectionRunner(store.log, defaultProjections());
  const outbox = new Outbox(store, { deviceId: `dev-${name}`, onOrdersChanged: (ids) => runner.refreshOrders(ids) });
  runner.setPendingSource(createPendingSource(outbox));
  await runner.open();
  const client = new SyncHttpClient({ baseUrl: serverUrl, token: tokenOf('bob'), timeoutMs: 5000 });
  let built = 0;
  const views = deferrableViews(store, runner, () => built++);
  const engine = new SyncEngine({ store, outbox, client, pullLimit: 7, ...(deferred ? { views } : {}) });
  return { store, runner, outbox, engine, builds: () => built, close: () => (runner.close(), store.close()) };
}

/** Every projection table, in a stable order. */
function views(store: LocalStore): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const p of defaultProjections()) {
    for (const t of p.tables('')) {
      out[t.name] = store.db
        .prepare(`SELECT * FROM "${t.name}"`)
        .all()
        .map((r) => JSON.stringify(r))
        .sort();
    }
  }
  return out;
}

describe('first sync with the views built once at the end', () => {
  it('ends with the same views as inline projections, quarantines a bad event of a page and applies the rest', async () => {
    const file = tmp.file('server.sqlite');
    const server = await startSqliteServer(file);
    try {
      // The server's history: orders of several events, written by another device.
      const seeder = openDevice(tmp.file('seeder.sqlite'), 'alice', server.url);
      for (let i = 0; i < 12; i++) {
        const id = `O-${i}`;
        expect(seeder.submit(createOrder(id, 1000 + i)).ok).toBe(true);
        if (i % 2 === 0) expect(seeder.submit(pay(id, `P-${i}`, 1000 + i)).ok).toBe(true);
        if (i % 3 === 0) expect(seeder.submit(reserve(id, `R-${i}`)).ok).toBe(true);
        if (i % 6 === 0) expect(seeder.submit(ship(id, `S-${i}`)).ok).toBe(true);
      }
      expect((await seeder.engine.syncOnce()).pending).toBe(0);
      seeder.close();

      // A newer build wrote an event this one cannot read on O-1 (straight into the database).
      const db = new Database(file);
      try {
        const head = db.prepare('SELECT version, last_hash FROM streams WHERE aggregate_id = ?').get('O-1') as { version: number; last_hash: string };
        const e = { eventId: uuidv7(), streamId: 'O-1', streamVersion: head.version + 1, eventType: 'OrderShipped', schemaVersion: 9, recordedAt: new Date().toISOString() };
        const data = { shipmentId: 'SH-1', shippedAt: e.recordedAt, carrier: 'new field' };
        const metadata = { tenantId: TENANT };
        const hash = chainHash(head.last_hash, e, canonicalJson(data), canonicalJson(metadata));
        db.prepare(
          'INSERT INTO events (event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        ).run(e.eventId, TENANT, 'O-1', 'Order', e.eventType, e.schemaVersion, canonicalJson(data), canonicalJson(metadata), e.streamVersion, e.recordedAt, hash);
        db.prepare('UPDATE streams SET version = ?, last_hash = ? WHERE aggregate_id = ?').run(e.streamVersion, hash, 'O-1');
      } finally {
        db.close();
      }
      // Later events after the bad one, on other orders: they must still arrive.
      const late = openDevice(tmp.file('late.sqlite'), 'carol', server.url);
      await late.engine.syncOnce();
      expect(late.submit(createOrder('O-late')).ok).toBe(true);
      expect((await late.engine.syncOnce()).pending).toBe(0);
      late.close();

      const inline = await newDevice('inline', server.url, false);
      const deferred = await newDevice('deferred', server.url, true);
      try {
        const a = await inline.engine.pull();
        const b = await deferred.engine.pull();
        expect(b.pulledEvents).toBe(a.pulledEvents);
        expect(b.pulledEvents).toBeGreaterThan(7 * 3);
        // Deferred: built once, at the end; inline: never.
        expect(deferred.builds()).toBe(1);
        expect(inline.builds()).toBe(0);

        expect(deferred.store.log.headPosition()).toBe(inline.store.log.headPosition());
        expect(deferred.outbox.quarantine.count()).toBe(1);
        expect(inline.outbox.quarantine.count()).toBe(1);
        const list = deferred.store.db.prepare('SELECT order_id, sync FROM order_list ORDER BY order_id').all() as { order_id: string; sync: string }[];
        expect(list).toHaveLength(13);
        expect(list.find((r) => r.order_id === 'O-1')?.sync).toBe('attention');
        expect(list.find((r) => r.order_id === 'O-late')?.sync).toBe('synced');
        expect(views(deferred.store)).toEqual(views(inline.store));
        // Caught up and attached again: the projections are at the head and a later pull applies inline.
        expect(deferred.runner.status().every((s) => s.state === 'live' && s.position === deferred.store.log.headPosition())).toBe(true);
      } finally {
        inline.close();
        deferred.close();
      }
    } finally {
      await server.close();
    }
  });

  it('keeps offline work visible: a pending order created before the first sync shows as pending after it', async () => {
    const server = await startSqliteServer(tmp.file('server-2.sqlite'));
    try {
      const seeder = openDevice(tmp.file('seeder-2.sqlite'), 'alice', server.url);
      for (let i = 0; i < 10; i++) expect(seeder.submit(createOrder(`S-${i}`)).ok).toBe(true);
      await seeder.engine.syncOnce();
      seeder.close();

      const d = await newDevice('offline-first', server.url, true);
      try {
        expect(d.outbox.submit(createOrder('OFF-1'), { userId: 'bob' }).ok).toBe(true);
        await d.engine.pull();
        expect(d.builds()).toBe(1);
        const rows = d.store.db.prepare('SELECT order_id, sync FROM order_list ORDER BY order_id').all() as { order_id: string; sync: string }[];
        expect(rows).toHaveLength(11);
        expect(rows.find((r) => r.order_id === 'OFF-1')?.sync).toBe('pending');
        // The push that follows confirms it, inline again.
        expect((await d.engine.syncOnce()).pending).toBe(0);
        expect(d.store.db.prepare("SELECT sync FROM order_list WHERE order_id = 'OFF-1'").pluck().get()).toBe('synced');
      } finally {
        d.close();
      }
    } finally {
      await server.close();
    }
  });
});
