import type { z } from 'zod';
import { EventSchemas, ORDER_STREAM_TYPE, isOrderEventType } from '../domain/events.js';
import { zodIssues, type Issue } from '../domain/issues.js';
import { UpcastError, upcast } from '../domain/upcasters.js';
import { compileFastPath, type FastPredicate } from './schema-fast-path.js';

/**
 * The one validation contract of an event: the server stores only what it accepts (seed API,
 * sync append, push), a device's command produces only what it accepts, and a device reads
 * (pulls) only what it accepts; anything else is quarantined on the device. Because the log is
 * append-only, whatever passes here must stay readable by every device forever.
 *
 * Every event, of any stream type and any event type, known or not:
 * - strings (values and keys, in data and metadata) are valid in both backends: no U+0000 and
 *   no lone surrogate (PostgreSQL refuses both in jsonb; SQLite would store them);
 * - numbers are finite (JSON.parse turns 1e400 into Infinity, which JSON cannot write back);
 * - JSON nesting is at most MAX_DEPTH levels and the JSON text at most MAX_EVENT_BYTES, checked
 *   iteratively, before anything recursive (canonical JSON, JSON.stringify) sees the value.
 * Order event types (the domain's known types):
 * - are valid only on Order streams (the same type name elsewhere would be read by devices as
 *   an order event, and refused);
 * - after upcasting to the current version, must pass the current schema of their type
 *   (bounds on money, quantities and item counts are part of those schemas); a version newer
 *   than this build knows is refused as such (a device quarantines it: update the app);
 * - timestamps (string fields named `…At`, in data and metadata) lie in the window
 *   [EARLIEST_TIMESTAMP, reference time + FUTURE_TOLERANCE_MS]. The reference time is the
 *   time the event is recorded at: the server's clock when it stores it, the device's clock
 *   when a command produces it, and the server's recordedAt when a device reads it back, so a
 *   stored event never turns invalid later and device clocks do not matter for reading.
 * Unknown event types (written by a newer build) get the generic checks only.
 */

export const MAX_DEPTH = 32;
/** Upper bound of one event's data + metadata as JSON text (counted in UTF-16 units, from below). */
export const MAX_EVENT_BYTES = 256 * 1024;
export const EARLIEST_TIMESTAMP = '2000-01-01T00:00:00.000Z';
/** How far ahead of the reference clock a timestamp may be (clock skew, time zones). */
export const FUTURE_TOLERANCE_MS = 24 * 60 * 60 * 1000;

const EARLIEST_MS = Date.parse(EARLIEST_TIMESTAMP);
const TIMESTAMP_KEY = /At$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Each type's current schema as a predicate that only ever says yes when zod would (else zod decides). */
const FAST_SCHEMAS = new Map<string, FastPredicate>(
  Object.entries(EventSchemas).flatMap(([type, spec]) => {
    const fast = compileFastPath(spec.schema as z.ZodType);
    return fast ? [[type, fast] as const] : [];
  }),
);


/** An event as the contract sees it: the envelope fields every path has, whatever its wire shape. */
export interface ContractEvent {
  streamType: string;
  eventType: string;
  schemaVersion: number;
  data: unknown;
  metadata?: unknown;
}

export type ContractVerdict =
  /** Accepted; schemaVersion: the version devices fold it at (after upcasting). */
  | { ok: true; schemaVersion: number }
  /** A known type at a version this build does not know: readable after an app update. */
  | { ok: false; kind: 'newer-version'; issues: Issue[]; currentVersion: number }
  | { ok: false; kind: 'invalid'; issues: Issue[] };

export interface ContractOptions {
  /** Reference time of the date window (ms since epoch or ISO string); default now. */
  now?: number | string | Date;
}

/** Decide on one event; never throws on any JSON value, however deep. */
export function checkEvent(event: ContractEvent, opts: ContractOptions = {}): ContractVerdict {
  const issues: Issue[] = [];
  checkText(event.streamType, 'streamType', issues);
  checkText(event.eventType, 'eventType', issues);
  const budget = { bytes: MAX_EVENT_BYTES };
  const known = isOrderEventType(event.eventType);
  const reference = referenceMs(opts.now);
  // Most events pass: a pass without paths first, the one that names paths only for a failure.
  const quick = { bytes: MAX_EVENT_BYTES };
  const clean = jsonLooksClean(event.data, quick, known ? reference : null) && (event.metadata === undefined || jsonLooksClean(event.metadata, quick, reference)) && quick.bytes >= 0;
  if (!clean) {
    walkJson(event.data, 'data', budget, issues, known ? reference : null);
    if (event.metadata !== undefined) walkJson(event.metadata, 'metadata', budget, issues, reference);
  }
  if (budget.bytes < 0) issues.push({ path: 'data', message: `data and metadata must be at most ${MAX_EVENT_BYTES} bytes of JSON` });
  // The generic checks guard everything below (zod and the upcasters recurse, canonical JSON too).
  if (issues.length > 0) return { ok: false, kind: 'invalid', issues };
  const type = event.eventType;
  if (!isOrderEventType(type)) return { ok: true, schemaVersion: event.schemaVersion };

  if (event.streamType !== ORDER_STREAM_TYPE) {
    return {
      ok: false,
      kind: 'invalid',
      issues: [{ path: 'eventType', message: `${event.eventType} is an order event type: it is only valid on ${ORDER_STREAM_TYPE} streams, not on ${event.streamType}` }],
    };
  }
  const spec = EventSchemas[type];
  if (event.schemaVersion > spec.version) {
    return {
      ok: false,
      kind: 'newer-version',
      currentVersion: spec.version,
      issues: [{ path: 'schemaVersion', message: `${event.eventType} v${event.schemaVersion} was written by a newer version of the app (this one knows up to v${spec.version}): update the app` }],
    };
  }
  // Current version, and the compiled check says yes: zod would accept it.
  if (event.schemaVersion === spec.version && FAST_SCHEMAS.get(type)?.(event.data)) return { ok: true, schemaVersion: spec.version };
  let current: unknown;
  try {
    current = upcast(type, event.schemaVersion, event.data).data;
  } catch (err) {
    if (!(err instanceof UpcastError)) throw err;
    return { ok: false, kind: 'invalid', issues: [{ path: 'data', message: err.message }] };
  }
  // The compiled check holds for upcast data too (an old version's events mostly pass it); zod decides otherwise.
  const fast = FAST_SCHEMAS.get(type);
  const parsed = fast?.(current) ? ({ success: true, data: current } as const) : (spec.schema as z.ZodType).safeParse(current);
  if (!parsed.success) {
    const note = event.schemaVersion === spec.version ? '' : ` (after upcasting v${event.schemaVersion} to the current v${spec.version})`;
    return { ok: false, kind: 'invalid', issues: zodIssues(parsed.error, 'data').map((i) => ({ ...i, message: i.message + note })) };
  }
  // Upcasting can produce new timestamps (none do today); check what devices will fold.
  if (event.schemaVersion !== spec.version) walkJson(parsed.data, 'data', { bytes: MAX_EVENT_BYTES }, issues, reference);
  if (issues.length > 0) return { ok: false, kind: 'invalid', issues };
  return { ok: true, schemaVersion: spec.version };
}

/** The last reference text and its time: a pulled page's events share a few recordedAt values. */
const lastReference = { text: '', ms: 0 };

function referenceMs(now: ContractOptions['now']): number {
  if (now === undefined) return Date.now();
  if (typeof now === 'string' && now === lastReference.text) return lastReference.ms;
  const ms = now instanceof Date ? now.getTime() : typeof now === 'string' ? Date.parse(now) : now;
  if (!Number.isFinite(ms)) throw new TypeError(`invalid reference time ${String(now)}`);
  if (typeof now === 'string') {
    lastReference.text = now;
    lastReference.ms = ms;
  }
  return ms;
}

/** Why a string cannot be stored by both backends, or null. */
export function badTextReason(s: string): string | null {
  if (s.includes('\u0000')) return 'must not contain the NUL character (U+0000)';
  if (LONE_SURROGATE.test(s)) return 'must not contain a lone surrogate (invalid UTF-16)';
  return null;
}

function checkText(s: string, path: string, issues: Issue[]): void {
  if (textOk(s)) return;
  const reason = badTextReason(s);
  if (reason) issues.push({ path, message: reason });
}

const pathOf = (parent: string, key: string | number): string =>
  typeof key === 'number' ? `${parent}.${key}` : /^[A-Za-z0-9_$-]+$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key.slice(0, 40))}]`;

/**
 * Depth-first over a parsed JSON value with an explicit stack (a 10,000-level document costs
 * 10,000 stack entries, not call frames): text validity, finite numbers, depth, and an estimate
 * of the JSON size from below (UTF-16 units, separators and escapes aside). `timestamps`: check string
 * fields named …At against the window around this reference time (null: no window).
 */
function walkJson(root: unknown, rootPath: string, budget: { bytes: number }, issues: Issue[], timestamps: number | null): void {
  const stack: { value: unknown; path: string; depth: number; key: string | null }[] = [{ value: root, path: rootPath, depth: 1, key: null }];
  while (stack.length > 0) {
    const { value, path, depth, key } = stack.pop()!;
    if (issues.length >= 20) return;
    if (typeof value === 'string') {
      budget.bytes -= value.length + 2;
      checkText(value, path, issues);
      if (timestamps !== null && key !== null && TIMESTAMP_KEY.test(key)) checkTimestamp(value, path, timestamps, issues);
      continue;
    }
    if (typeof value === 'number') {
      budget.bytes -= 8;
      if (!Number.isFinite(value)) issues.push({ path, message: 'must be a finite number' });
      continue;
    }
    if (value === null || typeof value === 'boolean') {
      budget.bytes -= 5;
      continue;
    }
    if (typeof value !== 'object') {
      issues.push({ path, message: `${typeof value} is not a JSON value` });
      continue;
    }
    if (depth > MAX_DEPTH) {
      issues.push({ path, message: `JSON must be nested at most ${MAX_DEPTH} levels deep` });
      continue;
    }
    budget.bytes -= 2;
    if (budget.bytes < 0) return;
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: pathOf(path, i), depth: depth + 1, key: null });
      continue;
    }
    for (const k of Object.keys(value)) {
      budget.bytes -= k.length + 3;
      const reason = badTextReason(k);
      if (reason) issues.push({ path: pathOf(path, k), message: `key ${reason}` });
      stack.push({ value: (value as Record<string, unknown>)[k], path: pathOf(path, k), depth: depth + 1, key: k });
    }
  }
}

const SURROGATE = /[\uD800-\uDFFF]/;
const textOkSlow = (s: string) => !s.includes('\u0000') && !(SURROGATE.test(s) && LONE_SURROGATE.test(s));
/** badTextReason(s) === null. Short strings (ids, names) in one pass of char codes: cheaper than two regex calls. */
function textOk(s: string): boolean {
  if (s.length > 64) return textOkSlow(s);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) return false;
    if (c >= 0xd800 && c <= 0xdfff) return textOkSlow(s);
  }
  return true;
}

/**
 * walkJson's checks without paths or messages: true when walkJson would find nothing (false may
 * also mean "not sure": walkJson then decides). Recursive without a stack of its own, for speed:
 * it goes at most MAX_DEPTH + 1 calls deep, since a deeper object is refused before its children.
 */
function jsonLooksClean(value: unknown, budget: { bytes: number }, timestamps: number | null, depth = 1, key: string | null = null): boolean {
  if (typeof value === 'string') {
    budget.bytes -= value.length + 2;
    return textOk(value) && (timestamps === null || key === null || !key.endsWith('At') || timestampOk(value, timestamps));
  }
  if (typeof value === 'number') {
    budget.bytes -= 8;
    return Number.isFinite(value);
  }
  if (value === null || typeof value === 'boolean') {
    budget.bytes -= 5;
    return true;
  }
  if (typeof value !== 'object' || depth > MAX_DEPTH) return false;
  budget.bytes -= 2;
  if (budget.bytes < 0) return false;
  if (Array.isArray(value)) {
    for (const v of value as unknown[]) if (!jsonLooksClean(v, budget, timestamps, depth + 1, null) || budget.bytes < 0) return false;
    return true;
  }
  for (const k of Object.keys(value)) {
    budget.bytes -= k.length + 3;
    if (!textOk(k) || !jsonLooksClean((value as Record<string, unknown>)[k], budget, timestamps, depth + 1, k) || budget.bytes < 0) return false;
  }
  return true;
}

function timestampOk(value: string, reference: number): boolean {
  const issues: Issue[] = [];
  checkTimestamp(value, '', reference, issues);
  return issues.length === 0;
}

function checkTimestamp(value: string, path: string, reference: number, issues: Issue[]): void {
  // Only ISO dates are timestamps; anything else is the type schema's business.
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) return;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) return;
  if (ms < EARLIEST_MS) issues.push({ path, message: `must not be before ${EARLIEST_TIMESTAMP.slice(0, 10)}` });
  else if (ms > reference + FUTURE_TOLERANCE_MS) {
    issues.push({ path, message: `must not be more than ${FUTURE_TOLERANCE_MS / 3_600_000} hours after the time it is recorded (${new Date(reference).toISOString()})` });
  }
}
