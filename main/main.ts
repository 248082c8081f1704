import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openDevice } from '../src/app/device.js';
import { createHandlers } from '../src/app/handlers.js';
import { RENDERER_CSP } from '../src/app/rpc-server.js';
import type { BrowserWindow, ElectronMain } from './electron-api.js';
import { registerIpc, type IpcRegistration } from './ipc.js';

/**
 * Electron main process, kept thin: one instance, one local store in the user-data folder (its
 * sync scheduler runs inside the device), one IPC entry point, one locked-down window, and a
 * shutdown that lets in-flight appends and syncs finish before the store closes.
 */

// Loaded at runtime so the project typechecks without the optional `electron` package.
const { app, BrowserWindow: Window, ipcMain, session } = createRequire(import.meta.url)('electron') as ElectronMain;

const here = fileURLToPath(new URL('.', import.meta.url));
const preloadPath = join(here, 'preload.cjs');
// dist/main/main.js → dist-renderer/index.html (same layout in the source tree and in the asar).
const rendererIndex = join(here, '..', '..', 'dist-renderer', 'index.html');
const rendererUrlPrefix = pathToFileURL(join(here, '..', '..', 'dist-renderer')).href;

let mainWindow: BrowserWindow | null = null;

function createWindow(): BrowserWindow {
  const win = new Window({
    width: 1360,
    height: 860,
    minWidth: 960,
    minHeight: 600,
    show: false,
    title: 'Orderlog',
    autoHideMenuBar: true,
    webPreferences: {
      preload: preloadPath,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  win.once('ready-to-show', () => win.show());
  win.on('closed', () => {
    if (mainWindow === win) mainWindow = null;
  });
  void win.loadFile(rendererIndex);
  return win;
}

function lockDown(): void {
  const ses = session.defaultSession;
  // No remote content: the app's page is a local file and talks to main over IPC only.
  ses.webRequest.onBeforeRequest({ urls: ['http://*/*', 'https://*/*', 'ws://*/*', 'wss://*/*'] }, (_details, callback) => callback({ cancel: true }));
  ses.webRequest.onHeadersReceived((details, callback) =>
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [RENDERER_CSP] } }),
  );
  ses.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  app.on('web-contents-created', (_event, contents) => {
    contents.on('will-navigate', (event) => event.preventDefault());
    contents.on('will-redirect', (event) => event.preventDefault());
    contents.on('will-attach-webview', (event) => event.preventDefault());
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  });
}

async function start(): Promise<void> {
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return;
  }
  app.on('second-instance', () => {
    if (!mainWindow) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });

  await app.whenReady();
  lockDown();

  const env = process.env;
  const device = await openDevice({
    dataDir: env.ORDERLOG_DATA_DIR || app.getPath('userData'),
    ...(env.ORDERLOG_SERVER_URL ? { serverUrl: env.ORDERLOG_SERVER_URL } : {}),
    ...(env.ORDERLOG_TOKEN ? { token: env.ORDERLOG_TOKEN } : {}),
    ...(env.ORDERLOG_USER ? { userId: env.ORDERLOG_USER } : {}),
  });
  const handlers = createHandlers(device);
  if (env.ORDERLOG_SERVER_URL) {
    // Launched by `npm start`: stored settings would otherwise win over this run's server.
    const current = device.currentSettings();
    await handlers.saveSettings({ serverUrl: env.ORDERLOG_SERVER_URL, token: env.ORDERLOG_TOKEN ?? current.token, userId: env.ORDERLOG_USER ?? current.userId });
  }
  const ipc: IpcRegistration = registerIpc(
    ipcMain,
    handlers,
    (listener) => device.onStatus(listener),
    (channel, event) => {
      if (mainWindow && !mainWindow.isDestroyed() && !mainWindow.webContents.isDestroyed()) mainWindow.webContents.send(channel, event);
    },
    { isTrustedSender: (event) => !!event.senderFrame && event.senderFrame.url.startsWith(rendererUrlPrefix) },
  );

  mainWindow = createWindow();
  app.on('activate', () => {
    if (!mainWindow) mainWindow = createWindow();
  });
  app.on('window-all-closed', () => app.quit());

  let closing: Promise<void> | null = null;
  app.on('before-quit', (event) => {
    if (closing === null) {
      // First quit request: stop taking calls, let running ones (an append, a sync) finish, close the store.
      event.preventDefault();
      closing = (async () => {
        ipc.stop();
        await ipc.drain();
        await device.close();
      })()
        .catch((err: unknown) => console.error('orderlog: error while shutting down:', err))
        .finally(() => app.exit(0));
    } else {
      event.preventDefault();
    }
  });
}

start().catch((err: unknown) => {
  console.error('orderlog: failed to start:', err);
  app.exit(1);
});
