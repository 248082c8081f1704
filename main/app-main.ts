import { openDevice } from '../src/app/device.js';
import { createHandlers } from '../src/app/handlers.js';
import type { BrowserWindow, ElectronMain } from './electron-api.js';
import { lockDown, rendererSenderCheck, safeStorageCipher } from './hardening.js';
import { registerIpc, type IpcRegistration } from './ipc.js';

/**
 * Electron main process, kept thin: one instance, one local store in the user-data folder (its
 * sync scheduler runs inside the device), one IPC entry point, one locked-down window, and a
 * shutdown that lets in-flight appends and syncs finish before the store closes. The electron
 * module is a parameter so tests can run this wiring against a stand-in.
 */

export interface MainPaths {
  preload: string;
  /** dist-renderer/: the only folder whose pages may call IPC. */
  rendererDir: string;
  rendererIndex: string;
}

export interface RunningMain {
  /** Resolves once the device is open and the window created. */
  ready: Promise<void>;
}

export function runMain(electron: ElectronMain, env: NodeJS.ProcessEnv, paths: MainPaths): RunningMain {
  const { app, BrowserWindow: Window, ipcMain, session, safeStorage } = electron;
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
        preload: paths.preload,
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
    void win.loadFile(paths.rendererIndex);
    return win;
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
    lockDown(session.defaultSession, app);

    const device = await openDevice({
      dataDir: env.ORDERLOG_DATA_DIR || app.getPath('userData'),
      // safeStorage can only be asked once the app is ready.
      tokenCipher: safeStorageCipher(safeStorage),
      ...(env.ORDERLOG_SERVER_URL ? { serverUrl: env.ORDERLOG_SERVER_URL } : {}),
      ...(env.ORDERLOG_TOKEN ? { token: env.ORDERLOG_TOKEN } : {}),
      ...(env.ORDERLOG_USER ? { userId: env.ORDERLOG_USER } : {}),
    });
    const handlers = createHandlers(device);
    // ORDERLOG_SERVER_URL/TOKEN/USER only seed a device that has no settings yet: what the person
    // saved in Settings is never reset by the next launch.
    const ipc: IpcRegistration = registerIpc(
      ipcMain,
      handlers,
      (listener) => device.onStatus(listener),
      (channel, event) => {
        if (mainWindow && !mainWindow.isDestroyed() && !mainWindow.webContents.isDestroyed()) mainWindow.webContents.send(channel, event);
      },
      { isTrustedSender: rendererSenderCheck(paths.rendererDir) },
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

  const ready = start().catch((err: unknown) => {
    console.error('orderlog: failed to start:', err);
    app.exit(1);
  });
  return { ready };
}
