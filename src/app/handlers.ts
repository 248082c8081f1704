import type { Conflict, Handlers, MethodOutput, OrderDetail } from './contract.js';
import { ContractError } from './contract.js';
import type { Device } from './device.js';
import { verifyOrderAudit } from './audit.js';
import { decide } from '../domain/commands.js';
import { foldOrder, type OrderState } from '../domain/state.js';
import { driftCheck } from '../projections/index.js';
import { HistoryEvictedError } from '../protocol/errors.js';
import { InvalidCommandError, SyncError } from '../sync/index.js';
import type { Conflict as InboxEntry } from '../sync/views.js';

/**
 * The contract implemented against one device. Electron's IPC and the browser-mode HTTP
 * server both call exactly these functions; validation happens in the transports.
 */
export function createHandlers(device: Device): Handlers {
  const { engine, outbox, queries, runner, scheduler, store } = device;

  const userId = () => device.currentSettings().userId;

  const submitted = (r: ReturnType<typeof outbox.submit>): MethodOutput<'execute'> => {
    if (!r.ok) return { ok: false, rejection: r.rejection };
    scheduler.notifyChange();
    return { ok: true, commandId: r.commandId, orderId: r.orderId, version: r.version, position: store.log.headPosition() };
  };

  const stateAsOf = (orderId: string, version?: number, at?: string): OrderState => {
    const confirmedVersion = store.log.streamVersion(orderId);
    const pending = outbox.pendingEvents(orderId);
    const createdAt = new Map(outbox.timeline(orderId).map((t) => [t.eventId, t.recordedAt]));
    const target = version ?? Number.MAX_SAFE_INTEGER;
    if (target <= confirmedVersion) return store.orders.load(orderId, { asOfVersion: target, asOfTime: at }).state;
    // Past the confirmed head the order's history continues with this device's pending events.
    let state = store.orders.load(orderId, at ? { asOfTime: at } : {}).state;
    if (state.version < confirmedVersion) return state;
    const visible = pending
      .slice(0, target - confirmedVersion)
      .filter((p) => !at || (createdAt.get(p.eventId) ?? '') <= new Date(at).toISOString());
    state = foldOrder(
      visible.map((p) => ({ type: p.type, data: p.data, recordedAt: createdAt.get(p.eventId) })),
      state,
    );
    return state;
  };

  /**
   * "Retry as new" is offered only where it would be accepted: the same pure decision the outbox
   * runs on submit, on the order's effective state now (an overpayment, or a payment on a
   * cancelled order, is never retryable; a payment refused while the order was still open may be).
   */
  const withRetry = (c: InboxEntry): Conflict => {
    const state = outbox.effectiveState(c.orderId);
    const currency = state.currency ?? (c.command.type === 'CreateOrder' ? c.command.currency : null);
    if (c.status !== 'rejected') return { ...c, currency, retry: { possible: false, reason: null } };
    const decision = decide(state, c.command);
    return { ...c, currency, retry: decision.ok ? { possible: true, reason: null } : { possible: false, reason: decision.rejection.message } };
  };

  const dropped = (orderId: string): OrderDetail['historyDropped'] => {
    const e = store.orders.evicted.get(orderId);
    return e ? { version: e.version, droppedAt: e.evictedAt } : null;
  };

  const scopeView = (): MethodOutput<'getSyncScope'> => ({
    scope: engine.scope.scope(),
    retentionDays: engine.scope.retentionDays(),
    followedOrders: engine.scope.followedStreams().length,
    droppedOrders: store.orders.evicted.count(),
    backfilling: engine.scope.backfills().length > 0,
  });

  /** A call to the server: unreachable, refused or unconfigured is an expected outcome the person can act on. */
  async function remote<T>(call: () => Promise<T>): Promise<T | { status: 'unavailable'; reason: string }> {
    if (!engine.hasClient()) return { status: 'unavailable', reason: 'No sync server is configured (Settings).' };
    if (device.settings.workOffline()) return { status: 'unavailable', reason: 'Working offline: turn it off to reach the server.' };
    try {
      return await call();
    } catch (err) {
      // A server may echo the request (and its token) back in an error.
      if (err instanceof SyncError) return { status: 'unavailable', reason: device.redact(err.message) };
      throw err;
    }
  }

  return {
    listOrders: (input) => queries.listOrders(input),

    getOrder: async ({ orderId }) => {
      const state = outbox.effectiveState(orderId);
      if (!state.exists && outbox.commandsOf(orderId).length === 0) return null;
      return {
        state,
        timeline: outbox.timeline(orderId),
        sync: outbox.badge(orderId),
        audit: device.lastAudit(orderId),
        conflicts: outbox.listConflicts({ includeDismissed: false }).filter((c) => c.orderId === orderId).map(withRetry),
        historyDropped: dropped(orderId),
      };
    },

    getOrderAsOf: async ({ orderId, version, at }) => {
      try {
        return stateAsOf(orderId, version, at);
      } catch (err) {
        if (err instanceof HistoryEvictedError) throw new ContractError('BAD_INPUT', err.message);
        throw err;
      }
    },

    customerHistory: (input) => queries.customerHistory(input),

    execute: async ({ command, commandId }) => {
      try {
        return submitted(outbox.submit(command, { userId: userId(), commandId }));
      } catch (err) {
        if (err instanceof InvalidCommandError) throw new ContractError('BAD_INPUT', err.message, err.issues);
        throw err;
      }
    },

    listQuarantine: async () => outbox.quarantine.list(),

    listConflicts: async ({ includeDismissed }) => outbox.listConflicts({ includeDismissed }).map(withRetry),

    retryConflict: async ({ commandId }) => {
      if (!outbox.command(commandId)) throw new ContractError('BAD_INPUT', `no command ${commandId} in the conflict inbox`);
      return submitted(outbox.retryAsNew(commandId, { userId: userId() }));
    },

    dismissConflict: async ({ commandId }) => {
      if (!outbox.command(commandId)) throw new ContractError('BAD_INPUT', `no command ${commandId} in the conflict inbox`);
      outbox.dismiss(commandId);
      scheduler.notifyChange();
      return { ok: true as const };
    },

    syncStatus: async () => device.syncStatus(),
    syncNow: async () => device.redactStatus(await scheduler.syncNow()),
    setWorkOffline: async ({ workOffline }) => device.setWorkOffline(workOffline),

    getSettings: async () => device.settingsView(),
    saveSettings: async (settings) => device.saveSettings(settings),

    rebuildProjections: async ({ projection }) => {
      const result = await runner.rebuild(projection ? [projection] : runner.names, {
        onProgress: (p) => device.emit({ kind: 'rebuild', progress: { ...p } }),
      });
      return { eventsReplayed: result.eventsReplayed, durationMs: result.durationMs };
    },

    driftCheck: async ({ projection }) => driftCheck(runner, projection ? [projection] : runner.names),

    getSyncScope: async () => scopeView(),

    saveSyncScope: async ({ scope, retentionDays }) => {
      engine.setScope(scope);
      engine.scope.saveRetentionDays(retentionDays, new Date().toISOString());
      // A wider scope's history, or a retention pass, comes with the next sync: start it now.
      scheduler.notifyChange();
      return scopeView();
    },

    openRemoteOrder: async ({ orderId }) =>
      remote(async () => {
        const opened = await engine.openRemote(orderId);
        return opened ? { status: 'ok' as const, fetched: opened.fetched } : { status: 'not-found' as const };
      }),

    remoteHistory: async ({ orderId }) =>
      remote(async () => {
        const events = await engine.remoteHistory(orderId);
        if (!events) return { status: 'not-found' as const };
        const timeline = events.map((e) => ({
          eventId: e.eventId,
          streamVersion: e.streamVersion,
          eventType: e.eventType,
          schemaVersion: e.schemaVersion,
          data: e.data as Record<string, unknown>,
          metadata: e.metadata as Record<string, unknown>,
          recordedAt: e.recordedAt,
          sync: 'synced' as const,
          globalPosition: e.globalPosition,
          hash: e.hash,
        }));
        return { status: 'ok' as const, timeline };
      }),

    verifyAudit: async ({ orderId }) => {
      const result = await verifyOrderAudit(device, orderId);
      // Only a check that ran is kept: "the server could not be reached" says nothing about the chain.
      if (result.verified || result.firstBrokenEventId !== null) device.recordAudit(orderId, result);
      return result;
    },
  };
}
