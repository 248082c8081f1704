import { z } from 'zod';
import { EventSchemas, isOrderEventType } from '../domain/events.js';
import { upcast, UpcastError } from '../domain/upcasters.js';
import { NewEvent, type NewEventInput } from '../protocol/envelope.js';
import { InvalidEventError } from '../protocol/errors.js';

export type EventValidator = (event: NewEvent) => void;

function issuesOf(error: z.ZodError, prefix: string): { path: string; message: string }[] {
  return error.issues.map((i) => ({ path: [prefix, ...i.path].filter((p) => p !== '').join('.'), message: i.message }));
}

function fail(message: string, issues: { path: string; message: string }[]): never {
  throw new InvalidEventError(`${message}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

/** Envelope check shared by every writer: ids, types, metadata. */
export function parseNewEvent(input: NewEventInput, index = 0): NewEvent {
  const parsed = NewEvent.safeParse(input);
  if (!parsed.success) fail(`event #${index} is malformed`, issuesOf(parsed.error, ''));
  return parsed.data;
}

/**
 * Order events must match the schema of their version (older versions must upcast cleanly);
 * other types are refused unless the caller accepts them (events written by a newer build).
 */
export function validateOrderEventData(event: NewEvent, allowUnknownTypes = false): void {
  const { eventType, schemaVersion, data } = event;
  if (!isOrderEventType(eventType)) {
    if (allowUnknownTypes) return;
    fail(`event ${event.eventId} is invalid`, [{ path: 'eventType', message: `unknown event type ${JSON.stringify(eventType)}` }]);
  }
  const spec = EventSchemas[eventType];
  let current: unknown = data;
  if (schemaVersion !== spec.version) {
    try {
      current = upcast(eventType, schemaVersion, data).data;
    } catch (err) {
      if (err instanceof UpcastError) fail(`event ${event.eventId} is invalid`, [{ path: 'data', message: err.message }]);
      throw err;
    }
  }
  const parsed = spec.schema.safeParse(current);
  if (!parsed.success) fail(`${eventType} data is invalid`, issuesOf(parsed.error, 'data'));
}
