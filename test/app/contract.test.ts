import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ContractError, contract, parseInput, type Handlers, type MethodName } from '../../src/app/contract.js';
import { createRpcClient, RpcError, type RpcReply, type Transport } from '../../src/app/rpc-client.js';
import { dispatch, httpStatusOf } from '../../src/app/rpc-server.js';

/** A transport that records what was sent and answers with a fixed reply. */
function recordingTransport(reply: RpcReply) {
  const sent: { method: string; input: unknown }[] = [];
  const transport: Transport = {
    invoke: async (method, input) => {
      sent.push({ method, input });
      return reply;
    },
    onStatus: () => () => undefined,
  };
  return { sent, transport };
}

const goodCreate = {
  type: 'CreateOrder',
  orderId: 'ORD-1',
  customerId: 'CUST-1',
  items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 1250 }],
};

describe('parseInput (the store side)', () => {
  it('applies defaults and accepts a valid command', () => {
    const { input } = parseInput<'listOrders'>('listOrders', {});
    expect(input).toMatchObject({ status: 'ALL', sort: 'updatedAt', direction: 'desc', limit: 50, offset: 0 });
    const exec = parseInput<'execute'>('execute', { command: goodCreate });
    expect(exec.input.command).toMatchObject({ type: 'CreateOrder', currency: 'USD' });
  });

  it('names the field and the rule for bad input', () => {
    try {
      parseInput('execute', { command: { ...goodCreate, items: [{ sku: 'bad sku!', quantity: 0, unitPrice: 1.5 }] } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ContractError);
      const e = err as ContractError;
      expect(e.code).toBe('BAD_INPUT');
      const paths = e.issues.map((i) => i.path);
      expect(paths).toEqual(expect.arrayContaining(['command.items.0.sku', 'command.items.0.quantity', 'command.items.0.unitPrice']));
      expect(e.message).toMatch(/whole number of minor units/);
    }
  });

  it('refuses unknown methods, unknown keys and inherited property names', () => {
    expect(() => parseInput('dropDatabase', {})).toThrow(/unknown method "dropDatabase"/);
    expect(() => parseInput('toString', {})).toThrow(ContractError);
    expect(() => parseInput('syncNow', { force: true })).toThrow(/force/);
    expect(() => parseInput('listOrders', { limit: 10_000 })).toThrow(/limit/);
    expect(() => parseInput('saveSettings', { serverUrl: 'ftp://x', token: '', userId: 'a' })).toThrow(/http\(s\) URL/);
  });

  it('only ever throws ContractError, whatever arrives over the wire', () => {
    const names = Object.keys(contract) as MethodName[];
    fc.assert(
      fc.property(fc.constantFrom(...names, 'nope', '__proto__'), fc.jsonValue(), (name, input) => {
        try {
          parseInput(name, input);
        } catch (err) {
          expect(err).toBeInstanceOf(ContractError);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('dispatch (validates the handler side too)', () => {
  const handlers = {
    syncStatus: async () => ({ state: 'bogus' }),
    dismissConflict: async () => {
      throw new Error('disk on fire');
    },
    getSettings: async () => ({ serverUrl: '', userId: 'me', deviceId: 'dev-1', tokenSet: false, tokenServer: null }),
    saveSettings: async () => ({ serverUrl: 'http://x', userId: 'me', deviceId: 'dev-1', tokenSet: true, tokenServer: 'http://x', token: 'leaked-token-123' }),
  } as unknown as Handlers;

  it('returns the validated value', async () => {
    expect(await dispatch(handlers, 'getSettings', {})).toEqual({ ok: true, value: { serverUrl: '', userId: 'me', deviceId: 'dev-1', tokenSet: false, tokenServer: null } });
  });

  it('never lets a settings reply carry a token: an extra key is a BAD_OUTPUT that does not quote it', async () => {
    const r = await dispatch(handlers, 'saveSettings', { serverUrl: 'http://x', token: 'leaked-token-123', userId: 'me' });
    expect(r).toMatchObject({ ok: false, error: { error: 'BAD_OUTPUT' } });
    expect(JSON.stringify(r)).not.toContain('leaked-token-123');
  });

  it('turns an invalid result into BAD_OUTPUT (500), not a half-valid reply', async () => {
    const r = await dispatch(handlers, 'syncStatus', {});
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.error).toBe('BAD_OUTPUT');
    expect(httpStatusOf(r)).toBe(500);
  });

  it('reports bad input as 400 and never calls the handler', async () => {
    let called = false;
    const r = await dispatch({ ...handlers, getOrder: async () => ((called = true), null) } as Handlers, 'getOrder', { orderId: '' });
    expect(called).toBe(false);
    expect(r).toMatchObject({ ok: false, error: { error: 'BAD_INPUT', issues: expect.arrayContaining([{ path: 'orderId', message: 'must not be empty' }]) } });
    expect(httpStatusOf(r)).toBe(400);
  });

  it('reports handler failures as INTERNAL with the message', async () => {
    const r = await dispatch(handlers, 'dismissConflict', { commandId: 'x' });
    expect(r).toEqual({ ok: false, error: { error: 'INTERNAL', message: 'disk on fire', issues: [] } });
  });
});

describe('createRpcClient (the renderer side)', () => {
  it('rejects bad input before anything is sent', async () => {
    const { sent, transport } = recordingTransport({ ok: true, value: null });
    const client = createRpcClient(transport);
    await expect(client.getOrder({ orderId: 'has space' })).rejects.toMatchObject({ name: 'RpcError', code: 'BAD_INPUT' });
    expect(sent).toEqual([]);
  });

  it('sends the parsed input (defaults filled in)', async () => {
    const { sent, transport } = recordingTransport({ ok: true, value: [] });
    await createRpcClient(transport).listConflicts({});
    expect(sent).toEqual([{ method: 'listConflicts', input: { includeDismissed: false } }]);
  });

  it('rejects a reply that does not match the contract', async () => {
    const { transport } = recordingTransport({ ok: true, value: { ok: true } });
    const err = await createRpcClient(transport)
      .execute({ command: goodCreate as never })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).code).toBe('BAD_OUTPUT');
    expect((err as RpcError).message).toMatch(/commandId|rejection/);
  });

  it('rethrows typed errors from the other side', async () => {
    const { transport } = recordingTransport({ ok: false, error: { error: 'BAD_INPUT', message: 'userId: too long', issues: [{ path: 'userId', message: 'too long' }] } });
    await expect(createRpcClient(transport).saveSettings({ serverUrl: '', userId: 'x' })).rejects.toMatchObject({
      code: 'BAD_INPUT',
      issues: [{ path: 'userId', message: 'too long' }],
    });
  });

  it('drops status notifications that do not match StatusEvent', () => {
    let emit: (e: unknown) => void = () => undefined;
    const transport: Transport = {
      invoke: async () => ({ ok: true, value: null }),
      onStatus: (l) => ((emit = l), () => undefined),
    };
    const seen: unknown[] = [];
    createRpcClient(transport).onStatus((e) => seen.push(e));
    emit({ kind: 'changed', position: 3, orderIds: ['ORD-1'] });
    emit({ kind: 'changed', position: 'x' });
    emit({ kind: 'weird' });
    expect(seen).toEqual([{ kind: 'changed', position: 3, orderIds: ['ORD-1'] }]);
  });
});
