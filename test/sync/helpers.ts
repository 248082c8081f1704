import { foldOrder, type OrderState } from '../../src/domain/state.js';
import type { OrderCommandInput } from '../../src/domain/commands.js';
import { startServer, type BackendOptions, type StartedServer } from '../../src/server/index.js';
import { openLocalStore, type LocalStore } from '../../src/store/local-store.js';
import { Outbox } from '../../src/sync/outbox.js';
import { SyncEngine } from '../../src/sync/sync-engine.js';
import { SyncHttpClient } from '../../src/sync/http-client.js';

export const TENANT = 'acme';
export const tokenOf = (user: string) => `token-for-${user}-0123456789`;

/** A server on either backend where each user has a device token of the one tenant. */
export async function startDeviceServer(backend: BackendOptions, users = ['alice', 'bob', 'carol', 'dave']): Promise<StartedServer> {
  return startServer({
    ...backend,
    tokens: users.map((u) => ({ token: tokenOf(u), tenant: TENANT, user: u, roles: ['device' as const] })),
    port: 0,
  });
}

export function startSqliteServer(file: string, users?: string[]): Promise<StartedServer> {
  return startDeviceServer({ backend: 'sqlite', file }, users);
}

export interface Device {
  name: string;
  store: LocalStore;
  outbox: Outbox;
  engine: SyncEngine;
  changed: string[][];
  submit(cmd: OrderCommandInput): ReturnType<Outbox['submit']>;
  close(): void;
}

export function openDevice(file: string, name: string, serverUrl: string, opts: { user?: string; timeoutMs?: number } = {}): Device {
  const store = openLocalStore(file, { durability: 'normal' });
  const changed: string[][] = [];
  const outbox = new Outbox(store, {
    deviceId: `dev-${name}`,
    onOrdersChanged: (ids) => {
      // The lead wires this to projections: it must run inside the writing transaction.
      if (!store.db.inTransaction) throw new Error('onOrdersChanged called outside a transaction');
      changed.push(ids);
    },
  });
  const user = opts.user ?? name;
  const client = new SyncHttpClient({ baseUrl: serverUrl, token: tokenOf(user), timeoutMs: opts.timeoutMs ?? 5000 });
  const engine = new SyncEngine({ store, outbox, client });
  return {
    name,
    store,
    outbox,
    engine,
    changed,
    submit: (cmd) => outbox.submit(cmd, { userId: user }),
    close: () => store.close(),
  };
}

/** Domain state without the local/server recording times (they legitimately differ per replica). */
export function comparable(s: OrderState): Omit<OrderState, 'createdAt' | 'updatedAt'> {
  const { createdAt: _c, updatedAt: _u, ...rest } = s;
  return rest;
}

export async function serverState(server: StartedServer, orderId: string): Promise<OrderState> {
  const events = await server.repo.readStream(TENANT, orderId);
  return foldOrder(events.map((e) => ({ type: e.eventType, data: e.data, version: e.streamVersion })));
}

export const createOrder = (orderId: string, total = 10_000): OrderCommandInput => ({
  type: 'CreateOrder',
  orderId,
  customerId: 'cust-1',
  items: [{ sku: 'sku-1', quantity: 1, unitPrice: total }],
  currency: 'USD',
});
export const pay = (orderId: string, paymentId: string, amount: number): OrderCommandInput => ({ type: 'RecordPayment', orderId, paymentId, amount });
export const reserve = (orderId: string, reservationId: string): OrderCommandInput => ({ type: 'ReserveInventory', orderId, reservationId });
export const cancel = (orderId: string, reason = 'customer changed their mind'): OrderCommandInput => ({
  type: 'CancelOrder',
  orderId,
  reason,
  cancelledAt: '2025-01-02T03:04:05.000Z',
});
export const ship = (orderId: string, shipmentId: string): OrderCommandInput => ({
  type: 'ShipOrder',
  orderId,
  shipmentId,
  shippedAt: '2025-01-03T03:04:05.000Z',
});
