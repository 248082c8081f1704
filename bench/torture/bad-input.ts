// Bad input: fuzzed requests against every server endpoint (malformed JSON, wrong types, huge
// bodies, unknown fields, other tenants' ids, SQL-looking strings, missing or foreign tokens,
// poison events, stale writes against a long stream).
// Every one must be answered 4xx with a JSON error, the server must stay up, and a content hash
// of the whole database must be the same before and after.
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import {
  MAX_MISSING_BYTES_PER_CONFLICT,
  MAX_MISSING_BYTES_PER_RESPONSE,
  MAX_MISSING_EVENTS_PER_CONFLICT,
  MAX_MISSING_EVENTS_PER_RESPONSE,
} from '../../src/protocol/sync-api.js';
import { startServer } from '../../src/server/index.js';
import { rng } from './converge.js';
import type { TrialStats } from './crash.js';

const TOKEN_A = 'fuzz-token-tenant-a-0123456789';
const TOKEN_B = 'fuzz-token-tenant-b-0123456789';
const TOKEN_B_ORDER = 'O-tenant-b-secret';

/** Hash of every row of every table, independent of row order. */
export function databaseHash(file: string): string {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const h = createHash('sha256');
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[];
    for (const t of tables) {
      const rows = db.prepare(`SELECT * FROM "${t.replace(/"/g, '""')}"`).all().map((r) => JSON.stringify(r)).sort();
      h.update(`${t}\n${rows.join('\n')}\n`);
    }
    return h.digest('hex');
  } finally {
    db.close();
  }
}

const SQLISH = [`x' OR '1'='1`, `1; DROP TABLE events;--`, `' UNION SELECT * FROM events --`, `"; DELETE FROM events; --`, `%' AND 1=1 --`, `Robert'); DROP TABLE orders;--`];
const MALFORMED = ['{"streamType":', '{bad json}', '{"a":1,}', '[1,2', 'null garbage', '\u0000\u0001', '{"events":[{]}', "{'single':'quotes'}"];

interface FuzzRequest {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  token: string | null;
  /** Raw body text (sent as application/json). */
  body?: string;
  kind: string;
  /** A push answers 200 with one result per element: every element must be refused. */
  pushRefused?: boolean;
  /** A stale write against the long stream: a conflict whose missing events stay within the caps. */
  stale?: 'append' | 'push';
}

type R = ReturnType<typeof rng>;

const enc = encodeURIComponent;

function wrongTypedValue(r: R): unknown {
  return r.pick<unknown>([42, -1, 1.5, 'str', null, true, [], {}, [1, 'a'], { nested: { deep: [null] } }, 'a'.repeat(300), r.pick(SQLISH)]);
}

/** A JSON body that cannot be valid for any endpoint: wrong types, missing fields, unknown fields. */
function junkBody(r: R): string {
  const roll = r.int(6);
  if (roll === 0) return JSON.stringify(wrongTypedValue(r));
  if (roll === 1) return JSON.stringify({ streamType: wrongTypedValue(r), expectedVersion: wrongTypedValue(r), events: wrongTypedValue(r) });
  if (roll === 2) return JSON.stringify({ appends: [{ streamId: r.pick(SQLISH), streamType: 'Order', expectedVersion: 'no_stream', events: [{ eventId: 'not-a-uuid', eventType: 'x', schemaVersion: 0, data: 1 }] }] });
  if (roll === 3) return JSON.stringify({ unknownField: r.pick(SQLISH), [r.pick(SQLISH)]: wrongTypedValue(r), __proto__x: { admin: true } });
  if (roll === 4) return JSON.stringify({ aggregateId: r.pick(SQLISH), aggregateType: 'order', eventType: 7, eventData: 'x' });
  return JSON.stringify({ status: r.pick(['SHIPPED', 'BOGUS', 1, null]), expectedVersion: r.pick([-1, 'one', 1.5, null]), reason: r.pick(['', ...SQLISH]).repeat(r.int(3) + 1).slice(0, 600), extra: 1 });
}

/** A valid append body with one unknown field: must be refused (strict schemas), nothing written. */
function validAppendWithUnknownField(r: R, orderId: string): string {
  const event = {
    eventId: uuidv7(),
    eventType: 'OrderCreated',
    schemaVersion: 2,
    data: { orderId, customerId: 'C-1', items: [{ sku: 'SKU-1', quantity: 1, unitPrice: 100 }], total: 100, currency: 'USD' },
    metadata: {},
  };
  if (r.chance(0.5)) return JSON.stringify({ streamType: 'Order', expectedVersion: 'no_stream', events: [event], unknownField: r.pick(SQLISH) });
  return JSON.stringify({ streamType: 'Order', expectedVersion: 'no_stream', events: [{ ...event, injected: r.pick(SQLISH) }] });
}

/** JSON text nested `levels` deep (written as text: JSON.stringify of such a value recurses). */
const nestedText = (levels: number) => '{"x":'.repeat(levels) + '1' + '}'.repeat(levels);
const DEEP = '"__deep__"';

interface Poison {
  streamType: string;
  eventType: string;
  schemaVersion: number;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  deep?: number;
}

/**
 * Events no device could read (issue 10): negative money, huge quantities and item counts, order
 * types on other stream types, deep nesting, NUL and lone surrogates in reasons and metadata,
 * dates far in the future or before 2000. (The seeds' item-less order is valid: issue 11.)
 */
function poisonEvent(r: R, i: number): Poison {
  const item = { sku: 'S', quantity: 1, unitPrice: 100 };
  const order = { orderId: `O-p-${i}`, customerId: 'C', items: [item], total: 100, currency: 'USD' };
  const badText = r.pick(['x\u0000y', 'oops \ud800', '\udfff', 'a\u0000']);
  const when = r.pick(['2999-01-01T00:00:00.000Z', new Date(Date.now() + 3 * 86_400_000).toISOString(), '1970-01-01T00:00:00.000Z']);
  const cases: (() => Poison)[] = [
    () => ({ streamType: 'Order', eventType: 'OrderCreated', schemaVersion: 2, data: { ...order, items: [{ ...item, unitPrice: -r.int(1000) - 1 }] }, metadata: {} }),
    () => ({ streamType: 'Order', eventType: 'OrderCreated', schemaVersion: 2, data: { ...order, items: [{ ...item, quantity: 1_000_001 + r.int(1e6) }] }, metadata: {} }),
    () => ({ streamType: 'Order', eventType: 'OrderCreated', schemaVersion: 2, data: { ...order, items: Array.from({ length: 501 }, () => item) }, metadata: {} }),
    () => ({ streamType: r.pick(['Invoice', 'Note', 'Customer']), eventType: r.pick(['OrderCreated', 'OrderCancelled', 'PaymentReceived']), schemaVersion: 1, data: { note: 'x' }, metadata: {} }),
    () => ({ streamType: r.pick(['Order', 'Note']), eventType: r.pick(['NoteAdded', 'OrderCreated']), schemaVersion: 2, data: { text: '__deep__' }, metadata: {}, deep: r.pick([40, 4200, 10_000, 50_000]) }),
    () => ({ streamType: 'Order', eventType: 'OrderCancelled', schemaVersion: 1, data: { reason: badText, cancelledAt: '2025-01-01T00:00:00.000Z' }, metadata: {} }),
    () => ({ streamType: 'Order', eventType: 'PaymentRefunded', schemaVersion: 1, data: { paymentId: 'P-1', amount: 100, reason: badText }, metadata: {} }),
    () => ({ streamType: 'Note', eventType: 'NoteAdded', schemaVersion: 1, data: { [badText]: 'key' }, metadata: { causationId: badText } }),
    () => ({ streamType: 'Order', eventType: r.pick(['OrderShipped', 'OrderCancelled']), schemaVersion: 1, data: { shipmentId: 'SH', shippedAt: when, reason: 'r', cancelledAt: when }, metadata: {} }),
    () => ({ streamType: 'Order', eventType: 'InventoryReserved', schemaVersion: 1, data: { reservationId: 'R' }, metadata: { occurredAt: when } }),
  ];
  return r.pick(cases)();
}

function poisonRequest(r: R, i: number, token: string | null): FuzzRequest {
  const p = poisonEvent(r, i);
  const streamId = `O-poison-${i}`;
  const event = { eventId: uuidv7(), eventType: p.eventType, schemaVersion: p.schemaVersion, data: p.data, metadata: p.metadata };
  const text = (body: unknown) => (p.deep === undefined ? JSON.stringify(body) : JSON.stringify(body).replace(DEEP, nestedText(p.deep)));
  const kind = `poison ${p.eventType} on ${p.streamType}${p.deep ? ` (${p.deep} levels)` : ''}`;
  switch (r.int(3)) {
    case 0:
      return { method: 'POST', path: '/api/events', token, kind: `${kind} via seed API`, body: text({ aggregateId: streamId, aggregateType: p.streamType, eventType: p.eventType, schemaVersion: p.schemaVersion, eventData: p.data, ...(Object.keys(p.metadata).length ? { metadata: p.metadata } : {}) }) };
    case 1:
      return { method: 'POST', path: `/sync/streams/${streamId}/append`, token, kind: `${kind} via append`, body: text({ streamType: p.streamType, expectedVersion: 'any', events: [event] }) };
    default:
      return { method: 'POST', path: '/sync/push', token, kind: `${kind} via push`, pushRefused: token === TOKEN_A, body: text({ appends: [{ streamId, streamType: p.streamType, expectedVersion: 'any', events: [event] }] }) };
  }
}

/** A stream long enough that an unbounded conflict answer would be megabytes (issue 10's amplification). */
const LONG_STREAM = 'N-long-history';
const LONG_EVENTS = 5000;
/** Slack over the protocol's byte caps for the envelope around the missing events. */
const ENVELOPE_SLACK = 64 * 1024;

function staleRequest(r: R): FuzzRequest {
  const event = () => ({ eventId: uuidv7(), eventType: 'NoteAdded', schemaVersion: 1, data: { text: 'stale' }, metadata: {} });
  const expectedVersion = r.int(50);
  if (r.chance(0.5)) {
    return { method: 'POST', path: `/sync/streams/${LONG_STREAM}/append`, token: TOKEN_A, kind: 'stale append on a long stream', stale: 'append', body: JSON.stringify({ streamType: 'Note', expectedVersion, events: [event()] }) };
  }
  const appends = Array.from({ length: 1 + r.int(40) }, () => ({ streamId: LONG_STREAM, streamType: 'Note', expectedVersion, events: [event()] }));
  return { method: 'POST', path: '/sync/push', token: TOKEN_A, kind: 'stale push on a long stream', stale: 'push', body: JSON.stringify({ appends }) };
}

/** The conflict answer is bounded (count and bytes) and says where to continue. */
function staleBounded(req: FuzzRequest, res: { status: number; text: string }): string | null {
  type Conflict = { missingEvents?: unknown[]; missingEventsComplete?: boolean; continueAfterVersion?: number };
  let conflicts: Conflict[];
  try {
    const body = JSON.parse(res.text) as Conflict & { results?: { status?: string; conflict?: Conflict }[] };
    if (req.stale === 'append') {
      if (res.status !== 409) return `expected 409, got ${res.status}`;
      if (res.text.length > MAX_MISSING_BYTES_PER_CONFLICT + ENVELOPE_SLACK) return `409 of ${res.text.length} bytes`;
      conflicts = [body];
    } else {
      if (res.status !== 200 || !Array.isArray(body.results)) return `expected 200 with results, got ${res.status}`;
      if (res.text.length > MAX_MISSING_BYTES_PER_RESPONSE + ENVELOPE_SLACK) return `push answer of ${res.text.length} bytes`;
      if (!body.results.every((x) => x.status === 'conflict' && x.conflict)) return 'an element of a stale push was not a conflict';
      conflicts = body.results.map((x) => x.conflict!);
    }
  } catch {
    return 'no JSON answer';
  }
  let events = 0;
  for (const c of conflicts) {
    const n = c.missingEvents?.length ?? 0;
    events += n;
    if (n > MAX_MISSING_EVENTS_PER_CONFLICT) return `${n} missing events in one conflict`;
    if (c.missingEventsComplete !== false || typeof c.continueAfterVersion !== 'number') return 'a cut conflict answer without its continuation';
  }
  return events > MAX_MISSING_EVENTS_PER_RESPONSE ? `${events} missing events in one answer` : null;
}

export function fuzzRequest(r: R, i: number): FuzzRequest {
  const tokenRoll = r.next();
  const token = tokenRoll < 0.06 ? null : tokenRoll < 0.1 ? 'wrong-token-0123456789abcdef' : TOKEN_A;
  const badOrSql = () => (r.chance(0.5) ? enc(r.pick(SQLISH)) : enc(`id-${i}`));
  const body = () => (r.chance(0.3) ? r.pick(MALFORMED) : junkBody(r));
  switch (r.int(17)) {
    case 16:
      return staleRequest(r);
    case 13:
    case 14:
    case 15:
      return poisonRequest(r, i, token);
    case 0:
      return { method: 'POST', path: `/sync/streams/${badOrSql()}/append`, token, body: body(), kind: 'append junk' };
    case 1:
      return { method: 'POST', path: `/sync/streams/O-fuzz-${i}/append`, token, body: validAppendWithUnknownField(r, `O-fuzz-${i}`), kind: 'append unknown field' };
    case 2:
      return { method: 'POST', path: '/sync/push', token, body: body(), kind: 'push junk' };
    case 3:
      return { method: 'GET', path: `/sync/events?${r.pick([`after=-1`, `after=abc`, `limit=0`, `limit=999999`, `after=${enc(r.pick(SQLISH))}`, `after=1&unknown=1`, `waitMs=-5`])}`, token, kind: 'pull bad query' };
    case 4:
      return { method: 'GET', path: `/sync/events/live?${r.pick([`after=-1`, `after=x`, `after=${enc(r.pick(SQLISH))}`, `after=1&bogus=2`])}`, token, kind: 'live bad query' };
    case 5:
      return { method: 'POST', path: '/api/events', token, body: body(), kind: 'seed append junk' };
    case 6:
      return { method: 'GET', path: `/api/aggregates/${r.chance(0.5) ? TOKEN_B_ORDER : badOrSql()}/state`, token, kind: 'state of another tenant / sql id' };
    case 7:
      return { method: 'POST', path: '/api/commands/orders', token, body: body(), kind: 'create order junk' };
    case 8:
      return r.chance(0.5)
        ? { method: 'PUT', path: `/api/commands/orders/${TOKEN_B_ORDER}/status`, token, body: JSON.stringify({ status: 'CANCELLED', expectedVersion: 1, reason: 'not yours' }), kind: "update another tenant's order" }
        : { method: 'PUT', path: `/api/commands/orders/${badOrSql()}/status`, token, body: body(), kind: 'update status junk' };
    case 9:
      return { method: 'GET', path: `/api/queries/orders/dashboard?${r.pick([`status=BOGUS`, `limit=-1`, `limit=abc`, `offset=1e99`, `status=${enc(r.pick(SQLISH))}`, `limit=10&unknown=1`])}`, token, kind: 'dashboard bad query' };
    case 10:
      return { method: 'GET', path: `/api/queries/orders/${r.chance(0.5) ? TOKEN_B_ORDER : badOrSql()}`, token, kind: 'order of another tenant / sql id' };
    case 11:
      return { method: 'POST', path: '/api/admin/projections/rebuild', token, body: '{}', kind: 'admin rebuild as device' };
    default:
      return { method: 'GET', path: `/api/admin/audit/verify?${r.chance(0.5) ? `streamId=${enc(r.pick(SQLISH))}` : ''}`, token, kind: 'admin verify as device' };
  }
}

async function send(base: string, req: FuzzRequest): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = {};
  if (req.token) headers.authorization = `Bearer ${req.token}`;
  if (req.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + req.path, { method: req.method, headers, body: req.body, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, text: await res.text() };
}

/** 200 with a per-element result, each one an error carrying its reason. */
function pushAllRefused(res: { status: number; text: string }): boolean {
  if (res.status !== 200) return false;
  try {
    const body = JSON.parse(res.text) as { results?: { status?: string; message?: string }[] };
    return Array.isArray(body.results) && body.results.length > 0 && body.results.every((x) => x.status === 'error' && typeof x.message === 'string' && x.message.length > 0);
  } catch {
    return false;
  }
}

function clearError(text: string): boolean {
  try {
    // The seeds' API answers `{"error":"Aggregate not found"}` (kept for compatibility): a
    // non-empty error is required, a message where the error is only a code.
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof body.error !== 'string' || body.error.length === 0) return false;
    return /\s/.test(body.error) || (typeof body.message === 'string' && body.message.length > 0);
  } catch {
    return false;
  }
}

export async function runBadInput(opts: { requests: number; hugeBodies: number; concurrency?: number; seed?: number; maxSeconds: number }): Promise<TrialStats> {
  const t0 = performance.now();
  const stats: TrialStats = { name: 'bad input (fuzzed requests, every endpoint)', trials: 0, faults: 0, failures: 0, seconds: 0, details: [] };
  const dir = mkdtempSync(join(tmpdir(), 'torture-fuzz-'));
  const file = join(dir, 'server.sqlite');
  const server = await startServer({
    backend: 'sqlite',
    file,
    port: 0,
    bodyLimit: 1024 * 1024,
    rateLimit: { max: 10_000_000, timeWindowMs: 1000 },
    // Missing and foreign tokens are part of the fuzz: keep the address from being locked out.
    authFailures: { max: 10_000_000, timeWindowMs: 1000 },
    tokens: [
      { token: TOKEN_A, tenant: 'tenant-a', user: 'alice', roles: ['device'] },
      { token: TOKEN_B, tenant: 'tenant-b', user: 'bob', roles: ['device'] },
    ],
  });
  const fail = (what: string) => {
    stats.failures++;
    if (stats.details.length < 20) stats.details.push(what);
  };
  try {
    // Some real data in both tenants, so "other tenants' ids" point at something that exists.
    const seed = (token: string, orderId: string) =>
      fetch(`${server.url}/sync/streams/${orderId}/append`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ streamType: 'Order', expectedVersion: 'no_stream', events: [{ eventId: uuidv7(), eventType: 'OrderCreated', schemaVersion: 2, data: { orderId, customerId: 'C-1', items: [{ sku: 'S', quantity: 1, unitPrice: 500 }], total: 500, currency: 'USD' }, metadata: {} }] }),
      });
    for (const [token, id] of [
      [TOKEN_A, 'O-tenant-a-1'],
      [TOKEN_B, TOKEN_B_ORDER],
    ] as const) {
      const res = await seed(token, id);
      if (res.status !== 201) throw new Error(`seeding ${id} failed: ${res.status} ${await res.text()}`);
    }
    // One long stream: stale writes against it must get bounded conflict answers.
    for (let v = 0; v < LONG_EVENTS; v += 1000) {
      const res = await fetch(`${server.url}/sync/streams/${LONG_STREAM}/append`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN_A}`, 'content-type': 'application/json' },
        body: JSON.stringify({ streamType: 'Note', expectedVersion: v === 0 ? 'no_stream' : v, events: Array.from({ length: 1000 }, (_, k) => ({ eventId: uuidv7(), eventType: 'NoteAdded', schemaVersion: 1, data: { text: `history ${v + k} ${'h'.repeat(200)}` }, metadata: {} })) }),
      });
      if (res.status !== 201) throw new Error(`seeding ${LONG_STREAM} failed: ${res.status} ${await res.text()}`);
    }
    const before = databaseHash(file);
    const r = rng(opts.seed ?? 99);
    const queue: FuzzRequest[] = Array.from({ length: opts.requests }, (_, i) => fuzzRequest(r, i));
    for (let i = 0; i < opts.hugeBodies; i++) {
      const big = `{"streamType":"Order","expectedVersion":"no_stream","events":[{"pad":"${'x'.repeat(1_200_000)}"}]}`;
      queue.splice(r.int(queue.length), 0, { method: 'POST', path: i % 2 ? '/sync/push' : `/sync/streams/O-huge-${i}/append`, token: TOKEN_A, body: big, kind: 'huge body' });
    }
    const kinds = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      while (next < queue.length && (performance.now() - t0) / 1000 < opts.maxSeconds) {
        const req = queue[next++]!;
        stats.trials++;
        stats.faults++;
        kinds.set(req.kind, (kinds.get(req.kind) ?? 0) + 1);
        try {
          const res = await send(server.url, req);
          if (req.stale) {
            const problem = staleBounded(req, res);
            if (problem) fail(`${req.method} ${req.path} (${req.kind}): ${problem}`);
          } else if (req.pushRefused) {
            if (!pushAllRefused(res)) fail(`${req.method} ${req.path} (${req.kind}) → ${res.status}, not a refusal of every element: ${res.text.slice(0, 200)}`);
          } else if (res.status < 400 || res.status > 499) fail(`${req.method} ${req.path} (${req.kind}) → ${res.status}: ${res.text.slice(0, 200)}`);
          else if (!clearError(res.text)) fail(`${req.method} ${req.path} (${req.kind}) → ${res.status} without a clear JSON error: ${res.text.slice(0, 200)}`);
        } catch (err) {
          fail(`${req.method} ${req.path} (${req.kind}) → no answer: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency ?? 16 }, worker));
    const health = await fetch(`${server.url}/health`).then((x) => x.status).catch(() => 0);
    if (health !== 200) fail(`server not healthy after the fuzzing (health → ${health})`);
    const after = databaseHash(file);
    if (after !== before) fail('the database content changed during the fuzzing');
    stats.notes = `db hash before = after: ${before === after}; kinds: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`;
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  stats.seconds = Math.round((performance.now() - t0) / 100) / 10;
  return stats;
}
