import type { ExpectedVersion, NewEvent, ServerEvent } from '../protocol/envelope.js';
import type { AppendResponse, ConflictResponse, PullResponse, ScopedPullQuery } from '../protocol/sync-api.js';
import type { FulfilmentStatus, OrderState, OrderStatus, PaymentStatus } from '../domain/state.js';
import type { IdempotencyConflictError, InvalidEventError } from '../protocol/errors.js';

/** One append, already authorised: metadata carries the server-set tenant, user, source and correlation. */
export interface AppendCommand {
  tenantId: string;
  streamId: string;
  streamType: string;
  expectedVersion: ExpectedVersion;
  events: NewEvent[];
}

export type AppendOutcome =
  | { status: 'ok'; result: AppendResponse }
  | { status: 'conflict'; conflict: ConflictResponse };

/** One element of a push: its outcome, or the bad-input error that refused it (nothing of it written). */
export type PushOutcome = AppendOutcome | { status: 'error'; error: IdempotencyConflictError | InvalidEventError };

/** An opaque pull cursor as text: stored as is, handed back as is. */
export type RelayCursor = string;

export interface RelayPage {
  events: (ServerEvent & { tenantId: string })[];
  /** The cursor after this page (the given one when it is empty). */
  next: RelayCursor | null;
  hasMore: boolean;
}

/** A row of the order read model (maintained inside the append transaction). */
export interface OrderView {
  orderId: string;
  customerId: string | null;
  customerName: string | null;
  /** The seeds' word (the last lifecycle event wins). */
  status: OrderStatus | null;
  paymentStatus: PaymentStatus | null;
  fulfilmentStatus: FulfilmentStatus | null;
  total: number;
  currency: string | null;
  itemCount: number;
  version: number;
  lastEventId: string;
  /** Global position of the last event folded in: the ETag of this row. */
  lastPosition: number;
  createdAt: string | null;
  updatedAt: string | null;
  state: OrderState;
}

export interface DashboardQuery {
  status?: OrderStatus | undefined;
  paymentStatus?: PaymentStatus | undefined;
  fulfilmentStatus?: FulfilmentStatus | undefined;
  limit: number;
  offset: number;
}

export interface DashboardPage {
  orders: OrderView[];
  total: number;
  /** Highest global position folded into this tenant's read model (0 = none): the ETag. */
  position: number;
}

/** A tenant's orders counted by the status word and by each facet (every key present, 0 when none). */
export interface OrderCounts {
  total: number;
  status: Record<OrderStatus, number>;
  paymentStatus: Record<PaymentStatus, number>;
  fulfilmentStatus: Record<FulfilmentStatus, number>;
}

export interface ChainBreak {
  tenantId: string;
  streamId: string;
  streamVersion: number;
  eventId: string | null;
  reason: string;
  expectedHash?: string;
  storedHash?: string;
}

export interface ChainReport {
  ok: boolean;
  streamsChecked: number;
  eventsChecked: number;
  firstBroken: ChainBreak | null;
}

export interface ChainFilter {
  tenantId?: string | undefined;
  streamId?: string | undefined;
}

/**
 * The central event store. Both backends keep the same promises: appends are atomic per
 * stream, versions are gap-free, event ids are idempotency keys, pulls never skip an event
 * that commits later with a lower position, and the events table is append-only.
 */
export interface EventRepository {
  readonly backend: 'sqlite' | 'pg';
  /** Throws IdempotencyConflictError / InvalidEventError; nothing is written then. */
  append(cmd: AppendCommand): Promise<AppendOutcome>;
  /**
   * Several appends (a device's push) with one commit. Each element is atomic and independent
   * (its own savepoint: a conflict or bad input undoes only that element); elements of one
   * stream apply in the given order. Any other error undoes the whole push and is thrown.
   */
  appendAll(cmds: AppendCommand[]): Promise<PushOutcome[]>;
  /** After a position (older devices: position order) or a cursor (`v2.…`: the gap-safe pull order). */
  pull(tenantId: string, from: number | string, limit: number): Promise<PullResponse>;
  /**
   * The same page as `pull`, already as its JSON text (the pull route's body): stored event
   * data and metadata text go in as they are instead of being parsed and written again (most
   * of a large page's cost). `events`: how many it holds.
   */
  pullText(tenantId: string, from: number | string, limit: number): Promise<{ text: string; events: number }>;
  /** Events of the streams in scope after `after` (at most `upTo`); nextPosition passes over the rest. */
  scopedPull(tenantId: string, request: ScopedPullQuery, now?: Date): Promise<PullResponse>;
  /**
   * The broker relay's read: every tenant's events after `cursor`, through the same gap-safe
   * read as `pull` (a cursor is whatever an earlier page returned; null: from the start).
   */
  pullAll(cursor: RelayCursor | null, limit: number): Promise<RelayPage>;
  /** The cursor the relay stored after the broker acknowledged a page (null: none yet). */
  relayCheckpoint(): Promise<RelayCursor | null>;
  saveRelayCheckpoint(cursor: RelayCursor): Promise<void>;
  /** The stream's events after `afterVersion` in version order; at most `limit` when given. */
  readStream(tenantId: string, streamId: string, afterVersion?: number, limit?: number): Promise<ServerEvent[]>;
  getOrder(tenantId: string, orderId: string): Promise<OrderView | null>;
  listOrders(tenantId: string, query: DashboardQuery): Promise<DashboardPage>;
  countOrders(tenantId: string): Promise<OrderCounts>;
  /** Drop the read model of one tenant (all tenants when omitted: operators only) and replay its log into it (batched). */
  rebuildProjections(tenantId?: string): Promise<{ eventsReplayed: number }>;
  /** At start: rebuild the whole read model when it was built by another fold version, then record this one. */
  ensureReadModel(version: number): Promise<{ rebuilt: boolean; eventsReplayed: number }>;
  verifyChain(filter: ChainFilter): Promise<ChainReport>;
  /**
   * Changes whenever events become visible to pulls, whichever process stored them (SQLite: the
   * newest position; PostgreSQL: the pull horizon and the newest position): the live-stream
   * notifier polls this once for all waiters.
   */
  visibleHead(): Promise<string>;
  /** Throws when the database cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
