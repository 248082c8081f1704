import { v7 as uuidv7 } from 'uuid';
import type { NewEventInput } from '../../src/protocol/envelope.js';

export const created = (orderId: string, total = 10_000, extra: Partial<Record<string, unknown>> = {}): NewEventInput => ({
  eventId: uuidv7(),
  eventType: 'OrderCreated',
  schemaVersion: 2,
  data: { orderId, customerId: 'C-1', items: [{ sku: 'SKU-1', quantity: 1, unitPrice: total }], total, currency: 'USD', ...extra },
  metadata: { userId: 'u-1', deviceId: 'd-1', source: 'test' },
});

export const paid = (amount: number, paymentId = `P-${uuidv7().slice(-6)}`): NewEventInput => ({
  eventId: uuidv7(),
  eventType: 'PaymentReceived',
  schemaVersion: 1,
  data: { paymentId, amount },
  metadata: {},
});

export const reserved = (reservationId = 'R-1'): NewEventInput => ({
  eventId: uuidv7(),
  eventType: 'InventoryReserved',
  schemaVersion: 1,
  data: { reservationId },
  metadata: {},
});

export const shipped = (shipmentId = 'S-1'): NewEventInput => ({
  eventId: uuidv7(),
  eventType: 'OrderShipped',
  schemaVersion: 1,
  data: { shipmentId, shippedAt: '2026-01-02T00:00:00.000Z' },
  metadata: {},
});
