import { createRpcClient, httpTransport, ipcTransport, type OrderlogBridge } from '../../src/app/rpc-client.js';

declare global {
  interface Window {
    /** Present under Electron (exposed by the preload script); absent in browser mode. */
    orderlog?: OrderlogBridge;
  }
}

/** IPC when the preload bridge exists, HTTP to the serving origin otherwise. Same contract either way. */
export const api = createRpcClient(window.orderlog ? ipcTransport(window.orderlog) : httpTransport(window.location.origin));
export const transportName = window.orderlog ? 'ipc' : 'http';
