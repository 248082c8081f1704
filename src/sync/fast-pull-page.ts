import { EventId, type ServerEvent } from '../protocol/envelope.js';
import { parsePullCursor, type PullResponse } from '../protocol/sync-api.js';

// The fast path's tests, taken from the schemas where zod exposes them.
const UUID = (EventId as unknown as { _zod: { pattern: RegExp } })._zod.pattern;
const HASH = /^[0-9a-f]{64}$/;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/** zod's string min(1).max(1000) counts code points; a length in units within the bounds is within them in code points too. */
const boundedText = (v: unknown): v is string => typeof v === 'string' && v.length >= 1 && v.length <= 1000;
const positiveInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

/** A shallow copy, as zod's record writes it; null for anything it might treat otherwise. */
function record(v: unknown): Record<string, unknown> | null {
  if (!isPlainObject(v) || Object.hasOwn(v, '__proto__') || Object.getOwnPropertySymbols(v).length > 0) return null;
  return { ...v };
}

function event(x: unknown): ServerEvent | null {
  if (!isPlainObject(x)) return null;
  const { eventId, streamId, streamType, streamVersion, globalPosition, eventType, schemaVersion, data, metadata, recordedAt, hash } = x;
  if (typeof eventId !== 'string' || !UUID.test(eventId)) return null;
  if (!boundedText(streamId) || !boundedText(streamType) || !boundedText(eventType)) return null;
  if (!positiveInt(streamVersion) || !positiveInt(globalPosition) || !Number.isSafeInteger(schemaVersion)) return null;
  if (typeof recordedAt !== 'string' || !Number.isFinite(Date.parse(recordedAt))) return null;
  if (typeof hash !== 'string' || !HASH.test(hash)) return null;
  const d = record(data);
  const m = record(metadata);
  if (d === null || m === null) return null;
  // The schema's keys only (zod strips the rest), in its order.
  return { eventId, streamId, streamType, streamVersion, globalPosition, eventType, schemaVersion: schemaVersion as number, data: d, metadata: m as ServerEvent['metadata'], recordedAt, hash };
}

/**
 * The device's pull-page schema (WirePullResponse in http-client.ts: coordinates strictly,
 * content loosely) for the common well-formed page, without zod's per-value machinery (zod was
 * most of a first sync's client time): returns what the schema returns, or null whenever the
 * page is anything else (then zod decides and names the problem). Like the store's fast
 * envelope check, test/sync/fast-pull-page.test.ts holds it to the schema.
 */
export function fastPullResponse(input: unknown): PullResponse | null {
  if (!isPlainObject(input)) return null;
  const { events, nextPosition, nextCursor, hasMore } = input;
  if (!Array.isArray(events) || typeof hasMore !== 'boolean' || !Number.isSafeInteger(nextPosition) || (nextPosition as number) < 0) return null;
  if (Object.hasOwn(input, 'nextCursor') && (typeof nextCursor !== 'string' || parsePullCursor(nextCursor) === null)) return null;
  const out: ServerEvent[] = new Array<ServerEvent>(events.length);
  for (let i = 0; i < events.length; i++) {
    const e = event(events[i]);
    if (e === null) return null;
    out[i] = e;
  }
  // Keys in the schema's order (the optional cursor only when sent), as zod writes them.
  if (Object.hasOwn(input, 'nextCursor')) return { events: out, nextPosition: nextPosition as number, nextCursor: nextCursor as string, hasMore };
  return { events: out, nextPosition: nextPosition as number, hasMore };
}
