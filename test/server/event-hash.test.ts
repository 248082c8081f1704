import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonicalJson } from '../../src/protocol/canonical-json.js';
import { GENESIS_HASH, computeEventHash } from '../../src/protocol/event-hash.js';
import * as serverHash from '../../src/server/hash.js';

/** The server's canonical JSON as it was when the chain hashes below were first stored (src/server/hash.ts). */
function formerServerCanonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    return text === undefined ? 'null' : text;
  }
  if (Array.isArray(value)) return `[${value.map(formerServerCanonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${formerServerCanonicalJson(obj[k])}`).join(',')}}`;
}

const sample = {
  eventId: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
  streamId: 'order-42',
  streamVersion: 1,
  eventType: 'OrderCreated',
  schemaVersion: 2,
  data: JSON.parse(
    '{"orderId":"order-42","customerId":"c-ü\\u00e9 \\"q\\"","items":[{"sku":"SKU-1","quantity":2,"unitPrice":1999}],"total":3998,"currency":"EUR","z":null,"a":[1.5,-0,1e21,{"b":true,"A":false}]}',
  ) as Record<string, unknown>,
  metadata: JSON.parse('{"userId":"u1","tenantId":"t1","source":"device","correlationId":"c-1","__proto__":{"x":1}}') as Record<string, unknown>,
  recordedAt: '2024-05-01T10:00:00.000Z',
};

describe('event hash (moved to src/protocol/event-hash.ts)', () => {
  it('gives the hashes the server stored before the move', () => {
    // Computed with the former src/server/hash.ts, before it was moved to the protocol module.
    const h1 = computeEventHash(GENESIS_HASH, sample);
    expect(h1).toBe('e02367f395aa90797056086414a76b8c626f31089523d317efec68303cc5968e');
    const h2 = computeEventHash(h1, { ...sample, streamVersion: 2, eventType: 'OrderNoteAdded', data: { note: 'n', by: 'x' } });
    expect(h2).toBe('0c9e31f0e986c9bad2d334b35289c51c210f27d86ea610a9b735f15ebbc4ce5f');
  });

  it('is still exported from src/server/hash.ts', () => {
    expect(serverHash.computeEventHash).toBe(computeEventHash);
    expect(serverHash.GENESIS_HASH).toBe(GENESIS_HASH);
    expect(serverHash.canonicalJson).toBe(canonicalJson);
  });

  it('writes any parsed JSON value exactly as the former server version did', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const parsed: unknown = JSON.parse(JSON.stringify(v));
        expect(canonicalJson(parsed)).toBe(formerServerCanonicalJson(parsed));
      }),
      { numRuns: 500 },
    );
  });

  it('writes values nested 100,000 levels deep (JSON.stringify runs out of stack first)', () => {
    for (const levels of [100, 100_000]) {
      const objects: unknown = JSON.parse('{"b":1,"x":'.repeat(levels) + '[2,{"d":null,"c":true}]' + '}'.repeat(levels));
      expect(canonicalJson(objects)).toBe('{"b":1,"x":'.repeat(levels) + '[2,{"c":true,"d":null}]' + '}'.repeat(levels));
      const arrays: unknown = JSON.parse('['.repeat(levels) + '{"z":1,"a":2}' + ']'.repeat(levels));
      expect(canonicalJson(arrays)).toBe('['.repeat(levels) + '{"a":2,"z":1}' + ']'.repeat(levels));
      if (levels <= 100) expect(canonicalJson(objects)).toBe(formerServerCanonicalJson(objects));
    }
  });

  it('keeps __proto__ keys of parsed JSON and sorts null-prototype objects', () => {
    const parsed: unknown = JSON.parse('{"b":1,"__proto__":{"y":2,"x":1},"a":[null,{"d":1,"c":2}]}');
    expect(canonicalJson(parsed)).toBe('{"__proto__":{"x":1,"y":2},"a":[null,{"c":2,"d":1}],"b":1}');
    expect(canonicalJson(parsed)).toBe(formerServerCanonicalJson(parsed));
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { b: 1, a: 2 });
    expect(canonicalJson(bare)).toBe('{"a":2,"b":1}');
  });

  it('changes when any protected field changes', () => {
    const base = computeEventHash(GENESIS_HASH, sample);
    expect(computeEventHash(GENESIS_HASH, { ...sample, data: { ...sample.data, total: 3999 } })).not.toBe(base);
    expect(computeEventHash(GENESIS_HASH, { ...sample, recordedAt: '2024-05-01T10:00:00.001Z' })).not.toBe(base);
    expect(computeEventHash('1'.repeat(64), sample)).not.toBe(base);
  });
});
