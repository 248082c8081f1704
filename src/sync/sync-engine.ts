import { ORDER_STREAM_TYPE } from '../domain/events.js';
import { describeIssues, zodIssues, type Issue } from '../domain/issues.js';
import type { NewEvent, ServerEvent } from '../protocol/envelope.js';
import {
  MAX_EVENTS_PER_APPEND,
  MAX_PULL_LIMIT,
  MAX_STREAM_PAGE_LIMIT,
  MAX_STREAMS_PER_PUSH,
  type AppendResponse,
  type ConflictResponse,
  type PushRequest,
} from '../protocol/sync-api.js';
import type { ReplicatedEvent } from '../store/event-log.js';
import type { LocalStore } from '../store/local-store.js';
import type { EvictedStreams } from '../store/evicted-streams.js';
import { PULL_CURSOR_START, SyncScope, type PullResponse } from '../protocol/sync-api.js';
import { evictClosedOrders, type RetentionReport } from './retention.js';
import { ScopeRepository, scopeWidening, type ScopeFilter } from './scope.js';
import { InvalidScopeError, ServerError, SyncInvariantError } from './errors.js';
import type { SyncClient } from './http-client.js';
import type { OrdersChangedListener, Outbox } from './outbox.js';
import type { PendingEventRecord, PullCheckpoint, SyncRepository } from './sync-repository.js';
import { BLOCKED_REASON, readVerdict, type QuarantineRepository } from './quarantine.js';
import { takeBootstrap, type BootstrapOutcome, type BootstrapTarget } from './bootstrap.js';

/**
 * Where a plain pull's page leaves the checkpoint: the server's cursor when it handed one (a
 * position pull gets one once it has caught up), else the position reached.
 */
function advance(after: PullCheckpoint, page: PullResponse): PullCheckpoint {
  return page.nextCursor ?? (typeof after === 'number' ? Math.max(after, page.nextPosition) : after);
}

export interface SyncProgress {
  phase: 'push' | 'pull' | 'rebase';
  done: number;
  total: number | null;
}

/**
 * The device's inline views (projections), as a pull far behind the server may defer them: the
 * events of a first sync go into the log without a projection pass per page, and the views are
 * built once at the end (the runner's catch-up or rebuild). `defer` detaches them and returns
 * the step that builds them and attaches them again; it runs when the pull ends, failed or not.
 */
export interface DeferrableViews {
  defer(): () => Promise<void>;
}

export interface SyncEngineOptions {
  store: LocalStore;
  outbox: Outbox;
  client: SyncClient | null;
  /** Defaults to the outbox's listener. Called inside the transaction that changed the orders. */
  onOrdersChanged?: OrdersChangedListener;
  /** Most events per push request (the server's body limit is far above the default). */
  maxEventsPerPush?: number;
  pullLimit?: number;
  /** Push/pull rounds per syncOnce: a rebase or a lost response costs one more round. */
  maxRounds?: number;
  /** The time the retention window is measured from (default: now). */
  clock?: () => Date;
  /** Inline views a pull more than one page behind builds once at the end instead of per page (absent: always inline). */
  views?: DeferrableViews;
  /** Where a blank device takes in the server's bootstrap before it pulls (absent: it pulls everything). */
  bootstrap?: BootstrapTarget;
}

export interface SyncReport {
  pushedEvents: number;
  confirmedCommands: number;
  pulledEvents: number;
  rebasedOrders: number;
  rejectedCommands: string[];
  /**
   * Streams the server refused for another reason than a version conflict. A BAD_REQUEST (the
   * event contract) moves the named commands to the conflict inbox; an IDEMPOTENCY_CONFLICT stays
   * pending until the pull brings what the server already has.
   */
  streamErrors: { streamId: string; error: string; message: string }[];
  rounds: number;
  /** Commands still pending after this sync (0 when everything converged). */
  pending: number;
  /** Closed orders whose local events this sync's retention pass dropped (when retention is on). */
  retention?: RetentionReport;
  /** The bootstrap this sync took in (its events count in pulledEvents), or why it pulled instead of taking one. */
  bootstrap?: BootstrapOutcome;
}

interface PlannedAppend {
  streamId: string;
  expectedVersion: number;
  events: PendingEventRecord[];
  /** The (command, attempt) pairs whose events this append carries. */
  commands: Map<string, number>;
}

/**
 * Push requests sent ahead of the one being acknowledged. With one, the server waited while the
 * device planned and serialised the next request: 100k events pushed in 10.5 s, with two in
 * 7.2–7.35 s (interleaved, 2026-12-01; three gave no more, the server is then the bound).
 */
const PUSH_REQUESTS_IN_FLIGHT = 2;

const emptyReport = (): SyncReport => ({
  pushedEvents: 0,
  confirmedCommands: 0,
  pulledEvents: 0,
  rebasedOrders: 0,
  rejectedCommands: [],
  streamErrors: [],
  rounds: 0,
  pending: 0,
});

const toNewEvent = (p: PendingEventRecord): NewEvent => ({
  eventId: p.eventId,
  eventType: p.eventType,
  schemaVersion: p.schemaVersion,
  data: p.data,
  metadata: p.metadata,
});

/**
 * Moves the outbox to the server and the server's events to the device. Every state change
 * (acknowledgement, pulled page + checkpoint, conflict + rebase) is one SQLite transaction,
 * and every request is safe to repeat, so a crash or a lost response at any point converges.
 */
export class SyncEngine {
  private readonly store: LocalStore;
  private readonly outbox: Outbox;
  private readonly repo: SyncRepository;
  private readonly quarantine: QuarantineRepository;
  private client: SyncClient | null;
  private readonly changed: OrdersChangedListener | undefined;
  private readonly maxEventsPerPush: number;
  private readonly pullLimit: number;
  private readonly maxRounds: number;
  private running = false;
  private readonly views: DeferrableViews | undefined;
  private readonly bootstrap: BootstrapTarget | undefined;
  /** Set while a pull has the views deferred: pages refresh only the orders that need it now. */
  private deferred = false;
  /** The device's sync scope, the orders kept outside it, and the backfills owed. */
  readonly scope: ScopeRepository;
  private readonly evicted: EvictedStreams;
  private readonly clock: () => Date;

  constructor(opts: SyncEngineOptions) {
    this.store = opts.store;
    this.outbox = opts.outbox;
    this.repo = opts.outbox.repo;
    this.quarantine = opts.outbox.quarantine;
    this.client = opts.client;
    this.changed = opts.onOrdersChanged ?? opts.outbox.onOrdersChanged;
    this.maxEventsPerPush = opts.maxEventsPerPush ?? 2000;
    this.pullLimit = Math.min(opts.pullLimit ?? MAX_PULL_LIMIT, MAX_PULL_LIMIT);
    this.maxRounds = opts.maxRounds ?? 5;
    this.scope = new ScopeRepository(opts.store.db);
    this.evicted = opts.store.orders.evicted;
    this.clock = opts.clock ?? (() => new Date());
    this.views = opts.views;
    this.bootstrap = opts.bootstrap;
  }

  /**
   * Change what this device pulls. Widening owes the newly included orders their history before
   * the cursor: a bounded backfill pull (or, back to the full replica, a pull from the start;
   * what the device holds is skipped). Narrowing drops nothing: pending commands and touched or
   * opened orders stay followed, and the orders held keep their last synced state.
   */
  setScope(input: SyncScope): void {
    const parsed = SyncScope.safeParse(input);
    if (!parsed.success) throw new InvalidScopeError(`invalid sync scope: ${describeIssues(zodIssues(parsed.error))}`);
    const next = parsed.data;
    const at = new Date().toISOString();
    this.store.db
      .transaction(() => {
        const widened = scopeWidening(this.scope.scope(), next);
        this.scope.saveScope(next, at);
        const upTo = this.repo.checkpoint();
        if (widened === 'everything') {
          this.repo.setCheckpoint(PULL_CURSOR_START);
          this.scope.saveBackfills([]);
        } else if (widened !== null && typeof upTo === 'number' && upTo > 0) {
          this.scope.saveBackfills([...this.scope.backfills(), { filter: widened, after: 0, upTo }]);
        }
      })
      .immediate();
  }

  /**
   * Open an order from the server that this device does not follow (outside its scope) and keep
   * it: its events come into the log, and later pulls include it. Returns the events fetched
   * (0 when it was already up to date), or null when the server has no such order (in this tenant).
   */
  async openRemote(streamId: string): Promise<{ fetched: number } | null> {
    const client = this.requireClient();
    const events = await this.streamAfter(client, streamId, this.store.log.streamVersion(streamId));
    if (events === null) return null;
    this.store.db
      .transaction(() => {
        this.scope.keep(streamId, new Date().toISOString());
        const applied = this.applyServerEvents(events);
        if (applied.orders.length > 0) this.changed?.(applied.orders);
      })
      .immediate();
    return { fetched: events.length };
  }

  /** A stream's whole history from the server, not stored (the history a bounded device dropped). Null: no such stream. */
  async remoteHistory(streamId: string): Promise<ServerEvent[] | null> {
    return this.streamAfter(this.requireClient(), streamId, 0);
  }

  /** The server's events of a stream after a version, every page; null when the stream does not exist there. */
  private async streamAfter(client: SyncClient, streamId: string, afterVersion: number, toVersion = Number.MAX_SAFE_INTEGER): Promise<ServerEvent[] | null> {
    const events: ServerEvent[] = [];
    let after = afterVersion;
    while (after < toVersion) {
      let page;
      try {
        page = await client.streamEvents(streamId, { afterVersion: after, limit: Math.min(this.pullLimit, MAX_STREAM_PAGE_LIMIT) });
      } catch (err) {
        if (after === 0 && err instanceof ServerError && err.status === 404) return null;
        throw err;
      }
      for (const e of page.events) if (e.streamVersion <= toVersion) events.push(e);
      const last = page.events[page.events.length - 1];
      if (!last || !page.hasMore) break;
      after = last.streamVersion;
    }
    return events;
  }

  setClient(client: SyncClient | null): void {
    this.client = client;
  }

  hasClient(): boolean {
    return this.client !== null;
  }

  checkpoint(): PullCheckpoint {
    return this.repo.checkpoint();
  }

  /** Push, then pull until caught up; repeat while a round made pushable progress (bounded). */
  async syncOnce(opts: { onProgress?: (p: SyncProgress) => void } = {}): Promise<SyncReport> {
    if (this.running) throw new Error('a sync is already running on this engine; the scheduler runs one at a time');
    this.running = true;
    try {
      const report = emptyReport();
      this.releaseQuarantine(report);
      // The bootstrap's events count in the first pull's progress.
      const bootstrapped = { n: 0 };
      await this.bootstrapInto(report, bootstrapped, opts.onProgress);
      for (let round = 1; round <= this.maxRounds; round++) {
        report.rounds = round;
        const before = { pending: this.repo.pendingCount(), pulled: report.pulledEvents, rebased: report.rebasedOrders };
        await this.pushInto(report, opts.onProgress);
        await this.pullInto(report, opts.onProgress, round === 1 ? bootstrapped : undefined);
        const after = this.repo.pendingCount();
        // Done when nothing is pending, or when this round changed nothing a new push could use.
        if (after === 0) break;
        const progressed = after < before.pending || report.pulledEvents > before.pulled || report.rebasedOrders > before.rebased;
        if (!progressed) break;
      }
      report.pending = this.repo.pendingCount();
      const days = this.scope.retentionDays();
      if (days !== null) report.retention = evictClosedOrders(this.store, this.repo, this.quarantine, { retentionDays: days, now: this.clock() });
      return report;
    } finally {
      this.running = false;
    }
  }

  async push(opts: { onProgress?: (p: SyncProgress) => void } = {}): Promise<SyncReport> {
    const report = emptyReport();
    await this.pushInto(report, opts.onProgress);
    report.pending = this.repo.pendingCount();
    return report;
  }

  async pull(opts: { onProgress?: (p: SyncProgress) => void } = {}): Promise<SyncReport> {
    const report = emptyReport();
    const done = { n: 0 };
    await this.bootstrapInto(report, done, opts.onProgress);
    await this.pullInto(report, opts.onProgress, done);
    report.pending = this.repo.pendingCount();
    return report;
  }

  private requireClient(): SyncClient {
    if (!this.client) throw new Error('no sync server configured');
    return this.client;
  }

  /**
   * The push requests, planned a window of orders at a time (oldest pending command first) so
   * only the events about to be sent are read and parsed: one query for the window's current
   * pending events, one for their confirmed versions.
   */
  private *plannedBatches(): Generator<PlannedAppend[]> {
    // An order with quarantined events is behind the server: its commands wait (they would only conflict).
    const all = this.repo.ordersWithPending();
    const held = this.quarantine.streamsAmong(all);
    const orders = held.size > 0 ? all.filter((id) => !held.has(id)) : all;
    let batch: PlannedAppend[] = [];
    let size = 0;
    for (let i = 0; i < orders.length; i += MAX_STREAMS_PER_PUSH) {
      for (const plan of this.planAppends(orders.slice(i, i + MAX_STREAMS_PER_PUSH))) {
        if (batch.length > 0 && (batch.length >= MAX_STREAMS_PER_PUSH || size + plan.events.length > this.maxEventsPerPush)) {
          yield batch;
          batch = [];
          size = 0;
        }
        batch.push(plan);
        size += plan.events.length;
      }
    }
    if (batch.length > 0) yield batch;
  }

  /** One append per order with pending commands, carrying the current attempts in command order. */
  private planAppends(orderIds: readonly string[]): PlannedAppend[] {
    const byOrder = new Map<string, PendingEventRecord[]>(orderIds.map((id) => [id, []]));
    for (const e of this.repo.currentPendingEventsOfOrders(orderIds)) byOrder.get(e.orderId)!.push(e);
    const versions = this.repo.streamVersions(orderIds);
    const plans: PlannedAppend[] = [];
    for (const [orderId, events] of byOrder) {
      if (events.length === 0) continue;
      const plan: PlannedAppend = { streamId: orderId, expectedVersion: versions.get(orderId) ?? 0, events: [], commands: new Map() };
      const perCommand = new Map<string, number>();
      for (const e of events) perCommand.set(e.commandId, (perCommand.get(e.commandId) ?? 0) + 1);
      for (const e of events) {
        // Cut only between commands: a command's events are one atomic unit.
        if (!plan.commands.has(e.commandId) && plan.events.length > 0 && plan.events.length + perCommand.get(e.commandId)! > MAX_EVENTS_PER_APPEND) break;
        plan.events.push(e);
        plan.commands.set(e.commandId, e.attempt);
      }
      plans.push(plan);
    }
    return plans;
  }

  private async pushInto(report: SyncReport, onProgress?: (p: SyncProgress) => void): Promise<void> {
    const total = this.repo.currentPendingEventCount();
    if (total === 0) return;
    const client = this.requireClient();
    let done = 0;
    onProgress?.({ phase: 'push', done, total });
    // Pipelined: the next requests (other streams: windows never share an order) are planned and
    // sent before this response is acknowledged, so the device's planning and acknowledgement
    // work overlaps the server's. A crash with requests in flight is the same as with one: they
    // are retried with the same event ids and answered with the original results.
    const send = (batch: PlannedAppend[]) => {
      const request: PushRequest = {
        appends: batch.map((p) => ({
          streamId: p.streamId,
          streamType: ORDER_STREAM_TYPE,
          expectedVersion: p.expectedVersion,
          events: p.events.map(toNewEvent),
        })),
      };
      const response = client.push(request);
      // Awaited below; until then a failure must not count as unhandled.
      response.catch(() => undefined);
      return { batch, response };
    };
    const batches = this.plannedBatches();
    const inFlight: ReturnType<typeof send>[] = [];
    const fill = () => {
      while (inFlight.length < PUSH_REQUESTS_IN_FLIGHT) {
        const next = batches.next();
        if (next.done) return;
        inFlight.push(send(next.value));
      }
    };
    fill();
    while (inFlight.length > 0) {
      const { batch, response: answer } = inFlight.shift()!;
      const response = await answer;
      fill();
      if (response.results.length !== batch.length) {
        throw new SyncInvariantError(`push answered ${response.results.length} results for ${batch.length} appends`);
      }
      // Conflict answers are bounded: fetch what they left out first, so each order is rebased
      // once, on its whole current stream, in the transaction below.
      const missing = new Map<number, readonly ServerEvent[]>();
      for (const [i, result] of response.results.entries()) {
        if (result.status === 'conflict') missing.set(i, await this.missingEventsOf(client, result.conflict));
      }
      const rebased: string[] = [];
      this.store.db
        .transaction(() => {
          const touched = new Set<string>();
          const acked: { plan: PlannedAppend; result: AppendResponse }[] = [];
          response.results.forEach((result, i) => {
            const plan = batch[i]!;
            if (result.status === 'ok') {
              if (result.result.streamId !== plan.streamId) throw new SyncInvariantError(`push result ${i} is for ${result.result.streamId}, not ${plan.streamId}`);
              acked.push({ plan, result: result.result });
              report.pushedEvents += plan.events.length;
              touched.add(plan.streamId);
            } else if (result.status === 'conflict') {
              const applied = this.applyServerEvents(missing.get(i)!);
              report.confirmedCommands += applied.confirmed;
              report.rejectedCommands.push(...applied.rejected);
              report.rebasedOrders += applied.rebased.length;
              rebased.push(...applied.rebased);
              for (const id of applied.orders) touched.add(id);
            } else {
              report.streamErrors.push({ streamId: result.streamId, error: result.error, message: result.message });
              if (result.error === 'BAD_REQUEST') {
                const refused = this.refuse(plan, result);
                report.rejectedCommands.push(...refused.rejected);
                if (refused.rebased) rebased.push(plan.streamId);
                touched.add(plan.streamId);
              }
            }
          });
          report.confirmedCommands += this.acknowledge(acked);
          if (touched.size > 0) this.changed?.([...touched]);
        })
        .immediate();
      if (rebased.length > 0) onProgress?.({ phase: 'rebase', done: rebased.length, total: rebased.length });
      done += batch.reduce((n, p) => n + p.events.length, 0);
      onProgress?.({ phase: 'push', done, total });
    }
  }

  /** A conflict's missing events, with the pages the server's bounds left out fetched from the stream. */
  private async missingEventsOf(client: SyncClient, conflict: ConflictResponse): Promise<readonly ServerEvent[]> {
    if (conflict.missingEventsComplete) return conflict.missingEvents;
    if (conflict.continueAfterVersion === undefined) {
      throw new SyncInvariantError(`conflict on ${conflict.streamId} is incomplete but names no version to continue after`);
    }
    const events = [...conflict.missingEvents];
    let after = conflict.continueAfterVersion;
    while (after < conflict.currentVersion) {
      const page = await client.streamEvents(conflict.streamId, { afterVersion: after, limit: Math.min(this.pullLimit, MAX_STREAM_PAGE_LIMIT) });
      const first = page.events[0];
      if (!first || first.streamVersion !== after + 1) {
        throw new SyncInvariantError(`stream ${conflict.streamId}: expected version ${after + 1} after the conflict answer, got ${first?.streamVersion ?? 'nothing'}`);
      }
      events.push(...page.events);
      after = page.events[page.events.length - 1]!.streamVersion;
      if (!page.hasMore) break;
    }
    return events;
  }

  /**
   * Quarantined events that this build can read now (after an app update) go into the log, in
   * stream order, and the order's pending commands are re-decided on top; the rest stay, with
   * the current reason of the first one of each stream. Runs at the start of every sync, so
   * an updated app applies them on its first sync after start.
   */
  releaseQuarantine(report?: SyncReport): number {
    const streams = this.quarantine.streams();
    if (streams.length === 0) return 0;
    let released = 0;
    this.store.db
      .transaction(() => {
        const changed: string[] = [];
        for (const streamId of streams) {
          let applied = 0;
          for (const e of this.quarantine.eventsOf(streamId)) {
            const verdict = readVerdict(e);
            if (!verdict.ok) {
              this.quarantine.setReason(e.eventId, verdict.kind, verdict.reason);
              break;
            }
            if (this.store.log.streamVersion(streamId) !== e.streamVersion - 1) break;
            this.store.log.append(
              streamId,
              [{ eventId: e.eventId, eventType: e.eventType, schemaVersion: e.schemaVersion, data: e.data, metadata: e.metadata }],
              { expectedVersion: e.streamVersion - 1, streamType: e.streamType, allowUnknownTypes: true, recordedAt: e.recordedAt },
            );
            this.quarantine.remove(e.eventId);
            applied++;
          }
          if (applied === 0) continue;
          released += applied;
          changed.push(streamId);
          if (this.repo.pendingCommandsOf(streamId).length > 0) {
            const summary = this.outbox.rebaseOrder(streamId);
            report?.rejectedCommands.push(...summary.rejected);
          }
        }
        if (changed.length > 0) this.changed?.(changed);
      })
      .immediate();
    return released;
  }

  /**
   * The server refused this append for its content (the event contract): resending it cannot
   * succeed, so the command(s) whose events the server named go to the conflict inbox with its
   * reason (every command of the append when it named none), and the order's other pending
   * commands are re-decided without them. An IDEMPOTENCY_CONFLICT is not handled here: it clears
   * itself when the pull brings the events the server already has.
   */
  private refuse(plan: PlannedAppend, result: { error: string; message: string; issues?: Issue[] | undefined }): { rejected: string[]; rebased: boolean } {
    const named = new Set<string>();
    for (const issue of result.issues ?? []) {
      const m = /^appends\.\d+\.events\.(\d+)(\.|$)/.exec(issue.path);
      const event = m ? plan.events[Number(m[1])] : undefined;
      if (event) named.add(event.commandId);
    }
    const faulty = named.size > 0 ? [...named] : [...plan.commands.keys()];
    const at = new Date().toISOString();
    const message = `the server refused this change: ${result.message}`.slice(0, 2000);
    for (const commandId of faulty) this.repo.reject(commandId, { code: 'REFUSED_BY_SERVER', message }, [], at);
    const summary = this.repo.pendingCommandsOf(plan.streamId).length > 0 ? this.outbox.rebaseOrder(plan.streamId) : null;
    return { rejected: [...faulty, ...(summary?.rejected ?? [])], rebased: summary !== null };
  }

  /**
   * The server stored these appends: put their events into the confirmed log at the server's
   * versions, save the global positions and mark the commands synced, with a handful of
   * statements for the whole response (the caller's transaction). If a local stream is not
   * where its append started (a pull got there first), the pull path already did or will do this.
   */
  private acknowledge(acked: readonly { plan: PlannedAppend; result: AppendResponse }[]): number {
    if (acked.length === 0) return 0;
    const confirmed = this.repo.confirmedAmong(acked.flatMap((a) => a.plan.events.map((e) => e.eventId)));
    const recordedAt = new Date().toISOString();
    const positions: { eventId: string; globalPosition: number; hash: null; serverRecordedAt: null }[] = [];
    const synced: [string, number][] = [];
    for (const { plan, result } of acked) {
      const byId = new Map(result.events.map((e) => [e.eventId.toLowerCase(), e]));
      const fresh = plan.events.filter((e) => !confirmed.has(e.eventId));
      if (fresh.length > 0) {
        const first = byId.get(fresh[0]!.eventId.toLowerCase());
        if (!first) throw new SyncInvariantError(`push result for ${plan.streamId} lacks event ${fresh[0]!.eventId}`);
        if (this.store.log.streamVersion(plan.streamId) !== first.streamVersion - 1) continue;
        this.store.log.append(plan.streamId, fresh.map(toNewEvent), {
          expectedVersion: first.streamVersion - 1,
          streamType: ORDER_STREAM_TYPE,
          allowUnknownTypes: true,
          recordedAt,
        });
      }
      for (const e of plan.events) {
        const ack = byId.get(e.eventId.toLowerCase());
        if (ack) positions.push({ eventId: e.eventId, globalPosition: ack.globalPosition, hash: null, serverRecordedAt: null });
      }
      for (const pair of plan.commands) synced.push(pair);
    }
    this.repo.savePositions(positions);
    return this.repo.markSynced(synced, recordedAt);
  }

  /**
   * A device that has never synced takes the server's bootstrap, if one applies (`takeBootstrap`),
   * once per sync or pull, before anything else. A sync does this before it pushes: a device that
   * worked offline first would otherwise send its commands, hold something the server has seen,
   * and pull the whole log instead.
   */
  private async bootstrapInto(report: SyncReport, done: { n: number }, onProgress?: (p: SyncProgress) => void): Promise<void> {
    if (!this.bootstrap) return;
    const outcome = await takeBootstrap(this.requireClient(), this.bootstrap, () => this.blank(), (cursor) => this.repo.setCheckpoint(cursor));
    if (outcome) report.bootstrap = outcome;
    if (outcome?.used) {
      report.pulledEvents += outcome.events;
      done.n += outcome.events;
      onProgress?.({ phase: 'pull', done: done.n, total: null });
    }
  }

  private async pullInto(report: SyncReport, onProgress?: (p: SyncProgress) => void, done = { n: 0 }): Promise<void> {
    const client = this.requireClient();
    await this.pullBackfills(client, report, done, onProgress);
    // The next page of a plain pull is requested before this one is written, so the server
    // prepares it while the device stores (a first sync otherwise waited for each in turn). It is
    // used only if the checkpoint really moved to where it starts; otherwise it is dropped.
    type Requested = { after: PullCheckpoint; page: Promise<PullResponse>; abort: AbortController };
    let next: Requested | null = null;
    let finishViews: (() => Promise<void>) | null = null;
    let failure: { error: unknown } | null = null;
    const request = (after: PullCheckpoint): Requested => {
      const abort = new AbortController();
      const page = client.pull({ after, limit: this.pullLimit, signal: abort.signal });
      page.catch(() => {}); // awaited, or aborted and dropped: never an unhandled rejection
      return { after, page, abort };
    };
    try {
      for (;;) {
        const after = this.repo.checkpoint();
        const filter = this.scope.filter();
        let page: PullResponse;
        let moved: PullCheckpoint;
        if (filter === null) {
          // Checkpoints compare by value: a cursor's text or a position.
          const current: Requested = next !== null && next.after === after ? next : request(after);
          if (next !== null && next !== current) next.abort.abort();
          next = null;
          page = await current.page;
          moved = advance(after, page);
          if (page.hasMore && page.events.length > 0) next = request(moved);
          // A full page with more behind it: far behind (a first sync), so the views are built once at the end.
          if (page.hasMore && page.events.length > 0 && this.views && !this.deferred) {
            finishViews = this.views.defer();
            this.deferred = true;
          }
        } else {
          next?.abort.abort();
          next = null;
          // A scope pulls by position. A device switching from everything to a scope holds a
          // cursor: its scoped position starts over (the events it holds are skipped).
          const from = typeof after === 'number' ? after : 0;
          page = await this.scopedPage(client, filter, from);
          moved = Math.max(from, page.nextPosition);
        }
        const events = filter === null ? page.events : await this.withStreamBackfill(client, page.events);
        this.applyPage(events, report, done, onProgress, () => {
          // A second sync on another connection may have moved the checkpoint meanwhile.
          if (this.repo.checkpoint() !== after) return false;
          this.repo.setCheckpoint(moved);
          return true;
        });
        if (!page.hasMore || page.events.length === 0) break;
      }
    } catch (err) {
      failure = { error: err };
    } finally {
      // Stopped (an error, or a page that did not move the checkpoint): the page asked for in
      // advance is not needed.
      next?.abort.abort();
    }
    if (finishViews) {
      this.deferred = false;
      // The views catch up on what was stored, whatever stopped the pull; their own failure is
      // reported unless it would hide the pull's.
      try {
        await finishViews();
      } catch (err) {
        failure ??= { error: err };
      }
    }
    if (failure) throw failure.error;
  }

  /**
   * Has never synced (nothing but unsent commands) and follows the whole tenant from the first
   * cursor: a bootstrap may replace its replicated tables (its outbox is its own and stays).
   */
  private blank(): boolean {
    return this.repo.checkpoint() === PULL_CURSOR_START && this.scope.filter() === null && this.scope.backfills().length === 0 && this.repo.holdsNothingSent();
  }

  private scopedPage(client: SyncClient, filter: ScopeFilter, after: number, upTo?: number): Promise<PullResponse> {
    if (!client.scopedPull) throw new Error('this sync client cannot pull a scope');
    return client.scopedPull({ after, ...(upTo === undefined ? {} : { upTo }), limit: this.pullLimit, scope: filter });
  }

  /** The history owed to a widened scope: each backfill pulls its filter up to the cursor it was created at. */
  private async pullBackfills(client: SyncClient, report: SyncReport, done: { n: number }, onProgress?: (p: SyncProgress) => void): Promise<void> {
    for (;;) {
      const backfill = this.scope.backfills()[0];
      if (!backfill) return;
      const page = await this.scopedPage(client, backfill.filter, backfill.after, backfill.upTo);
      const events = await this.withStreamBackfill(client, page.events);
      this.applyPage(events, report, done, onProgress, () => {
        const [current, ...rest] = this.scope.backfills();
        if (!current || current.after !== backfill.after || current.upTo !== backfill.upTo) return false;
        const finished = !page.hasMore || page.events.length === 0;
        this.scope.saveBackfills(finished ? rest : [{ ...current, after: page.nextPosition }, ...rest]);
        return true;
      });
    }
  }

  /** Apply one pulled page and move its cursor (`advance`: false when another sync moved it first), in one transaction. */
  private applyPage(
    events: readonly ServerEvent[],
    report: SyncReport,
    done: { n: number },
    onProgress: ((p: SyncProgress) => void) | undefined,
    advance: () => boolean,
  ): void {
    let rebased: string[] = [];
    this.store.db
      .transaction(() => {
        if (!advance()) return;
        const applied = this.applyServerEvents(events);
        report.confirmedCommands += applied.confirmed;
        report.rejectedCommands.push(...applied.rejected);
        report.rebasedOrders += applied.rebased.length;
        rebased = applied.rebased;
        // Deferred views build every order at the end; only orders with pending commands or
        // quarantined events need their overlay now (the outbox's view of them changed).
        const changed = this.deferred ? applied.attention : applied.orders;
        if (changed.length > 0) this.changed?.(changed);
      })
      .immediate();
    report.pulledEvents += events.length;
    done.n += events.length;
    if (rebased.length > 0) onProgress?.({ phase: 'rebase', done: rebased.length, total: rebased.length });
    onProgress?.({ phase: 'pull', done: done.n, total: null });
  }

  /**
   * A scoped page can start a stream in the middle: the stream entered the scope after the
   * cursor passed its earlier events (it changed recently, or was opened while a pull ran).
   * Its missing versions come first, from its stream read, so the log stays gap-free.
   */
  private async withStreamBackfill(client: SyncClient, events: readonly ServerEvent[]): Promise<readonly ServerEvent[]> {
    const first = new Map<string, ServerEvent>();
    for (const e of events) if (!first.has(e.streamId)) first.set(e.streamId, e);
    if (first.size === 0) return events;
    const held = this.quarantine.streamsAmong([...first.keys()]);
    const fill: ServerEvent[] = [];
    for (const [streamId, e] of first) {
      if (held.has(streamId)) continue;
      const local = this.store.log.streamVersion(streamId);
      if (e.streamVersion <= local + 1) continue;
      fill.push(...((await this.streamAfter(client, streamId, local, e.streamVersion - 1)) ?? []));
    }
    if (fill.length === 0) return events;
    const ids = new Set(fill.map((e) => e.eventId));
    return [...fill, ...events.filter((e) => !ids.has(e.eventId))];
  }

  /**
   * Bring server events into the confirmed log (caller's transaction), in order. Already-known
   * events only get their server coordinates. An event of a current pending attempt confirms
   * that command (its push response was lost); any other event on an order with pending
   * commands means those were decided on an old state: the order is rebased.
   */
  private applyServerEvents(events: readonly ServerEvent[]): { confirmed: number; rejected: string[]; rebased: string[]; orders: string[]; attention: string[] } {
    const own = new Map<string, number>();
    const foreignOn = new Set<string>();
    const orders = new Set<string>();
    // Events a bounded device dropped (closed orders past retention) are not taken in again.
    const evicted = this.evicted.versionsAmong([...new Set(events.map((e) => e.streamId))]);
    if (evicted.size > 0) events = events.filter((e) => e.streamVersion > (evicted.get(e.streamId) ?? 0));
    if (events.length === 0) return { confirmed: 0, rejected: [], rebased: [], orders: [], attention: [] };
    // A few set-based lookups for the whole page instead of several queries per event.
    const ids = events.map((e) => e.eventId);
    const streams = [...new Set(events.map((e) => e.streamId))];
    // Each stream's version as the log holds it, advanced as the page's events are taken in:
    // every event must continue its stream (one query for the page, not one per stream run).
    const versions = this.repo.streamVersions(streams);
    // Only an event at or below its stream's version can be in the log already (an own event,
    // stored when its push was acknowledged): a first sync looks none up.
    const known = this.repo.confirmedAmong(events.filter((e) => e.streamVersion <= versions.get(e.streamId)!).map((e) => e.eventId));
    const quarantined = this.quarantine.idsAmong(ids);
    const blocked = this.quarantine.streamsAmong(streams);
    const at = new Date().toISOString();
    const mine = this.repo.pendingAmong(ids);
    const withPending = this.repo.ordersWithPendingAmong(streams);
    const take: ReplicatedEvent[] = [];

    // Inline projections see the whole page at once (same transaction), before the outbox reacts.
    this.store.log.withHooksBatched(() => {
      for (const e of events) {
        if (known.has(e.eventId) || quarantined.has(e.eventId)) continue;
        // An event this build cannot read is kept aside, and so is everything after it on its
        // stream; every other stream goes on (the pull checkpoint moves past them all).
        const verdict = blocked.has(e.streamId) ? ({ ok: false, kind: 'blocked', reason: BLOCKED_REASON } as const) : readVerdict(e);
        if (!verdict.ok) {
          this.quarantine.add(e, verdict.kind, verdict.reason, at);
          blocked.add(e.streamId);
          orders.add(e.streamId);
          continue;
        }
        const local = versions.get(e.streamId) ?? 0;
        if (local !== e.streamVersion - 1) {
          throw new SyncInvariantError(`stream ${e.streamId}: server event ${e.eventId} is version ${e.streamVersion} but the device is at ${local}`);
        }
        versions.set(e.streamId, e.streamVersion);
        const p = mine.get(e.eventId);
        if (p && p.status === 'pending' && p.currentAttempt === p.attempt) own.set(p.commandId, p.attempt);
        else if (withPending.has(e.streamId)) foreignOn.add(e.streamId);
        const { eventId, eventType, schemaVersion, data, metadata } = verdict.envelope;
        take.push({ eventId, eventType, schemaVersion, data, metadata, streamId: e.streamId, streamType: e.streamType, streamVersion: e.streamVersion, recordedAt: e.recordedAt });
        orders.add(e.streamId);
      }
      // The event contract was just checked, and the envelopes parsed (readVerdict, at each event's recordedAt).
      this.store.log.appendReplicated(take);
    });
    this.repo.savePositions(events.map((e) => ({ eventId: e.eventId, globalPosition: e.globalPosition, hash: e.hash, serverRecordedAt: e.recordedAt })));

    const complete = [...own].filter(([commandId, attempt]) => this.repo.attemptConfirmed(commandId, attempt));
    const confirmed = this.repo.markSynced(complete, at);
    const rejected: string[] = [];
    const rebased: string[] = [];
    for (const orderId of foreignOn) {
      const summary = this.outbox.rebaseOrder(orderId);
      rejected.push(...summary.rejected);
      if (summary.reattempted.length + summary.rejected.length > 0) rebased.push(orderId);
    }
    const touched = [...orders];
    return { confirmed, rejected, rebased, orders: touched, attention: touched.filter((o) => withPending.has(o) || blocked.has(o)) };
  }
}
