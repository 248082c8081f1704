import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newerStatus, type SyncStatus } from '../../src/app/contract.js';
import type { StartedServer } from '../../src/server/index.js';
import { SyncHttpClient } from '../../src/sync/http-client.js';
import { SyncScheduler } from '../../src/sync/scheduler.js';
import { tempDir } from '../helpers/tmp.js';
import { startFaultProxy, type Fault } from './fault-proxy.js';
import { createOrder, openDevice, pay, startSqliteServer, tokenOf, type Device } from './helpers.js';

describe('SyncScheduler', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: StartedServer;
  const devices: Device[] = [];
  beforeAll(async () => {
    tmp = tempDir('sync-sched-');
    server = await startSqliteServer(tmp.file('server.db'));
  });
  afterAll(async () => {
    for (const d of devices) d.close();
    await server.close();
    tmp.cleanup();
  });

  it('backs off on 5xx and network errors, then succeeds; reports status and progress', async () => {
    const faults: Fault[] = ['error-500', 'reset-before', 'error-500'];
    const proxy = await startFaultProxy(server.url, () => faults.shift() ?? 'none');
    const d = openDevice(tmp.file('a.db'), 'alice', proxy.url);
    devices.push(d);
    const scheduler = new SyncScheduler({
      engine: d.engine,
      outbox: d.outbox,
      serverUrl: proxy.url,
      token: tokenOf('alice'),
      intervalMs: 0,
      backoff: { minMs: 20, maxMs: 100, retries: 5 },
    });
    const seen: SyncStatus[] = [];
    scheduler.onStatus((s) => seen.push(s));
    d.submit(createOrder('sched-1'));
    const status = await scheduler.syncNow();
    expect(status).toMatchObject({ state: 'idle', pendingCount: 0, conflictCount: 0, online: true, serverUrl: proxy.url });
    expect(status.lastSuccessAt).not.toBeNull();
    const states = seen.map((s) => s.state);
    expect(states).toContain('error');
    expect(states).toContain('offline');
    expect(seen.some((s) => s.nextAttemptAt !== null)).toBe(true);
    expect(seen.some((s) => s.progress?.phase === 'push')).toBe(true);
    expect(proxy.counts['error-500']).toBe(2);
    await scheduler.stop();
    await proxy.close();
  });

  it('numbers its statuses, so a view keeps the newest whichever order a reply and the stream arrive in', async () => {
    const d = openDevice(tmp.file('revision.db'), 'alice', server.url);
    devices.push(d);
    const scheduler = new SyncScheduler({ engine: d.engine, outbox: d.outbox, serverUrl: server.url, token: tokenOf('alice'), intervalMs: 0, liveWaitMs: 0, paused: true });
    scheduler.start();
    const streamed: SyncStatus[] = [];
    scheduler.onStatus((s) => streamed.push(s));
    d.submit(createOrder('revision-1'));
    // "Work offline" off: the reply is read while the sync it started runs (the setWorkOffline race of the e2e test).
    scheduler.setPaused(false);
    const reply = scheduler.getStatus();
    expect(reply.state).toBe('syncing');
    await expect.poll(() => streamed.at(-1)?.state).toBe('idle');
    const seqs = streamed.map((s) => s.revision.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(streamed.map((s) => s.revision.epoch)).size).toBe(1);
    // The stream's idle status arrived first, the reply after it: the view keeps idle.
    const idle = streamed.at(-1)!;
    expect(newerStatus(newerStatus(null, idle), reply)).toBe(idle);
    expect(newerStatus(newerStatus(null, reply), idle)).toBe(idle);
    // Another run of the scheduler (the app restarted) starts over: its statuses are taken.
    const restarted = new SyncScheduler({ engine: d.engine, outbox: d.outbox, serverUrl: server.url, token: tokenOf('alice'), intervalMs: 0 }).getStatus();
    expect(restarted.revision.seq).toBeLessThan(idle.revision.seq);
    expect(newerStatus(idle, restarted)).toBe(restarted);
    await scheduler.stop();
  });

  it('stops on 401 and reports unauthorized until the credentials change', async () => {
    const proxy = await startFaultProxy(server.url, () => 'none');
    const d = openDevice(tmp.file('b.db'), 'bob', proxy.url);
    devices.push(d);
    const scheduler = new SyncScheduler({ engine: d.engine, outbox: d.outbox, serverUrl: proxy.url, token: 'not-a-valid-token-xxxx', intervalMs: 0, debounceMs: 5 });
    scheduler.start();
    d.submit(createOrder('sched-2'));
    const status = await scheduler.syncNow();
    expect(status.state).toBe('unauthorized');
    expect(status.pendingCount).toBe(1);
    const requests = proxy.counts.none;
    scheduler.notifyChange();
    await new Promise((r) => setTimeout(r, 50));
    expect(proxy.counts.none).toBe(requests);

    scheduler.setServer(proxy.url, tokenOf('bob'));
    const fixed = await scheduler.syncNow();
    expect(fixed).toMatchObject({ state: 'idle', pendingCount: 0, lastError: null });
    await scheduler.stop();
    await proxy.close();
  });

  it('runs one sync at a time, syncs on change (debounced), pauses offline, and stop() waits for the sync in flight', async () => {
    const d = openDevice(tmp.file('c.db'), 'carol', server.url);
    devices.push(d);
    let running = 0;
    let maxRunning = 0;
    const syncOnce = d.engine.syncOnce.bind(d.engine);
    d.engine.syncOnce = async (opts) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      try {
        await new Promise((r) => setTimeout(r, 20));
        return await syncOnce(opts);
      } finally {
        running--;
      }
    };
    const scheduler = new SyncScheduler({ engine: d.engine, outbox: d.outbox, serverUrl: server.url, token: tokenOf('carol'), intervalMs: 0, debounceMs: 10 });
    scheduler.start();
    d.submit(createOrder('sched-3'));
    scheduler.notifyChange();
    await Promise.all([scheduler.syncNow(), scheduler.syncNow(), scheduler.syncNow()]);
    expect(maxRunning).toBe(1);
    expect(scheduler.getStatus().pendingCount).toBe(0);

    scheduler.setOnline(false);
    expect(scheduler.getStatus()).toMatchObject({ state: 'offline', online: false });
    d.submit(pay('sched-3', 'p1', 100));
    scheduler.notifyChange();
    await new Promise((r) => setTimeout(r, 60));
    expect(scheduler.getStatus().pendingCount).toBe(1);

    scheduler.setOnline(true);
    await new Promise((r) => setTimeout(r, 5));
    await scheduler.stop();
    expect(running).toBe(0);
    expect(scheduler.getStatus().pendingCount).toBe(0);
  });

  it('while online, holds a long-poll on the server and pulls another device\'s change as soon as it is stored (no periodic sync, no manual sync)', async () => {
    const a = openDevice(tmp.file('live-a.db'), 'alice', server.url);
    const b = openDevice(tmp.file('live-b.db'), 'bob', server.url);
    devices.push(a, b);
    const pulls: string[] = [];
    const watcher = new SyncScheduler({
      engine: b.engine,
      outbox: b.outbox,
      serverUrl: server.url,
      token: tokenOf('bob'),
      intervalMs: 0,
      createClient: (url, token) => {
        const client = new SyncHttpClient({ baseUrl: url, token });
        return { baseUrl: client.baseUrl, push: (r) => client.push(r), pull: (q) => (pulls.push(`waitMs=${q.waitMs ?? 0}`), client.pull(q)), streamEvents: (s, q) => client.streamEvents(s, q) };
      },
    });
    watcher.start();
    await watcher.syncNow();
    // The watch is now parked on the server; device A stores an order.
    await expect.poll(() => pulls.some((p) => p !== 'waitMs=0')).toBe(true);
    a.submit(createOrder('live-1'));
    await a.engine.syncOnce();
    await expect.poll(() => b.outbox.effectiveState('live-1').exists, { timeout: 5000 }).toBe(true);
    await watcher.stop();
  });

  it('"work offline" sends nothing (not even Sync now) until turned off, then syncs at once', async () => {
    const proxy = await startFaultProxy(server.url, () => 'none');
    const d = openDevice(tmp.file('paused.db'), 'dave', proxy.url);
    devices.push(d);
    const scheduler = new SyncScheduler({ engine: d.engine, outbox: d.outbox, serverUrl: proxy.url, token: tokenOf('dave'), intervalMs: 0, debounceMs: 5, liveWaitMs: 0, paused: true });
    scheduler.start();
    expect(scheduler.getStatus()).toMatchObject({ state: 'paused', paused: true });
    d.submit(createOrder('paused-1'));
    scheduler.notifyChange();
    const status = await scheduler.syncNow();
    await new Promise((r) => setTimeout(r, 50));
    expect(status).toMatchObject({ state: 'paused', pendingCount: 1 });
    expect(proxy.counts.none).toBe(0);

    scheduler.setPaused(false);
    await expect.poll(() => scheduler.getStatus().pendingCount, { timeout: 5000 }).toBe(0);
    expect(scheduler.getStatus()).toMatchObject({ paused: false });
    scheduler.setPaused(true);
    expect(scheduler.getStatus().state).toBe('paused');
    await scheduler.stop();
    await proxy.close();
  });
});
