import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { openLocalStore, type LocalStore } from '../../src/store/local-store.js';
import { Outbox } from '../../src/sync/outbox.js';
import { createPendingSource } from '../../src/sync/pending-source.js';
import { InvalidCommandError, OutboxError } from '../../src/sync/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { cancel, createOrder, pay, reserve } from './helpers.js';

/** Put events into the confirmed log the way a pull does (server versions, another device's metadata). */
function confirmForeign(store: LocalStore, orderId: string, events: { type: string; data: Record<string, unknown>; schemaVersion?: number }[]) {
  const version = store.log.streamVersion(orderId);
  return store.log.append(
    orderId,
    events.map((e) => ({ eventId: uuidv7(), eventType: e.type, schemaVersion: e.schemaVersion ?? 1, data: e.data, metadata: { userId: 'bob', deviceId: 'dev-bob' } })),
    { expectedVersion: version, allowUnknownTypes: true, recordedAt: '2025-01-01T00:00:00.000Z' },
  );
}

const created = (orderId: string, total = 10_000) => ({
  type: 'OrderCreated',
  schemaVersion: 2,
  data: { orderId, customerId: 'cust-1', items: [{ sku: 'sku-1', quantity: 1, unitPrice: total }], total, currency: 'USD' },
});

describe('Outbox', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: LocalStore;
  let outbox: Outbox;
  let changed: { ids: string[]; inTx: boolean }[];

  beforeEach(() => {
    tmp = tempDir('sync-outbox-');
    store = openLocalStore(tmp.file('device.db'));
    changed = [];
    outbox = new Outbox(store, { deviceId: 'dev-a', onOrdersChanged: (ids) => changed.push({ ids, inTx: store.db.inTransaction }) });
  });
  afterEach(() => {
    store.close();
    tmp.cleanup();
  });

  it('the cached effective state follows other connections, confirmed events and rolled-back submits', () => {
    const id = 'o-cache';
    expect(outbox.submit(createOrder(id), { userId: 'u1' }).ok).toBe(true);
    expect(outbox.submit(pay(id, 'p1', 1000), { userId: 'u1' }).ok).toBe(true);
    expect(outbox.effectiveState(id).paidAmount).toBe(1000);

    // Another connection (another outbox on the same file) adds a payment: seen here at once.
    const other = openLocalStore(store.file);
    try {
      expect(new Outbox(other, { deviceId: 'dev-a' }).submit(pay(id, 'p2', 2000), { userId: 'u1' }).ok).toBe(true);
    } finally {
      other.close();
    }
    expect(outbox.effectiveState(id).paidAmount).toBe(3000);

    // A submit whose enclosing transaction rolls back leaves no trace in the state.
    expect(() =>
      store.db.transaction(() => {
        expect(outbox.submit(pay(id, 'p3', 4000), { userId: 'u1' }).ok).toBe(true);
        expect(outbox.effectiveState(id).paidAmount).toBe(7000);
        throw new Error('roll back');
      })(),
    ).toThrow('roll back');
    expect(outbox.effectiveState(id).paidAmount).toBe(3000);
    // ... and the next command is decided on the state without it (p3 is not a duplicate).
    expect(outbox.submit(pay(id, 'p3', 500), { userId: 'u1' }).ok).toBe(true);
    expect(outbox.effectiveState(id).payments.map((p) => [p.paymentId, p.amount])).toEqual([
      ['p1', 1000],
      ['p2', 2000],
      ['p3', 500],
    ]);

    // A confirmed event from the server is part of the effective state too.
    confirmForeign(store, 'o-foreign', [created('o-foreign')]);
    expect(outbox.effectiveState('o-foreign').exists).toBe(true);
    expect(outbox.submit(pay('o-foreign', 'pf', 100), { userId: 'u1' }).ok).toBe(true);
    expect(outbox.effectiveState('o-foreign').paidAmount).toBe(100);
    expect(outbox.commandsOf('o-foreign')[0]!.baseVersion).toBe(1);
  });

  it('decides on the effective state at once, offline, and keeps the confirmed log untouched', () => {
    const a = outbox.submit(createOrder('o1'), { userId: 'alice' });
    const b = outbox.submit(pay('o1', 'p1', 4000), { userId: 'alice' });
    expect(a.ok && b.ok).toBe(true);
    if (!b.ok) return;
    expect(b.version).toBe(2);
    expect(store.log.streamVersion('o1')).toBe(0);
    const state = outbox.effectiveState('o1');
    expect(state.status).toBe('PARTIALLY_PAID');
    expect(state.paidAmount).toBe(4000);
    expect(outbox.pendingEvents('o1').map((e) => e.type)).toEqual(['OrderCreated', 'PaymentReceived']);
    expect(outbox.badge('o1')).toBe('pending');
    expect(outbox.pendingCount()).toBe(2);
    expect(changed).toEqual([
      { ids: ['o1'], inTx: true },
      { ids: ['o1'], inTx: true },
    ]);
    const meta = outbox.repo.currentPendingEventsOf('o1')[1]!.metadata;
    expect(meta).toMatchObject({ commandId: b.commandId, causationId: b.commandId, userId: 'alice', deviceId: 'dev-a' });
  });

  it('a command rejected at submit writes nothing and returns the reason', () => {
    outbox.submit(createOrder('o1', 1000), { userId: 'alice' });
    const r = outbox.submit(pay('o1', 'p1', 5000), { userId: 'alice' });
    expect(r).toMatchObject({ ok: false, rejection: { code: 'OVERPAYMENT' } });
    expect(outbox.pendingCount()).toBe(1);
    expect(changed).toHaveLength(1);
  });

  it('bad input is a clear error and changes nothing', () => {
    expect(() => outbox.submit({ type: 'RecordPayment', orderId: 'o1', paymentId: 'p1', amount: 1.5 } as never, { userId: 'alice' })).toThrow(InvalidCommandError);
    expect(() => outbox.submit(createOrder('o1'), { userId: 'alice', commandId: 'not-a-uuid' })).toThrow(/not a UUID/);
    expect(outbox.pendingCount()).toBe(0);
    expect(store.db.prepare('SELECT COUNT(*) AS n FROM pending_events').get()).toEqual({ n: 0 });
  });

  it('a command whose events the server would refuse (event contract) is refused at submit and writes nothing', () => {
    expect(outbox.submit(createOrder('o1'), { userId: 'alice' }).ok).toBe(true);
    const before = outbox.pendingCount();
    let error: unknown;
    try {
      outbox.submit(cancel('o1', 'customer \u0000 called'), { userId: 'alice' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidCommandError);
    expect((error as InvalidCommandError).issues).toEqual([{ path: 'events.0.data.reason', message: 'must not contain the NUL character (U+0000)' }]);
    expect(() => outbox.submit({ type: 'CancelOrder', orderId: 'o1', reason: 'later', cancelledAt: '2999-01-01T00:00:00.000Z' }, { userId: 'alice' })).toThrow(
      /data\.cancelledAt: must not be more than 24 hours after/,
    );
    expect(outbox.pendingCount()).toBe(before);
    expect(outbox.effectiveState('o1').status).toBe('CREATED');
  });

  it('the same command id again returns the original outcome; reusing it for another command fails', () => {
    const commandId = uuidv7();
    const first = outbox.submit(createOrder('o1'), { userId: 'alice', commandId });
    const again = outbox.submit(createOrder('o1'), { userId: 'alice', commandId });
    expect(again).toEqual(first);
    expect(outbox.pendingCount()).toBe(1);
    expect(() => outbox.submit(createOrder('o2'), { userId: 'alice', commandId })).toThrow(OutboxError);
  });

  it('pending events are immutable in the database', () => {
    outbox.submit(createOrder('o1'), { userId: 'alice' });
    expect(() => store.db.prepare("UPDATE pending_events SET data = '{}'").run()).toThrow(/immutable/);
    expect(() => store.db.prepare('DELETE FROM pending_events').run()).toThrow(/immutable/);
  });

  it('rebase: still-valid commands get a new attempt with new ids; the superseded attempt stays', () => {
    confirmForeign(store, 'o1', [created('o1')]);
    const p = outbox.submit(pay('o1', 'p-alice', 3000), { userId: 'alice' });
    if (!p.ok) throw new Error('payment rejected');
    const firstIds = p.events.map((e) => e.eventId);
    // Meanwhile another device paid part of it; both payments still fit.
    confirmForeign(store, 'o1', [{ type: 'PaymentReceived', data: { paymentId: 'p-bob', amount: 5000 } }]);

    const summary = outbox.rebaseOrder('o1');
    expect(summary).toEqual({ orderId: 'o1', reattempted: [p.commandId], rejected: [] });
    const c = outbox.command(p.commandId)!;
    expect(c).toMatchObject({ status: 'pending', attempt: 2, baseVersion: 2 });
    const current = outbox.repo.currentPendingEventsOf('o1');
    expect(current).toHaveLength(1);
    expect(firstIds).not.toContain(current[0]!.eventId);
    expect(outbox.repo.allPendingEventsOf('o1')).toHaveLength(2);
    expect(outbox.effectiveState('o1').paidAmount).toBe(8000);
    const timeline = outbox.timeline('o1');
    expect(timeline.map((t) => t.sync)).toEqual(['synced', 'synced', 'superseded', 'pending']);
    expect(changed.at(-1)).toEqual({ ids: ['o1'], inTx: true });
  });

  it('rebase: a command that no longer applies is rejected with its reason and the server events that caused it', () => {
    confirmForeign(store, 'o1', [created('o1')]);
    const r = outbox.submit(reserve('o1', 'r-alice'), { userId: 'alice' });
    const p = outbox.submit(pay('o1', 'p-alice', 3000), { userId: 'alice' });
    if (!r.ok || !p.ok) throw new Error('rejected');
    const cancelled = confirmForeign(store, 'o1', [{ type: 'OrderCancelled', data: { reason: 'duplicate order', cancelledAt: '2025-01-01T00:00:00.000Z' } }]);

    const summary = outbox.rebaseOrder('o1');
    expect(summary.rejected).toEqual([r.commandId, p.commandId]);
    expect(outbox.pendingCount()).toBe(0);
    expect(outbox.badge('o1')).toBe('rejected');
    const conflicts = outbox.listConflicts();
    expect(conflicts).toHaveLength(2);
    expect(conflicts[1]).toMatchObject({
      commandId: p.commandId,
      orderId: 'o1',
      status: 'rejected',
      rejection: { code: 'ORDER_CANCELLED' },
      causedBy: [{ eventId: cancelled.eventIds[0], eventType: 'OrderCancelled', streamVersion: 2, userId: 'bob', deviceId: 'dev-bob' }],
    });
    expect(conflicts[1]!.rejection.message).toMatch(/was cancelled \(duplicate order\)/);
    // The rejected attempts are still in the audit trail, called rejected (nothing superseded them).
    expect(outbox.timeline('o1').filter((t) => t.sync === 'rejected')).toHaveLength(2);
    expect(outbox.timeline('o1').filter((t) => t.sync === 'superseded')).toHaveLength(0);
  });

  it('conflict inbox: dismiss hides it, retryAsNew re-submits on the current state (and may be rejected again)', async () => {
    confirmForeign(store, 'o1', [created('o1', 10_000)]);
    const p = outbox.submit(pay('o1', 'p-alice', 8000), { userId: 'alice' });
    const q = outbox.submit(reserve('o1', 'r-alice'), { userId: 'alice' });
    if (!p.ok || !q.ok) throw new Error('rejected');
    confirmForeign(store, 'o1', [
      { type: 'PaymentReceived', data: { paymentId: 'p-bob', amount: 5000 } },
      { type: 'InventoryReserved', data: { reservationId: 'r-bob' } },
    ]);
    outbox.rebaseOrder('o1');
    expect(outbox.listConflicts().map((c) => c.rejection.code)).toEqual(['OVERPAYMENT', 'ALREADY_RESERVED']);

    // Still too much: rejected again, the inbox entry stays.
    const again = outbox.retryAsNew(p.commandId);
    expect(again).toMatchObject({ ok: false, rejection: { code: 'OVERPAYMENT' } });
    expect(outbox.command(p.commandId)!.status).toBe('rejected');

    // Bob's payment gets refunded elsewhere: now it fits, and the old command is marked retried.
    confirmForeign(store, 'o1', [{ type: 'PaymentRefunded', data: { paymentId: 'p-bob', amount: 5000, reason: 'card declined' } }]);
    const retried = outbox.retryAsNew(p.commandId);
    expect(retried.ok).toBe(true);
    expect(outbox.command(p.commandId)!.status).toBe('retried');
    if (retried.ok) expect(outbox.command(retried.commandId)!.retryOf).toBe(p.commandId);

    const rejectedAt = outbox.listConflicts().find((c) => c.commandId === q.commandId)!.rejectedAt;
    await new Promise((r) => setTimeout(r, 5));
    outbox.dismiss(q.commandId);
    // Dismissing is not a new rejection: the time the server refused it stays.
    expect(outbox.listConflicts({ includeDismissed: true }).find((c) => c.commandId === q.commandId)!.rejectedAt).toBe(rejectedAt);
    expect(outbox.listConflicts()).toEqual([]);
    expect(outbox.listConflicts({ includeDismissed: true }).map((c) => c.status)).toEqual(['retried', 'dismissed']);
    expect(() => outbox.dismiss(q.commandId)).toThrow(/dismissed/);
    expect(() => outbox.dismiss(uuidv7())).toThrow(OutboxError);
  });

  it('PendingSource gives projections the overlay and the badge', () => {
    const src = createPendingSource(outbox);
    expect(src.badge('o1')).toBe('synced');
    outbox.submit(createOrder('o1'), { userId: 'alice' });
    expect(src.pendingEvents('o1')).toEqual([expect.objectContaining({ type: 'OrderCreated', recordedAt: expect.any(String) })]);
    expect(src.badge('o1')).toBe('pending');
    outbox.submit(cancel('o1'), { userId: 'alice' });
    expect(src.pendingEvents('o1').map((e) => e.type)).toEqual(['OrderCreated', 'OrderCancelled']);
  });
});
