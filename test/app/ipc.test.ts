import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StatusEvent } from '../../src/app/contract.js';
import { openDevice } from '../../src/app/device.js';
import { createHandlers } from '../../src/app/handlers.js';
import type { RpcReply } from '../../src/app/rpc-client.js';
import type { IpcMainInvokeEventLike, IpcMainLike } from '../../main/electron-api.js';
import { rendererSenderCheck } from '../../main/hardening.js';
import { registerIpc, RPC_CHANNEL, type IpcRegistration } from '../../main/ipc.js';

/** Electron's ipcMain reduced to what matters here: one handler per channel, invoked with an event. */
class TestIpcMain extends EventEmitter implements IpcMainLike {
  private readonly handlers = new Map<string, (event: IpcMainInvokeEventLike, ...args: unknown[]) => unknown>();
  handle(channel: string, listener: (event: IpcMainInvokeEventLike, ...args: unknown[]) => unknown): void {
    if (this.handlers.has(channel)) throw new Error(`Attempted to register a second handler for '${channel}'`);
    this.handlers.set(channel, listener);
  }
  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  }
  async invoke(channel: string, url: string, ...args: unknown[]): Promise<RpcReply> {
    const handler = this.handlers.get(channel);
    if (!handler) throw new Error(`No handler registered for '${channel}'`);
    return (await handler({ senderFrame: { url }, sender: { id: 1 } }, ...args)) as RpcReply;
  }
}

const APP_URL = 'file:///app/dist-renderer/index.html';
const create = (orderId: string, unitPrice = 1500) => ({
  command: { type: 'CreateOrder', orderId, customerId: 'CUST-1', items: [{ sku: 'SKU-1', quantity: 2, unitPrice }] },
});

describe('registerIpc with the real device store', () => {
  let dir: string;
  let device: Awaited<ReturnType<typeof openDevice>>;
  let ipcMain: TestIpcMain;
  let sent: StatusEvent[];
  let reg: IpcRegistration;
  const call = (method: string, input: unknown, url = APP_URL) => ipcMain.invoke(RPC_CHANNEL, url, method, input);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orderlog-ipc-'));
    device = await openDevice({ dataDir: dir, userId: 'alice' });
    ipcMain = new TestIpcMain();
    sent = [];
    reg = registerIpc(ipcMain, createHandlers(device), (l) => device.onStatus(l), (channel, e) => {
      expect(channel).toBe('status');
      sent.push(e);
    }, { isTrustedSender: rendererSenderCheck('/app/dist-renderer') });
  });

  afterEach(async () => {
    reg.stop();
    await reg.drain();
    await device.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('executes a command offline and reads it back, pending sync', async () => {
    const r = await call('execute', create('ORD-1'));
    expect(r).toMatchObject({ ok: true, value: { ok: true, orderId: 'ORD-1', version: 1 } });
    const list = await call('listOrders', {});
    expect(list.ok).toBe(true);
    const value = (list as { value: { rows: { orderId: string; sync: string; total: number }[]; total: number } }).value;
    expect(value.total).toBe(1);
    expect(value.rows[0]).toMatchObject({ orderId: 'ORD-1', sync: 'pending', total: 3000 });
    const detail = await call('getOrder', { orderId: 'ORD-1' });
    expect(detail).toMatchObject({ ok: true, value: { state: { status: 'CREATED', version: 1 }, sync: 'pending' } });
  });

  it('rejects bad input with field-level issues and changes nothing', async () => {
    const r = await call('execute', { command: { type: 'CreateOrder', orderId: 'ORD 2', customerId: 'C', items: [] } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.error).toBe('BAD_INPUT');
    expect(r.error.issues.map((i) => i.path)).toEqual(expect.arrayContaining(['command.orderId', 'command.items']));
    const list = (await call('listOrders', {})) as { ok: true; value: { total: number } };
    expect(list.value.total).toBe(0);
    expect(await call('noSuchMethod', {})).toMatchObject({ ok: false, error: { error: 'UNKNOWN_METHOD' } });
  });

  it('returns business-rule rejections as data, in words', async () => {
    await call('execute', create('ORD-3', 1000));
    const r = await call('execute', { command: { type: 'RecordPayment', orderId: 'ORD-3', paymentId: 'PAY-1', amount: 5000 } });
    expect(r).toMatchObject({ ok: true, value: { ok: false, rejection: { code: 'OVERPAYMENT' } } });
    expect((r as { value: { rejection: { message: string } } }).value.rejection.message).toMatch(/more than the 20\.00 USD still owed/);
  });

  it('time travel through IPC returns the older state', async () => {
    await call('execute', create('ORD-4', 1000));
    await call('execute', { command: { type: 'RecordPayment', orderId: 'ORD-4', paymentId: 'PAY-1', amount: 2000 } });
    const v1 = await call('getOrderAsOf', { orderId: 'ORD-4', version: 1 });
    const v2 = await call('getOrderAsOf', { orderId: 'ORD-4', version: 2 });
    expect(v1).toMatchObject({ ok: true, value: { status: 'CREATED', paidAmount: 0 } });
    expect(v2).toMatchObject({ ok: true, value: { status: 'PAID', paidAmount: 2000 } });
  });

  it('forwards status events to the window', async () => {
    await call('execute', create('ORD-5'));
    await expect.poll(() => sent.find((e) => e.kind === 'changed'), { timeout: 5000 }).toMatchObject({ kind: 'changed', orderIds: ['ORD-5'] });
  });

  it('refuses calls from frames that are not the app page', async () => {
    for (const url of ['https://evil.example/', 'file:///app/dist-renderer-x/index.html', 'file:///app/index.html']) {
      expect(await call('listOrders', {}, url), url).toMatchObject({ ok: false, error: { error: 'UNAVAILABLE' } });
    }
  });

  it('on shutdown lets a running append finish, then refuses new calls', async () => {
    const running = call('execute', create('ORD-6'));
    reg.stop();
    await reg.drain();
    expect(reg.inFlight).toBe(0);
    expect(await running).toMatchObject({ ok: true, value: { ok: true } });
    await expect(call('listOrders', {})).rejects.toThrow(/No handler registered/);
    // The append was committed: a fresh registration (as after a window reload) sees it.
    reg = registerIpc(ipcMain, createHandlers(device), (l) => device.onStatus(l), () => undefined);
    expect(await call('listOrders', {})).toMatchObject({ ok: true, value: { total: 1 } });
  });
});
