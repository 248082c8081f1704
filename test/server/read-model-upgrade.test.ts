import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDUCER_VERSION } from '../../src/domain/state.js';
import { startServer, type StartedServer } from '../../src/server/index.js';
import type { TokenEntry } from '../../src/server/tokens.js';
import { BACKENDS, client, orderCreated, type TestBackend } from './helpers.js';

const TOKENS: TokenEntry[] = [{ token: 'upgrade-admin-token-0001', tenant: 'tenant-u', user: 'ops', roles: ['device', 'admin'] }];

/**
 * An upgrade that folds some event differently (issue 11: seed 004's OrderStatusChanged, stored
 * and ignored by older builds) must not leave the server's read model as the old fold built it.
 */
describe.each(BACKENDS)('read model after an upgrade on $name', (factory) => {
  let backend: TestBackend;
  let server: StartedServer | undefined;

  beforeAll(async () => {
    backend = await factory.make();
  });
  afterAll(async () => {
    await server?.close();
    await backend?.cleanup();
  });

  const start = async () => {
    await server?.close();
    server = await startServer({ ...backend.opts, tokens: TOKENS, port: 0 });
    return client(server.url, TOKENS[0]!.token);
  };
  /** Corrupt the read model behind the server's back, optionally claiming an older fold built it. */
  const tamper = async (orderId: string, olderFold: boolean) => {
    const raw = await backend.raw();
    try {
      expect(await raw.exec('UPDATE order_projections SET total = 1 WHERE order_id = ?', [orderId])).toBe(1);
      if (olderFold) expect(await raw.exec('UPDATE read_model_version SET version = 1 WHERE id = 1', [])).toBe(1);
    } finally {
      await raw.close();
    }
  };
  const total = async (c: ReturnType<typeof client>, orderId: string) => (await c.get(`/api/queries/orders/${orderId}`)).body.total as number;

  it('is rebuilt at start when an older fold built it, and left alone when it is current', async () => {
    let c = await start();
    const orderId = `ord-upgrade-${Date.now().toString(36)}`;
    expect((await c.post(`/sync/streams/${orderId}/append`, { streamType: 'Order', expectedVersion: 0, events: [orderCreated(orderId, 1000)] })).status).toBe(201);
    expect(await total(c, orderId)).toBe(10);

    // Built by the current fold: a restart does not replay (the tampered row stays as it is).
    await tamper(orderId, false);
    c = await start();
    expect(await total(c, orderId)).toBe(0.01);

    // Built by an older fold: the restart replays the log and records this build's version.
    await tamper(orderId, true);
    c = await start();
    expect(await total(c, orderId)).toBe(10);
    const raw = await backend.raw();
    try {
      expect(await raw.exec('UPDATE read_model_version SET version = version WHERE version = ?', [REDUCER_VERSION])).toBe(1);
    } finally {
      await raw.close();
    }
  });
});
