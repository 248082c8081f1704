import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrderCommandInput } from '../../src/domain/commands.js';
import { startServer, type StartedServer } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';
import { TENANT, comparable, openDevice, pay, serverState, tokenOf, type Device } from './helpers.js';

let seq = 0;
const oid = (p: string) => `${p}-${Date.now().toString(36)}-${++seq}`;
const create = (orderId: string, customerId: string): OrderCommandInput => ({
  type: 'CreateOrder',
  orderId,
  customerId,
  items: [{ sku: 'sku-1', quantity: 1, unitPrice: 10_000 }],
  currency: 'USD',
});

describe('scoped sync on a device (real SQLite files, real server on loopback)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: StartedServer;
  const devices: Device[] = [];
  const device = (name: string, user = 'alice') => {
    const d = openDevice(tmp.file(`${name}-${devices.length}.db`), name, server.url, { user });
    devices.push(d);
    return d;
  };
  /** The device's log of an order equals the server's, gap-free from version 1. */
  async function expectSameStream(d: Device, orderId: string, tenant = TENANT) {
    const local = d.store.log.readStream(orderId, { raw: true }).map((e) => [e.streamVersion, e.eventId]);
    const remote = (await server.repo.readStream(tenant, orderId)).map((e) => [e.streamVersion, e.eventId]);
    expect(local).toEqual(remote);
  }
  const held = (d: Device) =>
    new Set((d.store.db.prepare('SELECT DISTINCT stream_id FROM events').pluck().all() as string[]));

  beforeAll(async () => {
    tmp = tempDir('scope-');
    server = await startServer({
      backend: 'sqlite',
      file: tmp.file('server.db'),
      port: 0,
      tokens: [
        ...['alice', 'bob', 'writer'].map((u) => ({ token: tokenOf(u), tenant: TENANT, user: u, roles: ['device' as const] })),
        { token: tokenOf('zed'), tenant: 'other-tenant', user: 'zed', roles: ['device' as const] },
      ],
    });
  });
  afterAll(async () => {
    for (const d of devices) d.close();
    await server.close();
    tmp.cleanup();
  });

  it('pulls only its scope, opens another order on demand and keeps following it; widening backfills the newly included history', async () => {
    const writer = device('writer', 'writer');
    const mine = oid('c1'), theirs = oid('c2'), third = oid('c3');
    for (const [id, customer] of [[mine, 'cust-1'], [theirs, 'cust-2'], [third, 'cust-3']] as const) expect(writer.submit(create(id, customer)).ok).toBe(true);
    await writer.engine.syncOnce();

    const field = device('field', 'bob');
    field.engine.setScope({ mode: 'scoped', customers: ['cust-1'], recentDays: null, streams: [] });
    // A new device holds the first cursor; a scope pulls by position, so it starts at position 0.
    expect(typeof field.engine.checkpoint()).toBe('string');
    await field.engine.syncOnce();
    expect(held(field)).toEqual(new Set([mine]));
    // The position passed the other orders: it is at the server's head (SQLite: the newest position), not at the last event it took.
    expect(field.engine.checkpoint()).toBe(Number(await server.repo.visibleHead()));

    // Out of scope: opened from the server on demand, then kept.
    expect(await field.engine.openRemote(theirs)).toEqual({ fetched: 1 });
    expect(field.outbox.effectiveState(theirs).customerId).toBe('cust-2');
    expect(writer.submit(pay(theirs, 'p-1', 1000)).ok).toBe(true);
    expect(writer.submit(pay(third, 'p-3', 1000)).ok).toBe(true);
    await writer.engine.syncOnce();
    await field.engine.syncOnce();
    await expectSameStream(field, theirs);
    expect(held(field).has(third)).toBe(false);

    // Widening to cust-3: its history from before the cursor arrives (backfill), and what follows.
    field.engine.setScope({ mode: 'scoped', customers: ['cust-1', 'cust-3'], recentDays: null, streams: [] });
    expect(field.engine.scope.backfills()).toHaveLength(1);
    expect(writer.submit(pay(third, 'p-4', 500)).ok).toBe(true);
    await writer.engine.syncOnce();
    await field.engine.syncOnce();
    expect(field.engine.scope.backfills()).toEqual([]);
    await expectSameStream(field, third);
    expect(comparable(field.outbox.effectiveState(third))).toEqual(comparable(await serverState(server, third)));

    // Back to everything: the rest of the tenant arrives, nothing twice.
    field.engine.setScope({ mode: 'all' });
    await field.engine.syncOnce();
    for (const id of [mine, theirs, third]) await expectSameStream(field, id);
  });

  it('a stream that enters the scope after the cursor passed its start is backfilled by its stream read (the log stays gap-free)', async () => {
    const writer = device('writer2', 'writer');
    const late = oid('late');
    expect(writer.submit(create(late, 'cust-9')).ok).toBe(true);
    await writer.engine.syncOnce();
    const field = device('field2', 'bob');
    field.engine.setScope({ mode: 'scoped', customers: ['cust-1'], recentDays: null, streams: [] });
    await field.engine.syncOnce();
    expect(held(field).has(late)).toBe(false);
    // Followed from now on (as when an open races a running pull), but its version 1 is behind the cursor.
    field.engine.scope.keep(late, new Date().toISOString());
    expect(writer.submit(pay(late, 'p-late', 2000)).ok).toBe(true);
    await writer.engine.syncOnce();
    const report = await field.engine.syncOnce();
    expect(report.pulledEvents).toBe(2);
    await expectSameStream(field, late);
  });

  it('narrowing never loses a pending command, and an order this device touched stays followed', async () => {
    const writer = device('writer3', 'writer');
    const order = oid('touched');
    expect(writer.submit(create(order, 'cust-5')).ok).toBe(true);
    await writer.engine.syncOnce();
    const field = device('field3', 'bob');
    field.engine.setScope({ mode: 'scoped', customers: ['cust-5'], recentDays: null, streams: [] });
    await field.engine.syncOnce();
    const cmd = field.submit(pay(order, 'p-offline', 3000));
    expect(cmd.ok).toBe(true);
    // Narrowed while the command is still pending.
    field.engine.setScope({ mode: 'scoped', customers: [], recentDays: null, streams: [] });
    expect(field.engine.scope.backfills()).toEqual([]);
    const report = await field.engine.syncOnce();
    expect(report.pending).toBe(0);
    if (!cmd.ok) throw new Error('unreachable');
    expect(field.outbox.command(cmd.commandId)?.status).toBe('synced');
    // Another device's change to the touched order still arrives.
    await writer.engine.syncOnce();
    expect(writer.submit(pay(order, 'p-writer', 1000)).ok).toBe(true);
    await writer.engine.syncOnce();
    await field.engine.syncOnce();
    await expectSameStream(field, order);
    expect(field.outbox.effectiveState(order).paidAmount).toBe(4000);
  });

  it("never reads another tenant's orders, by scope or on demand", async () => {
    const stranger = device('stranger', 'zed');
    const secret = oid('secret');
    expect(stranger.submit(create(secret, 'cust-1')).ok).toBe(true);
    await stranger.engine.syncOnce();
    const field = device('field4', 'bob');
    field.engine.setScope({ mode: 'scoped', customers: ['cust-1'], recentDays: 3650, streams: [] });
    await field.engine.syncOnce();
    expect(held(field).has(secret)).toBe(false);
    expect(await field.engine.openRemote(secret)).toBeNull();
    expect(held(field).has(secret)).toBe(false);
    expect(await field.engine.remoteHistory(secret)).toBeNull();
  });

  it('refuses a malformed scope and keeps the one it had', () => {
    const field = device('field5', 'bob');
    expect(() => field.engine.setScope({ mode: 'scoped', customers: 'cust-1', recentDays: null, streams: [] } as never)).toThrow(/customers/);
    expect(field.engine.scope.scope()).toEqual({ mode: 'all' });
  });
});
