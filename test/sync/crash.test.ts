import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedServer } from '../../src/server/index.js';
import { openLocalStore } from '../../src/store/local-store.js';
import { Outbox } from '../../src/sync/outbox.js';
import { tempDir } from '../helpers/tmp.js';
import { TENANT, comparable, createOrder, openDevice, pay, serverState, startSqliteServer, tokenOf } from './helpers.js';

const WORKER = fileURLToPath(new URL('./fixtures/sync-worker.ts', import.meta.url));
// The tsx loader inside one node process: the tsx CLI would run the script in a grandchild,
// which a SIGKILL of the CLI leaves running (and holding the database's write lock).
const TSX_LOADER = new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url).href;

type Mode = 'create' | 'pay';
type CrashPoint = 'push-answered' | 'in-ack-tx' | 'acked' | 'in-rebase-tx' | 'pull-answered' | 'in-pull-tx';

/**
 * Run the worker. With a crash point it must reach that point (it announces it and blocks
 * there), and is SIGKILLed right then; without one it must finish. Returns the announced line.
 */
function runWorker(args: string[], mode: Mode, crashAt: CrashPoint | null): Promise<{ killedAt: string | null; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    if (crashAt) env.CRASH_AT = crashAt;
    else delete env.CRASH_AT;
    const child = spawn(process.execPath, ['--import', TSX_LOADER, WORKER, ...args, mode], { stdio: ['ignore', 'pipe', 'pipe'], env });
    const lines: string[] = [];
    let buffer = '';
    let stderr = '';
    let killedAt: string | null = null;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      for (const l of parts) {
        lines.push(l);
        if (crashAt !== null && killedAt === null && (l === `crash-point ${crashAt}` || l.startsWith(`crash-point ${crashAt} `))) {
          killedAt = l;
          child.kill('SIGKILL');
        }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL' && killedAt !== null) resolve({ killedAt, lines });
      else if (code === 0 && crashAt === null) resolve({ killedAt: null, lines });
      else reject(new Error(`worker (${mode}, crash at ${crashAt}) exited with ${code ?? signal}; stdout: ${lines.join(' | ')}; stderr: ${stderr}`));
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

  it('kill -9 at every sync step (push, acknowledgement, rebase, pull) loses and duplicates nothing', async () => {
    const ORDERS = 6;
    const db = tmp.file('crashy.db');
    const args = [db, server.url, tokenOf('crashy'), String(ORDERS)];
    const bob = openDevice(tmp.file('bob.db'), 'bob', server.url);
    const kills: string[] = [];
    const crash = async (mode: Mode, at: CrashPoint) => kills.push((await runWorker(args, mode, at)).killedAt!);

    // Phase 1: the worker creates its orders; killed after the server committed a push but
    // before the device acknowledged it, inside the acknowledgement, and right after one.
    await crash('create', 'push-answered');
    await crash('create', 'in-ack-tx');
    await crash('create', 'acked');
    expect((await runWorker(args, 'create', null)).lines.at(-1)).toBe('done');

    // Another device pays on every order and creates its own, so the worker's payments
    // (decided on its stale state) meet a 409 and rebase, and its pulls bring new orders.
    await bob.engine.syncOnce();
    for (let i = 0; i < ORDERS; i++) {
      expect(bob.submit(pay(`crash-${i}`, `pay-bob-${i}`, 200)).ok).toBe(true);
      expect(bob.submit(createOrder(`bob-${i}`)).ok).toBe(true);
    }
    expect((await bob.engine.syncOnce()).pending).toBe(0);

    // Phase 2: killed after the conflict answer, inside the rebase, after a pull page
    // arrived and inside the transaction storing it.
    await crash('pay', 'push-answered');
    await crash('pay', 'in-rebase-tx');
    await crash('pay', 'pull-answered');
    await crash('pay', 'in-pull-tx');
    const final = await runWorker(args, 'pay', null);
    expect(final.lines.at(-1)).toBe('done');
    await bob.engine.syncOnce();

    // Every intended crash point was hit, in order; the conflict kill came before any rebase.
    expect(kills.map((k) => k.split(' ')[1])).toEqual([
      'push-answered',
      'in-ack-tx',
      'acked',
      'push-answered',
      'in-rebase-tx',
      'pull-answered',
      'in-pull-tx',
    ]);
    expect(kills[0]).toMatch(/^crash-point push-answered ok/);
    expect(kills[3]).toMatch(/^crash-point push-answered conflict/);

    const store = openLocalStore(db);
    const outbox = new Outbox(store, { deviceId: 'dev-crashy' });
    try {
      expect(outbox.pendingCount()).toBe(0);
      expect(outbox.listConflicts()).toEqual([]);
      for (const id of [...Array.from({ length: ORDERS }, (_, i) => `crash-${i}`), ...Array.from({ length: ORDERS }, (_, i) => `bob-${i}`)]) {
        const remote = await server.repo.readStream(TENANT, id);
        const expected = comparable(await serverState(server, id));
        expect(new Set(remote.map((e) => e.eventId)).size).toBe(remote.length);
        expect(comparable(outbox.effectiveState(id))).toEqual(expected);
        expect(comparable(bob.outbox.effectiveState(id))).toEqual(expected);
        expect(store.log.readStream(id, { raw: true }).map((e) => e.eventId)).toEqual(remote.map((e) => e.eventId));
      }
      for (let i = 0; i < ORDERS; i++) {
        const remote = await server.repo.readStream(TENANT, `crash-${i}`);
        const paymentIds = remote.filter((e) => e.eventType === 'PaymentReceived').map((e) => e.data.paymentId);
        // Exactly once each: the order, the worker's payment (rebased onto bob's), bob's payment.
        expect(remote.filter((e) => e.eventType === 'OrderCreated')).toHaveLength(1);
        expect(paymentIds.sort()).toEqual([`pay-bob-${i}`, `pay-crashy-${i}`]);
      }
      // Every worker command is synced exactly once; the rebased payments kept their superseded attempt.
      const statuses = store.db.prepare('SELECT status, COUNT(*) AS n FROM commands GROUP BY status').all();
      expect(statuses).toEqual([{ status: 'synced', n: ORDERS * 2 }]);
      const attempts = store.db
        .prepare("SELECT json_extract(command, '$.type') AS type, attempt, COUNT(*) AS n FROM commands GROUP BY type, attempt ORDER BY type")
        .all();
      expect(attempts).toEqual([
        { type: 'CreateOrder', attempt: 1, n: ORDERS },
        { type: 'RecordPayment', attempt: 2, n: ORDERS },
      ]);
    } finally {
      store.close();
      bob.close();
    }
    // Eight tsx start-ups in a row: bounded, even on a loaded 2-core machine.
  }, 90_000);
});
