import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedServer } from '../../src/server/index.js';
import { openLocalStore } from '../../src/store/local-store.js';
import { Outbox } from '../../src/sync/outbox.js';
import { tempDir } from '../helpers/tmp.js';
import { TENANT, comparable, openDevice, pay, serverState, startSqliteServer, tokenOf } from './helpers.js';

const WORKER = fileURLToPath(new URL('./fixtures/sync-worker.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

/** Run the worker; kill it with SIGKILL after `killAfterLines` progress lines (or let it finish). */
function runWorker(args: string[], killAfterLines: number | null): Promise<{ killed: boolean; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, [WORKER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let stderr = '';
    let killed = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      for (const l of chunk.split('\n').filter(Boolean)) lines.push(l);
      if (killAfterLines !== null && !killed && lines.length >= killAfterLines) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL' || code === 0) resolve({ killed: signal === 'SIGKILL', lines });
      else reject(new Error(`worker exited with ${code}: ${stderr}`));
    });
  });
}

describe('crash safety: a device killed with SIGKILL mid-sync converges after restart', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: StartedServer;
  beforeAll(async () => {
    tmp = tempDir('sync-crash-');
    server = await startSqliteServer(tmp.file('server.db'), ['crashy', 'bob']);
  });
  afterAll(async () => {
    await server.close();
    tmp.cleanup();
  });

  it('kill -9 during push, acknowledgement, pull and rebase loses and duplicates nothing', async () => {
    const ORDERS = 8;
    const db = tmp.file('crashy.db');
    const args = [db, server.url, tokenOf('crashy'), String(ORDERS)];
    const bob = openDevice(tmp.file('bob.db'), 'bob', server.url);
    let kills = 0;
    // Kill points spread over the run; between kills another device pays on the same orders, so
    // the restarted worker also has to pull and rebase.
    for (const after of [2, 5, 3, 9, 6]) {
      const r = await runWorker(args, after);
      if (r.killed) kills++;
      await bob.engine.syncOnce();
      for (let i = 0; i < ORDERS; i++) {
        if (bob.outbox.effectiveState(`crash-${i}`).exists && bob.outbox.effectiveState(`crash-${i}`).payments.length < 2) {
          bob.submit(pay(`crash-${i}`, `pay-bob-${i}`, 200));
        }
      }
      await bob.engine.syncOnce();
      if (!r.killed) break;
    }
    expect(kills).toBeGreaterThan(2);
    const final = await runWorker(args, null);
    expect(final.lines.at(-1)).toBe('done');
    await bob.engine.syncOnce();

    const store = openLocalStore(db);
    const outbox = new Outbox(store, { deviceId: 'dev-crashy' });
    try {
      expect(outbox.pendingCount()).toBe(0);
      expect(outbox.listConflicts()).toEqual([]);
      for (let i = 0; i < ORDERS; i++) {
        const id = `crash-${i}`;
        const remote = await server.repo.readStream(TENANT, id);
        const paymentIds = remote.filter((e) => e.eventType === 'PaymentReceived').map((e) => e.data.paymentId);
        // Exactly once each: the order, the worker's payment, and bob's payment if he got to it.
        expect(remote.filter((e) => e.eventType === 'OrderCreated')).toHaveLength(1);
        expect(paymentIds.filter((p) => p === `pay-crashy-${i}`)).toHaveLength(1);
        expect(paymentIds.filter((p) => p === `pay-bob-${i}`).length).toBeLessThanOrEqual(1);
        expect(new Set(remote.map((e) => e.eventId)).size).toBe(remote.length);
        const expected = comparable(await serverState(server, id));
        expect(comparable(outbox.effectiveState(id))).toEqual(expected);
        expect(comparable(bob.outbox.effectiveState(id))).toEqual(expected);
        expect(store.log.readStream(id, { raw: true }).map((e) => e.eventId)).toEqual(remote.map((e) => e.eventId));
      }
      // Every worker command is synced exactly once.
      const statuses = store.db.prepare('SELECT status, COUNT(*) AS n FROM commands GROUP BY status').all();
      expect(statuses).toEqual([{ status: 'synced', n: ORDERS * 2 }]);
    } finally {
      store.close();
      bob.close();
    }
    // Each restart pays a tsx start-up; generous on a loaded 2-core machine.
  }, 180_000);
});
