import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedServer } from '../../src/server/index.js';
import { AuthError, NetworkError } from '../../src/sync/errors.js';
import { SyncHttpClient } from '../../src/sync/http-client.js';
import { tempDir } from '../helpers/tmp.js';
import { startFaultProxy, type Fault } from './fault-proxy.js';
import { TENANT, cancel, comparable, createOrder, openDevice, pay, reserve, serverState, ship, startSqliteServer, type Device } from './helpers.js';

describe('sync against the real server (SQLite backend, loopback)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: StartedServer;
  const devices: Device[] = [];
  const device = (name: string, url = server.url) => {
    const d = openDevice(tmp.file(`${name}-${devices.length}.db`), name, url);
    devices.push(d);
    return d;
  };

  beforeAll(async () => {
    tmp = tempDir('sync-e2e-');
    server = await startSqliteServer(tmp.file('server.db'));
  });
  afterAll(async () => {
    for (const d of devices) d.close();
    await server.close();
    tmp.cleanup();
  });

  async function expectConverged(orderId: string, ...ds: Device[]) {
    const expected = comparable(await serverState(server, orderId));
    for (const d of ds) {
      expect(d.outbox.pendingCount(), `${d.name} has nothing pending`).toBe(0);
      expect(comparable(d.outbox.effectiveState(orderId)), `${d.name} equals the server`).toEqual(expected);
      const local = d.store.log.readStream(orderId, { raw: true }).map((e) => e.eventId);
      const remote = (await server.repo.readStream(TENANT, orderId)).map((e) => e.eventId);
      expect(local).toEqual(remote);
    }
    return expected;
  }

  it('offline edits on two devices to the same order converge (rebase keeps both payments, rejects the second reservation)', async () => {
    const a = device('alice');
    const b = device('bob');
    expect(a.submit(createOrder('conv-1', 10_000)).ok).toBe(true);
    await a.engine.syncOnce();
    await b.engine.syncOnce();
    expect(b.outbox.effectiveState('conv-1').exists).toBe(true);

    // Both offline: each records a payment and a reservation.
    const pa = a.submit(pay('conv-1', 'pay-a', 6000));
    const ra = a.submit(reserve('conv-1', 'res-a'));
    const pb = b.submit(pay('conv-1', 'pay-b', 4000));
    const rb = b.submit(reserve('conv-1', 'res-b'));
    expect([pa.ok, ra.ok, pb.ok, rb.ok]).toEqual([true, true, true, true]);
    expect(b.outbox.effectiveState('conv-1').paidAmount).toBe(4000);

    const progress: string[] = [];
    await a.engine.syncOnce();
    const report = await b.engine.syncOnce({ onProgress: (p) => progress.push(p.phase) });
    expect(report.rebasedOrders).toBeGreaterThan(0);
    expect(progress).toContain('rebase');
    await a.engine.syncOnce();

    const state = await expectConverged('conv-1', a, b);
    expect(state.paidAmount).toBe(10_000);
    expect(state.reservationId).toBe('res-a');
    // The seeds' word follows the last lifecycle event (a payment after the reservation); the facets keep both.
    expect(state.status).toBe('PAID');
    expect([state.paymentStatus, state.fulfilmentStatus]).toEqual(['PAID', 'RESERVED']);
    if (!pb.ok || !rb.ok) throw new Error('unreachable');
    expect(b.outbox.command(pb.commandId)).toMatchObject({ status: 'synced', attempt: 2 });
    const [conflict] = b.outbox.listConflicts();
    expect(conflict).toMatchObject({ commandId: rb.commandId, rejection: { code: 'ALREADY_RESERVED' } });
    // The superseded first attempt of bob's payment stays auditable.
    expect(b.outbox.timeline('conv-1').filter((t) => t.sync === 'superseded').length).toBeGreaterThanOrEqual(1);
    // The refused reservation is called rejected, not superseded.
    expect(b.outbox.timeline('conv-1').filter((t) => t.sync === 'rejected')).toHaveLength(1);
    // Positions and hashes of confirmed events are known after the pull.
    expect(b.outbox.timeline('conv-1').filter((t) => t.sync === 'synced').every((t) => t.globalPosition !== null && t.hash !== null)).toBe(true);
  });

  it('a command invalidated elsewhere surfaces in the conflict inbox with its reason and cause', async () => {
    const a = device('alice');
    const b = device('bob');
    a.submit(createOrder('rej-1', 5000));
    await a.engine.syncOnce();
    await b.engine.syncOnce();
    a.submit(cancel('rej-1', 'customer called to cancel'));
    const payment = b.submit(pay('rej-1', 'pay-b', 5000));
    const shipping = b.submit(reserve('rej-1', 'res-b'));
    expect(payment.ok && shipping.ok).toBe(true);
    await a.engine.syncOnce();
    const report = await b.engine.syncOnce();
    expect(report.rejectedCommands).toHaveLength(2);
    const conflicts = b.outbox.listConflicts();
    expect(conflicts.map((c) => c.rejection.code)).toEqual(['ORDER_CANCELLED', 'ORDER_CANCELLED']);
    expect(conflicts[0]!.rejection.message).toContain('customer called to cancel');
    expect(conflicts[0]!.causedBy).toEqual([
      expect.objectContaining({ eventType: 'OrderCancelled', streamVersion: 2, userId: 'alice', deviceId: 'dev-alice' }),
    ]);
    expect(b.outbox.badge('rej-1')).toBe('rejected');
    const state = await expectConverged('rej-1', a, b);
    expect(state.status).toBe('CANCELLED');
    expect(state.paidAmount).toBe(0);
  });

  it('lost responses, resets and 500s never duplicate or lose events', async () => {
    let n = 0;
    const script: Fault[] = ['drop-response', 'none', 'reset-before', 'error-500', 'drop-response', 'drop-response', 'none'];
    const proxy = await startFaultProxy(server.url, () => script[n++ % script.length]!);
    try {
      const a = device('alice', proxy.url);
      const b = device('bob', proxy.url);
      const ids = ['lost-1', 'lost-2', 'lost-3'];
      for (const id of ids) a.submit(createOrder(id, 3000));
      const sync = async (d: Device) => {
        for (let i = 0; i < 30; i++) {
          try {
            const r = await d.engine.syncOnce();
            if (r.pending === 0) return;
          } catch (err) {
            if (!(err instanceof NetworkError) && !(err as { retryable?: boolean }).retryable) throw err;
          }
        }
        throw new Error(`${d.name} did not converge`);
      };
      await sync(a);
      await sync(b);
      for (const id of ids) {
        b.submit(pay(id, `pb-${id}`, 1000));
        a.submit(pay(id, `pa-${id}`, 2000));
      }
      await sync(b);
      await sync(a);
      await sync(b);
      for (const id of ids) {
        const s = await expectConverged(id, a, b);
        expect(s.payments.map((p) => p.paymentId).sort()).toEqual([`pa-${id}`, `pb-${id}`]);
        expect(s.version).toBe(3);
      }
      expect(proxy.counts['drop-response']).toBeGreaterThan(2);
      expect(proxy.counts['reset-before']).toBeGreaterThan(0);
      expect(proxy.counts['error-500']).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });

  it('a lost push response followed by a new command on the same order still converges', async () => {
    let dropNextPush = true;
    const proxy = await startFaultProxy(server.url, (req) => {
      if (req.url === '/sync/push' && dropNextPush) {
        dropNextPush = false;
        return 'drop-response';
      }
      return 'none';
    });
    try {
      const a = device('alice', proxy.url);
      a.submit(createOrder('mixed-1', 5000));
      await expect(a.engine.syncOnce()).rejects.toBeInstanceOf(NetworkError);
      // The server has the order; the device does not know yet and adds to it.
      a.submit(pay('mixed-1', 'p1', 5000));
      a.submit(reserve('mixed-1', 'r1'));
      const report = await a.engine.syncOnce();
      expect(report.pending).toBe(0);
      await a.engine.syncOnce();
      const s = await expectConverged('mixed-1', a);
      expect(s.status).toBe('RESERVED');
      expect(a.outbox.listConflicts()).toEqual([]);
      a.submit(ship('mixed-1', 'sh-1'));
      await a.engine.syncOnce();
      expect((await expectConverged('mixed-1', a)).status).toBe('SHIPPED');
    } finally {
      await proxy.close();
    }
  });

  it('the HTTP client maps failures to typed errors', async () => {
    const bad = new SyncHttpClient({ baseUrl: server.url, token: 'wrong-token-0123456789' });
    await expect(bad.pull({ after: 0 })).rejects.toBeInstanceOf(AuthError);
    const closed = new SyncHttpClient({ baseUrl: 'http://127.0.0.1:1', token: 'x', timeoutMs: 1000 });
    await expect(closed.pull({ after: 0 })).rejects.toBeInstanceOf(NetworkError);
    expect(() => new SyncHttpClient({ baseUrl: 'ftp://x', token: 'x' })).toThrow(/http/);
  });
});
