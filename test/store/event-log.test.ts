import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { EventMetadata } from '../../src/protocol/envelope.js';
import { ConcurrencyError, IdempotencyConflictError, InvalidEventError, openLocalStore } from '../../src/store/index.js';
import { created, paid, reserved, shipped } from '../helpers/events.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
let n = 0;
const fresh = () => openLocalStore(tmp.file(`log-${++n}.sqlite`));

describe('expected version', () => {
  it('no_stream accepts only a new stream', () => {
    const s = fresh();
    const r = s.log.append('O-1', [created('O-1')], { expectedVersion: 'no_stream' });
    expect([r.fromVersion, r.toVersion, r.positions]).toEqual([1, 1, [1]]);
    const err = catchError(() => s.log.append('O-1', [paid(100)], { expectedVersion: 'no_stream' }));
    expect(err).toBeInstanceOf(ConcurrencyError);
    expect(err).toMatchObject({ streamId: 'O-1', expectedVersion: 'no_stream', currentVersion: 1 });
    expect(s.log.streamVersion('O-1')).toBe(1);
    s.close();
  });

  it('stream_exists refuses a missing stream and accepts an existing one', () => {
    const s = fresh();
    expect(catchError(() => s.log.append('O-2', [created('O-2')], { expectedVersion: 'stream_exists' }))).toMatchObject({
      name: 'ConcurrencyError',
      expectedVersion: 'stream_exists',
      currentVersion: 0,
    });
    expect(s.log.headPosition()).toBe(0);
    s.log.append('O-2', [created('O-2')], { expectedVersion: 'any' });
    expect(s.log.append('O-2', [paid(100)], { expectedVersion: 'stream_exists' }).toVersion).toBe(2);
    s.close();
  });

  it('an exact number must equal the current version', () => {
    const s = fresh();
    s.log.append('O-3', [created('O-3')], { expectedVersion: 0 });
    expect(catchError(() => s.log.append('O-3', [paid(1)], { expectedVersion: 0 }))).toMatchObject({ expectedVersion: 0, currentVersion: 1 });
    expect(catchError(() => s.log.append('O-3', [paid(1)], { expectedVersion: 2 }))).toMatchObject({ expectedVersion: 2, currentVersion: 1 });
    const ok = s.log.append('O-3', [paid(1), paid(2)], { expectedVersion: 1 });
    expect([ok.fromVersion, ok.toVersion]).toEqual([2, 3]);
    s.close();
  });

  it('any appends whatever the version', () => {
    const s = fresh();
    s.log.append('O-4', [created('O-4')], { expectedVersion: 'any' });
    expect(s.log.append('O-4', [paid(5)], { expectedVersion: 'any' }).toVersion).toBe(2);
    s.close();
  });

  it('a batch is atomic: one bad event writes nothing', () => {
    const s = fresh();
    const bad = { ...paid(10), data: { paymentId: 'P-1', amount: -3 } };
    expect(() => s.log.append('O-5', [created('O-5'), bad], { expectedVersion: 'no_stream' })).toThrow(InvalidEventError);
    expect(s.log.headPosition()).toBe(0);
    s.close();
  });
});

describe('append-only in the database', () => {
  it('rejects UPDATE and DELETE on stored events, from any connection', () => {
    const s = fresh();
    s.log.append('O-6', [created('O-6')], { expectedVersion: 'no_stream' });
    const raw = new Database(s.file);
    expect(() => raw.prepare("UPDATE events SET data = '{}' WHERE position = 1").run()).toThrow(/append-only: UPDATE/);
    expect(() => raw.prepare('DELETE FROM events').run()).toThrow(/append-only: DELETE/);
    raw.close();
    expect(s.log.readStream('O-6')[0]!.data).toMatchObject({ orderId: 'O-6' });
    s.close();
  });
});

describe('idempotency', () => {
  it('re-appending the same events is a no-op returning the original result', () => {
    const s = fresh();
    const batch = [created('O-7'), paid(100, 'P-7')];
    const first = s.log.append('O-7', batch, { expectedVersion: 'no_stream' });
    const again = s.log.append('O-7', batch, { expectedVersion: 'no_stream' });
    expect(again).toMatchObject({ duplicate: true, fromVersion: 1, toVersion: 2, positions: first.positions, eventIds: first.eventIds });
    expect(s.log.streamVersion('O-7')).toBe(2);
    s.close();
  });

  it('the same id with other content is an error and writes nothing', () => {
    const s = fresh();
    const e = paid(100, 'P-8');
    s.log.append('O-8', [created('O-8'), e], { expectedVersion: 'no_stream' });
    const tampered = { ...e, data: { paymentId: 'P-8', amount: 999 } };
    expect(() => s.log.append('O-8', [tampered], { expectedVersion: 'any' })).toThrow(IdempotencyConflictError);
    expect(() => s.log.append('O-8', [e, paid(1)], { expectedVersion: 'any' })).toThrow(/batches are atomic/);
    expect(s.log.streamVersion('O-8')).toBe(2);
    s.close();
  });
});

describe('stored ids found by the unique index (appends skip the probe)', () => {
  it('a retry, a conflict and an id of another stream give the probe\'s answers, inside a caller\'s transaction too, and write nothing', () => {
    const s = fresh();
    const hooked: string[] = [];
    s.log.onAppend((events) => hooked.push(...events.map((e) => e.eventId)));
    const batch = [created('O-r'), paid(5, 'P-r')];
    const first = s.log.append('O-r', batch, { expectedVersion: 'no_stream' });
    // The version matches ('any'), so the rows are tried; the index finds the ids: a retry.
    expect(s.log.append('O-r', batch, { expectedVersion: 'any' })).toMatchObject({ duplicate: true, positions: first.positions });
    expect(s.log.append('O-r', batch, { expectedVersion: 'no_stream' })).toMatchObject({ duplicate: true, positions: first.positions });
    // The same ids on a new stream: version fine, ids stored elsewhere.
    expect(() => s.log.append('O-other', batch, { expectedVersion: 'no_stream' })).toThrow(/stream O-r vs O-other/);
    // Inside a caller's transaction: the failed append rolls back only itself.
    s.db.transaction(() =>
      s.log.withHooksBatched(() => {
        s.log.append('O-t1', [created('O-t1')], { expectedVersion: 'no_stream' });
        expect(() => s.log.append('O-t2', [created('O-t2'), ...batch.slice(1)], { expectedVersion: 'no_stream' })).toThrow(IdempotencyConflictError);
        expect(s.log.append('O-r', batch, { expectedVersion: 2 })).toMatchObject({ duplicate: true });
      }),
    )();
    expect(s.log.streamVersion('O-t1')).toBe(1);
    expect(s.log.streamVersion('O-t2')).toBe(0);
    expect(s.log.streamVersion('O-other')).toBe(0);
    expect(s.log.headPosition()).toBe(3);
    // The hooks saw each new event once and nothing of the refused or repeated batches.
    expect(hooked).toEqual([...first.eventIds, s.log.readStream('O-t1')[0]!.eventId]);
    s.close();
  });
});

describe('validation', () => {
  it('malformed data is rejected with the zod path and message, nothing written', () => {
    const s = fresh();
    const err = catchError(() =>
      s.log.append('O-9', [{ ...created('O-9'), data: { orderId: 'O-9', customerId: 'C', items: [{ sku: 'A', quantity: 0, unitPrice: 1 }], total: 1.5, currency: 'usd' } }], {
        expectedVersion: 'no_stream',
      }),
    ) as InvalidEventError;
    expect(err).toBeInstanceOf(InvalidEventError);
    expect(err.issues.map((i) => i.path)).toEqual(expect.arrayContaining(['data.items.0.quantity', 'data.total', 'data.currency']));
    expect(err.message).toMatch(/ISO 4217/);
    expect(() => s.log.append('O-9', [{ ...created('O-9'), eventId: 'not-a-uuid' }], { expectedVersion: 'any' })).toThrow(/eventId: must be a UUID/);
    expect(() => s.log.append('O-9', [{ ...created('O-9'), eventType: 'Nope' }], { expectedVersion: 'any' })).toThrow(/unknown event type/);
    expect(s.log.headPosition()).toBe(0);
    s.close();
  });
});

describe('reads', () => {
  it('reads a stream by version range, all events by position, and by type', () => {
    const s = fresh();
    s.log.append('A', [created('A'), paid(10), reserved()], { expectedVersion: 'no_stream' });
    s.log.append('B', [created('B'), shipped()], { expectedVersion: 'no_stream' });
    expect(s.log.readStream('A', { fromVersion: 2, toVersion: 3 }).map((e) => e.eventType)).toEqual(['PaymentReceived', 'InventoryReserved']);
    expect([...s.log.readAll({ batchSize: 2 })].map((e) => e.position)).toEqual([1, 2, 3, 4, 5]);
    expect([...s.log.readAll({ fromPosition: 3, batchSize: 1 })].map((e) => e.streamId)).toEqual(['B', 'B']);
    expect(s.log.readByType('OrderCreated').map((e) => e.streamId)).toEqual(['A', 'B']);
    s.close();
  });

  it('opens with WAL and synchronous=FULL by default, NORMAL only when asked', () => {
    const s = fresh();
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(s.db.pragma('synchronous', { simple: true })).toBe(2);
    s.close();
    const fast = openLocalStore(tmp.file('fast.sqlite'), { durability: 'normal' });
    expect(fast.db.pragma('synchronous', { simple: true })).toBe(1);
    fast.close();
  });
});

function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe('batched appends (multi-row statements)', () => {
  it('numbers every row of a large batch as the log stores it, across chunk boundaries and after other streams', () => {
    const s = fresh();
    s.log.append('O-a', [created('O-a')], { expectedVersion: 'no_stream' });
    for (const size of [1, 49, 255, 256, 257, 600]) {
      const id = `O-b${size}`;
      // Metadata shared by runs of events, then changed (its JSON text is reused while it is the same).
      const meta = (i: number) => (i % 7 < 5 ? { userId: 'u-1', source: 'test' } : i % 7 === 5 ? { source: 'test', userId: 'u-1' } : { userId: `u-${i}` });
      const batch = [created(id), ...Array.from({ length: size - 1 }, (_, i) => ({ ...paid(i + 1), metadata: meta(i) }))];
      const head = s.log.headPosition();
      const r = s.log.append(id, batch, { expectedVersion: 'no_stream' });
      expect(r.positions).toEqual(Array.from({ length: size }, (_, i) => head + 1 + i));
      const back = s.log.readStream(id, { raw: true });
      expect(back.map((e) => [e.position, e.eventId, e.streamVersion])).toEqual(r.events.map((e) => [e.position, e.eventId, e.streamVersion]));
      expect(back.map((e) => e.data)).toEqual(batch.map((e) => e.data));
      const text = s.db.prepare<[string], { metadata: string }>('SELECT metadata FROM events WHERE stream_id = ? ORDER BY stream_version').all(id);
      // The schema's key order, whatever order the writer used.
      expect(text.map((r) => r.metadata)).toEqual(batch.map((e) => JSON.stringify(EventMetadata.parse(e.metadata))));
    }
    // A large batch reusing one stored id at its end is refused whole.
    const dup = s.log.readStream('O-b600', { raw: true })[0]!;
    const bad = [created('O-c'), ...Array.from({ length: 300 }, (_, i) => paid(i + 1)), { ...paid(999), eventId: dup.eventId }];
    const head = s.log.headPosition();
    expect(() => s.log.append('O-c', bad, { expectedVersion: 'no_stream' })).toThrow(IdempotencyConflictError);
    expect(s.log.headPosition()).toBe(head);
    expect(s.log.streamVersion('O-c')).toBe(0);
    s.close();
  });
});

describe('withHooksBatched', () => {
  it('hands every event appended inside it to the hooks once, in log order, in the same transaction', () => {
    const s = fresh();
    const calls: number[][] = [];
    s.log.onAppend((events) => {
      expect(s.db.inTransaction).toBe(true);
      calls.push(events.map((e) => e.position));
    });
    expect(() => s.log.withHooksBatched(() => 1)).toThrow(/inside a transaction/);
    s.db.transaction(() =>
      s.log.withHooksBatched(() => {
        s.log.append('O-h1', [created('O-h1'), paid(1)], { expectedVersion: 'no_stream' });
        s.log.append('O-h2', [created('O-h2')], { expectedVersion: 'no_stream' });
        expect(calls).toEqual([]);
      }),
    )();
    expect(calls).toEqual([[1, 2, 3]]);
    // Unbatched appends reach the hooks one append at a time, as before.
    s.log.append('O-h3', [created('O-h3')], { expectedVersion: 'no_stream' });
    expect(calls).toEqual([[1, 2, 3], [4]]);
    // A hook that throws on the batch rolls the whole transaction back.
    const stop = s.log.onAppend(() => {
      throw new Error('projection failed');
    });
    expect(() =>
      s.db.transaction(() => s.log.withHooksBatched(() => s.log.append('O-h4', [created('O-h4')], { expectedVersion: 'no_stream' })))(),
    ).toThrow('projection failed');
    stop();
    expect(s.log.headPosition()).toBe(4);
    s.close();
  });
});
