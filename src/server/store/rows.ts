import type { ServerEvent } from '../../protocol/envelope.js';
import type { OrderState, OrderStatus } from '../../domain/state.js';
import type { ExistingEvent, FoldInput } from './append-logic.js';
import type { OrderView } from '../repository.js';

/**
 * The rows both dialects read, as their drivers hand them over: PostgreSQL gives bigints as
 * strings, jsonb as objects and timestamptz as Dates; SQLite gives numbers and JSON text. The
 * mappers below are the one place that turns either into the store's types.
 */
export interface EventRow {
  global_position: number | string;
  event_id: string;
  tenant_id: string;
  aggregate_id: string;
  aggregate_type: string;
  event_type: string;
  schema_version: number;
  event_data: string | Record<string, unknown>;
  metadata: string | ServerEvent['metadata'];
  version: number;
  created_at: string | Date;
  hash: string;
  /** The writer's transaction id (PostgreSQL pulls: the first half of the pull cursor). */
  txid?: string;
}

export interface ProjectionRow {
  order_id: string;
  customer_id: string | null;
  status: string | null;
  total: number | string;
  currency: string | null;
  item_count: number;
  version: number;
  last_event_id: string;
  last_position: number | string;
  created_at: string | Date | null;
  updated_at: string | Date | null;
  state: string | OrderState;
}

/** A stream's head as the append flow locks it. */
export interface StreamHead {
  version: number;
  lastHash: string;
  streamType: string;
}

/** A stream's recorded head next to the last event actually stored (null: none). */
export interface HeadCheckRow {
  tenantId: string;
  streamId: string;
  version: number;
  lastHash: string;
  lastEvent: { version: number; hash: string } | null;
}

const json = <T>(v: string | T): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);
const iso = (v: string | Date): string => (v instanceof Date ? v.toISOString() : v);

export function toServerEvent(r: EventRow): ServerEvent & { tenantId: string } {
  return {
    tenantId: r.tenant_id,
    eventId: r.event_id,
    streamId: r.aggregate_id,
    streamType: r.aggregate_type,
    streamVersion: r.version,
    globalPosition: Number(r.global_position),
    eventType: r.event_type,
    schemaVersion: r.schema_version,
    data: json<Record<string, unknown>>(r.event_data),
    metadata: json<ServerEvent['metadata']>(r.metadata),
    recordedAt: iso(r.created_at),
    hash: r.hash,
  };
}

/** The wire shape: the tenant is implied by the caller's token. */
export function publicEvent(r: EventRow): ServerEvent {
  const { tenantId: _tenant, ...rest } = toServerEvent(r);
  return rest;
}

export function toView(r: ProjectionRow): OrderView {
  return {
    orderId: r.order_id,
    customerId: r.customer_id,
    status: r.status as OrderStatus | null,
    total: Number(r.total),
    currency: r.currency,
    itemCount: r.item_count,
    version: r.version,
    lastEventId: r.last_event_id,
    lastPosition: Number(r.last_position),
    createdAt: r.created_at === null ? null : iso(r.created_at),
    updatedAt: r.updated_at === null ? null : iso(r.updated_at),
    state: json<OrderState>(r.state),
  };
}

export function toExisting(r: EventRow): ExistingEvent {
  return {
    eventId: r.event_id,
    tenantId: r.tenant_id,
    streamId: r.aggregate_id,
    streamVersion: r.version,
    globalPosition: Number(r.global_position),
    eventType: r.event_type,
    schemaVersion: r.schema_version,
    data: json<Record<string, unknown>>(r.event_data),
  };
}

export function toFoldInput(r: EventRow): FoldInput {
  return {
    eventId: r.event_id,
    streamVersion: r.version,
    globalPosition: Number(r.global_position),
    eventType: r.event_type,
    schemaVersion: r.schema_version,
    data: json<unknown>(r.event_data),
    recordedAt: iso(r.created_at),
  };
}

/** A projection's stored state, parsed fresh: the fold mutates it in place. */
export function parseState(state: string | OrderState | null | undefined): OrderState | null {
  return state === null || state === undefined ? null : json<OrderState>(state);
}
