import { ChainVerifier } from './append-logic.js';
import { GENESIS_HASH } from '../hash.js';
import type { ChainFilter, ChainReport } from '../repository.js';
import type { Op, SnapshotSession } from './port.js';
import { toServerEvent } from './rows.js';

const BATCH = 1000;

/**
 * Walk every stored event of the filter in (tenant, stream, version) order, then compare each
 * stream head with the last stored event; stop at the first break. Run on one snapshot, so a
 * concurrent append is not a "break".
 */
export function* walkChain(s: SnapshotSession, filter: ChainFilter): Op<ChainReport> {
  const v = new ChainVerifier();
  yield* walk(s, filter, v);
  return { ok: v.firstBroken === null, streamsChecked: v.streamsChecked, eventsChecked: v.eventsChecked, firstBroken: v.firstBroken };
}

function* walk(s: SnapshotSession, filter: ChainFilter, v: ChainVerifier): Op<void> {
  let cursor = { tenantId: '', streamId: '', version: 0 };
  for (;;) {
    const rows = yield* s.chainPage(filter, cursor, BATCH);
    if (rows.length === 0) break;
    for (const r of rows) {
      // A stream that does not start at version 1 had its first events archived: its chain resumes at the archived anchor.
      const starts = r.tenant_id !== v.current.tenantId || r.aggregate_id !== v.current.streamId;
      const anchor = starts && r.version !== 1 && s.archivedAnchor ? yield* s.archivedAnchor(r.tenant_id, r.aggregate_id) : null;
      if (!v.check(toServerEvent(r), anchor)) return;
    }
    const last = rows[rows.length - 1]!;
    cursor = { tenantId: last.tenant_id, streamId: last.aggregate_id, version: last.version };
  }
  let headCursor = { tenantId: '', streamId: '' };
  for (;;) {
    const heads = yield* s.headPage(filter, headCursor, BATCH);
    if (heads.length === 0) break;
    for (const h of heads) {
      if (!v.checkHead(h.tenantId, h.streamId, h.version, h.lastHash, h.lastEvent?.version ?? 0, h.lastEvent?.hash ?? GENESIS_HASH)) return;
    }
    const last = heads[heads.length - 1]!;
    headCursor = { tenantId: last.tenantId, streamId: last.streamId };
  }
}
