import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { v7 as uuidv7 } from 'uuid';
import { CommandRejectedError, decide, type OrderCommand } from '../domain/commands.js';
import { EventSchemas, ORDER_STREAM_TYPE } from '../domain/events.js';
import { upcast } from '../domain/upcasters.js';
import { applyOrderEvent, foldOrder, initialOrderState, outstandingAmount, type OrderState } from '../domain/state.js';
import type { NewEvent, ServerEvent } from '../protocol/envelope.js';
import { ErrorResponse } from '../protocol/sync-api.js';
import {
  AggregateParams,
  AggregateStateResponse,
  CommandResult,
  ConcurrentModification,
  CreateOrderBody,
  DashboardQuerySchema,
  DashboardResponse,
  NotFound,
  OrderDetail,
  OrderParams,
  RebuildResponse,
  Rejected,
  SeedAppendEvent,
  SeedAppendResult,
  UpdateStatusBody,
  VerifyQuery,
  VerifyResponse,
} from './http-schemas.js';
import { HttpError, caller, enrich, notModified } from './http-context.js';
import type { AppendNotifier } from './notifier.js';
import type { EventRepository, OrderView } from './repository.js';

function concurrentModification(aggregateId: string, expected: number | null, current: number): HttpError {
  return new HttpError(409, {
    error: 'CONCURRENT_MODIFICATION',
    message: `Aggregate version conflict: ${aggregateId} is at version ${current}${expected === null ? '' : `, not ${expected}`}. Retry with latest version.`,
    aggregateId,
    expectedVersion: expected,
    currentVersion: current,
  });
}

/** Seed-style replay: Order streams fold through the domain reducers, others merge payloads. */
function replayState(events: ServerEvent[]): Record<string, unknown> {
  const type = events[0]?.streamType;
  if (type === ORDER_STREAM_TYPE) {
    const state = foldOrder(
      events.map((e) => ({ type: e.eventType, data: upcast(e.eventType, e.schemaVersion, e.data).data, version: e.streamVersion, recordedAt: e.recordedAt })),
      initialOrderState,
      () => undefined,
    );
    return { ...state };
  }
  return events.reduce<Record<string, unknown>>((s, e) => ({ ...s, ...e.data }), {});
}

function summary(v: OrderView) {
  return {
    orderId: v.orderId,
    customerId: v.customerId,
    status: v.status,
    total: v.total,
    currency: v.currency,
    itemCount: v.itemCount,
    version: v.version,
    createdAt: v.createdAt,
    updatedAt: v.updatedAt,
  };
}

/** The command a status change stands for (the seed API speaks statuses, the domain commands). */
function statusCommand(orderId: string, state: OrderState, body: UpdateStatusBodyT): OrderCommand {
  switch (body.status) {
    case 'PAID': {
      const amount = outstandingAmount(state);
      if (state.exists && amount <= 0) {
        throw new HttpError(422, { error: 'OVERPAYMENT', message: `Order ${orderId} has nothing left to pay.` });
      }
      return { type: 'RecordPayment', orderId, paymentId: body.paymentId ?? `pay-${uuidv7()}`, amount: Math.max(amount, 1) };
    }
    case 'RESERVED':
      return { type: 'ReserveInventory', orderId, reservationId: body.reservationId ?? `res-${uuidv7()}` };
    case 'SHIPPED':
      return { type: 'ShipOrder', orderId, shipmentId: body.shipmentId ?? `shp-${uuidv7()}`, shippedAt: body.shippedAt ?? new Date().toISOString() };
    case 'CANCELLED':
      return { type: 'CancelOrder', orderId, reason: body.reason ?? 'cancelled via the order API', cancelledAt: new Date().toISOString() };
  }
}
type UpdateStatusBodyT = { status: 'PAID' | 'RESERVED' | 'SHIPPED' | 'CANCELLED'; paymentId?: string | undefined; reservationId?: string | undefined; shipmentId?: string | undefined; shippedAt?: string | undefined; reason?: string | undefined };

export function registerApiRoutes(app: FastifyInstance, repo: EventRepository, notifier: AppendNotifier): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  /** decide() on the read model's state, then append with that state's version as the expectation. */
  async function runCommand(req: FastifyRequest, command: OrderCommand, expectedVersion: number | undefined) {
    const who = caller(req);
    const view = await repo.getOrder(who.tenant, command.orderId);
    const state = view?.state ?? initialOrderState;
    if (expectedVersion !== undefined && expectedVersion !== state.version) throw concurrentModification(command.orderId, expectedVersion, state.version);
    const decision = decide(state, command);
    if (!decision.ok) throw new CommandRejectedError(decision.rejection, command);
    const events: NewEvent[] = decision.events.map((e) => ({
      eventId: uuidv7(),
      eventType: e.type,
      schemaVersion: EventSchemas[e.type].version,
      data: e.data as Record<string, unknown>,
      metadata: { commandId: req.correlationId },
    }));
    const outcome = await repo.append({
      tenantId: who.tenant,
      streamId: command.orderId,
      streamType: ORDER_STREAM_TYPE,
      expectedVersion: state.version,
      events: enrich(events, req),
    });
    if (outcome.status === 'conflict') throw concurrentModification(command.orderId, expectedVersion ?? state.version, outcome.conflict.currentVersion);
    notifier.notify();
    const after = decision.events.reduce((s, e, i) => applyOrderEvent(s, { type: e.type, data: e.data, version: state.version + i + 1 }), state);
    const last = outcome.result.events[outcome.result.events.length - 1]!;
    return { previous: state, after, version: outcome.result.toVersion, globalPosition: last.globalPosition, eventIds: outcome.result.events.map((e) => e.eventId) };
  }

  r.post(
    '/api/events',
    {
      schema: {
        tags: ['seed'],
        body: SeedAppendEvent,
        response: { 201: SeedAppendResult, 400: ErrorResponse, 409: ConcurrentModification, 422: ErrorResponse },
      },
    },
    async (req, reply) => {
      const who = caller(req);
      const b = req.body;
      const eventId = b.eventId ?? uuidv7();
      const outcome = await repo.append({
        tenantId: who.tenant,
        streamId: b.aggregateId,
        streamType: b.aggregateType,
        expectedVersion: b.expectedVersion ?? 'any',
        events: enrich([{ eventId, eventType: b.eventType, schemaVersion: b.schemaVersion, data: b.eventData, metadata: b.metadata ?? {} }], req),
      });
      if (outcome.status === 'conflict') throw concurrentModification(b.aggregateId, b.expectedVersion ?? null, outcome.conflict.currentVersion);
      if (!outcome.result.duplicate) notifier.notify();
      const stored = outcome.result.events[0]!;
      return reply.code(201).send({
        eventId: stored.eventId,
        aggregateId: b.aggregateId,
        aggregateType: b.aggregateType,
        eventType: b.eventType,
        version: stored.streamVersion,
        globalPosition: stored.globalPosition,
        correlationId: req.correlationId,
        duplicate: outcome.result.duplicate,
      });
    },
  );

  r.get(
    '/api/aggregates/:aggregateId/state',
    { schema: { tags: ['seed'], params: AggregateParams, response: { 200: AggregateStateResponse, 404: NotFound } } },
    async (req, reply) => {
      const who = caller(req);
      const events = await repo.readStream(who.tenant, req.params.aggregateId);
      if (events.length === 0) return reply.code(404).send({ error: 'Aggregate not found' });
      const last = events[events.length - 1]!;
      return {
        aggregateId: req.params.aggregateId,
        aggregateType: last.streamType,
        currentState: replayState(events),
        version: last.streamVersion,
        eventCount: events.length,
        lastModified: last.recordedAt,
      };
    },
  );

  r.post(
    '/api/commands/orders',
    { schema: { tags: ['commands'], body: CreateOrderBody, response: { 201: CommandResult, 400: ErrorResponse, 409: ConcurrentModification, 422: Rejected } } },
    async (req, reply) => {
      const b = req.body;
      const orderId = b.orderId ?? `ord-${uuidv7()}`;
      const done = await runCommand(req, { type: 'CreateOrder', orderId, customerId: b.customerId, items: b.items, currency: b.currency }, undefined);
      return reply.code(201).send({
        orderId,
        status: done.after.status,
        previousStatus: null,
        version: done.version,
        globalPosition: done.globalPosition,
        eventIds: done.eventIds,
        message: 'Order accepted for processing',
      });
    },
  );

  r.put(
    '/api/commands/orders/:orderId/status',
    {
      schema: {
        tags: ['commands'],
        params: OrderParams,
        body: UpdateStatusBody,
        response: { 200: CommandResult, 400: ErrorResponse, 409: ConcurrentModification, 422: Rejected },
      },
    },
    async (req) => {
      const who = caller(req);
      const { orderId } = req.params;
      const view = await repo.getOrder(who.tenant, orderId);
      const command = statusCommand(orderId, view?.state ?? initialOrderState, req.body);
      const done = await runCommand(req, command, req.body.expectedVersion);
      return {
        orderId,
        status: done.after.status,
        previousStatus: done.previous.status,
        version: done.version,
        globalPosition: done.globalPosition,
        eventIds: done.eventIds,
        message: `Order ${orderId} is now ${done.after.status ?? 'unknown'}`,
      };
    },
  );

  r.get(
    '/api/queries/orders/dashboard',
    { schema: { tags: ['queries'], querystring: DashboardQuerySchema, response: { 200: DashboardResponse, 400: ErrorResponse } } },
    async (req, reply) => {
      const who = caller(req);
      const { status, limit, offset } = req.query;
      const page = await repo.listOrders(who.tenant, { status: status === 'ALL' ? undefined : status, limit, offset });
      if (notModified(req, reply, `"p${page.position}"`)) return reply;
      return { orders: page.orders.map(summary), total: page.total, limit, offset, position: page.position };
    },
  );

  r.get(
    '/api/queries/orders/:orderId',
    { schema: { tags: ['queries'], params: OrderParams, response: { 200: OrderDetail, 404: ErrorResponse } } },
    async (req, reply) => {
      const who = caller(req);
      const v = await repo.getOrder(who.tenant, req.params.orderId);
      if (!v) return reply.code(404).send({ error: 'NOT_FOUND', message: `order ${req.params.orderId} not found` });
      if (notModified(req, reply, `"p${v.lastPosition}"`)) return reply;
      const s = v.state;
      return {
        ...summary(v),
        items: s.items,
        paidAmount: s.paidAmount,
        refundedAmount: s.refundedAmount,
        reservationId: s.reservationId,
        shipmentId: s.shipmentId,
        shippedAt: s.shippedAt,
        cancelledAt: s.cancelledAt,
        cancelReason: s.cancelReason,
        lastEventId: v.lastEventId,
        position: v.lastPosition,
      };
    },
  );

  r.post(
    '/api/admin/projections/rebuild',
    { config: { role: 'admin' }, schema: { tags: ['admin'], response: { 200: RebuildResponse } } },
    async (req) => {
      const who = caller(req);
      const started = Date.now();
      // An admin token rebuilds its own tenant; the CLI (rebuild-projections) may rebuild all.
      const { eventsReplayed } = await repo.rebuildProjections(who.tenant);
      req.log.info({ tenant: who.tenant, eventsReplayed, ms: Date.now() - started }, 'projections rebuilt');
      return { status: 'REBUILD_COMPLETE' as const, eventsReplayed, completedAt: new Date().toISOString() };
    },
  );

  r.get(
    '/api/admin/audit/verify',
    { config: { role: 'admin' }, schema: { tags: ['admin'], querystring: VerifyQuery, response: { 200: VerifyResponse } } },
    async (req) => {
      const who = caller(req);
      // An admin token audits its own tenant; the CLI audits the whole database.
      return repo.verifyChain({ tenantId: who.tenant, streamId: req.query.streamId });
    },
  );
}
