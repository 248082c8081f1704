import { z } from 'zod';
import { Identifier } from '../domain/events.js';
import { FULFILMENT_STATUSES, ORDER_STATUSES, PAYMENT_STATUSES } from '../domain/state.js';

/** The read side's questions and answers; the app contract composes them. */

export const StatusFilter = z.enum([...ORDER_STATUSES, 'ALL']);
export type StatusFilter = z.infer<typeof StatusFilter>;
export const PaymentFilter = z.enum([...PAYMENT_STATUSES, 'ALL']);
export type PaymentFilter = z.infer<typeof PaymentFilter>;
export const FulfilmentFilter = z.enum([...FULFILMENT_STATUSES, 'ALL']);
export type FulfilmentFilter = z.infer<typeof FulfilmentFilter>;

/** 'attention': the device holds events of this order it cannot read (quarantine). */
export const SyncBadge = z.enum(['pending', 'synced', 'rejected', 'attention']);
export type SyncBadge = z.infer<typeof SyncBadge>;

export const ListOrdersInput = z.strictObject({
  status: StatusFilter.default('ALL'),
  /** The two facets, each filtered on its own (both apply when both are set). */
  payment: PaymentFilter.default('ALL'),
  fulfilment: FulfilmentFilter.default('ALL'),
  customerId: Identifier.optional(),
  search: z.string().trim().max(100).optional(),
  sort: z.enum(['createdAt', 'updatedAt']).default('updatedAt'),
  direction: z.enum(['asc', 'desc']).default('desc'),
  limit: z.number().int().min(1).max(500).default(50),
  offset: z.number().int().min(0).default(0),
  /** Keyset paging: the `nextCursor` of the previous page (takes precedence over offset). */
  cursor: z.string().max(500).optional(),
  /** Read-your-writes: wait (bounded) until the projection has reached this local position. */
  minPosition: z.number().int().min(0).optional(),
});
export type ListOrdersInput = z.input<typeof ListOrdersInput>;

/** A row of the order list (the order_list projection, in camelCase). */
export const OrderRow = z.object({
  orderId: z.string(),
  customerId: z.string(),
  customerName: z.string(),
  status: z.enum(ORDER_STATUSES),
  paymentStatus: z.enum(PAYMENT_STATUSES),
  fulfilmentStatus: z.enum(FULFILMENT_STATUSES),
  total: z.number(),
  currency: z.string(),
  itemCount: z.number(),
  paidAmount: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
  version: z.number(),
  lastEventId: z.string(),
  sync: SyncBadge,
});
export type OrderRow = z.infer<typeof OrderRow>;

export const ListOrdersOutput = z.object({
  rows: z.array(OrderRow),
  total: z.number(),
  /** Orders per status word, under the customer and search filters (not the facets). */
  counts: z.record(z.string(), z.number()),
  /** Orders per payment facet, under every other filter (search, customer, fulfilment). */
  paymentCounts: z.record(z.string(), z.number()),
  /** Orders per fulfilment facet, under every other filter (search, customer, payment). */
  fulfilmentCounts: z.record(z.string(), z.number()),
  nextCursor: z.string().nullable(),
  /** Local log position the view reflects. */
  position: z.number(),
});
export type ListOrdersOutput = z.infer<typeof ListOrdersOutput>;

export const CustomerHistoryInput = z.strictObject({
  customerId: Identifier,
  limit: z.number().int().min(1).max(500).default(100),
  offset: z.number().int().min(0).default(0),
});
export type CustomerHistoryInput = z.input<typeof CustomerHistoryInput>;

export const CustomerHistoryOutput = z.object({
  customerId: z.string(),
  orders: z.array(OrderRow),
  activity: z.array(z.object({ orderId: z.string(), eventType: z.string(), amount: z.number().nullable(), recordedAt: z.string(), position: z.number() })),
  totalOrders: z.number(),
  lifetimeValue: z.number(),
});
export type CustomerHistoryOutput = z.infer<typeof CustomerHistoryOutput>;
