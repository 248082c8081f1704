import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrderCommandInput } from '../../src/domain/commands.js';
import type { StartedServer } from '../../src/server/index.js';
import { SyncError } from '../../src/sync/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { startFaultProxy, type Fault } from './fault-proxy.js';
import { TENANT, comparable, openDevice, serverState, startSqliteServer, type Device } from './helpers.js';

type Action =
  | { kind: 'command'; device: number; order: number; op: 'create' | 'pay' | 'reserve' | 'ship' | 'cancel' | 'refund'; amount: number; ref: number }
  | { kind: 'sync'; device: number }
  | { kind: 'online'; device: number; online: boolean }
  | { kind: 'fault'; device: number; fault: Fault };

const DEVICES = 3;
const ORDERS = 3;
const USERS = ['alice', 'bob', 'carol'];

const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('command' as const),
      device: fc.nat(DEVICES - 1),
      order: fc.nat(ORDERS - 1),
      op: fc.constantFrom('create', 'create', 'pay', 'pay', 'reserve', 'ship', 'cancel', 'refund'),
      amount: fc.constantFrom(1000, 2500, 5000),
      ref: fc.nat(5),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('sync' as const), device: fc.nat(DEVICES - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('online' as const), device: fc.nat(DEVICES - 1), online: fc.boolean() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('fault' as const),
      device: fc.nat(DEVICES - 1),
      fault: fc.constantFrom<Fault>('none', 'drop-response', 'reset-before', 'error-500'),
    }),
  },
);

function toCommand(a: Extract<Action, { kind: 'command' }>, orderId: string, n: number): OrderCommandInput {
  switch (a.op) {
    case 'create':
      return { type: 'CreateOrder', orderId, customerId: 'c1', items: [{ sku: 's1', quantity: 2, unitPrice: 2500 }], currency: 'USD' };
    case 'pay':
      return { type: 'RecordPayment', orderId, paymentId: `p-${a.device}-${n}`, amount: a.amount };
    case 'reserve':
      return { type: 'ReserveInventory', orderId, reservationId: `r-${a.device}-${n}` };
    case 'ship':
      return { type: 'ShipOrder', orderId, shipmentId: `s-${a.device}-${n}`, shippedAt: '2025-02-01T00:00:00.000Z' };
    case 'cancel':
      return { type: 'CancelOrder', orderId, reason: `cancelled on device ${a.device}`, cancelledAt: '2025-02-01T00:00:00.000Z' };
    case 'refund':
      return { type: 'RefundPayment', orderId, paymentId: `p-${a.ref % DEVICES}-${a.ref}`, amount: 1000, reason: 'goodwill' };
  }
}

describe('property: N devices with random commands, offline periods and faults converge to the server', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: StartedServer;
  let run = 0;

  beforeAll(async () => {
    tmp = tempDir('sync-prop-');
    server = await startSqliteServer(tmp.file('server.db'), USERS);
  });
  afterAll(async () => {
    await server.close();
    tmp.cleanup();
  });

  it('after full sync every device equals the server and every command is applied or in a conflict inbox', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 5, maxLength: 30 }), async (actions) => {
        run += 1;
        const faults: Fault[] = Array.from({ length: DEVICES }, () => 'none');
        const online = Array.from({ length: DEVICES }, () => true);
        const proxies = await Promise.all(USERS.map((_, i) => startFaultProxy(server.url, () => faults[i]!)));
        const devices: Device[] = USERS.map((u, i) => openDevice(tmp.file(`run${run}-${u}.db`), u, proxies[i]!.url, { timeoutMs: 3000 }));
        const orderId = (i: number) => `run${run}-o${i}`;
        const accepted: { device: number; commandId: string }[] = [];
        try {
          let n = 0;
          for (const a of actions) {
            if (a.kind === 'command') {
              const r = devices[a.device]!.submit(toCommand(a, orderId(a.order), n++));
              if (r.ok) accepted.push({ device: a.device, commandId: r.commandId });
            } else if (a.kind === 'sync') {
              if (!online[a.device]) continue;
              try {
                await devices[a.device]!.engine.syncOnce();
              } catch (err) {
                if (!(err instanceof SyncError && err.retryable)) throw err;
              }
            } else if (a.kind === 'online') online[a.device] = a.online;
            else faults[a.device] = a.fault;
          }

          // Everyone back online without faults: sync until the whole system is quiet.
          faults.fill('none');
          for (let round = 0; round < 4; round++) for (const d of devices) await d.engine.syncOnce();

          for (const d of devices) expect(d.outbox.pendingCount()).toBe(0);
          for (let o = 0; o < ORDERS; o++) {
            const remote = await server.repo.readStream(TENANT, orderId(o));
            const expected = comparable(await serverState(server, orderId(o)));
            for (const d of devices) {
              expect(comparable(d.outbox.effectiveState(orderId(o)))).toEqual(expected);
              expect(d.store.log.readStream(orderId(o), { raw: true }).map((e) => e.eventId)).toEqual(remote.map((e) => e.eventId));
            }
          }
          // Every accepted command: synced with exactly its current attempt's events on the server, or rejected in the inbox.
          const all = (await Promise.all([0, 1, 2].map((o) => server.repo.readStream(TENANT, orderId(o))))).flat();
          const byCommand = new Map<string, number>();
          for (const e of all) byCommand.set(e.metadata.commandId ?? '', (byCommand.get(e.metadata.commandId ?? '') ?? 0) + 1);
          for (const { device, commandId } of accepted) {
            const c = devices[device]!.outbox.command(commandId)!;
            expect(['synced', 'rejected']).toContain(c.status);
            if (c.status === 'synced') expect(byCommand.get(commandId)).toBe(devices[device]!.outbox.repo.eventsOfAttempt(commandId, c.attempt).length);
            else {
              expect(byCommand.get(commandId)).toBeUndefined();
              expect(devices[device]!.outbox.listConflicts().map((x) => x.commandId)).toContain(commandId);
            }
          }
          expect(all.length).toBe([...byCommand.values()].reduce((x, y) => x + y, 0));
        } finally {
          for (const d of devices) d.close();
          await Promise.all(proxies.map((p) => p.close()));
        }
      }),
      { numRuns: 15, interruptAfterTimeLimit: 40_000 },
    );
  });
});
