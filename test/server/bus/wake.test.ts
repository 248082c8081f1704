import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVICE_A, PG_URL, TOKENS, client, newEvent, randomSchema } from '../helpers.js';
import { SERVER_CLI, dropSchemas, spawnCli, type Spawned } from './helpers.js';

/**
 * Two server processes on one PostgreSQL schema: a long-poll waiting on one is woken by an
 * append on the other through LISTEN/NOTIFY. The polling re-check is only a safety net (every
 * 5 s once NOTIFY is in use), so a long-poll of 3 s that still returns the event was woken by
 * the announcement, not found by a re-check. (Latency figures: `npm run bench`.)
 */
describe('cross-instance wake-up (LISTEN/NOTIFY, two server processes)', () => {
  const schema = randomSchema();
  const servers: (Spawned & { url: string })[] = [];

  beforeAll(async () => {
    const env = { ORDERLOG_DATABASE_URL: PG_URL, ORDERLOG_PG_SCHEMA: schema, ORDERLOG_PORT: '0', ORDERLOG_TOKENS: JSON.stringify(TOKENS), ORDERLOG_LOG_LEVEL: 'warn' };
    for (let i = 0; i < 2; i++) {
      const s = await spawnCli(SERVER_CLI, ['start'], env, /listening on (http:\/\/\S+)/);
      servers.push({ ...s, url: s.match[1]! });
    }
  }, 120_000);
  afterAll(async () => {
    for (const s of servers) await s.stop().catch(() => undefined);
    await dropSchemas(schema);
  });

  it("wakes a long-poll on one process for an append on the other, and an SSE stream too", async () => {
    const [a, b] = servers as [Spawned & { url: string }, Spawned & { url: string }];
    const onA = client(a.url, DEVICE_A);
    const onB = client(b.url, DEVICE_A);
    for (let round = 0; round < 3; round++) {
      const head = (await onA.get('/sync/events?after=0&limit=5000')).body.nextPosition as number;
      const poll = onA.get(`/sync/events?after=${head}&waitMs=3000`);
      // Let the long-poll reach its wait (it answers at once if the event is already there, which would prove nothing).
      await new Promise((r) => setTimeout(r, 300));
      const streamId = `woken-${round}-${Date.now().toString(36)}`;
      expect((await onB.post(`/sync/streams/${streamId}/append`, { streamType: 'Note', expectedVersion: 0, events: [newEvent()] })).status).toBe(201);
      const r = await poll;
      expect(r.status).toBe(200);
      expect(r.body.events.map((e: { streamId: string }) => e.streamId)).toEqual([streamId]);
    }

    // SSE on B, append on A.
    const ctrl = new AbortController();
    const head = (await onB.get('/sync/events?after=0&limit=5000')).body.nextPosition as number;
    const res = await fetch(`${b.url}/sync/events/live?after=${head}`, { headers: { authorization: `Bearer ${DEVICE_A}` }, signal: ctrl.signal });
    const reader = res.body!.getReader();
    const streamId = `live-${Date.now().toString(36)}`;
    const got = (async () => {
      let text = '';
      const until = Date.now() + 3000;
      while (!text.includes(streamId) && Date.now() < until) {
        const chunk = await Promise.race([reader.read(), new Promise<null>((r) => setTimeout(() => r(null), until - Date.now()))]);
        if (!chunk || chunk.done) break;
        text += new TextDecoder().decode(chunk.value);
      }
      return text;
    })();
    await new Promise((r) => setTimeout(r, 300));
    expect((await onA.post(`/sync/streams/${streamId}/append`, { streamType: 'Note', expectedVersion: 0, events: [newEvent()] })).status).toBe(201);
    expect(await got).toContain(streamId);
    ctrl.abort();
  }, 120_000);
});
