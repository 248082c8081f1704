import { jsonText } from '../../protocol/canonical-json.js';
import type { ServerEvent } from '../../protocol/envelope.js';
import {
  FULFILMENT_STATUSES,
  ORDER_STATUSES,
  PAYMENT_STATUSES,
  type FulfilmentStatus,
  type OrderState,
  type OrderStatus,
  type PaymentStatus,
} from '../../domain/state.js';
import type { ExistingEvent, FoldInput } from './append-logic.js';
import type { OrderCounts, OrderView } from '../repository.js';

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
  customer_name: string | null;
  status: string | null;
  payment_status: string | null;
  fulfilment_status: string | null;
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

/** Orders of a tenant per combination of status word and facets. */
export interface OrderCountRow {
  status: string | null;
  payment_status: string | null;
  fulfilment_status: string | null;
  n: number;
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

/** Stored JSON text as it is (SQLite keeps the text the server wrote); a driver's parsed value (PostgreSQL jsonb) written out. */
const jsonOf = (v: string | object): string => (typeof v === 'string' ? v : jsonText(v));

/**
 * `publicEvent(r)` as JSON text, without parsing the stored data and metadata to write them
 * again: the same keys in the same order, and the same values once parsed.
 */
export function publicEventJson(r: EventRow): string {
  return (
    `{"eventId":${JSON.stringify(r.event_id)},"streamId":${JSON.stringify(r.aggregate_id)},"streamType":${JSON.stringify(r.aggregate_type)}` +
    `,"streamVersion":${r.version},"globalPosition":${Number(r.global_position)},"eventType":${JSON.stringify(r.event_type)}` +
    `,"schemaVersion":${r.schema_version},"data":${jsonOf(r.event_data)},"metadata":${jsonOf(r.metadata)}` +
    `,"recordedAt":${JSON.stringify(iso(r.created_at))},"hash":${JSON.stringify(r.hash)}}`
  );
}

export function toView(r: ProjectionRow): OrderView {
  return {
    orderId: r.order_id,
    customerId: r.customer_id,
    customerName: r.customer_name,
    status: r.status as OrderStatus | null,
    paymentStatus: r.payment_status as PaymentStatus | null,
    fulfilmentStatus: r.fulfilment_status as FulfilmentStatus | null,
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

const zeros = <K extends string>(keys: readonly K[]): Record<K, number> => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

/** Count rows (status, payment facet, fulfilment facet) into one tally per dimension. */
export function tallyOrders(rows: readonly OrderCountRow[]): OrderCounts {
  const out: OrderCounts = { total: 0, status: zeros(ORDER_STATUSES), paymentStatus: zeros(PAYMENT_STATUSES), fulfilmentStatus: zeros(FULFILMENT_STATUSES) };
  for (const r of rows) {
    const n = Number(r.n);
    out.total += n;
    if (r.status && r.status in out.status) out.status[r.status as OrderStatus] += n;
    if (r.payment_status && r.payment_status in out.paymentStatus) out.paymentStatus[r.payment_status as PaymentStatus] += n;
    if (r.fulfilment_status && r.fulfilment_status in out.fulfilmentStatus) out.fulfilmentStatus[r.fulfilment_status as FulfilmentStatus] += n;
  }
  return out;
}
