import { minorToMajor } from '../domain/money.js';
import { isEmailContact } from '../domain/events.js';
import { outstandingAmount, type OrderState } from '../domain/state.js';
import type { OrderCounts, OrderView } from './repository.js';

/**
 * The seed API's answers in the seeds' own shapes and units: money in decimal major units of the
 * order's currency. Seed 000 replays an aggregate into camelCase state (`totalAmount`,
 * `paidAmount`, ...); seed 004 reads rows of its `order_views` table (`order_id`,
 * `customer_name`, ...). The richer fields of orderlog sit beside the seed's, in the same units.
 */

function majorOf(s: OrderState): (minor: number) => number {
  return (minor) => minorToMajor(minor, s.currency);
}

/** Seed 000's `currentState` of an order, plus orderlog's richer fields. */
export function seedOrderState(s: OrderState) {
  const major = majorOf(s);
  const lastPayment = s.payments[s.payments.length - 1];
  return {
    orderId: s.orderId,
    customerId: s.customerId,
    customerName: s.customerName,
    customerContact: s.customerContact,
    items: s.items.map((i) => ({ sku: i.sku, description: i.description, quantity: i.quantity, unitPrice: major(i.unitPrice) })),
    totalAmount: major(s.total),
    status: s.status,
    paymentStatus: s.paymentStatus,
    fulfilmentStatus: s.fulfilmentStatus,
    inventoryReleasedAt: s.inventoryReleasedAt,
    paymentId: lastPayment?.paymentId ?? null,
    paidAmount: major(s.paidAmount),
    reservationId: s.reservationId,
    shipmentId: s.shipmentId,
    shippedAt: s.shippedAt,
    cancelledAt: s.cancelledAt,
    cancelReason: s.cancelReason,
    total: major(s.total),
    currency: s.currency,
    refundedAmount: major(s.refundedAmount),
    outstandingAmount: major(outstandingAmount(s)),
    payments: s.payments.map((p) => ({ paymentId: p.paymentId, amount: major(p.amount), refunded: major(p.refunded) })),
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
  };
}

/**
 * A row of seed 004's order_views. The seed fills customer_name and customer_email from a
 * customer lookup; orderlog records them with the order (the name, and the contact when it is
 * an e-mail address), so the row shows what the order was taken with.
 */
export function seedOrderRow(v: OrderView) {
  const contact = v.state.customerContact;
  return {
    order_id: v.orderId,
    customer_id: v.customerId,
    customer_name: v.customerName ?? v.state.customerName,
    customer_email: contact && isEmailContact(contact) ? contact : null,
    item_count: v.itemCount,
    total: majorOf(v.state)(v.total),
    status: v.status,
    payment_status: v.paymentStatus,
    fulfilment_status: v.fulfilmentStatus,
    created_at: v.createdAt,
    updated_at: v.updatedAt,
    currency: v.currency,
    version: v.version,
  };
}

/** Seed 004's order detail (its order_views row) with the order's facts beside it. */
export function seedOrderDetail(v: OrderView) {
  const s = v.state;
  const major = majorOf(s);
  return {
    ...seedOrderRow(v),
    customer_contact: s.customerContact,
    items: s.items.map((i) => ({ sku: i.sku, description: i.description, quantity: i.quantity, unit_price: major(i.unitPrice) })),
    paid_amount: major(s.paidAmount),
    refunded_amount: major(s.refundedAmount),
    outstanding_amount: major(outstandingAmount(s)),
    reservation_id: s.reservationId,
    shipment_id: s.shipmentId,
    shipped_at: s.shippedAt,
    cancelled_at: s.cancelledAt,
    cancel_reason: s.cancelReason,
    inventory_released_at: s.inventoryReleasedAt,
    last_event_id: v.lastEventId,
    position: v.lastPosition,
  };
}

/** The tenant's counts in the seed API's snake_case. */
export function seedOrderCounts(c: OrderCounts) {
  return { total: c.total, status: c.status, payment_status: c.paymentStatus, fulfilment_status: c.fulfilmentStatus };
}
