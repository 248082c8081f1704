import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { money, newId } from '../../renderer/src/format.js';
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
});
