import { describe, expect, it } from 'vitest';
import type { OrderCommand } from '../../src/domain/commands.js';
import { initialOrderState } from '../../src/domain/state.js';
import { EventSchemas } from '../../src/domain/events.js';
import { commandEvents, commandMetadata, decideCommand } from '../../src/protocol/command-events.js';
import { NewEvent } from '../../src/protocol/envelope.js';
import { openLocalStore } from '../../src/store/local-store.js';
import { Outbox } from '../../src/sync/outbox.js';
import { tempDir } from '../helpers/tmp.js';

const create: OrderCommand = { type: 'CreateOrder', orderId: 'O-1', customerId: 'C-1', items: [{ sku: 'A', quantity: 2, unitPrice: 150 }], currency: 'EUR' };

describe('the command pipeline', () => {
  it('names the command as the cause and, by default, the correlation of its events', () => {
    expect(commandMetadata({ commandId: 'cmd-1', userId: 'ann', deviceId: 'dev-1', source: 'desktop-app', occurredAt: '2026-01-02T03:04:05.000Z' })).toEqual({
      commandId: 'cmd-1',
      causationId: 'cmd-1',
      correlationId: 'cmd-1',
      userId: 'ann',
      deviceId: 'dev-1',
      source: 'desktop-app',
      occurredAt: '2026-01-02T03:04:05.000Z',
    });
    expect(commandMetadata({ commandId: 'cmd-2', correlationId: 'req-9' })).toEqual({ commandId: 'cmd-2', causationId: 'cmd-2', correlationId: 'req-9' });
  });

  it('wraps decided events into valid envelopes at their current schema version', () => {
    let n = 0;
    const ids = ['0190a6b0-0000-7000-8000-000000000001', '0190a6b0-0000-7000-8000-000000000002'];
    const outcome = decideCommand(initialOrderState, create, { commandId: 'cmd-1' }, () => ids[n++]!);
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.events).toHaveLength(1);
    const e = NewEvent.parse(outcome.events[0]);
    expect(e).toMatchObject({ eventId: ids[0], eventType: 'OrderCreated', schemaVersion: EventSchemas.OrderCreated.version, data: { total: 300, currency: 'EUR' } });
    expect(commandEvents([], { commandId: 'x' })).toEqual([]);
  });

  it('passes a rejection through untouched and wraps nothing', () => {
    const outcome = decideCommand(initialOrderState, { type: 'ReserveInventory', orderId: 'O-1', reservationId: 'R' }, { commandId: 'cmd-1' });
    expect(outcome).toEqual({ ok: false, rejection: { code: 'ORDER_NOT_FOUND', message: expect.stringContaining('O-1') } });
  });

  it('gives the device store and the outbox the same metadata vocabulary', () => {
    const tmp = tempDir();
    const direct = openLocalStore(tmp.file('direct.db'));
    const queued = openLocalStore(tmp.file('queued.db'));
    try {
      const r = direct.orders.execute(create, { userId: 'ann', deviceId: 'dev-1', source: 'desktop-app', occurredAt: '2026-01-02T03:04:05.000Z' });
      expect(r.ok).toBe(true);
      const stored = direct.log.readStream('O-1')[0]!.metadata;
      const outbox = new Outbox(queued, { deviceId: 'dev-1', now: () => '2026-01-02T03:04:05.000Z' });
      const submitted = outbox.submit(create, { userId: 'ann' });
      expect(submitted.ok).toBe(true);
      const pending = outbox.repo.currentPendingEventsOf('O-1')[0]!.metadata;
      expect(Object.keys(stored).sort()).toEqual(Object.keys(pending).sort());
      expect({ ...stored, commandId: 'x', causationId: 'x', correlationId: 'x' }).toEqual({ ...pending, commandId: 'x', causationId: 'x', correlationId: 'x' });
      expect(stored.causationId).toBe(stored.commandId);
      expect(pending.causationId).toBe(pending.commandId);
    } finally {
      direct.close();
      queued.close();
      tmp.cleanup();
    }
  });
});
