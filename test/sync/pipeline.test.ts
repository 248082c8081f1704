import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedServer } from '../../src/server/index.js';
import { NetworkError } from '../../src/sync/errors.js';
import { SyncHttpClient, type SyncClient } from '../../src/sync/http-client.js';
import { SyncEngine } from '../../src/sync/sync-engine.js';
import { tempDir } from '../helpers/tmp.js';
import { TENANT, comparable, createOrder, openDevice, pay, serverState, startSqliteServer, tokenOf } from './helpers.js';

/** Pushes travel in several requests, the next one sent before the previous answer is acknowledged. */
describe('pipelined push', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: StartedServer;
  beforeAll(async () => {
    tmp = tempDir('sync-pipeline-');
    server = await startSqliteServer(tmp.file('server.db'));
  });
  afterAll(async () => {
    await server.close();
    tmp.cleanup();
  });

  it('converges over many requests with conflicts in early ones, and survives a request failing mid-pipeline', async () => {
    const a = openDevice(tmp.file('a.db'), 'alice', server.url);
    const b = openDevice(tmp.file('b.db'), 'bob', server.url);
    const orders = Array.from({ length: 12 }, (_, i) => `pipe-${i}`);
    for (const id of orders) expect(a.submit(createOrder(id, 10_000)).ok).toBe(true);
    await a.engine.syncOnce();
    await b.engine.syncOnce();
    // Bob pays on the first orders, alice (offline) pays on all of them: her early requests conflict.
    for (const id of orders.slice(0, 4)) expect(b.submit(pay(id, `pay-b-${id}`, 3000)).ok).toBe(true);
    await b.engine.syncOnce();
    for (const id of orders) expect(a.submit(pay(id, `pay-a-${id}`, 5000)).ok).toBe(true);

    // Two events per request: twelve requests in a pipeline; the fifth request fails on the wire.
    let calls = 0;
    const real = new SyncHttpClient({ baseUrl: server.url, token: tokenOf('alice'), timeoutMs: 5000 });
    const flaky: SyncClient = {
      baseUrl: real.baseUrl,
      pull: (q) => real.pull(q),
      streamEvents: (id, q) => real.streamEvents(id, q),
      push: async (r) => {
        calls++;
        if (calls === 5) throw new NetworkError('connection reset (injected)');
        return real.push(r);
      },
    };
    const engine = new SyncEngine({ store: a.store, outbox: a.outbox, client: flaky, maxEventsPerPush: 2 });
    await expect(engine.syncOnce()).rejects.toThrow(/injected/);
    expect(calls).toBeGreaterThanOrEqual(5);
    const report = await engine.syncOnce();
    expect(report.pending).toBe(0);

    for (const id of orders) {
      const expected = comparable(await serverState(server, id));
      expect(expected.paidAmount).toBe(orders.indexOf(id) < 4 ? 8000 : 5000);
      expect(comparable(a.outbox.effectiveState(id))).toEqual(expected);
      const local = a.store.log.readStream(id, { raw: true }).map((e) => e.eventId);
      const remote = (await server.repo.readStream(TENANT, id)).map((e) => e.eventId);
      expect(local).toEqual(remote);
      expect(new Set(remote).size).toBe(remote.length);
    }
    a.close();
    b.close();
  });

  it('keeps two requests in flight, never more, so the server has the next one while the device acknowledges', async () => {
    const a = openDevice(tmp.file('depth.db'), 'alice', server.url);
    for (let i = 0; i < 10; i++) expect(a.submit(createOrder(`depth-${i}`, 1000)).ok).toBe(true);
    const real = new SyncHttpClient({ baseUrl: server.url, token: tokenOf('alice'), timeoutMs: 5000 });
    let outstanding = 0;
    let most = 0;
    const counting: SyncClient = {
      baseUrl: real.baseUrl,
      pull: (q) => real.pull(q),
      streamEvents: (id, q) => real.streamEvents(id, q),
      push: async (r) => {
        outstanding++;
        most = Math.max(most, outstanding);
        try {
          return await real.push(r);
        } finally {
          outstanding--;
        }
      },
    };
    const report = await new SyncEngine({ store: a.store, outbox: a.outbox, client: counting, maxEventsPerPush: 1 }).push();
    expect(report.pushedEvents).toBe(10);
    expect(report.pending).toBe(0);
    expect(most).toBe(2);
    a.close();
  });
});
