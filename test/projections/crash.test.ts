import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultProjections, ProjectionRunner } from '../../src/projections/index.js';
import { appendSteps, bruteForceRows, open, tempDirs, type Step } from './support.js';

const tmp = tempDirs();
afterAll(() => tmp.cleanup());
const WORKER = new URL('./fixtures/catchup-worker.ts', import.meta.url).pathname;

const steps: Step[] = Array.from({ length: 60 }, (_, i) => ({
  order: i % 12,
  customer: i % 4,
  kind: (['create', 'pay', 'reserve', 'ship', 'cancel', 'refund'] as const)[(i * 5) % 6]!,
  amount: 100 + i,
  day: 1 + (i % 3),
  currency: 'USD',
}));

describe('crash between projection rows and checkpoint', () => {
  it('a process killed after writing rows but before its checkpoint loses both; catch-up applies each event once', async () => {
    const file = tmp.file();
    const setup = open(file);
    const first = new ProjectionRunner(setup.log, defaultProjections());
    await first.open(); // empty log: live tables at position 0
    first.close();
    appendSteps(setup, steps); // no runner attached: the projections are behind
    setup.close();

    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('ROWS_WRITTEN')) resolve();
      });
      child.on('exit', () => reject(new Error(`worker exited before the crash point: ${out} ${err}`)));
    });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const store = open(file);
    const checkpoints = store.db.prepare('SELECT name, position FROM projection_checkpoints ORDER BY name').all();
    // Two batches of 10 committed; the third died between the rows and the checkpoint.
    expect(checkpoints).toEqual([
      { name: 'customer_history', position: 20 },
      { name: 'order_list', position: 20 },
    ]);
    // Every event bumps one order's version by one: the rows reflect exactly 20 events.
    expect(store.db.prepare('SELECT SUM(version) FROM order_list').pluck().get()).toBe(20);
    expect(store.db.prepare('SELECT COUNT(*) FROM customer_orders').pluck().get()).toBe(
      store.db.prepare("SELECT COUNT(*) FROM events WHERE position <= 20 AND event_type = 'OrderCreated'").pluck().get(),
    );

    const runner = new ProjectionRunner(store.log, defaultProjections());
    await runner.open();
    expect(runner.status().every((s) => s.state === 'live' && s.position === 60)).toBe(true);
    const rows = store.db
      .prepare('SELECT order_id, status, paid_amount, version FROM order_list ORDER BY order_id')
      .all()
      .map((r) => r as { order_id: string; status: string; paid_amount: number; version: number });
    expect(rows).toEqual(
      bruteForceRows(store)
        .sort((a, b) => (a.orderId < b.orderId ? -1 : 1))
        .map((r) => ({ order_id: r.orderId, status: r.status, paid_amount: r.paidAmount, version: r.version })),
    );
    expect(store.db.prepare('SELECT SUM(order_count) FROM order_daily_totals').pluck().get()).toBe(12);
    store.close();
  });
});
