import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EventSchemas, type OrderEventType } from '../../src/domain/events.js';
import { badTextReason, checkEvent } from '../../src/protocol/event-contract.js';
import { compileFastPath } from '../../src/protocol/schema-fast-path.js';
import { upcast } from '../../src/domain/upcasters.js';

// Values near and across every rule of the event schemas, and hostile ones: wrong types, NaN,
// ±Infinity, -0, huge and fractional numbers, untrimmed and control-character strings, extra
// keys, keys out of order, prototype keys, odd prototypes, holes, undefined values.
const id = fc.oneof(
  { arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,8}$/), weight: 6 },
  fc.constantFrom('', ' P-1', 'P-1 ', 'P 1', '-P', 'A'.repeat(100), 'A'.repeat(101), 'P\u0000', '\u00e9', 'P-1\n'),
  fc.string({ maxLength: 6 }),
);
const text = fc.oneof(
  { arbitrary: fc.string({ maxLength: 12 }), weight: 4 },
  fc.constantFrom('', ' ', ' x', 'x ', 'Café-Müller', '客户一', 'a\u0007b', 'a\u200eb', '\uD800', 'x'.repeat(120), 'x'.repeat(121), 'x'.repeat(500), 'x'.repeat(501), 'name@example.com', '+44 20 7946 0958', '12345', ' +44 20 7946 0958'),
);
const int = fc.oneof(
  { arbitrary: fc.integer({ min: -2, max: 1_000_001 }), weight: 6 },
  fc.constantFrom(0, -0, 1, 1.5, Number.NaN, Infinity, -Infinity, 1e6, 1e6 + 1, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, 2 ** 53 + 2, 1e308, Number.MIN_VALUE, '1', null, true),
);
const timestamp = fc.oneof(
  { arbitrary: fc.date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString()), weight: 4 },
  fc.constantFrom('2026-02-29T00:00:00Z', '2024-02-29T00:00:00Z', '2026-01-01T00:00:00+01:00', '2026-01-01T00:00:00', '2026-01-01', 'yesterday', '2026-13-01T00:00:00Z', ' 2026-01-01T00:00:00Z', 1),
);
const anything = fc.oneof(id, text, int, timestamp, fc.constantFrom(undefined, null, [], {}, 'PAID', 'USD', 'usd', 'XXX', 'CREATED'));

/** A value for one field of a schema: mostly plausible, often not. */
function fieldValue(key: string): fc.Arbitrary<unknown> {
  const plausible: Record<string, fc.Arbitrary<unknown>> = {
    currency: fc.constantFrom('USD', 'EUR', 'JPY', 'XXX', 'usd', 'US', 'ZZZ'),
    newStatus: fc.constantFrom('PAID', 'RESERVED', 'SHIPPED', 'CANCELLED', 'CREATED', 'paid'),
    previousStatus: fc.oneof(text, fc.constant(null), fc.constant(undefined)),
    customerContact: fc.oneof(text, fc.constant(null)),
    customerName: text,
    reason: text,
    description: text,
    items: fc.oneof({ arbitrary: fc.array(item, { maxLength: 3 }), weight: 6 }, fc.constantFrom([undefined], 'x', null), fc.array(fc.constant(0), { minLength: 500, maxLength: 501 }).map(() => Array.from({ length: 501 }, () => ({ sku: 'S', description: '', quantity: 1, unitPrice: 1 })))),
  };
  if (key in plausible) return fc.oneof({ arbitrary: plausible[key]!, weight: 15 }, anything);
  if (key.endsWith('At')) return fc.oneof({ arbitrary: timestamp, weight: 15 }, anything);
  if (key.endsWith('Id') || key === 'sku') return fc.oneof({ arbitrary: id, weight: 15 }, anything);
  return fc.oneof({ arbitrary: int, weight: 15 }, anything);
}
const item: fc.Arbitrary<unknown> = fc.record({ sku: id, description: text, quantity: int, unitPrice: int });

/** An object of the schema's keys, then mangled: a key dropped, added, reordered, or a hostile shape. */
function dataFor(keys: string[]): fc.Arbitrary<unknown> {
  const base = fc.tuple(...keys.map((k) => fieldValue(k))).map((values) => Object.fromEntries(keys.map((k, i) => [k, values[i]])));
  const mangle = fc.constantFrom('none', 'none', 'none', 'drop', 'extra', 'reverse', 'sorted', 'proto', 'nullproto', 'class', 'symbol', 'array', 'undefinedKey');
  return fc.tuple(base, mangle, fc.nat(keys.length)).map(([o, how, i]) => {
    const entries = Object.entries(o);
    switch (how) {
      case 'drop':
        return Object.fromEntries(entries.filter((_, j) => j !== i));
      case 'extra':
        return { ...o, extra: 1 };
      case 'reverse':
        return Object.fromEntries(entries.reverse());
      case 'sorted': // as the server's canonical JSON stores it
        return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : 1)));
      case 'proto':
        return JSON.parse(`{"__proto__":{"x":1}${JSON.stringify(o) === '{}' ? '}' : `,${JSON.stringify(o).slice(1)}`}`) as unknown;
      case 'nullproto':
        return Object.assign(Object.create(null) as object, o);
      case 'class':
        return Object.assign(new (class Data {})(), o);
      case 'symbol':
        return { ...o, [Symbol('s')]: 1 };
      case 'array':
        return entries.map(([, v]) => v);
      case 'undefinedKey':
        return { ...o, [keys[i % keys.length]!]: undefined };
      default:
        return o;
    }
  });
}

const withoutSymbols = (v: unknown): unknown =>
  Array.isArray(v) ? v.map(withoutSymbols) : typeof v === 'object' && v !== null ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withoutSymbols(x)])) : v;

/** JSON text with every object's keys sorted (symbol keys dropped, as JSON does). */
const sortedJson = (v: unknown): string =>
  JSON.stringify(withoutSymbols(v), (_k, x: unknown) => (typeof x === 'object' && x !== null && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x));

const shapeKeys = (schema: unknown) => Object.keys((schema as z.ZodObject).shape);

describe('compiled event schemas', () => {
  const types = Object.keys(EventSchemas) as OrderEventType[];

  it('compiles every current event schema (else appends fall back to zod)', () => {
    for (const type of types) expect(compileFastPath(EventSchemas[type].schema as z.ZodType), type).not.toBeNull();
  });

  for (const type of types) {
    it(`${type}: says yes only when zod accepts and returns the value unchanged but for key order`, () => {
      const schema = EventSchemas[type].schema as z.ZodType;
      const fast = compileFastPath(schema)!;
      let yes = 0;
      let no = 0;
      fc.assert(
        fc.property(dataFor(shapeKeys(schema)), (data) => {
          const parsed = schema.safeParse(data);
          if (!fast(data)) {
            no++;
            return;
          }
          yes++;
          expect(parsed.success).toBe(true);
          // Equal as JSON but for key order: symbol keys, which JSON never carries, are not compared.
          expect(sortedJson(parsed.data)).toBe(sortedJson(data));
        }),
        { numRuns: 3000 },
      );
      // Neither side may hold vacuously.
      expect(yes).toBeGreaterThan(10);
      expect(no).toBeGreaterThan(10);
    });
  }

  it('takes the ordinary events of every type', () => {
    const ok: Record<OrderEventType, unknown> = {
      OrderCreated: { orderId: 'O-1', customerId: 'C-1', customerName: 'Café-Müller', customerContact: null, items: [{ sku: 'S-1', description: '', quantity: 2, unitPrice: 500 }], total: 1000, currency: 'USD' },
      PaymentReceived: { paymentId: 'P-1', amount: 5 },
      InventoryReserved: { reservationId: 'R-1' },
      OrderShipped: { shipmentId: 'S-1', shippedAt: '2026-01-01T00:00:00.000Z' },
      OrderCancelled: { reason: 'no stock', cancelledAt: '2026-01-01T00:00:00Z' },
      PaymentRefunded: { paymentId: 'P-1', amount: 5, reason: 'cancelled' },
      OrderStatusChanged: { orderId: 'O-1', newStatus: 'PAID', previousStatus: null },
      InventoryReleased: { reservationId: 'R-1', releasedAt: '2026-01-01T00:00:00+01:00' },
    };
    for (const type of types) {
      const schema = EventSchemas[type].schema as z.ZodType;
      expect(schema.safeParse(ok[type]).success, type).toBe(true);
      expect(compileFastPath(schema)!(ok[type]), type).toBe(true);
    }
  });

  it('takes an upcast v2 OrderCreated (the upcaster writes the current schema\'s key order), and refuses a bad one through zod', () => {
    const v2 = { orderId: 'O-1', customerId: 'C-1', items: [{ sku: 'S-1', quantity: 2, unitPrice: 500 }], total: 1000, currency: 'USD' };
    const current = upcast('OrderCreated', 2, v2).data;
    expect(compileFastPath(EventSchemas.OrderCreated.schema as z.ZodType)!(current)).toBe(true);
    expect(current).toStrictEqual((EventSchemas.OrderCreated.schema as z.ZodType).parse(current));
    const verdict = checkEvent({ streamType: 'Order', eventType: 'OrderCreated', schemaVersion: 2, data: v2 }, { now: Date.parse('2026-01-01T00:00:00Z') });
    expect(verdict).toStrictEqual({ ok: true, schemaVersion: 3 });
    // Extra keys stay (after the schema's), so the strict schema still names them.
    const extra = checkEvent({ streamType: 'Order', eventType: 'OrderCreated', schemaVersion: 2, data: { ...v2, items: [{ ...v2.items[0], colour: 'red' }] } });
    expect(extra).toMatchObject({ ok: false, kind: 'invalid', issues: [{ path: 'data.items.0' }] });
  });

  it('leaves what it cannot compile to zod', () => {
    expect(compileFastPath(z.object({ a: z.string() }))).toBeNull(); // strips unknown keys
    expect(compileFastPath(z.strictObject({ a: z.string().email() }))).toBeNull();
    expect(compileFastPath(z.strictObject({ a: z.union([z.string(), z.number()]) }))).toBeNull();
    expect(compileFastPath(z.strictObject({ a: z.string().default('x') }))).toBeNull();
    expect(compileFastPath(z.strictObject({ a: z.coerce.number() }))).toBeNull();
  });

  it('the contract gives the same verdict and issues with or without the compiled path', () => {
    // A failing value goes to zod, which names the problem as before.
    const bad = checkEvent({ streamType: 'Order', eventType: 'PaymentReceived', schemaVersion: 1, data: { paymentId: 'P-1', amount: 0 } }, { now: Date.parse('2026-01-01T00:00:00Z') });
    expect(bad).toMatchObject({ ok: false, kind: 'invalid', issues: [{ path: 'data.amount', message: 'amount must be greater than zero' }] });
    // Keys in the server's canonical (sorted) order, as every pulled event has them: the compiled path takes it.
    const reordered = { amount: 5, paymentId: 'P-1' };
    expect(compileFastPath(EventSchemas.PaymentReceived.schema as z.ZodType)!(reordered)).toBe(true);
    const good = checkEvent({ streamType: 'Order', eventType: 'PaymentReceived', schemaVersion: 1, data: reordered }, { now: Date.parse('2026-01-01T00:00:00Z') });
    expect(good).toStrictEqual({ ok: true, schemaVersion: 1 });
    // Out of order and bad: zod names the problem.
    const badReordered = checkEvent({ streamType: 'Order', eventType: 'PaymentReceived', schemaVersion: 1, data: { amount: 0, paymentId: 'P-1' } }, { now: Date.parse('2026-01-01T00:00:00Z') });
    expect(badReordered).toMatchObject({ ok: false, kind: 'invalid', issues: [{ path: 'data.amount', message: 'amount must be greater than zero' }] });
  });
});

describe('the contract\'s text check', () => {
  it('refuses exactly the strings badTextReason names (NUL, lone surrogates), short or long, as values and keys', () => {
    const unit = fc.oneof(
      { arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }), weight: 4 },
      fc.string({ unit: 'binary', maxLength: 8 }),
      fc.constantFrom('\u0000', '\uD800', '\uDC00', '\uD83D\uDE00', '\uDE00\uD83D', 'a', 'x'.repeat(60)),
    );
    const text = fc.array(unit, { maxLength: 12 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(text, fc.boolean(), (s, asKey) => {
        const data = asKey ? { [s]: 1 } : { x: s };
        const verdict = checkEvent({ streamType: 'Other', eventType: 'SomethingNew', schemaVersion: 1, data });
        expect(verdict.ok).toBe(badTextReason(s) === null);
      }),
      { numRuns: 3000 },
    );
  });
});
