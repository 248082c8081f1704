import { produce, type Draft } from 'immer';
import { z } from 'zod';
import type { OrderEventData } from './events.js';

export const ORDER_STATUSES = ['CREATED', 'PARTIALLY_PAID', 'PAID', 'RESERVED', 'SHIPPED', 'CANCELLED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** What the customer has paid, one facet of an order (amounts decide it, not the status word). */
export const PAYMENT_STATUSES = ['UNPAID', 'PARTLY_PAID', 'PAID', 'REFUNDED'] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/** Where the goods are, the other facet: open, stock reserved, shipped, or cancelled. */
export const FULFILMENT_STATUSES = ['OPEN', 'RESERVED', 'SHIPPED', 'CANCELLED'] as const;
export type FulfilmentStatus = (typeof FULFILMENT_STATUSES)[number];

/**
 * Bump whenever reducers change what they produce: snapshots written by another reducer
 * version are ignored and rebuilt, and so are the read models (server and device) built by it.
 * v2: OrderStatusChanged sets the status (v1 skipped it).
 * v3: customer name and contact, item descriptions, the payment and fulfilment facets, released
 * inventory; the status word follows the seeds (the last lifecycle event wins: a payment in full
 * on a reserved order makes it PAID).
 */
export const REDUCER_VERSION = 3;

export const Payment = z.object({ paymentId: z.string(), amount: z.number(), refunded: z.number() });
export type Payment = z.infer<typeof Payment>;

/**
 * The order as its events made it. The schema checks shapes only (the events were checked when
 * they were written), so a state folded from any stored stream passes it.
 */
export const OrderState = z.object({
  exists: z.boolean(),
  orderId: z.string().nullable(),
  customerId: z.string().nullable(),
  customerName: z.string().nullable(),
  customerContact: z.string().nullable(),
  items: z.array(z.object({ sku: z.string(), description: z.string(), quantity: z.number(), unitPrice: z.number() })),
  total: z.number(),
  currency: z.string().nullable(),
  /** The seeds' single word: the last lifecycle event wins. */
  status: z.enum(ORDER_STATUSES).nullable(),
  paymentStatus: z.enum(PAYMENT_STATUSES).nullable(),
  fulfilmentStatus: z.enum(FULFILMENT_STATUSES).nullable(),
  paidAmount: z.number(),
  refundedAmount: z.number(),
  payments: z.array(Payment),
  reservationId: z.string().nullable(),
  shipmentId: z.string().nullable(),
  shippedAt: z.string().nullable(),
  cancelledAt: z.string().nullable(),
  cancelReason: z.string().nullable(),
  /** When the reserved stock went back (InventoryReleased); null while it is held or was never reserved. */
  inventoryReleasedAt: z.string().nullable(),
  /** Number of events folded into this state (the stream version). */
  version: z.number(),
  createdAt: z.string().nullable(),
  updatedAt: z.string().nullable(),
});
export type OrderState = z.infer<typeof OrderState>;

export const initialOrderState: OrderState = Object.freeze({
  exists: false,
  orderId: null,
  customerId: null,
  customerName: null,
  customerContact: null,
  items: [],
  total: 0,
  currency: null,
  status: null,
  paymentStatus: null,
  fulfilmentStatus: null,
  paidAmount: 0,
  refundedAmount: 0,
  payments: [],
  reservationId: null,
  shipmentId: null,
  shippedAt: null,
  cancelledAt: null,
  cancelReason: null,
  inventoryReleasedAt: null,
  version: 0,
  createdAt: null,
  updatedAt: null,
}) as OrderState;

/** What a reducer needs of an event: its type, its (upcast) data, and when it was recorded. */
export interface FoldableEvent {
  type: string;
  data: unknown;
  version?: number;
  recordedAt?: string;
}

type Reducers = { [K in keyof OrderEventData]: (draft: Draft<OrderState>, data: OrderEventData[K]) => void };

/** The seeds' word after a payment: PAID once the total is covered, whatever happened before. */
function statusAfterPayment(s: Draft<OrderState>): OrderStatus {
  return netPaidAmount(s) >= s.total ? 'PAID' : 'PARTIALLY_PAID';
}

/** The payment facet from the amounts: money received and kept, against the total. */
export function paymentStatusOf(s: Pick<OrderState, 'total' | 'paidAmount' | 'refundedAmount'>): PaymentStatus {
  const net = netPaidAmount(s);
  if (s.refundedAmount > 0 && net <= 0) return 'REFUNDED';
  if (net <= 0) return 'UNPAID';
  return net >= s.total ? 'PAID' : 'PARTLY_PAID';
}

const closed = (s: Draft<OrderState>) => s.status === 'CANCELLED' || s.status === 'SHIPPED';

const reducers: Reducers = {
  OrderCreated(s, d) {
    s.exists = true;
    s.orderId = d.orderId;
    s.customerId = d.customerId;
    s.customerName = d.customerName;
    s.customerContact = d.customerContact;
    s.items = d.items;
    s.total = d.total;
    s.currency = d.currency;
    s.status = 'CREATED';
    s.paymentStatus = paymentStatusOf(s);
    s.fulfilmentStatus = 'OPEN';
  },
  PaymentReceived(s, d) {
    s.paidAmount += d.amount;
    s.payments.push({ paymentId: d.paymentId, amount: d.amount, refunded: 0 });
    s.paymentStatus = paymentStatusOf(s);
    if (!closed(s)) s.status = statusAfterPayment(s);
  },
  InventoryReserved(s, d) {
    s.reservationId = d.reservationId;
    if (!closed(s)) {
      s.status = 'RESERVED';
      s.fulfilmentStatus = 'RESERVED';
    }
  },
  InventoryReleased(s, d) {
    s.inventoryReleasedAt = d.releasedAt;
  },
  OrderShipped(s, d) {
    s.shipmentId = d.shipmentId;
    s.shippedAt = d.shippedAt;
    s.status = 'SHIPPED';
    s.fulfilmentStatus = 'SHIPPED';
  },
  OrderCancelled(s, d) {
    s.cancelledAt = d.cancelledAt;
    s.cancelReason = d.reason;
    s.status = 'CANCELLED';
    s.fulfilmentStatus = 'CANCELLED';
  },
  OrderStatusChanged(s, d) {
    // A declared status, as the seed's projector applies it; like the facts it stands for, a
    // payment or reservation does not reopen a shipped or cancelled order. Streams stored before
    // the server refused it may start with one: a status of an order never created is no order.
    if (!s.exists) return;
    if ((d.newStatus === 'PAID' || d.newStatus === 'RESERVED') && closed(s)) return;
    s.status = d.newStatus;
    // The declaration stands for the fact in its facet (the seed records no amounts for it).
    if (d.newStatus === 'PAID') s.paymentStatus = 'PAID';
    else s.fulfilmentStatus = d.newStatus;
  },
  PaymentRefunded(s, d) {
    s.refundedAmount += d.amount;
    const p = s.payments.find((x) => x.paymentId === d.paymentId);
    if (p) p.refunded += d.amount;
    s.paymentStatus = paymentStatusOf(s);
  },
};

export type UnknownEventListener = (type: string) => void;
const defaultUnknownListener: UnknownEventListener = (type) => {
  process.emitWarning(`skipping unknown event type ${JSON.stringify(type)} while folding an order`, 'UnknownEventWarning');
};

function applyToDraft(draft: Draft<OrderState>, event: FoldableEvent, onUnknown: UnknownEventListener): void {
  applyFields(draft, event.type, event.data, event.version, event.recordedAt, onUnknown);
}

function applyFields(draft: Draft<OrderState>, type: string, data: unknown, version: number | undefined, recordedAt: string | undefined, onUnknown: UnknownEventListener): void {
  const reducer = (reducers as Record<string, ((d: Draft<OrderState>, data: unknown) => void) | undefined>)[type];
  if (reducer) reducer(draft, data);
  else onUnknown(type);
  draft.version = version ?? draft.version + 1;
  if (recordedAt) {
    if (!draft.createdAt) draft.createdAt = recordedAt;
    draft.updatedAt = recordedAt;
  }
}

/**
 * Pure reducer: state + event → next state. Events are assumed upcast already. Unknown types
 * are skipped with a warning (an older build reading a newer log must not crash) but still
 * count towards the version, since they occupy a slot in the stream.
 */
export function applyOrderEvent(
  state: OrderState,
  event: FoldableEvent,
  onUnknown: UnknownEventListener = defaultUnknownListener,
): OrderState {
  return produce(state, (draft) => applyToDraft(draft, event, onUnknown));
}

/**
 * Left fold of events over a starting state (initial state or a snapshot). One immer draft for
 * the whole run: the result equals applying applyOrderEvent event by event, but arrays are not
 * copied once per event (that made a 10k-event fold quadratic).
 */
export function foldOrder(
  events: Iterable<FoldableEvent>,
  from: OrderState = initialOrderState,
  onUnknown: UnknownEventListener = defaultUnknownListener,
): OrderState {
  return produce(from, (draft) => {
    for (const e of events) applyToDraft(draft, e, onUnknown);
  });
}

/**
 * Fold events into a state the caller owns exclusively (a plain, unfrozen object such as freshly
 * parsed JSON), mutating it in place with the same reducers and returning it. No immer drafts:
 * for bulk replays (projection rebuilds) where drafting and freezing dominated the cost.
 */
export function foldOrderInPlace(
  target: OrderState,
  events: Iterable<FoldableEvent>,
  onUnknown: UnknownEventListener = defaultUnknownListener,
): OrderState {
  for (const e of events) applyToDraft(target as Draft<OrderState>, e, onUnknown);
  return target;
}

/**
 * `foldOrderInPlace` of one event given by its fields: a bulk replay folds events as it reads
 * them, without an event object each (they outlived a young-generation collection per page and
 * were a tenth of a rebuild's allocations).
 */
export function applyOrderEventInPlace(
  target: OrderState,
  type: string,
  data: unknown,
  version: number,
  recordedAt: string,
  onUnknown: UnknownEventListener = defaultUnknownListener,
): OrderState {
  applyFields(target as Draft<OrderState>, type, data, version, recordedAt, onUnknown);
  return target;
}

/** What the customer has paid and kept: payments less refunds. */
export function netPaidAmount(s: Pick<OrderState, 'paidAmount' | 'refundedAmount'>): number {
  return s.paidAmount - s.refundedAmount;
}

/** What is still owed (negative when refunds were re-paid beyond the total). */
export function outstandingAmount(s: Pick<OrderState, 'total' | 'paidAmount' | 'refundedAmount'>): number {
  return s.total - netPaidAmount(s);
}
