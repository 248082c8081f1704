import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  customerHistoryProjection,
  defaultProjections,
  driftCheck,
  ProjectionRunner,
  RebuildAbortedError,
  type PendingEvent,
  type PendingSource,
  type SyncBadge,
} from '../../src/projections/index.js';
import { UnconfirmedCache } from '../../src/projections/unconfirmed-cache.js';
import { FAIL_AT, failingOrderList, resultReadingOrderList, unsummarizedOrderList } from './fixtures/portable-projections.js';
import { appendSteps, dumpAll, incremental as incrementalIn, open, orderCreated, stepArb, tempDirs, type Step } from './support.js';

const tmp = tempDirs();
afterAll(() => tmp.cleanup());

/** A store with `steps` applied inline by a runner, in one transaction. */
const incremental = (steps: readonly Step[], file = tmp.file()) => incrementalIn(file, steps, { oneTransaction: true });

const manySteps = (n: number): Step[] =>
  Array.from({ length: n }, (_, i) => ({
    order: (i * 13) % 300,
    customer: i % 11,
    kind: (['create', 'pay', 'reserve', 'ship', 'cancel', 'refund'] as const)[(i * 7) % 6]!,
    amount: 100 + ((i * 37) % 900),
    day: 1 + (i % 4),
    currency: i % 5 === 0 ? 'EUR' : 'USD',
  }));

describe('UnconfirmedCache', () => {
  it('keeps what the bound evicts until the batch that may have written it is confirmed', () => {
    const cache = new UnconfirmedCache<number>(2);
    cache.batch = 1;
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3); // evicts a, written in batch 1
    cache.batch = 2;
    cache.set('d', 4); // evicts b
    expect(cache.get('a')).toBe(1); // still there: batch 1 is not confirmed; back in the LRU (evicts c)
    cache.confirm(1);
    expect(cache.get('b')).toBe(2); // evicted in batch 2, unconfirmed
    cache.confirm(2);
    expect(cache.get('c')).toBeUndefined(); // evicted in batch 2 and confirmed: read it back from the table
    cache.delete('b');
    expect(cache.get('b')).toBeUndefined();
  });
});

describe('rebuild folded in worker threads', () => {
  it('equals the incremental view for any workload, batch size, cache size and number of workers', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArb, { minLength: 1, maxLength: 80 }),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 3 }),
        async (steps, batchSize, cacheSize, workers) => {
          const { store, runner } = await incremental(steps);
          try {
            const live = dumpAll(store.db);
            const result = await runner.rebuild(undefined, { batchSize, cacheSize, worker: 'always', workers });
            expect(result.folding).toEqual({ worker: true, note: null });
            expect(result.eventsReplayed).toBe(steps.length);
            expect(dumpAll(store.db)).toEqual(live);
            expect(runner.status().every((s) => s.state === 'live' && s.position === steps.length)).toBe(true);
          } finally {
            store.close();
          }
        },
      ),
      { numRuns: 8 },
    );
  });

  it('by default folds on this thread until the workers are loaded, then hands them the rest; a drift check through workers finds no drift', async () => {
    const { store, runner } = await incremental(manySteps(20_000));
    try {
      const live = dumpAll(store.db);
      // Small pages: the thread is still folding when the workers are loaded.
      const result = await runner.rebuild(undefined, { workerMinEvents: 10_000, batchSize: 10 });
      expect(result.eventsReplayed).toBe(20_000);
      expect(dumpAll(store.db)).toEqual(live);
      // Which thread folded the last page depends on how fast the workers load; both paths are correct.
      if (!result.folding.worker) expect(result.folding.note).toBe('the log was folded before the workers were loaded');
      const drift = await driftCheck(runner, undefined, { worker: 'always', workers: 2, batchSize: 5000 });
      expect(drift.map((r) => [r.projection, r.differences.length, r.checkedRows > 0])).toEqual([
        ['order_list', 0, true],
        ['customer_history', 0, true],
      ]);
      expect(store.db.prepare("SELECT name FROM sqlite_schema WHERE name LIKE '__drift_%'").all()).toEqual([]);
    } finally {
      store.close();
    }
  });

  it('folds on the calling thread when a worker cannot help, and says why', async () => {
    const small = await incremental(manySteps(200));
    try {
      expect((await small.runner.rebuild()).folding).toEqual({ worker: false, note: 'fewer than 300000 events to replay' });
      expect((await small.runner.rebuild(undefined, { worker: 'never' })).folding.worker).toBe(false);
    } finally {
      small.store.close();
    }
    const memory = open(':memory:');
    try {
      const runner = new ProjectionRunner(memory.log, defaultProjections());
      await runner.open();
      memory.log.append('ORD-1', [orderCreated('ORD-1', 'C-1', 100)], { expectedVersion: 'no_stream' });
      const result = await runner.rebuild(undefined, { worker: 'always' });
      expect(result.folding).toEqual({ worker: false, note: 'the database is in memory' });
      expect(memory.db.prepare('SELECT COUNT(*) FROM order_list').pluck().get()).toBe(1);
    } finally {
      memory.close();
    }
  });

  it('a worker that fails hands over to the thread at the last committed batch, which fails the rebuild as it would alone', async () => {
    const file = tmp.file();
    const { store } = await incremental(manySteps(3000), file);
    const before = dumpAll(store.db);
    try {
      const runner = new ProjectionRunner(store.log, [failingOrderList(), customerHistoryProjection()]);
      const viaWorkers = await runner.rebuild(undefined, { worker: 'always', workers: 2, batchSize: 100 }).catch((e: unknown) => e);
      expect(viaWorkers).toBeInstanceOf(Error);
      expect((viaWorkers as Error).message).toBe(`cannot fold event ${FAIL_AT}`);
      // The live view is untouched; the shadows' checkpoints stand at the last good page.
      expect(dumpAll(store.db)).toEqual(before);
      const saved = () => store.db.prepare('SELECT position FROM projection_rebuilds ORDER BY projection').pluck().all() as number[];
      expect(saved()).toEqual([1200, 1200]);
      // On one thread alone (resuming there) it fails the same way at the same place.
      const alone = await runner.rebuild(undefined, { worker: 'never', batchSize: 100 }).catch((e: unknown) => e);
      expect((alone as Error).message).toBe((viaWorkers as Error).message);
      expect(saved()).toEqual([1200, 1200]);
    } finally {
      store.close();
    }
  });

  it('a projection that reads the result of a write stops its worker; the rebuild ends on the thread with the same view', async () => {
    const { store } = await incremental(manySteps(3000));
    try {
      const live = dumpAll(store.db);
      const runner = new ProjectionRunner(store.log, [resultReadingOrderList(), customerHistoryProjection()]);
      const result = await runner.rebuild(undefined, { worker: 'always', workers: 2, batchSize: 500 });
      expect(result.folding.worker).toBe(true);
      expect(result.folding.note).toMatch(/cannot read the result of a write/);
      expect(result.eventsReplayed).toBe(3000);
      expect(dumpAll(store.db)).toEqual(live);
    } finally {
      store.close();
    }
  });

  it('an abort stops the workers; the next rebuild resumes from the committed batches', async () => {
    const { store, runner } = await incremental(manySteps(20_000));
    try {
      const live = dumpAll(store.db);
      const abort = new AbortController();
      const stopped = await runner
        .rebuild(undefined, {
          worker: 'always',
          workers: 2,
          batchSize: 1000,
          progressEveryMs: 0,
          signal: abort.signal,
          onProgress: (p) => void (p.done >= 5000 && abort.abort()),
        })
        .catch((e: unknown) => e);
      expect(stopped).toBeInstanceOf(RebuildAbortedError);
      const saved = store.db.prepare('SELECT position FROM projection_rebuilds').pluck().all() as number[];
      expect(saved.length).toBe(2);
      expect(Math.min(...saved)).toBeGreaterThanOrEqual(5000);
      const result = await runner.rebuild(undefined, { worker: 'always', workers: 2, batchSize: 1000 });
      expect(result.eventsReplayed).toBe(20_000 - Math.min(...saved));
      expect(dumpAll(store.db)).toEqual(live);
    } finally {
      store.close();
    }
  });

  it('events appended while the workers fold, or after their last batch, are in the swapped-in view; the aggregates come from a worker summary plus the rows the swap changed', async () => {
    const steps = manySteps(12_000);
    const { store, runner } = await incremental(steps.slice(0, 10_000));
    try {
      let appended = 0;
      const result = await runner.rebuild(undefined, {
        worker: 'always',
        workers: 2,
        batchSize: 1000,
        progressEveryMs: 0,
        onProgress: (p) => {
          // Once while the workers fold (this thread folds it after them), once after the last
          // page (the swap catches it up, after the summary's snapshot).
          if (appended === 0 && !p.finished) {
            store.db.transaction(() => appendSteps(store, steps.slice(0, 11_000), 10_000))();
            appended = 1;
          } else if (appended === 1 && p.finished) {
            store.db.transaction(() => appendSteps(store, steps, 11_000))();
            appended = 2;
          }
        },
      });
      expect(appended).toBe(2);
      expect(result.position).toBe(12_000);
      expect(result.summarized).toBe(true);
      const swapped = dumpAll(store.db);
      expect(swapped.order_list).toHaveLength(300);
      const alone = await runner.rebuild(undefined, { worker: 'never' });
      expect(alone.summarized).toBe(false);
      expect(swapped).toEqual(dumpAll(store.db));
    } finally {
      store.close();
    }
  });

  it('a summary the worker cannot give is derived by the swap itself, with the same view', async () => {
    const { store } = await incremental(manySteps(3000));
    try {
      const live = dumpAll(store.db);
      const runner = new ProjectionRunner(store.log, [unsummarizedOrderList(), customerHistoryProjection()]);
      const result = await runner.rebuild(undefined, { worker: 'always', workers: 2, batchSize: 500 });
      expect(result.folding).toEqual({ worker: true, note: null });
      expect(result.summarized).toBe(false);
      expect(dumpAll(store.db)).toEqual(live);
    } finally {
      store.close();
    }
  });

  it('a fed rebuild finished by workers: the thread forgets the states it cached before them', async () => {
    const file = tmp.file();
    const steps = manySteps(3500);
    const store = open(file);
    const other = open(file);
    try {
      const runner = new ProjectionRunner(store.log, defaultProjections());
      await runner.open();
      runner.close();
      const fed = runner.feedRebuild()!;
      // Fed on this thread (its caches now hold every order's state at 1000)...
      store.db.transaction(() => appendSteps(store, steps.slice(0, 1000)))();
      // ...then written by another connection, so the workers fold them...
      other.db.transaction(() => appendSteps(other, steps.slice(0, 3000), 1000))();
      // ...and appended while they fold: this thread catches them up, from the rows, not its caches.
      let appended = false;
      const result = await fed.finish({
        worker: 'always',
        workers: 2,
        batchSize: 200,
        progressEveryMs: 0,
        onProgress: () => {
          if (appended) return;
          appended = true;
          store.db.transaction(() => appendSteps(store, steps, 3000))();
        },
      });
      runner.attach();
      expect(result.folding).toEqual({ worker: true, note: null });
      expect(result.position).toBe(3500);
      const rebuilt = dumpAll(store.db);
      await runner.rebuild(undefined, { worker: 'never' });
      expect(rebuilt).toEqual(dumpAll(store.db));
    } finally {
      other.close();
      store.close();
    }
  });

  it('orders the outbox overlays show their overlay after a worker rebuild', async () => {
    const { store, runner } = await incremental(manySteps(3000));
    try {
      const pending = new Map<string, PendingEvent[]>([['ORD-007', [{ type: 'PaymentReceived', data: { paymentId: 'OFF-P', amount: 5 }, recordedAt: '2026-01-09T00:00:00.000Z' }]]]);
      const rejected = new Set(['ORD-010']);
      const source: PendingSource = {
        pendingEvents: (id) => pending.get(id) ?? [],
        badge: (id): SyncBadge => (rejected.has(id) ? 'rejected' : pending.has(id) ? 'pending' : 'synced'),
        overlaid: () => [...pending.keys(), ...rejected],
      };
      // The stored overlay is declared current, so the live rows do not show it: only a rebuild
      // that asks the source which orders it overlays can.
      runner.setPendingSource(source, { current: true });
      const alone = await runner.rebuild(undefined, { worker: 'never' });
      expect(alone.folding.worker).toBe(false);
      const onThread = dumpAll(store.db);
      const result = await runner.rebuild(undefined, { worker: 'always', workers: 2, batchSize: 500 });
      expect(result.folding).toEqual({ worker: true, note: null });
      // The overlaid orders changed in the swap, after the worker's snapshot: their rows are added as they are then.
      expect(result.summarized).toBe(true);
      expect(dumpAll(store.db)).toEqual(onThread);
      const rows = store.db.prepare("SELECT order_id, sync, pending_count FROM order_list WHERE sync <> 'synced' ORDER BY order_id").all();
      expect(rows).toEqual([
        { order_id: 'ORD-007', sync: 'pending', pending_count: 1 },
        { order_id: 'ORD-010', sync: 'rejected', pending_count: 0 },
      ]);
      // A pending source that cannot list its overlaid orders keeps the rebuild on the thread.
      runner.setPendingSource({ pendingEvents: source.pendingEvents, badge: source.badge }, { current: true });
      expect((await runner.rebuild(undefined, { worker: 'always' })).folding).toEqual({
        worker: false,
        note: 'the pending source cannot list its overlaid orders',
      });
    } finally {
      store.close();
    }
  });
});
