import { z } from 'zod';
import { Identifier, IsoTimestamp } from '../domain/events.js';

/** Stream ids and aggregate ids share the identifier rules of the domain. */
export const StreamId = Identifier;
export const StreamType = z.string().regex(/^[A-Z][A-Za-z0-9]{0,49}$/, 'must be a PascalCase type name like Order');
export const EVENT_TYPE_PATTERN = /^[A-Z][A-Za-z0-9]{0,99}$/;
export const EventType = z.string().regex(EVENT_TYPE_PATTERN, 'must be a PascalCase event type like OrderCreated');
export const EventId = z.uuid('must be a UUID (clients generate UUIDv7)');

export const EventMetadata = z.strictObject({
  correlationId: z.string().max(200).optional(),
  causationId: z.string().max(200).optional(),
  userId: z.string().max(200).optional(),
  deviceId: z.string().max(200).optional(),
  source: z.string().max(200).optional(),
  occurredAt: IsoTimestamp.optional(),
  /** The local command that produced this event (sync uses it to rebase). */
  commandId: z.string().max(200).optional(),
  /** Set by the server from the caller's token; clients cannot choose it. */
  tenantId: z.string().max(200).optional(),
});
export type EventMetadata = z.infer<typeof EventMetadata>;

/** An event as a writer hands it to a store: the store assigns version, position and time. */
export const NewEvent = z.strictObject({
  eventId: EventId,
  eventType: EventType,
  schemaVersion: z.number().int().min(1).max(1000),
  data: z.record(z.string(), z.unknown()),
  metadata: EventMetadata.default({}),
});
export type NewEvent = z.infer<typeof NewEvent>;
export type NewEventInput = z.input<typeof NewEvent>;

/** An event as the local device store holds it. */
export interface StoredEvent {
  eventId: string;
  streamId: string;
  streamType: string;
  streamVersion: number;
  /** Local position in this device's log (1-based, gap-free in commit order). */
  position: number;
  eventType: string;
  schemaVersion: number;
  data: Record<string, unknown>;
  metadata: EventMetadata;
  recordedAt: string;
}

/** An event as the central server holds and serves it. */
export const ServerEvent = z.object({
  eventId: EventId,
  streamId: StreamId,
  streamType: StreamType,
  streamVersion: z.number().int().positive(),
  globalPosition: z.number().int().positive(),
  eventType: EventType,
  schemaVersion: z.number().int().min(1),
  data: z.record(z.string(), z.unknown()),
  metadata: EventMetadata,
  recordedAt: IsoTimestamp,
  /** Hex SHA-256 chaining this event to the previous one of its stream. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ServerEvent = z.infer<typeof ServerEvent>;

/** The four expected-version variants of an append. */
export const ExpectedVersion = z.union([
  z.number().int().min(0, 'expected version must be >= 0 (0 means the stream has no events)'),
  z.literal('no_stream'),
  z.literal('stream_exists'),
  z.literal('any'),
]);
export type ExpectedVersion = z.infer<typeof ExpectedVersion>;

/** Does a stream currently at `actual` (0 = no stream) satisfy `expected`? */
export function expectedVersionMatches(expected: ExpectedVersion, actual: number): boolean {
  switch (expected) {
    case 'any':
      return true;
    case 'no_stream':
      return actual === 0;
    case 'stream_exists':
      return actual > 0;
    default:
      return expected === actual;
  }
}
