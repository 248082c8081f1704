import { z } from 'zod';
import { Currency, MinorUnits, PositiveMinorUnits } from './money.js';

/** Identifiers chosen by people or other systems: short, printable, no control characters. */
export const Identifier = z
  .string()
  .min(1, 'must not be empty')
  .max(100, 'must be at most 100 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]*$/, 'may contain letters, digits and . _ : @ - only');

export const IsoTimestamp = z.iso.datetime({ offset: true, message: 'must be an ISO-8601 timestamp' });

export const OrderItem = z.strictObject({
  sku: Identifier,
  quantity: z.number().int().positive().max(1_000_000),
  unitPrice: MinorUnits,
});
export type OrderItem = z.infer<typeof OrderItem>;

/** Current (v2) OrderCreated: integer minor units plus an explicit currency. */
export const OrderCreatedV2 = z.strictObject({
  orderId: Identifier,
  customerId: Identifier,
  items: z.array(OrderItem).min(1, 'an order needs at least one item').max(500),
  total: MinorUnits,
  currency: Currency,
});

/** v1 as the seed system wrote it: decimal totalAmount in major units, no currency. */
export const OrderCreatedV1 = z.object({
  orderId: Identifier,
  customerId: Identifier,
  items: z
    .array(z.object({ sku: Identifier, quantity: z.number().int().positive(), unitPrice: z.union([z.number(), z.string()]) }))
    .default([]),
  totalAmount: z.union([z.number(), z.string()]),
});

export const PaymentReceivedV1 = z.strictObject({
  paymentId: Identifier,
  amount: PositiveMinorUnits,
});

export const InventoryReservedV1 = z.strictObject({
  reservationId: Identifier,
});

export const OrderShippedV1 = z.strictObject({
  shipmentId: Identifier,
  shippedAt: IsoTimestamp,
});

export const OrderCancelledV1 = z.strictObject({
  reason: z.string().trim().min(1, 'a reason is required').max(500),
  cancelledAt: IsoTimestamp,
});

/** Compensating event: money goes back (e.g. after a cancellation). */
export const PaymentRefundedV1 = z.strictObject({
  paymentId: Identifier,
  amount: PositiveMinorUnits,
  reason: z.string().trim().min(1).max(500),
});

/** The current schema of every event type, and the version number that schema has. */
export const EventSchemas = {
  OrderCreated: { version: 2, schema: OrderCreatedV2 },
  PaymentReceived: { version: 1, schema: PaymentReceivedV1 },
  InventoryReserved: { version: 1, schema: InventoryReservedV1 },
  OrderShipped: { version: 1, schema: OrderShippedV1 },
  OrderCancelled: { version: 1, schema: OrderCancelledV1 },
  PaymentRefunded: { version: 1, schema: PaymentRefundedV1 },
} as const;

export type OrderEventType = keyof typeof EventSchemas;
export const ORDER_EVENT_TYPES = Object.keys(EventSchemas) as OrderEventType[];
export const ORDER_STREAM_TYPE = 'Order';

export type OrderEventData = {
  [K in OrderEventType]: z.infer<(typeof EventSchemas)[K]['schema']>;
};

/** A domain event as produced by a command handler (before it gets an envelope). */
export type OrderEvent = {
  [K in OrderEventType]: { type: K; data: OrderEventData[K] };
}[OrderEventType];

export function isOrderEventType(type: string): type is OrderEventType {
  return Object.prototype.hasOwnProperty.call(EventSchemas, type);
}

export function currentSchemaVersion(type: string): number | undefined {
  return isOrderEventType(type) ? EventSchemas[type].version : undefined;
}
