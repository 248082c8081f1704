import { join } from 'node:path';
import { ContractError, Settings, type SettingsView, type StatusEvent, type SyncStatus } from './contract.js';
import type { AuditCheck } from './contract.js';
import { DeviceRepository, type DeviceSettings } from './device-repository.js';
import { deviceBootstrap } from './device-bootstrap.js';
import { TokenVault, type SecretCipher, type ServerCredential } from './token-vault.js';
import { defaultProjections, OrderQueries, ProjectionRunner, type RebuildProgress } from '../projections/index.js';
import { openLocalStore, type Durability, type LocalStore } from '../store/index.js';
import { createPendingSource, Outbox, SyncEngine, SyncScheduler, type DeferrableViews, type SchedulerOptions } from '../sync/index.js';

export interface DeviceOptions {
  /** Folder holding this device's database (device.sqlite). */
  dataDir: string;
  /** Initial settings, used only where the device has none stored yet. */
  serverUrl?: string;
  token?: string;
  userId?: string;
  durability?: Durability;
  /** Background sync tuning (tests shorten these). */
  sync?: Pick<SchedulerOptions, 'intervalMs' | 'debounceMs' | 'backoff' | 'createClient' | 'liveWaitMs'>;
  /** Start the background scheduler (default true). */
  autoSync?: boolean;
  /** Platform encryption for the server token at rest (Electron's safeStorage); a 0600 file without it. */
  tokenCipher?: SecretCipher | null;
}

/** File in the data dir holding the server token (see token-vault.ts). */
export const TOKEN_FILE = 'server-token.json';
/** File in the data dir holding browser mode's session hash (see browser-access.ts). */
export const BROWSER_SESSION_FILE = 'browser-session.json';

export type StatusListener = (event: StatusEvent) => void;

/**
 * The device's views as a pull far behind the server defers them (a first sync): the events go
 * into the log without a projection pass per page, and the views are built once at the end:
 * rebuilt from the log when it was empty (the cheapest build), else caught up. `built` runs
 * after (a hint for every view to re-read).
 */
export function deferrableViews(store: LocalStore, runner: ProjectionRunner, built?: () => void): DeferrableViews {
  return {
    defer: () => {
      runner.close();
      // A new device's views are built from the pages as they are stored (not read back at the
      // end), unless a rebuild is running: then they are rebuilt after it, at the end.
      const empty = store.log.headPosition() === 0;
      const fed = empty ? runner.feedRebuild() : null;
      return async () => {
        try {
          if (fed) await fed.finish();
          else if (empty) await runner.rebuild();
          runner.catchUp();
        } finally {
          runner.attach();
          built?.();
        }
      };
    },
  };
}

/**
 * One device: the local store, its projections with the outbox overlay, and background sync,
 * wired together. Electron main and the browser-mode server both open exactly this.
 */
export class Device {
  private readonly listeners = new Set<StatusListener>();
  private changedOrders = new Set<string>();
  private flushScheduled = false;
  private closed = false;

  private constructor(
    readonly store: LocalStore,
    readonly settings: DeviceRepository,
    readonly runner: ProjectionRunner,
    readonly queries: OrderQueries,
    readonly outbox: Outbox,
    readonly engine: SyncEngine,
    readonly scheduler: SyncScheduler,
    private readonly vault: TokenVault,
  ) {}

  static async open(opts: DeviceOptions): Promise<Device> {
    const store = openLocalStore(join(opts.dataDir, 'device.sqlite'), { durability: opts.durability });
    try {
      const settings = new DeviceRepository(store.db);
      const vault = new TokenVault(join(opts.dataDir, TOKEN_FILE), opts.tokenCipher ?? null);
      settings.takeLegacyToken((token, server) => {
        if (server && !vault.read()) vault.write({ server, token });
      });
      const initial = settings.load({ serverUrl: opts.serverUrl, userId: opts.userId });
      settings.save(initial);
      if (opts.token && initial.serverUrl && !vault.read()) vault.write({ server: initial.serverUrl, token: opts.token });

      let device: Device | null = null;
      const runner = new ProjectionRunner(store.log, defaultProjections(), {
        onRebuildProgress: (p) => device?.emitRebuild(p),
      });
      const outbox = new Outbox(store, {
        deviceId: initial.deviceId,
        onOrdersChanged: (ids) => {
          runner.refreshOrders(ids);
          device?.noteChanged(ids);
        },
      });
      // The file's overlay was written by this outbox, in the transactions that changed it.
      runner.setPendingSource(createPendingSource(outbox), { current: true });
      await runner.open();
      const rebuilt = () => device?.emit({ kind: 'changed', position: store.log.headPosition(), orderIds: [] });
      const engine = new SyncEngine({
        store,
        outbox,
        client: null,
        views: deferrableViews(store, runner, rebuilt),
        bootstrap: deviceBootstrap(store, runner, rebuilt),
      });
      const scheduler = new SyncScheduler({
        engine,
        outbox,
        serverUrl: initial.serverUrl || null,
        token: tokenFor(vault.read(), initial.serverUrl),
        paused: settings.workOffline(),
        ...opts.sync,
      });
      device = new Device(store, settings, runner, new OrderQueries(store.db), outbox, engine, scheduler, vault);
      scheduler.onStatus((status) => device!.emit({ kind: 'sync', status: device!.redactStatus(status) }));
      if (opts.autoSync !== false) scheduler.start();
      return device;
    } catch (err) {
      store.close();
      throw err;
    }
  }

  get deviceId(): string {
    return this.outbox.deviceId;
  }

  currentSettings(): DeviceSettings {
    return this.settings.load();
  }

  /** The settings as the renderer may see them: whether a token is stored and for which server. */
  settingsView(): SettingsView {
    const stored = this.vault.read();
    return { ...this.settings.load(), tokenSet: stored !== null, tokenServer: stored?.server ?? null };
  }

  /**
   * Save settings from the renderer. A token is only ever used with the server it was entered
   * for: a new server URL without a new token is refused (nothing changes), so a changed URL can
   * never receive the old token. An empty URL (offline only) drops the token. Other changes
   * (the user name) need no token.
   */
  saveSettings(raw: Settings): SettingsView {
    const input = Settings.parse(raw);
    const stored = this.vault.read();
    const token = input.token || null;
    if (token && !input.serverUrl) throw badSetting('token', 'a token needs a server URL; leave the token empty to work offline');
    const moved = input.serverUrl !== this.settings.load().serverUrl;
    if (!token && input.serverUrl && moved) {
      throw badSetting(
        'token',
        stored ? `enter the access token for ${input.serverUrl}: the token saved for ${stored.server} is never sent to another server` : `enter the access token for ${input.serverUrl}`,
      );
    }
    // The token first: should the settings write fail after it, the old URL gets no token at all.
    if (token) this.vault.write({ server: input.serverUrl, token });
    else if (!input.serverUrl) this.vault.write(null);
    this.settings.save({ serverUrl: input.serverUrl, userId: input.userId });
    this.scheduler.setServer(input.serverUrl || null, tokenFor(this.vault.read(), input.serverUrl));
    return this.settingsView();
  }

  /** The server and the token bound to it, for this process's own requests (never for the renderer). */
  serverCredential(): ServerCredential | null {
    const { serverUrl } = this.settings.load();
    const token = tokenFor(this.vault.read(), serverUrl);
    return serverUrl && token ? { server: serverUrl, token } : null;
  }

  /** "Work offline" on or off, persisted; the scheduler stops or resumes (and syncs at once). */
  setWorkOffline(on: boolean): SyncStatus {
    this.settings.setWorkOffline(on);
    this.scheduler.setPaused(on);
    return this.syncStatus();
  }

  syncStatus(): SyncStatus {
    return this.redactStatus(this.scheduler.getStatus());
  }

  /** A server may echo the request back in an error; its text reaches the renderer without the token. */
  redactStatus(status: SyncStatus): SyncStatus {
    if (status.lastError === null) return status;
    const lastError = this.redact(status.lastError);
    return lastError === status.lastError ? status : { ...status, lastError };
  }

  /** Any server-supplied text on its way to the renderer, without the token. */
  redact(text: string): string {
    const token = this.vault.read()?.token;
    return token && text.includes(token) ? text.split(token).join('[token]') : text;
  }

  /** What a newly connected view needs first: the sync status, and a hint to re-read everything. */
  statusSnapshot(): StatusEvent[] {
    return [
      { kind: 'sync', status: this.syncStatus() },
      { kind: 'changed', position: this.store.log.headPosition(), orderIds: [] },
    ];
  }

  onStatus(listener: StatusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: StatusEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // A broken listener (a closed window) must not stop the others.
      }
    }
  }

  private emitRebuild(p: RebuildProgress): void {
    this.emit({ kind: 'rebuild', progress: { ...p } });
  }

  /**
   * Called inside write transactions: collect the order ids and announce them once the
   * transaction has committed (a listener must never see a change that may still roll back).
   */
  noteChanged(ids: readonly string[]): void {
    for (const id of ids) this.changedOrders.add(id);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.closed || this.changedOrders.size === 0) return;
      const orderIds = [...this.changedOrders];
      this.changedOrders = new Set();
      this.emit({ kind: 'changed', position: this.store.log.headPosition(), orderIds });
    });
  }

  lastAudit(orderId: string): AuditCheck | null {
    return this.settings.lastAudit(orderId);
  }

  recordAudit(orderId: string, r: AuditCheck): void {
    this.settings.recordAudit(orderId, r);
  }

  /** Let an in-flight sync finish, then close the database. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.scheduler.stop();
    this.runner.close();
    this.listeners.clear();
    this.store.close();
  }
}

function tokenFor(stored: ServerCredential | null, serverUrl: string): string {
  return stored && serverUrl && stored.server === serverUrl ? stored.token : '';
}

function badSetting(path: string, message: string): ContractError {
  return new ContractError('BAD_INPUT', `${path}: ${message}`, [{ path, message }]);
}

export const openDevice = (opts: DeviceOptions): Promise<Device> => Device.open(opts);
