import { v7 as uuidv7, validate as uuidValidate } from 'uuid';
import { OrderCommand, type OrderCommandInput, type Rejection } from '../domain/commands.js';
import { ORDER_STREAM_TYPE } from '../domain/events.js';
import { describeIssues, zodIssues, type Issue } from '../domain/issues.js';
import { foldOrder, type OrderState } from '../domain/state.js';
import { canonicalJson } from '../protocol/canonical-json.js';
import { checkEvent } from '../protocol/event-contract.js';
import { commandEvents, decideCommand } from '../protocol/command-events.js';
import type { NewEvent } from '../protocol/envelope.js';
import type { SyncBadge } from '../projections/query-schemas.js';
import type { LocalStore } from '../store/local-store.js';
import { InvalidCommandError, OutboxError } from './errors.js';
import { QuarantineRepository } from './quarantine.js';
import { rebaseCommands } from './rebase.js';
import type { CausedBy, Conflict, TimelineEntry } from './views.js';
import { SyncRepository, type CommandRecord, type PendingEventRecord, type StateFingerprint } from './sync-repository.js';

export type OrdersChangedListener = (orderIds: string[]) => void;

export interface OutboxOptions {
  deviceId: string;
  /** Called inside the transaction that changed an order's pending set or confirmed events. */
  onOrdersChanged?: OrdersChangedListener;
  /** Clock (tests). */
  now?: () => string;
}

export interface SubmitContext {
  userId: string;
  deviceId?: string;
  /** Client-chosen UUID: submitting the same command id again returns the original outcome. */
  commandId?: string;
}

export interface PendingEventView {
  eventId: string;
  type: string;
  schemaVersion: number;
  data: Record<string, unknown>;
}

export type SubmitResult =
  | { ok: true; commandId: string; orderId: string; version: number; events: PendingEventView[] }
  | { ok: false; rejection: Rejection };

export type ConflictView = Conflict;

export interface RebaseSummary {
  orderId: string;
  reattempted: string[];
  rejected: string[];
}

/**
 * The events a command produced must pass the same contract the server holds them to (with this
 * device's clock as the reference time), so a device does not queue what the server will refuse.
 */
function refuseOutsideContract(rows: readonly PendingEventRecord[], at: string): void {
  const issues: Issue[] = [];
  rows.forEach((r, i) => {
    const verdict = checkEvent({ streamType: ORDER_STREAM_TYPE, eventType: r.eventType, schemaVersion: r.schemaVersion, data: r.data, metadata: r.metadata }, { now: at });
    if (!verdict.ok) for (const issue of verdict.issues) issues.push({ path: `events.${i}.${issue.path}`, message: issue.message });
  });
  if (issues.length > 0) throw new InvalidCommandError(`the command's events would be refused: ${describeIssues(issues)}`, issues);
}

/** Where a device's changes are made: the server keeps it (x-source would override it per request). */
const DEVICE_SOURCE = 'desktop-app';

/** One attempt's events as the outbox stores them until the server confirms them. */
function pendingRows(commandId: string, attempt: number, orderId: string, events: readonly NewEvent[], at: string): PendingEventRecord[] {
  return events.map((e, i) => ({ ...e, commandId, attempt, orderId, seq: i + 1, createdAt: at }));
}

/** Effective states kept for the orders touched most recently (enough for a long offline session). */
const STATE_CACHE_SIZE = 4096;
const fingerprintKey = (f: StateFingerprint): string => `${f.confirmedVersion}/${f.confirmedHead ?? ''}/${f.pending}/${f.lastPending ?? ''}`;

const view = (p: PendingEventRecord): PendingEventView => ({ eventId: p.eventId, type: p.eventType, schemaVersion: p.schemaVersion, data: p.data });

/**
 * The device's outbox: local commands decided at once on the effective state (confirmed
 * events + pending events of the current attempts), stored as immutable pending events until
 * the server confirms them, re-decided on a newer state when the server says the order moved
 * on, and kept in a conflict inbox when they no longer apply.
 */
export class Outbox {
  readonly repo: SyncRepository;
  /** Pulled events this build cannot read (migration 005). */
  readonly quarantine: QuarantineRepository;
  readonly deviceId: string;
  readonly onOrdersChanged: OrdersChangedListener | undefined;
  private readonly now: () => string;
  /**
   * Effective state per order, valid only while the order's fingerprint (confirmed head, number
   * of pending commands, newest current pending event id) is unchanged: checked by one query
   * inside every transaction, so writes by other connections and rolled-back transactions
   * (whose new event ids never come back) simply miss the cache.
   */
  private readonly states = new Map<string, { key: string; state: OrderState }>();

  constructor(
    readonly store: LocalStore,
    opts: OutboxOptions,
  ) {
    if (!opts.deviceId) throw new TypeError('Outbox needs a deviceId');
    this.repo = new SyncRepository(store.db);
    this.quarantine = new QuarantineRepository(store.db);
    this.deviceId = opts.deviceId;
    this.onOrdersChanged = opts.onOrdersChanged;
    this.now = opts.now ?? (() => new Date().toISOString());
  }

  /** Decide on the effective state and record the command's pending events, in one transaction. */
  submit(input: OrderCommandInput, ctx: SubmitContext): SubmitResult {
    const command = parseCommand(input);
    const commandId = ctx.commandId ?? uuidv7();
    if (!uuidValidate(commandId)) throw new InvalidCommandError(`command id ${JSON.stringify(commandId)} is not a UUID`, [{ path: 'commandId', message: 'must be a UUID' }]);
    if (!ctx.userId) throw new InvalidCommandError('a command needs the user who issued it', [{ path: 'userId', message: 'required' }]);
    return this.store.db.transaction(() => this.submitInTransaction(command, commandId, ctx, null)).immediate();
  }

  private submitInTransaction(command: OrderCommand, commandId: string, ctx: SubmitContext, retryOf: string | null): SubmitResult {
    const existing = this.repo.command(commandId);
    if (existing) return this.replay(existing, command);

    const { state, fingerprint } = this.effective(command.orderId);
    const at = this.now();
    const deviceId = ctx.deviceId ?? this.deviceId;
    const outcome = decideCommand(state, command, { commandId, userId: ctx.userId, deviceId, occurredAt: at, source: DEVICE_SOURCE });
    if (!outcome.ok) return { ok: false, rejection: outcome.rejection };

    const rows = pendingRows(commandId, 1, command.orderId, outcome.events, at);
    refuseOutsideContract(rows, at);
    this.repo.insertCommand({
      commandId,
      orderId: command.orderId,
      command,
      status: 'pending',
      attempt: 1,
      baseVersion: fingerprint.confirmedVersion,
      rejection: null,
      causedBy: null,
      retryOf,
      userId: ctx.userId,
      deviceId,
      createdAt: at,
      updatedAt: at,
    });
    this.repo.insertPendingEvents(rows);
    // The new effective state is the old one plus these events: no re-read, no re-fold of the rest.
    const next = rows.length > 0 ? foldOrder(rows.map((p) => ({ type: p.eventType, data: p.data, recordedAt: p.createdAt })), state) : state;
    this.remember(command.orderId, { ...fingerprint, pending: fingerprint.pending + 1, lastPending: rows.at(-1)?.eventId ?? fingerprint.lastPending }, next);
    this.onOrdersChanged?.([command.orderId]);
    return { ok: true, commandId, orderId: command.orderId, version: state.version + rows.length, events: rows.map(view) };
  }

  /** Same command id again (a UI retry after a crash or timeout): answer with what happened to it. */
  private replay(existing: CommandRecord, command: OrderCommand): SubmitResult {
    if (canonicalJson(existing.command) !== canonicalJson(command)) {
      throw new OutboxError('COMMAND_ID_REUSED', `command id ${existing.commandId} was already used for another command`);
    }
    if (existing.rejection && existing.status !== 'pending' && existing.status !== 'synced') return { ok: false, rejection: existing.rejection };
    const events = this.repo.eventsOfAttempt(existing.commandId, existing.attempt);
    return { ok: true, commandId: existing.commandId, orderId: existing.orderId, version: this.effectiveState(existing.orderId).version, events: events.map(view) };
  }

  confirmedState(orderId: string): OrderState {
    return this.store.orders.load(orderId).state;
  }

  /** What the user sees: confirmed state with the current attempts of pending commands on top. */
  effectiveState(orderId: string): OrderState {
    return this.effective(orderId).state;
  }

  private effective(orderId: string): { state: OrderState; fingerprint: StateFingerprint } {
    const fingerprint = this.repo.stateFingerprint(orderId);
    const key = fingerprintKey(fingerprint);
    const hit = this.states.get(orderId);
    if (hit && hit.key === key) return { state: hit.state, fingerprint };
    const pending = this.repo.currentPendingEventsOf(orderId);
    const state = foldOrder(pending.map((p) => ({ type: p.eventType, data: p.data, recordedAt: p.createdAt })), this.confirmedState(orderId));
    // Outside a transaction another connection may commit between the two reads: use, don't keep.
    if (this.store.db.inTransaction) this.remember(orderId, fingerprint, state);
    return { state, fingerprint };
  }

  private remember(orderId: string, fingerprint: StateFingerprint, state: OrderState): void {
    this.states.delete(orderId);
    this.states.set(orderId, { key: fingerprintKey(fingerprint), state });
    if (this.states.size > STATE_CACHE_SIZE) this.states.delete(this.states.keys().next().value!);
  }

  pendingEvents(orderId: string): PendingEventView[] {
    return this.repo.currentPendingEventsOf(orderId).map(view);
  }

  /** 'attention': the order has pulled events this build cannot read (it is behind the server). */
  badge(orderId: string): SyncBadge {
    if (this.quarantine.hasStream(orderId)) return 'attention';
    const counts = this.repo.statusCounts(orderId);
    if (counts.rejected) return 'rejected';
    if (counts.pending) return 'pending';
    return 'synced';
  }

  pendingCount(): number {
    return this.repo.pendingCount();
  }

  conflictCount(): number {
    return this.repo.conflictCount();
  }

  command(commandId: string): CommandRecord | null {
    return this.repo.command(commandId);
  }

  commandsOf(orderId: string): CommandRecord[] {
    return this.repo.commandsOf(orderId);
  }

  listConflicts(opts: { includeDismissed?: boolean } = {}): ConflictView[] {
    return this.repo.conflicts(opts.includeDismissed ?? false).map((c) => ({
      commandId: c.commandId,
      orderId: c.orderId,
      command: c.command,
      status: c.status as ConflictView['status'],
      rejection: c.rejection as Rejection,
      causedBy: c.causedBy ?? [],
      createdAt: c.createdAt,
      rejectedAt: c.rejectedAt ?? c.updatedAt,
    }));
  }

  /**
   * Submit a rejected command again, as a new command on today's state. On success the old one
   * becomes 'retried' (same transaction); if it is rejected again the inbox is left as it was.
   */
  retryAsNew(commandId: string, ctx: Partial<SubmitContext> = {}): SubmitResult {
    return this.store.db
      .transaction((): SubmitResult => {
        const old = this.mustBe(commandId, ['rejected', 'dismissed']);
        const newId = ctx.commandId ?? uuidv7();
        const result = this.submitInTransaction(old.command, newId, { userId: ctx.userId ?? old.userId, deviceId: ctx.deviceId ?? old.deviceId }, commandId);
        if (result.ok) {
          this.repo.setStatus(commandId, 'retried', this.now());
          this.onOrdersChanged?.([old.orderId]);
        }
        return result;
      })
      .immediate();
  }

  dismiss(commandId: string): void {
    this.store.db
      .transaction(() => {
        const c = this.mustBe(commandId, ['rejected']);
        this.repo.setStatus(commandId, 'dismissed', this.now());
        this.onOrdersChanged?.([c.orderId]);
      })
      .immediate();
  }

  private mustBe(commandId: string, statuses: CommandRecord['status'][]): CommandRecord {
    const c = this.repo.command(commandId);
    if (!c) throw new OutboxError('UNKNOWN_COMMAND', `no command ${commandId} on this device`);
    if (!statuses.includes(c.status)) {
      throw new OutboxError('WRONG_STATUS', `command ${commandId} is ${c.status}; only ${statuses.join(' or ')} commands can do that`);
    }
    return c;
  }

  /**
   * Re-decide an order's pending commands on its (newer) confirmed state: accepted ones get a
   * new attempt with new event ids (the old attempt's rows stay as the superseded audit trail),
   * rejected ones move to the conflict inbox with the server events that changed the outcome.
   * Runs in the caller's transaction when there is one.
   */
  rebaseOrder(orderId: string): RebaseSummary {
    return this.store.db.transaction((): RebaseSummary => {
      const commands = this.repo.pendingCommandsOf(orderId);
      const summary: RebaseSummary = { orderId, reattempted: [], rejected: [] };
      if (commands.length === 0) return summary;
      const confirmed = this.confirmedState(orderId);
      const { outcomes } = rebaseCommands(confirmed, commands);
      const at = this.now();
      outcomes.forEach((outcome, i) => {
        const c = commands[i]!;
        if (outcome.ok) {
          const attempt = c.attempt + 1;
          this.repo.bumpAttempt(c.commandId, confirmed.version, at);
          const events = commandEvents(outcome.events, { commandId: c.commandId, userId: c.userId, deviceId: c.deviceId, occurredAt: c.createdAt, source: DEVICE_SOURCE });
          this.repo.insertPendingEvents(pendingRows(c.commandId, attempt, orderId, events, at));
          summary.reattempted.push(c.commandId);
        } else {
          this.repo.reject(c.commandId, outcome.rejection, this.causedBy(orderId, c.baseVersion), at);
          summary.rejected.push(c.commandId);
        }
      });
      this.onOrdersChanged?.([orderId]);
      return summary;
    })();
  }

  /** Confirmed events that arrived after the version a command was decided on, other devices' first. */
  private causedBy(orderId: string, baseVersion: number): CausedBy[] {
    const since = this.store.log.readStream(orderId, { fromVersion: baseVersion + 1, raw: true });
    const foreign = since.filter((e) => this.repo.pendingEvent(e.eventId) === null);
    return (foreign.length > 0 ? foreign : since).map((e) => ({
      eventId: e.eventId,
      eventType: e.eventType,
      streamVersion: e.streamVersion,
      userId: e.metadata.userId ?? null,
      deviceId: e.metadata.deviceId ?? null,
      recordedAt: this.repo.position(e.eventId)?.serverRecordedAt ?? e.recordedAt,
    }));
  }

  /**
   * The order's history for display: confirmed events with their server coordinates, then the
   * pending events of current attempts, and every superseded attempt (what the device first did).
   */
  timeline(orderId: string): TimelineEntry[] {
    const confirmed = this.store.log.readStream(orderId);
    const entries: TimelineEntry[] = confirmed.map((e) => {
      const pos = this.repo.position(e.eventId);
      return {
        eventId: e.eventId,
        streamVersion: e.streamVersion,
        eventType: e.eventType,
        schemaVersion: e.schemaVersion,
        data: e.data,
        metadata: e.metadata as Record<string, unknown>,
        recordedAt: e.recordedAt,
        sync: 'synced',
        globalPosition: pos?.globalPosition ?? null,
        hash: pos?.hash ?? null,
      };
    });
    const commands = new Map(this.repo.commandsOf(orderId).map((c) => [c.commandId, c]));
    // The stream version, not the count: a bounded device may have dropped the oldest events.
    let version = this.store.log.streamVersion(orderId);
    for (const p of this.repo.allPendingEventsOf(orderId)) {
      const c = commands.get(p.commandId);
      if (!c) continue;
      const current = p.attempt === c.attempt;
      if (current && c.status === 'synced') continue;
      const pending = current && c.status === 'pending';
      entries.push({
        eventId: p.eventId,
        streamVersion: pending ? ++version : 0,
        eventType: p.eventType,
        schemaVersion: p.schemaVersion,
        data: p.data,
        metadata: p.metadata as Record<string, unknown>,
        recordedAt: p.createdAt,
        // The last attempt of a command the server refused was rejected, not replaced by anything.
        sync: pending ? 'pending' : current && c.rejection !== null && c.status !== 'synced' ? 'rejected' : 'superseded',
        globalPosition: null,
        hash: null,
      });
    }
    return entries;
  }
}

function parseCommand(input: unknown): OrderCommand {
  const parsed = OrderCommand.safeParse(input);
  if (parsed.success) return parsed.data;
  const issues = zodIssues(parsed.error);
  throw new InvalidCommandError(`invalid command: ${describeIssues(issues)}`, issues);
}
