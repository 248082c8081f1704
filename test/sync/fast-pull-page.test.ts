import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fastPullResponse } from '../../src/sync/fast-pull-page.js';
import { WirePullResponse } from '../../src/sync/http-client.js';

// Pull pages near and across every rule of the device's wire schema: coordinates, text bounds
// (in UTF-16 units and code points), timestamps, hashes, data/metadata shapes, cursors, extra keys.
const text = fc.oneof(
  { arbitrary: fc.constantFrom('ORD-1', 'Order', 'PaymentReceived', 'x'), weight: 8 },
  fc.constantFrom('', 'x'.repeat(1000), 'x'.repeat(1001), '😀'.repeat(500), '😀'.repeat(501), 'a b', 42, null),
  fc.string({ maxLength: 5 }),
);
const int = (good: fc.Arbitrary<number>) => fc.oneof({ arbitrary: good, weight: 8 }, fc.constantFrom(0, -1, 1.5, 2 ** 53, Number.MAX_SAFE_INTEGER, '3', null));
const record = fc.oneof(
  { arbitrary: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }), weight: 8 },
  fc.constantFrom(null, [], 'd', 1, Object.create(null) as object, JSON.parse('{"__proto__":{"a":1},"b":2}') as object, { 2: 'x', 1: 'y', z: 0 }),
);
const event = fc
  .record({
    eventId: fc.oneof({ arbitrary: fc.uuid({ version: 7 }), weight: 8 }, fc.constantFrom('', 'not-a-uuid', '0190C2A4-7B1E-7C3D-8E4F-0123456789AB', 7)),
    streamId: text,
    streamType: text,
    streamVersion: int(fc.integer({ min: 1, max: 1000 })),
    globalPosition: int(fc.integer({ min: 1, max: 1_000_000 })),
    eventType: text,
    schemaVersion: fc.oneof({ arbitrary: fc.integer({ min: -2, max: 3 }), weight: 8 }, fc.constantFrom(1.5, 2 ** 53, '1')),
    data: record,
    metadata: record,
    recordedAt: fc.oneof({ arbitrary: fc.constantFrom('2026-12-01T00:10:11.123Z', '2026-12-01 00:10:11'), weight: 8 }, fc.constantFrom('yesterday', '', 5)),
    hash: fc.oneof({ arbitrary: fc.constantFrom('a'.repeat(64), '0123456789abcdef'.repeat(4)), weight: 8 }, fc.constantFrom('A'.repeat(64), 'a'.repeat(63), 1)),
    extra: fc.constantFrom(undefined, 'tenantId', 'position'),
  }, { requiredKeys: ['eventId', 'streamId', 'streamVersion', 'globalPosition', 'eventType', 'schemaVersion', 'data', 'metadata', 'recordedAt', 'hash'] })
  .map(({ extra, ...e }) => (extra ? { ...e, [extra]: 'x' } : e));
const page = fc
  .record({
    events: fc.oneof({ arbitrary: fc.array(event, { maxLength: 3 }), weight: 8 }, fc.constantFrom(null, {}, 'e')),
    nextPosition: int(fc.integer({ min: 0, max: 1_000_000 })),
    nextCursor: fc.constantFrom('v2.0.0', 'v2.12.345', 'v3.1.1', 'v2.01.1', 7),
    hasMore: fc.oneof({ arbitrary: fc.boolean(), weight: 8 }, fc.constantFrom(0, 'true', null)),
    extra: fc.constantFrom(undefined, 'x'),
  }, { requiredKeys: ['events', 'nextPosition', 'hasMore'] })
  .map(({ extra, ...p }) => (extra ? { ...p, [extra]: 1 } : p));

describe('fast pull-page check', () => {
  it('answers exactly what the wire schema answers, or leaves the page to it', () => {
    let fast = 0;
    fc.assert(
      fc.property(page, (input) => {
        // Through JSON, as pages arrive (no undefined values, plain objects).
        const body: unknown = JSON.parse(JSON.stringify(input));
        const quick = fastPullResponse(body);
        if (quick === null) return;
        fast++;
        const zod = WirePullResponse.safeParse(body);
        expect(zod.success).toBe(true);
        expect(quick).toStrictEqual(zod.data);
        expect(JSON.stringify(quick)).toBe(JSON.stringify(zod.data));
      }),
      { numRuns: 4000 },
    );
    // The property would hold vacuously if the fast path never answered.
    expect(fast).toBeGreaterThan(100);
  });

  it('takes an ordinary page, copying data and metadata', () => {
    const body = {
      events: [
        {
          eventId: '0190c2a4-7b1e-7c3d-8e4f-0123456789ab',
          streamId: 'ORD-1',
          streamType: 'Order',
          streamVersion: 1,
          globalPosition: 7,
          eventType: 'PaymentReceived',
          schemaVersion: 1,
          data: { paymentId: 'P-1', amount: 5 },
          metadata: { userId: 'u', tenantId: 't' },
          recordedAt: '2026-12-01T00:10:11.123Z',
          hash: 'a'.repeat(64),
        },
      ],
      nextPosition: 7,
      nextCursor: 'v2.0.7',
      hasMore: false,
    };
    const out = fastPullResponse(body);
    expect(out).toStrictEqual(WirePullResponse.parse(body));
    expect(out!.events[0]!.data).not.toBe(body.events[0]!.data);
    const { nextCursor: _c, ...withoutCursor } = body;
    expect(fastPullResponse(withoutCursor)).toStrictEqual(WirePullResponse.parse(withoutCursor));
  });
});
