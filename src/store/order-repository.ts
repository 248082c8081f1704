import { v7 as uuidv7 } from 'uuid';
import type { OrderCommand, Rejection } from '../domain/commands.js';
import { ORDER_STREAM_TYPE } from '../domain/events.js';
import { REDUCER_VERSION, foldOrder, initialOrderState, type OrderState } from '../domain/state.js';
import { decideCommand, type CommandOrigin } from '../protocol/command-events.js';
import type { StoredEvent } from '../protocol/envelope.js';
import { ConcurrencyError, HistoryEvictedError } from '../protocol/errors.js';
import type { AppendResult, EventLog } from './event-log.js';
import { EvictedStreams } from './evicted-streams.js';
import { SnapshotStore } from './snapshots.js';

export interface LoadOptions {
  /** State after this stream version (time travel by version). */
  asOfVersion?: number;
  /** State as it was recorded at this instant (time travel by time). */
  asOfTime?: string;
}

export interface Loaded {
  state: OrderState;
  /** How many events were folded on top of the snapshot (or from the start). */
  replayed: number;
  snapshotVersion: number | null;
}

export type ExecuteResult =
  | { ok: true; state: OrderState; append: AppendResult }
  | { ok: false; rejection: Rejection; state: OrderState };

export const toFoldable = (e: StoredEvent) => ({ type: e.eventType, data: e.data, version: e.streamVersion, recordedAt: e.recordedAt });

/**
 * Loads orders by folding their stream on top of the newest snapshot, writes a snapshot every
 * `snapshotEvery` events, and runs commands: load → decide → append with the loaded version.
 */
export class OrderRepository {
  readonly snapshots: SnapshotStore<OrderState>;
  readonly evicted: EvictedStreams;

  constructor(
    readonly log: EventLog,
    readonly opts: { snapshotEvery?: number } = {},
  ) {
    this.snapshots = new SnapshotStore<OrderState>(log.db, REDUCER_VERSION);
    this.evicted = new EvictedStreams(log.db);
  }

  get snapshotEvery(): number {
    return this.opts.snapshotEvery ?? 100;
  }

  load(orderId: string, opts: LoadOptions = {}): Loaded {
    let target = opts.asOfVersion ?? Number.MAX_SAFE_INTEGER;
    // A closed order past the retention window: its kept final state is the base; before it, only the server has the history.
    const evicted = this.evicted.get(orderId);
    if (opts.asOfTime !== undefined) {
      let atVersion = this.log.versionAt(orderId, opts.asOfTime);
      if (evicted && atVersion < evicted.version) {
        const last = (evicted.state as OrderState).updatedAt;
        if (last === null || Date.parse(opts.asOfTime) < Date.parse(last)) throw new HistoryEvictedError(orderId, evicted.version);
        atVersion = evicted.version;
      }
      target = Math.min(target, atVersion);
    }
    if (target <= 0) return { state: initialOrderState, replayed: 0, snapshotVersion: null };

    let snap = this.snapshots.latest(orderId, target);
    if (evicted && (snap?.streamVersion ?? 0) < evicted.version) {
      if (target < evicted.version) throw new HistoryEvictedError(orderId, evicted.version);
      snap = { streamId: orderId, streamVersion: evicted.version, reducerVersion: evicted.reducerVersion, state: evicted.state as OrderState };
    }
    const events = this.log.readStream(orderId, { fromVersion: (snap?.streamVersion ?? 0) + 1, toVersion: target });
    const state = foldOrder(events.map(toFoldable), snap?.state ?? initialOrderState);
    const isHead = opts.asOfVersion === undefined && opts.asOfTime === undefined;
    if (isHead && events.length >= this.snapshotEvery) this.snapshots.save(orderId, state.version, state);
    return { state, replayed: events.length, snapshotVersion: snap?.streamVersion ?? null };
  }

  /**
   * Validate and append. The handler is pure, so on a concurrent write we simply reload and
   * decide again (a bounded number of times) instead of failing the user. Without a command id
   * in `origin` the command gets a fresh one.
   */
  execute(command: OrderCommand, origin: Partial<CommandOrigin> = {}, maxRetries = 3): ExecuteResult {
    const from: CommandOrigin = { ...origin, commandId: origin.commandId ?? uuidv7() };
    for (let attempt = 0; ; attempt++) {
      const { state } = this.load(command.orderId);
      const outcome = decideCommand(state, command, from);
      if (!outcome.ok) return { ok: false, rejection: outcome.rejection, state };
      try {
        const append = this.log.append(command.orderId, outcome.events, {
          expectedVersion: state.version === 0 ? 'no_stream' : state.version,
          streamType: ORDER_STREAM_TYPE,
        });
        const next = foldOrder(append.events.map(toFoldable), state);
        // Snapshot whenever the stream crosses a multiple of N, so a load never folds more than N events.
        if (Math.floor(next.version / this.snapshotEvery) > Math.floor(state.version / this.snapshotEvery)) {
          this.snapshots.save(command.orderId, next.version, next);
        }
        return { ok: true, state: next, append };
      } catch (err) {
        if (err instanceof ConcurrencyError && attempt < maxRetries) continue;
        throw err;
      }
    }
  }
}
