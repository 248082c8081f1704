import { v7 as uuidv7 } from 'uuid';
import { EventSchemas, type OrderEvent } from '../domain/events.js';
import type { EventMetadata, NewEvent } from '../protocol/envelope.js';

export const newEventId = (): string => uuidv7();

/** Wrap domain events from a command handler into envelopes with fresh UUIDv7 ids. */
export function toNewEvents(events: readonly OrderEvent[], metadata: EventMetadata): NewEvent[] {
  return events.map((e) => ({
    eventId: uuidv7(),
    eventType: e.type,
    schemaVersion: EventSchemas[e.type].version,
    data: e.data as Record<string, unknown>,
    metadata,
  }));
}
