import { z } from 'zod';
import { Currency, MinorUnits, PositiveMinorUnits } from './money.js';

/** Identifiers chosen by people or other systems: short, printable, no control characters. */
export const Identifier = z
  .string()
  .min(1, 'must not be empty')
  .max(100, 'must be at most 100 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]*$/, 'may contain letters, digits and . _ : @ - only');

export const IsoTimestamp = z.iso.datetime({ offset: true, message: 'must be an ISO-8601 timestamp' });

/** Free text people type (names, descriptions): any script, no control characters, trimmed. */
export const personText = (what: string, max: number) =>
  z
    .string({ message: `${what} must be text` })
    .trim()
    .max(max, `${what} must be at most ${max} characters`)
    .regex(/^[^\p{Cc}\p{Cf}\p{Cs}]*$/u, `${what} must not contain control characters`);

export const CUSTOMER_NAME_MAX = 120;
export const DESCRIPTION_MAX = 200;

/** The customer's display name as people write it: "Café-Müller", "客户一", "Blue Cafe". */
export const CustomerName = personText('the customer name', CUSTOMER_NAME_MAX).pipe(z.string().min(1, 'the customer name is required'));

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const PHONE = /^\+?[0-9][0-9 ()./-]*$/;

/** Whether a contact is an e-mail address (else a phone number). */
export function isEmailContact(contact: string): boolean {
  return contact.includes('@');
}

/** An optional way to reach the customer: an e-mail address or a phone number. */
export const CustomerContact = z
  .string({ message: 'the contact must be text' })
  .trim()
  .max(100, 'the contact must be at most 100 characters')
  .refine(
    (c) => (isEmailContact(c) ? EMAIL.test(c) : PHONE.test(c) && (c.match(/[0-9]/g)?.length ?? 0) >= 6 && (c.match(/[0-9]/g)?.length ?? 0) <= 15),
    'the contact must be an e-mail address (name@example.com) or a phone number (+44 20 7946 0958)',
  );

export const ItemDescription = personText('the item description', DESCRIPTION_MAX);

export const OrderItem = z.strictObject({
  sku: Identifier,
  /** What the item is, for people (the SKU is for systems); may be empty. */
  description: ItemDescription,
  quantity: z.number().int().positive().max(1_000_000),
  unitPrice: MinorUnits,
});
export type OrderItem = z.infer<typeof OrderItem>;

/** v2 items: a SKU without a description. */
export const OrderItemV2 = z.strictObject({
  sku: Identifier,
  quantity: z.number().int().positive().max(1_000_000),
  unitPrice: MinorUnits,
});

/**
 * Current (v3) OrderCreated: v2 plus the customer's display name, an optional contact and item
 * descriptions (v2 events are upcast: the name is the customer id, no contact, no descriptions).
 */
export const OrderCreatedV3 = z.strictObject({
  orderId: Identifier,
  customerId: Identifier,
  customerName: CustomerName,
  customerContact: CustomerContact.nullable(),
  items: z.array(OrderItem).max(500),
  total: MinorUnits,
  currency: Currency,
});

/**
 * v2 OrderCreated: integer minor units plus an explicit currency. Items may be empty:
 * the seed system records orders by their total alone (its own test fixture has no items), and an
 * event records what happened. "An order needs at least one item" is a rule of the CreateOrder
 * command, not of the fact.
 */
export const OrderCreatedV2 = z.strictObject({
  orderId: Identifier,
  customerId: Identifier,
  items: z.array(OrderItemV2).max(500),
  total: MinorUnits,
  currency: Currency,
});

/**
 * v1 as the seed systems wrote it: decimal amounts in major units, no currency (US dollars).
 * Seed 000 names the total `totalAmount`; seed 004 names it `total` and adds `status: "CREATED"`.
 */
export const OrderCreatedV1 = z
  .object({
    orderId: Identifier,
    customerId: Identifier,
    items: z
      .array(z.object({ sku: Identifier, quantity: z.number().int().positive(), unitPrice: z.union([z.number(), z.string()]) }))
      .default([]),
    totalAmount: z.union([z.number(), z.string()]).optional(),
    total: z.union([z.number(), z.string()]).optional(),
    /** Seed 004 writes the status an order starts in; any other start is not an order creation. */
    status: z.literal('CREATED', 'an order is created with status CREATED; later statuses come from later events').optional(),
  })
  .refine((v) => v.totalAmount !== undefined || v.total !== undefined, { message: 'totalAmount (or total) is required', path: ['totalAmount'] })
  .refine((v) => v.totalAmount === undefined || v.total === undefined || String(v.totalAmount) === String(v.total), {
    message: 'totalAmount and total differ; give one of them',
    path: ['total'],
  });

/**
 * Integer minor units, and only ever that: devices, the sync API and the seed API before it spoke
 * major units (its schema said "a whole number of minor units" and refused decimals) all stored
 * cents here. So v1 keeps that meaning and needs no new version: the seed API now converts the
 * seed's major units to minor units (in the order's currency) before it stores a payment.
 * Payments an integration sent through the old seed API meaning major units (100 for 100.00) were
 * stored, acknowledged and shown back as 1.00; they cannot be told apart from device payments (same
 * version, same shape, client-settable metadata), and stored events are immutable and hash-chained.
 * They keep their recorded meaning; a wrong one is corrected by a new event, by someone who knows.
 */
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

/**
 * Stock reserved for an order goes back on the shelf: the cancel decision emits it beside
 * OrderCancelled when inventory was reserved, so the release is a fact of its own.
 */
export const InventoryReleasedV1 = z.strictObject({
  reservationId: Identifier,
  releasedAt: IsoTimestamp,
});

/** Statuses an OrderStatusChanged may set: the seed's transitions after creation. */
export const STATUS_CHANGE_TARGETS = ['PAID', 'RESERVED', 'SHIPPED', 'CANCELLED'] as const;

/**
 * Seed 004's status change, as its status command publishes it. It declares a status without the
 * facts behind it (no payment, reservation or shipment ids). An order must exist first (the
 * server refuses it as the first event of a stream); CREATED and PARTIALLY_PAID are not targets:
 * an order starts CREATED, and PARTIALLY_PAID follows from amounts, not from a declaration.
 */
export const OrderStatusChangedV1 = z.strictObject({
  orderId: Identifier,
  newStatus: z.enum(STATUS_CHANGE_TARGETS, { message: `newStatus must be one of ${STATUS_CHANGE_TARGETS.join(', ')}` }),
  previousStatus: z.string().max(50).nullable().optional(),
});

/** Compensating event: money goes back (e.g. after a cancellation). */
export const PaymentRefundedV1 = z.strictObject({
  paymentId: Identifier,
  amount: PositiveMinorUnits,
  reason: z.string().trim().min(1).max(500),
});

/** The current schema of every event type, and the version number that schema has. */
export const EventSchemas = {
  OrderCreated: { version: 3, schema: OrderCreatedV3 },
  PaymentReceived: { version: 1, schema: PaymentReceivedV1 },
  InventoryReserved: { version: 1, schema: InventoryReservedV1 },
  OrderShipped: { version: 1, schema: OrderShippedV1 },
  OrderCancelled: { version: 1, schema: OrderCancelledV1 },
  PaymentRefunded: { version: 1, schema: PaymentRefundedV1 },
  OrderStatusChanged: { version: 1, schema: OrderStatusChangedV1 },
  InventoryReleased: { version: 1, schema: InventoryReleasedV1 },
} as const;

export type OrderEventType = keyof typeof EventSchemas;
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
