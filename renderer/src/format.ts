import { formatAmount } from './amounts.js';

/** Minor units → "USD 1,234.50": the currency's own decimals, the locale's grouping, exact. */
export function money(minor: number, currency: string | null | undefined): string {
  return formatAmount(minor, currency);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const dateTimeShort = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'short' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

export function whenShort(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTimeShort.format(d);
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 60) return relative.format(seconds, 'second');
  if (abs < 3600) return relative.format(Math.round(seconds / 60), 'minute');
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), 'hour');
  return relative.format(Math.round(seconds / 86400), 'day');
}

export const STATUS_LABEL: Record<string, string> = {
  ALL: 'All',
  CREATED: 'Created',
  PARTIALLY_PAID: 'Partially paid',
  PAID: 'Paid',
  RESERVED: 'Reserved',
  SHIPPED: 'Shipped',
  CANCELLED: 'Cancelled',
};

/** The payment facet, in words. */
export const PAYMENT_LABEL: Record<string, string> = {
  ALL: 'All',
  UNPAID: 'Unpaid',
  PARTLY_PAID: 'Partly paid',
  PAID: 'Paid',
  REFUNDED: 'Refunded',
};

/** The fulfilment facet, in words. */
export const FULFILMENT_LABEL: Record<string, string> = {
  ALL: 'All',
  OPEN: 'Open',
  RESERVED: 'Reserved',
  SHIPPED: 'Shipped',
  CANCELLED: 'Cancelled',
};

/** Event type → a short phrase for the timeline. */
export const EVENT_LABEL: Record<string, string> = {
  OrderCreated: 'Order created',
  PaymentReceived: 'Payment received',
  InventoryReserved: 'Inventory reserved',
  OrderShipped: 'Shipped',
  OrderCancelled: 'Cancelled',
  PaymentRefunded: 'Payment refunded',
  OrderStatusChanged: 'Status changed',
  InventoryReleased: 'Stock released',
};

/** Projection ids → what they are to a person (rebuild progress, drift check). */
export const PROJECTION_LABEL: Record<string, string> = {
  order_list: 'Order list and daily totals',
  customer_history: 'Customer history',
};

export function projectionLabel(name: string): string {
  return name
    .split(',')
    .map((n) => PROJECTION_LABEL[n] ?? n.replaceAll('_', ' '))
    .join(', ');
}

/** "3 items" counts units (as the order list does); lines are named when they differ. */
export function itemCount(items: readonly { quantity: number }[]): string {
  const units = items.reduce((n, i) => n + i.quantity, 0);
  const text = `${units.toLocaleString()} item${units === 1 ? '' : 's'}`;
  return items.length === units ? text : `${text} on ${items.length} line${items.length === 1 ? '' : 's'}`;
}

export const COMMAND_LABEL: Record<string, string> = {
  CreateOrder: 'Create order',
  RecordPayment: 'Record payment',
  ReserveInventory: 'Reserve inventory',
  ShipOrder: 'Ship order',
  CancelOrder: 'Cancel order',
  RefundPayment: 'Refund payment',
};

/** A short, readable identifier, e.g. PAY-7K3QX9. Crypto-random, no secure-context requirement. */
export function newId(prefix: string): string {
  const alphabet = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ';
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return `${prefix}-${Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('')}`;
}

/** The sync engine's error text → a sentence for the person at the desk; the raw text stays as detail. */
export function syncErrorInWords(error: string, serverUrl: string | null): string {
  const server = serverUrl ? `The server at ${serverUrl}` : 'The server';
  if (/ECONNREFUSED|fetch failed|ECONNRESET|socket hang up/i.test(error)) return `${server} is not answering. Your changes are safe on this device and will sync when it is back.`;
  if (/ENOTFOUND|EAI_AGAIN/i.test(error)) return `${server} could not be found. Check the server URL in Settings, or your network.`;
  if (/ETIMEDOUT|timed? ?out|aborted/i.test(error)) return `${server} did not answer in time. Sync will try again shortly.`;
  if (/\b401\b|\b403\b|unauthori[sz]ed|forbidden|token/i.test(error)) return 'The server did not accept the access token. Check it in Settings.';
  if (/\b5\d\d\b/.test(error)) return `${server} reported an internal problem. Sync will try again shortly.`;
  return `Sync failed: ${error}`;
}
