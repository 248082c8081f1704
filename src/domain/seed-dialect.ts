import { z } from 'zod';
import { CustomerContact, CustomerName, EventSchemas, Identifier, ItemDescription, STATUS_CHANGE_TARGETS, type OrderEvent, type OrderEventType } from './events.js';
import { zodIssues, type Issue } from './issues.js';
import { Currency, DEFAULT_SEED_CURRENCY, MajorAmount, majorToMinor } from './money.js';

/**
 * The seed systems' dialect of order events (the two design documents): money in decimal major
 * units, dates as the seed writes them. The seed API translates it into domain events at their
 * current version (integer minor units in the order's currency, UTC timestamps), so every stored
 * event means one thing whichever API wrote it, and devices fold it like any other.
 */

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;

/**
 * A date (`2026-01-02`, the seed's shippedAt) or an ISO-8601 timestamp with a zone; stored as
 * a UTC timestamp (a date is its midnight UTC), e.g. `2026-01-02T00:00:00.000Z`.
 */
export const SeedTimestamp = z
  .string()
  .refine((s) => normalizeSeedTimestamp(s) !== null, 'must be a date (2026-01-02) or an ISO-8601 timestamp with a zone (2026-01-02T10:00:00Z)')
  .transform((s) => normalizeSeedTimestamp(s)!);

export function normalizeSeedTimestamp(text: string): string | null {
  const date = DATE_ONLY.exec(text);
  if (date) {
    const [, y, m, d] = date;
    const t = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
    // Date.UTC rolls 2026-02-30 over to March: a real calendar date reads back the same.
    if (t.getUTCFullYear() !== Number(y) || t.getUTCMonth() !== Number(m) - 1 || t.getUTCDate() !== Number(d)) return null;
    return t.toISOString();
  }
  if (!z.iso.datetime({ offset: true }).safeParse(text).success) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

const SeedItem = z.strictObject({ sku: Identifier, description: ItemDescription.optional(), quantity: z.number().int().positive().max(1_000_000), unitPrice: MajorAmount });

/**
 * Seed 000 (`totalAmount`) and seed 004 (`total`, `status`) both create orders; `currency`,
 * `customerName`, `customerContact` and item descriptions are ours (USD, the customer id, none).
 */
const SeedOrderCreated = z.strictObject({
  orderId: Identifier,
  customerId: Identifier,
  customerName: CustomerName.optional(),
  customerContact: CustomerContact.nullable().optional(),
  items: z.array(SeedItem).max(500).default([]),
  totalAmount: MajorAmount.optional(),
  total: MajorAmount.optional(),
  status: z.literal('CREATED', 'an order is created with status CREATED; later statuses come from later events').optional(),
  currency: Currency.optional(),
});

const Reason = z.string().trim().min(1, 'a reason is required').max(500);

const seedSchemas = {
  OrderCreated: SeedOrderCreated,
  PaymentReceived: z.strictObject({ paymentId: Identifier, amount: MajorAmount }),
  InventoryReserved: z.strictObject({ reservationId: Identifier }),
  InventoryReleased: z.strictObject({ reservationId: Identifier, releasedAt: SeedTimestamp }),
  OrderShipped: z.strictObject({ shipmentId: Identifier, shippedAt: SeedTimestamp }),
  OrderCancelled: z.strictObject({ reason: Reason, cancelledAt: SeedTimestamp }),
  PaymentRefunded: z.strictObject({ paymentId: Identifier, amount: MajorAmount, reason: Reason }),
  OrderStatusChanged: z.strictObject({
    orderId: Identifier,
    newStatus: z.enum(STATUS_CHANGE_TARGETS, { message: `newStatus must be one of ${STATUS_CHANGE_TARGETS.join(', ')}` }),
    previousStatus: z.string().max(50).nullable().optional(),
  }),
} satisfies Record<OrderEventType, z.ZodType>;

/** Event types whose seed form carries money in the order's currency (the order must exist). */
export const SEED_MONEY_EVENTS: ReadonlySet<OrderEventType> = new Set(['PaymentReceived', 'PaymentRefunded']);

/** Issue paths are inside the seed event's data ('' for the event as a whole). */
export type SeedTranslation = { ok: true; event: OrderEvent } | { ok: false; issues: Issue[] };

/**
 * Seed event data → the domain event at its current version. `orderCurrency` is the currency of
 * the order the event belongs to (null when it does not exist yet); `aggregateId` must be the
 * orderId an event names.
 */
export function fromSeedEvent(type: OrderEventType, data: unknown, ctx: { aggregateId: string; orderCurrency: string | null }): SeedTranslation {
  const parsed = seedSchemas[type].safeParse(data);
  if (!parsed.success) return { ok: false, issues: zodIssues(parsed.error) };
  const issues: Issue[] = [];
  const minor = (value: MajorAmount, currency: string, path: string, positive: boolean): number => {
    try {
      const n = majorToMinor(value, currency);
      if (positive && n === 0) issues.push({ path, message: 'amount must be greater than zero' });
      return n;
    } catch (err) {
      issues.push({ path, message: `${(err as Error).message} in ${currency}` });
      return 0;
    }
  };
  const v = parsed.data;
  if ('orderId' in v && v.orderId !== ctx.aggregateId) issues.push({ path: 'orderId', message: `must be the aggregateId ${ctx.aggregateId}` });
  let event: OrderEvent;
  switch (type) {
    case 'OrderCreated': {
      const c = v as z.infer<typeof SeedOrderCreated>;
      const currency = c.currency ?? DEFAULT_SEED_CURRENCY;
      const given = c.totalAmount ?? c.total;
      if (given === undefined) issues.push({ path: 'totalAmount', message: 'totalAmount (or total) is required' });
      if (c.totalAmount !== undefined && c.total !== undefined && String(c.totalAmount) !== String(c.total)) {
        issues.push({ path: 'total', message: 'totalAmount and total differ; give one of them' });
      }
      const items = c.items.map((i, n) => ({
        sku: i.sku,
        description: i.description ?? '',
        quantity: i.quantity,
        unitPrice: minor(i.unitPrice, currency, `items.${n}.unitPrice`, false),
      }));
      const total = given === undefined ? 0 : minor(given, currency, c.totalAmount !== undefined ? 'totalAmount' : 'total', false);
      const customer = { customerName: c.customerName ?? c.customerId, customerContact: c.customerContact ?? null };
      event = { type, data: { orderId: c.orderId, customerId: c.customerId, ...customer, items, total, currency } };
      break;
    }
    case 'PaymentReceived':
    case 'PaymentRefunded': {
      const p = v as { paymentId: string; amount: MajorAmount; reason?: string };
      if (ctx.orderCurrency === null) {
        return { ok: false, issues: [{ path: '', message: `order ${ctx.aggregateId} does not exist: create it (OrderCreated) before ${type}` }] };
      }
      const amount = minor(p.amount, ctx.orderCurrency, 'amount', true);
      event =
        type === 'PaymentReceived'
          ? { type, data: { paymentId: p.paymentId, amount } }
          : { type, data: { paymentId: p.paymentId, amount, reason: p.reason! } };
      break;
    }
    default:
      event = { type, data: v } as OrderEvent;
  }
  if (issues.length > 0) return { ok: false, issues };
  // The translation must give a valid current event (what every reader, devices included, checks).
  const current = EventSchemas[type].schema.safeParse(event.data);
  if (!current.success) return { ok: false, issues: zodIssues(current.error) };
  return { ok: true, event };
}
