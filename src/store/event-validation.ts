import { isOrderEventType } from '../domain/events.js';
import { describeIssues, zodIssues, type Issue } from '../domain/issues.js';
import { NewEvent, type NewEventInput } from '../protocol/envelope.js';
import { checkEvent } from '../protocol/event-contract.js';
import { InvalidEventError } from '../protocol/errors.js';

function fail(message: string, issues: Issue[]): never {
  throw new InvalidEventError(`${message}: ${describeIssues(issues)}`, issues);
}

/** Envelope check shared by every writer: ids, types, metadata. */
export function parseNewEvent(input: NewEventInput, index = 0): NewEvent {
  const parsed = NewEvent.safeParse(input);
  if (!parsed.success) fail(`event #${index} is malformed`, zodIssues(parsed.error, ''));
  return parsed.data;
}

/**
 * The event contract (src/protocol/event-contract.ts), as the server applies it, for an event
 * the device writes into its log: `now` is the time it is recorded at (the server's recordedAt
 * for pulled events). Unknown types are refused unless the caller accepts them (pulled events
 * written by a newer build).
 */
export function validateEvent(event: NewEvent, streamType: string, opts: { allowUnknownTypes?: boolean; now?: string | number } = {}): void {
  if (!isOrderEventType(event.eventType) && !opts.allowUnknownTypes) {
    fail(`event ${event.eventId} is invalid`, [{ path: 'eventType', message: `unknown event type ${JSON.stringify(event.eventType)}` }]);
  }
  const verdict = checkEvent({ streamType, eventType: event.eventType, schemaVersion: event.schemaVersion, data: event.data, metadata: event.metadata }, { now: opts.now });
  if (!verdict.ok) fail(`${event.eventType} ${event.eventId} is invalid`, verdict.issues);
}
