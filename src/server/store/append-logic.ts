import { ORDER_STREAM_TYPE, isOrderEventType } from '../../domain/events.js';
import { UpcastError, upcast } from '../../domain/upcasters.js';
import { REDUCER_VERSION, foldOrderInPlace, initialOrderState, type FoldableEvent, type OrderState } from '../../domain/state.js';
import { describeIssues, type Issue } from '../../domain/issues.js';
import type { ExpectedVersion, ServerEvent } from '../../protocol/envelope.js';
import {
  MAX_MISSING_BYTES_PER_CONFLICT,
  MAX_MISSING_BYTES_PER_RESPONSE,
  MAX_MISSING_EVENTS_PER_CONFLICT,
  MAX_MISSING_EVENTS_PER_RESPONSE,
  MAX_STREAM_PAGE_BYTES,
  type AppendResponse,
  type ConflictResponse,
} from '../../protocol/sync-api.js';
import { IdempotencyConflictError, InvalidEventError } from '../../protocol/errors.js';
import { canonicalJson } from '../../protocol/canonical-json.js';
import { checkEvent } from '../../protocol/event-contract.js';
import { GENESIS_HASH, chainHash, computeEventHash } from '../../protocol/event-hash.js';
import type { AppendCommand, ChainBreak, OrderView } from '../repository.js';

/**
 * Backend-independent parts of an append: input checks, the idempotency verdict, version and
 * hash assignment, and the order read-model fold. Each backend calls these inside its own
 * transaction, so both behave the same.
 */

/**
 * Lower-case ids (UUIDs compare case-insensitively), refuse a batch that repeats an id, and hold
 * every event to the contract (src/protocol/event-contract.ts) with the time it will be recorded
 * at as the reference of the date window.
 */
export function normalizeAppend(cmd: AppendCommand, recordedAt: string): AppendCommand {
  const seen = new Set<string>();
  const issues: Issue[] = [];
  const events = cmd.events.map((e, i) => {
    const eventId = e.eventId.toLowerCase();
    if (seen.has(eventId)) issues.push({ path: `events.${i}.eventId`, message: 'duplicate event id in this batch' });
    seen.add(eventId);
    const verdict = checkEvent({ streamType: cmd.streamType, eventType: e.eventType, schemaVersion: e.schemaVersion, data: e.data, metadata: e.metadata }, { now: recordedAt });
    if (!verdict.ok) for (const issue of verdict.issues) issues.push({ path: `events.${i}.${issue.path}`, message: issue.message });
    return eventId === e.eventId ? e : { ...e, eventId };
  });
  if (issues.length > 0) throw new InvalidEventError(`stream ${cmd.streamId}: ${describeIssues(issues)}`, issues);
  return { ...cmd, events };
}

/** Errors that refuse one element of a push (bad input), as opposed to failures of the store. */
export function isInputError(err: unknown): err is IdempotencyConflictError | InvalidEventError {
  return err instanceof IdempotencyConflictError || err instanceof InvalidEventError;
}

/**
 * Safety net behind the contract: a database data exception (SQLSTATE class 22, e.g. 22P05, a
 * character PostgreSQL cannot store) raised by one element refuses that element alone. The
 * database's text is not echoed: it may quote other rows' values.
 */
export function dataErrorRefusal(err: unknown): InvalidEventError | null {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  if (!/^22[0-9A-Z]{3}$/.test(code)) return null;
  return new InvalidEventError(`the database refused a value of this append (SQLSTATE ${code})`, [{ path: 'events', message: `a value the database cannot store (SQLSTATE ${code})` }]);
}

/**
 * An Order stream starts with OrderCreated: a payment, shipment or status change (seed 004's
 * OrderStatusChanged included) of an order that does not exist is refused rather than stored at
 * version 1 and folded into an order without a customer or total. Unknown types pass (newer clients).
 */
export function orderStreamStartError(cmd: AppendCommand, currentVersion: number): InvalidEventError | null {
  if (cmd.streamType !== ORDER_STREAM_TYPE || currentVersion > 0) return null;
  const first = cmd.events[0];
  if (!first || first.eventType === 'OrderCreated' || !isOrderEventType(first.eventType)) return null;
  return new InvalidEventError(`order ${cmd.streamId} does not exist: its first event must be OrderCreated, not ${first.eventType}`, [
    { path: 'events.0.eventType', message: `an order must be created (OrderCreated) before ${first.eventType}` },
  ]);
}

/** A stream keeps the type it was created with. */
export function streamTypeMismatch(cmd: AppendCommand, storedType: string): InvalidEventError {
  return new InvalidEventError(`stream ${cmd.streamId} is a ${storedType} stream, not ${cmd.streamType}`, [
    { path: 'streamType', message: `must be ${storedType} for this stream` },
  ]);
}

/** What a backend found already stored under the ids of an incoming batch. */
export interface ExistingEvent {
  eventId: string;
  tenantId: string;
  streamId: string;
  streamVersion: number;
  globalPosition: number;
  eventType: string;
  schemaVersion: number;
  data: Record<string, unknown>;
}

/**
 * `existing` holds only the caller's tenant's rows: event ids are unique per tenant, so an id
 * used by another tenant is neither refused nor revealed.
 * null: none of the ids is stored, go ahead. A result: every id is stored with the same
 * content, answer with the original outcome. Anything else is an IdempotencyConflictError.
 */
export function judgeDuplicates(cmd: AppendCommand, existing: ExistingEvent[]): AppendResponse | null {
  if (existing.length === 0) return null;
  const byId = new Map(existing.map((e) => [e.eventId, e]));
  for (const e of cmd.events) {
    const stored = byId.get(e.eventId);
    if (!stored) continue;
    const where = stored.tenantId === cmd.tenantId && stored.streamId === cmd.streamId;
    if (!where) throw new IdempotencyConflictError(e.eventId, 'it belongs to another stream');
    if (stored.eventType !== e.eventType || stored.schemaVersion !== e.schemaVersion) {
      throw new IdempotencyConflictError(e.eventId, `stored as ${stored.eventType} v${stored.schemaVersion}`);
    }
    if (canonicalJson(stored.data) !== canonicalJson(e.data)) throw new IdempotencyConflictError(e.eventId, 'the data differs');
  }
  if (existing.length !== cmd.events.length) {
    const first = cmd.events.find((e) => byId.has(e.eventId));
    throw new IdempotencyConflictError(
      first?.eventId ?? '?',
      `only ${existing.length} of the ${cmd.events.length} events of this batch are stored; resend the stored ones alone or the new ones alone`,
    );
  }
  const rows = cmd.events.map((e) => byId.get(e.eventId) as ExistingEvent);
  const versions = rows.map((r) => r.streamVersion);
  return {
    streamId: cmd.streamId,
    fromVersion: Math.min(...versions),
    toVersion: Math.max(...versions),
    events: rows.map((r) => ({ eventId: r.eventId, streamVersion: r.streamVersion, globalPosition: r.globalPosition })),
    duplicate: true,
  };
}

/** An event ready to insert: everything but the global position, which the database assigns. */
export interface PreparedEvent {
  eventId: string;
  streamId: string;
  streamType: string;
  streamVersion: number;
  eventType: string;
  schemaVersion: number;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  /** Canonical JSON of data and metadata: hashed, and stored as is. */
  dataJson: string;
  metadataJson: string;
  recordedAt: string;
  hash: string;
}

/** Assign versions after `currentVersion` and chain hashes from `previousHash`, writing each event to JSON once. */
export function prepareEvents(cmd: AppendCommand, currentVersion: number, previousHash: string, recordedAt: string): PreparedEvent[] {
  let prev = previousHash;
  return cmd.events.map((e, i) => {
    const p: PreparedEvent = {
      eventId: e.eventId,
      streamId: cmd.streamId,
      streamType: cmd.streamType,
      streamVersion: currentVersion + i + 1,
      eventType: e.eventType,
      schemaVersion: e.schemaVersion,
      data: e.data,
      metadata: e.metadata as Record<string, unknown>,
      dataJson: canonicalJson(e.data),
      metadataJson: canonicalJson(e.metadata),
      recordedAt,
      hash: '',
    };
    p.hash = chainHash(prev, p, p.dataJson, p.metadataJson);
    prev = p.hash;
    return p;
  });
}

export function appendResult(streamId: string, events: { eventId: string; streamVersion: number; globalPosition: number }[]): AppendResponse {
  return {
    streamId,
    fromVersion: events[0]?.streamVersion ?? 0,
    toVersion: events[events.length - 1]?.streamVersion ?? 0,
    events: events.map((e) => ({ eventId: e.eventId, streamVersion: e.streamVersion, globalPosition: e.globalPosition })),
    duplicate: false,
  };
}

/** A stored event as the fold needs it (globalPosition only for the last one: the row's ETag). */
export interface FoldInput {
  eventId: string;
  streamVersion: number;
  globalPosition: number;
  eventType: string;
  schemaVersion: number;
  data: unknown;
  recordedAt: string;
}

const ignoreUnknown = (): void => undefined;

/**
 * The fold version of the server's order read model: the reducer's, since the read model is
 * folded by it. A server started on a read model built with another version rebuilds it.
 */
export const READ_MODEL_VERSION = REDUCER_VERSION;

/**
 * Fold events (in version order) onto a stored order state; unknown types only advance the
 * version. `previous` must belong to the caller alone (freshly parsed JSON): it is folded in
 * place, with no immer draft per event, which dominated appends of large batches.
 */
export function foldOrderView(orderId: string, previous: OrderState | null, events: FoldInput[]): OrderView {
  const last = events[events.length - 1];
  if (!last) throw new Error('foldOrderView needs at least one event');
  const target = previous ?? (structuredClone(initialOrderState) as OrderState);
  const state = foldOrderInPlace(target, events.map(toFoldable), ignoreUnknown);
  return {
    orderId,
    customerId: state.customerId,
    customerName: state.customerName,
    status: state.status,
    paymentStatus: state.paymentStatus,
    fulfilmentStatus: state.fulfilmentStatus,
    total: state.total,
    currency: state.currency,
    itemCount: state.items.length,
    version: state.version,
    lastEventId: last.eventId,
    lastPosition: last.globalPosition,
    createdAt: state.createdAt,
    updatedAt: state.updatedAt,
    state,
  };
}

function toFoldable(e: FoldInput): FoldableEvent {
  try {
    return { type: e.eventType, data: upcast(e.eventType, e.schemaVersion, e.data).data, version: e.streamVersion, recordedAt: e.recordedAt };
  } catch (err) {
    if (!(err instanceof UpcastError)) throw err;
    // Stored before this build knew the type's newer schema: keep the slot, skip the content.
    return { type: `Unreadable:${e.eventType}`, data: e.data, version: e.streamVersion, recordedAt: e.recordedAt };
  }
}

/**
 * Walks stored events in (tenant, stream, version) order and remembers the first broken link:
 * a version gap, a hash that does not match the content, or a stream head that does not match
 * the last event (a deleted tail).
 */
export class ChainVerifier {
  private tenant: string | null = null;
  private stream: string | null = null;
  private prevHash = GENESIS_HASH;
  private prevVersion = 0;
  streamsChecked = 0;
  eventsChecked = 0;
  firstBroken: ChainBreak | null = null;

  /** Returns false once a break is found (callers stop reading). */
  check(e: ServerEvent & { tenantId: string }, anchor: { version: number; hash: string } | null = null): boolean {
    if (e.tenantId !== this.tenant || e.streamId !== this.stream) {
      this.tenant = e.tenantId;
      this.stream = e.streamId;
      this.prevHash = anchor?.hash ?? GENESIS_HASH;
      this.prevVersion = anchor?.version ?? 0;
      this.streamsChecked++;
    }
    this.eventsChecked++;
    const base = { tenantId: e.tenantId, streamId: e.streamId, streamVersion: e.streamVersion, eventId: e.eventId };
    if (e.streamVersion !== this.prevVersion + 1) {
      this.firstBroken = { ...base, reason: `version ${this.prevVersion + 1} is missing (found ${e.streamVersion} after ${this.prevVersion})` };
      return false;
    }
    const expected = computeEventHash(this.prevHash, e);
    if (expected !== e.hash) {
      this.firstBroken = { ...base, reason: 'stored hash does not match the event content and the previous link', expectedHash: expected, storedHash: e.hash };
      return false;
    }
    this.prevHash = e.hash;
    this.prevVersion = e.streamVersion;
    return true;
  }

  /** Compare a stream's recorded head with what the walk ended on. */
  checkHead(tenantId: string, streamId: string, headVersion: number, headHash: string, walkedVersion: number, walkedHash: string): boolean {
    if (headVersion === walkedVersion && headHash === walkedHash) return true;
    this.firstBroken = {
      tenantId,
      streamId,
      streamVersion: headVersion,
      eventId: null,
      reason: `stream head says version ${headVersion}, but the stored events end at version ${walkedVersion} (events were removed or altered)`,
      expectedHash: headHash,
      storedHash: walkedHash,
    };
    return false;
  }

  get lastHash(): string {
    return this.prevHash;
  }
  get lastVersion(): number {
    return this.prevVersion;
  }
  get current(): { tenantId: string | null; streamId: string | null } {
    return { tenantId: this.tenant, streamId: this.stream };
  }
}

const jsonBytes = (e: ServerEvent): number => Buffer.byteLength(JSON.stringify(e));

/**
 * What is left of one answer's allowance for missing events: a single append gets a fresh one,
 * a push shares one across all its conflicts, so neither can grow with the streams' lengths.
 */
export class MissingEventsBudget {
  private events = MAX_MISSING_EVENTS_PER_RESPONSE;
  private bytes = MAX_MISSING_BYTES_PER_RESPONSE;

  /** Rows a backend reads for the next conflict: one more than it may send (none once the answer is full). */
  get rowLimit(): number {
    if (this.events <= 0 || this.bytes <= 0) return 0;
    return Math.min(MAX_MISSING_EVENTS_PER_CONFLICT, this.events) + 1;
  }

  /** The longest prefix of `candidates` within this conflict's and the answer's bounds; charges it. */
  take(candidates: readonly ServerEvent[]): ServerEvent[] {
    const maxEvents = Math.min(MAX_MISSING_EVENTS_PER_CONFLICT, this.events);
    const maxBytes = Math.min(MAX_MISSING_BYTES_PER_CONFLICT, this.bytes);
    const out: ServerEvent[] = [];
    let bytes = 0;
    let answerFull = false;
    for (const e of candidates) {
      if (out.length >= maxEvents) break;
      const size = jsonBytes(e);
      if (bytes + size > maxBytes) {
        // The answer's own allowance was the binding one: later conflicts only carry their continuation.
        answerFull = maxBytes === this.bytes;
        break;
      }
      out.push(e);
      bytes += size;
    }
    this.events -= out.length;
    this.bytes = answerFull ? 0 : this.bytes - bytes;
    return out;
  }
}

/** The version a conflict's missing events start after: the client's expectation, or the stream start. */
export function missingAfter(expected: ExpectedVersion, currentVersion: number): number {
  return typeof expected === 'number' ? Math.min(expected, currentVersion) : 0;
}

/**
 * The 409 answer to an append whose expectation failed. `candidates` are the stream's events
 * after `missingAfter(...)` in version order, read with `budget.rowLimit`; when the bounds cut
 * them short, the answer says where the client continues (GET /sync/streams/:id/events).
 */
export function conflictAnswer(cmd: AppendCommand, currentVersion: number, candidates: readonly ServerEvent[], budget: MissingEventsBudget): ConflictResponse {
  const after = missingAfter(cmd.expectedVersion, currentVersion);
  const missingEvents = budget.take(candidates);
  const reached = missingEvents.length > 0 ? missingEvents[missingEvents.length - 1]!.streamVersion : after;
  const complete = reached >= currentVersion;
  return {
    error: 'WRONG_EXPECTED_VERSION',
    message: `stream ${cmd.streamId} is at version ${currentVersion}, but the append expected ${String(cmd.expectedVersion)}`,
    streamId: cmd.streamId,
    expectedVersion: cmd.expectedVersion,
    currentVersion,
    missingEvents,
    missingEventsComplete: complete,
    ...(complete ? {} : { continueAfterVersion: reached }),
  };
}

/** One page of a stream read with `limit + 1` rows: byte-bounded, but never empty while events remain. */
export function streamPage(rows: readonly ServerEvent[], limit: number): { events: ServerEvent[]; hasMore: boolean } {
  const events: ServerEvent[] = [];
  let bytes = 0;
  for (const e of rows) {
    if (events.length >= limit) break;
    const size = jsonBytes(e);
    if (events.length > 0 && bytes + size > MAX_STREAM_PAGE_BYTES) break;
    events.push(e);
    bytes += size;
  }
  return { events, hasMore: events.length < rows.length };
}
