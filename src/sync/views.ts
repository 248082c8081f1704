import { z } from 'zod';
import { OrderCommand, Rejection } from '../domain/commands.js';

/** What sync shows of itself: the schemas the app contract composes (sync owns their shape). */

/** One event of an order's history as the device shows it: confirmed, pending or superseded. */
export const TimelineEntry = z.object({
  eventId: z.string(),
  streamVersion: z.number(),
  eventType: z.string(),
  schemaVersion: z.number(),
  data: z.record(z.string(), z.unknown()),
  metadata: z.record(z.string(), z.unknown()),
  recordedAt: z.string(),
  /** 'superseded': an earlier attempt replaced after a rebase; 'rejected': the server refused the command (see the conflict inbox). */
  sync: z.enum(['pending', 'synced', 'superseded', 'rejected']),
  globalPosition: z.number().nullable(),
  hash: z.string().nullable(),
});
export type TimelineEntry = z.infer<typeof TimelineEntry>;

/** A confirmed event that changed a command's outcome; persisted with the rejected command. */
export const CausedBy = z.object({
  eventId: z.string(),
  eventType: z.string(),
  streamVersion: z.number(),
  userId: z.string().nullable(),
  deviceId: z.string().nullable(),
  recordedAt: z.string(),
});
export type CausedBy = z.infer<typeof CausedBy>;

/** A command of the conflict inbox. */
export const Conflict = z.object({
  commandId: z.string(),
  orderId: z.string(),
  command: OrderCommand,
  status: z.enum(['rejected', 'dismissed', 'retried']),
  rejection: Rejection,
  causedBy: z.array(CausedBy),
  createdAt: z.string(),
  rejectedAt: z.string(),
});
export type Conflict = z.infer<typeof Conflict>;

export const SyncStatus = z.object({
  /** 'paused': the person chose "Work offline" (no network traffic until they turn it off). */
  state: z.enum(['idle', 'syncing', 'offline', 'error', 'unauthorized', 'disabled', 'paused']),
  online: z.boolean(),
  pendingCount: z.number(),
  conflictCount: z.number(),
  /** Pulled events this app cannot read, kept aside (listQuarantine). */
  quarantinedCount: z.number(),
  lastSuccessAt: z.string().nullable(),
  lastAttemptAt: z.string().nullable(),
  lastError: z.string().nullable(),
  nextAttemptAt: z.string().nullable(),
  progress: z.object({ phase: z.enum(['push', 'pull', 'rebase']), done: z.number(), total: z.number().nullable() }).nullable(),
  serverUrl: z.string().nullable(),
  /** "Work offline" is on (persisted per device). */
  paused: z.boolean(),
  /**
   * Which status is newer: the scheduler numbers its every change (`seq`) within one run
   * (`epoch`). A reply (setWorkOffline, syncNow) and the status stream can reach a view in
   * either order, so a view keeps a status only if it is not older than the one it shows.
   */
  revision: z.object({ epoch: z.string(), seq: z.number().int().min(0) }),
});
export type SyncStatus = z.infer<typeof SyncStatus>;

/** The status a view should show of the one it has and one that arrived (see `revision`). */
export function newerStatus(current: SyncStatus | null, next: SyncStatus): SyncStatus {
  if (!current || current.revision.epoch !== next.revision.epoch) return next;
  return next.revision.seq >= current.revision.seq ? next : current;
}

export const QuarantineKind = z.enum(['newer-version', 'invalid', 'blocked']);
export type QuarantineKind = z.infer<typeof QuarantineKind>;

/** A pulled event this build cannot read, kept aside. */
export const QuarantinedEvent = z.object({
  eventId: z.string(),
  globalPosition: z.number(),
  streamId: z.string(),
  streamType: z.string(),
  streamVersion: z.number(),
  eventType: z.string(),
  schemaVersion: z.number(),
  kind: QuarantineKind,
  /** A sentence for people: what is wrong and what to do. */
  reason: z.string(),
  quarantinedAt: z.string(),
});
export type QuarantinedEvent = z.infer<typeof QuarantinedEvent>;
