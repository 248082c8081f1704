import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { EventSchemas } from '../../src/domain/events.js';
import { MAX_DEPTH } from '../../src/protocol/event-contract.js';
import type { ServerEvent } from '../../src/protocol/envelope.js';
import { AppendRequest } from '../../src/protocol/sync-api.js';
import { InvalidEventError } from '../../src/protocol/errors.js';
import { normalizeAppend } from '../../src/server/store/append-logic.js';
import { openLocalStore, type LocalStore } from '../../src/store/local-store.js';
import { readVerdict } from '../../src/sync/quarantine.js';

/**
 * The server's decision (the append path every write goes through) and the device's decisions
 * (what a pull reads, what its log accepts) agree on every generated event: valid and invalid
 * data, unicode, nesting, dates, event types × stream types.
 */

const NOW = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();
const HOUR = 3_600_000;

// Weighted so that about as many events pass as fail.
const text = fc.oneof(
  { arbitrary: fc.constantFrom('plain reason', 'ünïcödé', '\ud83d\ude00 ok'), weight: 6 },
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 6 }),
  fc.constantFrom('plain', 'a\u0000b', '\ud800', 'x\udc00', '\ud83d\ude00 ok', '', '   ', 'ünïcödé'),
);
const date = fc.oneof({ arbitrary: fc.constant(iso(NOW - HOUR)), weight: 6 }, fc.constantFrom(
  iso(NOW),
  iso(NOW - 400 * 24 * HOUR),
  iso(NOW + 23 * HOUR),
  iso(NOW + 25 * HOUR),
  '1999-12-31T23:59:59.000Z',
  '2000-01-01T00:00:00.000Z',
  '2999-01-01T00:00:00.000Z',
  '2025-01-02',
  'not a date',
));
const id = fc.oneof({ arbitrary: fc.constantFrom('A-1', 'sku.9', 'P:1'), weight: 8 }, fc.constantFrom('bad id', '', 'x\u0000'), fc.string({ maxLength: 8 }));
const money = fc.oneof({ arbitrary: fc.integer({ min: 1, max: 1_000_000 }), weight: 8 }, fc.integer({ min: -10, max: 0 }), fc.constantFrom(1.5, Number.MAX_SAFE_INTEGER + 2));
const quantity = fc.oneof({ arbitrary: fc.integer({ min: 1, max: 10 }), weight: 8 }, fc.integer({ min: -1, max: 0 }), fc.constantFrom(1_000_000, 1_000_001, 2.5));
const item = fc.record({ sku: id, quantity, unitPrice: money });
const items = fc.oneof({ arbitrary: fc.array(item, { minLength: 1, maxLength: 3 }), weight: 6 }, fc.array(item, { minLength: 0, maxLength: 3 }), fc.constantFrom(501, 500).map((n) => Array.from({ length: n }, () => ({ sku: 'S', quantity: 1, unitPrice: 1 }))));

/** Nested `depth` levels: {"n":{"n":…}} built iteratively. */
const deep = fc.integer({ min: 1, max: MAX_DEPTH + 40 }).map((depth) => {
  let v: unknown = 'leaf';
  for (let i = 1; i < depth; i++) v = { n: v };
  return v;
});

const dataFor: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  OrderCreated: fc.oneof(
    fc.record({ orderId: id, customerId: id, items, total: money, currency: fc.constantFrom('USD', 'EUR', 'usd') }),
    fc.record({ orderId: id, customerId: id, items: fc.array(fc.record({ sku: id, quantity, unitPrice: fc.oneof(money, fc.constantFrom('1.00', '-2', '1.234')) }), { maxLength: 3 }), totalAmount: fc.oneof(money, fc.constantFrom('12.50', 'abc')) }),
  ),
  PaymentReceived: fc.record({ paymentId: id, amount: money }),
  InventoryReserved: fc.record({ reservationId: id }),
  OrderShipped: fc.record({ shipmentId: id, shippedAt: date }),
  OrderCancelled: fc.record({ reason: text, cancelledAt: date }),
  PaymentRefunded: fc.record({ paymentId: id, amount: money, reason: text }),
};
const anyData = fc.dictionary(fc.oneof(fc.string({ maxLength: 5 }), fc.constantFrom('k\u0000', '\ud800', 'sentAt')), fc.oneof(text, money, date, deep, fc.constant(null)), { maxKeys: 4 });

const metadata = fc.record(
  { causationId: text, userId: text, occurredAt: date, deviceId: fc.constantFrom('dev-1', 'd\u0000') },
  { requiredKeys: [] },
);

const eventArb = fc
  .record({
    streamType: fc.constantFrom('Order', 'Invoice', 'Note'),
    eventType: fc.constantFrom(...Object.keys(EventSchemas), 'NoteAdded', 'InvoiceIssued'),
    schemaVersion: fc.constantFrom(1, 2, 3),
    metadata,
    extra: anyData,
    mix: fc.constantFrom('typed', 'typed+extra', 'any'),
  })
  .chain((e) => {
    const typed = dataFor[e.eventType];
    const data = !typed || e.mix === 'any' ? anyData : e.mix === 'typed' ? typed : typed.map((d) => ({ ...d, ...e.extra }));
    return data.map((d) => ({ streamType: e.streamType, eventType: e.eventType, schemaVersion: e.schemaVersion, metadata: e.metadata, data: d }));
  });

describe('one event contract: server and device decide alike', () => {
  let dir: string;
  let store: LocalStore;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'orderlog-contract-'));
    store = openLocalStore(join(dir, 'device.sqlite'), { durability: 'normal' });
  });
  afterAll(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('on every generated event', () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(eventArb, (e) => {
        const recordedAt = iso(NOW);
        const streamId = `S-${uuidv7()}`;
        const eventId = uuidv7();
        // The server: the route's request schema, then the append path of both backends.
        let server = false;
        const request = AppendRequest.safeParse({ streamType: e.streamType, expectedVersion: 'any', events: [{ eventId, eventType: e.eventType, schemaVersion: e.schemaVersion, data: e.data, metadata: e.metadata }] });
        if (request.success) {
          try {
            normalizeAppend({ tenantId: 't', streamId, ...request.data }, recordedAt);
            server = true;
          } catch (err) {
            if (!(err instanceof InvalidEventError)) throw err;
          }
        }
        const pulled: ServerEvent = { eventId, streamId, streamType: e.streamType, streamVersion: 1, globalPosition: 1, eventType: e.eventType, schemaVersion: e.schemaVersion, data: e.data, metadata: e.metadata, recordedAt, hash: '0'.repeat(64) };
        const readable = readVerdict(pulled).ok;
        let logged: boolean;
        try {
          store.log.append(streamId, [{ eventId, eventType: e.eventType, schemaVersion: e.schemaVersion, data: e.data, metadata: e.metadata }], { expectedVersion: 'any', streamType: e.streamType, allowUnknownTypes: true, recordedAt });
          logged = true;
        } catch (err) {
          if (!(err instanceof InvalidEventError)) throw err;
          logged = false;
        }
        if (server) accepted++;
        else refused++;
        expect({ readable, logged }).toEqual({ readable: server, logged: server });
      }),
      { numRuns: 600, seed: 20261130 },
    );
    // Both outcomes were exercised in earnest (at least 5% of the runs each).
    expect(accepted).toBeGreaterThanOrEqual(30);
    expect(refused).toBeGreaterThanOrEqual(30);
  });
});
