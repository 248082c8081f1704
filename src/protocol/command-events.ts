import { v7 as uuidv7 } from 'uuid';
import { decide, type OrderCommand, type Rejection } from '../domain/commands.js';
import { EventSchemas, type OrderEvent } from '../domain/events.js';
import type { OrderState } from '../domain/state.js';
import type { EventMetadata, NewEvent } from './envelope.js';

/**
 * Who ran a command, where and when: the metadata every event it produces carries, whichever
 * writer ran it (the device's store or outbox, the server's command API).
 */
export interface CommandOrigin {
  /** The command's id: each event's commandId and causationId (the command caused it). */
  commandId: string;
  /** The conversation the command belongs to (a request, a session); the command itself by default. */
  correlationId?: string | undefined;
  userId?: string | undefined;
  deviceId?: string | undefined;
  /** Where the change was made ('desktop-app', …); the server may override it per request. */
  source?: string | undefined;
  /** When the user made the change (the writer's clock); the store adds when it was recorded. */
  occurredAt?: string | undefined;
}

/** The metadata of a command's events: the one vocabulary of every writer. */
export function commandMetadata(origin: CommandOrigin): EventMetadata {
  const metadata: EventMetadata = {
    commandId: origin.commandId,
    causationId: origin.commandId,
    correlationId: origin.correlationId ?? origin.commandId,
  };
  if (origin.userId !== undefined) metadata.userId = origin.userId;
  if (origin.deviceId !== undefined) metadata.deviceId = origin.deviceId;
  if (origin.occurredAt !== undefined) metadata.occurredAt = origin.occurredAt;
  if (origin.source !== undefined) metadata.source = origin.source;
  return metadata;
}

/** A decided command's domain events as envelopes: current schema versions, fresh UUIDv7 ids. */
export function commandEvents(events: readonly OrderEvent[], origin: CommandOrigin, newEventId: () => string = uuidv7): NewEvent[] {
  const metadata = commandMetadata(origin);
  return events.map((e) => ({
    eventId: newEventId(),
    eventType: e.type,
    schemaVersion: EventSchemas[e.type].version,
    data: e.data as Record<string, unknown>,
    metadata,
  }));
}

export type CommandOutcome = { ok: true; events: NewEvent[] } | { ok: false; rejection: Rejection };

/** The command pipeline: decide on a state, then wrap the events with the command's origin. */
export function decideCommand(state: OrderState, command: OrderCommand, origin: CommandOrigin, newEventId?: () => string): CommandOutcome {
  const decision = decide(state, command);
  return decision.ok ? { ok: true, events: commandEvents(decision.events, origin, newEventId) } : decision;
}
