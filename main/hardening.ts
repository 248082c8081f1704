import { isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RENDERER_CSP } from '../src/app/csp.js';
import type { SecretCipher } from '../src/app/token-vault.js';
import type { App, IpcMainInvokeEventLike, SafeStorage, Session } from './electron-api.js';

/**
 * The Electron-specific security settings, apart from main.ts so tests can drive them with a
 * stand-in electron module: no remote content, no permissions (asked or merely checked), no
 * navigation, no new windows, no webviews.
 */
export function lockDown(ses: Session, app: Pick<App, 'on'>): void {
  // No remote content: the app's page is a local file and talks to main over IPC only.
  ses.webRequest.onBeforeRequest({ urls: ['http://*/*', 'https://*/*', 'ws://*/*', 'wss://*/*'] }, (_details, callback) => callback({ cancel: true }));
  ses.webRequest.onHeadersReceived((details, callback) =>
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [RENDERER_CSP] } }),
  );
  // Requests (a prompt) and checks (a synchronous "is this granted?", e.g. for clipboard or
  // notifications) are separate paths in Electron: both answer no.
  ses.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  ses.setPermissionCheckHandler(() => false);
  app.on('web-contents-created', (_event, contents) => {
    contents.on('will-navigate', (event) => event.preventDefault());
    contents.on('will-redirect', (event) => event.preventDefault());
    contents.on('will-attach-webview', (event) => event.preventDefault());
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  });
}

/**
 * IPC is only answered for frames showing a file inside the renderer's folder: the sender URL
 * is parsed (not prefix-matched), must be a local file: URL, and its path must lie strictly
 * inside `rendererDir`, so a sibling like `dist-renderer-x/` or a `..` escape fails.
 */
export function rendererSenderCheck(rendererDir: string): (event: IpcMainInvokeEventLike) => boolean {
  const root = resolve(rendererDir);
  return (event) => {
    const raw = event.senderFrame?.url;
    if (!raw) return false;
    let path: string;
    try {
      const url = new URL(raw);
      if (url.protocol !== 'file:' || url.host !== '') return false;
      path = fileURLToPath(url);
    } catch {
      return false;
    }
    const inside = relative(root, resolve(path));
    return inside !== '' && inside.split(sep)[0] !== '..' && !isAbsolute(inside);
  };
}

/** Electron's safeStorage as the device's token cipher, or null where it offers no real protection. */
export function safeStorageCipher(safeStorage: SafeStorage, platform: NodeJS.Platform = process.platform): SecretCipher | null {
  if (!safeStorage.isEncryptionAvailable()) return null;
  if (platform === 'linux' && safeStorage.getSelectedStorageBackend?.() === 'basic_text') return null;
  return {
    encrypt: (plain) => safeStorage.encryptString(plain),
    decrypt: (data) => safeStorage.decryptString(data),
  };
}
