// Several device stores and an in-process SQLite server: devices work offline (random, often
// conflicting commands on shared orders), sync in random partitions, and must all end with the
// server's state for every order, with every command either synced or in a conflict inbox.
// Used by the benchmark ("5 devices converge after 1 day offline each") and by the torture run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { OrderCommandInput } from '../../src/domain/commands.js';
import { foldOrder, type OrderState } from '../../src/domain/state.js';
import { startServer, type StartedServer } from '../../src/server/index.js';
import { openLocalStore, type LocalStore } from '../../src/store/index.js';
import { Outbox, SyncEngine, SyncHttpClient } from '../../src/sync/index.js';

export const TENANT = 'torture';
export const tokenFor = (user: string) => `torture-token-${user}-0123456789`;

/** Small deterministic PRNG (mulberry32) so a failing run can be replayed from its seed. */
export function rng(seed: number): { next(): number; int(n: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (xs) => xs[Math.floor(next() * xs.length)]!, chance: (p) => next() < p };
}

export interface SimDevice {
  name: string;
  store: LocalStore;
  outbox: Outbox;
  engine: SyncEngine;
  /** Simulated wall clock of this device (ms since epoch). */
  clock: { now: number };
  close(): void;
}

export function openSimDevice(dir: string, name: string, serverUrl: string, startMs: number): SimDevice {
  // Durability 'normal' here: these runs test logic across many devices, not power loss.
  const store = openLocalStore(join(dir, `${name}.sqlite`), { durability: 'normal' });
  const clock = { now: startMs };
  const outbox = new Outbox(store, { deviceId: `dev-${name}`, now: () => new Date(clock.now).toISOString() });
  const client = new SyncHttpClient({ baseUrl: serverUrl, token: tokenFor(name), timeoutMs: 30_000 });
  const engine = new SyncEngine({ store, outbox, client });
  return { name, store, outbox, engine, clock, close: () => store.close() };
}

export function startSimServer(file: string, users: string[]): Promise<StartedServer> {
  return startServer({
    backend: 'sqlite',
    file,
    tokens: users.map((u) => ({ token: tokenFor(u), tenant: TENANT, user: u, roles: ['device' as const] })),
    port: 0,
    // Many devices syncing in a burst from one address: the per-token limit is not what is tested.
    rateLimit: { max: 1_000_000, timeWindowMs: 1000 },
  });
}

const iso = (ms: number) => new Date(ms).toISOString();

/** One random command, biased towards the shared orders so devices conflict with each other. */
export function randomCommand(r: ReturnType<typeof rng>, device: SimDevice, shared: string[], own: string[], seq: number): OrderCommandInput {
  const orderId = own.length > 0 && r.chance(0.4) ? r.pick(own) : r.pick(shared);
  const roll = r.next();
  if (roll < 0.15 || (own.length === 0 && roll < 0.3)) {
    const id = `O-${device.name}-${seq}`;
    own.push(id);
    return { type: 'CreateOrder', orderId: id, customerId: `C-${r.int(50)}`, items: [{ sku: `SKU-${r.int(20)}`, quantity: 1 + r.int(3), unitPrice: 1000 * (1 + r.int(9)) }], currency: 'USD' };
  }
  if (roll < 0.6) return { type: 'RecordPayment', orderId, paymentId: `P-${device.name}-${seq}`, amount: 1000 * (1 + r.int(6)) };
  if (roll < 0.75) return { type: 'ReserveInventory', orderId, reservationId: `R-${device.name}-${seq}` };
  if (roll < 0.9) return { type: 'ShipOrder', orderId, shipmentId: `S-${device.name}-${seq}`, shippedAt: iso(device.clock.now) };
  return { type: 'CancelOrder', orderId, reason: `cancelled on ${device.name}`, cancelledAt: iso(device.clock.now) };
}

/** Sync a device until it has nothing pending and has pulled everything (bounded rounds). */
export async function syncUntilQuiet(d: SimDevice, maxRounds = 20): Promise<{ rounds: number; pushed: number; pulled: number; rejected: number }> {
  const total = { rounds: 0, pushed: 0, pulled: 0, rejected: 0 };
  for (let i = 0; i < maxRounds; i++) {
    const rep = await d.engine.syncOnce();
    total.rounds += rep.rounds;
    total.pushed += rep.pushedEvents;
    total.pulled += rep.pulledEvents;
    total.rejected += rep.rejectedCommands.length;
    if (rep.pending === 0 && rep.pushedEvents === 0 && rep.pulledEvents === 0) break;
  }
  return total;
}

export interface ConvergenceCheck {
  orders: number;
  mismatches: string[];
  /** Commands neither synced nor in a conflict inbox (must be 0). */
  unaccounted: number;
  rejected: number;
  synced: number;
}

const comparable = (s: OrderState) => {
  const { createdAt: _c, updatedAt: _u, ...rest } = s;
  return rest;
};

/** Every device's confirmed state of every order equals the server's fold of its stream. */
export async function checkConvergence(server: StartedServer, devices: SimDevice[]): Promise<ConvergenceCheck> {
  const ids = new Set<string>();
  for (let after = 0; ; ) {
    const page = await server.repo.pull(TENANT, after, 5000);
    for (const e of page.events) ids.add(e.streamId);
    if (!page.hasMore) break;
    after = page.nextPosition;
  }
  const mismatches: string[] = [];
  for (const id of ids) {
    const events = await server.repo.readStream(TENANT, id);
    const expected = comparable(foldOrder(events.map((e) => ({ type: e.eventType, data: e.data, version: e.streamVersion }))));
    for (const d of devices) {
      const local = comparable(d.outbox.confirmedState(id));
      if (!isDeepStrictEqual(local, expected)) mismatches.push(`${d.name}: order ${id} differs from the server (local v${local.version}, server v${expected.version})`);
      if (d.outbox.pendingEvents(id).length > 0) mismatches.push(`${d.name}: order ${id} still has pending events`);
    }
  }
  let unaccounted = 0;
  let rejected = 0;
  let synced = 0;
  for (const d of devices) {
    const rows = d.store.db.prepare('SELECT status, COUNT(*) AS n FROM commands GROUP BY status').all() as { status: string; n: number }[];
    for (const r of rows) {
      if (r.status === 'synced') synced += r.n;
      else if (r.status === 'rejected' || r.status === 'dismissed' || r.status === 'retried') rejected += r.n;
      else unaccounted += r.n;
    }
  }
  return { orders: ids.size, mismatches, unaccounted, rejected, synced };
}

export interface OfflineDayOptions {
  devices?: number;
  /** Commands each device submits during its day offline. */
  commandsPerDevice?: number;
  /** Orders every device knows before going offline (where the conflicts happen). */
  sharedOrders?: number;
  seed?: number;
}

export interface OfflineDayResult {
  devices: number;
  commands_submitted: number;
  commands_rejected_locally: number;
  commands_pending_at_reconnect: number;
  converge_ms: number;
  sync_rounds: number;
  rejected_on_sync: number;
  orders: number;
  mismatches: number;
  unaccounted_commands: number;
}

/**
 * "N devices converge after a day offline each": every device works through a simulated
 * 8-hour shift offline, then all reconnect at once; measured from reconnect until every device
 * has pushed, rebased and pulled everything and agrees with the server.
 */
export async function simulateOfflineDay(opts: OfflineDayOptions = {}): Promise<OfflineDayResult> {
  const n = opts.devices ?? 5;
  const perDevice = opts.commandsPerDevice ?? 400;
  const sharedCount = opts.sharedOrders ?? 50;
  const r = rng(opts.seed ?? 7);
  const dir = mkdtempSync(join(tmpdir(), 'offline-day-'));
  const names = Array.from({ length: n }, (_, i) => `d${i}`);
  const server = await startSimServer(join(dir, 'server.sqlite'), names);
  const start = Date.parse('2025-03-03T08:00:00.000Z');
  const devices = names.map((name) => openSimDevice(dir, name, server.url, start));
  try {
    // Online morning: the shared orders are created and everyone has them.
    const shared = Array.from({ length: sharedCount }, (_, i) => `O-shared-${i}`);
    for (const id of shared) {
      devices[0]!.outbox.submit({ type: 'CreateOrder', orderId: id, customerId: `C-${r.int(50)}`, items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 5000 }], currency: 'USD' }, { userId: 'd0' });
    }
    for (const d of devices) await syncUntilQuiet(d);

    // The day offline: a command every ~70 s of simulated time per device.
    let submitted = 0;
    let rejectedLocally = 0;
    const dayMs = 8 * 3600_000;
    for (const d of devices) {
      const own: string[] = [];
      for (let i = 0; i < perDevice; i++) {
        d.clock.now = start + Math.round(((i + 1) / perDevice) * dayMs);
        const res = d.outbox.submit(randomCommand(r, d, shared, own, i), { userId: d.name });
        submitted++;
        if (!res.ok) rejectedLocally++;
      }
    }
    const pendingAtReconnect = devices.reduce((s, d) => s + d.outbox.pendingCount(), 0);

    // Reconnect: everyone syncs at once, then again until nobody has anything left to exchange.
    const t0 = performance.now();
    let rounds = 0;
    let rejectedOnSync = 0;
    for (let pass = 0; pass < 10; pass++) {
      const reports = await Promise.all(devices.map((d) => syncUntilQuiet(d)));
      rounds += reports.reduce((s, x) => s + x.rounds, 0);
      rejectedOnSync += reports.reduce((s, x) => s + x.rejected, 0);
      if (reports.every((x) => x.pushed === 0 && x.pulled === 0)) break;
    }
    const convergeMs = performance.now() - t0;
    const check = await checkConvergence(server, devices);
    for (const m of check.mismatches.slice(0, 5)) console.error(`  convergence: ${m}`);
    return {
      devices: n,
      commands_submitted: submitted,
      commands_rejected_locally: rejectedLocally,
      commands_pending_at_reconnect: pendingAtReconnect,
      converge_ms: Math.round(convergeMs),
      sync_rounds: rounds,
      rejected_on_sync: rejectedOnSync,
      orders: check.orders,
      mismatches: check.mismatches.length,
      unaccounted_commands: check.unaccounted,
    };
  } finally {
    for (const d of devices) d.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
