/**
 * The subset of Electron's API that main/ uses, typed here so the project typechecks where the
 * `electron` package (an optional dependency whose binary cannot always be downloaded) is absent.
 * At runtime the real module is loaded with createRequire; nothing here has behaviour.
 */

export interface IpcMainInvokeEventLike {
  senderFrame?: { url: string } | null;
  sender?: { id: number };
}

/** What registerIpc needs of ipcMain; tests drive it with an EventEmitter-based stand-in. */
export interface IpcMainLike {
  handle(channel: string, listener: (event: IpcMainInvokeEventLike, ...args: unknown[]) => unknown): void;
  removeHandler(channel: string): void;
}

export interface WebContents {
  id: number;
  send(channel: string, ...args: unknown[]): void;
  on(event: 'will-navigate' | 'will-attach-webview' | 'will-redirect', listener: (event: { preventDefault(): void }, ...args: unknown[]) => void): void;
  setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' | 'allow' }): void;
  isDestroyed(): boolean;
}

export interface BrowserWindowOptions {
  width?: number;
  height?: number;
  minWidth?: number;
  minHeight?: number;
  show?: boolean;
  title?: string;
  backgroundColor?: string;
  autoHideMenuBar?: boolean;
  webPreferences: {
    preload: string;
    contextIsolation: true;
    sandbox: true;
    nodeIntegration: false;
    nodeIntegrationInWorker?: false;
    webSecurity?: true;
    allowRunningInsecureContent?: false;
    webviewTag?: false;
    spellcheck?: boolean;
  };
}

export interface BrowserWindow {
  webContents: WebContents;
  loadFile(filePath: string): Promise<void>;
  once(event: 'ready-to-show', listener: () => void): void;
  on(event: 'closed', listener: () => void): void;
  show(): void;
  focus(): void;
  restore(): void;
  isMinimized(): boolean;
  isDestroyed(): boolean;
}

export interface BrowserWindowConstructor {
  new (options: BrowserWindowOptions): BrowserWindow;
}

export interface OnHeadersReceivedDetails {
  url: string;
  responseHeaders?: Record<string, string[]>;
}

export interface Session {
  webRequest: {
    onHeadersReceived(listener: (details: OnHeadersReceivedDetails, callback: (response: { responseHeaders?: Record<string, string[]> }) => void) => void): void;
    onBeforeRequest(filter: { urls: string[] }, listener: (details: { url: string }, callback: (response: { cancel: boolean }) => void) => void): void;
  };
  setPermissionRequestHandler(handler: (webContents: unknown, permission: string, callback: (granted: boolean) => void) => void): void;
  setPermissionCheckHandler(handler: (webContents: unknown, permission: string, requestingOrigin: string) => boolean): void;
}

export interface SafeStorage {
  isEncryptionAvailable(): boolean;
  /** Linux only: 'basic_text' means a hard-coded key, i.e. no real protection. */
  getSelectedStorageBackend?(): string;
  encryptString(plainText: string): Buffer;
  decryptString(encrypted: Buffer): string;
}

export interface App {
  requestSingleInstanceLock(): boolean;
  quit(): void;
  exit(code?: number): void;
  whenReady(): Promise<void>;
  getPath(name: 'userData'): string;
  on(event: 'second-instance' | 'window-all-closed' | 'activate', listener: () => void): void;
  on(event: 'before-quit', listener: (event: { preventDefault(): void }) => void): void;
  on(event: 'web-contents-created', listener: (event: unknown, contents: WebContents) => void): void;
}

export interface ElectronMain {
  app: App;
  BrowserWindow: BrowserWindowConstructor;
  ipcMain: IpcMainLike;
  session: { defaultSession: Session };
  safeStorage: SafeStorage;
}
