import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  defaultProjections,
  driftCheck,
  OrderQueries,
  ProjectionRunner,
  RebuildAbortedError,
  type Projection,
  type RebuildProgress,
} from '../../src/projections/index.js';
import { appendSteps, dumpAll, incremental as incrementalIn, open, orderCreated, stepArb, tempDirs, type Step } from './support.js';

const tmp = tempDirs();
afterAll(() => tmp.cleanup());

/** A store with `steps` applied inline by a runner. */
const incremental = (steps: readonly Step[], file = tmp.file()) => incrementalIn(file, steps);

const manySteps = (n: number): Step[] =>
  Array.from({ length: n }, (_, i) => ({
    order: i % 40,
    customer: i % 7,
    kind: (['create', 'pay', 'reserve', 'ship', 'cancel', 'refund'] as const)[(i * 7) % 6]!,
    amount: 100 + ((i * 37) % 900),
    day: 1 + (i % 4),
    currency: i % 5 === 0 ? 'EUR' : 'USD',
  }));

describe('rebuild by replay', () => {
  it('rebuilding from scratch (small batches, tiny cache) equals the incremental view', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 80 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 5 }), async (steps, batchSize, cacheSize) => {
        const { store, runner } = await incremental(steps);
        try {
          const live = dumpAll(store.db);
          const result = await runner.rebuild(undefined, { batchSize, cacheSize });
          expect(result.eventsReplayed).toBe(steps.length);
          expect(result.position).toBe(steps.length);
          expect(dumpAll(store.db)).toEqual(live);
          expect(runner.status().every((s) => s.state === 'live' && s.position === steps.length)).toBe(true);
        } finally {
          store.close();
        }
      }),
      { numRuns: 20 },
    );
  });

  it('a rebuild aborted after any page and resumed from its saved checkpoint equals the incremental view', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArb, { minLength: 2, maxLength: 80 }),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 79 }),
        async (steps, batchSize, cacheSize, stopAt) => {
          const { store, runner } = await incremental(steps);
          try {
            const live = dumpAll(store.db);
            const abort = new AbortController();
            await runner
              .rebuild(undefined, { batchSize, cacheSize, progressEveryMs: 0, signal: abort.signal, onProgress: (p) => void (p.done >= stopAt && abort.abort()) })
              .catch((err: unknown) => {
                if (!(err instanceof RebuildAbortedError)) throw err;
              });
            // Empty when the first run finished before the abort was seen: the second one starts over.
            const saved = store.db.prepare('SELECT position FROM projection_rebuilds').pluck().all() as number[];
            const result = await runner.rebuild(undefined, { batchSize, cacheSize });
            expect(result.eventsReplayed).toBe(steps.length - (saved.length > 0 ? Math.min(...saved) : 0));
            expect(dumpAll(store.db)).toEqual(live);
          } finally {
            store.close();
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('blue/green: readers on another connection see the old view throughout, then the new one; appends during the rebuild are kept', async () => {
    const { store, runner, file } = await incremental(manySteps(300));
    const reader = open(file);
    const readerQueries = new OrderQueries(reader.db);
    const before = await readerQueries.listOrders({ limit: 500 });
    expect(before.total).toBe(40);
    const progress: RebuildProgress[] = [];
    let appended = false;
    const result = await runner.rebuild(undefined, {
      batchSize: 25,
      progressEveryMs: 0,
      onProgress: (p) => {
        progress.push(p);
        if (p.finished) return;
        // Mid-rebuild: the old view is complete and readable from another connection.
        const shadowRows = store.db.prepare('SELECT COUNT(*) FROM __rebuild_order_list').pluck().get() as number;
        expect(shadowRows).toBeGreaterThan(0);
        const now = readerQueries.listOrdersNow({ status: 'ALL', sort: 'updatedAt', direction: 'desc', limit: 500, offset: 0 });
        expect(now.total).toBe(appended ? 41 : 40);
        expect(runner.status().map((s) => s.state)).toEqual(['rebuilding', 'rebuilding']);
        if (!appended && p.done > 150) {
          store.log.append('NEW-1', [orderCreated('NEW-1', 'K-9', 5)], { expectedVersion: 'no_stream' });
          appended = true;
        }
      },
    });
    expect(appended).toBe(true);
    expect(result.position).toBe(301);
    const after = await readerQueries.listOrders({ limit: 500 });
    expect(after.total).toBe(41);
    expect(after.position).toBe(301);
    expect(after.rows.filter((r) => r.orderId !== 'NEW-1')).toEqual(before.rows);
    expect(store.db.prepare("SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE '__rebuild_%'").pluck().get()).toBe(0);

    // Progress is monotone and ends finished at the head.
    const dones = progress.map((p) => p.done);
    expect(dones).toEqual([...dones].sort((a, b) => a - b));
    expect(progress.at(-1)).toMatchObject({ finished: true, etaMs: 0 });
    expect(progress.some((p) => p.ratePerSec > 0 && p.total >= 300)).toBe(true);
    reader.close();
    store.close();
  });

  it('an interrupted rebuild leaves the live view intact and resumes from its checkpoint on the next open', async () => {
    const { store, runner, file } = await incremental(manySteps(200));
    const live = dumpAll(store.db);
    const abort = new AbortController();
    await expect(
      runner.rebuild(undefined, {
        batchSize: 20,
        progressEveryMs: 0,
        signal: abort.signal,
        onProgress: (p) => {
          if (p.done >= 100) abort.abort();
        },
      }),
    ).rejects.toThrow(RebuildAbortedError);
    expect(dumpAll(store.db)).toEqual(live);
    expect(runner.status()).toMatchObject([
      { state: 'rebuilding', position: 200 },
      { state: 'rebuilding', position: 200 },
    ]);
    const saved = store.db.prepare('SELECT projection, position FROM projection_rebuilds ORDER BY projection').all();
    expect(saved).toEqual([
      { projection: 'customer_history', position: 100 },
      { projection: 'order_list', position: 100 },
    ]);
    runner.close();
    store.close();

    // "Restart": the next open finds the interrupted rebuild and resumes it.
    const reopened = open(file);
    const again = new ProjectionRunner(reopened.log, defaultProjections(), {});
    const result = await again.rebuild(undefined, { batchSize: 20 });
    expect(result.eventsReplayed).toBe(100);
    expect(dumpAll(reopened.db)).toEqual(live);
    expect((await again.open()).rebuilt).toEqual([]);
    reopened.close();
  });

  it('open() resumes an interrupted rebuild', async () => {
    const { store, runner, file } = await incremental(manySteps(60));
    const live = dumpAll(store.db);
    const abort = new AbortController();
    abort.abort();
    await expect(runner.rebuild('order_list', { signal: abort.signal })).rejects.toThrow(RebuildAbortedError);
    store.close();
    const reopened = open(file);
    expect((await new ProjectionRunner(reopened.log, defaultProjections()).open()).rebuilt).toEqual(['order_list']);
    expect(dumpAll(reopened.db)).toEqual(live);
    reopened.close();
  });

  it('drift check finds nothing on a clean view and reports injected differences', async () => {
    const { store, runner } = await incremental(manySteps(120));
    const clean = await driftCheck(runner);
    expect(clean.map((r) => [r.projection, r.differences.length, r.position])).toEqual([
      ['order_list', 0, 120],
      ['customer_history', 0, 120],
    ]);
    expect(clean[0]!.checkedRows).toBeGreaterThan(40);

    const victim = store.db.prepare('SELECT order_id, status FROM order_list ORDER BY order_id LIMIT 1').get() as { order_id: string; status: string };
    store.db.prepare("UPDATE order_list SET status = 'SHIPPED', paid_amount = -1 WHERE order_id = ?").run(victim.order_id);
    store.db.prepare('DELETE FROM customer_totals WHERE customer_id = ?').run('CUST-3');
    store.db
      .prepare(`INSERT INTO customer_orders (order_id, customer_id, created_at, lifetime_value, last_activity_at) VALUES ('GHOST', 'CUST-1', '2026-01-01T00:00:00.000Z', 0, '2026-01-01T00:00:00.000Z')`)
      .run();
    const [list, history] = await driftCheck(runner);
    expect(list!.differences).toEqual([
      {
        key: `order_list:${victim.order_id}`,
        kind: 'changed',
        live: expect.objectContaining({ status: 'SHIPPED', paid_amount: -1 }),
        rebuilt: expect.objectContaining({ status: victim.status }),
      },
    ]);
    expect(history!.differences.map((d) => [d.kind, d.key])).toEqual([
      ['extra', 'customer_orders:GHOST'],
      ['missing', 'customer_totals:CUST-3'],
    ]);
    expect(store.db.prepare("SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE '__drift_%'").pluck().get()).toBe(0);

    // A rebuild repairs it.
    await runner.rebuild();
    expect((await driftCheck(runner)).every((r) => r.differences.length === 0)).toBe(true);
    store.close();
  });
  it('upgrading the customer history from v2 rebuilds its order rows with their part of the totals; the view equals the inline one', async () => {
    const { store, file } = await incremental(manySteps(150));
    const inline = dumpAll(store.db);
    // A v2 view: the two-column link table, registered with the projection's version 2.
    store.db.exec(`DROP TABLE customer_orders; CREATE TABLE customer_orders (order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL) WITHOUT ROWID;
      CREATE INDEX customer_orders__customer ON customer_orders (customer_id, order_id)`);
    store.db.exec(`UPDATE customer_totals SET lifetime_value = -1`);
    store.db.prepare("UPDATE projection_checkpoints SET version = 2 WHERE name = 'customer_history'").run();
    store.close();

    const reopened = open(file);
    const runner = new ProjectionRunner(reopened.log, defaultProjections());
    await runner.open();
    expect(runner.status().find((s) => s.name === 'customer_history')).toMatchObject({ version: 3, state: 'live' });
    expect(reopened.db.prepare("SELECT name FROM pragma_table_info('customer_orders')").pluck().all()).toEqual([
      'order_id',
      'customer_id',
      'created_at',
      'lifetime_value',
      'last_activity_at',
    ]);
    expect(dumpAll(reopened.db)).toEqual(inline);
    reopened.close();
  });

  it('upgrading the customer history from v1 drops its copy of the log; the activity feed reads the log and agrees with it', async () => {
    const { store, file } = await incremental(manySteps(120));
    // A v1 view: the per-event activity table, registered with the projection.
    store.db.exec(`CREATE TABLE customer_activity (position INTEGER PRIMARY KEY, customer_id TEXT NOT NULL, order_id TEXT NOT NULL,
      event_type TEXT NOT NULL, amount INTEGER, recorded_at TEXT NOT NULL)`);
    store.db
      .prepare("UPDATE projection_checkpoints SET version = 1, tables = ? WHERE name = 'customer_history'")
      .run(JSON.stringify(['customer_activity', 'customer_orders', 'customer_totals']));
    store.close();

    const reopened = open(file);
    const runner = new ProjectionRunner(reopened.log, defaultProjections());
    await runner.open();
    expect(reopened.db.prepare("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'customer_activity'").pluck().get()).toBe(0);
    const q = new OrderQueries(reopened.db, { runner });
    const history = await q.customerHistory({ customerId: 'CUST-3', limit: 500 });
    const mine = new Set(history.orders.map((o) => o.orderId));
    const expected = [...reopened.log.readAll()].filter((e) => mine.has(e.streamId)).reverse();
    expect(history.activity.length).toBeGreaterThan(0);
    expect(history.activity).toEqual(
      expected.map((e) => ({
        orderId: e.streamId,
        eventType: e.eventType,
        amount: e.eventType === 'OrderCreated' ? (e.data.total as number) : typeof e.data.amount === 'number' ? e.data.amount : null,
        recordedAt: e.recordedAt,
        position: e.position,
      })),
    );
    // Paging: offset and limit walk the same feed.
    const page2 = await q.customerHistory({ customerId: 'CUST-3', limit: 5, offset: 5 });
    expect(page2.activity).toEqual(history.activity.slice(5, 10));
    reopened.close();
  });
  it('a fed rebuild folds the appends as they are written (no page read back), resumes from the log after a gap, and equals a rebuild that reads the whole log', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 60 }), fc.integer({ min: 0, max: 60 }), async (steps, gapAt) => {
        const file = tmp.file();
        const store = open(file);
        const runner = new ProjectionRunner(store.log, defaultProjections());
        await runner.open();
        runner.close();
        const fed = runner.feedRebuild()!;
        // Count what the rebuild reads back from the log.
        let readBack = 0;
        const page = runner.pageReader.page.bind(runner.pageReader);
        runner.pageReader.page = (after, limit) => {
          const events = page(after, limit);
          readBack += events.length;
          return events;
        };
        const split = Math.min(gapAt, steps.length);
        appendSteps(store, steps.slice(0, split));
        // Another connection appends the rest: this connection's feed never sees them, finish() reads them.
        if (split < steps.length) {
          const other = open(file);
          appendSteps(other, steps, split);
          other.close();
        }
        const result = await fed.finish();
        runner.attach();
        try {
          expect(result.eventsReplayed).toBe(steps.length);
          expect(readBack).toBe(steps.length - split);
          expect(runner.status().every((st) => st.state === 'live' && st.position === steps.length)).toBe(true);
          // The same views as a rebuild that reads the whole log (itself held to the incremental view above).
          const viaFeed = dumpAll(store.db);
          await runner.rebuild();
          expect(dumpAll(store.db)).toEqual(viaFeed);
        } finally {
          store.close();
        }
      }),
      { numRuns: 20 },
    );
  });

  it('a projection that throws during a fed rebuild: the appends stand, finish() fails as a rebuild does, and the next rebuild resumes', async () => {
    let broken = true;
    const fragile: Projection = {
      name: 'fragile',
      version: 1,
      tables: (prefix) => [{ name: `${prefix}fragile`, baseName: 'fragile', key: ['n'], create: `CREATE TABLE "${prefix}fragile" (n INTEGER PRIMARY KEY)`, indexes: [] }],
      apply: (ctx, events) => {
        for (const e of events) {
          if (broken && e.position === 7) throw new Error('fragile projection cannot read event 7');
          ctx.db.prepare(`INSERT INTO "${ctx.prefix}fragile" (n) VALUES (?)`).run(e.position);
        }
      },
      reset: (ctx) => void ctx.db.prepare(`DELETE FROM "${ctx.prefix}fragile"`).run(),
    };
    const store = open(tmp.file());
    const runner = new ProjectionRunner(store.log, [...defaultProjections(), fragile]);
    await runner.open();
    runner.close();
    const fed = runner.feedRebuild()!;
    appendSteps(store, manySteps(20));
    expect(store.log.headPosition()).toBe(20);
    await expect(fed.finish()).rejects.toThrow(/cannot read event 7/);
    // The failed batch was rolled back from the shadows only; their checkpoints stay before it.
    const saved = store.db.prepare('SELECT projection, position FROM projection_rebuilds ORDER BY projection').all() as { position: number }[];
    expect(saved.every((r) => r.position < 7)).toBe(true);
    broken = false;
    const result = await runner.rebuild();
    runner.attach();
    expect(result.position).toBe(20);
    expect(store.db.prepare('SELECT COUNT(*) FROM fragile').pluck().get()).toBe(20);
    expect(runner.status().every((st) => st.state === 'live' && st.position === 20)).toBe(true);
    store.close();
  });
  it('rebuilds run one at a time (they share the shadow tables): two at once, or one during a fed rebuild, each end with the incremental view', async () => {
    const { store, runner } = await incremental(manySteps(300));
    const live = dumpAll(store.db);
    // Small pages: each yields to the event loop, so the two would interleave.
    const [a, b] = await Promise.all([runner.rebuild(undefined, { batchSize: 20 }), runner.rebuild(undefined, { batchSize: 20 })]);
    expect([a.eventsReplayed, b.eventsReplayed]).toEqual([300, 300]);
    expect(dumpAll(store.db)).toEqual(live);

    // While a rebuild runs, a first sync cannot feed one: it rebuilds after it instead.
    const running = runner.rebuild(undefined, { batchSize: 20 });
    expect(runner.feedRebuild()).toBeNull();
    await running;

    // A rebuild asked for during a fed rebuild waits for it to finish.
    runner.close();
    const fed = runner.feedRebuild()!;
    expect(fed).not.toBeNull();
    let waited = true;
    const after = runner.rebuild(undefined, { batchSize: 20 }).then((r) => {
      waited = false;
      return r;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(waited).toBe(true);
    await fed.finish();
    expect((await after).eventsReplayed).toBe(300);
    runner.attach();
    expect(dumpAll(store.db)).toEqual(live);
    store.close();
  });
});
