import { foldOrderView } from './append-logic.js';
import type { Op, WriteSession } from './port.js';
import { toFoldInput, type EventRow } from './rows.js';

const BATCH = 1000;

/** Group a page of events by stream, in order of first appearance, keeping each stream's order. */
export function groupByStream(rows: readonly EventRow[]): EventRow[][] {
  const groups = new Map<string, EventRow[]>();
  for (const r of rows) {
    const k = `${r.tenant_id}\u0000${r.aggregate_id}`;
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  }
  return [...groups.values()];
}

/**
 * Drop the read model of one tenant (all when null) and replay the Order log into it, a page of
 * events at a time, each stream's run of a page folded onto its stored row in one write.
 */
export function* rebuildOrders(s: WriteSession, tenantId: string | null): Op<{ eventsReplayed: number }> {
  yield* s.clearProjections(tenantId);
  let after = 0;
  let replayed = 0;
  for (;;) {
    const rows = yield* s.orderEventsAfter(tenantId, after, BATCH);
    if (rows.length === 0) break;
    for (const group of groupByStream(rows)) {
      const first = group[0]!;
      const prev = yield* s.projectionState(first.tenant_id, first.aggregate_id);
      yield* s.upsertProjection(first.tenant_id, foldOrderView(first.aggregate_id, prev, group.map(toFoldInput)));
    }
    replayed += rows.length;
    after = Number(rows[rows.length - 1]!.global_position);
  }
  return { eventsReplayed: replayed };
}
