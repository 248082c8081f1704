import { dispatch, type StatusSubscribe } from '../src/app/rpc-server.js';
import type { RpcReply } from '../src/app/rpc-client.js';
import type { Handlers, StatusEvent } from '../src/app/contract.js';
import type { IpcMainInvokeEventLike, IpcMainLike } from './electron-api.js';

export const RPC_CHANNEL = 'rpc';
export const STATUS_CHANNEL = 'status';

export interface IpcRegistration {
  /** Calls currently running. */
  readonly inFlight: number;
  /** Stop taking calls (new ones get UNAVAILABLE), stop forwarding status. */
  stop(): void;
  /** Resolves once every accepted call has finished: lets an append complete before the store closes. */
  drain(): Promise<void>;
}

export interface RegisterIpcOptions {
  /** Refuse calls from frames that are not the app's own page (defence in depth). */
  isTrustedSender?: (event: IpcMainInvokeEventLike) => boolean;
}

/**
 * The one IPC entry point: `ipcRenderer.invoke('rpc', method, input)`. Input and output are
 * validated against the contract (via `dispatch`); the reply is always an RpcReply envelope, so
 * typed errors reach the renderer intact. Status events are forwarded to the window.
 */
export function registerIpc(
  ipcMain: IpcMainLike,
  handlers: Handlers,
  onStatus: StatusSubscribe,
  sendToWindow: (channel: typeof STATUS_CHANNEL, event: StatusEvent) => void,
  options: RegisterIpcOptions = {},
): IpcRegistration {
  let stopped = false;
  const running = new Set<Promise<RpcReply>>();
  ipcMain.handle(RPC_CHANNEL, (event, method, input) => {
    if (stopped) return { ok: false, error: { error: 'UNAVAILABLE', message: 'the app is shutting down', issues: [] } } satisfies RpcReply;
    if (options.isTrustedSender && !options.isTrustedSender(event)) {
      return { ok: false, error: { error: 'UNAVAILABLE', message: 'calls are only accepted from the app window', issues: [] } } satisfies RpcReply;
    }
    const call = dispatch(handlers, typeof method === 'string' ? method : String(method), input);
    running.add(call);
    void call.finally(() => running.delete(call));
    return call;
  });
  const unsubscribe = onStatus((e) => {
    if (!stopped) sendToWindow(STATUS_CHANNEL, e);
  });
  return {
    get inFlight() {
      return running.size;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      unsubscribe();
      ipcMain.removeHandler(RPC_CHANNEL);
    },
    async drain() {
      while (running.size) await Promise.allSettled([...running]);
    },
  };
}
