import { z } from 'zod';
import { Identifier, IsoTimestamp, OrderItem } from '../domain/events.js';
import { Currency } from '../domain/money.js';
import { ORDER_STATUSES } from '../domain/state.js';
import { EventId, EventMetadata, EventType, StreamId, StreamType } from '../protocol/envelope.js';

/** Schemas of the seed-compatible API (the sync API's schemas live in src/protocol). */

export const StreamParams = z.strictObject({ streamId: StreamId });
export const AggregateParams = z.strictObject({ aggregateId: Identifier });
export const OrderParams = z.strictObject({ orderId: Identifier });

export const LiveQuery = z.strictObject({
  after: z.coerce.number().int().min(0).optional(),
});

export const SeedAppendEvent = z
  .strictObject({
    aggregateId: Identifier,
    aggregateType: StreamType,
    eventType: EventType,
    eventData: z.record(z.string(), z.unknown()),
    /** The seed system wrote version-1 payloads, so that is the default. */
    schemaVersion: z.number().int().min(1).max(1000).default(1),
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

export const AggregateStateResponse = z.object({
  aggregateId: z.string(),
  aggregateType: z.string(),
  currentState: z.record(z.string(), z.unknown()),
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

export const CreateOrderBody = z.strictObject({
  orderId: Identifier.optional(),
  customerId: Identifier,
  items: z.array(OrderItem).min(1, 'an order needs at least one item').max(500),
  currency: Currency.default('USD'),
});

export const STATUS_TARGETS = ['PAID', 'RESERVED', 'SHIPPED', 'CANCELLED'] as const;
export const UpdateStatusBody = z.strictObject({
  status: z.enum(STATUS_TARGETS),
  expectedVersion: z.number().int().min(0),
  paymentId: Identifier.optional(),
  reservationId: Identifier.optional(),
  shipmentId: Identifier.optional(),
  shippedAt: IsoTimestamp.optional(),
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
  limit: z.coerce.number().int().min(1).max(500).default(20),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});

export const OrderSummary = z.object({
  orderId: z.string(),
  customerId: z.string().nullable(),
  status: z.string().nullable(),
  total: z.number().int(),
  currency: z.string().nullable(),
  itemCount: z.number().int(),
  version: z.number().int(),
  createdAt: z.string().nullable(),
  updatedAt: z.string().nullable(),
});

export const DashboardResponse = z.object({
  orders: z.array(OrderSummary),
  total: z.number().int(),
  limit: z.number().int(),
  offset: z.number().int(),
  position: z.number().int(),
});

export const OrderDetail = OrderSummary.extend({
  items: z.array(OrderItem),
  paidAmount: z.number().int(),
  refundedAmount: z.number().int(),
  reservationId: z.string().nullable(),
  shipmentId: z.string().nullable(),
  shippedAt: z.string().nullable(),
  cancelledAt: z.string().nullable(),
  cancelReason: z.string().nullable(),
  lastEventId: z.string(),
  position: z.number().int(),
});

export const HealthResponse = z.object({ status: z.string(), backend: z.string().optional() });
