import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { money, newId, syncErrorInWords } from '../../renderer/src/format.js';
import { parseRoute } from '../../renderer/src/router.js';
import { Identifier } from '../../src/domain/events.js';
import { z } from 'zod';
import { formatAmount, parseAmount } from '../../renderer/src/amounts.js';
import { fieldErrors, lengthNote } from '../../renderer/src/forms.js';

describe('renderer helpers', () => {
  it('routes by hash, including encoded order ids', () => {
    expect(parseRoute('')).toEqual({ screen: 'orders', orderId: null });
    expect(parseRoute('#/orders/ORD%3A1')).toEqual({ screen: 'orders', orderId: 'ORD:1' });
    expect(parseRoute('#/sync')).toEqual({ screen: 'sync' });
    expect(parseRoute('#/settings')).toEqual({ screen: 'settings' });
  });

  it('shows amounts exactly, grouped, with the currency\'s own decimals', () => {
    // Node's ICU formats en-US with a no-break space after the code.
    const plain = (t: string) => t.replace(/[\u00a0\u202f]/g, ' ');
    expect(plain(money(5997, 'USD'))).toBe('USD 59.97');
    expect(plain(money(123456789, 'USD'))).toBe('USD 1,234,567.89');
    expect(plain(money(1500, 'JPY'))).toBe('JPY 1,500');
    expect(plain(money(1234, 'KWD'))).toBe('KWD 1.234');
    expect(plain(formatAmount(BigInt(Number.MAX_SAFE_INTEGER), 'USD', 'en-US'))).toBe('USD 90,071,992,547,409.91');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom('USD', 'JPY', 'KWD', 'EUR'), (minor, currency) => {
        const shown = formatAmount(minor, currency, 'en-US');
        expect(parseAmount(shown, currency, 'en-US')).toEqual({ ok: true, minor: BigInt(minor) });
      }),
    );
  });

  it('reads amounts as people type them, exactly, and says what is wrong otherwise', () => {
    const ok = (minor: number) => ({ ok: true, minor: BigInt(minor) });
    expect(parseAmount('1,000.00', 'USD', 'en-US')).toEqual(ok(100000));
    expect(parseAmount('$5', 'USD', 'en-US')).toEqual(ok(500));
    expect(parseAmount(' USD 12.5 ', 'USD', 'en-US')).toEqual(ok(1250));
    expect(parseAmount('0.1', 'USD', 'en-US')).toEqual(ok(10));
    expect(parseAmount('5,50', 'EUR', 'de-DE')).toEqual(ok(550));
    expect(parseAmount('1.234,56 €', 'EUR', 'de-DE')).toEqual(ok(123456));
    expect(parseAmount('5.50', 'EUR', 'de-DE')).toEqual(ok(550));
    expect(parseAmount('1 500', 'JPY', 'en-US')).toEqual(ok(1500));
    const refused = (text: string, currency: string, message: RegExp, locale = 'en-US') => {
      const r = parseAmount(text, currency, locale);
      expect(r.ok, text).toBe(false);
      if (!r.ok) expect(r.message).toMatch(message);
    };
    refused('', 'USD', /^Enter an amount, for example 1,234\.50\.$/);
    refused('-3', 'USD', /cannot be negative/);
    refused('5,50', 'USD', /not a well-written amount here\. Write it like 1,234\.50/);
    refused('12.345', 'USD', /USD amounts have at most 2 decimal places/);
    refused('1.5', 'JPY', /JPY amounts have no decimals/);
    refused('abc', 'USD', /not an amount/);
    refused('900719925474100000', 'USD', /more than the largest amount/);
  });

  it('turns validator wording into sentences people can act on', () => {
    const issues = (schema: z.ZodType, value: unknown) => {
      const r = schema.safeParse(value);
      return r.success ? {} : fieldErrors(r.error);
    };
    const item = z.object({ quantity: z.number().int().positive(), price: z.number().positive() });
    expect(issues(item, { quantity: Number.NaN, price: 0 })).toEqual({ quantity: 'Enter a whole number, for example 3.', price: 'Must be more than 0.' });
    expect(issues(item, { quantity: 1.5, price: 1 })).toEqual({ quantity: 'Enter a whole number, for example 3.' });
    expect(issues(z.object({ reason: z.string().max(500) }), { reason: 'x'.repeat(699) })).toEqual({ reason: 'Too long: at most 500 characters.' });
    // A schema's own message is kept, as a sentence.
    expect(issues(z.object({ id: Identifier }), { id: 'Café' })).toEqual({ id: 'May contain letters, digits and . _ : @ - only.' });
    for (const text of Object.values(issues(item, { quantity: 'x', price: -1 }))) expect(text).not.toMatch(/expected|received|Invalid input|Too small/);
    expect(lengthNote('x'.repeat(699), 500)).toEqual({ text: '699 / 500', over: true });
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
