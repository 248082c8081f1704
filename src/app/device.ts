import { join } from 'node:path';
import type { StatusEvent, SyncStatus } from './contract.js';
import { DeviceRepository, type AuditCheck, type DeviceSettings } from './device-repository.js';
import { defaultProjections, OrderQueries, ProjectionRunner, type RebuildProgress } from '../projections/index.js';
import { openLocalStore, type Durability, type LocalStore } from '../store/index.js';
import { createPendingSource, Outbox, SyncEngine, SyncScheduler, type SchedulerOptions } from '../sync/index.js';

export interface DeviceOptions {
  /** Folder holding this device's database (device.sqlite). */
  dataDir: string;
  /** Initial settings, used only where the device has none stored yet. */
  serverUrl?: string;
  token?: string;
  userId?: string;
  durability?: Durability;
  /** Background sync tuning (tests shorten these). */
  sync?: Pick<SchedulerOptions, 'intervalMs' | 'debounceMs' | 'backoff' | 'createClient'>;
  /** Start the background scheduler (default true). */
  autoSync?: boolean;
}

export type StatusListener = (event: StatusEvent) => void;

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
  ) {}

  static async open(opts: DeviceOptions): Promise<Device> {
    const store = openLocalStore(join(opts.dataDir, 'device.sqlite'), { durability: opts.durability });
    try {
      const settings = new DeviceRepository(store.db);
      const initial = settings.load({ serverUrl: opts.serverUrl, token: opts.token, userId: opts.userId });
      settings.save(initial);

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
      runner.setPendingSource(createPendingSource(outbox));
      await runner.open();
      const engine = new SyncEngine({ store, outbox, client: null });
      const scheduler = new SyncScheduler({
        engine,
        outbox,
        serverUrl: initial.serverUrl || null,
        token: initial.token,
        ...opts.sync,
      });
      device = new Device(store, settings, runner, new OrderQueries(store.db), outbox, engine, scheduler);
      scheduler.onStatus((status) => device!.emit({ kind: 'sync', status }));
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

  syncStatus(): SyncStatus {
    return this.scheduler.getStatus();
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

export const openDevice = (opts: DeviceOptions): Promise<Device> => Device.open(opts);
