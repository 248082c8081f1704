import type { PendingSource } from '../projections/types.js';
import type { Outbox } from './outbox.js';

/** Projections' view of the outbox: the not-yet-confirmed overlay of an order, and its badge. */
export function createPendingSource(outbox: Outbox): PendingSource {
  return {
    pendingEvents: (orderId) =>
      outbox.repo.currentPendingEventsOf(orderId).map((p) => ({ type: p.eventType, data: p.data, recordedAt: p.createdAt })),
    badge: (orderId) => outbox.badge(orderId),
    // Every order `badge` does not call 'synced' (only pending commands carry pending events).
    overlaid: () => [
      ...new Set([
        ...outbox.repo.ordersWithPending(),
        ...outbox.repo.conflicts(false).map((c) => c.orderId),
        ...outbox.quarantine.streams(),
      ]),
    ],
  };
}
