import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { openRepository, type EventRepository } from '../../../src/server/index.js';
import type { AppendCommand } from '../../../src/server/repository.js';
import { PULL_CURSOR_START, type PullResponse } from '../../../src/protocol/sync-api.js';
import { BACKENDS, orderCreated, type TestBackend } from '../helpers.js';

/**
 * The same script through the store core on both dialects gives the same answers: every
 * outcome, page, read-model row and report, once the recording times (and the hashes and
 * timestamps derived from them) are set aside.
 */

const TIME_KEYS = new Set(['recordedAt', 'hash', 'createdAt', 'updatedAt', 'expectedHash', 'storedHash']);

function timeless(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(timeless);
  if (v instanceof Error) return { error: v.name, message: v.message };
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => !TIME_KEYS.has(k)).map(([k, x]) => [k, timeless(x)]));
  return v;
}

const ids = Array.from({ length: 12 }, () => uuidv7());
const T = 'tenant-a';
const order = (streamId: string, expectedVersion: AppendCommand['expectedVersion'], events: AppendCommand['events']): AppendCommand => ({ tenantId: T, streamId, streamType: 'Order', expectedVersion, events });
const paid = (eventId: string, amount: number) => ({ eventId, eventType: 'PaymentReceived', schemaVersion: 1, data: { paymentId: `P-${eventId.slice(-4)}`, amount }, metadata: {} });

async function script(repo: EventRepository): Promise<unknown[]> {
  const out: unknown[] = [];
  const step = async (p: Promise<unknown>) => out.push(timeless(await p.catch((err: unknown) => err)));
  const created = { ...orderCreated('O-1', 1000), eventId: ids[0]!, metadata: {} };
  await step(repo.append(order('O-1', 'no_stream', [created])));
  await step(repo.append(order('O-1', 'no_stream', [created]))); // duplicate: the original outcome
  await step(repo.append(order('O-1', 0, [paid(ids[1]!, 100)]))); // stale: conflict with the missing event
  await step(repo.append(order('O-1', 1, [paid(ids[1]!, 100), paid(ids[2]!, 200)])));
  await step(repo.append(order('O-2', 0, [paid(ids[3]!, 5)]))); // an order must be created first
  await step(repo.append({ tenantId: T, streamId: 'O-1', streamType: 'Note', expectedVersion: 'any', events: [{ eventId: ids[4]!, eventType: 'NoteAdded', schemaVersion: 1, data: { text: 'x' }, metadata: {} }] }));
  await step(
    // Given in (tenant, stream) order: PostgreSQL applies a push in that order (its lock order), SQLite as given.
    repo.appendAll([
      { tenantId: T, streamId: 'N-1', streamType: 'Note', expectedVersion: 'any', events: [{ eventId: ids[9]!, eventType: 'NoteAdded', schemaVersion: 1, data: { text: 'n' }, metadata: {} }] },
      order('O-1', 1, [paid(ids[6]!, 1)]), // conflict
      order('O-1', 3, [paid(ids[2]!, 999)]), // a stored id with other data: idempotency conflict
      order('O-1', 3, [paid(ids[7]!, 300)]),
      order('O-3', 'no_stream', [{ ...orderCreated('O-3', 700), eventId: ids[5]!, metadata: {} }]),
      order('O-4', 'no_stream', [{ ...orderCreated('O-4', 50), eventId: ids[8]!, metadata: {} }, paid(ids[8]!, 1)]), // an id twice in one batch
    ]),
  );
  await step(repo.readStream(T, 'O-1'));
  await step(repo.readStream(T, 'O-1', 1, 2));
  // Cursors differ by design (PostgreSQL's carry transaction ids): only whether one is handed out must agree.
  const shape = (p: PullResponse) => ({ ...p, nextCursor: p.nextCursor !== undefined });
  await step(repo.pull(T, 0, 3).then(shape));
  await step(repo.pull(T, 3, 100).then(shape));
  await step(
    (async () => {
      // A cursor walk, two events a page: the same events in the same order (one writer at a time here).
      // Retried from the start: on PostgreSQL a cursor pull stops below the oldest transaction still
      // open, and other test files hold some on the same server, so a walk may end early for a moment.
      const all = (await repo.pull(T, 0, 1000)).events.length;
      let seen: [string, number][] = [];
      for (let attempt = 0; attempt < 50 && (attempt === 0 || seen.length < all); attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, 100));
        seen = [];
        let cursor = PULL_CURSOR_START;
        for (let page = 0; page < 20; page++) {
          const p = await repo.pull(T, cursor, 2);
          seen.push(...p.events.map((e): [string, number] => [e.eventId, e.globalPosition]));
          cursor = p.nextCursor!;
          if (!p.hasMore) break;
        }
      }
      return seen;
    })(),
  );
  await step(repo.getOrder(T, 'O-1'));
  await step(repo.listOrders(T, { limit: 10, offset: 0 }));
  await step(repo.rebuildProjections(T));
  await step(repo.listOrders(T, { limit: 10, offset: 0 }));
  await step(repo.verifyChain({}));
  await step(repo.verifyChain({ tenantId: T, streamId: 'O-1' }));
  await step(repo.visibleHead().then((m) => typeof m));
  // The pull route's text form is the same page as the object form, by position and by cursor.
  await step(
    (async () => {
      const same: boolean[] = [];
      for (const [from, limit] of [[0, 3], [3, 100], [PULL_CURSOR_START, 2], [100, 5]] as const) {
        // One after the other, retried: on PostgreSQL the visible head waits for transactions other
        // tests hold open, so two reads a moment apart may see different pages; the format is the point.
        let agreed = false;
        for (let attempt = 0; attempt < 50 && !agreed; attempt++) {
          const page = await repo.pull(T, from, limit);
          const text = await repo.pullText(T, from, limit);
          agreed = JSON.stringify(JSON.parse(text.text)) === JSON.stringify(page) && text.events === page.events.length;
          if (!agreed) await new Promise((r) => setTimeout(r, 100));
        }
        same.push(agreed);
      }
      return same;
    })(),
  );
  return out;
}

describe('store dialects agree', () => {
  const answers = new Map<string, unknown[]>();
  const backends: TestBackend[] = [];

  beforeAll(async () => {
    for (const factory of BACKENDS) {
      const backend = await factory.make();
      backends.push(backend);
      const repo = await openRepository(backend.opts);
      try {
        answers.set(factory.name, await script(repo));
      } finally {
        await repo.close();
      }
    }
  });

  afterAll(async () => {
    for (const b of backends) await b.cleanup();
  });

  it('gives the same outcomes, pages, read model and chain report on SQLite and PostgreSQL', () => {
    const sqlite = answers.get('sqlite')!;
    expect(sqlite).toHaveLength(20);
    expect(sqlite[19]).toEqual([true, true, true, true]);
    // The script exercised what it claims: a write, a duplicate, conflicts, refusals, a clean chain.
    expect(sqlite[1]).toMatchObject({ status: 'ok', result: { duplicate: true } });
    expect(sqlite[2]).toMatchObject({ status: 'conflict', conflict: { currentVersion: 1, missingEvents: [{ eventId: ids[0] }] } });
    expect(sqlite[4]).toMatchObject({ error: 'InvalidEventError' });
    expect((sqlite[6] as { status: string }[]).map((o) => o.status)).toEqual(['ok', 'conflict', 'error', 'ok', 'ok', 'error']);
    expect(sqlite[16]).toMatchObject({ ok: true, eventsChecked: 6 });
    expect(sqlite[11]).toHaveLength(6);
    expect(answers.get('pg')).toEqual(sqlite);
  });
});
