import { describe, expect, it, vi } from 'vitest';
import { decide, type OrderCommand } from '../../src/domain/commands.js';
import type { OrderEvent } from '../../src/domain/events.js';
import { foldOrder, initialOrderState, netPaidAmount, OrderState, outstandingAmount } from '../../src/domain/state.js';

/** Decide on the state, fold what was decided: the pure command loop, no store. */
function run(commands: OrderCommand[]) {
  let state = initialOrderState;
  const outcomes = commands.map((c) => {
    const d = decide(state, c);
    if (d.ok) state = foldOrder(d.events.map((e: OrderEvent) => ({ type: e.type, data: e.data })), state);
    return d;
  });
  return { state, outcomes };
}

const create: OrderCommand = { type: 'CreateOrder', orderId: 'O-1', customerId: 'C-1', items: [{ sku: 'A', quantity: 2, unitPrice: 1250 }], currency: 'EUR' };

describe('the order state', () => {
  it('folds the seed scenario and passes its own schema', () => {
    const { state, outcomes } = run([
      create,
      { type: 'RecordPayment', orderId: 'O-1', paymentId: 'P-1', amount: 2500 },
      { type: 'ReserveInventory', orderId: 'O-1', reservationId: 'R-1' },
      { type: 'ShipOrder', orderId: 'O-1', shipmentId: 'S-1', shippedAt: '2026-01-01T00:00:00Z' },
    ]);
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(state).toMatchObject({ status: 'SHIPPED', version: 4, total: 2500, paidAmount: 2500, shipmentId: 'S-1' });
    expect(OrderState.parse(state)).toEqual(state);
    expect(OrderState.safeParse({ ...state, status: 'LOST' }).success).toBe(false);
  });

  it('counts refunds against what was paid: net paid and outstanding amounts', () => {
    const { state } = run([
      create,
      { type: 'RecordPayment', orderId: 'O-1', paymentId: 'P-1', amount: 2000 },
      { type: 'RefundPayment', orderId: 'O-1', paymentId: 'P-1', amount: 500, reason: 'damaged' },
    ]);
    expect(netPaidAmount(state)).toBe(1500);
    expect(outstandingAmount(state)).toBe(1000);
  });

  it('skips unknown event types with a warning, never a crash', () => {
    const warn = vi.fn();
    const state = foldOrder(
      [
        { type: 'OrderCreated', data: { orderId: 'O', customerId: 'C', items: [], total: 5, currency: 'USD' } },
        { type: 'LoyaltyPointsAwarded', data: { points: 5 } },
      ],
      initialOrderState,
      warn,
    );
    expect(warn).toHaveBeenCalledWith('LoyaltyPointsAwarded');
    expect(state).toMatchObject({ status: 'CREATED', version: 2 });
  });
});

describe('the command handler', () => {
  it('refuses what the business rules forbid, with a sentence a person can act on', () => {
    const { outcomes } = run([
      create,
      create,
      { type: 'ShipOrder', orderId: 'O-1', shipmentId: 'S', shippedAt: '2026-01-01T00:00:00Z' },
      { type: 'RecordPayment', orderId: 'O-1', paymentId: 'P', amount: 2501 },
      { type: 'CancelOrder', orderId: 'O-1', reason: 'customer called', cancelledAt: '2026-01-03T00:00:00Z' },
      { type: 'RecordPayment', orderId: 'O-1', paymentId: 'P', amount: 100 },
    ]);
    expect(outcomes.map((o) => (o.ok ? 'ok' : o.rejection.code))).toEqual(['ok', 'ORDER_ALREADY_EXISTS', 'NOT_PAID', 'OVERPAYMENT', 'ok', 'ORDER_CANCELLED']);
    const notPaid = outcomes[2]!;
    expect(!notPaid.ok && notPaid.rejection.message).toContain('25.00 EUR is still unpaid');
  });
});
