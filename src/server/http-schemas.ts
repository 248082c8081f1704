import { z } from 'zod';
import { Identifier, ItemDescription, OrderItem } from '../domain/events.js';
import { CreateOrder, orderItems } from '../domain/commands.js';
import { MajorAmount } from '../domain/money.js';
import { SeedTimestamp } from '../domain/seed-dialect.js';
import { FULFILMENT_STATUSES, ORDER_STATUSES, PAYMENT_STATUSES } from '../domain/state.js';
import { EventId, EventMetadata, EventType, StreamId, StreamType } from '../protocol/envelope.js';
import { ErrorResponse, PullCursor } from '../protocol/sync-api.js';

/** Schemas of the seed-compatible API (the sync API's schemas live in src/protocol). */

export const StreamParams = z.strictObject({ streamId: StreamId });
export const AggregateParams = z.strictObject({ aggregateId: Identifier });
export const OrderParams = z.strictObject({ orderId: Identifier });

export const LiveQuery = z
  .strictObject({
    after: z.coerce.number().int().min(0).optional(),
    cursor: PullCursor.optional(),
  })
  .refine((q) => q.after === undefined || q.cursor === undefined, { message: 'give either after (a position) or cursor, not both', path: ['cursor'] });

export const SeedAppendEvent = z
  .strictObject({
    aggregateId: Identifier,
    aggregateType: StreamType,
    eventType: EventType,
    eventData: z
      .record(z.string(), z.unknown())
      .describe('Order events (aggregateType Order) in the seed dialect: money in decimal major units, dates as 2026-01-02 or ISO-8601 timestamps.'),
    schemaVersion: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .optional()
      .describe("Order events are always the seed's (1, the default); other aggregate types store their data at this version."),
    eventId: EventId.optional(),
    /** When given, the append fails with 409 unless the aggregate is at exactly this version. */
    expectedVersion: z.number().int().min(0).optional(),
    metadata: EventMetadata.pick({ causationId: true, deviceId: true, occurredAt: true, commandId: true }).optional(),
  })
  .describe('One event; the server assigns the next version of the aggregate.');

export const SeedAppendResult = z.object({
  eventId: z.string(),
  aggregateId: z.string(),
  aggregateType: z.string(),
  eventType: z.string(),
  version: z.number().int(),
  globalPosition: z.number().int(),
  correlationId: z.string(),
  duplicate: z.boolean(),
});

export const ConcurrentModification = z.object({
  error: z.literal('CONCURRENT_MODIFICATION'),
  message: z.string(),
  aggregateId: z.string(),
  expectedVersion: z.number().int().nullable(),
  currentVersion: z.number().int(),
});

const Major = z.number().describe('decimal amount in major units of the order currency, e.g. 19.99');

/** Seed 000's replayed order state (camelCase, major units) with orderlog's richer fields. */
export const SeedOrderState = z.object({
  orderId: z.string().nullable(),
  customerId: z.string().nullable(),
  customerName: z.string().nullable(),
  customerContact: z.string().nullable().describe('an e-mail address or a phone number'),
  items: z.array(z.object({ sku: z.string(), description: z.string(), quantity: z.number().int(), unitPrice: Major })),
  totalAmount: Major,
  status: z.string().nullable().describe("the seeds' word: the last lifecycle event wins"),
  paymentStatus: z.enum(PAYMENT_STATUSES).nullable(),
  fulfilmentStatus: z.enum(FULFILMENT_STATUSES).nullable(),
  inventoryReleasedAt: z.string().nullable().describe('when reserved stock went back (on cancellation)'),
  paymentId: z.string().nullable(),
  paidAmount: Major,
  reservationId: z.string().nullable(),
  shipmentId: z.string().nullable(),
  shippedAt: z.string().nullable(),
  cancelledAt: z.string().nullable(),
  cancelReason: z.string().nullable(),
  total: Major,
  currency: z.string().nullable(),
  refundedAmount: Major,
  outstandingAmount: Major,
  payments: z.array(z.object({ paymentId: z.string(), amount: Major, refunded: Major })),
  createdAt: z.string().nullable(),
  updatedAt: z.string().nullable(),
});

export const AggregateStateResponse = z.object({
  aggregateId: z.string(),
  aggregateType: z.string(),
  currentState: z.union([SeedOrderState, z.record(z.string(), z.unknown())]).describe('Order aggregates: the seed fold; others: their payloads merged in order.'),
  version: z.number().int(),
  eventCount: z.number().int(),
  lastModified: z.string(),
});

export const NotFound = z.object({ error: z.string() });

export const RebuildResponse = z.object({
  status: z.literal('REBUILD_COMPLETE'),
  eventsReplayed: z.number().int(),
  completedAt: z.string(),
});

export const VerifyQuery = z.strictObject({ streamId: StreamId.optional() });
export const VerifyResponse = z.object({
  ok: z.boolean(),
  streamsChecked: z.number().int(),
  eventsChecked: z.number().int(),
  firstBroken: z
    .object({
      tenantId: z.string(),
      streamId: z.string(),
      streamVersion: z.number().int(),
      eventId: z.string().nullable(),
      reason: z.string(),
      expectedHash: z.string().optional(),
      storedHash: z.string().optional(),
    })
    .nullable(),
});

/** The domain's CreateOrder in seed 004's terms: the id is optional and prices are in major units. */
export const CreateOrderBody = CreateOrder.omit({ type: true }).extend({
  orderId: CreateOrder.shape.orderId.optional(),
  items: orderItems(
    OrderItem.extend({ description: ItemDescription.optional().describe('what the item is, for people'), unitPrice: MajorAmount.describe('major units, e.g. 19.99 or "19.99"') }),
  ),
});

export const STATUS_TARGETS = ['PAID', 'RESERVED', 'SHIPPED', 'CANCELLED'] as const;
export const UpdateStatusBody = z.strictObject({
  status: z.enum(STATUS_TARGETS),
  expectedVersion: z.number().int().min(0),
  paymentId: Identifier.optional(),
  reservationId: Identifier.optional(),
  shipmentId: Identifier.optional(),
  shippedAt: SeedTimestamp.optional(),
  reason: z.string().trim().min(1).max(500).optional(),
});

export const CommandResult = z.object({
  orderId: z.string(),
  status: z.string().nullable(),
  previousStatus: z.string().nullable(),
  version: z.number().int(),
  globalPosition: z.number().int(),
  eventIds: z.array(z.string()),
  message: z.string(),
});

export const Rejected = z.object({ error: z.string(), message: z.string() });

export const DashboardQuerySchema = z.strictObject({
  status: z.enum([...ORDER_STATUSES, 'ALL']).default('ALL'),
  payment_status: z.enum([...PAYMENT_STATUSES, 'ALL']).default('ALL').describe('the payment facet; combined with the other filters'),
  fulfilment_status: z.enum([...FULFILMENT_STATUSES, 'ALL']).default('ALL').describe('the fulfilment facet; combined with the other filters'),
  limit: z.coerce.number().int().min(1).max(500).default(20),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});

/** A row of seed 004's order_views (snake_case, major units), plus currency and version. */
export const SeedOrderRow = z.object({
  order_id: z.string(),
  customer_id: z.string().nullable(),
  customer_name: z.string().nullable().describe("the customer's display name given with the order (the customer id for orders taken before names)"),
  customer_email: z.string().nullable().describe("the order's contact when it is an e-mail address, else null"),
  item_count: z.number().int(),
  total: Major,
  status: z.string().nullable().describe("the seeds' word: the last lifecycle event wins"),
  payment_status: z.enum(PAYMENT_STATUSES).nullable(),
  fulfilment_status: z.enum(FULFILMENT_STATUSES).nullable(),
  created_at: z.string().nullable(),
  updated_at: z.string().nullable(),
  currency: z.string().nullable(),
  version: z.number().int(),
});

export const DashboardResponse = z
  .array(SeedOrderRow)
  .describe('Newest first. X-Total-Count carries the number of matching orders; the ETag the read-model position.');

export const DashboardCounts = z
  .object({
    total: z.number().int(),
    status: z.record(z.enum(ORDER_STATUSES), z.number().int()),
    payment_status: z.record(z.enum(PAYMENT_STATUSES), z.number().int()),
    fulfilment_status: z.record(z.enum(FULFILMENT_STATUSES), z.number().int()),
  })
  .describe("The tenant's orders counted by the status word and by each facet (every value listed, 0 when none).");

export const OrderDetail = SeedOrderRow.extend({
  customer_contact: z.string().nullable().describe('an e-mail address or a phone number'),
  items: z.array(z.object({ sku: z.string(), description: z.string(), quantity: z.number().int(), unit_price: Major })),
  paid_amount: Major,
  refunded_amount: Major,
  outstanding_amount: Major,
  reservation_id: z.string().nullable(),
  shipment_id: z.string().nullable(),
  shipped_at: z.string().nullable(),
  cancelled_at: z.string().nullable(),
  cancel_reason: z.string().nullable(),
  inventory_released_at: z.string().nullable(),
  last_event_id: z.string(),
  position: z.number().int(),
});

/** A conditional GET whose copy is current: no body. */
// type 'null' is how @fastify/swagger documents a response without content.
export const NotModified = z.null().meta({ type: 'null', description: 'Not modified: the copy named by If-None-Match is current (no body).' });

/**
 * The answers every authenticated route can give besides its own: bad input (400), no or an
 * unknown token (401), a missing role (403), too many requests (429), a failure (500), and the
 * server closing (503). Routes with a body add 413 and 415.
 */
export function commonErrors(opts: { body?: boolean } = {}) {
  return {
    400: ErrorResponse,
    401: ErrorResponse,
    403: ErrorResponse,
    ...(opts.body ? { 413: ErrorResponse, 415: ErrorResponse } : {}),
    429: ErrorResponse,
    500: ErrorResponse,
    503: ErrorResponse,
  };
}

export const HealthResponse = z.object({ status: z.string(), backend: z.string().optional() });
