import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { money, newId, syncErrorInWords } from '../../renderer/src/format.js';
import { parseRoute } from '../../renderer/src/router.js';
import { Identifier } from '../../src/domain/events.js';
import { toMinorUnits } from '../../src/domain/money.js';

describe('renderer helpers', () => {
  it('routes by hash, including encoded order ids', () => {
    expect(parseRoute('')).toEqual({ screen: 'orders', orderId: null });
    expect(parseRoute('#/orders/ORD%3A1')).toEqual({ screen: 'orders', orderId: 'ORD:1' });
    expect(parseRoute('#/sync')).toEqual({ screen: 'sync' });
    expect(parseRoute('#/settings')).toEqual({ screen: 'settings' });
  });

  it('shows amounts exactly and what the user types parses back to the same minor units', () => {
    expect(money(5997, 'USD')).toBe('59.97 USD');
    expect(money(5, null)).toBe('0.05');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (minor) => {
        expect(toMinorUnits(money(minor, null))).toBe(minor);
      }),
    );
  });

  it('generates ids the domain accepts', () => {
    for (let i = 0; i < 50; i++) expect(Identifier.safeParse(newId('PAY')).success).toBe(true);
    expect(new Set(Array.from({ length: 200 }, () => newId('ORD'))).size).toBe(200);
  });

  it('puts sync errors into words, keeping unknown ones verbatim', () => {
    expect(syncErrorInWords('POST /sync/push: fetch failed (ECONNREFUSED)', 'http://s:1')).toMatch(/^The server at http:\/\/s:1 is not answering\. Your changes are safe/);
    expect(syncErrorInWords('getaddrinfo ENOTFOUND orders.example', null)).toMatch(/could not be found\. Check the server URL/);
    expect(syncErrorInWords('HTTP 401 Unauthorized', null)).toMatch(/access token/);
    expect(syncErrorInWords('HTTP 503 Service Unavailable', null)).toMatch(/internal problem/);
    expect(syncErrorInWords('checksum mismatch', null)).toBe('Sync failed: checksum mismatch');
  });
});
