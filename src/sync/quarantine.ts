import type Database from 'better-sqlite3';
import { describeIssues, zodIssues } from '../domain/issues.js';
import { canonicalJson } from '../protocol/canonical-json.js';
import type { ServerEvent } from '../protocol/envelope.js';
import { checkEvent } from '../protocol/event-contract.js';
import { NewEvent, StreamId, StreamType } from '../protocol/envelope.js';
import { fastNewEvent } from '../store/event-validation.js';

import type { QuarantineKind, QuarantinedEvent } from './views.js';

interface Row {
  event_id: string;
  global_position: number;
  stream_id: string;
  stream_type: string;
  stream_version: number;
  event_type: string;
  schema_version: number;
  raw: string;
  kind: QuarantineKind;
  reason: string;
  quarantined_at: string;
}

// Built once: extending a zod schema per event compiled a new parser every time (half the cost
// of a first sync).
const PulledEnvelope = NewEvent.extend({ streamId: StreamId, streamType: StreamType });

/**
 * PulledEnvelope without zod for the common well-formed event: the envelope through the store's
 * fast check (held to NewEvent by its own test), the stream's id and type through their schemas
 * once per stream (a page holds runs of the same stream). Null: let zod decide.
 */
const lastGood = { streamId: '', streamType: '' };
function fastEnvelope(e: ServerEvent): NewEvent | null {
  const envelope = fastNewEvent({ eventId: e.eventId, eventType: e.eventType, schemaVersion: e.schemaVersion, data: e.data, metadata: e.metadata });
  if (envelope === null) return null;
  if (e.streamId !== lastGood.streamId) {
    if (!StreamId.safeParse(e.streamId).success) return null;
    lastGood.streamId = e.streamId;
  }
  if (e.streamType !== lastGood.streamType) {
    if (!StreamType.safeParse(e.streamType).success) return null;
    lastGood.streamType = e.streamType;
  }
  return envelope;
}

export type ReadVerdict =
  /** `envelope`: the event's envelope as the local log stores it (parsed once, here). */
  | { ok: true; envelope: NewEvent }
  | { ok: false; kind: 'newer-version' | 'invalid'; reason: string };

/**
 * Can this device read a pulled event? The event contract with the server's recordedAt as the
 * reference time (what the server checked it against), after the envelope check of the local log.
 */
export function readVerdict(e: ServerEvent): ReadVerdict {
  let envelope = fastEnvelope(e);
  if (envelope === null) {
    const parsed = PulledEnvelope.safeParse({
      eventId: e.eventId,
      streamId: e.streamId,
      streamType: e.streamType,
      eventType: e.eventType,
      schemaVersion: e.schemaVersion,
      data: e.data,
      metadata: e.metadata,
    });
    if (!parsed.success) {
      return { ok: false, kind: 'invalid', reason: `this event breaks the event contract, so this app cannot apply it: ${describeIssues(zodIssues(parsed.error))}` };
    }
    const { eventId, eventType, schemaVersion, data, metadata } = parsed.data;
    envelope = { eventId, eventType, schemaVersion, data, metadata };
  }
  const verdict = checkEvent({ streamType: e.streamType, eventType: e.eventType, schemaVersion: e.schemaVersion, data: e.data, metadata: e.metadata }, { now: e.recordedAt });
  if (verdict.ok) return { ok: true, envelope };
  if (verdict.kind === 'newer-version') {
    return { ok: false, kind: 'newer-version', reason: `written by a newer version of the app (${e.eventType} v${e.schemaVersion}; this one reads up to v${verdict.currentVersion}) — update the app` };
  }
  return { ok: false, kind: 'invalid', reason: `this event breaks the event contract, so this app cannot apply it: ${describeIssues(verdict.issues)}` };
}

/** The device's quarantine table (migration 005): one statement per operation. */
export class QuarantineRepository {
  private readonly s;

  constructor(db: Database.Database) {
    this.s = {
      insert: db.prepare(
        `INSERT INTO quarantined_events (event_id, global_position, stream_id, stream_type, stream_version, event_type, schema_version, raw, kind, reason, quarantined_at)
         VALUES (@eventId, @globalPosition, @streamId, @streamType, @streamVersion, @eventType, @schemaVersion, @raw, @kind, @reason, @at)
         ON CONFLICT DO NOTHING`,
      ),
      streamsAmong: db.prepare<[string], { stream_id: string }>(
        'SELECT DISTINCT stream_id FROM quarantined_events WHERE stream_id IN (SELECT value FROM json_each(?))',
      ),
      idsAmong: db.prepare<[string], { event_id: string }>('SELECT event_id FROM quarantined_events WHERE event_id IN (SELECT value FROM json_each(?))'),
      // One probe: most devices hold nothing aside, and a pulled page then needs no id lookups.
      any: db.prepare<[], { one: number }>('SELECT 1 AS one FROM quarantined_events LIMIT 1'),
      streams: db.prepare<[], { stream_id: string }>('SELECT DISTINCT stream_id FROM quarantined_events ORDER BY stream_id'),
      ofStream: db.prepare<[string], Row>('SELECT * FROM quarantined_events WHERE stream_id = ? ORDER BY stream_version'),
      all: db.prepare<[number], Row>('SELECT * FROM quarantined_events ORDER BY global_position LIMIT ?'),
      count: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM quarantined_events'),
      has: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM quarantined_events WHERE stream_id = ? LIMIT 1'),
      remove: db.prepare('DELETE FROM quarantined_events WHERE event_id = ?'),
      setReason: db.prepare('UPDATE quarantined_events SET kind = ?, reason = ? WHERE event_id = ?'),
    };
  }

  add(e: ServerEvent, kind: QuarantineKind, reason: string, at: string): void {
    this.s.insert.run({
      eventId: e.eventId,
      globalPosition: e.globalPosition,
      streamId: e.streamId,
      streamType: e.streamType,
      streamVersion: e.streamVersion,
      eventType: e.eventType,
      schemaVersion: e.schemaVersion,
      // Iterative: the event may be nested far deeper than JSON.stringify can write.
      raw: canonicalJson(e),
      kind,
      reason,
      at,
    });
  }

  /** Which of these streams have quarantined events (their later events wait too). */
  streamsAmong(streamIds: readonly string[]): Set<string> {
    if (streamIds.length === 0 || this.s.any.get() === undefined) return new Set();
    return new Set(this.s.streamsAmong.all(JSON.stringify(streamIds)).map((r) => r.stream_id));
  }

  idsAmong(eventIds: readonly string[]): Set<string> {
    if (eventIds.length === 0 || this.s.any.get() === undefined) return new Set();
    return new Set(this.s.idsAmong.all(JSON.stringify(eventIds)).map((r) => r.event_id));
  }

  hasStream(streamId: string): boolean {
    return this.s.has.get(streamId) !== undefined;
  }

  streams(): string[] {
    return this.s.streams.all().map((r) => r.stream_id);
  }

  /** A stream's quarantined events in version order, as received. */
  eventsOf(streamId: string): ServerEvent[] {
    return this.s.ofStream.all(streamId).map((r) => JSON.parse(r.raw) as ServerEvent);
  }

  list(limit = 500): QuarantinedEvent[] {
    return this.s.all.all(limit).map((r) => ({
      eventId: r.event_id,
      globalPosition: r.global_position,
      streamId: r.stream_id,
      streamType: r.stream_type,
      streamVersion: r.stream_version,
      eventType: r.event_type,
      schemaVersion: r.schema_version,
      kind: r.kind,
      reason: r.reason,
      quarantinedAt: r.quarantined_at,
    }));
  }

  count(): number {
    return this.s.count.get()?.n ?? 0;
  }

  remove(eventId: string): void {
    this.s.remove.run(eventId);
  }

  setReason(eventId: string, kind: QuarantineKind, reason: string): void {
    this.s.setReason.run(kind, reason, eventId);
  }
}

export const BLOCKED_REASON = 'waits for an earlier event of this order that this app cannot read (see that event)';
