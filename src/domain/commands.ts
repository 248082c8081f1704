import { z } from 'zod';
import { CustomerContact, CustomerName, Identifier, IsoTimestamp, ItemDescription, OrderItem, type OrderEvent } from './events.js';
import { Currency, PositiveMinorUnits, formatMoney } from './money.js';
import { outstandingAmount, type OrderState } from './state.js';

/** The items of a new order, however a caller prices them (the seed API in major units). */
export const orderItems = <T extends z.ZodType>(item: T) => z.array(item).min(1, 'an order needs at least one item').max(500);

export const CreateOrder = z.strictObject({
  type: z.literal('CreateOrder'),
  orderId: Identifier,
  customerId: Identifier,
  /** Shown to people; the customer id when not given (callers that predate names). */
  customerName: CustomerName.optional(),
  /** An e-mail address or a phone number; empty means none. */
  customerContact: z.union([z.literal('').transform(() => undefined), CustomerContact]).optional(),
  items: orderItems(OrderItem.extend({ description: ItemDescription.optional() })),
  currency: Currency.default('USD'),
});
export const RecordPayment = z.strictObject({
  type: z.literal('RecordPayment'),
  orderId: Identifier,
  paymentId: Identifier,
  amount: PositiveMinorUnits,
});
export const ReserveInventory = z.strictObject({
  type: z.literal('ReserveInventory'),
  orderId: Identifier,
  reservationId: Identifier,
});
export const ShipOrder = z.strictObject({
  type: z.literal('ShipOrder'),
  orderId: Identifier,
  shipmentId: Identifier,
  shippedAt: IsoTimestamp,
});
export const CancelOrder = z.strictObject({
  type: z.literal('CancelOrder'),
  orderId: Identifier,
  reason: z.string().trim().min(1, 'a reason is required').max(500),
  cancelledAt: IsoTimestamp,
});
export const RefundPayment = z.strictObject({
  type: z.literal('RefundPayment'),
  orderId: Identifier,
  paymentId: Identifier,
  amount: PositiveMinorUnits,
  reason: z.string().trim().min(1, 'a reason is required').max(500),
});

export const OrderCommand = z.discriminatedUnion('type', [
  CreateOrder,
  RecordPayment,
  ReserveInventory,
  ShipOrder,
  CancelOrder,
  RefundPayment,
]);
export type OrderCommand = z.infer<typeof OrderCommand>;
export type OrderCommandInput = z.input<typeof OrderCommand>;
export type OrderCommandType = OrderCommand['type'];

export const REJECTION_CODES = [
  'ORDER_ALREADY_EXISTS',
  'ORDER_NOT_FOUND',
  'ORDER_CANCELLED',
  'ORDER_SHIPPED',
  'OVERPAYMENT',
  'DUPLICATE_PAYMENT',
  'ALREADY_RESERVED',
  'NOT_PAID',
  'NOT_RESERVED',
  'UNKNOWN_PAYMENT',
  'REFUND_EXCEEDS_PAYMENT',
  'CURRENCY_MISMATCH',
  /** The server refused the command's events (its event contract); resending them cannot succeed. */
  'REFUSED_BY_SERVER',
] as const;
export type RejectionCode = (typeof REJECTION_CODES)[number];

/** Why a command was refused: a code and a sentence a person can act on. */
export const Rejection = z.object({ code: z.enum(REJECTION_CODES), message: z.string() });
export type Rejection = z.infer<typeof Rejection>;

export type Decision = { ok: true; events: OrderEvent[] } | { ok: false; rejection: Rejection };

/** Thrown where a rejected command must stop the caller (HTTP, IPC); carries the typed reason. */
export class CommandRejectedError extends Error {
  override name = 'CommandRejectedError';
  constructor(
    readonly rejection: Rejection,
    readonly command: OrderCommand,
  ) {
    super(rejection.message);
  }
}

const reject = (code: RejectionCode, message: string): Decision => ({ ok: false, rejection: { code, message } });
const accept = (...events: OrderEvent[]): Decision => ({ ok: true, events });

/** An amount in a message: grouped, in the order's currency and its digits. */
function money(s: OrderState, minor: number): string {
  return formatMoney(minor, s.currency);
}

/** Rules shared by every command on an existing, still-open order. */
function mustBeOpen(s: OrderState, orderId: string, doing: string): Decision | null {
  if (!s.exists) return reject('ORDER_NOT_FOUND', `Order ${orderId} does not exist, so you cannot ${doing}.`);
  if (s.status === 'CANCELLED') {
    return reject('ORDER_CANCELLED', `Order ${orderId} was cancelled (${s.cancelReason ?? 'no reason given'}), so you cannot ${doing}.`);
  }
  if (s.status === 'SHIPPED') return reject('ORDER_SHIPPED', `Order ${orderId} has already shipped, so you cannot ${doing}.`);
  return null;
}

/**
 * The command handler: a pure decision on the current state. It never reads the clock or the
 * database, so sync can re-run it on a newer state when rebasing.
 */
export function decide(state: OrderState, command: OrderCommand): Decision {
  switch (command.type) {
    case 'CreateOrder': {
      if (state.exists) return reject('ORDER_ALREADY_EXISTS', `Order ${command.orderId} already exists.`);
      const total = command.items.reduce((sum, i) => sum + i.quantity * i.unitPrice, 0);
      if (!Number.isSafeInteger(total)) return reject('OVERPAYMENT', 'The order total is too large to record exactly.');
      return accept({
        type: 'OrderCreated',
        data: {
          orderId: command.orderId,
          customerId: command.customerId,
          customerName: command.customerName ?? command.customerId,
          customerContact: command.customerContact ?? null,
          items: command.items.map((i) => ({ sku: i.sku, description: i.description ?? '', quantity: i.quantity, unitPrice: i.unitPrice })),
          total,
          currency: command.currency,
        },
      });
    }
    case 'RecordPayment': {
      const closed = mustBeOpen(state, command.orderId, 'record a payment');
      if (closed) return closed;
      if (state.payments.some((p) => p.paymentId === command.paymentId)) {
        return reject('DUPLICATE_PAYMENT', `Payment ${command.paymentId} is already recorded on order ${command.orderId}.`);
      }
      const outstanding = outstandingAmount(state);
      if (command.amount > outstanding) {
        return reject(
          'OVERPAYMENT',
          `A payment of ${money(state, command.amount)} is more than the ${money(state, outstanding)} still owed on order ${command.orderId}.`,
        );
      }
      return accept({ type: 'PaymentReceived', data: { paymentId: command.paymentId, amount: command.amount } });
    }
    case 'ReserveInventory': {
      const closed = mustBeOpen(state, command.orderId, 'reserve inventory');
      if (closed) return closed;
      if (state.reservationId) {
        return reject('ALREADY_RESERVED', `Inventory for order ${command.orderId} is already reserved (${state.reservationId}).`);
      }
      return accept({ type: 'InventoryReserved', data: { reservationId: command.reservationId } });
    }
    case 'ShipOrder': {
      const closed = mustBeOpen(state, command.orderId, 'ship it');
      if (closed) return closed;
      if (outstandingAmount(state) > 0) {
        return reject('NOT_PAID', `Order ${command.orderId} cannot ship: ${money(state, outstandingAmount(state))} is still unpaid.`);
      }
      if (!state.reservationId) return reject('NOT_RESERVED', `Order ${command.orderId} cannot ship before its inventory is reserved.`);
      return accept({ type: 'OrderShipped', data: { shipmentId: command.shipmentId, shippedAt: command.shippedAt } });
    }
    case 'CancelOrder': {
      const closed = mustBeOpen(state, command.orderId, 'cancel it');
      if (closed) return closed;
      const cancelled: OrderEvent = { type: 'OrderCancelled', data: { reason: command.reason, cancelledAt: command.cancelledAt } };
      // Stock held for the order goes back: a fact of its own, so stock keepers can follow it.
      if (state.reservationId && !state.inventoryReleasedAt) {
        return accept(cancelled, { type: 'InventoryReleased', data: { reservationId: state.reservationId, releasedAt: command.cancelledAt } });
      }
      return accept(cancelled);
    }
    case 'RefundPayment': {
      if (!state.exists) return reject('ORDER_NOT_FOUND', `Order ${command.orderId} does not exist, so there is nothing to refund.`);
      const payment = state.payments.find((p) => p.paymentId === command.paymentId);
      if (!payment) return reject('UNKNOWN_PAYMENT', `Order ${command.orderId} has no payment ${command.paymentId}.`);
      if (command.amount > payment.amount - payment.refunded) {
        return reject(
          'REFUND_EXCEEDS_PAYMENT',
          `Only ${money(state, payment.amount - payment.refunded)} of payment ${command.paymentId} can still be refunded.`,
        );
      }
      return accept({
        type: 'PaymentRefunded',
        data: { paymentId: command.paymentId, amount: command.amount, reason: command.reason },
      });
    }
  }
}
