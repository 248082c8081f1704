import type { Outbox } from './outbox.js';

/** What projections need from sync: the not-yet-confirmed overlay of an order, and its badge. */
export interface PendingSource {
  pendingEvents(orderId: string): { type: string; data: Record<string, unknown>; recordedAt?: string }[];
  badge(orderId: string): 'pending' | 'synced' | 'rejected' | 'attention';
}

export function createPendingSource(outbox: Outbox): PendingSource {
  return {
    pendingEvents: (orderId) =>
      outbox.repo.currentPendingEventsOf(orderId).map((p) => ({ type: p.eventType, data: p.data, recordedAt: p.createdAt })),
    badge: (orderId) => outbox.badge(orderId),
  };
}
