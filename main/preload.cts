/**
 * Preload for a sandboxed renderer: CommonJS (sandboxed preloads cannot be ESM) and
 * self-contained (it may require only 'electron'). It exposes exactly two functions; the
 * renderer never sees ipcRenderer itself.
 */
// Types inlined (no import): the emitted file must be plain CommonJS with no module wrapper.
type Listener = (event: unknown, ...args: unknown[]) => void;
interface PreloadElectron {
  contextBridge: { exposeInMainWorld(key: string, api: unknown): void };
  ipcRenderer: {
    invoke(channel: string, ...args: unknown[]): Promise<unknown>;
    on(channel: string, listener: Listener): void;
    removeListener(channel: string, listener: Listener): void;
  };
}

// eslint-disable-next-line @typescript-eslint/no-require-imports -- a sandboxed preload can only require()
const { contextBridge, ipcRenderer } = require('electron') as PreloadElectron;

contextBridge.exposeInMainWorld('orderlog', {
  invoke(method: string, input: unknown): Promise<unknown> {
    if (typeof method !== 'string') return Promise.reject(new TypeError('method must be a string'));
    return ipcRenderer.invoke('rpc', method, input);
  },
  onStatus(callback: (event: unknown) => void): () => void {
    if (typeof callback !== 'function') throw new TypeError('callback must be a function');
    const listener = (_event: unknown, status: unknown) => callback(status);
    ipcRenderer.on('status', listener);
    return () => ipcRenderer.removeListener('status', listener);
  },
});
