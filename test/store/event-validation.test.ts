import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventId, NewEvent } from '../../src/protocol/envelope.js';
import { fastNewEvent, isUuid } from '../../src/store/event-validation.js';

// Envelopes near and across every rule of the schema: ids, type names, versions, data shapes,
// metadata keys and lengths, extra keys, odd prototypes and keys.
const eventId = fc.oneof({ arbitrary: fc.uuid({ version: 7 }), weight: 6 }, fc.uuid(), fc.constantFrom('', 'not-a-uuid', '00000000-0000-0000-0000-000000000000', '0190C2A4-7B1E-7C3D-8E4F-0123456789AB', 42));
const eventType = fc.oneof({ arbitrary: fc.constantFrom('OrderCreated', 'PaymentReceived'), weight: 6 }, fc.constantFrom('X', 'orderCreated', 'Order-Created', '', 'A'.repeat(100), 'A'.repeat(101)), fc.string());
const schemaVersion = fc.oneof({ arbitrary: fc.constantFrom(1, 2), weight: 6 }, fc.constantFrom(1000, 1001, 0, -1, 1.5, Number.NaN, '1'), fc.integer());
const plainString = fc.oneof({ arbitrary: fc.string({ maxLength: 10 }), weight: 6 }, fc.constantFrom('x'.repeat(200), 'x'.repeat(201)));
const metadataValue = fc.oneof({ arbitrary: plainString, weight: 8 }, fc.constantFrom(undefined, null, 3, '2026-01-01T00:00:00Z', 'yesterday'));
const metadataKey = fc.oneof(
  { arbitrary: fc.constantFrom('correlationId', 'causationId', 'userId', 'deviceId', 'source', 'commandId', 'tenantId'), weight: 8 },
  fc.constantFrom('occurredAt', 'other', '__proto__'),
);
const metadata = fc.oneof(
  fc.constant(undefined),
  { arbitrary: fc.dictionary(metadataKey, metadataValue, { maxKeys: 5 }), weight: 6 },
  fc.constantFrom(null, [], 'm', Object.create(null) as object),
);
const data = fc.oneof(
  { arbitrary: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }), weight: 6 },
  fc.constantFrom(null, [], 'd', 1, Object.create(null) as object, JSON.parse('{"__proto__":{"a":1},"b":2}') as object, { [Symbol('s')]: 1, a: 1 }, { 2: 'x', 1: 'y', z: 0 }),
);
const envelope = fc
  .record({ eventId, eventType, schemaVersion, data, metadata, extra: fc.option(fc.constantFrom('position', 'streamId', 'eventId'), { nil: undefined }) }, { requiredKeys: ['eventId', 'eventType', 'schemaVersion', 'data'] })
  .map(({ extra, ...e }) => (extra && extra !== 'eventId' ? { ...e, [extra]: 1 } : e));

describe('fast envelope check', () => {
  it('answers exactly what the NewEvent schema answers, or leaves the event to it', () => {
    let fast = 0;
    fc.assert(
      fc.property(envelope, (input) => {
        const quick = fastNewEvent(input);
        const zod = NewEvent.safeParse(input);
        if (quick === null) return;
        fast++;
        expect(zod.success).toBe(true);
        expect(quick).toStrictEqual(zod.data);
        // Same stored text (key order included).
        expect(JSON.stringify(quick)).toBe(JSON.stringify(zod.data));
      }),
      { numRuns: 3000 },
    );
    // The property would hold vacuously if the fast path never answered.
    expect(fast).toBeGreaterThan(100);
  });

  it('takes the ordinary event, copying what it returns', () => {
    const input = {
      eventId: '0190c2a4-7b1e-7c3d-8e4f-0123456789ab',
      eventType: 'PaymentReceived',
      schemaVersion: 1,
      data: { paymentId: 'P-1', amount: 5 },
      metadata: { source: 'bench', userId: 'u' },
    };
    const out = fastNewEvent(input);
    expect(out).toStrictEqual(NewEvent.parse(input));
    expect(out!.data).not.toBe(input.data);
    expect(fastNewEvent({ ...input, metadata: undefined })).toStrictEqual(NewEvent.parse({ ...input, metadata: undefined }));
  });
});

describe('uuid check', () => {
  const UUID = (EventId as unknown as { _zod: { pattern: RegExp } })._zod.pattern;
  it('answers exactly what the schema\'s UUID pattern answers', () => {
    const hexish = fc.constantFrom(...'0123456789abcdefABCDEFgG-xz'.split(''));
    const mutated = fc.tuple(fc.uuid(), fc.nat(35), hexish).map(([u, i, c]) => u.slice(0, i) + c + u.slice(i + 1));
    const input = fc.oneof(
      fc.uuid(),
      fc.uuid({ version: 7 }),
      fc.uuid().map((u) => u.toUpperCase()),
      mutated,
      fc.constantFrom('00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', '', '0190c2a4-7b1e-7c3d-8e4f-0123456789ab0'),
      fc.string({ minLength: 36, maxLength: 36 }),
    );
    fc.assert(
      fc.property(input, (s) => {
        expect(isUuid(s)).toBe(UUID.test(s));
      }),
      { numRuns: 5000 },
    );
  });
});
