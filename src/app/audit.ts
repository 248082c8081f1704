import type { ServerEvent } from '../protocol/envelope.js';
import { MAX_STREAM_PAGE_LIMIT, StreamEventsResponse } from '../protocol/sync-api.js';
import { canonicalJson } from '../protocol/canonical-json.js';
import { computeEventHash, GENESIS_HASH } from '../protocol/event-hash.js';
import type { AuditResult } from './contract.js';
import type { Device } from './device.js';


/**
 * Check an order's synced history two ways: the server's copy must form an unbroken hash chain
 * (recomputed here, not taken on trust), and every event this device holds as confirmed must be
 * that same event (id, version, type, data).
 */
export async function verifyOrderAudit(device: Device, orderId: string): Promise<AuditResult> {
  const checkedAt = new Date().toISOString();
  const credential = device.serverCredential();
  const local = device.store.log.readStream(orderId, { raw: true });
  if (!credential) {
    return { verified: false, checkedAt, firstBrokenEventId: null, message: 'No server with an access token is configured, so there is no audit chain to check against.' };
  }
  const events: ServerEvent[] = [];
  try {
    // The server answers a bounded page at a time.
    for (let after = 0; ; ) {
      const url = new URL(`/sync/streams/${encodeURIComponent(orderId)}/events?afterVersion=${after}&limit=${MAX_STREAM_PAGE_LIMIT}`, credential.server);
      const res = await fetch(url, { headers: { authorization: `Bearer ${credential.token}` }, signal: AbortSignal.timeout(15_000) });
      if (res.status === 404) break;
      if (!res.ok) return { verified: false, checkedAt, firstBrokenEventId: null, message: `The server answered ${res.status}; the chain could not be checked.` };
      const page = StreamEventsResponse.parse(await res.json());
      events.push(...page.events);
      if (!page.hasMore || page.events.length === 0) break;
      after = page.events[page.events.length - 1]!.streamVersion;
    }
  } catch (err) {
    return { verified: false, checkedAt, firstBrokenEventId: null, message: `The server could not be reached (${(err as Error).message}).` };
  }

  let previous = GENESIS_HASH;
  for (const e of events) {
    const expected = computeEventHash(previous, e);
    if (expected !== e.hash) {
      return { verified: false, checkedAt, firstBrokenEventId: e.eventId, message: `The server's event v${e.streamVersion} (${e.eventType}) does not match its hash: the record was altered.` };
    }
    previous = e.hash;
  }
  const byId = new Map(events.map((e) => [e.eventId, e]));
  for (const l of local) {
    const s = byId.get(l.eventId);
    const same = s && s.streamVersion === l.streamVersion && s.eventType === l.eventType && canonicalJson(s.data) === canonicalJson(l.data);
    if (!same) {
      return { verified: false, checkedAt, firstBrokenEventId: l.eventId, message: `This device's copy of v${l.streamVersion} (${l.eventType}) differs from the server's audited record.` };
    }
  }
  return {
    verified: true,
    checkedAt,
    firstBrokenEventId: null,
    message: `${events.length} server event(s) form an unbroken hash chain; this device's ${local.length} synced event(s) match it.`,
  };
}
