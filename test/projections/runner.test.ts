import { afterAll, describe, expect, it } from 'vitest';
import { customerHistoryProjection, defaultProjections, orderListProjection, ProjectionRunner, type Projection } from '../../src/projections/index.js';
import { REFOLD_SNAPSHOT_EVERY } from '../../src/projections/order-list.js';
import type { StoredEvent } from '../../src/protocol/envelope.js';
import { openLocalStore } from '../../src/store/index.js';
import { bruteForceRows, dumpAll, open, orderCreated, paymentReceived, tempDirs } from './support.js';

const tmp = tempDirs();
afterAll(() => tmp.cleanup());

/** Counts events per type; `mark` lets two versions produce visibly different rows. */
function countingProjection(version: number, mark = 'v' + version): Projection {
  return {
    name: 'event_counts',
    version,
    tables: (prefix) => [
      {
        name: `${prefix}event_counts`,
        baseName: 'event_counts',
        key: ['event_type'],
        create: `CREATE TABLE "${prefix}event_counts" (event_type TEXT PRIMARY KEY, n INTEGER NOT NULL, mark TEXT NOT NULL)`,
        indexes: [],
      },
    ],
    apply(ctx, events) {
      const s = ctx.stmt(
        `INSERT INTO "${ctx.prefix}event_counts" (event_type, n, mark) VALUES (?, 1, ?) ON CONFLICT (event_type) DO UPDATE SET n = n + 1`,
      );
      for (const e of events) s.run(e.eventType, mark);
    },
    reset(ctx) {
      ctx.db.exec(`DELETE FROM "${ctx.prefix}event_counts"`);
    },
  };
}

/** Wraps a projection so it throws on orders whose total is 666, until `fixed`. */
function flaky(inner: Projection): Projection & { fixed: boolean } {
  const p = {
    name: inner.name,
    version: inner.version,
    fixed: false,
    tables: (prefix: string) => inner.tables(prefix),
    apply(ctx: Parameters<Projection['apply']>[0], events: readonly StoredEvent[]) {
      inner.apply(ctx, events); // rows are written first: the failure must roll them back
      if (!p.fixed && events.some((e) => e.data.total === 666)) throw new Error('cannot project a total of 666');
    },
    reset: (ctx: Parameters<Projection['reset']>[0]) => inner.reset(ctx),
    refresh: inner.refresh?.bind(inner),
    pendingKeys: inner.pendingKeys?.bind(inner),
  };
  return p;
}

const countOf = (store: ReturnType<typeof open>, table: string) => store.db.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get() as number;

describe('ProjectionRunner', () => {
  it('applies appends inline, in the append transaction, rows and checkpoint together', async () => {
    const store = open(tmp.file());
    const runner = new ProjectionRunner(store.log, defaultProjections());
    await runner.open();
    store.log.append('A-1', [orderCreated('A-1', 'C-1', 1500), paymentReceived('P-1', 500)], { expectedVersion: 'no_stream' });
    expect(runner.status().map((s) => [s.name, s.state, s.position])).toEqual([
      ['order_list', 'live', 2],
      ['customer_history', 'live', 2],
    ]);
    const row = store.db.prepare('SELECT status, paid_amount, version, sync FROM order_list WHERE order_id = ?').get('A-1');
    expect(row).toEqual({ status: 'PARTIALLY_PAID', paid_amount: 500, version: 2, sync: 'synced' });

    // Another hook fails after ours: the whole append rolls back, projection rows included.
    const off = store.log.onAppend(() => {
      throw new Error('later hook fails');
    });
    expect(() => store.log.append('A-2', [orderCreated('A-2', 'C-1', 100)], { expectedVersion: 'no_stream' })).toThrow('later hook fails');
    off();
    expect(countOf(store, 'order_list')).toBe(1);
    expect(runner.position('order_list')).toBe(2);
    expect(store.log.headPosition()).toBe(2);
    store.close();
  });

  it('refolds an order missing from its cache from the log, from the newest snapshot at or below the row, as a rebuild folds it', async () => {
    const store = openLocalStore(tmp.file(), { snapshotEvery: 2 });
    const runner = new ProjectionRunner(store.log, defaultProjections());
    await runner.open();
    store.log.append('S-1', [orderCreated('S-1', 'C-1', 5000)], { expectedVersion: 'no_stream' });
    for (let i = 1; i <= 6; i++) {
      // Empties the projections' caches: this append finds the order only in its row.
      runner.catchUp();
      store.log.append('S-1', [paymentReceived(`P-${i}`, 100 * i)], { expectedVersion: i });
      // A command's load keeps a snapshot (at versions 3 and 6 here).
      if (i % 3 === 2) store.orders.load('S-1');
    }
    expect(store.db.prepare("SELECT group_concat(stream_version) FROM snapshots WHERE stream_id = 'S-1'").pluck().get()).toBe('3,6');
    const row = () => store.db.prepare("SELECT paid_amount, version, confirmed_version, payment_status FROM order_list WHERE order_id = 'S-1'").get();
    expect(row()).toEqual({ paid_amount: 2100, version: 7, confirmed_version: 7, payment_status: 'PARTLY_PAID' });
    const live = dumpAll(store.db);
    await runner.rebuild();
    expect(dumpAll(store.db)).toEqual(live);
    store.close();
  });

  it('keeps a snapshot when a refold replays a long stream, so the next miss starts from it', async () => {
    const store = open(tmp.file());
    const runner = new ProjectionRunner(store.log, defaultProjections());
    await runner.open();
    store.log.append('L-1', [orderCreated('L-1', 'C-1', 100_000), ...Array.from({ length: REFOLD_SNAPSHOT_EVERY }, (_, i) => paymentReceived(`P-${i}`, 1))], {
      expectedVersion: 'no_stream',
    });
    const snapshots = () => store.db.prepare("SELECT group_concat(stream_version) FROM snapshots WHERE stream_id = 'L-1'").pluck().get();
    expect(snapshots()).toBeNull();
    runner.catchUp();
    store.log.append('L-1', [paymentReceived('P-last', 1)], { expectedVersion: REFOLD_SNAPSHOT_EVERY + 1 });
    expect(snapshots()).toBe(String(REFOLD_SNAPSHOT_EVERY + 1));
    runner.catchUp();
    store.log.append('L-1', [paymentReceived('P-after', 1)], { expectedVersion: REFOLD_SNAPSHOT_EVERY + 2 });
    // Two events past the snapshot: no new one.
    expect(snapshots()).toBe(String(REFOLD_SNAPSHOT_EVERY + 1));
    expect(store.db.prepare("SELECT paid_amount FROM order_list WHERE order_id = 'L-1'").pluck().get()).toBe(REFOLD_SNAPSHOT_EVERY + 2);
    const live = dumpAll(store.db);
    await runner.rebuild();
    expect(dumpAll(store.db)).toEqual(live);
    store.close();
  });

  it('ignores re-delivered events (no double counting)', async () => {
    const store = open(tmp.file());
    const runner = new ProjectionRunner(store.log, defaultProjections());
    await runner.open();
    const a = store.log.append('B-1', [orderCreated('B-1', 'C-9', 700), paymentReceived('P-1', 700)], { expectedVersion: 'no_stream' });
    const before = dumpAll(store.db);
    runner.deliver(a.events);
    runner.deliver(a.events.slice(1));
    runner.catchUp();
    expect(dumpAll(store.db)).toEqual(before);
    expect(store.db.prepare('SELECT order_count, lifetime_value FROM customer_totals').get()).toEqual({ order_count: 1, lifetime_value: 700 });
    store.close();
  });

  it('catches up after a restart and with events written by another connection', async () => {
    const file = tmp.file();
    const store = open(file);
    const runner = new ProjectionRunner(store.log, defaultProjections());
    await runner.open();
    store.log.append('C-1', [orderCreated('C-1', 'K-1', 100)], { expectedVersion: 'no_stream' });
    const other = open(file); // no runner: e.g. another process
    other.log.append('C-2', [orderCreated('C-2', 'K-1', 200)], { expectedVersion: 'no_stream' });
    expect(runner.status()[0]).toMatchObject({ state: 'behind', position: 1, head: 2 });
    expect(runner.catchUp()).toBe(1);
    expect(runner.status()[0]).toMatchObject({ state: 'live', position: 2 });
    runner.close();
    store.close();

    other.log.append('C-3', [orderCreated('C-3', 'K-2', 300)], { expectedVersion: 'no_stream' });
    const reopened = open(file);
    const again = new ProjectionRunner(reopened.log, defaultProjections(), { batchSize: 1 });
    expect((await again.open()).rebuilt).toEqual([]);
    expect(again.status().every((s) => s.state === 'live' && s.position === 3)).toBe(true);
    const rows = reopened.db.prepare('SELECT order_id FROM order_list ORDER BY order_id').pluck().all();
    expect(rows).toEqual(bruteForceRows(reopened).map((r) => r.orderId).sort());
    reopened.close();
    other.close();
  });

  it('dead-letters a failing event, stops there visibly, keeps appends working, and resumes on retry', async () => {
    const store = open(tmp.file());
    const list = flaky(orderListProjection());
    const runner = new ProjectionRunner(store.log, [list, customerHistoryProjection()]);
    await runner.open();
    store.log.append('D-1', [orderCreated('D-1', 'K-1', 100)], { expectedVersion: 'no_stream' });
    // The failing order is created in the same batch as a good payment: the good part is kept.
    store.log.append('D-2', [orderCreated('D-2', 'K-1', 666), paymentReceived('P-2', 6)], { expectedVersion: 'no_stream' });
    store.log.append('D-3', [orderCreated('D-3', 'K-2', 300)], { expectedVersion: 'no_stream' });
    expect(store.log.headPosition()).toBe(4);

    const [listStatus, historyStatus] = runner.status();
    expect(listStatus).toMatchObject({ name: 'order_list', state: 'failed', position: 1, head: 4 });
    expect(listStatus!.error).toContain('stopped before position 2');
    expect(listStatus!.error).toContain('cannot project a total of 666');
    expect(historyStatus).toMatchObject({ state: 'live', position: 4 });
    // Rows of the failing event were rolled back with it; later events were not applied (no skipping).
    expect(store.db.prepare('SELECT order_id FROM order_list').pluck().all()).toEqual(['D-1']);
    const letters = runner.deadLetters('order_list');
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ position: 2, eventType: 'OrderCreated', attempts: 1, resolvedAt: null });

    // No loop: catching up while failed changes nothing; retrying without a fix fails again, same place.
    runner.catchUp();
    expect(runner.position('order_list')).toBe(1);
    expect(runner.retry('order_list')).toMatchObject({ state: 'failed', position: 1 });
    expect(runner.deadLetters('order_list')[0]).toMatchObject({ position: 2, attempts: 2 });

    list.fixed = true;
    expect(runner.retry('order_list')).toMatchObject({ state: 'live', position: 4, error: null });
    expect(runner.deadLetters('order_list')).toEqual([]);
    expect(runner.deadLetters('order_list', true)[0]!.resolvedAt).not.toBeNull();
    expect(store.db.prepare('SELECT order_id FROM order_list ORDER BY order_id').pluck().all()).toEqual(['D-1', 'D-2', 'D-3']);
    expect(store.db.prepare("SELECT paid_amount FROM order_list WHERE order_id = 'D-2'").pluck().get()).toBe(6);
    expect(() => runner.retry('nope')).toThrow(/no projection named "nope"/);
    store.close();
  });

  it('rebuilds a projection on open when its version is bumped', async () => {
    const file = tmp.file();
    const store = open(file);
    const v1 = new ProjectionRunner(store.log, [countingProjection(1)]);
    await v1.open();
    store.log.append('E-1', [orderCreated('E-1', 'K-1', 100), paymentReceived('P-1', 50)], { expectedVersion: 'no_stream' });
    expect(store.db.prepare('SELECT event_type, n, mark FROM event_counts ORDER BY event_type').all()).toEqual([
      { event_type: 'OrderCreated', n: 1, mark: 'v1' },
      { event_type: 'PaymentReceived', n: 1, mark: 'v1' },
    ]);
    store.close();

    const reopened = open(file);
    const progress: number[] = [];
    const v2 = new ProjectionRunner(reopened.log, [countingProjection(2)], { onRebuildProgress: (p) => progress.push(p.done) });
    expect((await v2.open()).rebuilt).toEqual(['event_counts']);
    expect(v2.status()[0]).toMatchObject({ version: 2, state: 'live', position: 2 });
    expect(reopened.db.prepare('SELECT event_type, n, mark FROM event_counts ORDER BY event_type').all()).toEqual([
      { event_type: 'OrderCreated', n: 1, mark: 'v2' },
      { event_type: 'PaymentReceived', n: 1, mark: 'v2' },
    ]);
    expect(progress.at(-1)).toBe(2);
    // Same version again: no rebuild.
    expect((await new ProjectionRunner(reopened.log, [countingProjection(2)]).open()).rebuilt).toEqual([]);
    reopened.close();
  });
});
