import { describe, expect, it } from 'vitest';
import { MissingEventsBudget, conflictAnswer, streamPage } from '../../src/server/store/append-logic.js';
import type { ServerEvent } from '../../src/protocol/envelope.js';
import {
  MAX_MISSING_BYTES_PER_CONFLICT,
  MAX_MISSING_BYTES_PER_RESPONSE,
  MAX_MISSING_EVENTS_PER_CONFLICT,
  MAX_STREAM_PAGE_BYTES,
} from '../../src/protocol/sync-api.js';

/** Events of the stream after `after`, each about `bytes` long as JSON. */
function stream(after: number, count: number, bytes: number): ServerEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    eventId: `00000000-0000-7000-8000-${String(after + i + 1).padStart(12, '0')}`,
    streamId: 's',
    streamType: 'Note',
    streamVersion: after + i + 1,
    globalPosition: after + i + 1,
    eventType: 'NoteAdded',
    schemaVersion: 1,
    data: { text: 'x'.repeat(bytes) },
    metadata: {},
    recordedAt: '2026-01-01T00:00:00.000Z',
    hash: '0'.repeat(64),
  }));
}
const size = (events: ServerEvent[]) => events.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e)), 0);
const cmd = (expectedVersion: number) => ({ tenantId: 't', streamId: 's', streamType: 'Note', expectedVersion, events: [] });

describe('bounds of conflict answers (shared by both backends)', () => {
  it('cuts one conflict at its byte bound and says where to continue', () => {
    const budget = new MissingEventsBudget();
    const c = conflictAnswer(cmd(0), 1000, stream(0, budget.rowLimit, 10_000), budget);
    expect(size(c.missingEvents)).toBeLessThanOrEqual(MAX_MISSING_BYTES_PER_CONFLICT);
    expect(c.missingEvents.length).toBeGreaterThan(50);
    expect(c).toMatchObject({ missingEventsComplete: false, continueAfterVersion: c.missingEvents.length });
  });

  it('cuts one conflict at its event bound; a short tail is answered whole', () => {
    const budget = new MissingEventsBudget();
    const c = conflictAnswer(cmd(10), 100_000, stream(10, budget.rowLimit, 10), budget);
    expect(c.missingEvents).toHaveLength(MAX_MISSING_EVENTS_PER_CONFLICT);
    expect(c.continueAfterVersion).toBe(10 + MAX_MISSING_EVENTS_PER_CONFLICT);
    const whole = conflictAnswer(cmd(97), 100, stream(97, 3, 10), new MissingEventsBudget());
    expect(whole).toMatchObject({ missingEventsComplete: true, currentVersion: 100 });
    expect(whole.continueAfterVersion).toBeUndefined();
    // An expectation past the head: nothing is missing, and the answer is complete.
    expect(conflictAnswer(cmd(120), 100, [], new MissingEventsBudget())).toMatchObject({ missingEvents: [], missingEventsComplete: true });
  });

  it('shares one byte allowance across the conflicts of a response; later ones carry only the continuation', () => {
    const budget = new MissingEventsBudget();
    const answers = Array.from({ length: 10 }, () => conflictAnswer(cmd(5), 10_000, stream(5, budget.rowLimit, 10_000), budget));
    expect(answers.reduce((n, a) => n + size(a.missingEvents), 0)).toBeLessThanOrEqual(MAX_MISSING_BYTES_PER_RESPONSE);
    const last = answers[answers.length - 1]!;
    expect(last).toMatchObject({ missingEvents: [], missingEventsComplete: false, continueAfterVersion: 5 });
    expect(budget.rowLimit).toBe(0);
  });

  it('a stream page is byte-bounded but never empty while events remain', () => {
    const big = stream(0, 3, MAX_STREAM_PAGE_BYTES);
    expect(streamPage(big, 10)).toMatchObject({ hasMore: true });
    expect(streamPage(big, 10).events).toHaveLength(1);
    const small = stream(0, 4, 10);
    expect(streamPage(small, 3)).toMatchObject({ hasMore: true });
    expect(streamPage(small.slice(0, 3), 3)).toMatchObject({ hasMore: false });
  });
});
