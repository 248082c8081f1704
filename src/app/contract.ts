import { z } from 'zod';
import { OrderCommand, REJECTION_CODES } from '../domain/commands.js';
import { Identifier } from '../domain/events.js';
import { ORDER_STATUSES } from '../domain/state.js';

/**
 * The one contract between the renderer and the process that owns the store (Electron main,
 * or the browser-mode Node server). Both sides validate with these schemas; the transports
 * (IPC, HTTP) only move JSON.
 */

export const StatusFilter = z.enum([...ORDER_STATUSES, 'ALL']);
export type StatusFilter = z.infer<typeof StatusFilter>;
export const SyncBadge = z.enum(['pending', 'synced', 'rejected', 'attention']);
export type SyncBadge = z.infer<typeof SyncBadge>;

export const OrderState = z.object({
  exists: z.boolean(),
  orderId: z.string().nullable(),
  customerId: z.string().nullable(),
  items: z.array(z.object({ sku: z.string(), quantity: z.number(), unitPrice: z.number() })),
  total: z.number(),
  currency: z.string().nullable(),
  status: z.enum(ORDER_STATUSES).nullable(),
  paidAmount: z.number(),
  refundedAmount: z.number(),
  payments: z.array(z.object({ paymentId: z.string(), amount: z.number(), refunded: z.number() })),
  reservationId: z.string().nullable(),
  shipmentId: z.string().nullable(),
  shippedAt: z.string().nullable(),
  cancelledAt: z.string().nullable(),
  cancelReason: z.string().nullable(),
  version: z.number(),
  createdAt: z.string().nullable(),
  updatedAt: z.string().nullable(),
});

export const ListOrdersInput = z.strictObject({
  status: StatusFilter.default('ALL'),
  customerId: Identifier.optional(),
  search: z.string().trim().max(100).optional(),
  sort: z.enum(['createdAt', 'updatedAt']).default('updatedAt'),
  direction: z.enum(['asc', 'desc']).default('desc'),
  limit: z.number().int().min(1).max(500).default(50),
  offset: z.number().int().min(0).default(0),
  /** Keyset paging: the `nextCursor` of the previous page (takes precedence over offset). */
  cursor: z.string().max(500).optional(),
  /** Read-your-writes: wait (bounded) until the projection has reached this local position. */
  minPosition: z.number().int().min(0).optional(),
});
export type ListOrdersInput = z.input<typeof ListOrdersInput>;

export const OrderRow = z.object({
  orderId: z.string(),
  customerId: z.string(),
  status: z.enum(ORDER_STATUSES),
  total: z.number(),
  currency: z.string(),
  itemCount: z.number(),
  paidAmount: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
  version: z.number(),
  lastEventId: z.string(),
  sync: SyncBadge,
});
export type OrderRow = z.infer<typeof OrderRow>;

export const ListOrdersOutput = z.object({
  rows: z.array(OrderRow),
  total: z.number(),
  counts: z.record(z.string(), z.number()),
  nextCursor: z.string().nullable(),
  /** Local log position the view reflects. */
  position: z.number(),
});
export type ListOrdersOutput = z.infer<typeof ListOrdersOutput>;

export const TimelineEntry = z.object({
  eventId: z.string(),
  streamVersion: z.number(),
  eventType: z.string(),
  schemaVersion: z.number(),
  data: z.record(z.string(), z.unknown()),
  metadata: z.record(z.string(), z.unknown()),
  recordedAt: z.string(),
  /** 'superseded': an earlier attempt replaced after a rebase; 'rejected': the server refused the command (see the conflict inbox). */
  sync: z.enum(['pending', 'synced', 'superseded', 'rejected']),
  globalPosition: z.number().nullable(),
  hash: z.string().nullable(),
});
export type TimelineEntry = z.infer<typeof TimelineEntry>;

export const Rejection = z.object({ code: z.enum(REJECTION_CODES), message: z.string() });

export const CausedBy = z.object({
  eventId: z.string(),
  eventType: z.string(),
  streamVersion: z.number(),
  userId: z.string().nullable(),
  deviceId: z.string().nullable(),
  recordedAt: z.string(),
});

export const Conflict = z.object({
  commandId: z.string(),
  orderId: z.string(),
  command: OrderCommand,
  status: z.enum(['rejected', 'dismissed', 'retried']),
  rejection: Rejection,
  causedBy: z.array(CausedBy),
  createdAt: z.string(),
  rejectedAt: z.string(),
  /** Would "Retry as new" be accepted on the order as it is now? If not, the domain's reason. */
  retry: z.object({ possible: z.boolean(), reason: z.string().nullable() }),
  /** The order's currency, to show the command's amounts (null if the order is unknown here). */
  currency: z.string().nullable(),
});
export type Conflict = z.infer<typeof Conflict>;

export const OrderDetail = z.object({
  state: OrderState,
  timeline: z.array(TimelineEntry),
  sync: SyncBadge,
  /** Chain status of the synced part, as last verified against the server (null if never checked). */
  audit: z.object({ verified: z.boolean(), checkedAt: z.string(), firstBrokenEventId: z.string().nullable() }).nullable(),
  conflicts: z.array(Conflict),
});
export type OrderDetail = z.infer<typeof OrderDetail>;

export const SyncStatus = z.object({
  /** 'paused': the person chose "Work offline" (no network traffic until they turn it off). */
  state: z.enum(['idle', 'syncing', 'offline', 'error', 'unauthorized', 'disabled', 'paused']),
  online: z.boolean(),
  pendingCount: z.number(),
  conflictCount: z.number(),
  /** Pulled events this app cannot read, kept aside (listQuarantine). */
  quarantinedCount: z.number(),
  lastSuccessAt: z.string().nullable(),
  lastAttemptAt: z.string().nullable(),
  lastError: z.string().nullable(),
  nextAttemptAt: z.string().nullable(),
  progress: z.object({ phase: z.enum(['push', 'pull', 'rebase']), done: z.number(), total: z.number().nullable() }).nullable(),
  serverUrl: z.string().nullable(),
  /** "Work offline" is on (persisted per device). */
  paused: z.boolean(),
});
export type SyncStatus = z.infer<typeof SyncStatus>;

export const QuarantinedEvent = z.object({
  eventId: z.string(),
  globalPosition: z.number(),
  streamId: z.string(),
  streamType: z.string(),
  streamVersion: z.number(),
  eventType: z.string(),
  schemaVersion: z.number(),
  kind: z.enum(['newer-version', 'invalid', 'blocked']),
  reason: z.string(),
  quarantinedAt: z.string(),
});
export type QuarantinedEvent = z.infer<typeof QuarantinedEvent>;

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

export const RebuildProgress = z.object({
  projection: z.string(),
  done: z.number(),
  total: z.number(),
  ratePerSec: z.number(),
  etaMs: z.number().nullable(),
  finished: z.boolean(),
});
export type RebuildProgress = z.infer<typeof RebuildProgress>;

export const DriftReport = z.object({
  projection: z.string(),
  checkedRows: z.number(),
  differences: z.array(z.object({ key: z.string(), kind: z.enum(['missing', 'extra', 'changed']), live: z.unknown(), rebuilt: z.unknown() })),
  position: z.number(),
});
export type DriftReport = z.infer<typeof DriftReport>;

export const CommandResult = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), commandId: z.string(), orderId: z.string(), version: z.number(), position: z.number() }),
  z.object({ ok: z.literal(false), rejection: Rejection }),
]);
export type CommandResult = z.infer<typeof CommandResult>;

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
  customerHistory: method(
    z.strictObject({ customerId: Identifier, limit: z.number().int().min(1).max(500).default(100), offset: z.number().int().min(0).default(0) }),
    z.object({
      customerId: z.string(),
      orders: z.array(OrderRow),
      activity: z.array(z.object({ orderId: z.string(), eventType: z.string(), amount: z.number().nullable(), recordedAt: z.string(), position: z.number() })),
      totalOrders: z.number(),
      lifetimeValue: z.number(),
    }),
  ),
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
  verifyAudit: method(z.strictObject({ orderId: Identifier }), z.object({ verified: z.boolean(), checkedAt: z.string(), firstBrokenEventId: z.string().nullable(), message: z.string() })),
} as const;

export type Contract = typeof contract;
export type MethodName = keyof Contract;
export type MethodInput<M extends MethodName> = z.input<Contract[M]['input']>;
export type MethodOutput<M extends MethodName> = z.infer<Contract[M]['output']>;

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
    readonly issues: { path: string; message: string }[] = [],
  ) {
    super(message);
  }
}

export function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
}

export function parseInput<M extends MethodName>(name: string, input: unknown): { method: M; input: z.infer<Contract[M]['input']> } {
  if (!Object.prototype.hasOwnProperty.call(contract, name)) throw new ContractError('UNKNOWN_METHOD', `unknown method ${JSON.stringify(name)}`);
  const parsed = contract[name as M].input.safeParse(input ?? {});
  if (!parsed.success) {
    const issues = issuesOf(parsed.error);
    throw new ContractError('BAD_INPUT', `invalid input for ${name}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  return { method: name as M, input: parsed.data as z.infer<Contract[M]['input']> };
}
