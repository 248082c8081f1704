import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_FILE } from '../../src/app/device.js';
import type { RpcReply } from '../../src/app/rpc-client.js';
import { runMain } from '../../main/app-main.js';
import type { BrowserWindowOptions, ElectronMain, IpcMainInvokeEventLike, SafeStorage } from '../../main/electron-api.js';
import { rendererSenderCheck, safeStorageCipher } from '../../main/hardening.js';

/**
 * main/ against a stand-in electron module (the real binary cannot be downloaded here): every
 * security setting it applies is recorded and asserted, and the device it opens is real.
 */

const TOKEN = 'electron-token-3b8f1e6d2c9a';
const RENDERER_DIR = '/opt/orderlog/resources/app.asar/dist-renderer';
const APP_URL = pathToFileURL(join(RENDERER_DIR, 'index.html')).href;

type Listener = (...args: unknown[]) => unknown;

function fakeSafeStorage(backend = 'gnome_libsecret', available = true): SafeStorage & { encrypted: number } {
  const key = randomBytes(32);
  return {
    encrypted: 0,
    isEncryptionAvailable: () => available,
    getSelectedStorageBackend: () => backend,
    encryptString(plain) {
      this.encrypted++;
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
      return Buffer.concat([iv, c.getAuthTag(), body]);
    },
    decryptString(data) {
      const d = createDecipheriv('aes-256-gcm', key, data.subarray(0, 12));
      d.setAuthTag(data.subarray(12, 28));
      return Buffer.concat([d.update(data.subarray(28)), d.final()]).toString('utf8');
    },
  };
}

function fakeElectron(dataDir: string) {
  const app = Object.assign(new EventEmitter(), {
    exitCode: null as number | null,
    requestSingleInstanceLock: () => true,
    quit: () => undefined,
    exit(code = 0) {
      app.exitCode = code;
    },
    whenReady: () => Promise.resolve(),
    getPath: () => dataDir,
  });
  const sent: unknown[][] = [];
  const contentsListeners = new Map<string, Listener>();
  const windows: { options: BrowserWindowOptions; loaded: string[] }[] = [];
  class BrowserWindow {
    readonly loaded: string[] = [];
    readonly webContents = {
      id: 1,
      send: (...args: unknown[]) => sent.push(args),
      on: () => undefined,
      setWindowOpenHandler: () => undefined,
      isDestroyed: () => false,
    };
    constructor(readonly options: BrowserWindowOptions) {
      windows.push(this);
    }
    loadFile(path: string) {
      this.loaded.push(path);
      return Promise.resolve();
    }
    once() {}
    on() {}
    show() {}
    focus() {}
    restore() {}
    isMinimized = () => false;
    isDestroyed = () => false;
  }
  const ipcHandlers = new Map<string, (event: IpcMainInvokeEventLike, ...args: unknown[]) => unknown>();
  const session = {
    permissionRequest: null as null | ((wc: unknown, permission: string, cb: (granted: boolean) => void) => void),
    permissionCheck: null as null | ((wc: unknown, permission: string, origin: string) => boolean),
    blocked: null as null | { filter: { urls: string[] }; listener: (d: { url: string }, cb: (r: { cancel: boolean }) => void) => void },
    headers: null as null | ((d: { url: string; responseHeaders?: Record<string, string[]> }, cb: (r: { responseHeaders?: Record<string, string[]> }) => void) => void),
  };
  const safeStorage = fakeSafeStorage();
  const electron = {
    app,
    BrowserWindow,
    safeStorage,
    ipcMain: {
      handle: (channel: string, l: (event: IpcMainInvokeEventLike, ...args: unknown[]) => unknown) => ipcHandlers.set(channel, l),
      removeHandler: (channel: string) => ipcHandlers.delete(channel),
    },
    session: {
      defaultSession: {
        webRequest: {
          onBeforeRequest: (filter: { urls: string[] }, listener: NonNullable<typeof session.blocked>['listener']) => (session.blocked = { filter, listener }),
          onHeadersReceived: (listener: NonNullable<typeof session.headers>) => (session.headers = listener),
        },
        setPermissionRequestHandler: (h: NonNullable<typeof session.permissionRequest>) => (session.permissionRequest = h),
        setPermissionCheckHandler: (h: NonNullable<typeof session.permissionCheck>) => (session.permissionCheck = h),
      },
    },
  };
  const invoke = async (url: string, method: string, input: unknown) => (await ipcHandlers.get('rpc')!({ senderFrame: { url }, sender: { id: 1 } }, method, input)) as RpcReply;
  return { electron: electron as unknown as ElectronMain, app, windows, sent, session, safeStorage, contentsListeners, invoke };
}

describe('Electron main wiring (stand-in electron module, real device)', () => {
  let dir: string;
  let fake: ReturnType<typeof fakeElectron>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orderlog-main-'));
    fake = fakeElectron(dir);
    const running = runMain(fake.electron, { ORDERLOG_SERVER_URL: 'http://127.0.0.1:9', ORDERLOG_TOKEN: TOKEN, ORDERLOG_USER: 'maria' }, {
      preload: '/opt/orderlog/resources/app.asar/dist/main/preload.cjs',
      rendererDir: RENDERER_DIR,
      rendererIndex: join(RENDERER_DIR, 'index.html'),
    });
    await running.ready;
    expect(fake.app.exitCode).toBeNull();
  });

  afterAll(async () => {
    // Quit as Electron would: main defers the first before-quit until the store has closed.
    let prevented = false;
    fake.app.emit('before-quit', { preventDefault: () => (prevented = true) });
    expect(prevented).toBe(true);
    for (let i = 0; i < 200 && fake.app.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
    expect(fake.app.exitCode).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('denies every permission, whether requested or merely checked', () => {
    for (const permission of ['media', 'geolocation', 'notifications', 'clipboard-read', 'clipboard-sanitized-write', 'openExternal', 'fullscreen', 'hid', 'serial', 'usb']) {
      let granted: boolean | null = null;
      fake.session.permissionRequest!({}, permission, (g) => (granted = g));
      expect(granted, permission).toBe(false);
      expect(fake.session.permissionCheck!({}, permission, 'file:///'), permission).toBe(false);
    }
  });

  it('blocks all remote requests and sets the strict CSP header', () => {
    expect(fake.session.blocked!.filter.urls).toEqual(['http://*/*', 'https://*/*', 'ws://*/*', 'wss://*/*']);
    let cancelled: boolean | null = null;
    fake.session.blocked!.listener({ url: 'https://evil.example/x.js' }, (r) => (cancelled = r.cancel));
    expect(cancelled).toBe(true);
    let headers: Record<string, string[]> | undefined;
    fake.session.headers!({ url: APP_URL, responseHeaders: {} }, (r) => (headers = r.responseHeaders));
    expect(headers!['Content-Security-Policy']![0]).toMatch(/default-src 'self'.*frame-ancestors 'none'/);
  });

  it('stops navigation, redirects, webviews and new windows in every web contents', () => {
    const listeners = new Map<string, Listener>();
    let openHandler: ((d: { url: string }) => { action: string }) | null = null;
    fake.app.emit('web-contents-created', {}, { on: (e: string, l: Listener) => listeners.set(e, l), setWindowOpenHandler: (h: typeof openHandler) => (openHandler = h) });
    for (const name of ['will-navigate', 'will-redirect', 'will-attach-webview']) {
      let prevented = false;
      listeners.get(name)!({ preventDefault: () => (prevented = true) });
      expect(prevented, name).toBe(true);
    }
    expect(openHandler!({ url: 'https://evil.example' })).toEqual({ action: 'deny' });
  });

  it('opens one sandboxed, isolated window on the renderer file', () => {
    expect(fake.windows).toHaveLength(1);
    const [win] = fake.windows;
    expect(win!.options.webPreferences).toEqual({
      preload: '/opt/orderlog/resources/app.asar/dist/main/preload.cjs',
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    });
    expect(win!.loaded).toEqual([join(RENDERER_DIR, 'index.html')]);
  });

  it('answers IPC only from pages inside the renderer folder (parsed, exact)', async () => {
    expect(await fake.invoke(APP_URL, 'syncStatus', {})).toMatchObject({ ok: true });
    expect(await fake.invoke(`${pathToFileURL(RENDERER_DIR).href}/assets/x.html#/orders`, 'syncStatus', {})).toMatchObject({ ok: true });
    for (const url of [
      `${pathToFileURL(`${RENDERER_DIR}-x`).href}/index.html`,
      `${pathToFileURL(RENDERER_DIR).href}/../secrets.html`,
      `${pathToFileURL(RENDERER_DIR).href}/%2e%2e/secrets.html`,
      pathToFileURL(RENDERER_DIR).href,
      `file://evil-host${RENDERER_DIR}/index.html`,
      'https://evil.example/',
      `http://127.0.0.1:5173${RENDERER_DIR}/index.html`,
      'about:blank',
      '',
    ]) {
      expect(await fake.invoke(url, 'syncStatus', {}), url).toMatchObject({ ok: false, error: { error: 'UNAVAILABLE' } });
    }
  });

  it('keeps the token encrypted with safeStorage in a 0600 file', () => {
    const file = join(dir, TOKEN_FILE);
    const text = readFileSync(file, 'utf8');
    expect(fake.safeStorage.encrypted).toBeGreaterThan(0);
    expect(JSON.parse(text)).toMatchObject({ server: 'http://127.0.0.1:9', encoding: 'safeStorage' });
    expect(text).not.toContain(TOKEN);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('never hands the token to the renderer: not in IPC replies, not in status messages', async () => {
    const replies = [
      await fake.invoke(APP_URL, 'getSettings', {}),
      await fake.invoke(APP_URL, 'syncStatus', {}),
      await fake.invoke(APP_URL, 'saveSettings', { serverUrl: 'http://127.0.0.1:9', userId: 'maria' }),
      await fake.invoke(APP_URL, 'saveSettings', { serverUrl: 'http://127.0.0.1:10', userId: 'maria' }),
      await fake.invoke(APP_URL, 'execute', { command: { type: 'CreateOrder', orderId: 'ORD-M1', customerId: 'C', items: [{ sku: 'S', quantity: 1, unitPrice: 100 }] } }),
    ];
    expect(replies[0]).toMatchObject({ ok: true, value: { tokenSet: true, tokenServer: 'http://127.0.0.1:9', serverUrl: 'http://127.0.0.1:9', userId: 'maria' } });
    expect(replies[3]).toMatchObject({ ok: false, error: { error: 'BAD_INPUT', issues: [{ path: 'token' }] } });
    await expect.poll(() => fake.sent.length, { timeout: 5000 }).toBeGreaterThan(0);
    expect(fake.sent.every(([channel]) => channel === 'status')).toBe(true);
    for (const message of [...replies, ...fake.sent]) expect(JSON.stringify(message)).not.toContain(TOKEN);
  });
});

describe('main/ hardening helpers', () => {
  it('uses safeStorage only where it really encrypts', () => {
    expect(safeStorageCipher(fakeSafeStorage('gnome_libsecret'), 'linux')).not.toBeNull();
    expect(safeStorageCipher(fakeSafeStorage('basic_text'), 'linux')).toBeNull();
    expect(safeStorageCipher(fakeSafeStorage('unknown', false), 'win32')).toBeNull();
    const cipher = safeStorageCipher(fakeSafeStorage(), 'darwin')!;
    expect(cipher.decrypt(cipher.encrypt('round trip'))).toBe('round trip');
  });

  it('the sender check needs a frame and a file inside the folder, with the separator', () => {
    const check = rendererSenderCheck('/app/dist-renderer');
    expect(check({ senderFrame: { url: 'file:///app/dist-renderer/index.html' } })).toBe(true);
    expect(check({ senderFrame: { url: 'file:///app/dist-renderer-x/index.html' } })).toBe(false);
    expect(check({ senderFrame: { url: 'file:///app/dist-renderer' } })).toBe(false);
    expect(check({ senderFrame: null })).toBe(false);
    expect(check({})).toBe(false);
    expect(check({ senderFrame: { url: 'not a url' } })).toBe(false);
  });
});
