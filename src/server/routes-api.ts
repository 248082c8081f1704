import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { v7 as uuidv7 } from 'uuid';
import { CommandRejectedError, type OrderCommand } from '../domain/commands.js';
import { EventSchemas, ORDER_STREAM_TYPE, isOrderEventType } from '../domain/events.js';
import { majorToMinor } from '../domain/money.js';
import { describeIssues, type Issue } from '../domain/issues.js';
import { SEED_MONEY_EVENTS, fromSeedEvent } from '../domain/seed-dialect.js';
import { upcast } from '../domain/upcasters.js';
import { applyOrderEvent, foldOrder, initialOrderState, outstandingAmount, type OrderState } from '../domain/state.js';
import { decideCommand } from '../protocol/command-events.js';
import type { ServerEvent } from '../protocol/envelope.js';
import { ArchivedEventsError, InvalidEventError, type VersionConflict } from '../protocol/errors.js';
import { ErrorResponse } from '../protocol/sync-api.js';
import {
  AggregateParams,
  AggregateStateResponse,
  CommandResult,
  ConcurrentModification,
  CreateOrderBody,
  DashboardCounts,
  DashboardQuerySchema,
  DashboardResponse,
  NotFound,
  NotModified,
  OrderDetail,
  OrderParams,
  RebuildResponse,
  Rejected,
  SeedAppendEvent,
  SeedAppendResult,
  UpdateStatusBody,
  VerifyQuery,
  VerifyResponse,
  commonErrors,
} from './http-schemas.js';
import { seedOrderCounts, seedOrderDetail, seedOrderRow, seedOrderState } from './seed-views.js';
import { HttpError, caller, enrich, notModified } from './http-context.js';
import type { AppendNotifier } from './notifier.js';
import type { EventRepository } from './repository.js';

/** A version conflict in the seed API's words (it only knows numeric expectations, or none). */
function concurrentModification(c: VersionConflict): HttpError {
  const expected = typeof c.expectedVersion === 'number' ? c.expectedVersion : null;
  return new HttpError(409, {
    error: 'CONCURRENT_MODIFICATION',
    message: `Aggregate version conflict: ${c.streamId} is at version ${c.currentVersion}${expected === null ? '' : `, not ${expected}`}. Retry with latest version.`,
    aggregateId: c.streamId,
    expectedVersion: expected,
    currentVersion: c.currentVersion,
  });
}

/** Seed-style replay: Order streams fold through the domain reducers (shown in seed units), others merge payloads. */
function replayState(events: ServerEvent[]): Record<string, unknown> {
  const type = events[0]?.streamType;
  if (type === ORDER_STREAM_TYPE) {
    const state = foldOrder(
      events.map((e) => ({ type: e.eventType, data: upcast(e.eventType, e.schemaVersion, e.data).data, version: e.streamVersion, recordedAt: e.recordedAt })),
      initialOrderState,
      () => undefined,
    );
    return seedOrderState(state);
  }
  return events.reduce<Record<string, unknown>>((s, e) => ({ ...s, ...e.data }), {});
}

/** The contract names paths of the sync envelope; the seed body calls them eventData, aggregateType… */
function inSeedTerms(err: InvalidEventError): InvalidEventError {
  const rename = (path: string) =>
    path
      .replace(/^events\.0\.data/, 'eventData')
      .replace(/^events\.0\./, '')
      .replace(/^streamType/, 'aggregateType');
  const issues = err.issues.map((i) => ({ path: rename(i.path), message: i.message }));
  const message = err.message.replace(/\bevents\.0\.data\b/g, 'eventData').replace(/\bevents\.0\./g, '').replace(/\bstreamType\b/g, 'aggregateType');
  return new InvalidEventError(message, issues);
}

function badRequest(message: string, issues: Issue[]): HttpError {
  return new HttpError(400, { error: 'BAD_REQUEST', message: `${message}: ${describeIssues(issues)}`, issues });
}

const seedIssuePath = (i: Issue) => ({ path: i.path === '' ? 'body.aggregateId' : `body.eventData.${i.path}`, message: i.message });

/** Seed 004's create command prices items in major units of the order's currency. */
function itemsInMinorUnits(items: { sku: string; description?: string | undefined; quantity: number; unitPrice: string | number }[], currency: string) {
  const issues: Issue[] = [];
  const converted = items.map((i, n) => {
    const description = i.description ?? '';
    try {
      return { sku: i.sku, description, quantity: i.quantity, unitPrice: majorToMinor(i.unitPrice, currency) };
    } catch (err) {
      issues.push({ path: `body.items.${n}.unitPrice`, message: `${(err as Error).message} in ${currency}` });
      return { sku: i.sku, description, quantity: i.quantity, unitPrice: 0 };
    }
  });
  if (issues.length > 0) throw badRequest('invalid item price', issues);
  return converted;
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

/** Where the seed's query endpoints read orders: the server's own read model, or a worker-built one. */
export type OrderQueries = Pick<EventRepository, 'getOrder' | 'listOrders' | 'countOrders'>;

export function registerApiRoutes(app: FastifyInstance, repo: EventRepository, notifier: AppendNotifier, queries: OrderQueries = repo): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  /** decide() on the read model's state, then append with that state's version as the expectation. */
  async function runCommand(req: FastifyRequest, command: OrderCommand, expectedVersion: number | undefined) {
    const who = caller(req);
    const view = await repo.getOrder(who.tenant, command.orderId);
    const state = view?.state ?? initialOrderState;
    if (expectedVersion !== undefined && expectedVersion !== state.version) throw concurrentModification({ streamId: command.orderId, expectedVersion, currentVersion: state.version });
    // The request is the command: its correlation id names both (user, tenant and source come from enrich).
    const decision = decideCommand(state, command, { commandId: req.correlationId });
    if (!decision.ok) throw new CommandRejectedError(decision.rejection, command);
    const events = decision.events;
    const outcome = await repo.append({
      tenantId: who.tenant,
      streamId: command.orderId,
      streamType: ORDER_STREAM_TYPE,
      expectedVersion: state.version,
      events: enrich(events, req),
    });
    if (outcome.status === 'conflict') throw concurrentModification({ ...outcome.conflict, expectedVersion: expectedVersion ?? state.version });
    notifier.notify();
    const after = events.reduce((s, e, i) => applyOrderEvent(s, { type: e.eventType, data: e.data, version: state.version + i + 1 }), state);
    const last = outcome.result.events[outcome.result.events.length - 1]!;
    return { previous: state, after, version: outcome.result.toVersion, globalPosition: last.globalPosition, eventIds: outcome.result.events.map((e) => e.eventId) };
  }

  r.post(
    '/api/events',
    {
      schema: {
        tags: ['seed'],
        body: SeedAppendEvent,
        response: { 201: SeedAppendResult, ...commonErrors({ body: true }), 409: ConcurrentModification, 422: ErrorResponse },
      },
    },
    async (req, reply) => {
      const who = caller(req);
      const b = req.body;
      const eventId = b.eventId ?? uuidv7();
      let stored = { eventType: b.eventType, schemaVersion: b.schemaVersion ?? 1, data: b.eventData };
      if (b.aggregateType === ORDER_STREAM_TYPE && isOrderEventType(b.eventType)) {
        // Order events arrive in the seed dialect and are stored as the domain's current version.
        if (b.schemaVersion !== undefined && b.schemaVersion !== 1) {
          throw badRequest('invalid seed event', [
            { path: 'body.schemaVersion', message: 'Order events on the seed API are in the seed dialect (version 1, major units); the sync API takes other versions' },
          ]);
        }
        const orderCurrency = SEED_MONEY_EVENTS.has(b.eventType) ? ((await repo.getOrder(who.tenant, b.aggregateId))?.currency ?? null) : null;
        const translated = fromSeedEvent(b.eventType, b.eventData, { aggregateId: b.aggregateId, orderCurrency });
        if (!translated.ok) throw badRequest(`invalid ${b.eventType} event`, translated.issues.map(seedIssuePath));
        const e = translated.event;
        stored = { eventType: e.type, schemaVersion: EventSchemas[e.type].version, data: e.data as Record<string, unknown> };
      }
      const outcome = await repo
        .append({
          tenantId: who.tenant,
          streamId: b.aggregateId,
          streamType: b.aggregateType,
          expectedVersion: b.expectedVersion ?? 'any',
          events: enrich([{ eventId, ...stored, metadata: b.metadata ?? {} }], req),
        })
        .catch((err: unknown) => {
          throw err instanceof InvalidEventError ? inSeedTerms(err) : err;
        });
      if (outcome.status === 'conflict') throw concurrentModification(outcome.conflict);
      if (!outcome.result.duplicate) notifier.notify();
      const written = outcome.result.events[0]!;
      return reply.code(201).send({
        eventId: written.eventId,
        aggregateId: b.aggregateId,
        aggregateType: b.aggregateType,
        eventType: b.eventType,
        version: written.streamVersion,
        globalPosition: written.globalPosition,
        correlationId: req.correlationId,
        duplicate: outcome.result.duplicate,
      });
    },
  );

  r.get(
    '/api/aggregates/:aggregateId/state',
    { schema: { tags: ['seed'], params: AggregateParams, response: { 200: AggregateStateResponse, ...commonErrors(), 404: NotFound, 410: ErrorResponse } } },
    async (req, reply) => {
      const who = caller(req);
      const events = await repo.readStream(who.tenant, req.params.aggregateId).catch(async (err: unknown) => {
        // An order whose first events were archived: its read-model row holds the same fold, so no archived event is needed.
        const view = err instanceof ArchivedEventsError ? await repo.getOrder(who.tenant, req.params.aggregateId) : null;
        if (!view) throw err;
        return view;
      });
      if (!Array.isArray(events)) {
        return {
          aggregateId: req.params.aggregateId,
          aggregateType: ORDER_STREAM_TYPE,
          currentState: seedOrderState(events.state),
          version: events.version,
          eventCount: events.version,
          lastModified: events.updatedAt ?? events.createdAt ?? '',
        };
      }
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
    {
      schema: {
        tags: ['commands'],
        body: CreateOrderBody,
        response: { 201: CommandResult, ...commonErrors({ body: true }), 409: ConcurrentModification, 422: Rejected },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const orderId = b.orderId ?? `ord-${uuidv7()}`;
      const items = itemsInMinorUnits(b.items, b.currency);
      const command: OrderCommand = {
        type: 'CreateOrder',
        orderId,
        customerId: b.customerId,
        customerName: b.customerName,
        customerContact: b.customerContact,
        items,
        currency: b.currency,
      };
      const done = await runCommand(req, command, undefined);
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
        response: { 200: CommandResult, ...commonErrors({ body: true }), 409: ConcurrentModification, 422: Rejected },
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
    {
      schema: {
        tags: ['queries'],
        querystring: DashboardQuerySchema,
        response: { 200: DashboardResponse, 304: NotModified, ...commonErrors() },
      },
    },
    async (req, reply) => {
      const who = caller(req);
      const { status, payment_status, fulfilment_status, limit, offset } = req.query;
      const page = await queries.listOrders(who.tenant, {
        status: status === 'ALL' ? undefined : status,
        paymentStatus: payment_status === 'ALL' ? undefined : payment_status,
        fulfilmentStatus: fulfilment_status === 'ALL' ? undefined : fulfilment_status,
        limit,
        offset,
      });
      reply.header('x-total-count', String(page.total));
      if (notModified(req, reply, `"p${page.position}"`)) return reply;
      // Seed 004 answers with the rows themselves; the count travels in X-Total-Count.
      return page.orders.map(seedOrderRow);
    },
  );

  r.get(
    '/api/queries/orders/dashboard/counts',
    { schema: { tags: ['queries'], response: { 200: DashboardCounts, ...commonErrors() } } },
    async (req) => seedOrderCounts(await queries.countOrders(caller(req).tenant)),
  );

  r.get(
    '/api/queries/orders/:orderId',
    { schema: { tags: ['queries'], params: OrderParams, response: { 200: OrderDetail, 304: NotModified, ...commonErrors(), 404: ErrorResponse } } },
    async (req, reply) => {
      const who = caller(req);
      const v = await queries.getOrder(who.tenant, req.params.orderId);
      if (!v) return reply.code(404).send({ error: 'NOT_FOUND', message: `order ${req.params.orderId} not found` });
      if (notModified(req, reply, `"p${v.lastPosition}"`)) return reply;
      return seedOrderDetail(v);
    },
  );

  r.post(
    '/api/admin/projections/rebuild',
    { config: { role: 'admin' }, schema: { tags: ['admin'], response: { 200: RebuildResponse, ...commonErrors({ body: true }) } } },
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
    { config: { role: 'admin' }, schema: { tags: ['admin'], querystring: VerifyQuery, response: { 200: VerifyResponse, ...commonErrors() } } },
    async (req) => {
      const who = caller(req);
      // An admin token audits its own tenant; the CLI audits the whole database.
      return repo.verifyChain({ tenantId: who.tenant, streamId: req.query.streamId });
    },
  );
}
