import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSchemas } from '../../src/domain/events.js';
import { StreamEventsResponse } from '../../src/protocol/sync-api.js';
import { startServer, type StartedServer } from '../../src/server/index.js';
import { ADMIN_A, BACKENDS, DEVICE_A, TOKENS, client, newEvent, orderCreated, type TestBackend } from './helpers.js';

/**
 * The two design documents' own examples, sent verbatim over HTTP as an integration written
 * against them would: seed 000's MUnit fixture and order lifecycle, seed 004's CQRS command and
 * query flows and its events. Each backend starts empty, so the seeds' ids (O-1) are used as is.
 */
describe.each(BACKENDS)('the seeds’ examples on $name', (factory) => {
  let backend: TestBackend;
  let server: StartedServer;
  let a: ReturnType<typeof client>;
  let admin: ReturnType<typeof client>;

  beforeAll(async () => {
    backend = await factory.make();
    server = await startServer({ ...backend.opts, tokens: TOKENS, port: 0 });
    a = client(server.url, DEVICE_A);
    admin = client(server.url, ADMIN_A);
  });
  afterAll(async () => {
    await server?.close();
    await backend?.cleanup();
  });

  /** What the server stored for a stream, in the domain's form (as devices read it). */
  async function stored(streamId: string) {
    const r = await a.get(`/sync/streams/${streamId}/events`);
    return r.status === 404 ? [] : StreamEventsResponse.parse(r.body).events;
  }

  it('seed 000 MUnit fixture: three events replay to SHIPPED at version 3', async () => {
    const fixture = [
      { event_type: 'OrderCreated', event_data: '{"orderId":"O-1","customerId":"C-1","totalAmount":100}' },
      { event_type: 'PaymentReceived', event_data: '{"paymentId":"P-1","amount":100}' },
      { event_type: 'OrderShipped', event_data: '{"shipmentId":"S-1","shippedAt":"2026-01-02"}' },
    ];
    for (const e of fixture) {
      const r = await a.post('/api/events', { aggregateId: 'O-1', aggregateType: 'Order', eventType: e.event_type, eventData: JSON.parse(e.event_data) });
      expect(r.status).toBe(201);
    }
    const state = await a.get('/api/aggregates/O-1/state');
    expect(state.status).toBe(200);
    expect(state.body.currentState.status).toBe('SHIPPED');
    expect(state.body.version).toBe(3);
    expect(state.body).toMatchObject({ aggregateId: 'O-1', eventCount: 3 });
    // The seed's fields, in the seed's units: paid in full.
    expect(state.body.currentState).toMatchObject({
      orderId: 'O-1',
      customerId: 'C-1',
      totalAmount: 100,
      paymentId: 'P-1',
      paidAmount: 100,
      shipmentId: 'S-1',
      shippedAt: '2026-01-02T00:00:00.000Z',
      outstandingAmount: 0,
      currency: 'USD',
    });
    // Stored in the domain's units and normalised, as devices will fold it.
    const events = await stored('O-1');
    expect(events.map((e) => [e.eventType, e.schemaVersion])).toEqual([
      ['OrderCreated', EventSchemas.OrderCreated.version],
      ['PaymentReceived', 1],
      ['OrderShipped', 1],
    ]);
    expect(events[0]!.data).toMatchObject({ total: 10000, currency: 'USD', items: [] });
    expect(events[1]!.data).toEqual({ paymentId: 'P-1', amount: 10000 });
    expect(events[2]!.data).toEqual({ shipmentId: 'S-1', shippedAt: '2026-01-02T00:00:00.000Z' });
  });

  it('seed 000 lifecycle: created, paid, reserved, shipped; decimals exact; rebuild with an empty JSON body', async () => {
    const id = 'O-LIFE-1';
    const send = (eventType: string, eventData: Record<string, unknown>) => a.post('/api/events', { aggregateId: id, aggregateType: 'Order', eventType, eventData });
    expect(
      (await send('OrderCreated', { orderId: id, customerId: 'C-7', items: [{ sku: 'SKU-1', quantity: 3, unitPrice: '6.33' }, { sku: 'SKU-2', quantity: 1, unitPrice: 1 }], totalAmount: '19.99' })).status,
    ).toBe(201);
    expect((await send('PaymentReceived', { paymentId: 'P-1', amount: 9.99 })).status).toBe(201);
    expect((await send('PaymentReceived', { paymentId: 'P-2', amount: '10.00' })).status).toBe(201);
    expect((await send('InventoryReserved', { reservationId: 'R-1' })).status).toBe(201);
    expect((await send('OrderShipped', { shipmentId: 'S-1', shippedAt: '2026-01-02T10:30:00+02:00' })).status).toBe(201);
    const state = (await a.get(`/api/aggregates/${id}/state`)).body;
    expect(state.version).toBe(5);
    expect(state.currentState).toMatchObject({
      status: 'SHIPPED',
      totalAmount: 19.99,
      paidAmount: 19.99,
      items: [
        { sku: 'SKU-1', quantity: 3, unitPrice: 6.33 },
        { sku: 'SKU-2', quantity: 1, unitPrice: 1 },
      ],
      reservationId: 'R-1',
      shippedAt: '2026-01-02T08:30:00.000Z',
    });
    const events = await stored(id);
    expect(events[0]!.data).toMatchObject({ total: 1999, items: [{ unitPrice: 633 }, { unitPrice: 100 }] });
    expect(events.slice(1, 3).map((e) => e.data.amount)).toEqual([999, 1000]);

    // More decimals than the currency has is a 400 naming the field, and stores nothing.
    const tooFine = await send('PaymentReceived', { paymentId: 'P-3', amount: 0.001 });
    expect(tooFine.status).toBe(400);
    expect(tooFine.body.issues).toEqual([expect.objectContaining({ path: 'body.eventData.amount', message: expect.stringMatching(/more than 2 decimal places.*USD/) })]);
    expect((await send('OrderCreated', { orderId: 'O-X', customerId: 'C', totalAmount: 1 })).body.issues[0].path).toBe('body.eventData.orderId');
    expect((await send('OrderShipped', { shipmentId: 'S-2', shippedAt: '2026-02-30' })).body.issues[0].path).toBe('body.eventData.shippedAt');
    expect(await stored(id)).toHaveLength(5);

    // Seed 000's rebuild, as HTTP clients send it: a JSON content type and no body.
    const rebuilt = await admin.call('POST', '/api/admin/projections/rebuild', undefined, { 'content-type': 'application/json' });
    expect(rebuilt.status).toBe(200);
    expect(rebuilt.body).toMatchObject({ status: 'REBUILD_COMPLETE' });
    expect(rebuilt.body.eventsReplayed).toBeGreaterThanOrEqual(8);
    // A route that needs a body still names it when the body is empty.
    const empty = await a.call('POST', '/api/events', undefined, { 'content-type': 'application/json' });
    expect(empty.status).toBe(400);
    expect(empty.body.issues[0].path).toBe('body');
  });

  it('currencies keep their own minor units: JPY has none, KWD three', async () => {
    const yen = await a.post('/api/events', { aggregateId: 'O-JPY', aggregateType: 'Order', eventType: 'OrderCreated', eventData: { orderId: 'O-JPY', customerId: 'C', totalAmount: 1500, currency: 'JPY' } });
    expect(yen.status).toBe(201);
    expect((await a.post('/api/events', { aggregateId: 'O-JPY', aggregateType: 'Order', eventType: 'PaymentReceived', eventData: { paymentId: 'P', amount: '1500.5' } })).status).toBe(400);
    expect((await a.post('/api/events', { aggregateId: 'O-JPY', aggregateType: 'Order', eventType: 'PaymentReceived', eventData: { paymentId: 'P', amount: 1500 } })).status).toBe(201);
    const dinar = await a.post('/api/commands/orders', { orderId: 'O-KWD', customerId: 'C', currency: 'KWD', items: [{ sku: 'A', quantity: 2, unitPrice: '1.125' }] });
    expect(dinar.status).toBe(201);
    const events = [...(await stored('O-JPY')), ...(await stored('O-KWD'))];
    expect(events.map((e) => e.data.total ?? e.data.amount)).toEqual([1500, 1500, 2250]);
    expect((await a.get('/api/aggregates/O-JPY/state')).body.currentState).toMatchObject({ status: 'PAID', totalAmount: 1500, paidAmount: 1500 });
    expect((await a.get('/api/queries/orders/O-KWD')).body).toMatchObject({ total: 2.25, currency: 'KWD', items: [{ unit_price: 1.125 }] });
    const unknown = await a.post('/api/commands/orders', { customerId: 'C', currency: 'ABC', items: [{ sku: 'A', quantity: 1, unitPrice: 1 }] });
    expect(unknown.status).toBe(400);
    expect(unknown.body.issues[0].path).toBe('body.currency');
  });

  it('seed 004 CQRS: the create and status commands, the dashboard and the order detail', async () => {
    // command-create-order: POST /api/commands/orders {customerId, items}
    const created = await a.post('/api/commands/orders', { customerId: 'CUST-1', items: [{ sku: 'WIDGET', quantity: 2, unitPrice: 19.99 }] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ status: 'CREATED', message: 'Order accepted for processing' });
    const orderId = created.body.orderId as string;
    // command-update-order-status: PUT /api/commands/orders/{orderId}/status {status, expectedVersion}
    const paid = await a.put(`/api/commands/orders/${orderId}/status`, { status: 'PAID', expectedVersion: 1 });
    expect(paid.status).toBe(200);
    expect(paid.body).toMatchObject({ orderId, status: 'PAID', previousStatus: 'CREATED', version: 2 });
    const stale = await a.put(`/api/commands/orders/${orderId}/status`, { status: 'RESERVED', expectedVersion: 1 });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ error: 'CONCURRENT_MODIFICATION' });
    // query-orders-dashboard: GET /api/queries/orders/dashboard?status=&limit=&offset=
    const dash = await a.get('/api/queries/orders/dashboard?status=PAID&limit=20&offset=0');
    expect(dash.status).toBe(200);
    const row = (dash.body as Record<string, unknown>[]).find((r) => r.order_id === orderId);
    expect(row).toEqual(
      expect.objectContaining({
        order_id: orderId,
        customer_name: 'CUST-1',
        item_count: 1,
        total: 39.98,
        status: 'PAID',
        payment_status: 'PAID',
        fulfilment_status: 'OPEN',
        created_at: expect.any(String),
      }),
    );
    expect(Object.keys(row!)).toEqual(expect.arrayContaining(['order_id', 'customer_name', 'item_count', 'total', 'status', 'created_at', 'customer_email']));
    expect(Number(dash.headers.get('x-total-count'))).toBe((dash.body as unknown[]).length);
    // query-order-detail: GET /api/queries/orders/{orderId}
    const detail = await a.get(`/api/queries/orders/${orderId}`);
    expect(detail.body).toMatchObject({
      order_id: orderId,
      customer_id: 'CUST-1',
      customer_name: 'CUST-1',
      customer_email: null,
      item_count: 1,
      total: 39.98,
      status: 'PAID',
      paid_amount: 39.98,
      items: [{ sku: 'WIDGET', quantity: 2, unit_price: 19.99 }],
    });
  });

  it('issue 14 order model: names in any script, a contact, descriptions, two facets filtered and counted, the seeds\' word beside them', async () => {
    const before = (await a.get('/api/queries/orders/dashboard/counts')).body;
    const created = await a.post('/api/commands/orders', {
      orderId: 'O-FACETS',
      customerId: 'CUST-CM',
      customerName: 'Café-Müller 客户一',
      customerContact: 'einkauf@cafe-mueller.de',
      currency: 'EUR',
      items: [{ sku: 'BEANS-1', description: 'Kaffeebohnen, 1 kg', quantity: 2, unitPrice: '1000.00' }],
    });
    expect(created.status).toBe(201);
    expect((await a.put('/api/commands/orders/O-FACETS/status', { status: 'RESERVED', expectedVersion: 1 })).body).toMatchObject({ status: 'RESERVED' });
    // Paid in full after the reservation: the seeds' word is PAID (the last lifecycle event wins),
    // and the facets keep both facts: paid, and stock reserved.
    expect((await a.put('/api/commands/orders/O-FACETS/status', { status: 'PAID', expectedVersion: 2 })).body).toMatchObject({ status: 'PAID', previousStatus: 'RESERVED' });
    const detail = (await a.get('/api/queries/orders/O-FACETS')).body;
    expect(detail).toMatchObject({
      customer_name: 'Café-Müller 客户一',
      customer_email: 'einkauf@cafe-mueller.de',
      customer_contact: 'einkauf@cafe-mueller.de',
      status: 'PAID',
      payment_status: 'PAID',
      fulfilment_status: 'RESERVED',
      total: 2000,
      items: [{ sku: 'BEANS-1', description: 'Kaffeebohnen, 1 kg', quantity: 2, unit_price: 1000 }],
      inventory_released_at: null,
    });
    const paidReserved = (await a.get('/api/queries/orders/dashboard?payment_status=PAID&fulfilment_status=RESERVED')).body as { order_id: string }[];
    expect(paidReserved.map((r) => r.order_id)).toContain('O-FACETS');
    expect(((await a.get('/api/queries/orders/dashboard?payment_status=UNPAID')).body as { order_id: string }[]).map((r) => r.order_id)).not.toContain('O-FACETS');
    const after = (await a.get('/api/queries/orders/dashboard/counts')).body;
    expect(after.total - before.total).toBe(1);
    expect(after.status.PAID - before.status.PAID).toBe(1);
    expect(after.payment_status.PAID - before.payment_status.PAID).toBe(1);
    expect(after.fulfilment_status.RESERVED - before.fulfilment_status.RESERVED).toBe(1);

    // Cancelling releases the reserved stock as an event of its own.
    expect((await a.put('/api/commands/orders/O-FACETS/status', { status: 'CANCELLED', expectedVersion: 3, reason: 'closed for winter' })).status).toBe(200);
    expect((await stored('O-FACETS')).map((e) => e.eventType)).toEqual(['OrderCreated', 'InventoryReserved', 'PaymentReceived', 'OrderCancelled', 'InventoryReleased']);
    expect((await a.get('/api/queries/orders/O-FACETS')).body).toMatchObject({ status: 'CANCELLED', fulfilment_status: 'CANCELLED', inventory_released_at: expect.any(String) });

    // A currency outside ISO 4217 and a contact that is neither e-mail nor phone: plain words, nothing stored.
    const xyz = await a.post('/api/commands/orders', { orderId: 'O-XYZ', customerId: 'C', currency: 'XYZ', items: [{ sku: 'A', quantity: 1, unitPrice: 1 }] });
    expect(xyz.status).toBe(400);
    expect(xyz.body.issues).toEqual([{ path: 'body.currency', message: 'XYZ is not a currency in the ISO 4217 list; use a code such as USD, EUR, GBP or JPY' }]);
    const contact = await a.post('/api/commands/orders', { orderId: 'O-XYZ', customerId: 'C', customerContact: 'call me', items: [{ sku: 'A', quantity: 1, unitPrice: 1 }] });
    expect(contact.status).toBe(400);
    expect(contact.body.issues[0]).toMatchObject({ path: 'body.customerContact', message: expect.stringMatching(/e-mail address .* or a phone number/) });
    expect(await stored('O-XYZ')).toHaveLength(0);
  });

  it('seed 004 events: OrderCreated with total and status, then OrderStatusChanged, folded everywhere', async () => {
    const id = 'ORD-004';
    const orderCreatedEvent = {
      eventType: 'OrderCreated',
      aggregateId: id,
      aggregateType: 'Order',
      version: 1,
      timestamp: '2026-01-01T00:00:00Z',
      data: { orderId: id, customerId: 'CUST-4', items: [{ sku: 'A', quantity: 1, unitPrice: 25.5 }], total: 25.5, status: 'CREATED' },
    };
    const created = await a.post('/api/events', {
      aggregateId: orderCreatedEvent.aggregateId,
      aggregateType: orderCreatedEvent.aggregateType,
      eventType: orderCreatedEvent.eventType,
      eventData: orderCreatedEvent.data,
    });
    expect(created.status).toBe(201);
    const changed = await a.post('/api/events', {
      aggregateId: id,
      aggregateType: 'Order',
      eventType: 'OrderStatusChanged',
      eventData: { orderId: id, previousStatus: 'CREATED', newStatus: 'SHIPPED' },
      expectedVersion: 1,
    });
    expect(changed.status).toBe(201);
    const state = (await a.get(`/api/aggregates/${id}/state`)).body;
    expect(state).toMatchObject({ version: 2, currentState: { status: 'SHIPPED', totalAmount: 25.5 } });
    expect((await a.get(`/api/queries/orders/${id}`)).body).toMatchObject({ status: 'SHIPPED', total: 25.5, version: 2 });
    const rows = (await a.get('/api/queries/orders/dashboard?status=SHIPPED')).body as { order_id: string }[];
    expect(rows.map((r) => r.order_id)).toContain(id);

    // A status change cannot create an order, nor set a status outside the seed's transitions.
    const first = await a.post('/api/events', { aggregateId: 'ORD-NONE', aggregateType: 'Order', eventType: 'OrderStatusChanged', eventData: { orderId: 'ORD-NONE', newStatus: 'SHIPPED' } });
    expect(first.status).toBe(400);
    expect(first.body.message).toMatch(/must be OrderCreated/);
    const bogus = await a.post('/api/events', { aggregateId: id, aggregateType: 'Order', eventType: 'OrderStatusChanged', eventData: { orderId: id, newStatus: 'LOST' } });
    expect(bogus.status).toBe(400);
    expect(bogus.body.issues[0].path).toBe('body.eventData.newStatus');
    const badStart = await a.post('/api/events', { aggregateId: 'ORD-ODD', aggregateType: 'Order', eventType: 'OrderCreated', eventData: { orderId: 'ORD-ODD', customerId: 'C', total: 1, status: 'SHIPPED' } });
    expect(badStart.status).toBe(400);
    expect(badStart.body.issues[0].path).toBe('body.eventData.status');
    // The sync path refuses the same stream start.
    const viaSync = await a.post('/sync/streams/ORD-NONE-2/append', { streamType: 'Order', expectedVersion: 0, events: [newEvent('OrderStatusChanged', { orderId: 'ORD-NONE-2', newStatus: 'PAID' })] });
    expect(viaSync.status).toBe(400);
    expect(viaSync.body.issues[0].path).toBe('body.events.0.eventType');
    expect(await stored('ORD-NONE')).toHaveLength(0);
    // Devices write the domain form through sync; the seed API shows it in major units.
    expect((await a.post('/sync/streams/ORD-DEV/append', { streamType: 'Order', expectedVersion: 0, events: [orderCreated('ORD-DEV', 1234)] })).status).toBe(201);
    expect((await a.get('/api/aggregates/ORD-DEV/state')).body.currentState).toMatchObject({ totalAmount: 12.34, status: 'CREATED' });
  });
});
