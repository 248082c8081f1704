import { z } from 'zod';
import { OrderCommand, Rejection } from '../domain/commands.js';
import { Identifier } from '../domain/events.js';
import { describeIssues, zodIssues, type Issue } from '../domain/issues.js';
import { OrderState } from '../domain/state.js';
import { DriftReport } from '../projections/drift.js';
import { CustomerHistoryInput, CustomerHistoryOutput, ListOrdersInput, ListOrdersOutput, SyncBadge } from '../projections/query-schemas.js';
import { RebuildProgress } from '../projections/types.js';
import { Conflict as InboxEntry, QuarantinedEvent, SyncStatus, TimelineEntry } from '../sync/views.js';
import { SyncScope } from '../protocol/sync-api.js';

/**
 * The one contract between the renderer and the process that owns the store (Electron main,
 * or the browser-mode Node server). Both sides validate with these schemas; the transports
 * (IPC, HTTP) only move JSON. The views are defined by the layers that own them (the order state
 * and commands by the domain, the list rows by the projections, sync status and conflicts by
 * sync); this module composes them.
 */

// The views the renderer names, from their owners.
export { DriftReport } from '../projections/drift.js';
export { ListOrdersInput, OrderRow, StatusFilter } from '../projections/query-schemas.js';
export { RebuildProgress } from '../projections/types.js';
export { QuarantinedEvent, SyncStatus, TimelineEntry, newerStatus } from '../sync/views.js';

/** A conflict as the renderer sees it: the inbox entry, whether "Retry as new" would be accepted now, and the order's currency. */
export const Conflict = InboxEntry.extend({
  /** Would "Retry as new" be accepted on the order as it is now? If not, the domain's reason. */
  retry: z.object({ possible: z.boolean(), reason: z.string().nullable() }),
  /** The order's currency, to show the command's amounts (null if the order is unknown here). */
  currency: z.string().nullable(),
});
export type Conflict = z.infer<typeof Conflict>;

/** An order's chain check, as last verified against the server. */
export const AuditCheck = z.object({ verified: z.boolean(), checkedAt: z.string(), firstBrokenEventId: z.string().nullable() });
export type AuditCheck = z.infer<typeof AuditCheck>;
export const AuditResult = AuditCheck.extend({ message: z.string() });
export type AuditResult = z.infer<typeof AuditResult>;

export const OrderDetail = z.object({
  state: OrderState,
  timeline: z.array(TimelineEntry),
  sync: SyncBadge,
  /** Chain status of the synced part, as last verified against the server (null if never checked). */
  audit: AuditCheck.nullable(),
  conflicts: z.array(Conflict),
  /** Bounded history: this device dropped the order's events up to this version (closed, past retention); the server has them. */
  historyDropped: z.object({ version: z.number(), droppedAt: z.string() }).nullable(),
});
export type OrderDetail = z.infer<typeof OrderDetail>;

const ServerUrl = z.union([z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }), z.literal('')]);

/**
 * What the renderer may send. The token is write-only: absent (or empty) keeps the stored one, a
 * value replaces it. It is bound to the server URL it was entered for, so a new URL needs it again.
 */
export const Settings = z.strictObject({
  serverUrl: ServerUrl,
  token: z.string().trim().max(500).optional(),
  userId: z.string().trim().min(1).max(100),
});
export type Settings = z.input<typeof Settings>;

/** What the renderer sees: whether a token is stored and for which server, never the token itself. */
export const SettingsView = z.strictObject({
  deviceId: z.string(),
  serverUrl: z.string(),
  userId: z.string(),
  tokenSet: z.boolean(),
  tokenServer: z.string().nullable(),
});
export type SettingsView = z.infer<typeof SettingsView>;

export const CommandResult = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), commandId: z.string(), orderId: z.string(), version: z.number(), position: z.number() }),
  z.object({ ok: z.literal(false), rejection: Rejection }),
]);
export type CommandResult = z.infer<typeof CommandResult>;

/** What this device keeps (issue 16): its sync scope and the retention of closed orders. */
export const SyncScopeSettings = z.strictObject({
  scope: SyncScope,
  /** Closed orders older than this many days drop their local events (null: keep everything). */
  retentionDays: z.number().int().min(1, 'at least 1 day').max(3650).nullable(),
});
export type SyncScopeSettings = z.input<typeof SyncScopeSettings>;
export const SyncScopeView = SyncScopeSettings.extend({
  /** Orders followed whatever the scope: touched on this device or opened from the server. */
  followedOrders: z.number(),
  /** Closed orders whose local events were dropped. */
  droppedOrders: z.number(),
  /** A widened scope's history is still being fetched. */
  backfilling: z.boolean(),
});
export type SyncScopeView = z.infer<typeof SyncScopeView>;

/** Fetching from the server is an expected outcome, not an error: it may be unreachable, or have no such order. */
export const RemoteOutcome = <T extends z.ZodRawShape>(ok: T) =>
  z.discriminatedUnion('status', [
    z.object({ status: z.literal('ok'), ...ok }),
    z.object({ status: z.literal('not-found') }),
    z.object({ status: z.literal('unavailable'), reason: z.string() }),
  ]);

const method = <I extends z.ZodType, O extends z.ZodType>(input: I, output: O) => ({ input, output });
const Empty = z.strictObject({});

export const contract = {
  listOrders: method(ListOrdersInput, ListOrdersOutput),
  getOrder: method(z.strictObject({ orderId: Identifier }), OrderDetail.nullable()),
  /** Time travel: the order as of a stream version or an instant. */
  getOrderAsOf: method(
    z.strictObject({ orderId: Identifier, version: z.number().int().min(0).optional(), at: z.iso.datetime({ offset: true }).optional() }),
    OrderState,
  ),
  customerHistory: method(CustomerHistoryInput, CustomerHistoryOutput),
  execute: method(z.strictObject({ command: OrderCommand, commandId: z.uuid().optional() }), CommandResult),
  /** Pulled events this device keeps aside because it cannot read them, oldest first. */
  listQuarantine: method(Empty, z.array(QuarantinedEvent)),
  listConflicts: method(z.strictObject({ includeDismissed: z.boolean().default(false) }), z.array(Conflict)),
  retryConflict: method(z.strictObject({ commandId: z.string() }), CommandResult),
  dismissConflict: method(z.strictObject({ commandId: z.string() }), z.object({ ok: z.literal(true) })),
  syncStatus: method(Empty, SyncStatus),
  syncNow: method(Empty, SyncStatus),
  /** "Work offline": pause (or resume) all network sync; kept across restarts; resuming syncs at once. */
  setWorkOffline: method(z.strictObject({ workOffline: z.boolean() }), SyncStatus),
  getSettings: method(Empty, SettingsView),
  saveSettings: method(Settings, SettingsView),
  rebuildProjections: method(z.strictObject({ projection: z.string().optional() }), z.object({ eventsReplayed: z.number(), durationMs: z.number() })),
  driftCheck: method(z.strictObject({ projection: z.string().optional() }), z.array(DriftReport)),
  verifyAudit: method(z.strictObject({ orderId: Identifier }), AuditResult),
  getSyncScope: method(Empty, SyncScopeView),
  saveSyncScope: method(SyncScopeSettings, SyncScopeView),
  /** Open an order that is not on this device (outside its scope) from the server, and keep it. */
  openRemoteOrder: method(z.strictObject({ orderId: Identifier }), RemoteOutcome({ fetched: z.number() })),
  /** An order's whole history from the server (what a bounded device dropped), not stored. */
  remoteHistory: method(z.strictObject({ orderId: Identifier }), RemoteOutcome({ timeline: z.array(TimelineEntry) })),
} as const;

export type Contract = typeof contract;
export type MethodName = keyof Contract;
export type MethodInput<M extends MethodName> = z.input<Contract[M]['input']>;
export type MethodOutput<M extends MethodName> = z.infer<Contract[M]['output']>;
/** The contract implemented: one async function per method, on validated input. */
export type Handlers = {
  [M in MethodName]: (input: z.infer<Contract[M]['input']>) => Promise<MethodOutput<M>>;
};

/** Server-pushed notifications (IPC `webContents.send`, or SSE in browser mode). */
export const StatusEvent = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('sync'), status: SyncStatus }),
  z.object({ kind: z.literal('changed'), position: z.number(), orderIds: z.array(z.string()) }),
  z.object({ kind: z.literal('rebuild'), progress: RebuildProgress }),
]);
export type StatusEvent = z.infer<typeof StatusEvent>;

export class ContractError extends Error {
  override name = 'ContractError';
  constructor(
    readonly code: 'BAD_INPUT' | 'BAD_OUTPUT' | 'UNKNOWN_METHOD' | 'INTERNAL',
    message: string,
    readonly issues: Issue[] = [],
  ) {
    super(message);
  }
}

export function parseInput<M extends MethodName>(name: string, input: unknown): { method: M; input: z.infer<Contract[M]['input']> } {
  if (!Object.prototype.hasOwnProperty.call(contract, name)) throw new ContractError('UNKNOWN_METHOD', `unknown method ${JSON.stringify(name)}`);
  const parsed = contract[name as M].input.safeParse(input ?? {});
  if (!parsed.success) {
    const issues = zodIssues(parsed.error);
    throw new ContractError('BAD_INPUT', `invalid input for ${name}: ${describeIssues(issues)}`, issues);
  }
  return { method: name as M, input: parsed.data as z.infer<Contract[M]['input']> };
}
