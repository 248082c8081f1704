import pg from 'pg';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';
import { TENANT, cancel, comparable, createOrder, openDevice, pay, reserve, serverState, tokenOf, type Device } from './helpers.js';

const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

describe('sync against the real server on PostgreSQL', () => {
  const schema = `sync_test_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  let tmp: ReturnType<typeof tempDir>;
  let server: StartedServer;
  const devices: Device[] = [];

  beforeAll(async () => {
    tmp = tempDir('sync-pg-');
    server = await startServer({
      backend: 'pg',
      connectionString: PG_URL,
      schema,
      tokens: ['alice', 'bob'].map((u) => ({ token: tokenOf(u), tenant: TENANT, user: u, roles: ['device' as const] })),
      port: 0,
    });
  });
  afterAll(async () => {
    for (const d of devices) d.close();
    await server?.close();
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
    tmp.cleanup();
  });

  it('offline edits on two devices converge; the invalidated command is rejected with its cause', async () => {
    const a = openDevice(tmp.file('a.db'), 'alice', server.url);
    const b = openDevice(tmp.file('b.db'), 'bob', server.url);
    devices.push(a, b);
    a.submit(createOrder('pg-1', 10_000));
    a.submit(createOrder('pg-2', 10_000));
    await a.engine.syncOnce();
    // A's appends have committed: nothing else holds a pull back (not even another test file's
    // transactions on the cluster), so one pull brings both orders.
    await b.engine.syncOnce();
    for (const id of ['pg-1', 'pg-2']) expect(b.outbox.effectiveState(id).exists).toBe(true);
    expect(a.submit(pay('pg-1', 'pa', 6000)).ok).toBe(true);
    expect(b.submit(pay('pg-1', 'pb', 4000)).ok).toBe(true);
    expect(a.submit(cancel('pg-2')).ok).toBe(true);
    const late = b.submit(reserve('pg-2', 'rb'));
    expect(late.ok).toBe(true);
    // A refused push is rebased on what the next pull brings: sync until nothing is pending and
    // both devices hold the server's streams.
    const converged = async () => {
      const reports = [await a.engine.syncOnce(), await b.engine.syncOnce()];
      if (reports.some((r) => r.pending > 0)) return false;
      for (const id of ['pg-1', 'pg-2']) {
        const expected = comparable(await serverState(server, id));
        if ([a, b].some((d) => !isDeepStrictEqual(comparable(d.outbox.effectiveState(id)), expected))) return false;
      }
      return true;
    };
    await expect.poll(converged, { timeout: 20_000, interval: 100 }).toBe(true);
    for (const id of ['pg-1', 'pg-2']) {
      const expected = comparable(await serverState(server, id));
      for (const d of [a, b]) expect(comparable(d.outbox.effectiveState(id))).toEqual(expected);
    }
    expect((await serverState(server, 'pg-1')).paidAmount).toBe(10_000);
    if (!late.ok) throw new Error('unreachable');
    expect(b.outbox.listConflicts()).toEqual([
      expect.objectContaining({ commandId: late.commandId, rejection: expect.objectContaining({ code: 'ORDER_CANCELLED' }), causedBy: [expect.objectContaining({ userId: 'alice' })] }),
    ]);
  });

  it('a device that synced before cursors keeps pulling by position, and moves to the cursor once caught up', async () => {
    const a = openDevice(tmp.file('a2.db'), 'alice', server.url);
    const old = openDevice(tmp.file('old.db'), 'bob', server.url);
    devices.push(a, old);
    a.submit(createOrder('pos-1', 5_000));
    await a.engine.syncOnce();
    await old.engine.syncOnce();
    // What a device from before cursors has stored: the highest position it received.
    const positions = (await server.repo.pull(TENANT, 0, 5000)).events.map((e) => e.globalPosition);
    const reached = Math.max(...positions);
    old.store.db.prepare("UPDATE sync_state SET value = ? WHERE key = 'pull_checkpoint'").run(String(reached));
    expect(old.engine.checkpoint()).toBe(reached);

    a.submit(createOrder('pos-2', 7_000));
    await a.engine.syncOnce();
    await old.engine.syncOnce();
    expect(old.outbox.effectiveState('pos-2').exists).toBe(true);
    const cursor = old.engine.checkpoint();
    expect(cursor).toMatch(/^v2\.\d+\.0$/); // caught up: handed the cursor that stands for everything so far

    // Then by cursor: one pull brings what a committed since (nothing else holds it back).
    a.submit(pay('pos-2', 'p1', 7_000));
    await a.engine.syncOnce();
    await old.engine.syncOnce();
    expect(old.outbox.effectiveState('pos-2').paidAmount).toBe(7_000);
    expect(old.engine.checkpoint()).not.toBe(cursor);
    expect(comparable(old.outbox.effectiveState('pos-2'))).toEqual(comparable(await serverState(server, 'pos-2')));
  });
});
