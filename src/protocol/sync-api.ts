import { z } from 'zod';
import { ExpectedVersion, NewEvent, ServerEvent, StreamId, StreamType } from './envelope.js';

/**
 * The wire contract between a device's sync engine and the central server. The server
 * validates requests with these schemas; the client validates responses with them.
 *
 *   POST /sync/streams/:streamId/append   AppendRequest → 201 AppendResponse | 409 ConflictResponse
 *   POST /sync/push                       PushRequest   → 200 PushResponse (one result per stream)
 *   GET  /sync/events?cursor=&limit=&waitMs= → 200 PullResponse (waitMs: long-poll when empty;
 *                                           `after=` instead of `cursor=`: a position, older devices)
 *   GET  /sync/events/live?after=          → text/event-stream of ServerEvent (SSE)
 *   GET  /sync/streams/:streamId/events?afterVersion=&limit= → 200 StreamEventsResponse (one stream, paged:
 *                                           the audited record, and the rest of a conflict's missing events)
 *
 * Every request carries `Authorization: Bearer <token>`; the token decides tenant and user.
 */
export const MAX_EVENTS_PER_APPEND = 1000;
export const MAX_STREAMS_PER_PUSH = 500;
export const MAX_PULL_LIMIT = 5000;

/**
 * A conflict answer carries at most this many of the stream's missing events (and bytes of them),
 * and one push response at most the per-response totals over all its conflicts: a stale push
 * against a long stream must not turn a small request into a huge answer. The device fetches
 * the rest page by page (StreamEventsQuery) before it rebases.
 */
export const MAX_MISSING_EVENTS_PER_CONFLICT = 500;
export const MAX_MISSING_BYTES_PER_CONFLICT = 1024 * 1024;
export const MAX_MISSING_EVENTS_PER_RESPONSE = 5000;
export const MAX_MISSING_BYTES_PER_RESPONSE = 4 * 1024 * 1024;
/** One page of a stream: at most this many events and (past the first event) bytes. */
export const MAX_STREAM_PAGE_LIMIT = 5000;
export const MAX_STREAM_PAGE_BYTES = 4 * 1024 * 1024;

export const AppendRequest = z.strictObject({
  streamType: StreamType,
  expectedVersion: ExpectedVersion,
  events: z.array(NewEvent).min(1, 'at least one event').max(MAX_EVENTS_PER_APPEND),
});
export type AppendRequest = z.infer<typeof AppendRequest>;

export const AppendedEvent = z.object({
  eventId: z.string(),
  streamVersion: z.number().int().positive(),
  globalPosition: z.number().int().positive(),
});

export const AppendResponse = z.object({
  streamId: StreamId,
  fromVersion: z.number().int().positive(),
  toVersion: z.number().int().positive(),
  events: z.array(AppendedEvent),
  /** true when every event id was already stored: a retried request, answered with the original result. */
  duplicate: z.boolean(),
});
export type AppendResponse = z.infer<typeof AppendResponse>;

export const ConflictResponse = z.object({
  error: z.literal('WRONG_EXPECTED_VERSION'),
  message: z.string(),
  streamId: StreamId,
  expectedVersion: ExpectedVersion,
  currentVersion: z.number().int().min(0),
  /** Events after the client's expected version (from version 1 when expectedVersion is not a number), bounded. */
  missingEvents: z.array(ServerEvent),
  /** false when the bounds cut missingEvents short (absent from older servers: complete). */
  missingEventsComplete: z.boolean().default(true),
  /** When incomplete: fetch the stream's events after this version (GET /sync/streams/:streamId/events). */
  continueAfterVersion: z.number().int().min(0).optional(),
});
export type ConflictResponse = z.infer<typeof ConflictResponse>;

export const PushRequest = z.strictObject({
  appends: z
    .array(AppendRequest.extend({ streamId: StreamId }))
    .min(1)
    .max(MAX_STREAMS_PER_PUSH),
});
export type PushRequest = z.infer<typeof PushRequest>;

export const PushResult = z.discriminatedUnion('status', [
  z.object({ status: z.literal('ok'), result: AppendResponse }),
  z.object({ status: z.literal('conflict'), conflict: ConflictResponse }),
  /** This element was refused (nothing of it stored); the rest of the push is unaffected. */
  z.object({
    status: z.literal('error'),
    streamId: StreamId,
    error: z.string(),
    message: z.string(),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
]);
export const PushResponse = z.object({ results: z.array(PushResult) });
export type PushResponse = z.infer<typeof PushResponse>;

/**
 * Where a pull resumes. `cursor` (servers since issue 17): everything up to this point of the
 * server's pull order has been delivered; it is opaque to devices. `after` (older devices): the
 * last global position received; still served, position by position. Give one of them: a
 * device without either starts from the beginning.
 */
export const PULL_CURSOR_START = 'v2.0.0';
const CURSOR_TEXT = /^v2\.(0|[1-9]\d{0,19})\.(0|[1-9]\d{0,15})$/;
const MAX_XID8 = 2n ** 64n - 1n;

/** A pull cursor taken apart: the writer's transaction id (decimal text: 64 bits) and the global position. */
export interface PullCursorKey {
  txid: string;
  position: number;
}

/** `v2.<transaction id>.<position>`, the version prefix first so another format can follow. */
export const PullCursor = z.string().refine((s) => parsePullCursor(s) !== null, {
  message: `a pull cursor looks like ${PULL_CURSOR_START} (pass back the nextCursor of the previous pull)`,
});

export function parsePullCursor(text: string): PullCursorKey | null {
  const m = CURSOR_TEXT.exec(text);
  if (!m) return null;
  const position = Number(m[2]);
  if (BigInt(m[1]!) > MAX_XID8 || !Number.isSafeInteger(position)) return null;
  return { txid: m[1]!, position };
}

export function formatPullCursor(key: PullCursorKey): string {
  return `v2.${key.txid}.${key.position}`;
}

export const PullQuery = z
  .strictObject({
    after: z.coerce.number().int().min(0).optional(),
    cursor: PullCursor.optional(),
    limit: z.coerce.number().int().min(1).max(MAX_PULL_LIMIT).default(1000),
    waitMs: z.coerce.number().int().min(0).max(60_000).default(0),
  })
  .refine((q) => q.after === undefined || q.cursor === undefined, { message: 'give either after (a position) or cursor, not both', path: ['cursor'] });
export type PullQuery = z.infer<typeof PullQuery>;

export const PullResponse = z.object({
  events: z.array(ServerEvent),
  /**
   * For devices that pull by position: pass as `after` next time (never skips an event that
   * commits later with a lower position). In a cursor pull: the last event's position.
   */
  nextPosition: z.number().int().min(0),
  /**
   * Pass as `cursor` next time. Always present in a cursor pull; in a position pull, once the
   * device has caught up (its next pull can switch to the cursor). Absent from older servers.
   */
  nextCursor: PullCursor.optional(),
  hasMore: z.boolean(),
});
export type PullResponse = z.infer<typeof PullResponse>;

/**
 * A bootstrap (issue 17): the tenant's log and the device's views as one device database file,
 * built by a device that follows the server (`npm run bootstrap`). A new device takes it in at
 * page-copy speed, then pulls from `cursor` on. `schema` is the fingerprint of the device schema
 * it was built with: a device with another schema pulls instead.
 */
export const BootstrapManifest = z.strictObject({
  /** The file's SHA-256 (hex): its name, and what the download is checked against. */
  id: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().positive(),
  /** Events the file holds. */
  events: z.number().int().min(0),
  /** The pull cursor the file is complete up to. */
  cursor: PullCursor,
  schema: z.string().regex(/^[0-9a-f]{64}$/),
  builtAt: z.iso.datetime(),
});
export type BootstrapManifest = z.infer<typeof BootstrapManifest>;

export const BootstrapResponse = z.object({ bootstrap: BootstrapManifest.nullable() });
export type BootstrapResponse = z.infer<typeof BootstrapResponse>;

export const BootstrapParams = z.strictObject({ id: z.string().regex(/^[0-9a-f]{64}$/, 'a bootstrap id is 64 hex digits') });

/** Who a token is (GET /sync/session): a bootstrap builder files its output under this tenant. */
export const SessionResponse = z.object({ tenant: z.string(), user: z.string(), roles: z.array(z.string()) });
export type SessionResponse = z.infer<typeof SessionResponse>;

export const ErrorResponse = z.object({
  error: z.string(),
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  /** The event an IDEMPOTENCY_CONFLICT is about. */
  eventId: z.string().optional(),
  /** On a 410 ARCHIVED: the archive files (names only) holding the events the request needs. */
  archives: z.array(z.string()).optional(),
  /** On a 500: the id to find the failure in the server log. */
  correlationId: z.string().optional(),
});
export type ErrorResponse = z.infer<typeof ErrorResponse>;

export const StreamEventsQuery = z.strictObject({
  afterVersion: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(MAX_STREAM_PAGE_LIMIT).default(1000),
});
export type StreamEventsQuery = z.infer<typeof StreamEventsQuery>;

/** One stream as the server holds it, hashes included: devices recompute the chain to audit it. */
export const StreamEventsResponse = z.object({
  streamId: StreamId,
  /** Events after `afterVersion` in version order: at most `limit`, and a byte-bounded page. */
  events: z.array(ServerEvent),
  /** More events follow the last one of this page (absent from older servers: none). */
  hasMore: z.boolean().default(false),
});
export type StreamEventsResponse = z.infer<typeof StreamEventsResponse>;

/**
 * Scoped sync (issue 16): which orders a device holds. `all` is the full replica (the plain
 * pull). Otherwise an order is in scope when its customer is listed, when it changed within the
 * last `recentDays` days, or when it is listed in `streams` (orders the device touched or opened
 * on demand: the device keeps them). The server evaluates the scope against its read model at
 * each pull, always within the caller's tenant.
 */
export const MAX_SCOPE_CUSTOMERS = 1000;
export const MAX_SCOPE_STREAMS = 20_000;
export const SyncScope = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('all') }),
  z.strictObject({
    mode: z.literal('scoped'),
    customers: z.array(z.string().trim().min(1).max(200)).max(MAX_SCOPE_CUSTOMERS).default([]),
    /** Orders changed within this many days (null: none by recency). */
    recentDays: z.number().int().min(1).max(3650).nullable().default(null),
    streams: z.array(StreamId).max(MAX_SCOPE_STREAMS).default([]),
  }),
]);
export type SyncScope = z.infer<typeof SyncScope>;
export type ScopedSyncScope = Extract<SyncScope, { mode: 'scoped' }>;

/**
 * POST /sync/events/scoped → 200 PullResponse: the events after `after` (and at most `upTo`)
 * of the streams in scope. `nextPosition` passes over the events out of scope, up to the newest
 * position a pull may return, so the device's one cursor stays gap-safe for what it holds; a
 * stream that enters the scope later (widening, recency) is backfilled by a bounded pull with
 * `upTo` = the cursor, or by its stream read.
 */
export const ScopedPullRequest = z.strictObject({
  after: z.number().int().min(0).default(0),
  upTo: z.number().int().min(0).optional(),
  limit: z.number().int().min(1).max(MAX_PULL_LIMIT).default(1000),
  scope: SyncScope.options[1].omit({ mode: true }),
});
export type ScopedPullRequest = z.input<typeof ScopedPullRequest>;
/** The parsed request, as the server uses it. */
export type ScopedPullQuery = z.output<typeof ScopedPullRequest>;
