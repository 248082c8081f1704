import type { ServerEvent } from '../../protocol/envelope.js';
import { formatPullCursor, parsePullCursor, type PullResponse, type ScopedPullQuery } from '../../protocol/sync-api.js';
import type {
  AppendCommand,
  AppendOutcome,
  ChainFilter,
  ChainReport,
  DashboardPage,
  DashboardQuery,
  EventRepository,
  OrderCounts,
  OrderView,
  PushOutcome,
  RelayCursor,
  RelayPage,
} from '../repository.js';
import { appendWork, pushWork, streamOrder } from './append-flow.js';
import { walkChain } from './chain-walk.js';
import type { PulledJson, PullFrom, StoreDialect } from './port.js';
import { rebuildOrders } from './rebuild.js';
import { publicEvent, publicEventJson, tallyOrders, toServerEvent, toView } from './rows.js';

/** A position (a number) or a cursor's text; a malformed cursor is a caller's bug (the HTTP layer checks it first). */
function pullFrom(from: number | string): PullFrom {
  if (typeof from === 'number') return { position: from };
  const cursor = parsePullCursor(from);
  if (!cursor) throw new TypeError(`not a pull cursor: ${JSON.stringify(from)}`);
  return { cursor };
}

/** The central event store: the flows written once, over a database dialect. */
export class EventStore implements EventRepository {
  readonly backend: 'sqlite' | 'pg';

  constructor(protected readonly dialect: StoreDialect) {
    this.backend = dialect.backend;
  }

  append(cmd: AppendCommand): Promise<AppendOutcome> {
    return this.dialect.writeTransaction(appendWork(cmd));
  }

  appendAll(cmds: AppendCommand[]): Promise<PushOutcome[]> {
    const order = this.dialect.locksHeadsInOrder ? streamOrder(cmds) : cmds.map((_, i) => i);
    return this.dialect.writeTransaction(pushWork(cmds, order));
  }

  /**
   * `from`: a position (devices from before cursors: answered in position order) or a cursor
   * (`v2.…`, answered in the dialect's pull order). See docs/architecture.md, gap-safe pulls.
   */
  async pull(tenantId: string, from: number | string, limit: number): Promise<PullResponse> {
    const start = pullFrom(from);
    const { rows, next } = await this.dialect.pullRows(tenantId, start, limit);
    const events = rows.map(publicEvent);
    const last = events[events.length - 1];
    const fromPosition = 'position' in start ? start.position : start.cursor.position;
    const page: PullResponse = { events, nextPosition: last ? last.globalPosition : fromPosition, hasMore: rows.length === limit };
    if (next) page.nextCursor = formatPullCursor(next);
    return page;
  }

  async pullText(tenantId: string, from: number | string, limit: number): Promise<{ text: string; events: number }> {
    const start = pullFrom(from);
    const page = await this.pulledJson(tenantId, start, limit);
    const fromPosition = 'position' in start ? start.position : start.cursor.position;
    // The keys in `pull`'s order.
    let text = `{"events":[${page.json}],"nextPosition":${page.lastPosition ?? fromPosition},"hasMore":${page.events === limit}`;
    if (page.next) text += `,"nextCursor":${JSON.stringify(formatPullCursor(page.next))}`;
    return { text: `${text}}`, events: page.events };
  }

  /** The page's events as JSON text: built by the database when its dialect can, else here from the rows. */
  private async pulledJson(tenantId: string, start: PullFrom, limit: number): Promise<PulledJson> {
    if (this.dialect.pullJson) return this.dialect.pullJson(tenantId, start, limit);
    const { rows, next } = await this.dialect.pullRows(tenantId, start, limit);
    const last = rows[rows.length - 1];
    return { json: rows.map(publicEventJson).join(','), events: rows.length, lastPosition: last ? Number(last.global_position) : null, next };
  }

  /**
   * The window ends at the settled head (or `upTo`): every position up to it is committed or
   * rolled back for good, so nextPosition may pass over events out of scope without ever passing
   * one that commits later. (Not the cursor order: a scope's checkpoint stays a position.)
   */
  async scopedPull(tenantId: string, q: ScopedPullQuery, now = new Date()): Promise<PullResponse> {
    const head = await this.dialect.settledHead();
    const upTo = Math.max(q.after, Math.min(q.upTo ?? head, head));
    const since = q.scope.recentDays === null ? null : new Date(now.getTime() - q.scope.recentDays * 86_400_000).toISOString();
    const rows = await this.dialect.scopedPullRows(tenantId, {
      after: q.after,
      upTo,
      limit: q.limit,
      customers: q.scope.customers,
      since,
      streams: q.scope.streams,
    });
    const events = rows.map(publicEvent);
    const full = rows.length === q.limit;
    return { events, nextPosition: full ? events[events.length - 1]!.globalPosition : upTo, hasMore: full };
  }

  /**
   * Every tenant's events by cursor (the relay's checkpoint is the opaque nextCursor). A numeric
   * checkpoint, stored before cursors, is a position: pulled by position (under the drain lock)
   * until that hands out a cursor, as an older device is.
   */
  async pullAll(cursor: RelayCursor | null, limit: number): Promise<RelayPage> {
    const start: PullFrom = cursor === null ? { cursor: { txid: '0', position: 0 } } : /^\d+$/.test(cursor) ? { position: Number(cursor) } : pullFrom(cursor);
    const { rows, next } = await this.dialect.pullRows(null, start, limit);
    const events = rows.map(toServerEvent);
    const last = events[events.length - 1];
    const after = next ? formatPullCursor(next) : last ? String(last.globalPosition) : cursor;
    return { events, next: after, hasMore: rows.length === limit };
  }

  async relayCheckpoint(): Promise<RelayCursor | null> {
    return this.dialect.relayCheckpoint();
  }

  async saveRelayCheckpoint(cursor: RelayCursor): Promise<void> {
    await this.dialect.saveRelayCheckpoint(cursor);
  }

  async readStream(tenantId: string, streamId: string, afterVersion = 0, limit?: number): Promise<ServerEvent[]> {
    return (await this.dialect.streamRows(tenantId, streamId, afterVersion, limit)).map(publicEvent);
  }

  async getOrder(tenantId: string, orderId: string): Promise<OrderView | null> {
    const row = await this.dialect.projectionRow(tenantId, orderId);
    return row ? toView(row) : null;
  }

  async listOrders(tenantId: string, q: DashboardQuery): Promise<DashboardPage> {
    const { rows, total, position } = await this.dialect.dashboard(tenantId, q);
    return { orders: rows.map(toView), total, position };
  }

  async countOrders(tenantId: string): Promise<OrderCounts> {
    return tallyOrders(await this.dialect.orderCounts(tenantId));
  }

  rebuildProjections(tenantId?: string): Promise<{ eventsReplayed: number }> {
    return this.dialect.rebuildTransaction((s) => rebuildOrders(s, tenantId ?? null));
  }

  /**
   * Rebuild every tenant's read model when it was built by another fold version (an upgrade that
   * folds some event differently), then record this one. Runs at start; a no-op when current.
   */
  ensureReadModel(version: number): Promise<{ rebuilt: boolean; eventsReplayed: number }> {
    return this.dialect.rebuildTransaction(function* (s) {
      if ((yield* s.readModelVersion()) === version) return { rebuilt: false, eventsReplayed: 0 };
      const { eventsReplayed } = yield* rebuildOrders(s, null);
      yield* s.setReadModelVersion(version);
      return { rebuilt: true, eventsReplayed };
    });
  }

  verifyChain(filter: ChainFilter): Promise<ChainReport> {
    return this.dialect.snapshot((s) => walkChain(s, filter));
  }

  async visibleHead(): Promise<string> {
    return this.dialect.visibleHead();
  }

  async ping(): Promise<void> {
    await this.dialect.ping();
  }

  async close(): Promise<void> {
    await this.dialect.close();
  }
}
