import { z } from 'zod';
import { EventSchemas, OrderCreatedV1, OrderCreatedV3, OrderItem, isOrderEventType } from './events.js';
import { DEFAULT_SEED_CURRENCY, majorToMinor } from './money.js';

export class UpcastError extends Error {
  override name = 'UpcastError';
  constructor(
    readonly eventType: string,
    readonly fromVersion: number,
    message: string,
  ) {
    super(`cannot upcast ${eventType} v${fromVersion}: ${message}`);
  }
}

type Upcaster = (data: unknown) => unknown;

const ORDER_CREATED_KEYS = Object.keys(OrderCreatedV3.shape);
const ITEM_KEYS = Object.keys(OrderItem.shape);

/**
 * `{ ...o, ...added }` with the schema's keys first, in the schema's order, then any others: the
 * order zod writes its output in, so an upcast event reads like a current one. Keys are defined
 * as data, never through a setter (`__proto__` stays an own key for the schema to refuse). Plain
 * loops, no spread: this runs for every old event a device pulls or folds.
 */
function inSchemaOrder(o: Record<string, unknown>, keys: readonly string[], added: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    if (Object.hasOwn(added, k)) setKey(out, k, added[k]);
    else if (Object.hasOwn(o, k)) setKey(out, k, o[k]);
  }
  for (const k of Object.keys(o)) if (!keys.includes(k)) setKey(out, k, Object.hasOwn(added, k) ? added[k] : o[k]);
  for (const k of Object.keys(added)) if (!keys.includes(k) && !Object.hasOwn(o, k)) setKey(out, k, added[k]);
  return out;
}

function setKey(out: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  else out[k] = v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** upcasters[type][v] turns version v into version v+1. */
const upcasters: Record<string, Record<number, Upcaster>> = {
  OrderCreated: {
    1: (raw) => {
      const v1 = OrderCreatedV1.parse(raw);
      return {
        orderId: v1.orderId,
        customerId: v1.customerId,
        items: v1.items.map((i) => ({ sku: i.sku, quantity: i.quantity, unitPrice: majorToMinor(i.unitPrice, DEFAULT_SEED_CURRENCY) })),
        total: majorToMinor((v1.totalAmount ?? v1.total)!, DEFAULT_SEED_CURRENCY),
        // v1 predates multi-currency: every v1 order was taken in US dollars.
        currency: DEFAULT_SEED_CURRENCY,
      };
    },
    // v2 had no customer name, contact or item descriptions: the customer id is the name people
    // saw until then, and nothing was known of a contact or what the items were.
    // Only the new fields are added (not parsed here): the current schema then checks the
    // whole event, so a bad v2 event is refused with the path of its bad field.
    2: (raw) => {
      if (!isPlainObject(raw)) return raw;
      const items = Array.isArray(raw.items) ? raw.items.map((i: unknown) => (isPlainObject(i) ? inSchemaOrder(i, ITEM_KEYS, { description: '' }) : i)) : raw.items;
      return inSchemaOrder(raw, ORDER_CREATED_KEYS, { customerName: raw.customerId, customerContact: null, items });
    },
  },
};

/** Whether stored data of this type and version is read as it is (unknown types, and the current version of known ones): `upcast` would return it unchanged. */
export function isCurrentSchema(type: string, schemaVersion: number): boolean {
  return !isOrderEventType(type) || EventSchemas[type].version === schemaVersion;
}

/**
 * Bring stored event data up to the current schema version of its type. Unknown types and
 * versions already current pass through unchanged; a version from the future is an error.
 */
export function upcast(type: string, schemaVersion: number, data: unknown): { schemaVersion: number; data: unknown } {
  if (!isOrderEventType(type)) return { schemaVersion, data };
  const target = EventSchemas[type].version;
  if (schemaVersion > target) {
    throw new UpcastError(type, schemaVersion, `this build understands up to v${target}; upgrade the app`);
  }
  let current = data;
  for (let v = schemaVersion; v < target; v++) {
    const step = upcasters[type]?.[v];
    if (!step) throw new UpcastError(type, v, `no upcaster from v${v} to v${v + 1}`);
    try {
      current = step(current);
    } catch (err) {
      const detail = err instanceof z.ZodError ? z.prettifyError(err) : (err as Error).message;
      throw new UpcastError(type, v, detail);
    }
  }
  return { schemaVersion: target, data: current };
}
