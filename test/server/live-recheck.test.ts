import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { startServer, SqliteRepository, type StartedServer } from '../../src/server/index.js';
import type { EventRepository } from '../../src/server/repository.js';
import { DEVICE_A, TOKENS, client, newEvent, sqliteFactory, type TestBackend } from './helpers.js';

describe('waiting streams share one re-check', () => {
  let backend: TestBackend;
  let server: StartedServer;
  let other: StartedServer;

  beforeAll(async () => {
    backend = await sqliteFactory.make();
    // Two server processes' worth of state on one database: neither hears the other's notify().
    server = await startServer({ ...backend.opts, tokens: TOKENS, port: 0 });
    other = await startServer({ ...backend.opts, tokens: TOKENS, port: 0 });
  });
  afterAll(async () => {
    await other?.close();
    await server?.close();
    await backend?.cleanup();
  });

  it("a long-poll on one server wakes for another server's append", async () => {
    const a = client(server.url, DEVICE_A);
    const head = (await a.get('/sync/events?after=0&limit=5000')).body.nextPosition as number;
    const poll = a.get(`/sync/events?after=${head}&waitMs=30000`);
    await new Promise((r) => setTimeout(r, 300));
    const s = `elsewhere-${Date.now().toString(36)}`;
    expect((await client(other.url, DEVICE_A).post(`/sync/streams/${s}/append`, { streamType: 'Note', expectedVersion: 0, events: [newEvent()] })).status).toBe(201);
    const r = await poll;
    expect(r.body.events.map((e: { streamId: string }) => e.streamId)).toEqual([s]);
  });

  it('many waiting long-polls cost one probe per tick, not one query each per tick', async () => {
    const repo = new SqliteRepository(backend.opts.backend === 'sqlite' ? backend.opts.file : '');
    const calls = { pull: 0, visibleHead: 0 };
    const counting = new Proxy(repo, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if ((prop === 'pull' || prop === 'visibleHead') && typeof v === 'function') {
          return (...args: unknown[]) => {
            calls[prop]++;
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as EventRepository;
    const { app } = await buildApp({ repo: counting, tokens: TOKENS, maxLiveStreamsPerToken: 100 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const addr = app.server.address();
      const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
      const a = client(url, DEVICE_A);
      const waiters = 20;
      // 2 s of waiting with nothing new: a 250 ms re-query per waiter would be 8+ pulls each.
      const polls = Array.from({ length: waiters }, () => a.get('/sync/events?after=999999999&waitMs=2000'));
      const results = await Promise.all(polls);
      expect(results.every((r) => r.status === 200 && r.body.events.length === 0)).toBe(true);
      // Each waiter: its first query, at most one wake from the first probe, its last query.
      expect(calls.pull).toBeLessThanOrEqual(3 * waiters);
      expect(calls.visibleHead).toBeGreaterThan(0);
    } finally {
      await app.close();
      await repo.close();
    }
  });
});
