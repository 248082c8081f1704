import { describe, expect, it } from 'vitest';
import { CURRENCY_MINOR_DIGITS, minorUnitDigits } from '../../src/domain/currencies.js';
import { EventSchemas, type OrderEventType } from '../../src/domain/events.js';
import { majorToMinor, minorToMajor } from '../../src/domain/money.js';
import { fromSeedEvent, normalizeSeedTimestamp } from '../../src/domain/seed-dialect.js';
import { foldOrder } from '../../src/domain/state.js';
import { UpcastError, upcast } from '../../src/domain/upcasters.js';

describe('money in major units', () => {
  it('converts exactly by decimal arithmetic, in the currency’s ISO 4217 digits', () => {
    expect(majorToMinor('19.99', 'USD')).toBe(1999);
    expect(majorToMinor(19.99, 'USD')).toBe(1999);
    expect(majorToMinor(0.3, 'USD')).toBe(30);
    expect(majorToMinor(1.005, 'KWD')).toBe(1005);
    expect(majorToMinor('19.990', 'USD')).toBe(1999);
    expect(majorToMinor(1500, 'JPY')).toBe(1500);
    expect(majorToMinor('1.125', 'KWD')).toBe(1125);
    expect(majorToMinor('0.0001', 'CLF')).toBe(1);
    expect(() => majorToMinor(19.999, 'USD')).toThrow(/more than 2 decimal places/);
    expect(() => majorToMinor('1500.5', 'JPY')).toThrow(/more than 0 decimal places/);
    expect(() => majorToMinor('-1', 'USD')).toThrow(/negative/);
    expect(() => majorToMinor('1e3', 'USD')).toThrow(/not a decimal amount/);
    expect(() => majorToMinor('12,50', 'EUR')).toThrow(/not a decimal amount/);
    expect(() => majorToMinor(1, 'XYZ')).toThrow(/not an ISO 4217 currency/);
    expect(minorToMajor(1999, 'USD')).toBe(19.99);
    expect(minorToMajor(1500, 'JPY')).toBe(1500);
    expect(minorToMajor(1125, 'KWD')).toBe(1.125);
    expect(minorToMajor(5, null)).toBe(0.05);
  });

  it('the ISO 4217 table has the known exceptions', () => {
    expect([minorUnitDigits('JPY'), minorUnitDigits('USD'), minorUnitDigits('KWD'), minorUnitDigits('CLF'), minorUnitDigits('EUR')]).toEqual([0, 2, 3, 4, 2]);
    expect(CURRENCY_MINOR_DIGITS.size).toBeGreaterThan(150);
    for (const code of CURRENCY_MINOR_DIGITS.keys()) expect(code).toMatch(/^[A-Z]{3}$/);
  });
});

describe('seed timestamps', () => {
  it('accepts dates and zoned timestamps, normalised to UTC', () => {
    expect(normalizeSeedTimestamp('2026-01-02')).toBe('2026-01-02T00:00:00.000Z');
    expect(normalizeSeedTimestamp('2026-01-02T10:30:00+02:00')).toBe('2026-01-02T08:30:00.000Z');
    expect(normalizeSeedTimestamp('2026-01-02T10:30:00Z')).toBe('2026-01-02T10:30:00.000Z');
    for (const bad of ['2026-02-30', '2026-13-01', '02/01/2026', '2026-01-02T10:30:00', 'yesterday', '']) expect(normalizeSeedTimestamp(bad)).toBeNull();
  });
});

describe('seed events become current domain events', () => {
  it('every seed form translates to a valid event of the current schema', () => {
    const samples: Record<string, unknown> = {
      OrderCreated: { orderId: 'O-1', customerId: 'C-1', totalAmount: 100 },
      PaymentReceived: { paymentId: 'P-1', amount: 100 },
      InventoryReserved: { reservationId: 'R-1' },
      InventoryReleased: { reservationId: 'R-1', releasedAt: '2026-01-02' },
      OrderShipped: { shipmentId: 'S-1', shippedAt: '2026-01-02' },
      OrderCancelled: { reason: 'asked', cancelledAt: '2026-01-02' },
      PaymentRefunded: { paymentId: 'P-1', amount: '0.50', reason: 'damaged' },
      OrderStatusChanged: { orderId: 'O-1', previousStatus: 'CREATED', newStatus: 'PAID' },
    };
    for (const type of Object.keys(EventSchemas) as OrderEventType[]) {
      const t = fromSeedEvent(type, samples[type], { aggregateId: 'O-1', orderCurrency: 'USD' });
      expect(t.ok, type).toBe(true);
      if (t.ok) expect(EventSchemas[type].schema.safeParse(t.event.data).success, type).toBe(true);
    }
    const pay = fromSeedEvent('PaymentReceived', { paymentId: 'P', amount: 1 }, { aggregateId: 'O-1', orderCurrency: null });
    expect(pay).toEqual({ ok: false, issues: [{ path: '', message: expect.stringMatching(/does not exist/) }] });
    const extra = fromSeedEvent('InventoryReserved', { reservationId: 'R', warehouse: 'W' }, { aggregateId: 'O-1', orderCurrency: 'USD' });
    expect(extra.ok).toBe(false);
  });

  it('stored v1 OrderCreated (seed 000 and 004 forms) upcasts to a valid current event', () => {
    for (const v1 of [
      { orderId: 'O-1', customerId: 'C-1', totalAmount: 100 },
      { orderId: 'O-1', customerId: 'C-1', items: [{ sku: 'A', quantity: 1, unitPrice: '25.50' }], total: 25.5, status: 'CREATED' },
    ]) {
      const up = upcast('OrderCreated', 1, v1);
      expect(up.schemaVersion).toBe(EventSchemas.OrderCreated.version);
      expect(EventSchemas.OrderCreated.schema.parse(up.data)).toMatchObject({ currency: 'USD', customerName: 'C-1', customerContact: null });
    }
    expect(upcast('OrderCreated', 1, { orderId: 'O', customerId: 'C', total: '25.50' }).data).toMatchObject({ total: 2550 });
    expect(() => upcast('OrderCreated', 1, { orderId: 'O', customerId: 'C', total: 1, status: 'SHIPPED' })).toThrow(UpcastError);
    expect(() => upcast('OrderCreated', 1, { orderId: 'O', customerId: 'C' })).toThrow(/totalAmount/);
    expect(() => upcast('OrderCreated', 1, { orderId: 'O', customerId: 'C', total: 1, totalAmount: 2 })).toThrow(/differ/);
  });
});

describe('OrderStatusChanged in the fold', () => {
  const created = { type: 'OrderCreated', data: { orderId: 'O', customerId: 'C', items: [], total: 100, currency: 'USD' } };
  const change = (newStatus: string) => ({ type: 'OrderStatusChanged', data: { orderId: 'O', newStatus } });

  it('sets the declared status; a payment or reservation does not reopen a closed order', () => {
    expect(foldOrder([created, change('PAID')]).status).toBe('PAID');
    expect(foldOrder([created, change('RESERVED'), change('SHIPPED')])).toMatchObject({ status: 'SHIPPED', version: 3 });
    expect(foldOrder([created, change('SHIPPED'), change('PAID')]).status).toBe('SHIPPED');
    expect(foldOrder([created, change('CANCELLED'), change('RESERVED')]).status).toBe('CANCELLED');
    // Stored before the server refused it: a status change that starts a stream makes no order.
    expect(foldOrder([change('SHIPPED')])).toMatchObject({ exists: false, status: null, version: 1 });
  });
});
