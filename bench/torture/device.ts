// A device wired the way the app wires it (src/app/device.ts): store, projections with the
// pending overlay, outbox and sync engine. Shared by the crash child and the parent that verifies it.
import { defaultProjections, ProjectionRunner } from '../../src/projections/index.js';
import { openLocalStore, type Durability, type LocalStore } from '../../src/store/index.js';
import { createPendingSource, Outbox, SyncEngine, SyncHttpClient } from '../../src/sync/index.js';

export interface WiredDevice {
  store: LocalStore;
  runner: ProjectionRunner;
  outbox: Outbox;
  engine: SyncEngine;
  close(): void;
}

export async function openWiredDevice(file: string, opts: { deviceId: string; serverUrl: string; token: string; durability?: Durability }): Promise<WiredDevice> {
  const store = openLocalStore(file, { durability: opts.durability ?? 'full' });
  const runner = new ProjectionRunner(store.log, defaultProjections());
  const outbox = new Outbox(store, { deviceId: opts.deviceId, onOrdersChanged: (ids) => runner.refreshOrders(ids) });
  runner.setPendingSource(createPendingSource(outbox));
  await runner.open();
  const engine = new SyncEngine({ store, outbox, client: new SyncHttpClient({ baseUrl: opts.serverUrl, token: opts.token, timeoutMs: 30_000 }) });
  return {
    store,
    runner,
    outbox,
    engine,
    close: () => {
      runner.close();
      store.close();
    },
  };
}
