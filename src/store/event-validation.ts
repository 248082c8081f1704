import { isOrderEventType } from '../domain/events.js';
import { describeIssues, zodIssues, type Issue } from '../domain/issues.js';
import { EVENT_TYPE_PATTERN, EventId, EventMetadata, NewEvent, type NewEventInput } from '../protocol/envelope.js';
import { checkEvent } from '../protocol/event-contract.js';
import { InvalidEventError } from '../protocol/errors.js';

function fail(message: string, issues: Issue[]): never {
  throw new InvalidEventError(`${message}: ${describeIssues(issues)}`, issues);
}

// The fast path's tests, taken from the schemas themselves where zod exposes them.
const UUID = (EventId as unknown as { _zod: { pattern: RegExp } })._zod.pattern;
const ENVELOPE_KEYS = new Set(['eventId', 'eventType', 'schemaVersion', 'data', 'metadata']);
/** Metadata keys whose schema is a plain string of at most 200 characters (occurredAt is not). */
const PLAIN_METADATA_KEYS = new Set(Object.keys(EventMetadata.shape).filter((k) => k !== 'occurredAt'));

const PLAIN_METADATA_ORDER = [...PLAIN_METADATA_KEYS];

const HEX = (c: number) => (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
/**
 * The usual branch of the UUID pattern (version 1-8, RFC variant) by char codes, cheaper than the
 * regex; anything else (nil, max, malformed) is the pattern's to decide. Held to it by a test.
 */
export function isUuid(s: string): boolean {
  if (s.length !== 36) return UUID.test(s);
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return UUID.test(s);
    } else if (i === 14 ? c < 49 || c > 56 : i === 19 ? !(c === 56 || c === 57 || c === 97 || c === 98 || c === 65 || c === 66) : !HEX(c)) {
      return UUID.test(s);
    }
  }
  return true;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/**
 * NewEvent.parse for the common well-formed event, in a fraction of zod's time (zod was a third
 * of a batched append): returns what the schema returns, or null whenever the input is anything
 * else (then zod decides and names the problem). test/store/event-validation.test.ts holds it
 * to the schema.
 */
export function fastNewEvent(input: unknown): NewEvent | null {
  if (!isPlainObject(input)) return null;
  for (const k in input) if (!ENVELOPE_KEYS.has(k)) return null;
  const { eventId, eventType, schemaVersion, data, metadata } = input;
  if (typeof eventId !== 'string' || !isUuid(eventId)) return null;
  if (typeof eventType !== 'string' || !EVENT_TYPE_PATTERN.test(eventType)) return null;
  if (typeof schemaVersion !== 'number' || !Number.isInteger(schemaVersion) || schemaVersion < 1 || schemaVersion > 1000) return null;
  if (!isPlainObject(data)) return null;
  const meta: Record<string, string> = {};
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) return null;
    for (const k in metadata) {
      const v = metadata[k];
      if (!PLAIN_METADATA_KEYS.has(k) || typeof v !== 'string' || v.length > 200) return null;
    }
    // In the schema's key order, as zod writes its output (the stored JSON text is the same).
    for (const k of PLAIN_METADATA_ORDER) if (Object.hasOwn(metadata, k)) meta[k] = metadata[k] as string;
  }
  // zod's record copies the own enumerable string keys except __proto__; anything unusual goes to zod.
  if (Object.hasOwn(data, '__proto__') || Object.getOwnPropertySymbols(data).length > 0) return null;
  return { eventId, eventType, schemaVersion, data: { ...data }, metadata: meta };
}

/** Envelope check shared by every writer: ids, types, metadata. */
export function parseNewEvent(input: NewEventInput, index = 0): NewEvent {
  const fast = fastNewEvent(input);
  if (fast) return fast;
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
